/**
 * The report of a study: `study.json` (pipelines/study-analysis.ts), and a self-contained page
 * (`study.html`: tables, inline SVG, each chart's Vega-Lite spec embedded) with PNGs beside it:
 * - `study-diffs.png`: per comparison, every seed's paired difference (dots) with the mean and its
 *   confidence interval (bar), per split and metric;
 * - `study-arms.png`: every run's accuracy after training (dots) with each arm's mean and interval;
 * - `study-curves.png`: the arms' learning curves, mean over seeds with a band of +-1 standard deviation.
 * Files are written whole (temporary name, then rename), so a link planted in their place is replaced,
 * never written through.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mean, sampleSd } from '../algorithms/study-stats.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { renderChart, type ChartSpec } from '../util/charts.ts';
import { readMetrics } from './run-dir.ts';
import { AGGREGATE_SPLITS, errorClassesSeen, type StudyAnalysis } from './study-analysis.ts';
import type { Study } from './study-config.ts';
import { studyPaths, studyRuns } from './study.ts';

/** Per-step metrics drawn as learning curves (verl names), with their titles. */
export const CURVES: readonly { key: string; title: string }[] = [
  { key: 'critic/score/mean', title: 'reward (mean over the rollout batch)' },
  { key: 'reward/accuracy/vision_dependent', title: 'sampled accuracy, vision-dependent' },
  { key: 'reward/accuracy/general', title: 'sampled accuracy, general' },
  { key: 'actor/kl_prcp/vision_dependent', title: 'kl_prcp, vision-dependent' },
  { key: 'actor/entropy_loss', title: 'entropy (-log-prob of sampled tokens), original image' },
  { key: 'response_length/mean', title: 'response length' },
];

export interface CurvePoint {
  arm: string;
  metric: string;
  step: number;
  mean: number;
  lo: number;
  hi: number;
  seeds: number;
}

/** Mean and +-1 sd over seeds of each curve metric, per arm and step (steps where at least one run has it). */
export function learningCurves(study: Study, dir: string): CurvePoint[] {
  const acc = new Map<string, number[]>();
  for (const r of studyRuns(study, dir)) {
    const file = path.join(r.dir, 'metrics.jsonl');
    if (!fs.existsSync(file)) continue;
    for (const line of readMetrics(file))
      for (const c of CURVES) {
        const v = line[c.key];
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        const k = JSON.stringify([r.arm.name, c.key, line.step]);
        if (!acc.has(k)) acc.set(k, []);
        acc.get(k)!.push(v);
      }
  }
  const out: CurvePoint[] = [];
  for (const [k, xs] of acc) {
    const [arm, metric, step] = JSON.parse(k) as [string, string, number];
    const m = mean(xs);
    const s = sampleSd(xs);
    out.push({ arm, metric, step, mean: m, lo: m - s, hi: m + s, seeds: xs.length });
  }
  return out.sort((a, b) => a.arm.localeCompare(b.arm) || a.metric.localeCompare(b.metric) || a.step - b.step);
}

const SPLIT_TITLE: Record<string, string> = { overall: 'overall', vision_dependent: 'vision-dependent', general: 'general' };
const metricName = (a: StudyAnalysis, m: string) => (m === 'greedy' ? 'greedy' : `avg@${a.k}`);

/** Per-seed paired differences (dots) and the mean with its interval, per comparison. */
export function diffsSpec(a: StudyAnalysis): ChartSpec | undefined {
  const dots: object[] = [];
  const bars: object[] = [];
  for (const c of a.comparisons)
    for (const m of a.metrics)
      for (const s of AGGREGATE_SPLITS) {
        const x = c.metrics[m]?.[s];
        if (!x) continue;
        const row = `${SPLIT_TITLE[s]}, ${metricName(a, m)}`;
        const comparison = `${c.treatment} - ${c.control}`;
        x.diffs.forEach((d, i) =>
          dots.push({ comparison, row, seed: x.seeds[i], diff: 100 * d, jitter: x.seeds.length > 1 ? i / (x.seeds.length - 1) - 0.5 : 0 }),
        );
        bars.push({ comparison, row, mean: 100 * x.mean, lo: 100 * x.ci.lo, hi: 100 * x.ci.hi, p: x.pHolm ?? x.p });
      }
  if (!dots.length) return undefined;
  const y = { field: 'row', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } };
  return {
    title: { text: 'Paired differences per seed (points), mean and confidence interval', anchor: 'start', fontSize: 13 },
    facet: { row: { field: 'comparison', type: 'nominal', title: null, header: { labelFontSize: 12, labelFontWeight: 'bold' } } },
    data: { values: [...dots.map((d) => ({ ...d, kind: 'seed' })), ...bars.map((b) => ({ ...b, kind: 'mean' }))] },
    spec: {
      width: 460,
      height: { step: 26 },
      layer: [
        { mark: { type: 'rule', color: '#999', strokeDash: [3, 3] }, encoding: { x: { datum: 0 } } },
        {
          transform: [{ filter: "datum.kind === 'seed'" }],
          mark: { type: 'point', filled: true, opacity: 0.55, size: 30, color: '#1f77b4' },
          encoding: {
            x: { field: 'diff', type: 'quantitative', title: 'treatment - control (points of accuracy)' },
            y,
            yOffset: { field: 'jitter', type: 'quantitative', scale: { domain: [-0.5, 0.5], range: [-6, 6] } },
            tooltip: [{ field: 'seed' }, { field: 'diff', format: '.1f' }],
          },
        },
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'rule', strokeWidth: 2.5, color: '#d62728' },
          encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, y },
        },
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'tick', thickness: 3, size: 18, color: '#d62728' },
          encoding: {
            x: { field: 'mean', type: 'quantitative' },
            y,
            tooltip: [
              { field: 'mean', format: '.2f' },
              { field: 'lo', format: '.2f' },
              { field: 'hi', format: '.2f' },
              { field: 'p', format: '.3f' },
            ],
          },
        },
      ],
    },
  } as unknown as ChartSpec;
}

/** Every run's accuracy after training, and each arm's mean and interval, per split. */
export function armsSpec(a: StudyAnalysis): ChartSpec | undefined {
  const rows: object[] = [];
  for (const arm of a.arms)
    for (const m of a.metrics)
      for (const s of AGGREGATE_SPLITS) {
        const x = a.perArm[arm]?.[m]?.[s];
        if (!x) continue;
        const panel = `${SPLIT_TITLE[s]}, ${metricName(a, m)}`;
        x.values.forEach((v, i) => rows.push({ kind: 'seed', arm, panel, seed: x.seeds[i], acc: 100 * v }));
        rows.push({ kind: 'mean', arm, panel, acc: 100 * x.mean, lo: 100 * x.ci.lo, hi: 100 * x.ci.hi });
        if (x.start !== null) rows.push({ kind: 'start', arm, panel, acc: 100 * x.start });
      }
  if (!rows.length) return undefined;
  const panels = a.metrics.flatMap((m) => AGGREGATE_SPLITS.map((s) => `${SPLIT_TITLE[s]}, ${metricName(a, m)}`));
  const y = { field: 'arm', type: 'nominal', title: null, sort: a.arms, axis: { labelLimit: 200 } };
  return {
    title: { text: 'Accuracy after training: runs (points), arm mean and interval; dashed: the starting weights', anchor: 'start', fontSize: 13 },
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', title: null, sort: panels },
    columns: 3,
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: 230,
      height: { step: 24 },
      layer: [
        {
          transform: [{ filter: "datum.kind === 'start'" }],
          mark: { type: 'rule', color: '#999', strokeDash: [3, 3] },
          encoding: { x: { field: 'acc', type: 'quantitative', aggregate: 'mean' } },
        },
        {
          transform: [{ filter: "datum.kind === 'seed'" }],
          mark: { type: 'point', filled: true, opacity: 0.5, size: 26 },
          encoding: {
            x: { field: 'acc', type: 'quantitative', title: 'accuracy (%)', scale: { zero: false } },
            y,
            color: { field: 'arm', type: 'nominal', legend: null },
            tooltip: [{ field: 'arm' }, { field: 'seed' }, { field: 'acc', format: '.1f' }],
          },
        },
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'rule', strokeWidth: 2.5, color: '#222' },
          encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, y },
        },
        {
          transform: [{ filter: "datum.kind === 'mean'" }],
          mark: { type: 'tick', thickness: 3, size: 16, color: '#222' },
          encoding: { x: { field: 'acc', type: 'quantitative' }, y },
        },
      ],
    },
  } as unknown as ChartSpec;
}

/** The arms' learning curves: mean over seeds, band +-1 sd; one panel per metric. */
export function curvesSpec(points: CurvePoint[], arms: string[]): ChartSpec | undefined {
  if (!points.length) return undefined;
  const titles = Object.fromEntries(CURVES.map((c) => [c.key, c.title]));
  return {
    title: { text: 'Learning curves: mean over seeds, band +-1 standard deviation', anchor: 'start', fontSize: 13 },
    data: { values: points.map((p) => ({ ...p, panel: titles[p.metric] ?? p.metric })) },
    facet: { field: 'panel', type: 'nominal', title: null, sort: CURVES.map((c) => c.title) },
    columns: 3,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 160,
      layer: [
        {
          mark: { type: 'area', opacity: 0.18 },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'step' },
            y: { field: 'lo', type: 'quantitative', title: null, scale: { zero: false } },
            y2: { field: 'hi' },
            color: { field: 'arm', type: 'nominal', scale: { domain: arms }, legend: { orient: 'bottom', title: 'arm' } },
          },
        },
        {
          mark: { type: 'line', strokeWidth: 1.6 },
          encoding: {
            x: { field: 'step', type: 'quantitative' },
            y: { field: 'mean', type: 'quantitative' },
            color: { field: 'arm', type: 'nominal', scale: { domain: arms } },
            tooltip: [{ field: 'arm' }, { field: 'step' }, { field: 'mean', format: '.4g' }, { field: 'seeds' }],
          },
        },
      ],
    },
  } as unknown as ChartSpec;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const pts = (x: number | null | undefined, sign = false) => (x == null ? '-' : `${sign && x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`);

function table(head: string[], rows: string[][]): string {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

function tables(a: StudyAnalysis): string {
  const parts: string[] = [];
  for (const m of a.metrics) {
    const rows = [['start', '-', ...a.splits.map((s) => pts(a.start[m]?.[s]))]];
    for (const arm of a.arms) {
      const r = a.perArm[arm]?.[m];
      if (!r) continue;
      rows.push([
        arm,
        String(r.overall?.values.length ?? 0),
        ...a.splits.map((s) =>
          r[s] ? `${pts(r[s].mean)} [${pts(r[s].ci.lo)}, ${pts(r[s].ci.hi)}] sd ${pts(r[s].sd)}, change ${pts(r[s].change, true)}` : '-',
        ),
      ]);
    }
    parts.push(
      `<h3>${esc(metricName(a, m))} accuracy after training (%, mean over seeds [interval], sd, change from the start)</h3>`,
      table(['arm', 'seeds', ...a.splits], rows),
    );
  }
  for (const c of a.comparisons) {
    const rows: string[][] = [];
    for (const m of a.metrics)
      for (const s of a.splits) {
        const x = c.metrics[m]?.[s];
        if (!x) continue;
        rows.push([
          metricName(a, m),
          s,
          `${pts(x.mean, true)} [${pts(x.ci.lo, true)}, ${pts(x.ci.hi, true)}]`,
          x.ciT ? `[${pts(x.ciT.lo, true)}, ${pts(x.ciT.hi, true)}]` : '-',
          pts(x.iqm, true),
          x.probabilityOfImprovement.toFixed(2),
          `${x.wins}/${x.seeds.length}`,
          x.p.toFixed(3),
          x.pHolm === undefined ? 'exploratory' : `${x.pHolm.toFixed(3)}${x.significant ? ' (significant)' : ''}`,
          x.diffs.map((d) => pts(d, true)).join(' '),
        ]);
      }
    parts.push(
      `<h3>${esc(c.treatment)} - ${esc(c.control)} (points, paired by seed)</h3>`,
      table(['metric', 'split', 'mean [bootstrap interval]', 't interval', 'IQM', 'P(improvement)', 'ahead', 'p (sign-flip)', 'Holm p', 'per seed'], rows),
    );
    if (c.perceptionErrors) {
      const x = c.perceptionErrors;
      parts.push(
        `<p>Perception errors on vision-dependent questions, count per run, ${esc(c.treatment)} - ${esc(c.control)}: ${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(1)} [${x.ci.lo.toFixed(1)}, ${x.ci.hi.toFixed(1)}], fewer on ${x.wins} of ${x.seeds.length} seeds, p ${x.p.toFixed(3)} (exploratory).</p>`,
      );
    }
  }
  const classes = errorClassesSeen(a);
  if (classes.length) {
    const rows: string[][] = [];
    const add = (name: string, e?: { failures: number; classes: Record<string, { mean: number; share: number }> }) =>
      e && rows.push([name, e.failures.toFixed(1), ...classes.map((k) => `${(e.classes[k]?.mean ?? 0).toFixed(1)} (${pts(e.classes[k]?.share ?? 0)}%)`)]);
    add('start', a.startErrors?.vision_dependent);
    for (const arm of a.arms) add(arm, a.errors[arm]?.vision_dependent);
    parts.push(
      '<h3>Greedy failures on vision-dependent questions by class, mean per run (share of failures)</h3>',
      table(['arm', 'failures', ...classes], rows),
    );
  }
  return parts.join('\n');
}

export interface StudyReportResult {
  json: string;
  html: string;
  pngs: string[];
}

/** Writes study.json, study.html and the PNG charts into the study directory. */
export async function writeStudyReport(study: Study, dir: string, a: StudyAnalysis, opts: { png?: boolean; scale?: number } = {}): Promise<StudyReportResult> {
  const p = studyPaths(dir);
  fs.mkdirSync(dir, { recursive: true });
  await writeFileAtomic(p.json, `${JSON.stringify(a, null, 1)}\n`);
  const charts: [string, ChartSpec | undefined][] = [
    ['diffs', diffsSpec(a)],
    ['arms', armsSpec(a)],
    ['curves', curvesSpec(learningCurves(study, dir), a.arms)],
  ];
  const drawn = charts.filter((c): c is [string, ChartSpec] => c[1] !== undefined);
  const rendered = await Promise.all(drawn.map(([, spec]) => renderChart(spec, opts.scale ?? 2)));
  const pngs: string[] = [];
  if (opts.png ?? true)
    for (let i = 0; i < drawn.length; i++) {
      const file = path.join(dir, `study-${drawn[i][0]}.png`);
      await writeFileAtomic(file, rendered[i].png);
      pngs.push(file);
    }
  const json = (x: unknown) => JSON.stringify(x).replace(/</g, '\\u003c');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>papo study${a.title ? `: ${esc(a.title)}` : ''}</title>
<style>
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0 18px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
th { background: #f3f3f3; }
small { color: #666; }
</style></head><body>
<h1>papo study${a.title ? `: ${esc(a.title)}` : ''}</h1>
<p>Arms ${a.arms.map((x) => `<b>${esc(x)}</b>`).join(', ')}; seeds ${esc(a.seeds.join(', '))}; held-out ${esc(a.evalSplit)} split, ${a.records} prompts.
${a.missing.length ? `<b>${a.missing.length} runs missing</b> (${esc(a.missing.join(', '))}).` : 'Every run is in.'}</p>
<p><small>${esc(a.method)}. Paired differences are treatment - control on the same seed (the same data order, sampling and masks), in points of accuracy.
Holm-adjusted p-values are given for the confirmatory hypotheses (every comparison x overall / vision-dependent / general x each metric); per-family rows are exploratory.</small></p>
${tables(a)}
${drawn.map(([id, spec], i) => `<figure id="${id}">${rendered[i].svg}<script type="application/vnd.vegalite+json" data-chart="${id}">${json(spec)}</script></figure>`).join('\n')}
<p><small>Made by papo study. The numbers are in study.json beside this page; every run is a papo train run directory under runs/.</small></p>
</body></html>
`;
  const htmlFile = path.join(dir, 'study.html');
  await writeFileAtomic(htmlFile, html);
  return { json: p.json, html: htmlFile, pngs };
}
