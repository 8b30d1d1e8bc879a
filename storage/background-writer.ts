/**
 * Writes checkpoints and rollout-log steps in a worker thread, so a save does not wait for the main
 * thread (which the synchronous tfjs update keeps busy) and training does not wait for the disk.
 * Requests run one at a time in the order given; each call resolves when its write is published.
 *
 * @example
 * const writer = new BackgroundWriter();
 * await writer.appendRollout(runDir, record);
 * const saved = await writer.saveCheckpoint(runDir, checkpoint, { keepLast: 3 });
 * await writer.close();
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../util/ts-worker.ts';
import type { Checkpoint, SavedCheckpoint } from './checkpoints.ts';
import type { RolloutStepRecord } from './rollout-log.ts';

export interface RetainRequest {
  keepLast: number;
  metric?: string;
  higherIsBetter: boolean;
}

export type WriterRequest =
  | { id: number; kind: 'rollout'; runDir: string; record: RolloutStepRecord }
  | { id: number; kind: 'checkpoint'; runDir: string; checkpoint: Checkpoint; retain?: RetainRequest };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export type WriterReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export class BackgroundWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor() {
    this.worker = startTsWorker(new URL('./writer-worker.ts', import.meta.url), null);
    this.worker.on('message', (reply: WriterReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(reply.error));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (this.pending.size) this.fail(new Error(`the storage writer thread exited (code ${code}) with ${this.pending.size} write(s) pending`));
    });
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private request<T>(req: WithoutId<WriterRequest>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  appendRollout(runDir: string, record: RolloutStepRecord): Promise<void> {
    return this.request({ kind: 'rollout', runDir, record });
  }

  /** Saves, then applies retention (keep the newest `keepLast` and the best by `metric`). */
  saveCheckpoint(runDir: string, checkpoint: Checkpoint, retain?: RetainRequest): Promise<SavedCheckpoint & { removed: string[] }> {
    return this.request({ kind: 'checkpoint', runDir, checkpoint, retain });
  }

  /** Waits for the writes already requested, then stops the thread. */
  async close(): Promise<void> {
    const drained = [...this.pending.values()].map(
      (p) =>
        new Promise<void>((resolve) => {
          const { resolve: res, reject: rej } = p;
          p.resolve = (v) => {
            res(v);
            resolve();
          };
          p.reject = (e) => {
            rej(e);
            resolve();
          };
        }),
    );
    await Promise.all(drained);
    await this.worker.terminate();
  }
}
