/**
 * Runs a user's reward function over a batch of responses so that no reward bug can crash a training
 * run: a throw, a rejected promise, a non-numeric or non-finite result, a wrong-length batch or a timeout
 * becomes a recorded failure (record id + reason) and reward 0 for the responses concerned.
 *
 * Timeouts: an asynchronous function is abandoned when its deadline passes (its promise is left to settle
 * on its own). JavaScript cannot interrupt a synchronous function; one that returns late is recorded as a
 * timeout, but one that never returns blocks the thread, so run untrusted synchronous code in a worker.
 */
import type { RewardFunction, RewardInput, RewardResult } from './types.ts';

export interface RewardRunOptions {
  /** Per response (single mode) or per batch (batch mode). Default 10 s. */
  timeoutMs?: number;
  /** Single mode: at most this many calls in flight (e.g. for a rate-limited judge). Default unbounded. */
  concurrency?: number;
}

export type RewardFailureKind = 'threw' | 'timeout' | 'invalid';

export interface RewardFailure {
  readonly id: string;
  /** Position in the batch. */
  readonly index: number;
  readonly reward: string;
  readonly kind: RewardFailureKind;
  readonly reason: string;
}

export interface RewardRun {
  /** One per input, in order; zeros where the function failed. */
  readonly results: RewardResult[];
  readonly failures: RewardFailure[];
}

const ZERO = (): RewardResult => ({ overall: 0, accuracy: 0, format: 0 });

class TimeoutError extends Error {}

export async function runReward(fn: RewardFunction, inputs: readonly RewardInput[], opts: RewardRunOptions = {}): Promise<RewardRun> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new Error(`reward timeout must be positive, got ${timeoutMs}`);
  const results = inputs.map(ZERO);
  const failures: RewardFailure[] = [];
  const fail = (index: number, kind: RewardFailureKind, reason: string): void => {
    failures.push({ id: inputs[index].id, index, reward: fn.name, kind, reason });
    results[index] = ZERO();
  };
  const record = (index: number, value: unknown): void => {
    const problem = validate(value);
    if (problem) fail(index, 'invalid', problem);
    else results[index] = { ...(value as RewardResult) };
  };

  if (fn.mode === 'single') {
    const concurrency = opts.concurrency ?? Infinity;
    if (!(concurrency >= 1)) throw new Error(`reward concurrency must be at least 1, got ${concurrency}`);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const i = next++;
        const out = await settle(() => fn.score(inputs[i]), timeoutMs);
        if ('error' in out) fail(i, out.kind, out.error);
        else record(i, out.value);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  } else if (fn.mode === 'batch') {
    if (inputs.length === 0) return { results, failures };
    const out = await settle(() => fn.scoreBatch(inputs), timeoutMs);
    if ('error' in out) {
      inputs.forEach((_, i) => fail(i, out.kind, out.error));
    } else if (!Array.isArray(out.value) || out.value.length !== inputs.length) {
      const got = Array.isArray(out.value) ? `${out.value.length} results` : describe(out.value);
      inputs.forEach((_, i) => fail(i, 'invalid', `batch of ${inputs.length} returned ${got}`));
    } else {
      out.value.forEach((v, i) => record(i, v));
    }
  } else {
    throw new Error(`reward function ${(fn as { name?: string }).name}: mode must be 'single' or 'batch'`);
  }
  failures.sort((a, b) => a.index - b.index);
  return { results, failures };
}

type Settled = { value: unknown } | { error: string; kind: 'threw' | 'timeout' };

/** Calls f, converting throws, rejections and deadlines into values. */
async function settle(f: () => unknown, timeoutMs: number): Promise<Settled> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const pending = f();
    if (!isThenable(pending)) {
      const elapsed = performance.now() - start;
      if (elapsed > timeoutMs) return { kind: 'timeout', error: `returned after ${elapsed.toFixed(0)} ms, over the ${timeoutMs} ms timeout` };
      return { value: pending };
    }
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`no result within ${timeoutMs} ms`)), Math.max(0, timeoutMs - (performance.now() - start)));
    });
    return { value: await Promise.race([Promise.resolve(pending), deadline]) };
  } catch (e) {
    if (e instanceof TimeoutError) return { kind: 'timeout', error: e.message };
    return { kind: 'threw', error: `threw: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/** Null if `v` is a valid RewardResult, else what is wrong with it. */
function validate(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `expected an object {overall, accuracy, format}, got ${describe(v)}`;
  const r = v as Record<string, unknown>;
  for (const k of ['overall', 'accuracy', 'format']) {
    if (!(k in r)) return `result has no ${k}`;
  }
  for (const [k, x] of Object.entries(r)) {
    if (typeof x !== 'number') return `${k} is ${describe(x)}, not a number`;
    if (!Number.isFinite(x)) return `${k} is ${x}`;
  }
  return null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  return typeof v;
}
