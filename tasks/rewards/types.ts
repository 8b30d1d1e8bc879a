/**
 * The reward-function interface users implement. A reward function scores a model response against a
 * record; it may be synchronous or asynchronous, and may score one response at a time or a whole batch.
 * Every result carries `overall` (the scalar the advantage uses), `accuracy` and `format`; extra numeric
 * components are kept and logged.
 */

export interface RewardInput {
  /** The record id (named in failure reports). */
  readonly id: string;
  readonly response: string;
  readonly answer: string;
  readonly question?: string;
  readonly family?: string;
  readonly meta?: Record<string, unknown>;
}

export interface RewardResult {
  overall: number;
  accuracy: number;
  format: number;
  [extra: string]: number;
}

type MaybePromise<T> = T | Promise<T>;

export interface SingleRewardFunction {
  readonly name: string;
  readonly mode: 'single';
  score(input: RewardInput): MaybePromise<RewardResult>;
}

export interface BatchRewardFunction {
  readonly name: string;
  readonly mode: 'batch';
  /** One result per input, in order. */
  scoreBatch(inputs: readonly RewardInput[]): MaybePromise<readonly RewardResult[]>;
}

export type RewardFunction = SingleRewardFunction | BatchRewardFunction;

export function defineReward(name: string, score: SingleRewardFunction['score']): SingleRewardFunction {
  return { name, mode: 'single', score };
}

export function defineBatchReward(name: string, scoreBatch: BatchRewardFunction['scoreBatch']): BatchRewardFunction {
  return { name, mode: 'batch', scoreBatch };
}

/** Whether `x` is a reward function object (what `defineReward` / `defineBatchReward` return). */
export function isRewardFunction(x: unknown): x is RewardFunction {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as { mode?: unknown; score?: unknown; scoreBatch?: unknown };
  return (r.mode === 'single' && typeof r.score === 'function') || (r.mode === 'batch' && typeof r.scoreBatch === 'function');
}
