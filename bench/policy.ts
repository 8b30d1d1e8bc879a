/**
 * Policy throughput, side by side in one run (bench model: the default PolicyConfig, random init):
 * - sampling tokens/s: the onnxruntime engine (worker, key/value cache) vs tfjs samplers of the same model
 *   (with a key/value cache, and without: one full forward per token), on the same requests and seeds;
 * - teacher-forced log-prob tokens/s: onnxruntime vs tfjs (TfPolicy.logProbs);
 * - training tokens/s of one tfjs update (TfPolicy + AdamW) and its fraction of the measured matmul peak;
 * - wall time of one sampling batch (worker) concurrent with one update (main thread) vs in sequence.
 *
 * Run: node --import tsx bench/policy.ts [--prompts 16] [--group 8] [--tf-prompts 4] [--threads 2]
 *      [--update-rows 16] [--skip-uncached]
 *
 * The tfjs samplers are built from policy-tf.ts's exported embeddings and decoder (with its key/value
 * cache) and the batch layout of models/batch.ts; that all samplers produce identical responses from
 * identical seeds checks that the engine's graphs and the trainer's forward are the same function.
 */
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { initTf, tf } from '../util/tf-backend.ts';
import { MASK_VALUE, type PolicyConfig, policyConfig, policyDims } from '../models/config.ts';
import { initParams, paramCount } from '../models/params.ts';
import type { TfParams } from '../models/params-tf.ts';
import { type KeyValues, TfPolicy, decoderLogits, embedSequence, embedText } from '../models/policy-tf.ts';
import { AdamW } from '../models/optimizer.ts';
import { attentionBias, buildPromptBatch, buildTextBatch, patchify } from '../models/batch.ts';
import { EOS_ID, PAD_ID, encodePrompt } from '../models/tokenizer.ts';
import { GraphBuilder } from '../models/onnx/builder.ts';
import { PolicyEngine } from '../models/engine/engine.ts';
import { chooseToken } from '../models/engine/sampler.ts';
import { Rng } from '../util/rng.ts';
import type { RgbImage } from '../util/image.ts';
import type { SampleResult } from '../models/engine/types.ts';

const { values: args } = parseArgs({
  options: {
    prompts: { type: 'string', default: '16' },
    group: { type: 'string', default: '8' },
    'tf-prompts': { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    'update-rows': { type: 'string', default: '16' },
    'skip-uncached': { type: 'boolean', default: false },
  },
});
const PROMPTS = Number(args.prompts);
const G = Number(args.group);
const TF_PROMPTS = Number(args['tf-prompts']);
const THREADS = Number(args.threads);
const UPDATE_ROWS = Number(args['update-rows']);
const SKIP_UNCACHED = args['skip-uncached'] === true;

/** Best-of-n GFLOP/s of a 1024^3 matmul in onnxruntime on one thread: the machine's per-core peak (MLAS). */
async function ortMatmulPeak(n = 1024, reps = 6): Promise<number> {
  const g = new GraphBuilder('peak');
  g.output(g.op('MatMul', [g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])]), 'c', 'float32', [n, n]);
  const s = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1 });
  const x = new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]);
  await s.run({ a: x, b: x });
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await s.run({ a: x, b: x });
    best = Math.min(best, performance.now() - t);
  }
  await s.release();
  return (2 * n ** 3) / (best / 1000);
}

/** Best-of-n GFLOP/s of a large square matmul: this backend's practical matmul peak on this machine. */
function matmulPeak(n = 1024, reps = 6): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.matMul(a, b).dispose();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    best = Math.min(best, performance.now() - s);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / (best / 1000);
}

type Tensor = tf.Tensor;
const now = () => performance.now();
const REPS = 3;
async function bestOf<R>(fn: () => Promise<R>, reps = REPS): Promise<{ value: R; ms: number }> {
  let best = Infinity;
  let value: R | undefined;
  for (let i = 0; i < reps; i++) {
    const t = now();
    value = await fn();
    best = Math.min(best, now() - t);
  }
  return { value: value as R, ms: best };
}
const fmt = (x: number, d = 0) => x.toFixed(d);

/** Next-token logits [N, V] at the last row of x, through policy-tf's decoder (and its key/value cache). */
function lastLogits(c: PolicyConfig, p: TfParams, x: Tensor, bias: Tensor, past?: KeyValues[]): { logits: Tensor; cache: KeyValues[] } {
  const [N, L] = x.shape as [number, number, number];
  const { logits, cache } = decoderLogits(c, p, x, bias, { rows: [L - 1, 1], past });
  return { logits: tf.reshape(logits, [N, c.vocabSize]), cache };
}

/** Rows of a sampling batch: prompt b repeated n times, left-padded together. */
function expandPrompts(c: PolicyConfig, prompts: number[][], n: number) {
  const pb0 = buildPromptBatch(prompts, c);
  const N = prompts.length * n;
  const rows = Array.from({ length: N }, (_, r) => Math.floor(r / n));
  const pb = { batch: N, length: pb0.length, ids: new Int32Array(N * pb0.length), pads: new Int32Array(N) };
  rows.forEach((b, r) => {
    pb.ids.set(pb0.ids.subarray(b * pb0.length, (b + 1) * pb0.length), r * pb0.length);
    pb.pads[r] = pb0.pads[b];
  });
  return { pb, rows, N };
}

/** Samples in tfjs with a key/value cache: a prefill forward, then one single-token forward per step. */
function tfSampleCached(c: PolicyConfig, p: TfParams, images: RgbImage[], prompts: number[][], n: number, maxNew: number, seed: number) {
  const { nPatch } = policyDims(c);
  const V = c.vocabSize;
  const { pb, rows, N } = expandPrompts(c, prompts, n);
  const text = buildTextBatch(pb, { batch: N, length: 0, ids: new Int32Array(0) });
  const Lp = pb.length;
  const L = nPatch + Lp;
  const rngs = Array.from({ length: N }, (_, r) => Rng.derive(seed, 'sample', rows[r], r % n));
  const gen: number[][] = Array.from({ length: N }, () => []);
  const done = new Uint8Array(N);
  let tokens = 0;
  // Additive bias over cached keys: 0 for valid keys, MASK_VALUE for PAD (and for the tokens of finished rows).
  const keyBias: number[][] = Array.from({ length: N }, (_, r) =>
    Array.from({ length: L }, (_, k) => (k >= nPatch && text.keyValid[r * Lp + k - nPatch] === 0 ? MASK_VALUE : 0)),
  );
  let cache: KeyValues[] = [];
  let logitsT = tf.tidy(() => {
    const x = embedSequence(
      c,
      p,
      patchify(
        rows.map((b) => images[b]),
        c,
      ),
      text,
    );
    const out = lastLogits(c, p, x, tf.tensor4d(attentionBias(text, nPatch), [N, 1, L, L]));
    cache = out.cache.map((kv) => ({ kT: tf.keep(kv.kT), v: tf.keep(kv.v) }));
    return out.logits;
  });
  for (let t = 0; t < maxNew; t++) {
    const logits = logitsT.dataSync() as Float32Array;
    logitsT.dispose();
    const next = new Int32Array(N);
    for (let r = 0; r < N; r++) {
      if (!done[r]) {
        const ch = chooseToken(logits.subarray(r * V, (r + 1) * V), { temperature: 1, topK: 0, topP: 1 }, rngs[r]);
        gen[r].push(ch.token);
        tokens++;
        if (ch.token === EOS_ID) done[r] = 1;
        else next[r] = ch.token;
      }
      keyBias[r].push(done[r] ? MASK_VALUE : 0);
    }
    if (done.every((d) => d) || t === maxNew - 1) break;
    const pos = Int32Array.from(rows, (_, r) => Lp - pb.pads[r] + t);
    const old = cache;
    logitsT = tf.tidy(() => {
      const x = embedText(p, tf.tensor2d(next, [N, 1], 'int32'), tf.tensor2d(pos, [N, 1], 'int32'));
      const out = lastLogits(c, p, x, tf.tensor4d(keyBias.flat(), [N, 1, 1, L + t + 1]), old);
      cache = out.cache.map((kv) => ({ kT: tf.keep(kv.kT), v: tf.keep(kv.v) }));
      return out.logits;
    });
    for (const o of old) tf.dispose([o.kT, o.v]);
  }
  for (const o of cache) tf.dispose([o.kT, o.v]);
  return { tokens, responses: gen, rows };
}

/** Samples without a cache in tfjs: one full forward over the whole sequence per new token. */
function tfSample(c: PolicyConfig, p: TfParams, images: RgbImage[], prompts: number[][], n: number, maxNew: number, seed: number) {
  const { nPatch } = policyDims(c);
  const V = c.vocabSize;
  const { pb, rows, N } = expandPrompts(c, prompts, n);
  const patches = patchify(
    rows.map((b) => images[b]),
    c,
  );
  const rngs = Array.from({ length: N }, (_, r) => Rng.derive(seed, 'sample', rows[r], r % n));
  const gen: number[][] = Array.from({ length: N }, () => []);
  const done = new Uint8Array(N);
  let tokens = 0;
  for (let t = 0; t < maxNew && !done.every((d) => d); t++) {
    const resp = { batch: N, length: t, ids: new Int32Array(N * t) };
    gen.forEach((g, r) => g.forEach((id, j) => (resp.ids[r * t + j] = id)));
    const text = buildTextBatch(pb, resp);
    const Lt = text.promptLen + t;
    const L = nPatch + Lt;
    const out = tf.tidy(() => lastLogits(c, p, embedSequence(c, p, patches, text), tf.tensor4d(attentionBias(text, nPatch), [N, 1, L, L])).logits);
    const logits = out.dataSync() as Float32Array;
    out.dispose();
    for (let r = 0; r < N; r++) {
      if (done[r]) {
        gen[r].push(PAD_ID);
        continue;
      }
      const ch = chooseToken(logits.subarray(r * V, (r + 1) * V), { temperature: 1, topK: 0, topP: 1 }, rngs[r]);
      gen[r].push(ch.token);
      tokens++;
      if (ch.token === EOS_ID) done[r] = 1;
    }
  }
  return { tokens, responses: gen.map((g) => g.filter((id) => id !== PAD_ID)), rows };
}

/** Useful forward FLOPs of one row (matmuls only; one-hot embedding products excluded). */
function forwardFlops(c: PolicyConfig, promptLen: number, respLen: number): number {
  const { nPatch, patchDim, mlpDim } = policyDims(c);
  const d = c.dModel;
  const S = nPatch + promptLen + respLen;
  const perLayer = 2 * S * d * d * 4 + 2 * S * d * mlpDim * 2 + 4 * S * S * d;
  return 2 * nPatch * patchDim * d + c.nLayers * perLayer + 2 * respLen * d * c.vocabSize;
}

async function main() {
  const backend = await initTf();
  const peakAtStart = matmulPeak();
  const cfg = policyConfig();
  const params = initParams(cfg);
  const rng = Rng.seeded(1);
  const mkImage = (): RgbImage => {
    const data = new Uint8Array(cfg.imageHeight * cfg.imageWidth * 3);
    for (let j = 0; j < data.length; j++) data[j] = rng.int(256);
    return { height: cfg.imageHeight, width: cfg.imageWidth, data };
  };
  const images = Array.from({ length: PROMPTS }, mkImage);
  const prompts = Array.from({ length: PROMPTS }, (_, i) => encodePrompt(`Add the two digits in the image. #${i}`));
  const Lp = Math.max(...prompts.map((p) => p.length));
  const maxNew = cfg.maxResponseLen;
  console.log(
    `papo-stream policy bench: ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `model: default config d=${cfg.dModel} layers=${cfg.nLayers} heads=${cfg.nHeads} image ${cfg.imageHeight}x${cfg.imageWidth}/${cfg.patchSize} ` +
      `(${policyDims(cfg).nPatch} patches), vocab ${cfg.vocabSize}, ${paramCount(cfg)} params; prompt ${Lp} tokens, up to ${maxNew} new`,
  );
  console.log(`tfjs backend: ${backend}; onnxruntime intra-op threads: ${THREADS}\n`);

  const engine = await PolicyEngine.create(cfg, { intraOpThreads: THREADS });
  await engine.setWeights(params, 0);
  const policy = new TfPolicy(cfg, params);

  // ---- sampling: the rollout batch (PROMPTS x G) and a small batch (TF_PROMPTS x G), same requests for all
  // samplers. The machine may be shared: each measurement is the best of several runs.
  const small = { images: images.slice(0, TF_PROMPTS), prompts: prompts.slice(0, TF_PROMPTS) };
  await engine.sample({ ...small, n: G, seed: 0, maxNewTokens: 4 }); // warm-up
  tfSampleCached(cfg, policy.vars, small.images, small.prompts, 1, 2, 0); // warm-up
  const ortBig = await bestOf(() => engine.sample({ images, prompts, n: G, seed: 2 }));
  const tfBig = await bestOf(async () => tfSampleCached(cfg, policy.vars, images, prompts, G, maxNew, 2), 2);
  const ortSmall = await bestOf(() => engine.sample({ ...small, n: G, seed: 1 }));
  const tfSmall = await bestOf(async () => tfSampleCached(cfg, policy.vars, small.images, small.prompts, G, maxNew, 1));
  let tfUncached: { value: ReturnType<typeof tfSample>; ms: number } | undefined;
  if (!SKIP_UNCACHED) tfUncached = await bestOf(async () => tfSample(cfg, policy.vars, small.images, small.prompts, G, maxNew, 1), 1);
  // All samplers draw response (p, g) from the same stream: identical tokens are expected unless float
  // differences flip a draw.
  const sameAs = (rs: number[][], ref: SampleResult) => rs.filter((r, i) => r.join() === Array.from(ref.responses[i].tokens).join()).length;
  // The tfjs sampler's forward against TfPolicy.logProbs and the engine, on tokens it sampled.
  const k = 4;
  const rowsK = tfSmall.value.rows.slice(0, k);
  const check = policy.logProbs({
    images: rowsK.map((b) => small.images[b]),
    promptIds: rowsK.map((b) => small.prompts[b]),
    responseIds: tfSmall.value.responses.slice(0, k),
  });
  const tfLp = check.logprobs.arraySync() as number[][];
  tf.dispose([check.logprobs, check.mask]);
  const ortLpK = await engine.logProbs({
    images: rowsK.map((b) => small.images[b]),
    prompts: rowsK.map((b) => small.prompts[b]),
    responses: tfSmall.value.responses.slice(0, k),
  });
  const parity = Math.max(...ortLpK.logprobs.flatMap((row, i) => Array.from(row, (v, t) => Math.abs(v - tfLp[i][t]))));

  const tps = (tokens: number, ms: number) => (tokens / ms) * 1000;
  const line = (label: string, tokens: number, ms: number) =>
    console.log(`  ${label.padEnd(46)} ${String(tokens).padStart(7)} ${fmt(ms).padStart(8)} ${fmt(tps(tokens, ms)).padStart(10)}`);
  const ratio = (a: { tokens: number }, am: number, b: { tokens: number }, bm: number) => fmt(tps(a.tokens, am) / tps(b.tokens, bm), 1);
  console.log(`sampling (temperature 1, stop on EOS, <= ${maxNew} new)              tokens       ms   tokens/s`);
  line(`ORT engine (worker, KV cache), ${PROMPTS}x${G} rows`, ortBig.value.tokens, ortBig.ms);
  line(`tfjs ${backend} (KV cache), ${PROMPTS}x${G} rows`, tfBig.value.tokens, tfBig.ms);
  line(`ORT engine (worker, KV cache), ${TF_PROMPTS}x${G} rows`, ortSmall.value.tokens, ortSmall.ms);
  line(`tfjs ${backend} (KV cache), ${TF_PROMPTS}x${G} rows`, tfSmall.value.tokens, tfSmall.ms);
  if (tfUncached) line(`tfjs ${backend} (no cache), ${TF_PROMPTS}x${G} rows`, tfUncached.value.tokens, tfUncached.ms);
  console.log(
    `  => ORT / tfjs sampling speed: ${ratio(ortBig.value, ortBig.ms, tfBig.value, tfBig.ms)}x at ${PROMPTS}x${G} rows, ` +
      `${ratio(ortSmall.value, ortSmall.ms, tfSmall.value, tfSmall.ms)}x at ${TF_PROMPTS}x${G} rows (vs cached tfjs)` +
      (tfUncached ? `; ${ratio(ortSmall.value, ortSmall.ms, tfUncached.value, tfUncached.ms)}x vs uncached tfjs` : '') +
      '  (required >= 5x)',
  );
  console.log(
    `     responses identical to ORT's: tfjs ${PROMPTS}x${G} ${sameAs(tfBig.value.responses, ortBig.value)}/${tfBig.value.responses.length}, ` +
      `tfjs ${TF_PROMPTS}x${G} ${sameAs(tfSmall.value.responses, ortSmall.value)}/${tfSmall.value.responses.length}` +
      (tfUncached ? `, uncached ${sameAs(tfUncached.value.responses, ortSmall.value)}/${tfUncached.value.responses.length}` : '') +
      `; ORT vs TfPolicy log-prob max |diff| ${parity.toExponential(2)}`,
  );
  console.log(`     ORT step-graph rows computed at ${PROMPTS}x${G}: ${ortBig.value.stepRows} (finished rows are dropped)\n`);

  // ---- teacher-forced log-probs
  const rows = PROMPTS * G;
  const lr = maxNew;
  const respRows = Array.from({ length: rows }, (_, i) => [...Array.from({ length: lr - 1 }, (_, t) => 7 + ((i * 7 + t) % 90)), EOS_ID]);
  const rowImgs = respRows.map((_, i) => images[Math.floor(i / G)]);
  const rowPrompts = respRows.map((_, i) => prompts[Math.floor(i / G)]);
  await engine.logProbs({ images: rowImgs.slice(0, 8), prompts: rowPrompts.slice(0, 8), responses: respRows.slice(0, 8) });
  const { ms: ortLpMs } = await bestOf(() => engine.logProbs({ images: rowImgs, prompts: rowPrompts, responses: respRows }));
  const chunk = 32;
  const tfChunk = (s: number) => {
    const o = policy.logProbs({ images: rowImgs.slice(s, s + chunk), promptIds: rowPrompts.slice(s, s + chunk), responseIds: respRows.slice(s, s + chunk) });
    o.logprobs.dataSync();
    tf.dispose([o.logprobs, o.mask]);
  };
  tfChunk(0);
  const { ms: tfLpMs } = await bestOf(async () => {
    for (let s = 0; s < rows; s += chunk) tfChunk(s);
  }, 2);
  const lpTokens = rows * lr;
  console.log(`teacher-forced log-probs, ${rows} rows x ${lr} response tokens (tfjs in chunks of ${chunk})`);
  console.log(`  ORT engine   ${fmt(ortLpMs).padStart(7)} ms ${fmt((lpTokens / ortLpMs) * 1000).padStart(9)} response tokens/s`);
  console.log(`  tfjs         ${fmt(tfLpMs).padStart(7)} ms ${fmt((lpTokens / tfLpMs) * 1000).padStart(9)} response tokens/s`);
  console.log(`  => ORT / tfjs: ${fmt(tfLpMs / ortLpMs, 1)}x\n`);

  // ---- one tfjs update step
  const opt = new AdamW(policy.vars, { lr: 1e-4 });
  const upd = {
    images: rowImgs.slice(0, UPDATE_ROWS),
    promptIds: rowPrompts.slice(0, UPDATE_ROWS),
    responseIds: respRows.slice(0, UPDATE_ROWS),
  };
  const update = () =>
    opt.minimize(() => {
      const o = policy.logProbs(upd);
      return tf.neg(tf.div(tf.sum(o.logprobs), tf.sum(o.mask))) as tf.Scalar;
    });
  update(); // warm-up
  const { ms: updMs } = await bestOf(async () => update());
  const seqLen = policyDims(cfg).nPatch + Lp + lr;
  const trainFlops = 3 * UPDATE_ROWS * forwardFlops(cfg, Lp, lr);
  // The machine is shared: take the best of a measurement at start-up and one right after the update.
  const peak = Math.max(peakAtStart, matmulPeak());
  const n = 1024;
  const achieved = trainFlops / (updMs / 1000);
  const ortPeak = await ortMatmulPeak();
  console.log(`tfjs update (fwd + bwd + AdamW), ${UPDATE_ROWS} rows x ${seqLen} tokens (${lr} response tokens each)`);
  console.log(
    `  ${fmt(updMs)} ms/step: ${fmt((UPDATE_ROWS * lr) / (updMs / 1000))} response tokens/s, ${fmt((UPDATE_ROWS * seqLen) / (updMs / 1000))} sequence tokens/s`,
  );
  console.log(
    `  model FLOPs ${fmt(trainFlops / 1e9, 2)} GFLOP/step -> ${fmt(achieved / 1e9, 2)} GFLOP/s; ${backend} matmul peak (${n}^3) ${fmt(peak / 1e9, 2)} GFLOP/s` +
      ` => ${fmt((100 * achieved) / peak, 1)}% of peak`,
  );
  console.log(
    `  (for scale: onnxruntime's 1-thread ${n}^3 matmul ${fmt(ortPeak / 1e9, 2)} GFLOP/s => the update reaches ${fmt((100 * achieved) / ortPeak, 1)}% of one core's MLAS peak; tfjs-wasm runs one thread)\n`,
  );

  // ---- overlap: one sampling batch in the worker while one update runs on the main thread
  const sampleReq = { images, prompts, n: G, seed: 3 };
  let sMs = Infinity;
  let uMs = Infinity;
  let parMs = Infinity;
  let t0 = 0;
  for (let round = 0; round < 2; round++) {
    t0 = now();
    await engine.sample(sampleReq);
    sMs = Math.min(sMs, now() - t0);
    t0 = now();
    update();
    uMs = Math.min(uMs, now() - t0);
    t0 = now();
    const sampling = engine.sample(sampleReq); // posted to the worker before the update blocks this thread
    update();
    await sampling;
    parMs = Math.min(parMs, now() - t0);
  }
  console.log(`overlap: sampling ${PROMPTS}x${G} (worker, ${THREADS} intra-op threads) and one update (main thread), best of 2`);
  console.log(`  in sequence ${fmt(sMs + uMs)} ms (sample ${fmt(sMs)} + update ${fmt(uMs)}); concurrent ${fmt(parMs)} ms => ${fmt((sMs + uMs) / parMs, 2)}x`);

  policy.dispose();
  await engine.close();
}

await main();
