/**
 * Accuracy split the way the paper reports it: overall, vision-dependent ('high') and general ('low')
 * families, and per family.
 */
import type { VisionDependency } from './types.ts';

export interface ScoredItem {
  readonly family: string;
  readonly visionDependency: VisionDependency;
  /** 0..1 */
  readonly accuracy: number;
}

export interface AccuracyCell {
  n: number;
  /** Mean accuracy, or null when n = 0. */
  accuracy: number | null;
}

export interface AccuracyReport {
  overall: AccuracyCell;
  visionDependent: AccuracyCell;
  general: AccuracyCell;
  byFamily: Record<string, AccuracyCell>;
}

export function accuracyReport(items: Iterable<ScoredItem>): AccuracyReport {
  const sums = new Map<string, [number, number]>();
  const add = (k: string, a: number): void => {
    const s = sums.get(k) ?? [0, 0];
    s[0]++;
    s[1] += a;
    sums.set(k, s);
  };
  for (const it of items) {
    if (!Number.isFinite(it.accuracy)) throw new Error(`accuracy of a ${it.family} item is ${it.accuracy}`);
    add('*', it.accuracy);
    add(it.visionDependency === 'high' ? 'high' : 'low', it.accuracy);
    add(`f:${it.family}`, it.accuracy);
  }
  const cell = (k: string): AccuracyCell => {
    const s = sums.get(k);
    return s ? { n: s[0], accuracy: s[1] / s[0] } : { n: 0, accuracy: null };
  };
  const byFamily: Record<string, AccuracyCell> = {};
  for (const k of sums.keys()) if (k.startsWith('f:')) byFamily[k.slice(2)] = cell(k);
  return { overall: cell('*'), visionDependent: cell('high'), general: cell('low'), byFamily };
}
