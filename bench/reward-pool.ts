/**
 * What running user reward code in the reward pool (tasks/rewards/pool.ts) costs per step, side by side
 * with the same reward in the calling thread, in one run:
 *
 * 1. one step's batch (32 prompts x 8 responses = 256 calls by default) scored by the paper's composite
 *    reward given as a user file, and by a reward that works 50 us per call: median milliseconds per batch
 *    in the calling thread (runReward) and in the pool with 1 and 2 workers, and the ratios;
 * 2. `papo train` itself (the default config, no before/after test) for a few steps, the composite reward
 *    as an object (calling thread) and as a file (pool): median `timing_s/reward` and `timing_s/step`.
 *
 *   node --import tsx bench/reward-pool.ts [batches=200] [--steps 6] [--no-train]
 *
 * The machine is shared and noisy: compare the rows of one run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runTrain } from '../pipelines/train.ts';
import { compositeReward } from '../tasks/rewards/composite.ts';
import { RewardPool } from '../tasks/rewards/pool.ts';
import { runReward } from '../tasks/rewards/runner.ts';
import { defineReward, type RewardFunction, type RewardInput } from '../tasks/rewards/types.ts';

const args = process.argv.slice(2);
const batches = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 200;
const stepsAt = args.indexOf('--steps');
const steps = stepsAt >= 0 ? Number(args[stepsAt + 1]) : 6;
const withTrain = !args.includes('--no-train');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-bench-reward-pool-'));
const repo = (rel: string) => JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, '..', rel)).href);
const file = path.join(dir, 'rewards.mts');
const BUSY_US = 50;
fs.writeFileSync(
  file,
  [
    `import { compositeReward } from ${repo('tasks/rewards/composite.ts')};`,
    'export const composite = compositeReward();',
    '/** 50 us of work per call, then the composite reward. */',
    'export const busy = (x: { response: string; answer: string }) => {',
    `  const until = performance.now() + ${BUSY_US / 1000};`,
    '  while (performance.now() < until) {}',
    '  return composite.score(x as never);',
    '};',
  ].join('\n'),
);
const busy = compositeReward();
const busyInThread = defineReward('busy', (x) => {
  const until = performance.now() + BUSY_US / 1000;
  while (performance.now() < until) {}
  return busy.score(x);
});

/** One step's inputs: 32 prompts x 8 responses, in the shape the sampler writes them. */
const inputs: RewardInput[] = Array.from({ length: 256 }, (_, i) => {
  const record = Math.floor(i / 8);
  const answer = String(record % 10);
  return {
    id: `digits/train/${record}`,
    response: `<think>the digits are ${record} and ${i % 8}</think><answer>${i % 3 ? answer : 'x'}</answer>`,
    answer,
    question: 'What is the largest digit?',
    family: 'max',
    meta: {},
  };
});

const OPTS = { timeoutMs: 10_000, concurrency: 32 };
async function perBatch(score: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 10; i++) await score(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < batches; i++) {
    const t0 = performance.now();
    await score();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

console.log(`reward scoring: median ms per batch of ${inputs.length} calls over ${batches} batches (after 10 warm-up)`);
console.log(
  `${'reward'.padEnd(12)}${'this thread'.padStart(14)}${'pool, 1'.padStart(12)}${'pool, 2'.padStart(12)}${'1 / thread'.padStart(12)}${'2 / thread'.padStart(12)}`,
);
for (const [name, inThread] of [
  ['composite', compositeReward()],
  ['busy 50us', busyInThread],
] as [string, RewardFunction][]) {
  const row = [await perBatch(() => runReward(inThread, inputs, OPTS))];
  for (const workers of [1, 2]) {
    const pool = await RewardPool.start({ spec: `${file}:${name.startsWith('busy') ? 'busy' : 'composite'}`, workers });
    row.push(await perBatch(() => pool.run(inputs, OPTS)));
    await pool.close();
  }
  const [thread, one, two] = row;
  console.log(
    `${name.padEnd(12)}${thread.toFixed(3).padStart(14)}${one.toFixed(3).padStart(12)}${two.toFixed(3).padStart(12)}${(one / thread).toFixed(2).padStart(12)}${(two / thread).toFixed(2).padStart(12)}`,
  );
}

if (withTrain) {
  const rows: Record<string, Record<string, number>> = {};
  const input = { trainer: { max_steps: steps, test_before_and_after: false } };
  for (const [label, reward] of [
    ['this thread', compositeReward()],
    ['pool', undefined],
  ] as const) {
    const cfg = reward ? input : { ...input, worker: { reward: { score_function: `${file}:composite` } } };
    const r = await runTrain(cfg, { quiet: true, noSave: true, reward });
    const measured = r.steps.slice(1); // the first step pays for warm-up
    rows[label] = {
      'timing_s/reward': median(measured.map((s) => s.metrics['timing_s/reward'])),
      'timing_s/step': median(measured.map((s) => s.metrics['timing_s/step'])),
    };
  }
  console.log(`\npapo train (default config, ${steps} steps): median seconds over steps 2..${steps}`);
  console.log(`${'metric'.padEnd(18)}${'this thread'.padStart(14)}${'pool'.padStart(12)}${'pool - thread'.padStart(16)}`);
  for (const k of ['timing_s/reward', 'timing_s/step']) {
    const a = rows['this thread'][k];
    const b = rows.pool[k];
    console.log(`${k.padEnd(18)}${a.toFixed(4).padStart(14)}${b.toFixed(4).padStart(12)}${(b - a).toFixed(4).padStart(16)}`);
  }
  const cost = rows.pool['timing_s/reward'] - rows['this thread']['timing_s/reward'];
  console.log(`the pool's cost: ${(cost * 1000).toFixed(2)} ms per step, ${((100 * cost) / rows['this thread']['timing_s/step']).toFixed(2)}% of a step`);
}
fs.rmSync(dir, { recursive: true, force: true });
