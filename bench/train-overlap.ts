/**
 * Where the time of an RL step goes, and how much of the sampling/update overlap the graph achieves.
 * Runs the default `papo train` config (from the shipped warm start, no before/after evaluation) for a
 * few steps with `trainer.max_staleness` 0 (strictly on-policy: sampling waits for the update) and 1
 * (step k+1 samples in the engine's worker while step k updates on the main thread), side by side in one
 * run, and prints per stage the median seconds per step, the median step wall time, and the bound the
 * overlap can reach: max(sampling stages, update) per step, from the stage times without overlap (with
 * overlap a stage's time includes waiting for the main thread, busy with the synchronous tfjs update).
 *
 *   node --import tsx bench/train-overlap.ts [steps=12] [key=value overrides...]
 *
 * Compare the rows of one run: the machine is shared and noisy.
 */
import { runTrain } from '../pipelines/train.ts';
import { applyOverrides } from '../util/overrides.ts';

const args = process.argv.slice(2);
const steps = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 12;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN;
};
const SAMPLING = ['timing_s/gen', 'timing_s/reward', 'timing_s/masked_log_prob', 'timing_s/ref', 'timing_s/adv'];

const rows: Record<string, Record<string, number>> = {};
for (const staleness of [0, 1]) {
  const input = applyOverrides(
    {},
    [`trainer.max_steps=${steps}`, `trainer.max_staleness=${staleness}`, 'trainer.test_before_and_after=false', ...args],
    (v) => {
      const n = Number(v);
      return v === 'true' ? true : v === 'false' ? false : Number.isFinite(n) ? n : v;
    },
  );
  const r = await runTrain(input, { quiet: true, noSave: true });
  // The first step pays for warm-up (graph compilation, first allocation): leave it out.
  const measured = r.steps.slice(1);
  const row: Record<string, number> = {};
  for (const k of [...SAMPLING, 'timing_s/update_actor', 'timing_s/update_weights', 'timing_s/step']) row[k] = median(measured.map((s) => s.metrics[k] ?? 0));
  row['max(sampling, update)'] = median(
    measured.map((s) =>
      Math.max(
        SAMPLING.reduce((a, k) => a + (s.metrics[k] ?? 0), 0),
        s.metrics['timing_s/update_actor'] + s.metrics['timing_s/update_weights'],
      ),
    ),
  );
  row['sum(sampling, update)'] = median(
    measured.map((s) => SAMPLING.reduce((a, k) => a + (s.metrics[k] ?? 0), 0) + s.metrics['timing_s/update_actor'] + s.metrics['timing_s/update_weights']),
  );
  row['staleness max'] = Math.max(...measured.map((s) => s.metrics['version_stats/sample_staleness_max']));
  rows[`max_staleness ${staleness}`] = row;
}
const names = Object.keys(rows);
console.log(`median seconds per rollout step over steps 2..${steps} (default config otherwise)`);
console.log(`${'stage'.padEnd(26)}${names.map((n) => n.padStart(16)).join('')}`);
for (const k of Object.keys(rows[names[0]])) console.log(`${k.padEnd(26)}${names.map((n) => rows[n][k].toFixed(3).padStart(16)).join('')}`);
const s0 = rows[names[0]]['timing_s/step'];
const s1 = rows[names[1]]['timing_s/step'];
// Stage times measured without overlap: under overlap, a stage's time includes waiting for the main thread.
const bound = rows[names[0]]['max(sampling, update)'];
const serial = rows[names[0]]['sum(sampling, update)'];
console.log(
  `step time, staleness 1 vs 0: ${(s0 / s1).toFixed(2)}x; of the ${(serial - bound).toFixed(3)} s that overlap could save per step ` +
    `(serial ${serial.toFixed(3)} s -> max(sampling, update) ${bound.toFixed(3)} s, from the staleness-0 stage times) it saves ${(s0 - s1).toFixed(3)} s`,
);
