/**
 * Selecting and joining whole groups (a prompt and its G responses) of a scored batch: what dynamic
 * sampling and the staleness guard need. Per-prompt fields are indexed by group, per-response fields by
 * response, so a selection keeps the prompt-major layout.
 */
import type { ScoredBatch } from './types.ts';

const PER_RESPONSE_ARRAYS = ['responses', 'oldLogprobs', 'texts'] as const;
const PER_RESPONSE_TYPED = ['finished', 'versions', 'rewards', 'accuracy', 'format'] as const;
// Added by later stages; the update's staleness guard selects from a batch that has them.
const OPTIONAL_PER_RESPONSE_ARRAYS = ['maskedLogprobs', 'refLogprobs'] as const;
const OPTIONAL_PER_RESPONSE_TYPED = ['advantages'] as const;
const OPTIONAL_PER_PROMPT_ARRAYS = ['maskedImages'] as const;

/** The batch restricted to `groups` (prompt indices, in the order given). Reward failures are re-indexed. */
export function selectGroups<T extends ScoredBatch>(batch: T, groups: readonly number[]): T {
  const G = batch.groupSize;
  const rows = groups.flatMap((p) => Array.from({ length: G }, (_, g) => p * G + g));
  const out = { ...batch, records: groups.map((p) => batch.records[p]), indices: Int32Array.from(groups, (p) => batch.indices[p]) } as unknown as Record<
    string,
    unknown
  >;
  for (const k of PER_RESPONSE_ARRAYS) out[k] = rows.map((i) => batch[k][i]);
  for (const k of PER_RESPONSE_TYPED) {
    const src = batch[k];
    const dst = new (src.constructor as new (n: number) => typeof src)(rows.length);
    rows.forEach((i, j) => (dst[j] = src[i]));
    out[k] = dst;
  }
  const src = batch as unknown as Record<string, unknown>;
  for (const k of OPTIONAL_PER_RESPONSE_ARRAYS) if (src[k]) out[k] = rows.map((i) => (src[k] as readonly unknown[])[i]);
  for (const k of OPTIONAL_PER_RESPONSE_TYPED) if (src[k]) out[k] = Float32Array.from(rows, (i) => (src[k] as Float32Array)[i]);
  for (const k of OPTIONAL_PER_PROMPT_ARRAYS) if (src[k]) out[k] = groups.map((p) => (src[k] as readonly unknown[])[p]);
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
  const offset = a.responses.length;
  const indices = new Int32Array(a.indices.length + b.indices.length);
  indices.set(a.indices);
  indices.set(b.indices, a.indices.length);
  const out = { ...b, records: [...a.records, ...b.records], indices, rounds: a.rounds + b.rounds } as unknown as Record<string, unknown>;
  for (const k of PER_RESPONSE_ARRAYS) out[k] = [...a[k], ...b[k]];
  for (const k of PER_RESPONSE_TYPED) {
    const dst = new (a[k].constructor as new (n: number) => (typeof a)[typeof k])(offset + b[k].length);
    dst.set(a[k] as never);
    dst.set(b[k] as never, offset);
    out[k] = dst;
  }
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
