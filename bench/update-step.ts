/**
 * The update step, side by side in one run (default policy, random init): one optimizer step (forward,
 * token-mean NLL of the response tokens, backward, clipping, AdamW) at R rows x 117 tokens (32 image
 * patches, a 37-token prompt, 48 response tokens), R = 16 and 64, on
 * - the onnxruntime trainer (models/trainer/: gradients generated from the ONNX graph, in its worker),
 *   with 2 intra-op threads (the default) and with 1;
 * - the tfjs trainer on the tfjs backend in use (tfjs-wasm here: one thread);
 * - the same model in PyTorch (bench/torch-policy.py) on 1 and 2 threads, when Debian's python3-torch is
 *   installed (optional; never needed by the tests) — with an optimized BLAS (libopenblas0-pthread):
 *   without one, Debian's torch runs on the reference BLAS, ~16x slower; the bench prints torch's matmul rate.
 * Rounds alternate between the engines (the machine is shared and noisy); medians and bests of the
 * rounds, and the load average before and after (onnxruntime's two threads need both cores: under load,
 * its ratios are pessimistic).
 *
 *   node --import tsx bench/update-step.ts [--rounds 5] [--rows 16,64] [--no-torch] [--no-tfjs]
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTf, tf } from '../util/tf-backend.ts';
import { policyConfig, policyDims, type PolicyConfig } from '../models/config.ts';
import { initParams } from '../models/params.ts';
import { encodePrompt, EOS_ID } from '../models/tokenizer.ts';
import { OrtTrainer } from '../models/trainer/ort-trainer.ts';
import { TfTrainer } from '../models/trainer/tf-trainer.ts';
import type { LossFn, Trainer, TrainRows } from '../models/trainer/types.ts';
import type { RgbImage } from '../util/image.ts';
import { Rng } from '../util/rng.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    rows: { type: 'string', default: '16,64' },
    'no-torch': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const ROWS = args.rows.split(',').map(Number);
const PROMPT_TOKENS = 37;
const RESPONSE_TOKENS = 48;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const fmt = (x: number, d = 0) => x.toFixed(d);

function image(cfg: PolicyConfig, seed: number): RgbImage {
  const rng = Rng.seeded(seed);
  const data = new Uint8Array(cfg.imageHeight * cfg.imageWidth * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { height: cfg.imageHeight, width: cfg.imageWidth, data };
}

/** R rows of exactly 37 prompt and 48 response tokens. */
function rowsOf(cfg: PolicyConfig, R: number): TrainRows {
  const prompts = Array.from({ length: R }, (_, i) => encodePrompt(`Add the two digits in the image. #${10 + (i % 90)}`));
  if (prompts.some((p) => p.length !== PROMPT_TOKENS)) throw new Error('bench prompts must be 37 tokens');
  return {
    images: Array.from({ length: R }, (_, i) => image(cfg, i)),
    prompts,
    responses: Array.from({ length: R }, (_, i) => [...Array.from({ length: RESPONSE_TOKENS - 1 }, (_, t) => 7 + ((i * 7 + t) % 90)), EOS_ID]),
  };
}

const nll: LossFn<undefined> = ({ logprobs, mask }) => ({ loss: tf.div(tf.neg(tf.sum(logprobs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar });

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
      '2',
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
  const batches = ROWS.map((R) => rowsOf(cfg, R));
  const seq = policyDims(cfg).nPatch + PROMPT_TOKENS + RESPONSE_TOKENS;

  const engines: { name: string; trainer: Trainer }[] = [
    { name: 'onnxruntime trainer, 2 threads', trainer: await OrtTrainer.create(cfg, params, opt, { threads: 2 }) },
    { name: 'onnxruntime trainer, 1 thread', trainer: await OrtTrainer.create(cfg, params, opt, { threads: 1 }) },
  ];
  if (!args['no-tfjs']) engines.push({ name: `tfjs trainer (${backend})`, trainer: new TfTrainer(cfg, params, opt) });
  const py = args['no-torch'] ? undefined : torchPython();
  const times: Record<string, Record<number, number[]>> = {};
  const record = (name: string, R: number, ms: number) => ((times[name] ??= {})[R] ??= []).push(ms);

  for (const e of engines) for (const b of batches) await e.trainer.minimize(b, nll); // warm-up
  const loadBefore = os.loadavg()[0];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, R] of ROWS.entries()) {
      for (const e of engines) {
        const t = performance.now();
        await e.trainer.minimize(batches[k], nll);
        record(e.name, R, performance.now() - t);
      }
    }
    if (py) {
      for (const threads of [1, 2]) {
        const r = torchRound(py, threads);
        for (const R of ROWS) record(`PyTorch ${threads === 1 ? '1 thread' : '2 threads'}`, R, r[R]);
      }
    }
  }
  for (const e of engines) await e.trainer.close();

  console.log(
    `update step (fwd + token-mean NLL + bwd + clip + AdamW), default policy, R rows x ${seq} tokens; ${ROUNDS} interleaved rounds (PyTorch: best of 2 steps per round)`,
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
  const ort = 'onnxruntime trainer, 2 threads';
  console.log('ratios to the onnxruntime trainer (2 threads): median / best');
  for (const n of names.filter((x) => x !== ort)) {
    const r = (R: number) => `${fmt(median(times[n][R]) / median(times[ort][R]), 2)}x / ${fmt(Math.min(...times[n][R]) / Math.min(...times[ort][R]), 2)}x`;
    console.log(`${`  ${n}`.padEnd(36)}${ROWS.map((R) => r(R).padStart(16)).join('')}`);
  }
}

await main();
