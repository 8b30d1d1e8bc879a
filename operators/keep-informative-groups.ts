/**
 * DAPO dynamic sampling: keeps the groups whose mean accuracy lies strictly inside (minAcc, maxAcc) — a
 * group whose responses all succeed or all fail has zero advantage and teaches nothing — and asks the
 * source for another sampling round of the same step (`requestRound`) until the batch holds `batchSize`
 * groups or `maxTries` rounds were taken. Then it emits what it has (a short batch after `maxTries`;
 * groups beyond `batchSize` are discarded, as verl does) with the counts. Identity (with zero counts)
 * when `enabled` is false.
 *
 * Rounds of different steps may interleave when several steps are in flight: each step accumulates
 * on its own. `onFull(step)` is called once a step asks for no more rounds (CreditGate.seal).
 *
 * @example
 * scored$.pipe(keepInformativeGroups({ enabled: true, minAcc: 0.01, maxAcc: 0.99, maxTries: 10, batchSize: 16 }, (step) => gate.requestRound(step)))
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { concatGroups, groupMeans, selectGroups } from './groups.ts';
import type { Logger } from '../util/logger.ts';
import type { FilteredGroups, ScoredBatch } from './types.ts';

export interface KeepInformativeOptions {
  enabled: boolean;
  minAcc: number;
  maxAcc: number;
  /** sampling rounds per step at most */
  maxTries: number;
  /** groups (prompts) per emitted batch */
  batchSize: number;
  /** debug: each round's kept and dropped groups, and the step's outcome */
  logger?: Logger;
}

export function keepInformativeGroups<T extends ScoredBatch>(
  opts: KeepInformativeOptions,
  requestRound: (step: number) => void,
  onFull?: (step: number) => void,
): OperatorFunction<T, T & FilteredGroups> {
  return (source) =>
    new Observable<T & FilteredGroups>((sub) => {
      const pending = new Map<number, { kept: T | undefined; dropped: number; rounds: number }>();
      return source.subscribe({
        next(batch) {
          if (!opts.enabled) {
            onFull?.(batch.step);
            sub.next({ ...batch, droppedGroups: 0, surplusGroups: 0 });
            return;
          }
          const acc = pending.get(batch.step) ?? { kept: undefined, dropped: 0, rounds: 0 };
          const means = groupMeans(batch.accuracy, batch.groupSize);
          const keep: number[] = [];
          means.forEach((m, p) => {
            if (m > opts.minAcc && m < opts.maxAcc) keep.push(p);
          });
          const selected = selectGroups(batch, keep);
          acc.kept = acc.kept ? concatGroups(acc.kept, selected) : selected;
          acc.dropped += means.length - keep.length;
          acc.rounds++;
          const have = acc.kept.records.length;
          opts.logger?.debug(
            {
              event: 'dynamic_sampling_round',
              step: batch.step,
              round: acc.rounds,
              kept: keep.length,
              dropped: means.length - keep.length,
              have,
              want: opts.batchSize,
            },
            'dynamic sampling round',
          );
          if (have < opts.batchSize && acc.rounds < opts.maxTries) {
            pending.set(batch.step, acc);
            try {
              requestRound(batch.step);
            } catch (err) {
              sub.error(err);
            }
            return;
          }
          pending.delete(batch.step);
          onFull?.(batch.step);
          if (have < opts.batchSize)
            opts.logger?.debug(
              { event: 'dynamic_sampling_short', step: batch.step, rounds: acc.rounds, have, want: opts.batchSize },
              `dynamic sampling: ${have} of ${opts.batchSize} groups after max_tries=${opts.maxTries} rounds; the step trains on fewer`,
            );
          const full =
            have > opts.batchSize
              ? selectGroups(
                  acc.kept,
                  Array.from({ length: opts.batchSize }, (_, i) => i),
                )
              : acc.kept;
          sub.next({ ...full, rounds: acc.rounds, droppedGroups: acc.dropped, surplusGroups: Math.max(0, have - opts.batchSize) });
        },
        error: (e) => sub.error(e),
        complete: () => sub.complete(),
      });
    });
}
