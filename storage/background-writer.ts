/**
 * Writes checkpoints and rollout-log steps in a worker thread, so a save does not wait for the main
 * thread (which the synchronous tfjs update keeps busy) and training does not wait for the disk.
 * Requests run one at a time in the order given; each call resolves when its write is published. A write
 * that fails rejects with `saveCheckpoint: <why>` / `appendRollout: <why>`; a writer thread that dies
 * rejects every pending and later write (util/worker-client.ts).
 *
 * @example
 * const writer = new BackgroundWriter();
 * await writer.appendRollout(runDir, record);
 * const saved = await writer.saveCheckpoint(runDir, checkpoint, { keepLast: 3 });
 * await writer.close();
 */
import { WorkerClient } from '../util/worker-client.ts';
import type { Checkpoint, SavedCheckpoint } from './checkpoints.ts';
import type { RolloutStepRecord } from './rollout-log.ts';

export interface RetainRequest {
  keepLast: number;
  metric?: string;
  higherIsBetter: boolean;
}

/** The calls the writer thread serves (writer-worker.ts). */
export interface WriterCalls {
  appendRollout(a: { runDir: string; record: RolloutStepRecord }): void;
  /** Saves, then applies retention; returns what was saved and the checkpoints removed. */
  saveCheckpoint(a: { runDir: string; checkpoint: Checkpoint; retain?: RetainRequest }): SavedCheckpoint & { removed: string[] };
}

export class BackgroundWriter {
  private readonly client = new WorkerClient<WriterCalls>(new URL('./writer-worker.ts', import.meta.url), { name: 'storage writer' });

  appendRollout(runDir: string, record: RolloutStepRecord): Promise<void> {
    return this.client.call('appendRollout', { runDir, record });
  }

  /** Saves, then applies retention (keep the newest `keepLast` and the best by `metric`). */
  saveCheckpoint(runDir: string, checkpoint: Checkpoint, retain?: RetainRequest): Promise<SavedCheckpoint & { removed: string[] }> {
    return this.client.call('saveCheckpoint', { runDir, checkpoint, retain });
  }

  /** Waits for the writes already requested, then stops the thread; later writes reject. */
  close(): Promise<void> {
    return this.client.close();
  }
}
