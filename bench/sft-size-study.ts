/**
 * Size study for the supervised warm start: policy sizes x step budgets on the default task, each trained
 * from scratch with `runSft` and evaluated on the held-out test split with the onnxruntime engine.
 * Prints one row per run: parameters, steps, wall time, greedy accuracy overall / vision-dependent /
 * general, per family, format rate, and the fraction of prompts whose 4 samples disagree (RL signal).
 *
 *   node --import tsx bench/sft-size-study.ts                 # the full grid (about 30-40 min on 2 cores)
 *   node --import tsx bench/sft-size-study.ts small:100       # one run, size:steps
 *
 * Wall times depend on what else the machine is doing: compare rows of one run of this script.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSft } from '../pipelines/sft.ts';
import { evaluate, formatEvalReport } from '../pipelines/evaluate.ts';
import { PolicyEngine } from '../models/engine/engine.ts';
import { paramCount } from '../models/params.ts';
import { POLICY_SIZES } from '../models/config.ts';
import { createTask } from '../tasks/registry.ts';

const GRID = process.argv.slice(2).length ? process.argv.slice(2) : ['small:200', 'small:400', 'base:200', 'base:400', 'large:200'];
const EVAL_LIMIT = Number(process.env.STUDY_EVAL_LIMIT ?? 700);

const pct = (x: number | null | undefined) => (x == null ? '  -  ' : (100 * x).toFixed(1).padStart(5));
const rows: string[] = [];
const results: unknown[] = [];
for (const spec of GRID) {
  const [size, stepsText] = spec.split(':');
  const steps = Number(stepsText);
  if (!POLICY_SIZES[size] || !(steps > 0)) throw new Error(`bad run '${spec}': use size:steps with size in ${Object.keys(POLICY_SIZES).join(', ')}`);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `papo-study-${size}-${steps}-`));
  const sft = await runSft({
    worker: { actor: { model: { override_config: POLICY_SIZES[size] } } },
    trainer: { max_steps: steps, save_checkpoint_path: out, save_freq: 0 },
  });
  const engine = await PolicyEngine.create(sft.config);
  await engine.setWeights(sft.params, steps);
  const report = await evaluate(engine, createTask({ task: 'digits' }), { split: 'test', limit: EVAL_LIMIT, k: 4 });
  await engine.close();
  console.log(formatEvalReport(report));
  const g = report.greedy.accuracy;
  const fams = Object.entries(g.byFamily)
    .sort()
    .map(([f, c]) => `${f} ${pct(c.accuracy)}`)
    .join(', ');
  const row = `${size.padEnd(6)} ${String(paramCount(sft.config)).padStart(8)} ${String(steps).padStart(5)} ${(sft.seconds / 60).toFixed(1).padStart(6)} min  overall ${pct(g.overall.accuracy)}  vision ${pct(g.visionDependent.accuracy)}  general ${pct(g.general.accuracy)}  format ${pct(report.greedy.formatRate)}  mixed@4 ${pct(report.sampled?.mixedFraction)}  | ${fams}`;
  rows.push(row);
  results.push({ size, steps, parameters: paramCount(sft.config), seconds: sft.seconds, finalLoss: sft.history.at(-1)?.loss, report });
  console.log(`\nsize   params   steps   wall        greedy accuracy (%) on ${EVAL_LIMIT} test prompts\n${rows.join('\n')}\n`);
  fs.rmSync(out, { recursive: true, force: true });
}
if (process.env.STUDY_JSON) fs.writeFileSync(process.env.STUDY_JSON, JSON.stringify(results, null, 2));
