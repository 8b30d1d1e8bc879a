/**
 * The RL step of the default `papo train` against its floor. Runs the default config (the shipped warm start,
 * no before/after evaluation) for a few steps with `trainer.max_staleness` 0 and 1 and reports per step
 * (medians over steps 2..n; the first carries graph compilation):
 * - wall: `timing_s/step`;
 * - floor: the CPU-seconds the process spent over the step (every thread: the engine's, the trainer's and
 *   the main one; process.cpuUsage) divided by the cores (default 2): the step could not be shorter with
 *   these cores busy all the time;
 * - max(rollout, update): rollout = gen + reward + masked_log_prob + ref + adv, update = update_actor +
 *   update_weights, from the stage timings (the bound of perfect overlap of the two);
 * - the breakdown (timing_s/*, other and overlap: step = the stages + other - overlap);
 * - the resident set: after each step, and the process's peak (maxRSS).
 * `--staleness 0` runs one of the two (a fresh process per run gives each its own peak RSS).
 * With `--compare` it also runs at max_staleness 0 with `worker.rollout.data_parallel_size=1` (one engine worker
 * of 2 threads), with `worker.actor.share_prefix=false` (the update's passes without the shared prompt prefix),
 * and with that and `worker.rollout.fused_logprobs=false worker.rollout.share_prefix=false`.
 *
 *   node --import tsx bench/rl-step.ts [--steps 12] [--cores 2] [--staleness 0,1] [--compare] [key=value overrides...]
 *
 * The machine is shared: the load average is printed beside the figures; compare the rows of one run.
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { listenStages } from '../operators/stage-clock.ts';
import { runTrain } from '../pipelines/train.ts';
import { applyOverrides } from '../util/overrides.ts';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string', default: '12' },
    cores: { type: 'string', default: '2' },
    compare: { type: 'boolean', default: false },
    staleness: { type: 'string', default: '0,1' },
  },
});
const steps = Number(opts.steps);
const cores = Number(opts.cores);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : Number.NaN;
};
const ROLLOUT = ['timing_s/gen', 'timing_s/reward', 'timing_s/masked_log_prob', 'timing_s/ref', 'timing_s/adv'];
const UPDATE = ['timing_s/update_actor', 'timing_s/update_weights'];
const sum = (m: Record<string, number>, ks: string[]) => ks.reduce((a, k) => a + (m[k] ?? 0), 0);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const mb = (bytes: number) => bytes / 2 ** 20;

const variants: [string, string[]][] = opts.staleness
  .split(',')
  .filter((x) => x !== '')
  .map((x) => [`max_staleness ${x}`, [`trainer.max_staleness=${x}`]]);
if (opts.compare)
  variants.push(
    ['s0, one engine worker', ['trainer.max_staleness=0', 'worker.rollout.data_parallel_size=1']],
    ['s0, update full pass', ['trainer.max_staleness=0', 'worker.actor.share_prefix=false']],
    [
      's0, all passes unfused+full',
      ['trainer.max_staleness=0', 'worker.actor.share_prefix=false', 'worker.rollout.fused_logprobs=false', 'worker.rollout.share_prefix=false'],
    ],
  );

const rows: Record<string, Record<string, number>> = {};
const rss: Record<string, number[]> = {};
for (const [name, overrides] of variants) {
  const input = applyOverrides({}, [`trainer.max_steps=${steps}`, 'trainer.test_before_and_after=false', ...overrides, ...positionals], (v) => {
    const n = Number(v);
    return v === 'true' ? true : v === 'false' ? false : Number.isFinite(n) ? n : v;
  });
  const perStep: { m: Record<string, number>; cpu: number }[] = [];
  rss[name] = [];
  let cpu = process.cpuUsage();
  // Per stage, the CPU since the previous stage ended (the stages of a step run one after another at
  // max_staleness 0) and its wall time: how many of the cores each stage keeps busy.
  const stageCpu: Record<string, { cpu: number; wall: number }> = {};
  let lastEnd = process.cpuUsage();
  const stop = listenStages((key, s0, s1) => {
    const d = process.cpuUsage(lastEnd);
    lastEnd = process.cpuUsage();
    const e = (stageCpu[key] ??= { cpu: 0, wall: 0 });
    e.cpu += (d.user + d.system) / 1e6;
    e.wall += (s1 - s0) / 1000;
  });
  await runTrain(input, {
    quiet: true,
    noSave: true,
    hooks: {
      onStep: (s) => {
        const d = process.cpuUsage(cpu);
        cpu = process.cpuUsage();
        perStep.push({ m: s.metrics, cpu: (d.user + d.system) / 1e6 });
        if (perStep.length === 1) for (const k of Object.keys(stageCpu)) delete stageCpu[k]; // the first step carries start-up
        rss[name].push(mb(process.memoryUsage().rss));
      },
    },
  });
  stop();
  const measured = perStep.slice(1);
  const row: Record<string, number> = {};
  const keys = new Set(measured.flatMap((s) => Object.keys(s.m).filter((k) => k.startsWith('timing_s/'))));
  for (const k of [...keys].sort()) row[k] = median(measured.map((s) => s.m[k] ?? 0));
  row['cpu seconds'] = median(measured.map((s) => s.cpu));
  row[`floor (cpu / ${cores})`] = median(measured.map((s) => s.cpu / cores));
  row['step / floor'] = median(measured.map((s) => s.m['timing_s/step'] / (s.cpu / cores)));
  row.rollout = median(measured.map((s) => sum(s.m, ROLLOUT)));
  row.update = median(measured.map((s) => sum(s.m, UPDATE)));
  row['max(rollout, update)'] = median(measured.map((s) => Math.max(sum(s.m, ROLLOUT), sum(s.m, UPDATE))));
  row['step / max(rollout, update)'] = median(measured.map((s) => s.m['timing_s/step'] / Math.max(sum(s.m, ROLLOUT), sum(s.m, UPDATE))));
  row['rss after step 2 (MiB)'] = rss[name][1] ?? Number.NaN;
  row['rss after last step (MiB)'] = rss[name][rss[name].length - 1];
  for (const [k, e] of Object.entries(stageCpu).sort()) {
    row[`cores busy in ${k}`] = e.cpu / e.wall;
    row[`${k}: wall - cpu/${cores} per step`] = (e.wall - e.cpu / cores) / measured.length;
  }
  const third = Math.floor(rss[name].length / 3);
  if (steps >= 9) for (const i of [third, 2 * third, rss[name].length - 1]) row[`rss after step ${i + 1} (MiB)`] = rss[name][i];
  rows[name] = row;
  console.log(`${name}: done (load average ${load()})`);
}
const names = Object.keys(rows);
console.log(
  `\nmedians per rollout step over steps 2..${steps} (default config otherwise); ${os.cpus().length} cores seen, floor over ${cores}; load average ${load()}`,
);
const allKeys = [...new Set(names.flatMap((n) => Object.keys(rows[n])))];
const width = Math.max(24, ...names.map((n) => n.length + 2));
const keyWidth = Math.max(30, ...allKeys.map((k) => k.length + 2));
console.log(`${''.padEnd(keyWidth)}${names.map((n) => n.padStart(width)).join('')}`);
for (const k of allKeys) console.log(`${k.padEnd(keyWidth)}${names.map((n) => (rows[n][k] ?? Number.NaN).toFixed(3).padStart(width)).join('')}`);
console.log(`peak RSS of the process (all runs): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
