import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POLICY_SIZES, policyConfig, policyDims } from '../../models/config.ts';
import { initParams, paramSpecs, paramCount, validateParams, BLOCK_PARAMS } from '../../models/params.ts';
import { buildPromptBatch, buildResponseBatch, buildTextBatch, attentionBias, patchify } from '../../models/batch.ts';
import { BOS_ID, EOS_ID, PAD_ID, encode } from '../../models/tokenizer.ts';
import { makeImage } from '../../util/image.ts';

test('config: defaults, derived sizes and named validation errors', () => {
  const c = policyConfig({});
  assert.equal(c.dModel, 128);
  assert.equal(c.vocabSize, 102);
  assert.deepEqual(policyDims(c), { nPatch: 32, gridH: 4, gridW: 8, patchDim: 147, headDim: 32, mlpDim: 512, maxTextLen: 112 });
  assert.throws(() => policyConfig({ imageHeight: 30 }), /imageHeight: imageHeight \(30\) must be a multiple of patchSize \(7\)/);
  assert.throws(() => policyConfig({ dModel: 30, nHeads: 4 }), /nHeads: dModel \(30\) must be divisible/);
  assert.throws(() => policyConfig({ vocabSize: 50 }), /vocabSize/);
  assert.throws(() => policyConfig({ dmodel: 3 } as never), /invalid policy config/);
});

test('named sizes: exact parameter counts, up to xxl (~25M)', () => {
  const counts = Object.fromEntries(Object.entries(POLICY_SIZES).map(([k, v]) => [k, paramCount(policyConfig(v))]));
  assert.deepEqual(counts, { small: 125312, base: 447232, large: 1410624, xl: 3260416, xxl: 25421824 });
  // Independently: per decoder block 12 d^2 + 13 d (LayerNorms 4d, q/k/v/o 4(d^2 + d), MLP 8 d^2 + 5d), plus
  // patch embedding (147 d + d), image positions 32 d, tied token embedding 102 d, text positions 112 d, final LayerNorm 2d.
  const byFormula = (d: number, layers: number) => layers * (12 * d * d + 13 * d) + 148 * d + 32 * d + 102 * d + 112 * d + 2 * d;
  assert.equal(counts.xl, byFormula(256, 4));
  assert.equal(counts.xxl, byFormula(512, 8));
  assert.deepEqual(policyDims(policyConfig(POLICY_SIZES.xxl)).headDim, 32);
});

test('params: documented names and shapes; init deterministic by seed', () => {
  const c = policyConfig({ nEncoderLayers: 1, tieEmbeddings: false });
  const shapes = Object.fromEntries(paramSpecs(c).map((s) => [s.name, s.shape]));
  assert.deepEqual(shapes['img.patch_w'], [147, 128]);
  assert.deepEqual(shapes['img.pos'], [32, 128]);
  assert.deepEqual(shapes.tok_emb, [102, 128]);
  assert.deepEqual(shapes.txt_pos, [112, 128]);
  assert.deepEqual(shapes['dec.1.w1'], [128, 512]);
  assert.deepEqual(shapes['dec.1.w2'], [512, 128]);
  assert.deepEqual(shapes['enc.0.wq'], [128, 128]);
  assert.deepEqual(shapes.head_w, [128, 102]);
  for (const k of BLOCK_PARAMS) assert.ok(shapes[`dec.0.${k}`] && shapes[`enc.0.${k}`], k);
  assert.equal(paramCount(policyConfig({})), 447232);
  assert.ok(!('head_w' in Object.fromEntries(paramSpecs(policyConfig({})).map((s) => [s.name, 1]))));

  const a = initParams(c);
  const b = initParams(c);
  const other = initParams(c, 1);
  validateParams(c, a);
  for (const s of paramSpecs(c)) assert.deepEqual(a[s.name], b[s.name], s.name);
  assert.notDeepEqual(a['dec.0.wq'], other['dec.0.wq']);
  assert.ok(a['dec.0.ln1_g'].every((v) => v === 1) && a['dec.0.bq'].every((v) => v === 0));
  // Weights ~ N(0, initStd).
  const w = a['dec.0.w1'];
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
  assert.ok(Math.abs(mean) < 1e-3 && Math.abs(std - 0.02) < 1e-3, `mean ${mean} std ${std}`);
  // Streams are per name: a config with an extra layer keeps the shared parameters identical.
  const bigger = initParams(policyConfig({ nEncoderLayers: 1, tieEmbeddings: false, nLayers: 3 }));
  assert.deepEqual(bigger['dec.1.wk'], a['dec.1.wk']);

  const broken = { ...a, 'dec.0.wq': new Float32Array(3) };
  assert.throws(() => validateParams(c, broken), /'dec.0.wq' has 3 values, expected 16384/);
  const { ln_f_g: _drop, ...missing } = a;
  assert.throws(() => validateParams(c, missing), /missing parameter 'ln_f_g'/);
  assert.throws(() => validateParams(c, { ...a, extra: new Float32Array(1) }), /unexpected parameter 'extra'/);
});

test('batch: left-padded prompts, right-padded responses, positions, masks and attention bias', () => {
  const c = policyConfig({});
  const prompt = buildPromptBatch(['ab', [PAD_ID, BOS_ID, ...encode('xyz')]], c);
  assert.equal(prompt.length, 4);
  assert.deepEqual([...prompt.pads], [1, 0]);
  assert.deepEqual([...prompt.ids], [PAD_ID, BOS_ID, ...encode('ab'), BOS_ID, ...encode('xyz')]);
  const response = buildResponseBatch(
    [
      [...encode('q'), EOS_ID],
      [EOS_ID, PAD_ID, PAD_ID],
    ],
    c,
  );
  assert.equal(response.length, 2);
  const text = buildTextBatch(prompt, response);
  assert.deepEqual([...text.positions], [0, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...text.keyValid], [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  assert.deepEqual([...text.responseMask], [1, 1, 1, 0]);
  const bias = attentionBias(text, 2);
  const L = 8;
  const at = (b: number, q: number, k: number) => bias[b * L * L + q * L + k];
  assert.equal(at(0, 5, 0), 0); // text sees the image
  assert.equal(at(0, 5, 2), -1e9); // PAD key
  assert.equal(at(0, 5, 3), 0);
  assert.equal(at(0, 3, 4), -1e9); // future key
  assert.equal(at(1, 7, 7), -1e9); // PAD response key
  assert.equal(at(1, 6, 6), 0);
  assert.throws(() => buildPromptBatch([[...encode('a')]], c), /prompt 0: must start with BOS/);
  assert.throws(() => buildPromptBatch([[BOS_ID, PAD_ID, 9]], c), /prompt 0: PAD inside the prompt at token 1/);
  assert.throws(() => buildPromptBatch(['x'.repeat(64)], c), /prompt 0: 65 tokens exceed maxPromptLen 64/);
  assert.throws(() => buildResponseBatch([[PAD_ID, 9]], c), /response 0: PAD at token 0/);
  assert.throws(() => buildResponseBatch([[9, 102]], c), /response 0 token 1: token id 102/);
});

test('patchify: row-major patches flattened (py, px, c), scaled to [0, 1]', () => {
  const c = policyConfig({ imageHeight: 4, imageWidth: 6, patchSize: 2 });
  const img = makeImage(4, 6);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) for (let ch = 0; ch < 3; ch++) img.data[(y * 6 + x) * 3 + ch] = y * 60 + x * 10 + ch;
  const p = patchify([img], c);
  assert.equal(p.length, 6 * 12);
  // Patch (gy=1, gx=2) is index 5; its element (py=1, px=0, c=2) is at (1*2+0)*3+2 = 8: pixel (y=3, x=4).
  assert.ok(Math.abs(p[5 * 12 + 8] - (3 * 60 + 4 * 10 + 2) / 255) < 1e-7);
  assert.ok(Math.abs(p[0 * 12 + 4] - (0 * 60 + 1 * 10 + 1) / 255) < 1e-7);
  assert.throws(() => patchify([makeImage(4, 4)], c), /image 0: 4x4, the policy expects 4x6/);
});
