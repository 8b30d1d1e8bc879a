/**
 * One supervised training step (AdamW.minimize over TfPolicy.logProbs, as in pipelines/sft.ts) on a
 * realistic digits batch: ms/step, tokens/s and the fraction of the backend's matmul peak, at batch 16
 * and 64, rounds alternating in one process (the machine is shared, so medians of interleaved rounds).
 *
 *   node --import tsx bench/train-step.ts [--rounds 5] [--profile]
 */
import { parseArgs } from 'node:util';
import { initTf, tf } from '../util/tf-backend.ts';
import { TfPolicy } from '../models/policy-tf.ts';
import { AdamW } from '../models/optimizer.ts';
import { policyConfig, policyDims, type PolicyConfig } from '../models/config.ts';
import { buildPromptBatch, buildResponseBatch, type PromptBatch, type TokenMatrix } from '../models/batch.ts';
import { encodeResponse } from '../models/tokenizer.ts';
import { createTask } from '../tasks/registry.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { TaskRecord } from '../tasks/types.ts';
import type { RgbImage } from '../util/image.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
  },
});

interface Batch {
  images: RgbImage[];
  prompts: PromptBatch;
  responses: TokenMatrix;
}

function sftBatch(config: PolicyConfig, size: number): Batch {
  const stream = RecordStream.open(createTask({ task: 'digits' }), { split: 'train', seed: 1 });
  const records = Array.from({ length: size }, () => stream.next().value as TaskRecord);
  return {
    images: records.map((r) => r.image),
    prompts: buildPromptBatch(
      records.map((r) => r.question),
      config,
    ),
    responses: buildResponseBatch(
      records.map((r) => encodeResponse(r.demonstration ?? '')),
      config,
    ),
  };
}

/** The SFT loss: mean negative log-prob of the real response tokens. */
const sftLoss = (policy: TfPolicy, b: Batch) => (): tf.Scalar => {
  const { logprobs, mask } = policy.logProbs({ images: b.images, promptIds: b.prompts, responseIds: b.responses });
  return tf.div(tf.neg(tf.sum(logprobs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
};

/** Best-of-n GFLOP/s of a 1024^3 matmul: this backend's practical matmul peak. */
function matmulPeak(n = 1024, reps = 5): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  let best = Infinity;
  for (let i = 0; i <= reps; i++) {
    const s = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    if (i > 0) best = Math.min(best, performance.now() - s);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / (best / 1000);
}

/** Useful training FLOPs of one step (3x the forward's matmuls; one-hot products excluded). */
function stepFlops(c: PolicyConfig, b: Batch): number {
  const { nPatch, patchDim, mlpDim } = policyDims(c);
  const d = c.dModel;
  const Lr = b.responses.length;
  const S = nPatch + b.prompts.length + Lr;
  const perLayer = 2 * S * d * d * 4 + 2 * S * d * mlpDim * 2 + 4 * S * S * d;
  return 3 * b.prompts.batch * (2 * nPatch * patchDim * d + c.nLayers * perLayer + 2 * Lr * d * c.vocabSize);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const backend = await initTf();
  const config = policyConfig({ seed: 1 });
  const policy = new TfPolicy(config);
  const opt = new AdamW(policy.vars, { lr: 1e-4 });
  const batches = [16, 64].map((n) => sftBatch(config, n));
  const step = (b: Batch) => opt.minimize(sftLoss(policy, b));
  for (const b of batches) step(b); // warm-up
  const peakAtStart = matmulPeak();

  if (args.profile) {
    const info = await tf.profile(() => {
      step(batches[1]);
    });
    const byKernel = new Map<string, { ms: number; n: number }>();
    for (const k of info.kernels) {
      const e = byKernel.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += Number(k.kernelTimeMs) || 0;
      e.n++;
      byKernel.set(k.name, e);
    }
    const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((s, [, e]) => s + e.ms, 0);
    console.log(`kernels of one batch-64 step (sum ${total.toFixed(0)} ms):`);
    for (const [name, e] of rows.slice(0, 25)) console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(8)} ms  x${e.n}`);
  }

  const times = batches.map(() => [] as number[]);
  for (let r = 0; r < Number(args.rounds); r++) {
    batches.forEach((b, i) => {
      const t = performance.now();
      step(b);
      times[i].push(performance.now() - t);
    });
  }
  // The machine is shared: take the better of a peak measured before and one right after the steps.
  const peak = Math.max(peakAtStart, matmulPeak());
  console.log(`${backend}: matmul peak (1024^3) ${(peak / 1e9).toFixed(2)} GFLOP/s; medians of ${args.rounds} interleaved rounds`);
  batches.forEach((b, i) => {
    const ms = median(times[i]);
    const seq = policyDims(config).nPatch + b.prompts.length + b.responses.length;
    const achieved = stepFlops(config, b) / (ms / 1000);
    console.log(
      `  batch ${String(b.prompts.batch).padStart(2)} x ${seq} tokens: ${ms.toFixed(0).padStart(5)} ms/step, ` +
        `${((b.prompts.batch * seq) / (ms / 1000)).toFixed(0)} tokens/s, ${((100 * achieved) / peak).toFixed(1)}% of peak`,
    );
  });
  opt.dispose();
  policy.dispose();
}

await main();
