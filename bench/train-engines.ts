/**
 * Whole runs before and after the onnxruntime trainer, side by side in one process: `papo sft` (the
 * default warm start: batch 64) and `papo train` (the default RL config from the shipped warm start, no
 * before/after evaluation) with `engine` tfjs (before) and ort (after). Prints median seconds per step
 * (the first step, which compiles graphs, is left out) and, for RL, the update's share.
 *
 *   node --import tsx bench/train-engines.ts [--sft-steps 8] [--rl-steps 5]
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSft } from '../pipelines/sft.ts';
import { runTrain } from '../pipelines/train.ts';

const { values: args } = parseArgs({
  options: {
    'sft-steps': { type: 'string', default: '8' },
    'rl-steps': { type: 'string', default: '5' },
  },
});
const SFT_STEPS = Number(args['sft-steps']);
const RL_STEPS = Number(args['rl-steps']);
const ENGINES = ['tfjs', 'ort'] as const;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

const rows: { what: string; tfjs?: number; ort?: number }[] = [];
const put = (what: string, engine: (typeof ENGINES)[number], v: number) => {
  let r = rows.find((x) => x.what === what);
  if (!r) rows.push((r = { what }));
  r[engine] = v;
};

for (const engine of ENGINES) {
  const r = await runSft(
    { worker: { actor: { engine } }, trainer: { max_steps: SFT_STEPS, save_freq: 0, save_checkpoint_path: path.join(os.tmpdir(), 'papo-bench-sft') } },
    { quiet: true, noSave: true },
  );
  put(`papo sft: s/step (batch 64, ${SFT_STEPS} steps)`, engine, r.seconds / SFT_STEPS);
  put('papo sft: tokens/s (median of steps 2..)', engine, median(r.history.slice(1).map((s) => s.tokensPerSec)));
}
for (const engine of ENGINES) {
  const r = await runTrain({ trainer: { max_steps: RL_STEPS, test_before_and_after: false }, worker: { actor: { engine } } }, { quiet: true, noSave: true });
  const m = r.steps.slice(1).map((s) => s.metrics);
  put(`papo train: s/step (median of steps 2..${RL_STEPS})`, engine, median(m.map((x) => x['timing_s/step'])));
  put('papo train: update_actor s/step', engine, median(m.map((x) => x['timing_s/update_actor'])));
  put('papo train: sampling (gen) s/step', engine, median(m.map((x) => x['timing_s/gen'])));
}

console.log(
  `whole runs, tfjs trainer (before) vs onnxruntime trainer (after); load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log(`${''.padEnd(52)}${'tfjs'.padStart(10)}${'ort'.padStart(10)}${'tfjs/ort'.padStart(10)}`);
for (const r of rows)
  console.log(
    `${r.what.padEnd(52)}${r.tfjs!.toFixed(2).padStart(10)}${r.ort!.toFixed(2).padStart(10)}${(r.what.includes('tokens/s') ? r.ort! / r.tfjs! : r.tfjs! / r.ort!).toFixed(2).padStart(9)}x`,
  );
