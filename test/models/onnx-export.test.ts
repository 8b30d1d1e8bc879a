/**
 * The exported policy (models/onnx/export-graph.ts + models/export-metadata.ts), run with plain
 * onnxruntime-node the way a user in another language would: raw pixels and token ids built from the
 * metadata alone. Its log-probs equal the engine's teacher-forced ones, and a greedy loop over it
 * reproduces the engine's greedy responses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { policyConfig, policyDims, type PolicyConfig, type PolicyConfigInput } from '../../models/config.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { EXPORT_FORMAT, EXPORT_METADATA_KEYS } from '../../models/export-metadata.ts';
import { exportCachedGraphBuilder, exportGraphBuilder } from '../../models/onnx/export-graph.ts';
import { exportMetadata } from '../../models/export-metadata.ts';
import { encode, encodePrompt, encodeResponse, EOS_ID } from '../../models/tokenizer.ts';
import type { Params } from '../../models/params.ts';
import type { RgbImage } from '../../util/image.ts';
import { randomImage, randomParams } from './reference-forward.ts';

const TINY: PolicyConfigInput = { imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 16, maxResponseLen: 8 };
const QUESTIONS = ['What is 3+5?', 'Hi', '<think>x'];
const RESPONSES = ['<think>8</think>', '12', 'a b c'].map(encodeResponse);

function exported(cfg: PolicyConfig, params: Params) {
  const bytes = exportGraphBuilder(cfg, params).toBytes('test', exportMetadata(cfg, { weights: 'test' }));
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const metadata = Object.fromEntries((model.metadataProps ?? []).map((m) => [m.key ?? '', JSON.parse(m.value ?? '')]));
  return { bytes, metadata, model };
}

/** Left-padded [pixels, input_ids, attention_mask] feeds, as a user would build them. */
function feeds(cfg: PolicyConfig, images: RgbImage[], rows: number[][]) {
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(B * L);
  const mask = new BigInt64Array(B * L);
  rows.forEach((r, b) => {
    r.forEach((t, j) => {
      ids[b * L + L - r.length + j] = BigInt(t);
      mask[b * L + L - r.length + j] = 1n;
    });
  });
  const pixels = new Uint8Array(B * cfg.imageHeight * cfg.imageWidth * 3);
  images.forEach((im, b) => pixels.set(im.data, b * im.data.length));
  return {
    L,
    feeds: {
      pixels: new ort.Tensor('uint8', pixels, [B, cfg.imageHeight, cfg.imageWidth, 3]),
      input_ids: new ort.Tensor('int64', ids, [B, L]),
      attention_mask: new ort.Tensor('int64', mask, [B, L]),
    },
  };
}

function logSoftmaxAt(logits: Float32Array, offset: number, V: number, token: number): number {
  let mx = -Infinity;
  for (let j = 0; j < V; j++) mx = Math.max(mx, logits[offset + j]);
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp(logits[offset + j] - mx);
  return logits[offset + token] - mx - Math.log(z);
}

for (const [name, extra] of [
  ['tied embeddings', {}],
  ['an image encoder and an untied head', { nEncoderLayers: 1, tieEmbeddings: false, vocabSize: 110 }],
] as const) {
  test(`exported model (${name}): same log-probs as the engine's teacher-forced pass`, async () => {
    const cfg = policyConfig({ ...TINY, ...extra });
    const params = randomParams(cfg, 3, 0.3);
    const images = QUESTIONS.map((_, i) => randomImage(cfg, 20 + i));
    const engine = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
    try {
      await engine.setWeights(params, 0);
      const expected = await engine.logProbs({ images, prompts: QUESTIONS, responses: RESPONSES });
      const session = await ort.InferenceSession.create(exported(cfg, params).bytes);
      assert.deepEqual(session.inputNames, ['pixels', 'input_ids', 'attention_mask']);
      assert.deepEqual(session.outputNames, ['logits']);
      const prompts = QUESTIONS.map(encodePrompt);
      const { L, feeds: f } = feeds(
        cfg,
        images,
        prompts.map((p, i) => [...p, ...RESPONSES[i]]),
      );
      const logits = (await session.run(f)).logits;
      assert.deepEqual(logits.dims, [3, L, cfg.vocabSize]);
      const data = logits.data as Float32Array;
      let worst = 0;
      let spread = 0;
      RESPONSES.forEach((resp, b) => {
        const start = L - prompts[b].length - resp.length; // left pads of the row
        resp.forEach((tok, t) => {
          // token t of the response is predicted at the position before it
          const pos = start + prompts[b].length + t - 1;
          const lp = logSoftmaxAt(data, (b * L + pos) * cfg.vocabSize, cfg.vocabSize, tok);
          worst = Math.max(worst, Math.abs(lp - expected.logprobs[b][t]));
          spread = Math.max(spread, Math.abs(lp - Math.log(1 / cfg.vocabSize)));
        });
      });
      assert.ok(worst < 1e-5, `max |exported - engine| log-prob difference ${worst}`);
      assert.ok(spread > 0.1, `the test policy is not uniform (max distance from uniform ${spread})`);
    } finally {
      await engine.close();
    }
  });
}

test('exported model: the metadata parses and suffices to tokenize, and a greedy loop over it matches the engine', async () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 5, 0.3);
  const { bytes, metadata, model } = exported(cfg, params);
  const K = EXPORT_METADATA_KEYS;
  assert.deepEqual(metadata[K.format], { format: EXPORT_FORMAT, version: 1, kv_cache: false });
  assert.deepEqual(metadata[K.policyConfig], cfg);
  assert.equal(metadata[K.image].height, 8);
  assert.equal(metadata[K.image].width, 12);
  assert.equal(metadata[K.image].channel_order, 'RGB');
  assert.equal(metadata[K.generation].max_new_tokens, 8);
  assert.deepEqual(Object.keys(metadata[K.io].inputs), ['pixels', 'input_ids', 'attention_mask']);
  assert.equal(model.graph?.input?.length, 3, 'the weights are initializers, not inputs');
  // a tokenizer written from the metadata alone agrees with the project's
  const tok = metadata[K.tokenizer];
  assert.equal(tok.vocab.length, cfg.vocabSize);
  const ownEncode = (s: string) => {
    const out: number[] = [];
    for (let i = 0; i < s.length; ) {
      const markup = Object.entries(tok.markup_tokens as Record<string, number>).find(([t]) => s.startsWith(t, i));
      if (markup) {
        out.push(markup[1]);
        i += markup[0].length;
      } else out.push(tok.vocab.indexOf(s[i++]));
    }
    return [tok.special_tokens.bos, ...out];
  };
  for (const q of ['What is 3+5?', '<answer>7</answer> ~!', '<thin']) assert.deepEqual(ownEncode(q), encodePrompt(q), q);
  assert.deepEqual(ownEncode('z').slice(1), encode('z'));

  // greedy decoding with the exported model, one row at a time, vs the engine's greedy samples
  const images = QUESTIONS.map((_, i) => randomImage(cfg, 40 + i));
  const session = await ort.InferenceSession.create(bytes);
  const engine = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  try {
    await engine.setWeights(params, 0);
    const greedy = await engine.sample({ images, prompts: QUESTIONS, temperature: 0, seed: 0 });
    const gen = metadata[K.generation];
    for (let b = 0; b < QUESTIONS.length; b++) {
      const seq = ownEncode(QUESTIONS[b]);
      const out: number[] = [];
      while (out.length < gen.max_new_tokens) {
        const { L, feeds: f } = feeds(cfg, [images[b]], [seq]);
        const logits = (await session.run(f)).logits.data as Float32Array;
        let best = -1;
        for (let j = 0; j < cfg.vocabSize; j++) {
          if (gen.never_sample.includes(j)) continue;
          if (best < 0 || logits[(L - 1) * cfg.vocabSize + j] > logits[(L - 1) * cfg.vocabSize + best]) best = j;
        }
        out.push(best);
        seq.push(best);
        if (best === gen.eos_token_id) break;
      }
      assert.deepEqual(out, Array.from(greedy.responses[b].tokens), `question ${b}`);
    }
    assert.ok(
      greedy.responses.some((r) => r.tokens.length > 1 && r.tokens[0] !== EOS_ID),
      'the loop decodes more than one token',
    );
  } finally {
    await engine.close();
  }
});

test('exported model: the same weights give the same bytes; parameters that do not fit the config are refused', () => {
  const cfg = policyConfig(TINY);
  const params = randomParams(cfg, 7, 0.3);
  assert.deepEqual(exported(cfg, params).bytes, exported(cfg, randomParams(cfg, 7, 0.3)).bytes);
  const { tok_emb: _, ...missing } = params;
  assert.throws(() => exportGraphBuilder(cfg, missing), /exporting the policy: .*tok_emb/);
});

test('key/value-cache variant: prompt then one token per call gives the full model logits, batch left-padded', async () => {
  const cfg = policyConfig({ ...TINY, nEncoderLayers: 1 });
  const params = randomParams(cfg, 11, 0.3);
  const images = QUESTIONS.map((_, i) => randomImage(cfg, 60 + i));
  const full = await ort.InferenceSession.create(exported(cfg, params).bytes);
  const cached = await ort.InferenceSession.create(exportCachedGraphBuilder(cfg, params).toBytes());
  const io = JSON.parse(exportMetadata(cfg, {}, { kvCache: true })[EXPORT_METADATA_KEYS.io]);
  assert.deepEqual(cached.inputNames, Object.keys(io.inputs));
  assert.deepEqual(cached.outputNames.toSorted(), Object.keys(io.outputs).toSorted());
  const { headDim } = policyDims(cfg);
  const rows = QUESTIONS.map(encodePrompt);
  const continuation = [
    [40, 41, 5, 12],
    [1, 1, 1, 1],
    [60, 3, 4, 70],
  ]; // any tokens: teacher-forced
  // first call: the left-padded prompts and an empty past
  const first = feeds(cfg, images, rows);
  const empty = new ort.Tensor('float32', new Float32Array(0), [rows.length, cfg.nHeads, 0, headDim]);
  const past: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cfg.nLayers; i++) Object.assign(past, { [`past_key.${i}`]: empty, [`past_value.${i}`]: empty });
  let out = await cached.run({ ...first.feeds, ...past });
  const mask = Array.from(first.feeds.attention_mask.data as BigInt64Array);
  const got: Float32Array[] = [out.logits.data as Float32Array];
  let width = first.L;
  assert.deepEqual(out['present_key.0'].dims, [3, cfg.nHeads, policyDims(cfg).nPatch + first.L, headDim]);
  for (let t = 0; t < continuation[0].length; t++) {
    for (let i = 0; i < cfg.nLayers; i++) Object.assign(past, { [`past_key.${i}`]: out[`present_key.${i}`], [`past_value.${i}`]: out[`present_value.${i}`] });
    // one new token per row; the mask grows by one column of ones
    const m = new BigInt64Array(rows.length * (width + 1));
    for (let b = 0; b < rows.length; b++) {
      m.set(mask.slice(b * width, (b + 1) * width), b * (width + 1));
      m[b * (width + 1) + width] = 1n;
    }
    mask.splice(0, mask.length, ...m);
    width++;
    out = await cached.run({
      pixels: first.feeds.pixels,
      input_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(continuation, (c) => BigInt(c[t])),
        [rows.length, 1],
      ),
      attention_mask: new ort.Tensor('int64', m, [rows.length, width]),
      ...past,
    });
    got.push(out.logits.data as Float32Array);
  }
  // the full model over the whole sequences, left-padded the same way
  const whole = feeds(
    cfg,
    images,
    rows.map((r, b) => [...r, ...continuation[b]]),
  );
  const want = (await full.run(whole.feeds)).logits.data as Float32Array;
  const V = cfg.vocabSize;
  let worst = 0;
  for (let b = 0; b < rows.length; b++) {
    for (let j = 0; j < whole.L; j++) {
      // call 0 gave positions 0..first.L-1; call t >= 1 gave position first.L + t - 1
      const [call, at, n] = j < first.L ? [0, j, first.L] : [j - first.L + 1, 0, 1];
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(got[call][(b * n + at) * V + v] - want[(b * whole.L + j) * V + v]));
    }
  }
  assert.ok(worst < 1e-5, `max |cached - full| logit difference ${worst}`);
});
