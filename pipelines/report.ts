/**
 * `papo report RUN [RUN ...]`: the curves that tell a PAPO run's story, as one self-contained HTML page
 * (inline SVG, no script, nothing fetched) and PNG charts. Reward and accuracy split by vision dependency,
 * kl_prcp per family group, entropy on the original and masked view, clip fractions, response length and
 * time per stage, with the steps where the loss-hacking watch fires marked on every curve; several runs
 * are overlaid (colour = run, dash = series). Charts are Vega-Lite specs (util/charts.ts) whose data is
 * the runs' metrics.jsonl as written; each spec is embedded in the page beside its picture.
 *
 * @example
 * await writeReport(['runs/grpo', 'runs/papo'], { out: 'report.html' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { from } from 'rxjs';
import { renderChart, type ChartSpec } from '../util/charts.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { watchLossHacking, type LossHackingAlarm } from '../operators/index.ts';
import { readMetrics, type MetricsLine } from './run-dir.ts';
import { lossHackingOptions, TrainConfigSchema } from './train-config.ts';

/** Greedy test accuracy, as the run logged it. */
export interface TestAccuracy {
  overall: number | null;
  visionDependent: number | null;
  general: number | null;
}

export interface RunData {
  name: string;
  dir: string;
  metrics: MetricsLine[];
  /** the loss-hacking watch over the run's metrics, with the run's thresholds */
  alarms: LossHackingAlarm[];
  preset?: string;
  outcome?: string;
  testBefore?: TestAccuracy;
  testAfter?: TestAccuracy;
}

interface Series {
  /** legend label: the verl metric name, or what the value is */
  label: string;
  value: (m: MetricsLine) => number | undefined;
}

export interface ChartDef {
  id: string;
  title: string;
  yTitle: string;
  /** series of every run; `stages` charts take theirs from the metrics' keys */
  series: (runs: readonly RunData[]) => Series[];
  /** stacked areas (one run) rather than lines */
  stacked?: boolean;
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
    id: 'time',
    title: 'Time per stage',
    yTitle: 'seconds per step',
    stacked: true,
    series: (runs) => {
      const keys = new Set<string>();
      for (const r of runs) for (const m of r.metrics) for (const k of Object.keys(m)) if (k.startsWith('timing_s/') && k !== 'timing_s/step') keys.add(k);
      return [...keys].map((k) => metric(k, k.slice('timing_s/'.length)));
    },
    missing: 'no timings',
  },
];

/** One point of a chart's data. */
export interface ChartRow {
  run: string;
  series: string;
  step: number;
  value: number;
}

export interface ChartData {
  def: ChartDef;
  rows: ChartRow[];
  /** series labels in legend order */
  labels: string[];
  spec?: ChartSpec;
}

function readJsonLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return l.trim() ? [JSON.parse(l) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
}

function testAccuracy(e: Record<string, unknown> | undefined): TestAccuracy | undefined {
  const a = e?.accuracy as Record<string, { accuracy: number | null }> | undefined;
  return a ? { overall: a.overall?.accuracy ?? null, visionDependent: a.visionDependent?.accuracy ?? null, general: a.general?.accuracy ?? null } : undefined;
}

/** A run directory's metrics, alarms and test figures. */
export function loadRun(dir: string, name = path.basename(path.resolve(dir))): RunData {
  const metricsFile = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(metricsFile)) throw new Error(`report: ${dir} has no metrics.jsonl (is it a papo train run directory?)`);
  const metrics = readMetrics(metricsFile);
  let saved: { algorithm?: { preset?: string }; trainer?: Record<string, unknown> } = {};
  const configFile = path.join(dir, 'config.json');
  if (fs.existsSync(configFile)) saved = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  // The run's own thresholds, the defaults for what it does not set.
  const trainer = { ...TrainConfigSchema.parse({}).trainer, ...saved.trainer } as {
    loss_hacking_kl_prcp: number;
    loss_hacking_accuracy_drop: number;
    loss_hacking_window: number;
    loss_hacking_entropy_rise: number;
    loss_hacking_kl_prcp_general: number;
  };
  const alarms: LossHackingAlarm[] = [];
  from(metrics.map((m) => ({ step: m.step, metrics: m })))
    .pipe(watchLossHacking(lossHackingOptions(trainer), (a) => alarms.push(a)))
    .subscribe();
  const log = readJsonLines(path.join(dir, 'log.jsonl'));
  const last = (event: string) => log.filter((e) => e.event === event).at(-1);
  return {
    name,
    dir,
    metrics,
    alarms,
    preset: saved.algorithm?.preset,
    outcome: last('train_end')?.outcome as string | undefined,
    testBefore: testAccuracy(last('test_before')),
    testAfter: testAccuracy(last('test_after')),
  };
}

/** Names that tell runs apart: directory names, or paths where two share a name. */
export function runNames(dirs: readonly string[]): string[] {
  const base = dirs.map((d) => path.basename(path.resolve(d)));
  return dirs.map((d, i) => (base.filter((b) => b === base[i]).length > 1 ? path.relative(process.cwd(), path.resolve(d)) || '.' : base[i]));
}

/** The data of each chart: one row per run, series and step with a finite value. */
export function chartData(runs: readonly RunData[]): ChartData[] {
  return CHARTS.map((def) => {
    const series = def.series(runs);
    const rows: ChartRow[] = [];
    for (const r of runs) {
      for (const m of r.metrics) {
        for (const s of series) {
          const v = s.value(m);
          if (typeof v === 'number' && Number.isFinite(v)) rows.push({ run: r.name, series: s.label, step: m.step, value: v });
        }
      }
    }
    return { def, rows, labels: series.map((s) => s.label) };
  });
}

const WIDTH = 440;
const HEIGHT = 220;

/** The Vega-Lite spec of one chart: its curves and a red rule at every loss-hacking alarm. */
export function chartSpec(c: ChartData, runs: readonly RunData[]): ChartSpec {
  const several = runs.length > 1;
  const stacked = c.def.stacked && !several;
  const seriesScale = { field: 'series', type: 'nominal', title: null, sort: c.labels, legend: { orient: 'bottom', columns: 2, labelLimit: 260 } } as const;
  const encoding = {
    x: { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1 } },
    y: { field: 'value', type: 'quantitative', title: c.def.yTitle, axis: { format: '~g' }, ...(stacked ? { stack: 'zero' } : { stack: null }) },
    ...(several
      ? {
          color: { field: 'run', type: 'nominal', title: 'run', scale: { domain: runs.map((r) => r.name) }, legend: { orient: 'bottom' } },
          ...(c.labels.length > 1 ? { strokeDash: seriesScale } : {}),
          detail: { field: 'series' },
        }
      : { color: seriesScale }),
    tooltip: [{ field: 'run' }, { field: 'series' }, { field: 'step' }, { field: 'value', format: '.4g' }],
  };
  const alarms = runs.flatMap((r) => r.alarms.map((a) => ({ run: r.name, step: a.step, message: a.message })));
  // One label per stretch of consecutive alarms of a run (the watch fires on every step while it holds).
  const labels = alarms
    .filter((a, i) => !(i > 0 && alarms[i - 1].run === a.run && alarms[i - 1].step === a.step - 1))
    .map((a) => ({ ...a, label: several ? `loss hacking? (${a.run})` : 'loss hacking?' }));
  const layers: object[] = [{ mark: stacked ? { type: 'area', opacity: 0.85 } : { type: 'line', strokeWidth: 1.6 }, encoding }];
  if (alarms.length) {
    layers.push(
      {
        data: { values: alarms },
        mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3], strokeWidth: 1.2 },
        encoding: { x: { field: 'step', type: 'quantitative' }, tooltip: [{ field: 'run' }, { field: 'message' }] },
      },
      {
        data: { values: labels },
        mark: { type: 'text', color: '#d62728', align: 'right', baseline: 'top', dx: -3, y: 2, fontSize: 10 },
        encoding: { x: { field: 'step', type: 'quantitative' }, text: { field: 'label' } },
      },
    );
  }
  return {
    title: { text: c.def.title, anchor: 'start', fontSize: 13 },
    width: WIDTH,
    height: HEIGHT,
    data: { values: c.rows },
    layer: layers,
  } as unknown as ChartSpec;
}

export interface ReportOptions {
  /** the page; PNGs go beside it as `<stem>.png` (every chart) and `<stem>-<chart>.png` */
  out: string;
  /** write the PNGs (default true) */
  png?: boolean;
  /** PNG scale factor (default 2) */
  scale?: number;
  /**
   * `out` was named by the user (`--out`): written as named, through a link there. Otherwise, and always for
   * the PNGs beside it, each file is created fresh (temporary + rename): a link planted there is replaced.
   */
  followOut?: boolean;
  /** a name per run for legends and tables (default: the directories' names) */
  names?: string[];
}

export interface ReportResult {
  html: string;
  pngs: string[];
  runs: RunData[];
  charts: ChartData[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/** Mean of a metric over the last `n` steps that have it. */
function tailMean(r: RunData, key: string, n = 5): number | undefined {
  const xs = r.metrics
    .map((m) => m[key])
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v))
    .slice(-n);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

function summaryTable(runs: readonly RunData[]): string {
  const head = [
    'run',
    'preset',
    'steps',
    'outcome',
    'test before (overall / vision / general)',
    'test after',
    'reward*',
    'accuracy vision / general*',
    'kl_prcp vision / general*',
    'loss-hacking alarms',
  ];
  const rows = runs.map((r) => {
    const t = (a?: TestAccuracy) => (a ? `${pct(a.overall)} / ${pct(a.visionDependent)} / ${pct(a.general)}` : '-');
    return [
      r.name,
      r.preset ?? '-',
      String(r.metrics.at(-1)?.step ?? 0),
      r.outcome ?? '-',
      t(r.testBefore),
      t(r.testAfter),
      num(tailMean(r, 'critic/score/mean')),
      `${num(tailMean(r, 'reward/accuracy/vision_dependent'))} / ${num(tailMean(r, 'reward/accuracy/general'))}`,
      `${num(tailMean(r, 'actor/kl_prcp/vision_dependent'), 4)} / ${num(tailMean(r, 'actor/kl_prcp/general'), 4)}`,
      r.alarms.length ? r.alarms.map((a) => `step ${a.step}`).join(', ') : 'none',
    ];
  });
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

/** Writes the page and the PNGs; returns their paths and the data every chart was drawn from. */
export async function writeReport(dirs: readonly string[], opts: ReportOptions): Promise<ReportResult> {
  if (dirs.length === 0) throw new Error('report: name at least one run directory');
  if (opts.names && (opts.names.length !== dirs.length || new Set(opts.names).size !== dirs.length))
    throw new Error(`report: --names needs ${dirs.length} distinct names, one per run, got ${opts.names.length}`);
  const names = opts.names ?? runNames(dirs);
  const runs = dirs.map((d, i) => loadRun(d, names[i]));
  if (runs.every((r) => r.metrics.length === 0)) throw new Error(`report: no steps in ${dirs.join(', ')} (metrics.jsonl is empty)`);
  const charts = chartData(runs);
  const drawn = charts.filter((c) => c.rows.length > 0);
  for (const c of drawn) c.spec = chartSpec(c, runs);
  const rendered = await Promise.all(drawn.map((c) => renderChart(c.spec!, opts.scale ?? 2)));

  const out = path.resolve(opts.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const stem = out.replace(/\.html?$/i, '');
  const pngs: string[] = [];
  if (opts.png ?? true) {
    for (const [i, c] of drawn.entries()) {
      const file = `${stem}-${c.def.id}.png`;
      await writeFileAtomic(file, rendered[i].png);
      pngs.push(file);
    }
    // Every chart on one picture, two to a row.
    const overview = await renderChart(
      {
        columns: 2,
        concat: drawn.map((c) => c.spec!),
        spacing: 24,
        resolve: { scale: { color: 'independent', strokeDash: 'independent' } },
      } as unknown as ChartSpec,
      opts.scale ?? 2,
    );
    await writeFileAtomic(`${stem}.png`, overview.png);
    pngs.unshift(`${stem}.png`);
  }

  const alarms = runs.flatMap((r) => r.alarms.map((a) => `<li><b>${esc(r.name)}</b>: ${esc(a.message)}</li>`));
  const missing = charts.filter((c) => c.rows.length === 0).map((c) => `<li>${esc(c.def.title)}: ${esc(c.def.missing)}</li>`);
  const json = (x: unknown) => JSON.stringify(x).replace(/</g, '\\u003c');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>papo report: ${esc(names.join(', '))}</title>
<style>
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 12px 0 20px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
.alarm { color: #b00; }
small { color: #666; }
</style></head><body>
<h1>papo report</h1>
<p>${runs.map((r) => `<b>${esc(r.name)}</b> <small>${esc(path.resolve(r.dir))}</small>`).join('<br>')}</p>
${summaryTable(runs)}
<p><small>* mean of the last 5 steps. kl_prcp is k3 between the sampling policy's log-probs on the original and the masked image,
per response then per family group: it should be larger where the answer needs the image.</small></p>
${alarms.length ? `<h2 class="alarm">Loss-hacking warnings</h2><ul class="alarm">${alarms.join('')}</ul>` : '<p>Loss-hacking watch: no warning.</p>'}
<div class="charts">
${drawn.map((c, i) => `<figure id="${c.def.id}">${rendered[i].svg}<script type="application/vnd.vegalite+json" data-chart="${c.def.id}">${json(c.spec)}</script></figure>`).join('\n')}
</div>
${missing.length ? `<h2>Not shown</h2><ul>${missing.join('')}</ul>` : ''}
<p><small>Charts: Vega-Lite specs (embedded after each picture, with their data) rendered to SVG by Vega. Made by papo report.</small></p>
</body></html>
`;
  if (opts.followOut) fs.writeFileSync(out, html);
  else await writeFileAtomic(out, html);
  return { html: out, pngs, runs, charts };
}
