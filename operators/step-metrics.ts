/**
 * The per-step metrics that describe a rollout batch (plain numbers, verl's names): reward and advantage
 * statistics, response lengths, accuracy split by vision dependency, staleness, and stage timings.
 * The update adds the `actor/*` figures of the loss.
 */
import type { RolloutBatch } from './types.ts';

export type Metrics = Record<string, number>;

function stats(prefix: string, xs: ArrayLike<number>, out: Metrics): void {
  if (xs.length === 0) return;
  let s = 0;
  let max = -Infinity;
  let min = Infinity;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i];
    if (xs[i] > max) max = xs[i];
    if (xs[i] < min) min = xs[i];
  }
  out[`${prefix}/mean`] = s / xs.length;
  out[`${prefix}/max`] = max;
  out[`${prefix}/min`] = min;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/**
 * Batch metrics at update time; `version` is the policy version the batch is trained from (for staleness).
 * `response_length/clip_ratio` is the share of responses that hit the length limit (no EOS).
 */
export function batchMetrics(b: RolloutBatch, version: number): Metrics {
  const m: Metrics = {};
  stats('critic/score', b.rewards, m);
  stats('critic/rewards', b.rewards, m); // no reward shaping: rewards equal scores
  stats('critic/advantages', b.advantages, m);
  const lengths = b.responses.map((r) => r.length);
  stats('response_length', lengths, m);
  if (lengths.length) m['response_length/clip_ratio'] = lengths.filter((_, i) => !b.finished[i]).length / lengths.length;
  stats('reward/accuracy', b.accuracy, m);
  stats('reward/format', b.format, m);
  const G = b.groupSize;
  const byDep: Record<string, number[]> = { vision_dependent: [], general: [] };
  b.accuracy.forEach((a, i) => byDep[b.records[Math.floor(i / G)].visionDependency === 'high' ? 'vision_dependent' : 'general'].push(a));
  for (const [k, xs] of Object.entries(byDep)) if (xs.length) m[`reward/accuracy/${k}`] = mean(xs);
  const staleness = Array.from(b.versions, (v) => version - v);
  if (staleness.length) {
    m['version_stats/sample_staleness_avg'] = mean(staleness);
    m['version_stats/sample_staleness_max'] = Math.max(...staleness);
  }
  m['reward/failures'] = b.rewardFailures.length;
  m['data/groups'] = b.records.length;
  m['data/zero_variance_groups'] = b.zeroVarianceGroups;
  m['data/sampling_rounds'] = b.rounds;
  if (b.droppedGroups !== undefined) m['data/dynamic_sampling_dropped_groups'] = b.droppedGroups;
  if (b.surplusGroups !== undefined) m['data/dynamic_sampling_surplus_groups'] = b.surplusGroups;
  for (const [k, s] of Object.entries(b.timing)) m[`timing_s/${k}`] = s;
  return m;
}

/** Mean of each key over a list of metric records (keys missing from a record are skipped for it). */
export function meanMetrics(records: readonly Metrics[]): Metrics {
  const sums = new Map<string, [number, number]>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      const s = sums.get(k) ?? [0, 0];
      s[0] += v;
      s[1]++;
      sums.set(k, s);
    }
  }
  const out: Metrics = {};
  for (const [k, [s, n]] of sums) out[k] = s / n;
  return out;
}
