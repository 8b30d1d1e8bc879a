/**
 * Figures split the way the paper reports them: overall, vision-dependent ('high') and general ('low')
 * families, and per family. `sumByGroup` does the split for any per-item figures (evaluation uses it for
 * format rate and length too); `accuracyReport` is the accuracy table.
 */
import type { VisionDependency } from './types.ts';

/** What places an item in its groups. */
export interface GroupedItem {
  readonly family: string;
  readonly visionDependency: VisionDependency;
}

export interface ScoredItem extends GroupedItem {
  /** 0..1 */
  readonly accuracy: number;
}

/** One value per reported group. */
export interface ByGroup<C> {
  overall: C;
  visionDependent: C;
  general: C;
  /** in the order the families first appear */
  byFamily: Record<string, C>;
}

export interface GroupSums<K extends string> {
  n: number;
  sums: Record<K, number>;
}

/**
 * Per group, the number of items and the sum of each of their figures (in item order).
 *
 * @example
 * sumByGroup(items, (it) => ({ format: it.format, length: it.length })).visionDependent; // { n: 12, sums: { format: 9, length: 140 } }
 */
export function sumByGroup<T extends GroupedItem, K extends string>(items: Iterable<T>, figures: (item: T) => Record<K, number>): ByGroup<GroupSums<K>> {
  const empty = (): GroupSums<K> => ({ n: 0, sums: {} as Record<K, number> });
  const out: ByGroup<GroupSums<K>> = { overall: empty(), visionDependent: empty(), general: empty(), byFamily: {} };
  const add = (g: GroupSums<K>, values: Record<K, number>) => {
    g.n++;
    for (const k in values) g.sums[k] = (g.sums[k] ?? 0) + values[k];
  };
  for (const it of items) {
    const values = figures(it);
    add(out.overall, values);
    add(it.visionDependency === 'high' ? out.visionDependent : out.general, values);
    add((out.byFamily[it.family] ??= empty()), values);
  }
  return out;
}

export interface AccuracyCell {
  n: number;
  /** Mean accuracy, or null when n = 0. */
  accuracy: number | null;
}

export type AccuracyReport = ByGroup<AccuracyCell>;

export function accuracyReport(items: Iterable<ScoredItem>): AccuracyReport {
  const sums = sumByGroup(items, (it) => {
    if (!Number.isFinite(it.accuracy)) throw new Error(`accuracy of a ${it.family} item is ${it.accuracy}`);
    return { accuracy: it.accuracy };
  });
  const cell = (g: GroupSums<'accuracy'>): AccuracyCell => ({ n: g.n, accuracy: g.n ? g.sums.accuracy / g.n : null });
  const byFamily: Record<string, AccuracyCell> = {};
  for (const [family, g] of Object.entries(sums.byFamily)) byFamily[family] = cell(g);
  return { overall: cell(sums.overall), visionDependent: cell(sums.visionDependent), general: cell(sums.general), byFamily };
}
