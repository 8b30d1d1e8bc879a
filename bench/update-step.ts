/**
 * The update step, side by side in one run (default policy, random init): one optimizer step (forward,
 * token-mean NLL of the response tokens, backward, clipping, AdamW) at R rows x 117 tokens (32 image
 * patches, a 37-token prompt, 48 response tokens), R = 16 and 64, on
 * - the onnxruntime trainer (models/trainer/: gradients generated from the ONNX graph, in worker threads):
 *   the default (2 replicas of 1 intra-op thread, each taking half the rows), and 1 worker with 2 and 1
 *   threads. The NLL is linear in the log-probs (`tokenMeanNll`),
 *   so its step is one run of the gradient graph; the RL step's loss (`papoLoss`, PAPO-G with the masked
 *   view's log-probs given, as the update sink calls it) is not, and takes a forward and then the gradient
 *   run: its own row;
 * - the tfjs trainer on the tfjs backend in use (tfjs-wasm here: one thread; its cost does not depend on
 *   the loss);
 * - the same model in PyTorch (bench/torch-policy.py) on 1 and 2 threads, when Debian's python3-torch is
 *   installed (optional; never needed by the tests) — with an optimized BLAS (libopenblas0-pthread):
 *   without one, Debian's torch runs on the reference BLAS, ~16x slower; the bench prints torch's matmul
 *   rate. Autograd saves activations, so its cost does not depend on the loss either.
 * Each round runs every engine for `--steps` consecutive steps per shape and keeps the best of them (as
 * torch-policy.py does); rounds alternate between the engines (the machine is shared and noisy). Printed:
 * medians and bests over the rounds, and the load average before and after (onnxruntime's two threads
 * need both cores: under load, its ratios are pessimistic).
 *
 *   node --import tsx bench/update-step.ts [--rounds 5] [--steps 2] [--rows 16,64] [--no-torch] [--no-tfjs]
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTf, tf } from '../util/tf-backend.ts';
import { papoLoss } from '../algorithms/papo-loss.ts';
import { objectiveConfig } from '../algorithms/config.ts';
import { policyConfig, policyDims } from '../models/config.ts';
import { initParams } from '../models/params.ts';
import { OrtTrainer } from '../models/trainer/ort-trainer.ts';
import { TfTrainer } from '../models/trainer/tf-trainer.ts';
import type { LossFn, Trainer } from '../models/trainer/types.ts';
import { tokenMeanNll } from '../models/trainer/losses.ts';
import { benchRows, PROMPT_TOKENS, RESPONSE_TOKENS } from './bench-rows.ts';
import { Rng } from '../util/rng.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '2' },
    rows: { type: 'string', default: '16,64' },
    'no-torch': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const ORT = 'onnxruntime trainer (default)';
const ORT_RL = 'onnxruntime, RL loss';
const STEPS = Number(args.steps);
const ROWS = args.rows.split(',').map(Number);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const fmt = (x: number, d = 0) => x.toFixed(d);

/** PAPO-G's loss on R rows, as the update sink builds it: fixed old, reference and masked-view log-probs and advantages. */
function rlLoss(R: number): LossFn<unknown> {
  const rng = Rng.seeded(R);
  const noisy = () => Float32Array.from({ length: R * RESPONSE_TOKENS }, () => -3 + 0.5 * rng.normal());
  const [old, ref, masked] = [noisy(), noisy(), noisy()];
  const adv = Float32Array.from({ length: R }, () => rng.normal());
  const objective = objectiveConfig({}, 'papo_g');
  const m = (a: Float32Array) => tf.tensor2d(a, [R, RESPONSE_TOKENS]);
  return ({ logprobs, mask }) => {
    const out = papoLoss(
      { logprobs, oldLogprobs: m(old), refLogprobs: m(ref), maskedLogprobs: m(masked), advantages: tf.tensor1d(adv), responseMask: mask },
      objective,
    );
    return { loss: out.loss, metrics: out.metrics };
  };
}

/** Debian's python3 (with python3-torch) if it imports torch, else the first python3 on PATH that does. */
function torchPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

const torchGflops: Record<number, number> = {};

function torchRound(py: string, threads: number): Record<number, number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch-policy.py');
  const r = spawnSync(
    py,
    [
      script,
      '--rows',
      ...ROWS.map(String),
      '--prompt',
      String(PROMPT_TOKENS),
      '--response',
      String(RESPONSE_TOKENS),
      '--threads',
      String(threads),
      '--steps',
      String(STEPS),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`torch-policy.py failed: ${r.stderr}`);
  const out: Record<number, number> = {};
  for (const line of r.stdout.trim().split('\n')) {
    const j = JSON.parse(line) as { rows?: number; ms?: number[]; matmul_gflops?: number };
    if (j.matmul_gflops !== undefined) torchGflops[threads] = Math.max(torchGflops[threads] ?? 0, j.matmul_gflops);
    else out[j.rows!] = Math.min(...j.ms!);
  }
  return out;
}

async function main() {
  const backend = await initTf();
  const cfg = policyConfig({ seed: 1 });
  const params = initParams(cfg);
  const opt = { lr: 1e-4 };
  const batches = ROWS.map((R) => benchRows(cfg, 0, R));
  const seq = policyDims(cfg).nPatch + PROMPT_TOKENS + RESPONSE_TOKENS;

  const ort = await OrtTrainer.create(cfg, params, opt);
  const ortOne2 = await OrtTrainer.create(cfg, params, opt, { replicas: 1, threads: 2 });
  const ortOne1 = await OrtTrainer.create(cfg, params, opt, { replicas: 1, threads: 1 });
  const rl = Object.fromEntries(ROWS.map((R) => [R, rlLoss(R)]));
  const nll = () => tokenMeanNll as LossFn<unknown>;
  const engines: { name: string; trainer: Trainer; loss: (R: number) => LossFn<unknown> }[] = [
    { name: ORT, trainer: ort, loss: nll },
    { name: 'onnxruntime, 1 replica x 2 threads', trainer: ortOne2, loss: nll },
    { name: 'onnxruntime, 1 replica x 1 thread', trainer: ortOne1, loss: nll },
    { name: ORT_RL, trainer: ort, loss: (R) => rl[R] },
  ];
  if (!args['no-tfjs'])
    engines.push({ name: `tfjs trainer (${backend})`, trainer: new TfTrainer(cfg, params, opt), loss: () => tokenMeanNll as LossFn<unknown> });
  const py = args['no-torch'] ? undefined : torchPython();
  const times: Record<string, Record<number, number[]>> = {};
  const record = (name: string, R: number, ms: number) => ((times[name] ??= {})[R] ??= []).push(ms);

  for (const e of engines) for (const [k, R] of ROWS.entries()) await e.trainer.minimize(batches[k], e.loss(R)); // warm-up
  const loadBefore = os.loadavg()[0];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, R] of ROWS.entries()) {
      for (const e of engines) {
        let best = Infinity;
        for (let s = 0; s < STEPS; s++) {
          const t = performance.now();
          await e.trainer.minimize(batches[k], e.loss(R));
          best = Math.min(best, performance.now() - t);
        }
        record(e.name, R, best);
      }
    }
    if (py) {
      for (const threads of [1, 2]) {
        const r = torchRound(py, threads);
        for (const R of ROWS) record(`PyTorch ${threads === 1 ? '1 thread' : '2 threads'}`, R, r[R]);
      }
    }
  }
  for (const t of new Set(engines.map((e) => e.trainer))) await t.close();

  console.log(
    `update step (fwd + token-mean NLL + bwd + clip + AdamW), default policy, R rows x ${seq} tokens; ${ROUNDS} interleaved rounds, each the best of ${STEPS} consecutive steps`,
  );
  console.log(`load average (1 min) ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after, on ${os.cpus().length} cores`);
  if (!py && !args['no-torch']) console.log('  (PyTorch not measured: no python3 that imports torch; apt-get install python3-torch libopenblas0-pthread)');
  if (py)
    console.log(
      `PyTorch's 1024^3 matmul: ${Object.entries(torchGflops)
        .map(([t, g]) => `${fmt(g, 1)} GFLOP/s on ${t} thread(s)`)
        .join(', ')}`,
    );
  const names = Object.keys(times);
  console.log(`${'engine: median / best ms'.padEnd(36)}${ROWS.map((R) => `${R} x ${seq}`.padStart(16)).join('')}`);
  for (const n of names)
    console.log(`${n.padEnd(36)}${ROWS.map((R) => `${fmt(median(times[n][R]))} / ${fmt(Math.min(...times[n][R]))}`.padStart(16)).join('')}`);
  for (const base of [ORT, ORT_RL]) {
    console.log(`ratios to "${base}": median / best`);
    for (const n of names.filter((x) => x !== ORT && x !== ORT_RL)) {
      const r = (R: number) => `${fmt(median(times[n][R]) / median(times[base][R]), 2)}x / ${fmt(Math.min(...times[n][R]) / Math.min(...times[base][R]), 2)}x`;
      console.log(`${`  ${n}`.padEnd(36)}${ROWS.map((R) => r(R).padStart(16)).join('')}`);
    }
  }
}

await main();
