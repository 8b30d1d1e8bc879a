/**
 * What a person looks at, from tiny real runs (a PAPO-G and a GRPO run of a small random policy): the
 * TensorBoard scalars equal metrics.jsonl; `papo report` draws charts whose data is the metrics, marks
 * loss-hacking alarms and overlays runs, with nothing loaded from outside; `papo rollouts` draws one row
 * per prompt with the masked view redrawn and per-response kl_prcp that averages to the step's metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { initTf } from '../../util/tf-backend.ts';
import { chartSvg } from '../../util/charts.ts';
import { emaSmooth } from '../../util/smoothing.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';
import { runTrain } from '../../pipelines/train.ts';
import { readMetrics, type MetricsLine } from '../../pipelines/run-dir.ts';
import { RUN_COLOURS, writeReport, type ChartRow } from '../../pipelines/report.ts';
import { writeRolloutSheet } from '../../pipelines/rollout-sheet.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { scalarsByStep } from '../storage/tfevents-reader.ts';

await initTf();

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROMPTS = 4;
const G = 4;

let tmp: string;
let papoRun: string;
let grpoRun: string;
before(async () => {
  let weights: string;
  ({ tmp, weights } = await tinyPolicyInTmp('papo-views-'));
  const config = (run: string, preset: 'papo_g' | 'grpo', steps: number): TrainConfigInput => ({
    data: { task: 'digits', families: ['read', 'count', 'text-sum'], rollout_batch_size: PROMPTS, max_response_length: 6, seed: 2 },
    algorithm: { preset },
    worker: { actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } }, rollout: { n: G, threads: 1 } },
    trainer: { max_steps: steps, val_freq: 2, val_limit: 6, test_before_and_after: false, save_checkpoint_path: run },
  });
  papoRun = path.join(tmp, 'papo');
  grpoRun = path.join(tmp, 'grpo');
  await runTrain(config(papoRun, 'papo_g', 3), { quiet: true });
  await runTrain(config(grpoRun, 'grpo', 2), { quiet: true });
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const metricsOf = (run: string) => readMetrics(path.join(run, 'metrics.jsonl'));

test('TensorBoard: every metric of every step, under its metrics.jsonl name, as float32', () => {
  const metrics = metricsOf(papoRun);
  const tb = scalarsByStep(path.join(papoRun, 'tensorboard'));
  assert.deepEqual([...tb.keys()], [1, 2, 3]);
  for (const { step, version: _v, ...m } of metrics) {
    const logged = tb.get(step)!;
    assert.deepEqual(Object.keys(logged).sort(), Object.keys(m).sort(), `step ${step}: the same tags`);
    for (const [k, v] of Object.entries(m)) assert.equal(logged[k], Math.fround(v), `step ${step} ${k}`);
  }
  assert.ok(metrics[1]['val-core/accuracy/overall'] !== undefined && tb.get(2)!['val-core/accuracy/overall'] !== undefined, 'validation metrics too');
});

test('trainer.logger: without tensorboard no event file is written; a logger this trainer lacks is refused by name', async () => {
  const run = path.join(tmp, 'no-tb');
  const cfg = JSON.parse(fs.readFileSync(path.join(grpoRun, 'config.json'), 'utf8'));
  await runTrain({ ...cfg, trainer: { ...cfg.trainer, max_steps: 1, val_freq: 0, save_checkpoint_path: run, logger: ['console'] } }, { quiet: true });
  assert.equal(metricsOf(run).length, 1);
  assert.ok(!fs.existsSync(path.join(run, 'tensorboard')));
  await assert.rejects(
    runTrain({ ...cfg, trainer: { ...cfg.trainer, logger: ['tensorboard', 'wandb'] } }, { quiet: true }),
    /trainer\.logger\.1: .*"console"\|"tensorboard"/,
  );
});

interface Layer {
  data?: { values: { step: number }[] };
  mark: { type: string; opacity?: number };
  encoding?: { y?: { field: string }; color?: { field: string; scale?: { domain: string[]; range: string[] } }; strokeDash?: unknown };
}
interface Panel {
  title?: { text: string };
  data: { values: ChartRow[] };
  layer: Layer[];
}
/** A chart's spec: one panel (layers) or small multiples (`concat`, a panel per series). */
type Spec = Panel & { concat?: Panel[] };

/** The Vega-Lite specs embedded in a report page, by chart id. */
function embeddedSpecs(html: string): Map<string, Spec> {
  const out = new Map();
  for (const m of html.matchAll(/<script type="application\/vnd\.vegalite\+json" data-chart="([^"]+)">([\s\S]*?)<\/script>/g)) out.set(m[1], JSON.parse(m[2]));
  return out;
}

/** The panels of a chart: itself, or each of its small multiples. */
const panels = (spec: Spec): Panel[] => spec.concat ?? [spec];
/** Every row a chart draws. */
const rowsOf = (spec: Spec): ChartRow[] => panels(spec).flatMap((p) => p.data.values);

/** What a chart must show: one row per step with a finite value, value as logged, smoothed by TensorBoard's EMA. */
function expectedRows(run: string, metrics: MetricsLine[], series: Record<string, (m: MetricsLine) => number | undefined>, smoothing = 0.6): ChartRow[] {
  const rows: ChartRow[] = [];
  for (const [label, f] of Object.entries(series)) {
    const logged = metrics.filter((m) => f(m) !== undefined);
    const smoothed = emaSmooth(
      logged.map((m) => f(m)!),
      smoothing,
    );
    logged.forEach((m, i) => rows.push({ run, series: label, step: m.step, value: f(m)!, smoothed: smoothed[i] }));
  }
  return rows;
}

test('papo report: a self-contained page whose charts are the metrics, and their PNGs', async () => {
  const out = path.join(tmp, 'report', 'papo.html');
  const r = await writeReport([papoRun], { out });
  const html = fs.readFileSync(out, 'utf8');
  assert.doesNotMatch(html, /<script(?![^>]*application\/vnd\.vegalite\+json)/, 'no executable script');
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing fetched');
  const specs = embeddedSpecs(html);
  assert.deepEqual(
    [...specs.keys()],
    ['reward', 'validation', 'kl_prcp', 'entropy', 'losses', 'grad_norm', 'lr', 'clipping', 'length', 'reward_failures', 'throughput', 'time'],
  );
  assert.equal(html.match(/<svg/g)?.length, specs.size, 'one picture per chart');

  const metrics = metricsOf(papoRun);
  const by = (k: string) => (m: MetricsLine) => m[k];
  const sorted = (rows: ChartRow[]) => [...rows].sort((a, b) => a.step - b.step || a.series.localeCompare(b.series));
  assert.deepEqual(
    sorted(specs.get('reward')!.data.values),
    sorted(
      expectedRows('papo', metrics, {
        'critic/score/mean': by('critic/score/mean'),
        'reward/accuracy/vision_dependent': by('reward/accuracy/vision_dependent'),
        'reward/accuracy/general': by('reward/accuracy/general'),
      }),
    ),
  );
  assert.deepEqual(
    sorted(specs.get('kl_prcp')!.data.values),
    sorted(
      expectedRows('papo', metrics, {
        'actor/kl_prcp/vision_dependent': by('actor/kl_prcp/vision_dependent'),
        'actor/kl_prcp/general': by('actor/kl_prcp/general'),
        '-actor/kl_prcp_loss (all)': (m) => -m['actor/kl_prcp_loss'],
      }),
    ),
  );
  assert.deepEqual(
    sorted(specs.get('validation')!.data.values).map((r) => r.step),
    [2, 2, 2],
    'validation at step 2 (val_freq 2)',
  );
  for (const [id, key] of [
    ['grad_norm', 'actor/grad_norm'],
    ['reward_failures', 'reward/failures'],
    ['throughput', 'perf/throughput'],
  ])
    assert.deepEqual(specs.get(id)!.data.values, expectedRows('papo', metrics, { [key]: by(key) }), id);
  // The learning rate is a schedule: drawn as logged, never smoothed.
  assert.deepEqual(
    specs.get('lr')!.data.values.map((r) => [r.step, r.value, r.smoothed]),
    metrics.map((m) => [m.step, m['actor/lr'], m['actor/lr']]),
  );
  // The loss terms, one panel each, with its own y scale.
  const losses = specs.get('losses')!;
  assert.deepEqual(
    panels(losses).map((p) => p.title?.text),
    ['actor/pg_loss', 'actor/kl_loss', 'actor/kl_prcp_loss', 'actor/entropy_loss', 'actor/aug_entropy_loss', 'actor/loss'],
  );
  for (const p of panels(losses)) assert.deepEqual(p.data.values, expectedRows('papo', metrics, { [p.title!.text]: by(p.title!.text) }));
  const stages = panels(specs.get('time')!).map((p) => p.title?.text);
  assert.equal(stages[0], 'step (total)');
  for (const s of ['gen', 'reward', 'masked_log_prob', 'ref', 'adv', 'update_actor']) assert.ok(stages.includes(s), `a panel for stage ${s}`);
  assert.equal(rowsOf(specs.get('time')!).find((r) => r.series === 'gen' && r.step === 1)!.value, metrics[0]['timing_s/gen']);
  // Smoothed curves over faint raw ones.
  const reward = specs.get('reward')!;
  assert.deepEqual(
    reward.layer.filter((l) => l.mark.type === 'line').map((l) => [l.encoding?.y?.field, l.mark.opacity ?? 1]),
    [
      ['value', 0.25],
      ['smoothed', 1],
    ],
  );
  assert.match(html, /<th>reward failures \(steps\)<\/th>[\s\S]*<td>papo<\/td>(<td>[^<]*<\/td>){8}<td>0<\/td><td>none<\/td>/, 'no reward failures');
  assert.match(html, /smoothed as TensorBoard does \(debiased EMA, weight 0\.6/);

  assert.equal(r.pngs.length, 1 + specs.size);
  for (const file of r.pngs) {
    const png = PNG.sync.read(fs.readFileSync(file));
    assert.ok(png.width > 400 && png.height > 200, `${path.basename(file)} is ${png.width}x${png.height}`);
  }
  assert.match(html, /Loss-hacking watch: no warning/);
});

test("papo report: loss-hacking alarms (with the run's thresholds) are marked on every chart; several runs are overlaid", async () => {
  const hacked = path.join(tmp, 'hacked');
  fs.mkdirSync(hacked);
  const acc = [0.5, 0.6, 0.6, 0.45, 0.4, 0.55];
  const kl = [0.1, 0.1, 0.6, 0.6, 0.3, 0.7];
  fs.writeFileSync(
    path.join(hacked, 'metrics.jsonl'),
    `${acc.map((a, i) => JSON.stringify({ step: i + 1, version: i + 1, 'reward/accuracy/mean': a, 'critic/score/mean': a, 'actor/kl_prcp_loss': -kl[i], 'reward/failures': [0, 3, 0, 0, 2, 0][i] })).join('\n')}\n`,
  );
  // window 1: fires where kl_prcp > 0.5 while accuracy < best - 0.1, i.e. at step 4 only
  fs.writeFileSync(
    path.join(hacked, 'config.json'),
    JSON.stringify({ algorithm: { preset: 'papo_g' }, trainer: { loss_hacking_window: 1, loss_hacking_kl_prcp: 0.5, loss_hacking_accuracy_drop: 0.1 } }),
  );
  const out = path.join(tmp, 'report', 'both.html');
  const r = await writeReport([papoRun, grpoRun, hacked], { out, png: false });
  assert.deepEqual(
    r.runs.map((x) => [x.name, x.alarms.map((a) => a.step)]),
    [
      ['papo', []],
      ['grpo', []],
      ['hacked', [4]],
    ],
  );
  assert.deepEqual(r.pngs, []);
  const html = fs.readFileSync(out, 'utf8');
  assert.match(html, /Loss-hacking warnings[\s\S]*<b>hacked<\/b>: possible loss hacking at step 4/);
  assert.match(html, /<td>hacked<\/td>(<td>[^<]*<\/td>){8}<td>5 \(2 steps\)<\/td><td>step 4<\/td>/, 'reward failures: 5 in 2 steps');
  const specs = embeddedSpecs(html);
  for (const [id, spec] of specs) {
    for (const [i, panel] of panels(spec).entries()) {
      const rule = panel.layer.find((l) => l.mark.type === 'rule');
      assert.deepEqual(
        rule?.data?.values.map((v) => v.step),
        [4],
        `chart ${id} panel ${i} marks the alarm`,
      );
    }
    // A colour per run, the same on every chart, with a legend; series told apart by dash or by panel.
    for (const panel of panels(spec))
      for (const l of panel.layer.filter((x) => x.mark.type === 'line')) {
        assert.equal(l.encoding?.color?.field, 'run', `chart ${id}: colour is the run`);
        assert.deepEqual(l.encoding?.color?.scale, { domain: ['papo', 'grpo', 'hacked'], range: RUN_COLOURS.slice(0, 3) }, `chart ${id}`);
      }
  }
  const runsIn = (id: string) => [...new Set(rowsOf(specs.get(id)!).map((v) => v.run))];
  assert.deepEqual(runsIn('reward'), ['papo', 'grpo', 'hacked']);
  assert.deepEqual(runsIn('kl_prcp'), ['papo', 'hacked'], 'GRPO has no masked view');
  assert.deepEqual(runsIn('entropy'), ['papo', 'grpo']);
  // Time per stage: a panel per stage with every run in it, no dash styles.
  const time = specs.get('time')!;
  assert.ok(time.concat && time.concat.length >= 7, 'one panel per stage');
  for (const p of time.concat) {
    const runs = [...new Set(p.data.values.map((v) => v.run))];
    if (p.title?.text === 'masked_log_prob') assert.deepEqual(runs, ['papo'], 'GRPO has no masked view');
    else assert.deepEqual(runs, ['papo', 'grpo'], `${p.title?.text}: both runs`);
    assert.ok(
      p.layer.every((l) => l.encoding?.strokeDash === undefined),
      `${p.title?.text}: no dash`,
    );
  }

  // --smoothing 0: the values as logged, one curve per series.
  const raw = embeddedSpecs(
    fs.readFileSync((await writeReport([papoRun], { out: path.join(tmp, 'report', 'raw.html'), png: false, smoothing: 0 })).html, 'utf8'),
  );
  const reward = raw.get('reward')!;
  assert.ok(reward.data.values.every((r) => r.smoothed === r.value));
  assert.deepEqual(
    reward.layer.filter((l) => l.mark.type === 'line').map((l) => l.encoding?.y?.field),
    ['value'],
  );
  await assert.rejects(writeReport([papoRun], { out: path.join(tmp, 'report', 'bad.html'), smoothing: 1 }), /smoothing must be at least 0 and below 1, got 1/);
});

test('charts load nothing from outside their spec', async () => {
  await assert.rejects(
    chartSvg({ data: { url: 'https://example.com/data.json' }, mark: 'point' }),
    /Loading failed .*charts load no data from outside the spec \(asked for https:\/\/example\.com\/data\.json\)/,
  );
});

test('papo rollouts: one row per prompt, the masked view redrawn, per-response kl_prcp that averages to the step metrics', async () => {
  const out = path.join(tmp, 'sheet.png');
  const r = await writeRolloutSheet(papoRun, { step: 2, out });
  assert.equal(r.prompts.length, PROMPTS);
  const metrics = metricsOf(papoRun)[1];
  const groups: Record<string, number[]> = { vision_dependent: [], general: [] };
  for (const p of r.prompts) {
    assert.equal(p.responses.length, G);
    assert.ok(p.masked, 'a masked view');
    // Masking blackens patches: every pixel is the original's or black, and some are black.
    let black = 0;
    for (let i = 0; i < p.image.data.length; i++) {
      if (p.masked!.data[i] === 0 && p.image.data[i] !== 0) black++;
      else assert.equal(p.masked!.data[i], p.image.data[i]);
    }
    assert.ok(black > 0);
    for (const x of p.responses) groups[p.title.includes('vision-dependent') ? 'vision_dependent' : 'general'].push(x.klPrcp!);
  }
  for (const [k, xs] of Object.entries(groups)) {
    if (!xs.length) continue;
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(
      Math.abs(mean - metrics[`actor/kl_prcp/${k}`]) <= 1e-6 * Math.max(1, mean),
      `kl_prcp ${k}: sheet ${mean}, metrics ${metrics[`actor/kl_prcp/${k}`]}`,
    );
  }
  // The picture: as large as reported, with one separating rule per prompt row.
  const png = PNG.sync.read(fs.readFileSync(out));
  assert.deepEqual([png.width, png.height], [r.width, r.height]);
  let rules = 0;
  for (let y = 0; y < png.height; y++) {
    let same = true;
    for (let x = 0; x < png.width && same; x++) same = png.data[(y * png.width + x) * 4] === 70 && png.data[(y * png.width + x) * 4 + 2] === 88;
    if (same) rules++;
  }
  assert.equal(rules, PROMPTS);

  const grpo = await writeRolloutSheet(grpoRun, { step: 1, out: path.join(tmp, 'grpo.png'), prompts: 2 });
  assert.equal(grpo.prompts.length, 2);
  assert.ok(
    grpo.prompts.every((p) => p.masked === undefined && p.responses.every((x) => x.klPrcp === undefined)),
    'GRPO logs no masked view',
  );
});

test('the papo report and papo rollouts commands', () => {
  const papo = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/papo.js'), ...args], { cwd: tmp, encoding: 'utf8' });
  const rep = papo('report', papoRun, grpoRun, '--no-png');
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(rep.stdout, /report: .*report\.html\npapo: 3 steps\ngrpo: 2 steps/);
  assert.ok(fs.existsSync(path.join(tmp, 'report.html')));
  const sheet = papo('rollouts', papoRun, '--step', '3', '--prompts', '1');
  assert.equal(sheet.status, 0, sheet.stderr);
  assert.match(sheet.stdout, /rollouts: .*rollouts-step_000003\.png \(1 prompts, \d+ x \d+ px\)/);
  // The README and --help name the file the command writes.
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes('`<run>/rollouts-step_000080.png` for `--step 80`'), 'README names the default sheet');
  assert.match(papo('rollouts', '--help').stdout, /rollouts-step_000080\.png for --step 80/);
  const missing = papo('rollouts', papoRun, '--step', '9');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /step 9 is not in the rollout log of .* \(logged: 1, 2, 3\)/);
  const smooth = papo('report', papoRun, '--smoothing', '1.5');
  assert.equal(smooth.status, 1);
  assert.match(smooth.stderr, /--smoothing must be at least 0 and below 1, got 1\.5/);
  const notRun = papo('report', path.join(tmp, 'init'));
  assert.equal(notRun.status, 1);
  assert.match(notRun.stderr, /has no metrics\.jsonl/);
});
