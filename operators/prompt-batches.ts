/**
 * The source of the RL graph: one batch of prompts per grant of credit (see credit-gate.ts), taken from a
 * seeded, resumable `RecordStream`. Nothing is read ahead of demand, so the data cursor on each batch is
 * exactly the position after the records it carries.
 *
 * @example
 * const gate = new CreditGate({ maxStaleness: 0, maxSteps: 40 });
 * const batches$ = promptBatches(RecordStream.open(task, { split: 'train', seed: 1 }), { batchSize: 16, grants: gate.grants$, seed: 1 });
 */
import { Observable, type Subscription } from 'rxjs';
import { mixSeed } from '../util/rng.ts';
import type { RecordStream } from '../tasks/stream.ts';
import type { TaskRecord } from '../tasks/types.ts';
import type { Grant } from './credit-gate.ts';
import type { PromptBatch } from './types.ts';

export interface PromptBatchOptions {
  /** prompts per batch (`data.rollout_batch_size`) */
  batchSize: number;
  /** one batch per grant */
  grants: Observable<Grant>;
  /** run seed: each batch's seed is derived from it and the step and round */
  seed: number;
}

/** The seed of a batch: a stable function of the run seed, step and round. */
export function batchSeed(seed: number, step: number, round: number): number {
  return mixSeed(seed, `rollout/${step}/${round}`);
}

export function promptBatches(stream: RecordStream, opts: PromptBatchOptions): Observable<PromptBatch> {
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new Error(`promptBatches: batchSize must be a positive integer, got ${opts.batchSize}`);
  return new Observable<PromptBatch>((sub) => {
    let done = false;
    const s: Subscription = opts.grants.subscribe({
      next: (g) => {
        if (done) return;
        const records = [];
        const indices: number[] = [];
        for (let index = stream.peekIndex(); index !== null && records.length < opts.batchSize; index = stream.peekIndex()) {
          indices.push(index);
          records.push(stream.next().value as TaskRecord);
        }
        if (records.length === 0) {
          done = true;
          sub.complete();
          return;
        }
        sub.next({
          step: g.step,
          rounds: 1,
          records,
          indices: Int32Array.from(indices),
          cursor: stream.cursor(),
          seed: batchSeed(opts.seed, g.step, g.round),
          timing: {},
        });
        // A bounded stream (evaluation) that runs out ends the source after its last, partial batch.
        if (records.length < opts.batchSize || stream.peekIndex() === null) {
          done = true;
          sub.complete();
        }
      },
      error: (e) => sub.error(e),
      complete: () => sub.complete(),
    });
    return () => s.unsubscribe();
  });
}
