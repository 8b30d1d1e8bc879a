/**
 * The onnxruntime trainer (gradients generated from the policy's ONNX graph, AdamW on Float32Arrays, in a
 * worker thread) against the tfjs trainer (the reference):
 * - the gradient of every parameter, on the tiny configs (masked view, chunked rows) and the default one;
 * - a short supervised run and a short PAPO update (papoLoss, micro-batch accumulation) give the same loss
 *   curve, parameters and optimizer state within float32 tolerance;
 * - state export/import, refusal of non-finite steps, named errors, and flat tensor/buffer counts.
 *
 * Gradient tolerance (both sides compute in float32 with different summation orders): for each parameter
 * p with largest gradient element G_p, every element with |g| >= 2% G_p must agree to 1e-4 relative; the
 * smaller ("tiny") elements to 1e-5 G_p absolute. A parameter whose whole gradient is below 1e-4 of the
 * largest over all parameters (the key biases: attention is invariant to them, their true gradient is 0)
 * is compared absolutely, to 1e-6 of that largest value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyConfig, type PolicyConfig, type PolicyConfigInput } from '../../models/config.ts';
import { initTf, tf } from '../../util/tf-backend.ts';
import { OrtTrainer } from '../../models/trainer/ort-trainer.ts';
import { TfTrainer } from '../../models/trainer/tf-trainer.ts';
import { autoEngine, createTrainer } from '../../models/trainer/create.ts';
import { trainConfig } from '../../pipelines/train-config.ts';
import { sftConfig } from '../../pipelines/sft-config.ts';
import type { LossFn, LossInputs, Trainer, TrainRows } from '../../models/trainer/types.ts';
import { linearLoss, tokenMeanNll } from '../../models/trainer/losses.ts';
import { OrtTrainRunner } from '../../models/trainer/ort-train-runner.ts';
import { papoLoss } from '../../algorithms/papo-loss.ts';
import { objectiveConfig } from '../../algorithms/config.ts';
import { EOS_ID } from '../../models/tokenizer.ts';
import { isNonFiniteGradient } from '../../models/adamw.ts';
import type { Params } from '../../models/params.ts';
import { Rng } from '../../util/rng.ts';
import { randomImage, randomParams } from './reference-forward.ts';

await initTf();

const TINY: PolicyConfigInput = { imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 8, maxResponseLen: 6 };

function compareGrads(a: Params, b: Params, what: string): void {
  const maxOf = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const globalMax = Math.max(...Object.values(b).map(maxOf));
  assert.ok(globalMax > 0, `${what}: all gradients are zero`);
  for (const [n, gb] of Object.entries(b)) {
    const ga = a[n];
    assert.equal(ga.length, gb.length, `${what}: ${n} length`);
    const G = maxOf(gb);
    gb.forEach((v, i) => {
      const d = Math.abs(ga[i] - v);
      if (G < 1e-4 * globalMax) assert.ok(d <= 1e-6 * globalMax, `${what}: ${n}[${i}] ${ga[i]} vs ${v} (a vanishing gradient, global max ${globalMax})`);
      else if (Math.abs(v) >= 0.02 * G)
        assert.ok(d <= 1e-4 * Math.abs(v), `${what}: ${n}[${i}] ${ga[i]} vs ${v}: relative ${(d / Math.abs(v)).toExponential(2)} > 1e-4`);
      else assert.ok(d <= 1e-5 * G, `${what}: ${n}[${i}] ${ga[i]} vs ${v} (tiny; parameter max ${G})`);
    });
  }
}

function rowsOf(cfg: PolicyConfig, prompts: number[][], responses: number[][], masked: boolean, seed = 100): TrainRows {
  return {
    images: prompts.map((_, i) => randomImage(cfg, seed + i)),
    prompts,
    responses,
    maskedImages: masked ? prompts.map((_, i) => randomImage(cfg, seed + 50 + i)) : undefined,
  };
}

/** sum(w1 * logprobs) + sum(w2 * masked^2): every position and both views carry gradient. */
function weightedLoss(rows: TrainRows, seed: number): LossFn<undefined> {
  const B = rows.responses.length;
  const T = Math.max(1, ...rows.responses.map((r) => r.length));
  const rng = Rng.seeded(seed);
  const w1 = Float32Array.from({ length: B * T }, () => rng.normal());
  const w2 = Float32Array.from({ length: B * T }, () => rng.normal());
  return ({ logprobs, maskedLogprobs }) => {
    let l = tf.sum(tf.mul(logprobs, tf.tensor2d(w1, [B, T])));
    if (maskedLogprobs) l = tf.add(l, tf.sum(tf.mul(tf.square(maskedLogprobs), tf.tensor2d(w2, [B, T]))));
    return { loss: l as tf.Scalar };
  };
}

const PROMPTS = [
  [2, 10, 11, 12, 13],
  [2, 20],
  [2, 30, 31],
];
const RESPONSES = [[40, 41, EOS_ID], [50, 51, 52, 53, 54, EOS_ID], [60]];

for (const [label, extra] of [
  ['tied head, no encoder', {}],
  ['untied head, one encoder layer', { tieEmbeddings: false, nEncoderLayers: 1 }],
] as const) {
  test(`gradients of every parameter: onnxruntime = tfjs (tiny config, ${label}, masked view, rows in chunks of 2)`, async () => {
    const cfg = policyConfig({ ...TINY, ...extra });
    const params = randomParams(cfg, 1);
    const ort = await OrtTrainer.create(cfg, params, {}, { chunkRows: 2, threads: 1 });
    const ref = new TfTrainer(cfg, params);
    try {
      const rows = rowsOf(cfg, PROMPTS, RESPONSES, true);
      const loss = weightedLoss(rows, 4);
      const a = await ort.accumulate(rows, loss);
      const b = await ref.accumulate(rows, loss);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-4 * Math.abs(b.loss), `loss ${a.loss} vs ${b.loss}`);
      compareGrads(await ort.gradients(), await ref.gradients(), label);
    } finally {
      await ort.close();
      await ref.close();
    }
  });
}

/** G responses per prompt, as a rollout batch has them: the rows of a group share their image and prompt. */
function groupRows(cfg: PolicyConfig, prompts: number[][], G: number, masked: boolean, seed: number): TrainRows {
  const rng = Rng.seeded(seed);
  const images = prompts.map((_, i) => randomImage(cfg, seed + i));
  const maskedImages = prompts.map((_, i) => randomImage(cfg, seed + 50 + i));
  const at = (i: number) => Math.floor(i / G);
  const n = prompts.length * G;
  return {
    images: Array.from({ length: n }, (_, i) => images[at(i)]),
    prompts: Array.from({ length: n }, (_, i) => prompts[at(i)]),
    responses: Array.from({ length: n }, () => {
      const len = 1 + rng.int(cfg.maxResponseLen);
      return Array.from({ length: len }, (_, t) => (t === len - 1 && rng.float() < 0.5 ? EOS_ID : 10 + rng.int(40)));
    }),
    maskedImages: masked ? Array.from({ length: n }, (_, i) => maskedImages[at(i)]) : undefined,
  };
}

for (const [label, extra] of [
  ['tied head, no encoder', {}],
  ['untied head, one encoder layer', { tieEmbeddings: false, nEncoderLayers: 1 }],
] as const) {
  test(`shared prompt prefixes (sharePrefix): gradients and log-probs = tfjs (tiny config, ${label}, groups across chunks, masked view)`, async () => {
    const cfg = policyConfig({ ...TINY, ...extra });
    const params = randomParams(cfg, 3);
    // groups of 3 over chunks of 4 rows: prefixes shared within a chunk and split across chunks; the same
    // prompt ids on another image (the third group) is another prefix; prompt lengths differ (left padding)
    const rows = groupRows(cfg, [[2, 10, 11, 12, 13], [2, 20], [2, 10, 11, 12, 13], [2]], 3, true, 300);
    const ort = await OrtTrainer.create(cfg, params, {}, { chunkRows: 4, threads: 1, sharePrefix: true });
    const ref = new TfTrainer(cfg, params);
    try {
      const loss = weightedLoss(rows, 8);
      const a = await ort.accumulate(rows, loss);
      const b = await ref.accumulate(rows, loss);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-4 * Math.abs(b.loss), `loss ${a.loss} vs ${b.loss}`);
      compareGrads(await ort.gradients(), await ref.gradients(), `shared prefix, ${label}`);
    } finally {
      await ort.close();
      await ref.close();
    }
  });
}

test('shared prompt prefixes: single-token prompts take the full pass; both passes give the same gradients', async () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 4);
  const shared = await OrtTrainer.create(cfg, params, {}, { chunkRows: 6, threads: 1, sharePrefix: true });
  const full = await OrtTrainer.create(cfg, params, {}, { chunkRows: 6, threads: 1 });
  try {
    for (const prompts of [
      [[2], [2]],
      [
        [2, 30, 31],
        [2, 40],
      ],
    ]) {
      const rows = groupRows(cfg, prompts, 3, true, 400);
      const loss = weightedLoss(rows, 9);
      const a = await shared.accumulate(rows, loss);
      const b = await full.accumulate(rows, loss);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(b.loss), `loss ${a.loss} vs ${b.loss}`);
      compareGrads(await shared.gradients(), await full.gradients(), `prompts ${JSON.stringify(prompts)}`);
      await shared.zeroGrad();
      await full.zeroGrad();
    }
  } finally {
    await shared.close();
    await full.close();
  }
});

test('gradients of every parameter: onnxruntime = tfjs (default config)', async () => {
  const cfg = policyConfig();
  const params = randomParams(cfg, 5, 0.05);
  const ort = await OrtTrainer.create(cfg, params, {});
  const ref = new TfTrainer(cfg, params);
  try {
    const prompts = [
      [2, ...Array.from({ length: 30 }, (_, i) => 7 + i)],
      [2, 40, 41],
      [2, 50, 51, 52],
    ];
    const responses = [Array.from({ length: 20 }, (_, i) => 50 + i), [60, 61, EOS_ID], Array.from({ length: 40 }, (_, i) => 10 + i)];
    const rows = rowsOf(cfg, prompts, responses, false);
    const loss = weightedLoss(rows, 6);
    await ort.accumulate(rows, loss);
    await ref.accumulate(rows, loss);
    compareGrads(await ort.gradients(), await ref.gradients(), 'default config');
  } finally {
    await ort.close();
    await ref.close();
  }
});

test("'saved' activations give the gradients of 'recompute' (in-thread runner)", async () => {
  const cfg = policyConfig({ ...TINY, nEncoderLayers: 1 });
  const params = randomParams(cfg, 2);
  const rows = { images: PROMPTS.map((_, i) => randomImage(cfg, 10 + i)), prompts: PROMPTS, responses: RESPONSES };
  const cot = Float32Array.from({ length: 3 * 6 }, (_, i) => Math.sin(i));
  const grads = [];
  for (const mode of ['recompute', 'saved'] as const) {
    const r = await OrtTrainRunner.create(cfg, params, {}, { mode, threads: 1, chunkRows: 2 });
    const f = await r.forward(rows);
    assert.deepEqual([f.rows, f.T], [3, 6]);
    await r.backward(cot);
    grads.push(r.gradients());
    await assert.rejects(r.backward(cot), /no forward to differentiate/);
    // One run for a cotangent known in advance: the same log-probs and gradients.
    r.zeroGrad();
    const fb = await r.forwardBackward(rows, cot);
    assert.deepEqual(fb, f);
    assert.deepEqual(r.gradients(), grads.at(-1));
    await assert.rejects(r.forwardBackward(rows, cot.subarray(1)), /cotangent has 17 values, the rows give \[3, 6\]/);
    await r.release();
  }
  compareGrads(grads[1], grads[0], 'saved vs recompute');
});

test('a loss declared linear takes one gradient run and gives exactly the two-run results; a false declaration is refused', async () => {
  const cfg = policyConfig(TINY);
  const rows = rowsOf(cfg, PROMPTS, RESPONSES, true);
  const T = 6;
  const rng = Rng.seeded(12);
  const w1 = Float32Array.from({ length: 3 * T }, () => rng.normal());
  const w2 = Float32Array.from({ length: 3 * T }, () => rng.normal());
  const affine = ({ logprobs, mask, maskedLogprobs }: LossInputs) => {
    const l = tf.add(tf.add(tf.sum(tf.mul(logprobs, tf.tensor2d(w1, [3, T]))), tf.sum(tf.mul(maskedLogprobs!, tf.tensor2d(w2, [3, T])))), 0.5);
    return { loss: l as tf.Scalar, metrics: { tokens: tf.sum(mask).dataSync()[0], lp0: logprobs.dataSync()[0] } };
  };
  const t = await OrtTrainer.create(cfg, randomParams(cfg, 9, 0.1), {}, { threads: 1, chunkRows: 2 });
  try {
    const two = await t.accumulate(rows, affine);
    const twoGrads = await t.gradients();
    await t.zeroGrad();
    const one = await t.accumulate(rows, linearLoss(affine));
    assert.deepEqual(one, two);
    assert.deepEqual(await t.gradients(), twoGrads);
    assert.equal(one.metrics?.tokens, 10);

    const quadratic = linearLoss(weightedLoss(rows, 3));
    await assert.rejects(t.accumulate(rows, quadratic), /declared linear in the log-probs \(LossFn.linear\) but is not.*accumulated gradients were dropped/);
    for (const [n, g] of Object.entries(await t.gradients()))
      assert.ok(
        g.every((v) => v === 0),
        `${n}: gradients left after a refused micro-batch`,
      );
  } finally {
    await t.close();
  }
});

/** Runs `steps` optimizer steps of `micro` micro-batches each on a trainer; returns the losses. */
async function run(t: Trainer, batches: { rows: TrainRows; loss: LossFn<unknown> }[][]): Promise<number[]> {
  const losses: number[] = [];
  for (const step of batches) {
    for (const mb of step) losses.push((await t.accumulate(mb.rows, mb.loss)).loss);
    await t.step();
  }
  return losses;
}

/**
 * Largest relative difference (floor 1e-3) over the arrays of two records. The key biases are left out:
 * attention is invariant to them, so their gradient is float32 noise that Adam, which normalises each
 * element's step, turns into full-size steps of either sign on either trainer.
 */
function maxRel(a: Params, b: Params): { rel: number; at: string } {
  let rel = 0;
  let at = '';
  for (const n of Object.keys(b)) {
    if (/\.bk$/.test(n)) continue;
    b[n].forEach((v, i) => {
      const r = Math.abs(a[n][i] - v) / Math.max(1e-3, Math.abs(v));
      if (r > rel) [rel, at] = [r, `${n}[${i}]: ${a[n][i]} vs ${v}`];
    });
  }
  return { rel, at };
}

function assertClose(a: Params, b: Params, tol: number, what: string): void {
  const { rel, at } = maxRel(a, b);
  assert.ok(rel <= tol, `${what} differ by ${rel.toExponential(2)} relative at ${at}`);
}

test('a short supervised run gives the same loss curve, parameters and optimizer state on both trainers', async () => {
  const cfg = policyConfig({ ...TINY, seed: 3 });
  const params = randomParams(cfg, 3, 0.1);
  const opt = { lr: 3e-3, weightDecay: 0.1, maxGradNorm: 0.5, schedule: { kind: 'cosine' as const, warmupSteps: 2, totalSteps: 6 } };
  const rng = Rng.seeded(9);
  const batches = Array.from({ length: 6 }, (_, s) => {
    const prompts = Array.from({ length: 4 }, () => [2, ...Array.from({ length: 1 + rng.int(6) }, () => 7 + rng.int(90))]);
    const responses = Array.from({ length: 4 }, () => [...Array.from({ length: rng.int(5) }, () => 7 + rng.int(90)), EOS_ID]);
    return [{ rows: rowsOf(cfg, prompts, responses, false, 300 + 10 * s), loss: tokenMeanNll as LossFn<unknown> }];
  });
  const ort = await createTrainer({ engine: 'ort', config: cfg, params, optimizer: opt, ort: { threads: 1, chunkRows: 3 } });
  const ref = await createTrainer({ engine: 'tfjs', config: cfg, params, optimizer: opt });
  try {
    const la = await run(ort, batches);
    const lb = await run(ref, batches);
    la.forEach((l, i) => assert.ok(Math.abs(l - lb[i]) <= 2e-5 * Math.abs(lb[i]), `step ${i + 1}: loss ${l} vs ${lb[i]}`));
    assert.ok(lb[5] < lb[0], `the loss goes down (${lb[0]} -> ${lb[5]})`);
    assert.equal(ort.stepCount, 6);
    assertClose(await ort.getParams(), await ref.getParams(), 1e-3, 'parameters');
    const sa = await ort.exportOptimizerState();
    const sb = await ref.exportOptimizerState();
    assert.equal(sa.step, sb.step);
    assertClose(sa.m, sb.m, 1e-2, 'first moments');
    assertClose(sa.v, sb.v, 1e-2, 'second moments');
  } finally {
    await ort.close();
    await ref.close();
  }
});

test('a short PAPO update (papoLoss, 2 micro-batches per step, recomputed masked view) gives the same loss curve on both trainers', async () => {
  const cfg = policyConfig({ ...TINY, seed: 4 });
  const params = randomParams(cfg, 4, 0.1);
  const objective = objectiveConfig({ recompute_masked_logprobs: true }, 'papo_g');
  const rng = Rng.seeded(10);
  const micro = (s: number, k: number) => {
    const B = 3;
    const prompts = Array.from({ length: B }, () => [2, ...Array.from({ length: 1 + rng.int(5) }, () => 7 + rng.int(90))]);
    const responses = Array.from({ length: B }, () => [...Array.from({ length: 1 + rng.int(4) }, () => 7 + rng.int(90)), EOS_ID]);
    const rows = rowsOf(cfg, prompts, responses, true, 500 + 20 * s + 5 * k);
    const T = Math.max(...responses.map((r) => r.length));
    const noisy = () => Float32Array.from({ length: B * T }, () => -2 + 0.3 * rng.normal());
    const old = noisy();
    const refLp = noisy();
    const adv = Float32Array.from({ length: B }, () => rng.normal());
    const loss: LossFn<unknown> = ({ logprobs, mask, maskedLogprobs }) => {
      const out = papoLoss(
        {
          logprobs,
          oldLogprobs: tf.tensor2d(old, [B, T]),
          refLogprobs: tf.tensor2d(refLp, [B, T]),
          maskedLogprobs,
          advantages: tf.tensor1d(adv),
          responseMask: mask,
        },
        objective,
        { gradAccumSteps: 2 },
      );
      return { loss: out.loss, metrics: out.metrics };
    };
    return { rows, loss };
  };
  const batches = Array.from({ length: 3 }, (_, s) => [micro(s, 0), micro(s, 1)]);
  const opt = { lr: 1e-2, maxGradNorm: 1 };
  const ort = await createTrainer({ engine: 'ort', config: cfg, params, optimizer: opt, ort: { threads: 1 } });
  const ref = await createTrainer({ engine: 'tfjs', config: cfg, params, optimizer: opt });
  try {
    const la = await run(ort, batches);
    const lb = await run(ref, batches);
    la.forEach((l, i) => assert.ok(Math.abs(l - lb[i]) <= 1e-4 * Math.max(1e-2, Math.abs(lb[i])), `micro-batch ${i + 1}: loss ${l} vs ${lb[i]}`));
    assertClose(await ort.getParams(), await ref.getParams(), 1e-3, 'parameters');
  } finally {
    await ort.close();
    await ref.close();
  }
});

test('onnxruntime trainer: state export/import, non-finite steps refused, named errors, flat tensor and buffer counts', async () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 6, 0.1);
  const t = await OrtTrainer.create(cfg, params, { lr: 1e-2 }, { threads: 1 });
  try {
    const rows = rowsOf(cfg, PROMPTS, RESPONSES, false);
    await t.minimize(rows, tokenMeanNll);
    const counts: number[][] = [];
    for (let s = 0; s < 3; s++) {
      await t.minimize(rows, tokenMeanNll);
      counts.push([tf.memory().numTensors, await t.heldArrays()]);
    }
    assert.deepEqual(counts[2], counts[0], `tensors / held arrays grow: ${JSON.stringify(counts)}`);
    assert.equal(counts[0][1], 0);

    // Export, train on, import: the next step repeats exactly.
    const savedParams = await t.getParams();
    const savedState = await t.exportOptimizerState();
    assert.equal(savedState.step, 4);
    const a = await t.minimize(rows, tokenMeanNll);
    const after = await t.getParams();
    await t.setParams(savedParams);
    await t.importOptimizerState(savedState);
    assert.equal(t.stepCount, 4);
    const b = await t.minimize(rows, tokenMeanNll);
    assert.equal(b.loss, a.loss);
    assert.deepEqual(await t.getParams(), after);

    // A NaN loss gradient: the step is refused, nothing changes, and the trainer goes on.
    const before = await t.getParams();
    const nanLoss: LossFn<undefined> = ({ logprobs }) => ({ loss: tf.mul(tf.sum(logprobs), NaN) as tf.Scalar });
    await assert.rejects(t.minimize(rows, nanLoss), (err: Error) => {
      assert.match(err.message, /gradient norm is NaN at step 6; parameters left unchanged/);
      assert.ok(isNonFiniteGradient(err), 'a typed error, recognisable by its code (the sink skips the step on it)');
      return true;
    });
    assert.deepEqual(await t.getParams(), before);
    assert.equal((await t.exportOptimizerState()).step, 5);
    await assert.rejects(t.step(), /no gradients accumulated/);
    await t.minimize(rows, tokenMeanNll);

    await assert.rejects(t.accumulate({ ...rows, prompts: [[2, 3], [5], [2]] }, tokenMeanNll), /prompt 1: must start with BOS/);
    await assert.rejects(t.accumulate({ ...rows, images: rows.images.slice(1) }, tokenMeanNll), /3 responses but 2 images/);
    await assert.rejects(t.setParams({ ...params, ln_f_g: new Float32Array(3) }), /'ln_f_g' has 3 values/);
    await assert.rejects(t.importOptimizerState({ ...savedState, m: {} }), /missing m\['img.patch_w'\]/);
  } finally {
    await t.close();
  }
  await assert.rejects(t.getParams(), /closed/);
});

test('onnxruntime trainer: the same inputs give bit-identical parameters (2 replicas)', async () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 8, 0.1);
  const rows = rowsOf(cfg, PROMPTS, RESPONSES, true);
  const loss = weightedLoss(rows, 2);
  const results: Params[] = [];
  for (let k = 0; k < 2; k++) {
    const t = await OrtTrainer.create(cfg, params, { lr: 1e-2 }, { chunkRows: 2 });
    for (let s = 0; s < 2; s++) await t.minimize(rows, loss);
    results.push(await t.getParams());
    await t.close();
  }
  assert.deepEqual(results[1], results[0]);
});

test('replicas: one and two give the same steps to float32 rounding; the replicas stay identical; fewer rows than replicas', async () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 11, 0.1);
  const rows = rowsOf(cfg, PROMPTS, RESPONSES, true);
  const loss = weightedLoss(rows, 5);
  const one = await OrtTrainer.create(cfg, params, { lr: 1e-2 }, { replicas: 1, chunkRows: 2 });
  const two = await OrtTrainer.create(cfg, params, { lr: 1e-2 }, { replicas: 2, chunkRows: 2 });
  const three = await OrtTrainer.create(cfg, params, { lr: 1e-2 }, { replicas: 3 });
  try {
    assert.equal(two.replicaCount, 2);
    for (let s = 0; s < 3; s++) {
      const a = await one.minimize(rows, loss);
      const b = await two.minimize(rows, loss);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss), `step ${s + 1}: loss ${a.loss} vs ${b.loss}`);
      assert.ok(Math.abs(a.gradNorm - b.gradNorm) <= 1e-5 * a.gradNorm, `step ${s + 1}: gradient norm ${a.gradNorm} vs ${b.gradNorm}`);
      await two.minimize(
        { ...rows, images: rows.images.slice(0, 1), prompts: rows.prompts.slice(0, 1), responses: rows.responses.slice(0, 1), maskedImages: undefined },
        tokenMeanNll,
      );
      await one.minimize(
        { ...rows, images: rows.images.slice(0, 1), prompts: rows.prompts.slice(0, 1), responses: rows.responses.slice(0, 1), maskedImages: undefined },
        tokenMeanNll,
      );
    }
    assertClose(await two.getParams(), await one.getParams(), 1e-3, 'parameters after 6 steps');
    const [p0, p1] = await two.replicaParams();
    assert.deepEqual(p1, p0, 'both replicas hold the same parameters, bit for bit');
    // Three replicas and three rows: one each; with the masked view, six rows in three shares.
    await three.minimize(rows, loss);
    const ps = await three.replicaParams();
    assert.deepEqual(ps[2], ps[0]);
    // A refused step leaves every replica as it was.
    const nanLoss: LossFn<undefined> = ({ logprobs }) => ({ loss: tf.mul(tf.sum(logprobs), NaN) as tf.Scalar });
    await assert.rejects(two.minimize(rows, nanLoss), (err: Error) => {
      assert.match(err.message, /gradient norm is NaN at step 7; parameters left unchanged/);
      assert.ok(isNonFiniteGradient(err), 'a typed error, recognisable by its code (the sink skips the step on it)');
      return true;
    });
    const after = await two.replicaParams();
    assert.deepEqual(after[0], p0);
    assert.deepEqual(after[1], p0);
    assert.equal(await two.heldArrays(), 0);
    await assert.rejects(OrtTrainer.create(cfg, params, {}, { replicas: 0 }), /replicas must be a positive integer, got 0/);
  } finally {
    await one.close();
    await two.close();
    await three.close();
  }
});

test('tfjs trainer: tensor count stays flat across accumulate/step/zeroGrad', async () => {
  const cfg = policyConfig(TINY);
  const t = new TfTrainer(cfg, randomParams(cfg, 7, 0.1), { lr: 1e-2 });
  const rows = rowsOf(cfg, PROMPTS, RESPONSES, true);
  const loss = weightedLoss(rows, 1);
  const counts: number[] = [];
  for (let s = 0; s < 3; s++) {
    await t.accumulate(rows, loss);
    await t.accumulate(rows, loss);
    await t.step();
    await t.accumulate(rows, loss);
    await t.zeroGrad();
    counts.push(tf.memory().numTensors);
  }
  assert.equal(counts[2], counts[0]);
  await t.close();
});

test("engine choice: 'auto' is tfjs on tfjs-node (the GPU path), onnxruntime otherwise; config keys validate it", async () => {
  assert.equal(autoEngine('tensorflow'), 'tfjs');
  assert.equal(autoEngine('wasm'), 'ort');
  assert.equal(autoEngine('cpu'), 'ort');
  const cfg = policyConfig(TINY);
  await assert.rejects(
    createTrainer({ engine: 'gpu' as never, config: cfg, params: randomParams(cfg, 1) }),
    /trainer engine must be 'auto', 'ort' or 'tfjs', got 'gpu'/,
  );
  assert.equal(trainConfig({}).worker.actor.engine, 'auto');
  assert.equal(trainConfig({ worker: { actor: { engine: 'tfjs' } } }).worker.actor.engine, 'tfjs');
  assert.throws(() => trainConfig({ worker: { actor: { engine: 'gpu' } } }), /worker\.actor\.engine/);
  assert.equal(sftConfig({}).worker.actor.engine, 'auto');
  assert.throws(() => sftConfig({ worker: { actor: { engine: 'gpu' as never } } }), /worker\.actor\.engine/);
});
