/**
 * Which checkpoints of a run are complete, and which one is the latest: the one rule shared by
 * `CheckpointStore` (resume, retention) and `loadPolicyWeights` (a run directory given as weights, e.g.
 * `papo eval --weights runs/train`, `papo sft --init runs/sft`, `worker.actor.model.model_path`).
 *
 * In `<run>/checkpoints/`, a checkpoint is a directory named `step_000120` (or `step_000120-2`, ...) that
 * holds the `COMPLETE` marker, written last; `latest` names the newest one. The pointer is a hint, not the
 * truth: when it is missing, torn, or names a directory that is gone or has no marker, the latest is the
 * complete checkpoint of the highest step.
 *
 * @example
 *   const name = await latestCompleteCheckpoint('runs/train/checkpoints'); // 'step_000040' or undefined
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { exists, readdirOrEmpty } from './atomic.ts';

/** The `format` attribute of a checkpoint's Zarr group. */
export const CHECKPOINT_FORMAT = 'papo-stream/checkpoint';
/** The marker file a checkpoint gets last: a directory without it is never loaded. */
export const COMPLETE = 'COMPLETE';
/** The pointer file naming the newest complete checkpoint (replaced by rename). */
export const LATEST = 'latest';
/** A published checkpoint's directory name; group 1 is the step. */
export const CHECKPOINT_NAME = /^step_(\d{6,})(-\d+)?$/;

/** Complete checkpoints in `checkpointsDir`, oldest first (none when it does not exist). */
export async function completeCheckpoints(checkpointsDir: string): Promise<{ name: string; step: number }[]> {
  const out: { name: string; step: number }[] = [];
  for (const name of await readdirOrEmpty(checkpointsDir)) {
    const m = CHECKPOINT_NAME.exec(name);
    if (m && (await exists(path.join(checkpointsDir, name, COMPLETE)))) out.push({ name, step: Number(m[1]) });
  }
  return out.sort((a, b) => a.step - b.step || a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** The newest complete checkpoint in `checkpointsDir`: the one `latest` names if it is complete, else the highest step. */
export async function latestCompleteCheckpoint(checkpointsDir: string): Promise<string | undefined> {
  try {
    const name = (await fs.readFile(path.join(checkpointsDir, LATEST), 'utf8')).trim();
    if (CHECKPOINT_NAME.test(name) && (await exists(path.join(checkpointsDir, name, COMPLETE)))) return name;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR')
      throw new Error(
        `${path.join(checkpointsDir, LATEST)} is a directory: it should be a file naming the newest checkpoint; remove it (the checkpoints are untouched)`,
      );
    if (code !== 'ENOENT') throw new Error(`cannot read ${path.join(checkpointsDir, LATEST)}: ${(err as Error).message}`, { cause: err });
  }
  return (await completeCheckpoints(checkpointsDir)).at(-1)?.name;
}

/** Refuses a checkpoint directory `dir` that does not exist or lacks its `COMPLETE` marker. */
export async function checkCompleteCheckpoint(dir: string): Promise<void> {
  if (!(await exists(dir))) throw new Error(`checkpoint ${dir} does not exist`);
  if (!(await exists(path.join(dir, COMPLETE))))
    throw new Error(`checkpoint ${dir} is incomplete (no ${COMPLETE} marker): it was being written when the run stopped`);
}
