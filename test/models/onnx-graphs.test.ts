/**
 * The ONNX graphs against the contract: the teacher-forced graph vs an independent float64 forward and vs
 * the tfjs forward, and cached decoding (prefill + steps) vs teacher forcing. Runs onnxruntime in-thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { policyConfig, type PolicyConfigInput } from '../../models/config.ts';
import { GraphBuilder } from '../../models/onnx/builder.ts';
import { buildLogprobGraph } from '../../models/onnx/policy-graphs.ts';
import { OrtPolicyRunner } from '../../models/engine/runner.ts';
import { packWeights } from '../../models/engine/weights.ts';
import { EOS_ID } from '../../models/tokenizer.ts';
import { initTf, tf } from '../../util/tf-backend.ts';
import { TfPolicy } from '../../models/policy-tf.ts';
import { randomImage, randomParams, referenceForward } from './reference-forward.ts';
import type { Params } from '../../models/params.ts';
import type { RgbImage } from '../../util/image.ts';

const TINY: PolicyConfigInput = { imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 8, maxResponseLen: 6 };

const images = (cfg: ReturnType<typeof policyConfig>, n: number) => Array.from({ length: n }, (_, i) => randomImage(cfg, 100 + i));
// Prompts of different lengths (left padding), responses of different lengths (right padding, some without EOS).
const PROMPTS = [
  [2, 10, 11, 12, 13],
  [2, 20],
  [2, 30, 31],
];
const RESPONSES = [[40, 41, EOS_ID], [50, 51, 52, 53, 54, EOS_ID], [60]];

function maxDiff(a: ArrayLike<number>[], b: ArrayLike<number>[], lens: number[]): number {
  let m = 0;
  a.forEach((row, i) => {
    for (let t = 0; t < lens[i]; t++) m = Math.max(m, Math.abs(row[t] - b[i][t]));
  });
  return m;
}

async function runner(cfg: ReturnType<typeof policyConfig>, seed: number, std?: number) {
  const params = randomParams(cfg, seed, std);
  const r = await OrtPolicyRunner.create(cfg, { intraOpThreads: 1 });
  r.setWeights(packWeights(cfg, params, 7));
  return { r, params };
}

test('graph builder: serialises, runs, and names errors', async () => {
  const g = new GraphBuilder('t');
  const x = g.input('x', 'float32', ['B', 3]);
  const w = g.input('w', 'float32', [3, 2]);
  g.output(g.op('Add', [g.op('MatMul', [x, w]), g.scalarF(0.5)]), 'y', 'float32', ['B', 2]);
  const s = await ort.InferenceSession.create(g.toBytes());
  const out = await s.run({
    x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
    w: new ort.Tensor('float32', Float32Array.from([1, 0, 0, 1, 1, 1]), [3, 2]),
  });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [4.5, 5.5, 10.5, 11.5]);
  assert.deepEqual(out.y.dims, [2, 2]);
  assert.throws(() => g.op('Relu', ['nope']), /unknown value 'nope'/);
  assert.throws(() => g.input('x', 'float32', [1]), /'x' is already used/);
  assert.throws(() => g.op('LeakyRelu', [x], { alpha: 0.1 }), /not an integer/);
});

for (const [label, extra] of [
  ['tied head, no encoder', {}],
  ['untied head, one encoder layer', { tieEmbeddings: false, nEncoderLayers: 1 }],
] as const) {
  test(`log-prob graph equals the float64 reference (${label})`, async () => {
    const cfg = policyConfig({ ...TINY, ...extra });
    const { r, params } = await runner(cfg, 1);
    const imgs = images(cfg, 3);
    const got = await r.logProbs({ images: imgs, prompts: PROMPTS, responses: RESPONSES, withEntropy: true });
    const ref = referenceForward(cfg, params, imgs, PROMPTS, RESPONSES);
    const lens = RESPONSES.map((x) => x.length);
    assert.equal(got.version, 7);
    assert.deepEqual(
      got.logprobs.map((x) => x.length),
      lens,
    );
    assert.ok(maxDiff(got.logprobs, ref.logprobs, lens) < 2e-5, `logprobs differ by ${maxDiff(got.logprobs, ref.logprobs, lens)}`);
    assert.ok(maxDiff(got.entropy!, ref.entropy, lens) < 2e-5, `entropy differs by ${maxDiff(got.entropy!, ref.entropy, lens)}`);
    assert.ok(got.logprobs.flatMap((x) => Array.from(x)).every((v) => v < 0));
    await r.release();
  });
}

/** ORT and the tfjs policy score the same tokens: log-probs and entropy agree within 1e-4. Returns ORT's result. */
async function expectTfjsParity(
  cfg: ReturnType<typeof policyConfig>,
  r: OrtPolicyRunner,
  params: Params,
  imgs: RgbImage[],
  prompts: number[][],
  responses: number[][],
) {
  const got = await r.logProbs({ images: imgs, prompts, responses, withEntropy: true });
  const pol = new TfPolicy(cfg, params);
  const out = pol.logProbs({ images: imgs, promptIds: prompts, responseIds: responses }, { withEntropy: true });
  const Lr = out.logprobs.shape[1];
  const tfLp = out.logprobs.dataSync() as Float32Array;
  const tfEnt = out.entropy!.dataSync() as Float32Array;
  tf.dispose([out.logprobs, out.mask, out.entropy!]);
  pol.dispose();
  const rows = (a: Float32Array) => responses.map((_, b) => a.subarray(b * Lr, (b + 1) * Lr));
  const lens = responses.map((x) => x.length);
  assert.ok(maxDiff(got.logprobs, rows(tfLp), lens) <= 1e-4, `logprobs differ by ${maxDiff(got.logprobs, rows(tfLp), lens)}`);
  assert.ok(maxDiff(got.entropy!, rows(tfEnt), lens) <= 1e-4, `entropy differs by ${maxDiff(got.entropy!, rows(tfEnt), lens)}`);
  return got;
}

test('ORT and tfjs log-probs of the same tokens agree within 1e-4', async () => {
  await initTf();
  const cfg = policyConfig({ ...TINY, nEncoderLayers: 1 });
  const { r, params } = await runner(cfg, 2);
  await expectTfjsParity(cfg, r, params, images(cfg, 3), PROMPTS, RESPONSES);
  await r.release();
});

test('ORT and tfjs agree within 1e-4 at the default (bench) config too', async () => {
  await initTf();
  const cfg = policyConfig();
  const { r, params } = await runner(cfg, 5, 0.08);
  const prompts = [
    [2, ...Array.from({ length: 30 }, (_, i) => 7 + i)],
    [2, 40, 41],
  ];
  const responses = [Array.from({ length: 20 }, (_, i) => 50 + i), [60, 61, EOS_ID]];
  const got = await expectTfjsParity(cfg, r, params, images(cfg, 2), prompts, responses);
  // Not a trivially uniform model: log-probs spread well away from -log(V).
  const spread = Math.max(...got.logprobs.flatMap((x) => Array.from(x, (v) => Math.abs(v + Math.log(cfg.vocabSize)))));
  assert.ok(spread > 1, `log-probs too close to uniform (${spread})`);
  await r.release();
});

test('cached decoding equals uncached teacher forcing, whatever the padding and group size', async () => {
  const cfg = policyConfig({ ...TINY, nEncoderLayers: 1 });
  const { r, params } = await runner(cfg, 3);
  const imgs = images(cfg, 3);
  const s = await r.sample({ images: imgs, prompts: PROMPTS, n: 2, seed: 11, temperature: 1 });
  assert.equal(s.responses.length, 6);
  const rowsImg = s.responses.map((x) => imgs[x.promptIndex]);
  const rowsPrompt = s.responses.map((x) => PROMPTS[x.promptIndex]);
  const rowsResp = s.responses.map((x) => Array.from(x.tokens));
  const ref = referenceForward(cfg, params, rowsImg, rowsPrompt, rowsResp);
  const lens = s.responses.map((x) => x.length);
  assert.ok(
    lens.some((l) => l > 3),
    'responses long enough to exercise several cached steps',
  );
  const d = maxDiff(
    s.responses.map((x) => x.logprobs),
    ref.logprobs,
    lens,
  );
  assert.ok(d < 2e-5, `sampling log-probs differ from teacher forcing by ${d}`);
  // At temperature 1 with no truncation the sampling distribution is the model's (PAD/BOS removed).
  for (const x of s.responses) {
    for (let t = 0; t < x.length; t++) assert.ok(x.samplingLogprobs[t] >= x.logprobs[t] - 1e-6 && x.samplingLogprobs[t] - x.logprobs[t] < 0.2);
  }
  await r.release();
});

test('rows of finished responses are dropped mid-decoding without changing any response', async () => {
  const cfg = policyConfig({ ...TINY, maxResponseLen: 8 });
  const params = randomParams(cfg, 4);
  // Raise the EOS logit through the final LayerNorm shift so that responses end at varied lengths.
  const d = cfg.dModel;
  const eos = params.tok_emb.subarray(EOS_ID * d, (EOS_ID + 1) * d);
  const n2 = eos.reduce((a, x) => a + x * x, 0);
  for (let c = 0; c < d; c++) params.ln_f_b[c] += (2.5 * eos[c]) / n2;
  const r = await OrtPolicyRunner.create(cfg, { intraOpThreads: 1 });
  r.setWeights(packWeights(cfg, params, 1));
  const imgs = images(cfg, 3);
  const s = await r.sample({ images: imgs, prompts: PROMPTS, n: 4, seed: 3 });
  const lens = s.responses.map((x) => x.length);
  // Enough responses end early that the batch is compacted at least once (<= 75% of rows active).
  const endedBy = (t: number) => s.responses.filter((x) => x.finished && x.length <= t).length;
  assert.ok(
    [...Array(cfg.maxResponseLen - 1).keys()].some((t) => endedBy(t + 1) >= 3),
    `lengths ${lens}`,
  );
  assert.ok(
    s.responses.some((x) => !x.finished || x.length > 4),
    `lengths ${lens}`,
  );
  const ref = referenceForward(
    cfg,
    params,
    s.responses.map((x) => imgs[x.promptIndex]),
    s.responses.map((x) => PROMPTS[x.promptIndex]),
    s.responses.map((x) => Array.from(x.tokens)),
  );
  const diff = maxDiff(
    s.responses.map((x) => x.logprobs),
    ref.logprobs,
    lens,
  );
  assert.ok(diff < 2e-5, `sampling log-probs differ from teacher forcing by ${diff}`);
  // Compaction happened: fewer row-steps than rows x steps run.
  const steps = Math.max(...lens) - 1;
  assert.ok(s.stepRows < s.responses.length * steps, `step rows ${s.stepRows} vs ${s.responses.length} x ${steps}`);
  // Prompt 0's responses are the same when sampled in a batch of their own (same streams, other compaction).
  const alone = await r.sample({ images: [imgs[0]], prompts: [PROMPTS[0]], n: 4, seed: 3 });
  assert.deepEqual(
    alone.responses.map((x) => Array.from(x.tokens)),
    s.responses.slice(0, 4).map((x) => Array.from(x.tokens)),
  );
  await r.release();
});

test('the log-prob graph has symbolic batch and lengths, and weights as inputs', async () => {
  const cfg = policyConfig(TINY);
  const g = buildLogprobGraph(cfg);
  const s = await ort.InferenceSession.create(g.bytes);
  for (const n of g.paramNames) assert.ok(s.inputNames.includes(n), `${n} is an input`);
  assert.ok(s.inputNames.includes('tok_emb') && s.inputNames.includes('dec.1.w2'));
  assert.deepEqual(s.outputNames, ['logprobs', 'entropy']);
  await s.release();
});
