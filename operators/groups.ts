/**
 * Selecting and joining whole groups (a prompt and its G responses) of a scored batch: what dynamic
 * sampling and the staleness guard need. Per-prompt fields are indexed by group, per-response fields by
 * response, so a selection keeps the prompt-major layout; which fields there are, and of which kind, is the
 * batch schema's (storage/batch-schema.ts).
 */
import { batchFields, concatRows, pickRows } from '../storage/batch-schema.ts';
import type { ScoredBatch } from './types.ts';

/** The batch restricted to `groups` (prompt indices, in the order given). Reward failures are re-indexed. */
export function selectGroups<T extends ScoredBatch>(batch: T, groups: readonly number[]): T {
  const G = batch.groupSize;
  const rows = groups.flatMap((p) => Array.from({ length: G }, (_, g) => p * G + g));
  const src = batch as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...src };
  for (const f of batchFields()) if (src[f.name] !== undefined) out[f.name] = pickRows(f, src[f.name], f.per === 'prompt' ? groups : rows);
  if (typeof src.zeroVarianceGroups === 'number') {
    out.zeroVarianceGroups = groups.filter((p) => batch.rewards.subarray(p * G, (p + 1) * G).every((r) => r === batch.rewards[p * G])).length;
  }
  const newIndex = new Map(rows.map((i, j) => [i, j]));
  out.rewardFailures = batch.rewardFailures.filter((f) => newIndex.has(f.index)).map((f) => ({ ...f, index: newIndex.get(f.index)! }));
  return out as T;
}

/** `a` followed by the groups of `b` (same group size); the cursor, seed and step of `b` win, timings add up. */
export function concatGroups<T extends ScoredBatch>(a: T, b: T): T {
  if (a.groupSize !== b.groupSize) throw new Error(`concatGroups: group sizes ${a.groupSize} and ${b.groupSize} differ`);
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...y, rounds: a.rounds + b.rounds };
  for (const f of batchFields()) {
    if (x[f.name] === undefined && y[f.name] === undefined) continue;
    if (x[f.name] === undefined || y[f.name] === undefined)
      throw new Error(
        `concatGroups: step ${b.step}: field ${f.name} is on ${x[f.name] === undefined ? 'the second' : 'the first'} batch only (a stage added it to one round and not the other)`,
      );
    out[f.name] = concatRows(f, x[f.name], y[f.name]);
  }
  const offset = a.responses.length;
  out.rewardFailures = [...a.rewardFailures, ...b.rewardFailures.map((f) => ({ ...f, index: f.index + offset }))];
  const timing = { ...a.timing };
  for (const [key, s] of Object.entries(b.timing)) timing[key] = (timing[key] ?? 0) + s;
  out.timing = timing;
  return out as T;
}

/** Mean of `values` over each group of G consecutive entries. */
export function groupMeans(values: ArrayLike<number>, G: number): Float64Array {
  const P = values.length / G;
  const out = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    let s = 0;
    for (let g = 0; g < G; g++) s += values[p * G + g];
    out[p] = s / G;
  }
  return out;
}
