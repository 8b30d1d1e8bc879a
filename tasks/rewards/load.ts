/**
 * A reward function from the user's file, as `worker.reward.score_function` names one: `path/to/file.ts:export`
 * (the default export when `:export` is omitted). The export may be a `RewardFunction` (from `defineReward` /
 * `defineBatchReward`) or a plain function `(input) => { overall, accuracy, format }`, sync or async. Used by
 * the reward workers (pool-worker.ts), which import the file; and by `loadRewardFunction`
 * (pipelines/reward-function.ts) for a program that runs a reward in its own thread.
 */
import * as path from 'node:path';
import { importUserModule } from '../../util/user-module.ts';
import { defineBatchReward, defineReward, isRewardFunction, type BatchRewardFunction, type RewardFunction, type SingleRewardFunction } from './types.ts';

/** The config key that names a reward, in errors. */
export const SCORE_FUNCTION_KEY = 'worker.reward.score_function';

/** `file.ts:name` split into its file and export name (`default` when omitted); undefined unless a .ts/.js file. */
export function splitRewardSpec(spec: string): { file: string; name: string } | undefined {
  const colon = spec.lastIndexOf(':');
  // `C:\x.ts` has a colon at 1: only a colon after the file's extension separates the export name.
  const hasName = colon > 1 && /\.[cm]?[jt]s$/.test(spec.slice(0, colon));
  const file = hasName ? spec.slice(0, colon) : spec;
  const name = hasName ? spec.slice(colon + 1) : 'default';
  return /\.[cm]?[jt]s$/.test(file) ? { file, name } : undefined;
}

/**
 * How a plain function is called, EasyR1's reward types: `sequential`, once per response with one input;
 * `batch`, with a list of inputs (a chunk of a step's responses) returning one result per input, in order.
 */
export const REWARD_TYPES = ['sequential', 'batch'] as const;
export type RewardType = (typeof REWARD_TYPES)[number];

/** The `REWARD_TYPE` a reward file exports (as EasyR1's reward files declare theirs), or undefined. */
function exportedRewardType(exports: Record<string, unknown>, where: string): RewardType | undefined {
  const t = exports.REWARD_TYPE;
  if (t === undefined) return undefined;
  if (!REWARD_TYPES.includes(t as RewardType))
    throw new Error(`${SCORE_FUNCTION_KEY}: ${where} exports REWARD_TYPE ${JSON.stringify(t)}; it must be ${REWARD_TYPES.join(' or ')}`);
  return t as RewardType;
}

/**
 * Imports the file of a `file.ts:export` spec (relative paths against `baseDir`) and returns the reward it
 * exports. A plain function is called as `rewardType` says (`worker.reward.reward_type`), else as the file's
 * `REWARD_TYPE` export says, else once per response.
 */
export async function importRewardFile(spec: { file: string; name: string }, baseDir: string, rewardType?: RewardType): Promise<RewardFunction> {
  const { file, name } = spec;
  const { where, exports } = await importUserModule(file, baseDir, SCORE_FUNCTION_KEY);
  const fn = exports[name];
  if (fn === undefined) {
    throw new Error(`${SCORE_FUNCTION_KEY}: ${where} has no export '${name}' (exports: ${Object.keys(exports).join(', ') || 'none'})`);
  }
  if (typeof fn === 'function') {
    const shown = name === 'default' ? path.basename(file) : name;
    return (rewardType ?? exportedRewardType(exports, where)) === 'batch'
      ? defineBatchReward(shown, fn as BatchRewardFunction['scoreBatch'])
      : defineReward(shown, fn as SingleRewardFunction['score']);
  }
  if (isRewardFunction(fn)) {
    const mode = fn.mode === 'batch' ? 'batch' : 'sequential';
    if (rewardType !== undefined && rewardType !== mode)
      throw new Error(
        `worker.reward.reward_type: ${rewardType}, but export '${name}' of ${where} is a ${mode} reward (from ${fn.mode === 'batch' ? 'defineBatchReward' : 'defineReward'})`,
      );
    return fn;
  }
  throw new Error(`${SCORE_FUNCTION_KEY}: export '${name}' of ${where} is neither a function nor a reward from defineReward / defineBatchReward`);
}
