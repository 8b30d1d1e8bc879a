import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aggregateIqm,
  aggregateMean,
  aggregateProbabilityOfImprovement,
  holm,
  interquartileMean,
  mean,
  normalCdf,
  normalQuantile,
  pairedDifferenceCI,
  pairedTInterval,
  pairedTTest,
  probabilityOfImprovement,
  quantile,
  regularizedIncompleteBeta,
  signFlipTest,
  stratifiedBootstrapCI,
  stratifiedBootstrapCompareCI,
  studentTCdf,
  studentTQuantile,
  studentTTwoSidedP,
  type Interval,
} from '../../algorithms/study-stats.ts';
import { Rng } from '../../util/rng.ts';
import { assertClose, errorOf } from '../asserts.ts';

const covers = (ci: Interval, truth: number) => ci.lo <= truth && truth <= ci.hi;
/** Binomial standard error of a rate p estimated from n trials. */
const se = (p: number, n: number) => Math.sqrt((p * (1 - p)) / n);

test('IQM is scipy.stats.trim_mean(x, 0.25): floor(n / 4) values dropped from each end', () => {
  // n = 4: cut 1 each end; sorted 1 2 3 4 -> mean(2, 3)
  assert.equal(interquartileMean([4, 1, 3, 2]), 2.5);
  // n = 8: cut 2; sorted -50 0 | 1 2 3 4 | 10 100 -> 10 / 4
  assert.equal(interquartileMean([10, 0, 1, 2, 3, 100, 4, -50]), 2.5);
  // n = 10: cut floor(2.5) = 2; sorted -7 1 | 2 3 4 5 6 8 | 9 100 -> 28 / 6
  assertClose(interquartileMean([5, 1, 9, 2, 100, 3, 4, -7, 6, 8]), 28 / 6, 1e-15);
  // n = 5: cut 1 -> mean(2, 3, 4); n = 3: cut 0 -> plain mean
  assert.equal(interquartileMean([100, 2, 3, 4, 1]), 3);
  assert.equal(interquartileMean([1, 2, 9]), 4);
  assert.equal(mean([1, 2, 9]), 4);
  // rliable's aggregates on a [run][task] matrix: IQM pools all 8 scores; mean is the mean of task means
  const m = [
    [10, 0],
    [1, 2],
    [3, 100],
    [4, -50],
  ];
  assert.equal(aggregateIqm(m), 2.5);
  assert.equal(aggregateMean(m), (10 + 0 + 1 + 2 + 3 + 100 + 4 - 50) / 8);
});

test('probability of improvement: ties count half, dominance 1, identical 0.5, averaged over tasks', () => {
  // x = [1, 2, 3], y = [2, 2]: pairs (1,2) 0 0, (2,2) .5 .5, (3,2) 1 1 -> 3 / 6
  assert.equal(probabilityOfImprovement([1, 2, 3], [2, 2]), 0.5);
  // x = [3, 2], y = [1, 2, 3]: 3 vs 1 2 3 -> 1 1 .5; 2 vs 1 2 3 -> 1 .5 0 -> 4 / 6
  assertClose(probabilityOfImprovement([3, 2], [1, 2, 3]), 4 / 6, 1e-15);
  assertClose(probabilityOfImprovement([1, 2, 3], [3, 2]), 2 / 6, 1e-15);
  assert.equal(probabilityOfImprovement([5, 6, 7], [1, 2, 4.9]), 1);
  assert.equal(probabilityOfImprovement([1, 2, 4.9], [5, 6, 7]), 0);
  assert.equal(probabilityOfImprovement([0.3, 0.1, 0.2], [0.3, 0.1, 0.2]), 0.5);
  // two tasks: x dominates on task 0 (1), identical on task 1 (0.5); y has a different number of runs
  const x = [
    [0.9, 0.5],
    [0.8, 0.5],
  ];
  const y = [
    [0.1, 0.5],
    [0.2, 0.5],
    [0.3, 0.5],
  ];
  assert.equal(aggregateProbabilityOfImprovement(x, y), 0.75);
  assert.equal(aggregateProbabilityOfImprovement(y, x), 0.25);
  assert.equal(probabilityOfImprovement(x, y), 0.75);
});

test('quantile is numpy linear (type 7)', () => {
  // np.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = 1, 1.75, 2.5, 3.7, 4
  assert.equal(quantile([4, 2, 3, 1], 0), 1);
  assert.equal(quantile([4, 2, 3, 1], 0.25), 1.75);
  assert.equal(quantile([4, 2, 3, 1], 0.5), 2.5);
  assertClose(quantile([4, 2, 3, 1], 0.9), 3.7, 1e-15);
  assert.equal(quantile([4, 2, 3, 1], 1), 4);
  assert.equal(quantile([7], 0.3), 7);
});

test('Holm-Bonferroni on a textbook example', () => {
  // p = [0.01, 0.04, 0.03, 0.005], m = 4, alpha 0.05. Sorted: 0.005 (#3), 0.01 (#0), 0.03 (#2), 0.04 (#1).
  // Raw step-down products: 4 * 0.005 = 0.02, 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, 1 * 0.04 = 0.04;
  // running max: 0.02, 0.03, 0.06, 0.06. Thresholds alpha / (4, 3, 2, 1) = 0.0125, 0.0167, 0.025, 0.05:
  // 0.005 and 0.01 pass, 0.03 > 0.025 stops, so 0.04 is not rejected either (it would pass alone).
  const r = holm([0.01, 0.04, 0.03, 0.005], 0.05);
  assertClose(r.adjusted, [0.03, 0.06, 0.06, 0.02], 1e-15);
  assert.deepEqual(r.rejected, [true, false, false, true]);
  // capped at 1, ties keep their order, monotone in the sorted order
  const c = holm([0.5, 0.6, 0.5]);
  assert.deepEqual(c.adjusted, [1, 1, 1]);
  assert.deepEqual(c.rejected, [false, false, false]);
  const one = holm([0.04]);
  assert.deepEqual(one, { adjusted: [0.04], rejected: [true] });
});

test('sign-flip test: exact enumeration by hand', () => {
  // diffs [1, 2, 3]: the 8 sums are +-6, +-4, +-2, 0, 0; |s| >= 6 for 2 of them
  const r = signFlipTest([1, 2, 3]);
  assert.equal(r.method, 'exact');
  assert.equal(r.assignments, 8);
  assert.equal(r.p, 2 / 8);
  assert.equal(r.meanDiff, 2);
  // observed mean 0: every assignment is at least as extreme
  assert.equal(signFlipTest([1, -1]).p, 1);
  assert.equal(signFlipTest([0, 0, 0]).p, 1);
  assert.equal(signFlipTest([5]).p, 1);
  // float ties: diffs [0.1, 0.2, -0.3, 0.5], |sum| = 0.5. The first three give x in {+-0.6, +-0.4, +-0.2, 0, 0};
  // |x + 0.5| >= 0.5 for x in {0.6, 0.4, 0.2, 0, 0} and |x - 0.5| >= 0.5 for the mirror: 10 of 16. The two
  // x = 0 are 5.6e-17 in floats, caught only by the tie tolerance.
  assert.equal(signFlipTest([0.1, 0.2, -0.3, 0.5]).p, 10 / 16);
});

test('sign-flip test: Monte Carlo branch agrees with the exact count (n = 22 binomial case, n = 12)', () => {
  // 15 diffs of +1 and 7 of -1: under sign flips the sum is 22 - 2K with K ~ Binomial(22, 1/2), so
  // p = P(|22 - 2K| >= 8) = 2 P(K <= 7) = 2 * 280600 / 2^22 = 0.1338.
  let c = 1;
  let below = 0;
  for (let k = 0; k <= 7; k++) {
    below += c;
    c = (c * (22 - k)) / (k + 1);
  }
  const exactP = (2 * below) / 2 ** 22;
  assert.equal(below, 280600);
  const diffs = [...Array(15).fill(1), ...Array(7).fill(-1)];
  assert.equal(signFlipTest(diffs, { maxExactN: 22 }).p, exactP);
  const mc = signFlipTest(diffs, { reps: 20000, seed: 3 });
  assert.equal(mc.method, 'monte-carlo');
  assert.equal(mc.assignments, 20001);
  assert.ok(Math.abs(mc.p - exactP) < 4 * se(exactP, 20000), `MC p ${mc.p} vs exact ${exactP}`);
  // continuous diffs: forced Monte Carlo vs exact enumeration
  const rng = Rng.seeded(5);
  const d = Array.from({ length: 12 }, () => 0.3 + rng.normal());
  const exact = signFlipTest(d).p;
  const forced = signFlipTest(d, { maxExactN: 0, reps: 20000, seed: 1 }).p;
  assert.ok(Math.abs(forced - exact) < 4 * se(exact, 20000) + 1e-4, `MC p ${forced} vs exact ${exact}`);
  // large n, loosely against the normal approximation 2 (1 - Phi(|sum| / sqrt(sum d^2)))
  const big = Array.from({ length: 40 }, () => 0.25 + rng.normal());
  const z = Math.abs(big.reduce((s, v) => s + v, 0)) / Math.sqrt(big.reduce((s, v) => s + v * v, 0));
  const approx = 2 * (1 - normalCdf(z));
  const p40 = signFlipTest(big, { reps: 20000, seed: 2 }).p;
  assert.ok(Math.abs(p40 - approx) < 0.03, `n = 40: MC p ${p40} vs normal approximation ${approx}`);
});

test('sign-flip test: false-positive rate under a symmetric null, power under a large effect', () => {
  const rng = Rng.seeded(2024);
  const studies = 300;
  const alpha = 0.05;
  let fpNormal = 0;
  let fpLaplace = 0;
  let power = 0;
  for (let s = 0; s < studies; s++) {
    const normal = Array.from({ length: 10 }, () => rng.normal());
    // Laplace: heavy tails, still symmetric about 0
    const laplace = Array.from({ length: 10 }, () => (rng.float() < 0.5 ? 1 : -1) * -Math.log(1 - rng.float()));
    const shifted = Array.from({ length: 10 }, () => 1.5 + rng.normal());
    if (signFlipTest(normal).p <= alpha) fpNormal++;
    if (signFlipTest(laplace).p <= alpha) fpLaplace++;
    if (signFlipTest(shifted).p <= alpha) power++;
  }
  // The exact test has size <= alpha by construction; allow 3 binomial standard errors of 300 studies (0.038).
  const tol = 3 * se(alpha, studies);
  assert.ok(fpNormal / studies <= alpha + tol, `normal null: rejection rate ${fpNormal / studies}`);
  assert.ok(fpLaplace / studies <= alpha + tol, `Laplace null: rejection rate ${fpLaplace / studies}`);
  // effect 1.5 sd with n = 10: the t test's power is about 0.999
  assert.ok(power / studies >= 0.95, `power ${power / studies}`);
  // Monte Carlo branch under the null, n = 25
  let fpMc = 0;
  for (let s = 0; s < 100; s++) {
    const d = Array.from({ length: 25 }, () => rng.normal());
    if (signFlipTest(d, { reps: 999, seed: s }).p <= alpha) fpMc++;
  }
  assert.ok(fpMc / 100 <= alpha + 3 * se(alpha, 100), `Monte Carlo null: rejection rate ${fpMc / 100}`);
});

test('bootstrap percentile interval = type-7 quantiles of the replicates, drawn from the seeded Rng', () => {
  const x = [0.61, 0.55, 0.72, 0.58, 0.66, 0.49, 0.7, 0.63];
  const ci = stratifiedBootstrapCI(
    x.map((v) => [v]),
    aggregateMean,
    { reps: 500, seed: 9, level: 0.9 },
  );
  // the same replicates by hand: one draw per cell, rows in order
  const rng = Rng.seeded(9);
  const stats: number[] = [];
  for (let r = 0; r < 500; r++) stats.push(mean(x.map(() => x[rng.int(x.length)])));
  assert.equal(ci.point, mean(x));
  assert.equal(ci.method, 'percentile');
  assert.equal(ci.reps, 500);
  assert.equal(ci.level, 0.9);
  assertClose(ci.lo, quantile(stats, 0.05), 1e-12);
  assertClose(ci.hi, quantile(stats, 0.95), 1e-12);
});

test('BCa: z0 from the share of replicates below the point, acceleration from the jackknife', () => {
  // Right-skewed data: for the mean the jackknife acceleration is sum (x - xbar)^3 / (6 (sum (x - xbar)^2)^1.5).
  const x = [0.1, 0.2, 0.15, 0.3, 0.12, 1.5, 0.25, 0.9, 0.18, 0.22];
  const xbar = mean(x);
  const m3 = x.reduce((s, v) => s + (v - xbar) ** 3, 0);
  const m2 = x.reduce((s, v) => s + (v - xbar) ** 2, 0);
  const scores = x.map((v) => [v]);
  const bca = stratifiedBootstrapCI(scores, aggregateMean, { method: 'bca', seed: 4 });
  const pct = stratifiedBootstrapCI(scores, aggregateMean, { method: 'percentile', seed: 4 });
  assert.ok(bca.bca);
  assertClose(bca.bca.acceleration, m3 / (6 * m2 ** 1.5), 1e-12);
  assert.ok(bca.bca.acceleration > 0.05);
  // same replicates: z0 = Phi^-1(share strictly below the point)
  const rng = Rng.seeded(4);
  const stats: number[] = [];
  for (let r = 0; r < 2000; r++) stats.push(mean(x.map(() => x[rng.int(x.length)])));
  assertClose(bca.bca.z0, normalQuantile(stats.filter((s) => s < xbar).length / 2000), 1e-12);
  // right skew moves the BCa interval up relative to the percentile interval
  assert.ok(bca.lo > pct.lo && bca.hi > pct.hi, `bca [${bca.lo}, ${bca.hi}] vs percentile [${pct.lo}, ${pct.hi}]`);
  assert.equal(bca.point, pct.point);
  // symmetric data: BCa is close to the percentile interval
  const sym = [-2, -1, 0, 1, 2, -1.5, 1.5, -0.5, 0.5, 0].map((v) => [v]);
  const b2 = stratifiedBootstrapCI(sym, aggregateMean, { method: 'bca', seed: 1 });
  const p2 = stratifiedBootstrapCI(sym, aggregateMean, { seed: 1 });
  assert.equal(b2.bca?.acceleration, 0);
  assertClose(b2.lo, p2.lo, 0.1 * (p2.hi - p2.lo));
  assertClose(b2.hi, p2.hi, 0.1 * (p2.hi - p2.lo));
});

test('stratified resampling keeps each task inside its own column', () => {
  // column t holds 100 t + i: every resampled cell of column t must come from that set
  const scores = Array.from({ length: 6 }, (_, i) => [i, 100 + i, 200 + i]);
  let bad = 0;
  let calls = 0;
  stratifiedBootstrapCI(
    scores,
    (m) => {
      calls++;
      for (const row of m) row.forEach((v, t) => (bad += Math.floor(v / 100) === t && v % 100 < 6 ? 0 : 1));
      return aggregateMean(m);
    },
    { reps: 200 },
  );
  assert.equal(bad, 0);
  assert.equal(calls, 201); // the point estimate and 200 replicates
  // constant columns: the aggregate mean never moves, while an unstratified bootstrap of the pooled
  // scores would (column 0 all 0, column 1 all 1)
  const ci = stratifiedBootstrapCI(
    Array.from({ length: 5 }, () => [0, 1]),
    aggregateMean,
    { reps: 300, method: 'bca' },
  );
  assert.deepEqual([ci.point, ci.lo, ci.hi], [0.5, 0.5, 0.5]);
});

test('paired comparisons resample the same runs in both arms; independent ones do not', () => {
  const rng = Rng.seeded(8);
  // arm A = arm B + 0.05 on every seed and task: the paired difference is exactly 0.05 in every replicate
  const b = Array.from({ length: 10 }, () => [0.5 + 0.1 * rng.normal(), 0.3 + 0.1 * rng.normal()]);
  const a = b.map((row) => row.map((v) => v + 0.05));
  const diff = (x: number[][], y: number[][]) => aggregateMean(x) - aggregateMean(y);
  const paired = stratifiedBootstrapCompareCI(a, b, diff, { reps: 500 });
  assertClose([paired.point, paired.lo, paired.hi], [0.05, 0.05, 0.05], 1e-12);
  const indep = stratifiedBootstrapCompareCI(a, b, diff, { reps: 500, pairing: 'independent' });
  assert.ok(indep.hi - indep.lo > 0.05, `independent width ${indep.hi - indep.lo}`);
  // independent arms may differ in size; BCa works there too
  const c = b.slice(0, 7);
  const poi = stratifiedBootstrapCompareCI(a, c, aggregateProbabilityOfImprovement, { reps: 500, pairing: 'independent', method: 'bca' });
  assert.ok(poi.lo <= poi.point && poi.point <= poi.hi && poi.lo >= 0 && poi.hi <= 1);
  // pairedDifferenceCI is the one-stratum case
  const col = (m: number[][], t: number) => m.map((row) => row[t]);
  const p1 = pairedDifferenceCI(col(a, 0), col(b, 0), { reps: 300 });
  assertClose([p1.lo, p1.hi], [0.05, 0.05], 1e-12);
});

test('determinism: same seed, same interval; another seed, slightly different', () => {
  const rng = Rng.seeded(77);
  const scores = Array.from({ length: 10 }, () => [rng.float(), rng.float()]);
  for (const method of ['percentile', 'bca'] as const) {
    const one = stratifiedBootstrapCI(scores, aggregateIqm, { method, seed: 123 });
    const two = stratifiedBootstrapCI(scores, aggregateIqm, { method, seed: 123 });
    const other = stratifiedBootstrapCI(scores, aggregateIqm, { method, seed: 124 });
    assert.deepEqual(one, two);
    assert.notDeepEqual(one, other);
    assert.equal(one.point, other.point);
    assert.ok(Math.abs(one.lo - other.lo) < 0.2 * (one.hi - one.lo));
  }
  const d = Array.from({ length: 25 }, () => rng.normal());
  assert.deepEqual(signFlipTest(d, { seed: 5, reps: 500 }), signFlipTest(d, { seed: 5, reps: 500 }));
});

test('coverage: 95% intervals of a normal mean with 10 seeds (percentile and BCa)', () => {
  // 400 synthetic studies of n = 10 seeds from N(0.6, 0.1^2). Both intervals use the plug-in sd (divisor n) and
  // normal rather than t quantiles, so at n = 10 they under-cover: about P(|T_9| <= 1.96 sqrt(0.9)) = 0.904
  // (computed below), not 0.95. Accept that value +- 4 standard errors of 400 studies (+- 0.06), and at most
  // 0.95 + 3 SE: an interval that covered much more than nominal would be suspect too.
  const mu = 0.6;
  const studies = 400;
  const expected = 1 - studentTTwoSidedP(normalQuantile(0.975) * Math.sqrt(0.9), 9);
  assertClose(expected, 0.904, 0.002);
  const rng = Rng.seeded(31);
  let pct = 0;
  let bca = 0;
  let paired = 0;
  for (let s = 0; s < studies; s++) {
    const x = Array.from({ length: 10 }, () => [mu + 0.1 * rng.normal()]);
    if (covers(stratifiedBootstrapCI(x, aggregateMean, { seed: s }), mu)) pct++;
    if (covers(stratifiedBootstrapCI(x, aggregateMean, { seed: s, method: 'bca' }), mu)) bca++;
    // pairedDifferenceCI: the difference of two correlated arms has mean 0.05
    const base = x.map((row) => row[0]);
    const arm = base.map((v) => v + 0.05 + 0.03 * rng.normal());
    if (covers(pairedDifferenceCI(arm, base, { seed: s, reps: 1000 }), 0.05)) paired++;
  }
  for (const [name, hits] of [
    ['percentile', pct],
    ['bca', bca],
    ['pairedDifferenceCI', paired],
  ] as const) {
    const rate = hits / studies;
    assert.ok(Math.abs(rate - expected) <= 4 * se(expected, studies), `${name}: coverage ${rate}, expected about ${expected.toFixed(3)}`);
    assert.ok(rate <= 0.95 + 3 * se(0.95, studies), `${name}: coverage ${rate}`);
  }
});

test('coverage: stratified bootstrap of the aggregate mean over 3 tasks of different means and spreads', () => {
  // tasks ~ N(0.2, 0.05^2), N(0.5, 0.15^2), uniform(0.6, 1.0) (mean 0.8, sd 0.115); aggregate = mean of task
  // means = 0.5. The per-task variances add up to a variance estimate with more effective degrees of freedom
  // than one task's, so coverage lies between the n = 10 one-task value (0.904) and the plug-in normal limit
  // P(|Z| <= 1.96 sqrt(0.9)) = 0.937; accept 0.86 .. 0.97 (about +-3 SE of 300 studies around that range).
  const truth = (0.2 + 0.5 + 0.8) / 3;
  const studies = 300;
  const rng = Rng.seeded(99);
  let pct = 0;
  let bca = 0;
  for (let s = 0; s < studies; s++) {
    const scores = Array.from({ length: 10 }, () => [0.2 + 0.05 * rng.normal(), 0.5 + 0.15 * rng.normal(), 0.6 + 0.4 * rng.float()]);
    if (covers(stratifiedBootstrapCI(scores, aggregateMean, { seed: s }), truth)) pct++;
    if (covers(stratifiedBootstrapCI(scores, aggregateMean, { seed: s, method: 'bca' }), truth)) bca++;
  }
  for (const rate of [pct / studies, bca / studies]) assert.ok(rate >= 0.86 && rate <= 0.97, `coverage ${rate} (percentile ${pct}, bca ${bca} of ${studies})`);
});

test('special functions: normal CDF and quantile, Student t, incomplete beta', () => {
  assertClose(normalCdf(0), 0.5, 1e-16);
  assertClose(normalCdf(-1), 0.15865525393145707, { rel: 1e-13 });
  assertClose(normalCdf(1.959963984540054), 0.975, 1e-14);
  assertClose(normalCdf(-5), 2.866515718791939e-7, { rel: 1e-12 });
  assertClose(normalQuantile(0.975), 1.959963984540054, 1e-13);
  assertClose(normalQuantile(0.025), -1.959963984540054, 1e-13);
  assertClose(normalQuantile(0.5), 0, 1e-15);
  assertClose(normalQuantile(1e-10), -6.361340902404056, { rel: 1e-12 });
  for (const p of [1e-6, 0.01, 0.3, 0.77, 0.999]) assertClose(normalCdf(normalQuantile(p)), p, { rel: 1e-13 });
  // closed forms: df = 1 (Cauchy) P(|T| > t) = 1 - 2 atan(t) / pi; df = 2: 1 - t / sqrt(2 + t^2)
  for (const t of [0.1, 1, 3, 20]) {
    assertClose(studentTTwoSidedP(t, 1), 1 - (2 * Math.atan(t)) / Math.PI, { rel: 1e-12, abs: 1e-15 });
    assertClose(studentTTwoSidedP(-t, 2), 1 - t / Math.sqrt(2 + t * t), { rel: 1e-12, abs: 1e-15 });
  }
  // tables: t_{0.975, 9} = 2.262157162798205, t_{0.995, 30} = 2.7499956535672254
  assertClose(studentTTwoSidedP(2.262157162798205, 9), 0.05, 1e-10);
  assertClose(studentTCdf(2.7499956535672254, 30), 0.995, 1e-10);
  assertClose(studentTCdf(-2.7499956535672254, 30), 0.005, 1e-10);
  // large df approaches the normal
  assertClose(studentTCdf(1.959963984540054, 1e6), 0.975, 1e-6);
  // I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b
  assertClose(regularizedIncompleteBeta(0.3, 2.5, 1), 0.3 ** 2.5, 1e-14);
  assertClose(regularizedIncompleteBeta(0.3, 1, 4), 1 - 0.7 ** 4, 1e-14);
});

test('paired t test: hand-computed t and p', () => {
  // d = [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2) = 3.873, df 3
  const r = pairedTTest([1, 2, 3, 4]);
  assertClose(r.mean, 2.5, 1e-15);
  assertClose(r.sd, Math.sqrt(5 / 3), 1e-15);
  assertClose(r.t, 5 / Math.sqrt(5 / 3), 1e-14);
  assert.equal(r.df, 3);
  // scipy.stats.ttest_1samp([1, 2, 3, 4], 0).pvalue = 0.030466291662170977
  assertClose(r.p, 0.030466291662170977, { rel: 1e-9 });
  assert.deepEqual(pairedTTest([0, 0, 0]), { t: 0, df: 2, p: 1, mean: 0, sd: 0 });
  assert.equal(pairedTTest([0.2, 0.2]).p, 0);
});

test('inputs are validated with clear messages', () => {
  assert.match(errorOf(() => interquartileMean([])).message, /empty/);
  assert.match(errorOf(() => mean([1, Number.NaN])).message, /x\[1\] is NaN/);
  assert.match(errorOf(() => probabilityOfImprovement([1], [])).message, /y is empty/);
  assert.match(errorOf(() => pairedDifferenceCI([1, 2], [1])).message, /equal lengths/);
  assert.match(errorOf(() => pairedDifferenceCI([1, Number.NaN], [1, 2])).message, /not a finite number/);
  assert.match(errorOf(() => stratifiedBootstrapCI([], aggregateMean)).message, /no runs/);
  assert.match(errorOf(() => stratifiedBootstrapCI([[1, 2], [3]], aggregateMean)).message, /scores\[1\] has 1 tasks, expected 2/);
  assert.match(errorOf(() => stratifiedBootstrapCI([[1], [2]], aggregateMean, { level: 95 })).message, /level must be in \(0, 1\)/);
  assert.match(errorOf(() => stratifiedBootstrapCI([[1], [2]], aggregateMean, { reps: 0 })).message, /reps must be a positive integer/);
  assert.match(errorOf(() => stratifiedBootstrapCI([[1], [2]], () => Number.NaN)).message, /statistic returned NaN/);
  assert.match(errorOf(() => stratifiedBootstrapCI([[1]], aggregateMean, { method: 'bca' })).message, /at least 2 runs/);
  assert.match(errorOf(() => stratifiedBootstrapCompareCI([[1], [2]], [[1]], (x, y) => aggregateMean(x) - aggregateMean(y))).message, /same number of runs/);
  assert.match(errorOf(() => stratifiedBootstrapCompareCI([[1, 2]], [[1]], aggregateProbabilityOfImprovement)).message, /different numbers of tasks/);
  assert.match(errorOf(() => aggregateProbabilityOfImprovement([[1, 2]], [[1]])).message, /2 tasks, y has 1/);
  assert.match(errorOf(() => probabilityOfImprovement([[1]], [1] as unknown as number[][])).message, /not one of each/);
  assert.match(errorOf(() => signFlipTest([])).message, /empty/);
  assert.match(errorOf(() => signFlipTest([1, Number.POSITIVE_INFINITY])).message, /Infinity, not a finite number/);
  assert.match(errorOf(() => holm([0.2, 1.5])).message, /not a probability/);
  assert.match(errorOf(() => holm([0.2], 0)).message, /alpha/);
  assert.match(errorOf(() => pairedTTest([1])).message, /at least 2/);
  assert.match(errorOf(() => quantile([1, 2], 1.5)).message, /q must be in/);
});

test('Student t quantiles and the paired t interval match hand and closed-form values', () => {
  // df = 1 is the Cauchy: quantile tan(pi (q - 1/2)); df = 2: (2q - 1) / sqrt(2 q (1 - q))
  for (const q of [0.025, 0.1, 0.5, 0.9, 0.975]) {
    assert.ok(Math.abs(studentTQuantile(q, 1) - Math.tan(Math.PI * (q - 0.5))) < 1e-8);
    assert.ok(Math.abs(studentTQuantile(q, 2) - (2 * q - 1) / Math.sqrt(2 * q * (1 - q))) < 1e-9);
  }
  // t(0.975, 9) = 2.2621571627982 (tables)
  assert.ok(Math.abs(studentTQuantile(0.975, 9) - 2.2621571627982) < 1e-9);
  // d = [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), t(0.975, 3) = 3.1824463052837
  const r = pairedTInterval([1, 2, 3, 4]);
  const half = 3.1824463052837 * (Math.sqrt(5 / 3) / 2);
  assert.ok(Math.abs(r.lo - (2.5 - half)) < 1e-9 && Math.abs(r.hi - (2.5 + half)) < 1e-9);
  assert.throws(() => studentTQuantile(1, 3), /0 < q < 1/);
});
