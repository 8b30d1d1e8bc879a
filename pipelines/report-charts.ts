/**
 * The charts of `papo report`: which metrics each one draws, their data (one row per run, series and step,
 * with TensorBoard's debiased EMA beside the value) and their Vega-Lite specs. Each run has one colour on
 * every chart (the runs' order picks it from one palette, with a legend when there are several); a chart
 * of series with different scales, or of many series, is drawn as small multiples, one panel per series
 * with its own y axis; smoothed curves are drawn over the raw ones, which stay faint behind them.
 *
 * @example
 * const charts = chartData(runs, 0.6).filter((c) => c.rows.length > 0);
 * const spec = chartSpec(charts[0], runs, 0.6);
 */
import type { ChartSpec } from '../util/charts.ts';
import { emaSmooth } from '../util/smoothing.ts';
import type { LossHackingAlarm } from '../operators/index.ts';
import type { MetricsLine } from './run-dir.ts';

/** What a chart needs of a run. */
export interface ChartRun {
  name: string;
  metrics: MetricsLine[];
  /** the loss-hacking watch over the run's metrics, with the run's thresholds */
  alarms: LossHackingAlarm[];
}

interface Series {
  /** legend or panel label: the verl metric name, or what the value is */
  label: string;
  value: (m: MetricsLine) => number | undefined;
}

export interface ChartDef {
  id: string;
  title: string;
  yTitle: string;
  /** series of every run; the `time` chart takes its from the metrics' keys */
  series: (runs: readonly ChartRun[]) => Series[];
  /** one panel per series, each with its own y scale (series of different scales, or many of them) */
  facets?: boolean;
  /** drawn as logged, never smoothed: a schedule rather than a noisy estimate */
  raw?: boolean;
  /** a point on every value: series logged every few steps only */
  points?: boolean;
  /** why a run may lack the chart's metrics */
  missing: string;
}

const metric = (key: string, label = key): Series => ({ label, value: (m) => m[key] });

/** The charts of a report, in page order. */
export const CHARTS: readonly ChartDef[] = [
  {
    id: 'reward',
    title: 'Reward and accuracy of the sampled responses',
    yTitle: 'mean over the rollout batch',
    series: () => [metric('critic/score/mean'), metric('reward/accuracy/vision_dependent'), metric('reward/accuracy/general')],
    missing: 'no reward metrics',
  },
  {
    id: 'validation',
    title: 'Greedy accuracy on the validation split',
    yTitle: 'accuracy',
    series: () => [metric('val-core/accuracy/overall'), metric('val-core/accuracy/vision_dependent'), metric('val-core/accuracy/general')],
    points: true,
    missing: 'no in-training evaluation (trainer.val_freq = 0)',
  },
  {
    id: 'kl_prcp',
    title: 'kl_prcp: k3 between the original and masked view, per family group',
    yTitle: 'mean per-token k3',
    series: () => [
      metric('actor/kl_prcp/vision_dependent'),
      metric('actor/kl_prcp/general'),
      { label: '-actor/kl_prcp_loss (all)', value: (m) => (m['actor/kl_prcp_loss'] === undefined ? undefined : -m['actor/kl_prcp_loss']) },
    ],
    missing: 'no masked view (perception_loss_weight and entropy_coef_masked are 0 and no token weighting reads it)',
  },
  {
    id: 'entropy',
    title: 'Entropy of the sampled tokens: original vs masked image',
    yTitle: 'token-mean -log p',
    series: () => [metric('actor/entropy_loss', 'actor/entropy_loss (original)'), metric('actor/aug_entropy_loss', 'actor/aug_entropy_loss (masked)')],
    missing: 'no entropy metrics',
  },
  {
    id: 'losses',
    title: 'Loss terms of the update',
    yTitle: 'mean over the update',
    series: () => ['pg_loss', 'kl_loss', 'kl_prcp_loss', 'entropy_loss', 'aug_entropy_loss', 'loss'].map((k) => metric(`actor/${k}`)),
    facets: true,
    missing: 'no update (every group had zero advantage)',
  },
  {
    id: 'grad_norm',
    title: 'Gradient norm',
    yTitle: 'global L2 norm before clipping',
    series: () => [metric('actor/grad_norm')],
    missing: 'no optimizer step',
  },
  {
    id: 'lr',
    title: 'Learning rate',
    yTitle: 'lr of the last optimizer step',
    series: () => [metric('actor/lr')],
    raw: true,
    missing: 'no optimizer step',
  },
  {
    id: 'clipping',
    title: 'PPO clip fractions',
    yTitle: 'share of tokens',
    series: () => [metric('actor/pg_clipfrac'), metric('actor/pg_clipfrac_lower')],
    missing: 'no clip metrics',
  },
  {
    id: 'length',
    title: 'Response length',
    yTitle: 'tokens',
    series: () => [metric('response_length/mean'), metric('response_length/max'), metric('response_length/min')],
    missing: 'no length metrics',
  },
  {
    id: 'reward_failures',
    title: 'Reward failures: calls that threw, timed out, crashed or returned an invalid score',
    yTitle: 'failed calls per step',
    series: () => [metric('reward/failures')],
    missing: 'no reward failure counts (runs older than the count)',
  },
  {
    id: 'throughput',
    title: 'Throughput',
    yTitle: 'tokens per second of the step',
    series: () => [metric('perf/throughput')],
    missing: 'no throughput',
  },
  {
    id: 'time',
    title: 'Time per stage (seconds per step)',
    yTitle: 'seconds',
    series: (runs) => {
      const keys = new Set<string>(['timing_s/step']);
      for (const r of runs) for (const m of r.metrics) for (const k of Object.keys(m)) if (k.startsWith('timing_s/')) keys.add(k);
      return [...keys].map((k) => metric(k, k === 'timing_s/step' ? 'step (total)' : k.slice('timing_s/'.length)));
    },
    facets: true,
    missing: 'no timings',
  },
];

/** One point of a chart's data: the value as logged, and its EMA over the run's steps. */
export interface ChartRow {
  run: string;
  series: string;
  step: number;
  value: number;
  smoothed: number;
}

export interface ChartData {
  def: ChartDef;
  rows: ChartRow[];
  /** labels of the series with data, in legend (or panel) order */
  labels: string[];
  spec?: ChartSpec;
}

/** The colours of runs 1, 2, ... (Tableau 10, Vega's default): run i has the same colour on every chart. */
export const RUN_COLOURS = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

/** The data of each chart: per run and series, the finite values in step order and their EMA with weight `smoothing`. */
export function chartData(runs: readonly ChartRun[], smoothing: number): ChartData[] {
  return CHARTS.map((def) => {
    const series = def.series(runs);
    const rows: ChartRow[] = [];
    for (const r of runs) {
      const steps = [...r.metrics].sort((a, b) => a.step - b.step);
      for (const s of series) {
        const points = steps.flatMap((m) => {
          const v = s.value(m);
          return typeof v === 'number' && Number.isFinite(v) ? [{ step: m.step, value: v }] : [];
        });
        const smoothed = def.raw
          ? points.map((p) => p.value)
          : emaSmooth(
              points.map((p) => p.value),
              smoothing,
            );
        points.forEach((p, i) => rows.push({ run: r.name, series: s.label, step: p.step, value: p.value, smoothed: smoothed[i] }));
      }
    }
    const labels = series.map((s) => s.label).filter((l) => rows.some((row) => row.series === l));
    return { def, rows, labels };
  });
}

const WIDTH = 440;
const HEIGHT = 220;
const PANEL_COLUMNS = 3;
const PANEL_WIDTH = 190;
const PANEL_HEIGHT = 110;
/** Legend symbols drawn solid, not as faint as the raw curves' layer they are taken from. */
const solidSymbols = { symbolOpacity: 1, symbolStrokeWidth: 2 };
const legendBelow = { orient: 'bottom', columns: 2, labelLimit: 260, ...solidSymbols };

/** The Vega-Lite spec of one chart: its curves and a red rule at every loss-hacking alarm. */
export function chartSpec(c: ChartData, runs: readonly ChartRun[], smoothing: number): ChartSpec {
  const several = runs.length > 1;
  const smooth = smoothing > 0 && !c.def.raw;
  const byRun = several || c.def.facets === true;
  const palette = (n: number) => Array.from({ length: n }, (_, i) => RUN_COLOURS[i % RUN_COLOURS.length]);
  const color = byRun
    ? {
        field: 'run',
        type: 'nominal',
        title: 'run',
        scale: { domain: runs.map((r) => r.name), range: palette(runs.length) },
        legend: several ? { orient: 'bottom', ...solidSymbols } : null,
      }
    : { field: 'series', type: 'nominal', title: null, sort: c.labels, scale: { domain: c.labels, range: palette(c.labels.length) }, legend: legendBelow };
  const dashed = several && !c.def.facets && c.labels.length > 1;
  const encoding = (y: 'value' | 'smoothed', yTitle: string) => ({
    x: { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1 } },
    y: { field: y, type: 'quantitative', title: yTitle, axis: { format: '~r' }, scale: { zero: false } },
    color,
    ...(dashed ? { strokeDash: { field: 'series', type: 'nominal', title: null, sort: c.labels, legend: legendBelow } } : {}),
    detail: { field: 'series' },
    tooltip: [
      { field: 'run' },
      { field: 'series' },
      { field: 'step' },
      { field: 'value', format: '.4g' },
      ...(smooth ? [{ field: 'smoothed', format: '.4g' }] : []),
    ],
  });
  const curves = (yTitle: string): object[] => [
    ...(smooth ? [{ mark: { type: 'line', strokeWidth: 1.2, opacity: 0.25 }, encoding: encoding('value', yTitle) }] : []),
    { mark: { type: 'line', strokeWidth: 1.8, ...(c.def.points ? { point: { size: 16 } } : {}) }, encoding: encoding(smooth ? 'smoothed' : 'value', yTitle) },
  ];
  const title = { text: `${c.def.title}${smooth ? ` (smoothed ${smoothing})` : ''}`, anchor: 'start', fontSize: 13 };
  if (!c.def.facets)
    return {
      title,
      width: WIDTH,
      height: HEIGHT,
      data: { values: c.rows },
      layer: [...curves(c.def.yTitle), ...alarmLayers(runs, true)],
    } as unknown as ChartSpec;
  return {
    title,
    columns: Math.min(PANEL_COLUMNS, c.labels.length),
    spacing: 16,
    concat: c.labels.map((label, i) => ({
      title: { text: label, fontSize: 11, anchor: 'start' },
      width: PANEL_WIDTH,
      height: PANEL_HEIGHT,
      data: { values: c.rows.filter((r) => r.series === label) },
      layer: [...curves(i % PANEL_COLUMNS === 0 ? c.def.yTitle : ''), ...alarmLayers(runs, i === 0)],
    })),
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  } as unknown as ChartSpec;
}

/** A red dashed rule at every alarm step, labelled once per stretch of consecutive alarms of a run. */
function alarmLayers(runs: readonly ChartRun[], labelled: boolean): object[] {
  const several = runs.length > 1;
  const alarms = runs.flatMap((r) => r.alarms.map((a) => ({ run: r.name, step: a.step, message: a.message })));
  if (!alarms.length) return [];
  // The watch fires on every step while it holds: one label per stretch.
  const labels = alarms
    .filter((a, i) => !(i > 0 && alarms[i - 1].run === a.run && alarms[i - 1].step === a.step - 1))
    .map((a) => ({ ...a, label: several ? `loss hacking? (${a.run})` : 'loss hacking?' }));
  return [
    {
      data: { values: alarms },
      mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3], strokeWidth: 1.2 },
      encoding: { x: { field: 'step', type: 'quantitative' }, tooltip: [{ field: 'run' }, { field: 'message' }] },
    },
    ...(labelled
      ? [
          {
            data: { values: labels },
            mark: { type: 'text', color: '#d62728', align: 'right', baseline: 'top', dx: -3, y: 2, fontSize: 10 },
            encoding: { x: { field: 'step', type: 'quantitative' }, text: { field: 'label' } },
          },
        ]
      : []),
  ];
}
