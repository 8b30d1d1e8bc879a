/**
 * What the reward pool (pool.ts) and its workers (pool-worker.ts) exchange: the calls, the worker's set-up,
 * and the layout of the shared array through which a worker shows, without a message, how far a chunk of
 * inputs has got (so the pool can tell a slow reward from a blocked thread, and which record blocked it).
 */
import type { RewardRun } from './runner.ts';
import type { RewardInput } from './types.ts';
import type { RewardType } from './load.ts';

export interface PoolWorkerInit {
  /** a registered reward name, or `file:export` (relative to baseDir) */
  spec: string;
  baseDir: string;
  /** extension modules (`--import`) to import before the reward is looked up */
  modules: string[];
  /** bytes of buffers (memory outside the V8 heap) past which the worker ends itself */
  maxBufferBytes: number;
  /** how a plain function of a reward file is called (`worker.reward.reward_type`) */
  rewardType?: RewardType;
}

export interface ScoreRequest {
  inputs: RewardInput[];
  /** Int32Array view: the slots below */
  state: SharedArrayBuffer;
  /**
   * Bytes: each outcome as it is known, one JSON line `[index, result]` or `[index, kind, reason]`, so that
   * the outcomes a worker had before it died are not lost with it (the reply comes at the chunk's end).
   */
  journal: SharedArrayBuffer;
  timeoutMs: number;
  concurrency: number;
}

export interface PoolCalls {
  describe(): { name: string; mode: 'single' | 'batch' };
  score(request: ScoreRequest): RewardRun;
}

/** Slots of the shared Int32Array of a chunk. */
export const STATE = {
  /** bumped at every call's start and every input's outcome: progress, whatever the reward does */
  events: 0,
  /** 1 + the index of the input whose call runs synchronously now, BATCH for a batch call, 0 for none */
  running: 1,
  /** why the worker ended itself (CAUSE_*), 0 if it did not */
  cause: 2,
  /** 1 + the index of the input called last (the one to blame for a death between calls) */
  last: 3,
  /** bytes of the journal written */
  journal: 4,
  /** then one slot per input: 0 waiting, 1 called, 2 has its outcome */
  inputs: 5,
} as const;

/** Journal bytes per input of a chunk (a line that does not fit is left out: that input is sent again). */
export const JOURNAL_BYTES_PER_INPUT = 512;

export const RUNNING_BATCH = -1;
export const CAUSE_BUFFERS = 1;
export const INPUT_CALLED = 1;
export const INPUT_SETTLED = 2;

/** A stray error of the reward's code: a rejection nobody handled, or an exception thrown outside any call. */
export interface StrayEvent {
  kind: 'stray';
  what: 'unhandled rejection' | 'uncaught exception';
  /** the id of the record whose call it came from, when known */
  record?: string;
  /** one line: the error's name and message, and where in the user's code it was thrown */
  message: string;
}
