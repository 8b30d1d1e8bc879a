/**
 * The study behind `papo train`'s defaults: each run starts from the shipped warm start, trains with the
 * default config plus its overrides, and measures greedy accuracy on the held-out test split before and
 * after. Prints one row per run: wall time, steps, accuracy after and its change overall / vision-dependent
 * / general, and the standard error of the overall change (paired over the same 1000 prompts).
 *
 *   node --import tsx bench/train-defaults-study.ts                          # the runs listed below
 *   node --import tsx bench/train-defaults-study.ts "lr3e-5:worker.actor.optim.lr=3e-5,trainer.max_steps=40"
 *
 * Wall times depend on what else the machine is doing: compare rows of one run of this script.
 */
import { runTrain } from '../pipelines/train.ts';
import { applyOverrides } from '../util/overrides.ts';
import type { EvalReport } from '../pipelines/evaluate.ts';
import { parse } from 'yaml';

const RUNS = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [
      'default:',
      'seed2:data.seed=2',
      'seed3:data.seed=3',
      'grpo:algorithm.preset=grpo',
      't1:worker.rollout.temperature=1',
      'b16_s40:data.rollout_batch_size=16,worker.actor.global_batch_size=8,trainer.max_steps=40',
    ];

const pct = (x: number | null | undefined) => (x == null ? '  -  ' : (100 * x).toFixed(1).padStart(5));
const delta = (a: EvalReport, b: EvalReport, k: 'overall' | 'visionDependent' | 'general') => {
  const x = a.greedy.accuracy[k].accuracy;
  const y = b.greedy.accuracy[k].accuracy;
  return x === null || y === null ? '  -  ' : `${y >= x ? '+' : ''}${(100 * (y - x)).toFixed(1)}`.padStart(5);
};

const rows: string[] = [];
for (const spec of RUNS) {
  const colon = spec.indexOf(':');
  const name = spec.slice(0, colon);
  const overrides = spec
    .slice(colon + 1)
    .split(',')
    .filter(Boolean);
  const input = applyOverrides({}, [...overrides, `trainer.save_checkpoint_path=/tmp/papo-study-${name}-${process.pid}`], (v) => parse(v));
  const r = await runTrain(input, { quiet: true, noSave: true });
  const before = r.before!;
  const after = r.after!;
  // Paired standard error of the overall change: per-prompt differences of the greedy accuracy.
  const n = before.records;
  const diffs = Float64Array.from({ length: n }, (_, i) => after.greedy.perRecord[i] - before.greedy.perRecord[i]);
  const mean = diffs.reduce((a, d) => a + d, 0) / n;
  const se = Math.sqrt(diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1) / n);
  rows.push(
    `${name.padEnd(12)} ${String(r.steps.length).padStart(5)} ${r.seconds.toFixed(0).padStart(6)} s  ${pct(after.greedy.accuracy.overall.accuracy)} ${delta(before, after, 'overall')} (se ${(100 * se).toFixed(1)})  ` +
      `${pct(after.greedy.accuracy.visionDependent.accuracy)} ${delta(before, after, 'visionDependent')}  ${pct(after.greedy.accuracy.general.accuracy)} ${delta(before, after, 'general')}   ${overrides.join(' ')}`,
  );
  console.log(rows.at(-1));
}
console.log('\nfrom the shipped warm start (data.seed 1 unless overridden; held-out test split, 1000 prompts, greedy):');
console.log(`${'run'.padEnd(12)} steps   wall  overall (change, se)     vision-dep.     general   overrides`);
for (const r of rows) console.log(r);
