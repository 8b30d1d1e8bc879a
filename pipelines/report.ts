/**
 * `papo report RUN [RUN ...]`: the curves that tell a PAPO run's story, as one self-contained HTML page
 * (inline SVG, no script, nothing fetched) and PNG charts. Reward and accuracy split by vision dependency,
 * kl_prcp per family group, entropy on the original and masked view, the loss terms, gradient norm,
 * learning rate, clip fractions, response length, reward failures, throughput and time per stage, with the
 * steps where the loss-hacking watch fires marked on every curve; curves smoothed as TensorBoard does;
 * several runs are overlaid, a colour per run (pipelines/report-charts.ts). Charts are Vega-Lite specs
 * (util/charts.ts) whose data is the runs' metrics.jsonl as written; each spec is embedded in the page
 * beside its picture.
 *
 * @example
 * await writeReport(['runs/grpo', 'runs/papo'], { out: 'report.html' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { from } from 'rxjs';
import { renderChart, type ChartSpec } from '../util/charts.ts';
import { checkSmoothing, DEFAULT_SMOOTHING } from '../util/smoothing.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { watchLossHacking, type LossHackingAlarm } from '../operators/index.ts';
import { readMetrics } from './run-dir.ts';
import { lossHackingOptions, TrainConfigSchema } from './train-config.ts';
import { chartData, chartSpec, type ChartData, type ChartRun } from './report-charts.ts';

export { CHARTS, chartData, chartSpec, RUN_COLOURS, type ChartData, type ChartDef, type ChartRow } from './report-charts.ts';

/** Greedy test accuracy, as the run logged it. */
export interface TestAccuracy {
  overall: number | null;
  visionDependent: number | null;
  general: number | null;
}

export interface RunData extends ChartRun {
  dir: string;
  preset?: string;
  outcome?: string;
  testBefore?: TestAccuracy;
  testAfter?: TestAccuracy;
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
  /** TensorBoard's smoothing weight in [0, 1) for the curves, the raw values faint behind (default 0.6; 0: none) */
  smoothing?: number;
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

/** Reward calls that failed over the run, and in how many steps: `0`, `12 (3 steps)`, `-` when not counted. */
function rewardFailures(r: RunData): string {
  const counts = r.metrics.map((m) => m['reward/failures']).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (!counts.length) return '-';
  const total = counts.reduce((a, b) => a + b, 0);
  const steps = counts.filter((c) => c > 0).length;
  return total === 0 ? '0' : `${total} (${steps} step${steps === 1 ? '' : 's'})`;
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
    'reward failures (steps)',
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
      rewardFailures(r),
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
  const smoothing = checkSmoothing(opts.smoothing ?? DEFAULT_SMOOTHING, 'report: smoothing');
  const charts = chartData(runs, smoothing);
  const drawn = charts.filter((c) => c.rows.length > 0);
  for (const c of drawn) c.spec = chartSpec(c, runs, smoothing);
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
<p><small>Curves: ${smoothing > 0 ? `smoothed as TensorBoard does (debiased EMA, weight ${smoothing}; --smoothing), the values as logged faint behind them; the learning rate as logged` : 'the values as logged (--smoothing 0)'}; a colour per run on every chart.
Charts: Vega-Lite specs (embedded after each picture, with their data) rendered to SVG by Vega. Made by papo report.</small></p>
</body></html>
`;
  if (opts.followOut) fs.writeFileSync(out, html);
  else await writeFileAtomic(out, html);
  return { html: out, pngs, runs, charts };
}
