/**
 * Runs a user's reward function over a batch of responses so that no reward bug can crash a training
 * run: whatever the function throws or returns, however strange (a rejected promise, a non-numeric,
 * non-finite or out-of-range value, a result whose getters throw, a Proxy, a thenable that misbehaves, a
 * sparse or wrong-length batch, a timeout), becomes a recorded failure (record id + reason) and reward 0
 * for the responses concerned. Every input ends as exactly one of: a validated result, or a failure.
 *
 * The bound: every number of a result (overall, accuracy, format and the extras) must lie within
 * +-REWARD_BOUND (1e6). Rewards are float32 from here on: a value like 1e308 would overflow to Infinity and
 * make every advantage of its group NaN (the whole update skipped, the failure nowhere named), and even
 * finite values far beyond any reward scale swamp the group's statistics. A reward needing more range is
 * one to rescale.
 *
 * Results are copied field by field into plain objects when they are checked, so a getter cannot
 * return one value to the check and another to the trainer.
 *
 * Timeouts: an asynchronous function is abandoned when its deadline passes (its promise is left to settle
 * on its own). JavaScript cannot interrupt a synchronous function; one that returns late is recorded as a
 * timeout, but one that never returns blocks the thread: user reward code runs in the worker pool of
 * pool.ts, which stops such a worker (and this function runs inside it).
 *
 *   const { results, failures } = await runReward(myReward, inputs, { timeoutMs: 10_000, concurrency: 8 });
 */
import { isRewardFunction, type BatchRewardFunction, type RewardFunction, type RewardInput, type RewardResult, type SingleRewardFunction } from './types.ts';

export interface RewardRunOptions {
  /** Per response (single mode) or per batch (batch mode): finite, > 0 and at most 2^31 - 1 (Node's timer range). Default 10 s. */
  timeoutMs?: number;
  /** Single mode: at most this many calls in flight (e.g. for a rate-limited judge). Default unbounded. */
  concurrency?: number;
  /** Called as soon as input `index` has its outcome (its checked result, or its failure); for the pool's workers. */
  onSettled?: (index: number, outcome: { result: RewardResult } | { failure: RewardFailure }) => void;
}

/**
 * `threw`, `timeout`, `invalid` (a bad value); `crashed`: the worker running the call died under it (it
 * exited, ran out of memory, or crashed), see pool.ts.
 */
export type RewardFailureKind = 'threw' | 'timeout' | 'invalid' | 'crashed';

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

/**
 * Scores inputs with a reward function wherever it runs (this thread with `runReward`, or the worker pool of
 * pool.ts), with runReward's contract: one result per input, failures named, never a throw for what the
 * function did.
 */
export interface RewardScorer {
  readonly name: string;
  run(inputs: readonly RewardInput[], opts?: RewardRunOptions): Promise<RewardRun>;
  /** Releases what the scorer holds (the pool's workers). */
  close(): Promise<void>;
}

/** Whether `x` is a RewardScorer (rather than a RewardFunction). */
export function isRewardScorer(x: unknown): x is RewardScorer {
  return typeof x === 'object' && x !== null && typeof (x as { run?: unknown }).run === 'function' && !isRewardFunction(x);
}

/** A scorer that runs `fn` in this thread (registered built-in rewards, and reward objects a program passes). */
export function inThreadScorer(fn: RewardFunction): RewardScorer {
  return { name: describeFunction(fn).name, run: (inputs, opts) => runReward(fn, inputs, opts), close: async () => undefined };
}

/** The largest delay Node's timers accept; longer ones fire at once, with a warning. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The largest magnitude a number of a reward result may have (see the module doc); beyond it, a failure. */
export const REWARD_BOUND = 1e6;

const REQUIRED = ['overall', 'accuracy', 'format'] as const;

const ZERO = (): RewardResult => ({ overall: 0, accuracy: 0, format: 0 });

/** The timeout and concurrency of a run, checked (an error says which is wrong), with their defaults. */
export function runLimits(opts: RewardRunOptions): { timeoutMs: number; concurrency: number } {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new Error(
      `reward timeoutMs must be a finite number of milliseconds above 0 and at most ${MAX_TIMEOUT_MS} (the timer range), got ${safeText(timeoutMs)}`,
    );
  }
  const concurrency = opts.concurrency ?? Infinity;
  if (!(concurrency === Infinity || (Number.isInteger(concurrency) && concurrency >= 1))) {
    throw new Error(`reward concurrency must be an integer of at least 1, got ${safeText(concurrency)}`);
  }
  return { timeoutMs, concurrency };
}

export async function runReward(fn: RewardFunction, inputs: readonly RewardInput[], opts: RewardRunOptions = {}): Promise<RewardRun> {
  const { timeoutMs, concurrency } = runLimits(opts);
  const { name, mode } = describeFunction(fn);
  const results = inputs.map(ZERO);
  const failures: RewardFailure[] = [];
  const settled = opts.onSettled ?? (() => undefined);
  const fail = (index: number, kind: RewardFailureKind, reason: string): void => {
    const failure = { id: inputs[index].id, index, reward: name, kind, reason };
    failures.push(failure);
    results[index] = ZERO();
    settled(index, { failure });
  };
  const record = (index: number, value: unknown): void => {
    const checked = checkResult(value);
    if ('problem' in checked) fail(index, 'invalid', checked.problem);
    else {
      results[index] = checked.result;
      settled(index, checked);
    }
  };

  if (mode === 'single') {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < inputs.length) {
        const i = next++;
        const out = await settle(() => (fn as SingleRewardFunction).score(inputs[i]), timeoutMs);
        if ('error' in out) fail(i, out.kind, out.error);
        else record(i, out.value);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  } else if (mode === 'batch') {
    if (inputs.length === 0) return { results, failures };
    const out = await settle(() => (fn as BatchRewardFunction).scoreBatch(inputs), timeoutMs);
    if ('error' in out) {
      inputs.forEach((_, i) => fail(i, out.kind, out.error));
    } else {
      const batch = readBatch(out.value, inputs.length);
      if ('problem' in batch) inputs.forEach((_, i) => fail(i, 'invalid', batch.problem));
      else batch.entries.forEach((e, i) => ('problem' in e ? fail(i, 'invalid', e.problem) : record(i, e.value)));
    }
  } else {
    throw new Error(`reward function ${name}: mode must be 'single' or 'batch'`);
  }
  failures.sort((a, b) => a.index - b.index);
  return { results, failures };
}

type Settled = { value: unknown } | { error: string; kind: RewardFailureKind };

/** Calls f, converting throws, rejections and deadlines into values. */
async function settle(f: () => unknown, timeoutMs: number): Promise<Settled> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  // compared by identity: `instanceof` on a thrown revoked Proxy would itself throw
  let timedOut: Error | undefined;
  try {
    const pending = f();
    const thenable = isThenable(pending);
    if (typeof thenable === 'string') return { kind: 'invalid', error: `reading the returned value's "then" threw: ${thenable}` };
    if (!thenable) {
      const elapsed = performance.now() - start;
      if (elapsed > timeoutMs) return { kind: 'timeout', error: `returned after ${elapsed.toFixed(0)} ms, over the ${timeoutMs} ms timeout` };
      return { value: pending };
    }
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject((timedOut = new Error(`no result within ${timeoutMs} ms`))), Math.max(0, timeoutMs - (performance.now() - start)));
    });
    return { value: await Promise.race([Promise.resolve(pending), deadline]) };
  } catch (e) {
    if (timedOut !== undefined && e === timedOut) return { kind: 'timeout', error: timedOut.message };
    return { kind: 'threw', error: `threw: ${errorText(e)}` };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Whether x has a callable `then`; what was thrown when asking throws (a getter or a Proxy trap). */
function isThenable(x: unknown): boolean | string {
  if ((typeof x !== 'object' && typeof x !== 'function') || x === null) return false;
  try {
    return typeof (x as { then?: unknown }).then === 'function';
  } catch (e) {
    return errorText(e);
  }
}

export type Checked = { result: RewardResult } | { problem: string };

/**
 * A plain copy of `v` if it is a valid RewardResult (an object whose overall, accuracy, format and own
 * enumerable extras are finite numbers within +-REWARD_BOUND), else what is wrong with it. Never throws.
 * (The pool checks its workers' replies with it again: the user's code shared their thread.)
 */
export function checkResult(v: unknown): Checked {
  try {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: `expected an object {overall, accuracy, format}, got ${describe(v)}` };
    const r = v as Record<string, unknown>;
    for (const k of REQUIRED) if (!(k in r)) return { problem: `result has no ${k}` };
    const extras = Object.keys(r).filter((k) => !(REQUIRED as readonly string[]).includes(k));
    const out = ZERO();
    for (const k of [...REQUIRED, ...extras]) {
      const x = r[k];
      if (typeof x !== 'number') return { problem: `${k} is ${describe(x)}, not a number` };
      if (!Number.isFinite(x)) return { problem: `${k} is ${x}` };
      if (Math.abs(x) > REWARD_BOUND) return { problem: `${k} is ${x}, beyond the bound of +-${REWARD_BOUND} (rewards are float32; rescale it)` };
      // defined, not assigned: a key named __proto__ stays a key
      Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    }
    return { result: out };
  } catch (e) {
    return { problem: `reading the result threw: ${errorText(e)}` };
  }
}

type Entry = { value: unknown } | { problem: string };

/** The n entries of a batch result, each read once; holes and unreadable entries are problems of their own. */
function readBatch(v: unknown, n: number): { entries: Entry[] } | { problem: string } {
  let length: number;
  try {
    if (!Array.isArray(v)) return { problem: `batch of ${n} returned ${describe(v)}, not an array` };
    length = v.length;
  } catch (e) {
    return { problem: `reading the batch result threw: ${errorText(e)}` };
  }
  if (length !== n) return { problem: `batch of ${n} returned ${length} results` };
  const arr = v as unknown[];
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    try {
      entries.push(i in arr ? { value: arr[i] } : { problem: `batch result has no entry at index ${i} (a sparse array)` });
    } catch (e) {
      entries.push({ problem: `reading batch entry ${i} threw: ${errorText(e)}` });
    }
  }
  return { entries };
}

/** The message of a thrown value, whatever it is (its getters and conversions may throw too). */
function errorText(e: unknown): string {
  try {
    const text = e instanceof Error ? String(e.message) : typeof e === 'string' ? e : describe(e);
    return text.length > 300 ? `${text.slice(0, 300)}...` : text;
  } catch {
    return 'a value that cannot be printed';
  }
}

/** A short, safe description of any value. */
function describe(v: unknown): string {
  try {
    if (v === null) return 'null';
    if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined) return `${typeof v} ${String(v)}`;
    if (Array.isArray(v)) return 'an array';
    return typeof v;
  } catch {
    return typeof v;
  }
}

/** The function's name and mode, read once (the object is the user's: its getters may throw). */
function describeFunction(fn: RewardFunction): { name: string; mode: unknown } {
  let name = 'reward';
  try {
    name = safeText(fn.name);
  } catch {
    // keep the placeholder
  }
  try {
    return { name, mode: fn.mode };
  } catch (e) {
    throw new Error(`reward function ${name}: reading its mode threw: ${errorText(e)}`);
  }
}

/** String(v) that cannot throw (for option values and names in messages). */
function safeText(v: unknown): string {
  try {
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : describe(v);
  } catch {
    return typeof v;
  }
}
