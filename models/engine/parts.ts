/**
 * How the engine's workers share a call (EngineOptions.workers): each takes one contiguous part.
 * - sampling: the prompts in even parts (a response's random numbers follow its place in the whole request);
 * - teacher-forced log-probs: whole runs of `logprobBatchRows` rows, the runs one worker makes, in even parts:
 *   each run computes what it computes in the one-worker engine, so the values are the same, bit for bit.
 */

/** Rows per teacher-forced run (EngineOptions.logprobBatchRows) when not given. */
export const LOGPROB_BATCH_ROWS = 64;

/** A part of a call: prompts or rows [start, end). */
export interface Part {
  start: number;
  end: number;
}

/** `count` items in at most `k` contiguous parts whose sizes differ by at most one (none empty; one part for none). */
export function evenParts(count: number, k: number): Part[] {
  const n = Math.max(1, Math.min(k, count));
  return Array.from({ length: n }, (_, j) => ({ start: Math.floor((j * count) / n), end: Math.floor(((j + 1) * count) / n) }));
}

/** `rows` rows in at most `k` parts of whole runs of `runRows` (the last run may be short). */
export function runParts(rows: number, runRows: number, k: number): Part[] {
  return evenParts(Math.ceil(rows / runRows), k).map((p) => ({ start: p.start * runRows, end: Math.min(rows, p.end * runRows) }));
}

/**
 * An engine of `threads` onnxruntime threads over `dataParallelSize` workers (`worker.rollout.threads` and
 * `worker.rollout.data_parallel_size`): at most one worker per thread, the threads shared evenly (rounded down).
 */
export function engineThreads(threads: number, dataParallelSize: number): { workers: number; intraOpThreads: number } {
  const workers = Math.max(1, Math.min(dataParallelSize, threads));
  return { workers, intraOpThreads: Math.max(1, Math.floor(threads / workers)) };
}
