/**
 * How the onnxruntime trainer computes gradients, measured side by side in one run (default policy,
 * R rows x 117 tokens, in-thread OrtTrainRunner on one intra-op thread so that CPU time is comparable on a
 * shared machine): forward + backward + AdamW per step for
 * - 'recompute': the gradient graph recomputes the forward (two runs: forward, then forward + backward);
 * - 'saved': the forward outputs every activation the backward reads, the backward takes them back in
 *   (onnxruntime-node copies each output into a fresh JS buffer);
 * and rows per onnxruntime run (`chunkRows`: smaller runs keep their tensors in cache).
 * Rounds alternate between the variants; per variant the median and best CPU and wall times.
 *
 *   node --import tsx bench/ort-gradients.ts [--rounds 5] [--rows 16,64] [--variants recompute:16,saved:16,recompute:8,recompute:64]
 */
import { parseArgs } from 'node:util';
import { policyConfig, type PolicyConfig } from '../models/config.ts';
import { initParams } from '../models/params.ts';
import { encodePrompt, EOS_ID } from '../models/tokenizer.ts';
import { OrtTrainRunner } from '../models/trainer/ort-train-runner.ts';
import type { GradientMode } from '../models/onnx/train-graphs.ts';
import type { RowsPayload } from '../models/trainer/types.ts';
import { Rng } from '../util/rng.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    rows: { type: 'string', default: '16,64' },
    variants: { type: 'string', default: 'recompute:16,saved:16,recompute:8,recompute:32,recompute:64' },
  },
});
const ROUNDS = Number(args.rounds);
const ROWS = args.rows.split(',').map(Number);
const VARIANTS = args.variants.split(',').map((v) => {
  const [mode, chunk] = v.split(':');
  if (mode !== 'recompute' && mode !== 'saved') throw new Error(`variant '${v}': mode must be recompute or saved`);
  return { name: v, mode: mode as GradientMode, chunkRows: Number(chunk) };
});

function rowsOf(cfg: PolicyConfig, R: number): RowsPayload {
  const image = (seed: number) => {
    const rng = Rng.seeded(seed);
    const data = new Uint8Array(cfg.imageHeight * cfg.imageWidth * 3);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    return { height: cfg.imageHeight, width: cfg.imageWidth, data };
  };
  return {
    images: Array.from({ length: R }, (_, i) => image(i)),
    prompts: Array.from({ length: R }, (_, i) => encodePrompt(`Add the two digits in the image. #${10 + (i % 90)}`)),
    responses: Array.from({ length: R }, (_, i) => [...Array.from({ length: 47 }, (_, t) => 7 + ((i * 7 + t) % 90)), EOS_ID]),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main() {
  const cfg = policyConfig({ seed: 1 });
  const params = initParams(cfg);
  const runners = [];
  for (const v of VARIANTS)
    runners.push({ ...v, runner: await OrtTrainRunner.create(cfg, params, { lr: 1e-4 }, { threads: 1, mode: v.mode, chunkRows: v.chunkRows }) });
  const batches = ROWS.map((R) => rowsOf(cfg, R));
  const cpu: Record<string, number[]> = {};
  const wall: Record<string, number[]> = {};
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [k, R] of ROWS.entries()) {
      for (const v of runners) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const f = await v.runner.forward(batches[k]);
        await v.runner.backward(new Float32Array(f.rows * f.T).fill(-1 / (f.rows * f.T)));
        v.runner.step();
        const c = process.cpuUsage(c0);
        if (round === 0) continue; // warm-up
        (wall[`${v.name} R${R}`] ??= []).push(performance.now() - t0);
        (cpu[`${v.name} R${R}`] ??= []).push((c.user + c.system) / 1000);
      }
    }
  }
  for (const v of runners) await v.runner.release();
  console.log(`onnxruntime training step (forward + backward + AdamW), default policy, R rows x 117 tokens, 1 intra-op thread; ${ROUNDS} interleaved rounds`);
  console.log(`${'variant (mode:chunkRows)'.padEnd(28)}${ROWS.map((R) => `R=${R}: cpu med / best, wall med`.padStart(34)).join('')}`);
  for (const v of runners) {
    console.log(
      `${v.name.padEnd(28)}${ROWS.map((R) => {
        const k = `${v.name} R${R}`;
        return `${median(cpu[k]).toFixed(0)} / ${Math.min(...cpu[k]).toFixed(0)} ms, ${median(wall[k]).toFixed(0)} ms`.padStart(34);
      }).join('')}`,
    );
  }
  const base = runners[0].name;
  for (const v of runners.slice(1)) {
    console.log(
      `${`${v.name} / ${base} (best cpu)`.padEnd(44)}${ROWS.map((R) => `${(Math.min(...cpu[`${v.name} R${R}`]) / Math.min(...cpu[`${base} R${R}`])).toFixed(2)}x`.padStart(10)).join('')}`,
    );
  }
}

await main();
