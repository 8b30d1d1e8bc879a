/**
 * The numbers of a study (`study.json`): per arm and split, held-out accuracy after training, its change
 * from the starting weights and its spread over seeds; per comparison (treatment - control), the per-seed
 * paired differences, their mean with a stratified bootstrap confidence interval, their interquartile mean,
 * the probability of improvement, an exact sign-flip test and Holm's correction; and the error classes of
 * the greedy failures. The methods (algorithms/study-stats.ts):
 *
 * - Stratified bootstrap (rliable's `StratifiedBootstrap`): a split's accuracy is the prompt-weighted mean
 *   of its families' accuracies; the seeds are resampled with replacement independently within each family
 *   (the strata), and the interval is the percentile interval of the resampled statistic (rliable's
 *   default; `stats.method: bca` for bias-corrected and accelerated). For a comparison the statistic is taken
 *   over the per-seed differences, so each resample keeps the pairing of seeds.
 * - Interquartile mean: rliable's IQM (the mean of the middle 50% of seeds; scipy's trim_mean(x, 0.25)).
 * - Probability of improvement: rliable's P(X > Y) over all pairs of runs (ties count half), averaged
 *   over the split's families (its tasks), unweighted, as rliable averages over tasks.
 * - Sign-flip test: the exact two-sided permutation test of a zero mean paired difference over seeds.
 * - Holm: step-down correction over the confirmatory hypotheses, every comparison x {overall,
 *   vision-dependent, general} x {greedy, avg@k}; per-family figures and error classes are exploratory.
 */
import {
  holm,
  interquartileMean,
  mean,
  pairedTInterval,
  probabilityOfImprovement,
  sampleSd,
  signFlipTest,
  stratifiedBootstrapCI,
} from '../algorithms/study-stats.ts';
import type { DecodingReport, EvalReport } from './evaluate.ts';
import type { Study } from './study-config.ts';
import { loadStudyResults, type RunResult } from './study.ts';

export type Metric = 'greedy' | 'avg@k';
export const AGGREGATE_SPLITS = ['overall', 'vision_dependent', 'general'] as const;

export interface Interval {
  lo: number;
  hi: number;
}

export interface ArmSplit {
  /** per seed, in the study's seed order (seeds without a result are left out) */
  seeds: number[];
  values: number[];
  mean: number;
  sd: number;
  iqm: number;
  min: number;
  max: number;
  /** the starting weights' accuracy on the split */
  start: number | null;
  /** mean - start */
  change: number | null;
  ci: Interval;
}

export interface ComparisonSplit {
  seeds: number[];
  /** treatment - control, per paired seed */
  diffs: number[];
  mean: number;
  ci: Interval;
  /** the paired t interval of the mean difference (exact for normal differences; null below 2 seeds) */
  ciT: Interval | null;
  iqm: number;
  /** P(treatment > control), rliable's definition */
  probabilityOfImprovement: number;
  /** seeds where the treatment is ahead */
  wins: number;
  /** exact two-sided sign-flip test */
  p: number;
  /** Holm-adjusted p, for the confirmatory hypotheses */
  pHolm?: number;
  /** rejected at stats.alpha after Holm */
  significant?: boolean;
}

export interface ErrorSummary {
  /** mean count per class over seeds, and its share of the failures */
  classes: Record<string, { mean: number; share: number; values: number[] }>;
  failures: number;
}

export interface StudyAnalysis {
  title?: string;
  arms: string[];
  seeds: number[];
  splits: string[];
  metrics: Metric[];
  k?: number;
  evalSplit: string;
  records: number;
  method: string;
  /** arm -> metric -> split */
  perArm: Record<string, Partial<Record<Metric, Record<string, ArmSplit>>>>;
  /** the starting weights: metric -> split -> accuracy */
  start: Partial<Record<Metric, Record<string, number | null>>>;
  comparisons: {
    treatment: string;
    control: string;
    metrics: Partial<Record<Metric, Record<string, ComparisonSplit>>>;
    /** perception failures (count per run), treatment - control, if both arms classified their failures */
    perceptionErrors?: ComparisonSplit;
  }[];
  /** greedy failures by class, per arm (vision-dependent questions and all) */
  errors: Record<string, { overall?: ErrorSummary; vision_dependent?: ErrorSummary }>;
  startErrors?: { overall?: ErrorSummary; vision_dependent?: ErrorSummary };
  /** runs still missing: `${arm} seed ${seed}` */
  missing: string[];
}

interface SplitCells {
  /** family -> [records, accuracy] */
  families: Map<string, { n: number; acc: number }>;
  aggregate: Record<string, number | null>;
}

function cellsOf(d: DecodingReport): SplitCells {
  const families = new Map<string, { n: number; acc: number }>();
  for (const [f, c] of Object.entries(d.accuracy.byFamily)) if (c.accuracy !== null) families.set(f, { n: c.n, acc: c.accuracy });
  return {
    families,
    aggregate: { overall: d.accuracy.overall.accuracy, vision_dependent: d.accuracy.visionDependent.accuracy, general: d.accuracy.general.accuracy },
  };
}

function decoding(r: EvalReport, m: Metric): DecodingReport | undefined {
  return m === 'greedy' ? r.greedy : r.sampled;
}

/** The families of a split, given which families are vision-dependent. */
function familiesOf(split: string, visionFamilies: Set<string>, all: string[]): string[] {
  if (split === 'overall') return all;
  if (split === 'vision_dependent') return all.filter((f) => visionFamilies.has(f));
  if (split === 'general') return all.filter((f) => !visionFamilies.has(f));
  return all.filter((f) => `family:${f}` === split);
}

const tInterval = (d: number[], level: number): Interval | null => {
  if (d.length < 2) return null;
  const r = pairedTInterval(d, level);
  return Number.isFinite(r.lo) ? { lo: r.lo, hi: r.hi } : { lo: r.point, hi: r.point };
};

/** The failures by class of one run's greedy responses (report.errors from `papo eval --errors`). */
function errorCounts(r: EvalReport, group: 'overall' | 'vision_dependent'): Record<string, number> | undefined {
  return r.errors?.[group === 'overall' ? 'overall' : 'visionDependent']?.counts;
}

function summariseErrors(results: RunResult[], group: 'overall' | 'vision_dependent'): ErrorSummary | undefined {
  const counts = results.map((r) => errorCounts(r.report, group));
  if (!counts.length || counts.some((c) => c === undefined)) return undefined;
  const classes = [...new Set(counts.flatMap((c) => Object.keys(c!)))].sort();
  const failures = mean(counts.map((c) => Object.values(c!).reduce((a, b) => a + b, 0)));
  const out: ErrorSummary = { classes: {}, failures };
  for (const k of classes) {
    const values = counts.map((c) => c![k] ?? 0);
    out.classes[k] = { mean: mean(values), share: failures > 0 ? mean(values) / failures : 0, values };
  }
  return out;
}

/** The figures of one comparison from its per-seed paired differences, interval and probability of improvement. */
function paired(seeds: number[], diffs: number[], ci: Interval, poi: number, wins: number, level: number): ComparisonSplit {
  return {
    seeds,
    diffs,
    mean: mean(diffs),
    ci: { lo: ci.lo, hi: ci.hi },
    ciT: tInterval(diffs, level),
    iqm: interquartileMean(diffs),
    probabilityOfImprovement: poi,
    wins,
    p: signFlipTest(diffs).p,
  };
}

/** Reads a study directory's results and computes every figure of `study.json`. */
export function analyzeStudy(study: Study, dir: string, opts: { startFingerprint?: string } = {}): StudyAnalysis {
  const { start, runs } = loadStudyResults(study, dir, opts.startFingerprint);
  const st = study.config.stats;
  const boot = { level: st.level, reps: st.reps, method: st.method, seed: st.seed };
  const any = [...runs.values()].flatMap((m) => [...m.values()])[0] ?? start;
  const metrics: Metric[] = any?.report.sampled ? ['greedy', 'avg@k'] : ['greedy'];
  // Families and their vision dependency, from the reports (every run evaluates the same prompts).
  const ref = any?.report;
  const allFamilies = ref ? Object.keys(ref.greedy.accuracy.byFamily) : [];
  // which families are vision-dependent: the reports say (every run evaluates the same prompts)
  const visionFamilies = new Set(allFamilies.filter((f) => ref?.familyDependency?.[f] === 'high'));
  const splits = [...AGGREGATE_SPLITS.filter((s) => familiesOf(s, visionFamilies, allFamilies).length > 0), ...allFamilies.map((f) => `family:${f}`)];

  const missing: string[] = [];
  for (const seed of study.seeds) for (const a of study.arms) if (!runs.get(a.name)?.has(seed)) missing.push(`${a.name} seed ${seed}`);

  // The statistic of a split over a [seeds][families] matrix: the prompt-weighted mean of the family means.
  const statisticFor = (fams: string[], cells: SplitCells) => {
    const w = fams.map((f) => cells.families.get(f)?.n ?? 0);
    const total = w.reduce((a, b) => a + b, 0);
    return (m: number[][]) => {
      let s = 0;
      for (let j = 0; j < fams.length; j++) {
        let col = 0;
        for (const row of m) col += row[j];
        s += (w[j] / total) * (col / m.length);
      }
      return s;
    };
  };

  const startCells: Partial<Record<Metric, SplitCells>> = {};
  const startAcc: StudyAnalysis['start'] = {};
  for (const m of metrics) {
    const d = start && decoding(start.report, m);
    if (!d) continue;
    const c = cellsOf(d);
    startCells[m] = c;
    startAcc[m] = Object.fromEntries(splits.map((s) => [s, s.startsWith('family:') ? (c.families.get(s.slice(7))?.acc ?? null) : c.aggregate[s]]));
  }

  const splitValue = (c: SplitCells, s: string): number | null => (s.startsWith('family:') ? (c.families.get(s.slice(7))?.acc ?? null) : c.aggregate[s]);

  const perArm: StudyAnalysis['perArm'] = {};
  for (const a of study.arms) {
    const byMetric: Partial<Record<Metric, Record<string, ArmSplit>>> = {};
    const mine = study.seeds.filter((s) => runs.get(a.name)?.has(s));
    for (const m of metrics) {
      const cells = mine.map((s) => cellsOf(decoding(runs.get(a.name)!.get(s)!.report, m)!));
      if (!cells.length) continue;
      const out: Record<string, ArmSplit> = {};
      for (const s of splits) {
        const fams = familiesOf(s, visionFamilies, allFamilies);
        const values = cells.map((c) => splitValue(c, s)!);
        const matrix = cells.map((c) => fams.map((f) => c.families.get(f)!.acc));
        const ci = stratifiedBootstrapCI(matrix, statisticFor(fams, cells[0]), boot);
        const st0 = startAcc[m]?.[s] ?? null;
        const mu = mean(values);
        out[s] = {
          seeds: mine,
          values,
          mean: mu,
          sd: sampleSd(values),
          iqm: interquartileMean(values),
          min: Math.min(...values),
          max: Math.max(...values),
          start: st0,
          change: st0 === null ? null : mu - st0,
          ci: { lo: ci.lo, hi: ci.hi },
        };
      }
      byMetric[m] = out;
    }
    perArm[a.name] = byMetric;
  }

  const comparisons: StudyAnalysis['comparisons'] = study.comparisons.map(([t, c]) => {
    const seeds = study.seeds.filter((s) => runs.get(t)?.has(s) && runs.get(c)?.has(s));
    const byMetric: Partial<Record<Metric, Record<string, ComparisonSplit>>> = {};
    for (const m of metrics) {
      if (!seeds.length) continue;
      const tc = seeds.map((s) => cellsOf(decoding(runs.get(t)!.get(s)!.report, m)!));
      const cc = seeds.map((s) => cellsOf(decoding(runs.get(c)!.get(s)!.report, m)!));
      const out: Record<string, ComparisonSplit> = {};
      for (const s of splits) {
        const fams = familiesOf(s, visionFamilies, allFamilies);
        const diffs = seeds.map((_, i) => splitValue(tc[i], s)! - splitValue(cc[i], s)!);
        const dm = seeds.map((_, i) => fams.map((f) => tc[i].families.get(f)!.acc - cc[i].families.get(f)!.acc));
        const ci = stratifiedBootstrapCI(dm, statisticFor(fams, tc[0]), boot);
        const poi = probabilityOfImprovement(
          tc.map((x) => fams.map((f) => x.families.get(f)!.acc)),
          cc.map((x) => fams.map((f) => x.families.get(f)!.acc)),
        );
        out[s] = paired(seeds, diffs, ci, poi, diffs.filter((d) => d > 0).length, st.level);
      }
      byMetric[m] = out;
    }
    let perceptionErrors: ComparisonSplit | undefined;
    const pe = (arm: string, s: number) => errorCounts(runs.get(arm)!.get(s)!.report, 'vision_dependent');
    if (seeds.length && seeds.every((s) => pe(t, s) && pe(c, s))) {
      const tv = seeds.map((s) => pe(t, s)!.perception ?? 0);
      const cv = seeds.map((s) => pe(c, s)!.perception ?? 0);
      const diffs = seeds.map((_, i) => tv[i] - cv[i]);
      const ci = stratifiedBootstrapCI(
        diffs.map((d) => [d]),
        (m) => mean(m.map((r) => r[0])),
        boot,
      );
      // improvement = fewer perception errors
      const poi = probabilityOfImprovement(
        cv.map((v) => [v]),
        tv.map((v) => [v]),
      );
      perceptionErrors = paired(seeds, diffs, ci, poi, diffs.filter((d) => d < 0).length, st.level);
    }
    return { treatment: t, control: c, metrics: byMetric, perceptionErrors };
  });

  // Holm over the confirmatory hypotheses.
  const confirmatory: ComparisonSplit[] = [];
  for (const cmp of comparisons) for (const m of metrics) for (const s of AGGREGATE_SPLITS) if (cmp.metrics[m]?.[s]) confirmatory.push(cmp.metrics[m]![s]);
  if (confirmatory.length) {
    const h = holm(
      confirmatory.map((x) => x.p),
      st.alpha,
    );
    confirmatory.forEach((x, i) => {
      x.pHolm = h.adjusted[i];
      x.significant = h.rejected[i];
    });
  }

  const errors: StudyAnalysis['errors'] = {};
  for (const a of study.arms) {
    const rs = study.seeds.filter((s) => runs.get(a.name)?.has(s)).map((s) => runs.get(a.name)!.get(s)!);
    errors[a.name] = { overall: summariseErrors(rs, 'overall'), vision_dependent: summariseErrors(rs, 'vision_dependent') };
  }

  return {
    title: study.config.title,
    arms: study.arms.map((a) => a.name),
    seeds: study.seeds,
    splits,
    metrics,
    k: ref?.sampled?.k,
    evalSplit: study.config.eval.split,
    records: ref?.records ?? 0,
    method: `${st.method} stratified bootstrap (strata: question families; ${st.reps} resamples, level ${st.level}); sign-flip test (exact); Holm over ${confirmatory.length} hypotheses at ${st.alpha}`,
    perArm,
    start: startAcc,
    comparisons,
    errors,
    startErrors: start ? { overall: summariseErrors([start], 'overall'), vision_dependent: summariseErrors([start], 'vision_dependent') } : undefined,
    missing,
  };
}

const pts = (x: number | null | undefined, sign = false) => (x == null ? '-' : `${sign && x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`);

/** The error classes some arm has failures of on vision-dependent questions, in order of first appearance. */
export function errorClassesSeen(a: StudyAnalysis): string[] {
  return [
    ...new Set(
      Object.values(a.errors).flatMap((e) =>
        Object.entries(e.vision_dependent?.classes ?? {})
          .filter(([, c]) => c.mean > 0)
          .map(([k]) => k),
      ),
    ),
  ];
}

/** The study's main tables as text. */
export function formatStudy(a: StudyAnalysis): string {
  const lines: string[] = [];
  lines.push(`study${a.title ? `: ${a.title}` : ''} (${a.evalSplit} split, ${a.records} prompts; ${a.method})`);
  if (a.missing.length) lines.push(`missing runs: ${a.missing.length} (${a.missing.slice(0, 6).join(', ')}${a.missing.length > 6 ? ', ...' : ''})`);
  for (const m of a.metrics) {
    const name = m === 'greedy' ? 'greedy' : `avg@${a.k}`;
    lines.push('', `${name} accuracy after training, mean over seeds [${Math.round(100 * (a.comparisons.length ? 0.95 : 0.95))}% CI] (change from the start):`);
    lines.push(`  ${'arm'.padEnd(14)} ${'seeds'.padStart(5)}  ${AGGREGATE_SPLITS.map((s) => s.padEnd(28)).join(' ')}`);
    lines.push(`  ${'start'.padEnd(14)} ${''.padStart(5)}  ${AGGREGATE_SPLITS.map((s) => pts(a.start[m]?.[s]).padEnd(28)).join(' ')}`);
    for (const arm of a.arms) {
      const r = a.perArm[arm][m];
      if (!r) continue;
      const cell = (s: string) => (r[s] ? `${pts(r[s].mean)} [${pts(r[s].ci.lo)}, ${pts(r[s].ci.hi)}] (${pts(r[s].change, true)})` : '-');
      lines.push(`  ${arm.padEnd(14)} ${String(r.overall?.values.length ?? 0).padStart(5)}  ${AGGREGATE_SPLITS.map((s) => cell(s).padEnd(28)).join(' ')}`);
    }
  }
  for (const c of a.comparisons) {
    lines.push('', `${c.treatment} - ${c.control} (points, paired over seeds):`);
    for (const m of a.metrics) {
      const r = c.metrics[m];
      if (!r) continue;
      for (const s of AGGREGATE_SPLITS) {
        const x = r[s];
        if (!x) continue;
        lines.push(
          `  ${(m === 'greedy' ? 'greedy' : `avg@${a.k}`).padEnd(7)} ${s.padEnd(17)} ${pts(x.mean, true).padStart(6)} [${pts(x.ci.lo, true)}, ${pts(x.ci.hi, true)}]${x.ciT ? ` t [${pts(x.ciT.lo, true)}, ${pts(x.ciT.hi, true)}]` : ''}  IQM ${pts(x.iqm, true)}  P(improve) ${x.probabilityOfImprovement.toFixed(2)}  ahead on ${x.wins}/${x.seeds.length}  p ${x.p.toFixed(3)}  Holm p ${x.pHolm?.toFixed(3) ?? '-'}${x.significant ? '  *' : ''}`,
        );
      }
    }
    if (c.perceptionErrors) {
      const x = c.perceptionErrors;
      lines.push(
        `  perception errors on vision-dependent questions (count per run): ${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(1)} [${x.ci.lo.toFixed(1)}, ${x.ci.hi.toFixed(1)}], fewer on ${x.wins}/${x.seeds.length} seeds, p ${x.p.toFixed(3)}`,
      );
    }
  }
  const classes = errorClassesSeen(a);
  if (classes.length) {
    lines.push('', 'greedy failures on vision-dependent questions, mean per run (share of failures):');
    const row = (name: string, e: ErrorSummary | undefined) =>
      e &&
      lines.push(
        `  ${name.padEnd(14)} ${e.failures.toFixed(1).padStart(7)}  ${classes.map((k) => `${k} ${(e.classes[k]?.mean ?? 0).toFixed(1)} (${pts(e.classes[k]?.share)}%)`).join('  ')}`,
      );
    row('start', a.startErrors?.vision_dependent);
    for (const arm of a.arms) row(arm, a.errors[arm].vision_dependent);
  }
  return lines.join('\n');
}

/** The results of runs that `analyzeStudy` reads, for tests and the report. */
export type { RunResult };
