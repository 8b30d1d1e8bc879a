/**
 * The policy in TensorFlow.js, for the update: teacher-forced per-token log-probs of response tokens
 * (differentiable w.r.t. the parameters) and, if asked, the exact entropy of each next-token distribution.
 * The architecture is specified in models/README.md; the ONNX graphs compute the same function.
 *
 * Built for tfjs-wasm speed: every head in one batched matmul ([B, heads, L, dh]), matmuls and lookups
 * through models/ops.ts (explicit-transpose gradients, one-hot embeddings, no gather gradients), and the
 * last decoder layer evaluated only at the rows whose outputs are read.
 *
 * The building blocks (layer norm, GELU, block with an optional key/value cache, embeddings, decoder
 * logits at chosen rows) are exported so that other tfjs forwards (bench/policy.ts's samplers) compute
 * the same function with the same code.
 */
import type { RgbImage } from '../util/image.ts';
import { tf } from '../util/tf-backend.ts';
import { matMul, dense, embed, pickTargets, entropyFromLogProbs } from './ops.ts';
import { LN_EPS, type PolicyConfig, policyDims } from './config.ts';
import { type Params, initParams } from './params.ts';
import { type TfParams, createVariables, assignParams, readParams, disposeVariables } from './params-tf.ts';
import { type PromptBatch, type TokenMatrix, type TextBatch, buildPromptBatch, buildResponseBatch, buildTextBatch, attentionBias, patchify } from './batch.ts';

type Tensor = tf.Tensor;

export interface LogProbInputs {
  /** one image per row */
  images: readonly RgbImage[];
  /** prompt rows (question strings or BOS-first token ids, optionally left-padded) or a built PromptBatch */
  promptIds: readonly (string | ArrayLike<number>)[] | PromptBatch;
  /** response token rows (optionally right-padded with PAD) or a built TokenMatrix */
  responseIds: readonly ArrayLike<number>[] | TokenMatrix;
}

export interface LogProbOptions {
  /** also return the exact entropy of every next-token distribution (default false) */
  withEntropy?: boolean;
}

export interface LogProbOutputs {
  /** [B, Lr] log pi(response token | image, prompt, earlier response tokens); 0 at PAD */
  logprobs: tf.Tensor2D;
  /** [B, Lr] 1 where the response token is real, 0 at PAD */
  mask: tf.Tensor2D;
  /** [B, Lr] entropy of the next-token distribution at each response position; 0 at PAD */
  entropy?: tf.Tensor2D;
}

const isPromptBatch = (x: LogProbInputs['promptIds']): x is PromptBatch => !Array.isArray(x) && 'pads' in x;
const isTokenMatrix = (x: LogProbInputs['responseIds']): x is TokenMatrix => !Array.isArray(x) && 'ids' in x;

/** Layer normalisation over the last axis, with gain `g` and bias `b`. */
export function layerNorm(x: Tensor, g: Tensor, b: Tensor): Tensor {
  const mu = tf.mean(x, -1, true);
  const xc = tf.sub(x, mu);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, LN_EPS))), g), b);
}

const GELU_2C = 2 * Math.sqrt(2 / Math.PI);
/**
 * tanh GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written as x * sigmoid(2 sqrt(2/pi) (...))
 * (the same function: 0.5 (1 + tanh z) = sigmoid(2z)) because the wasm Tanh kernel is ~7x slower than Sigmoid.
 */
export function gelu(x: Tensor): Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), GELU_2C);
  return tf.mul(x, tf.sigmoid(inner));
}

/** One layer's attention keys [B, H, dh, T] (already transposed for the score matmul) and values [B, H, T, dh]. */
export interface KeyValues {
  kT: Tensor;
  v: Tensor;
}

export interface BlockOptions {
  /**
   * [start, count]: compute and return only these query rows of x; keys and values still cover all of
   * it. The last decoder layer needs only the rows whose outputs are read, which skips most of its work.
   */
  rows?: [number, number];
  /** keys/values of earlier tokens (a cache): x holds only the new tokens, which attend to them and to themselves */
  past?: KeyValues;
  /**
   * the bias is causal (a query never attends a later key): lets a full-sequence block skip the
   * masked upper triangle (see `causalAttention`)
   */
  causal?: boolean;
}

/** softmax(qs kT + bias) v for scaled queries qs [B, H, n, dh], keys kT [B, H, dh, keys], values v [B, H, keys, dh]. */
function attention(qs: Tensor, kT: Tensor, v: Tensor, bias: Tensor | undefined): Tensor {
  const scores = matMul(qs, kT); // [B, H, n, keys]
  return matMul(tf.softmax(bias ? tf.add(scores, bias) : scores), v);
}

/**
 * Query chunks for `causalAttention`. The batched (B x heads) matmuls of attention run ~10x slower per
 * FLOP on wasm than 2-D ones, so skipping the masked triangle pays: n chunks cost (n + 1) / 2n of the
 * full product (4 chunks: 5/8), against a few slices and a concat (more chunks measured no faster).
 */
const CAUSAL_CHUNKS = 4;

/**
 * `attention` under a causal bias [B, 1, L, L], split into query chunks: the rows [s, e) can only see
 * keys [0, e), so each chunk multiplies against that key prefix only. The skipped keys carry the mask
 * value (-1e9), whose softmax weight is exactly 0, so the result is the same up to float summation order.
 */
function causalAttention(qs: Tensor, kT: Tensor, v: Tensor, bias: Tensor, chunks: number): Tensor {
  const [B, H, L, dh] = qs.shape as [number, number, number, number];
  const size = Math.ceil(L / chunks);
  const outs: Tensor[] = [];
  for (let s = 0; s < L; s += size) {
    const e = Math.min(L, s + size);
    const qc = tf.slice(qs, [0, 0, s, 0], [B, H, e - s, dh]);
    const kc = e === L ? kT : tf.slice(kT, [0, 0, 0, 0], [B, H, dh, e]);
    const vc = e === L ? v : tf.slice(v, [0, 0, 0, 0], [B, H, e, dh]);
    outs.push(attention(qc, kc, vc, tf.slice(bias, [0, 0, s, 0], [B, 1, e - s, e])));
  }
  return outs.length === 1 ? outs[0] : tf.concat(outs, 2);
}

/**
 * Pre-norm transformer block over x [B, L, d]; `bias` is the additive attention mask [B, 1, L, keys]
 * (keys = past tokens + L; none: full attention). Returns the output ([B, L, d], or [B, count, d] with
 * `rows`) and the keys/values of the past and x together, for a cache.
 */
export function block(
  x: Tensor,
  params: TfParams,
  prefix: string,
  cfg: PolicyConfig,
  bias: Tensor | undefined,
  opts: BlockOptions = {},
): { out: Tensor } & KeyValues {
  const [B, L, d] = x.shape as [number, number, number];
  const { rows, past } = opts;
  const H = cfg.nHeads;
  const dh = d / H;
  const [start, Lq] = rows ?? [0, L];
  const h = layerNorm(x, params[`${prefix}.ln1_g`], params[`${prefix}.ln1_b`]);
  const hq = rows ? tf.slice(h, [0, start, 0], [B, Lq, d]) : h;
  const xq = rows ? tf.slice(x, [0, start, 0], [B, Lq, d]) : x;
  const heads = (src: Tensor, n: number, w: string, bName: string) =>
    tf.reshape(dense(src, params[`${prefix}.${w}`], params[`${prefix}.${bName}`]), [B, n, H, dh]);
  const q = tf.transpose(heads(hq, Lq, 'wq', 'bq'), [0, 2, 1, 3]); // [B, H, Lq, dh]
  const kNew = tf.transpose(heads(h, L, 'wk', 'bk'), [0, 2, 3, 1]); // [B, H, dh, L]
  const vNew = tf.transpose(heads(h, L, 'wv', 'bv'), [0, 2, 1, 3]); // [B, H, L, dh]
  const kT = past ? tf.concat([past.kT, kNew], 3) : kNew; // [B, H, dh, keys]
  const v = past ? tf.concat([past.v, vNew], 2) : vNew; // [B, H, keys, dh]
  const qs = tf.mul(q, 1 / Math.sqrt(dh));
  const att =
    bias && !rows && !past && opts.causal
      ? causalAttention(qs, kT, v, bias, CAUSAL_CHUNKS)
      : attention(qs, kT, v, bias && rows ? tf.slice(bias, [0, 0, start, 0], [B, 1, Lq, kT.shape[3] as number]) : bias); // [B, H, Lq, dh]
  const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B, Lq, d]);
  const x1 = tf.add(xq, dense(merged, params[`${prefix}.wo`], params[`${prefix}.bo`]));
  const h2 = layerNorm(x1, params[`${prefix}.ln2_g`], params[`${prefix}.ln2_b`]);
  const mlp = dense(gelu(dense(h2, params[`${prefix}.w1`], params[`${prefix}.b1`])), params[`${prefix}.w2`], params[`${prefix}.b2`]);
  return { out: tf.add(x1, mlp), kT, v };
}

/**
 * Image tokens [B, nPatch, d]: embedded `patches` ([B, nPatch, patchDim] from `patchify`) plus their
 * positions, through the (optional) bidirectional encoder.
 */
export function embedImages(cfg: PolicyConfig, params: TfParams, patches: Float32Array, batch: number): Tensor {
  const { nPatch, patchDim } = policyDims(cfg);
  if (patches.length !== batch * nPatch * patchDim) {
    throw new Error(`policy forward: ${patches.length / (nPatch * patchDim)} images for a batch of ${batch} prompts`);
  }
  let img = dense(tf.tensor3d(patches, [batch, nPatch, patchDim]), params['img.patch_w'], params['img.patch_b']);
  img = tf.add(img, params['img.pos']);
  for (let e = 0; e < cfg.nEncoderLayers; e++) img = block(img, params, `enc.${e}`, cfg, undefined).out;
  return img;
}

/** Text tokens [B, n, d]: token plus position embeddings of int32 `tokens` and `positions` [B, n]. */
export function embedText(params: TfParams, tokens: Tensor, positions: Tensor): Tensor {
  return tf.add(embed(tokens, params.tok_emb), embed(positions, params.txt_pos));
}

/**
 * The decoder's input for a prepared batch, [B, nPatch + promptLen + responseLen, d]: image tokens then
 * text tokens with position ids that count only real tokens (see models/batch.ts).
 */
export function embedSequence(cfg: PolicyConfig, params: TfParams, patches: Float32Array, text: TextBatch): Tensor {
  const B = text.batch;
  const Lt = text.promptLen + text.responseLen;
  const txt = embedText(params, tf.tensor2d(text.tokens, [B, Lt], 'int32'), tf.tensor2d(text.positions, [B, Lt], 'int32'));
  return tf.concat([embedImages(cfg, params, patches, B), txt], 1);
}

export interface DecoderOptions {
  /** [start, count]: the rows whose logits are returned; the last layer computes only these (default all) */
  rows?: [number, number];
  /** per decoder layer, keys/values of earlier tokens (a cache); x then holds only the new tokens */
  past?: readonly KeyValues[];
}

/**
 * The decoder stack and the head: next-token logits [B, count, V] at `rows` of x [B, L, d] (from
 * `embedSequence`, or `embedText` of new tokens with `past`), `bias` the attention mask [B, 1, L, keys].
 * Also returns every layer's keys/values over past and x, the cache for the next call.
 */
export function decoderLogits(cfg: PolicyConfig, params: TfParams, x: Tensor, bias: Tensor, opts: DecoderOptions = {}): { logits: Tensor; cache: KeyValues[] } {
  const cache: KeyValues[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = block(x, params, `dec.${i}`, cfg, bias, { rows: i === cfg.nLayers - 1 ? opts.rows : undefined, past: opts.past?.[i], causal: true });
    x = b.out;
    cache.push({ kT: b.kT, v: b.v });
  }
  const hs = layerNorm(x, params.ln_f_g, params.ln_f_b);
  const headW = cfg.tieEmbeddings ? tf.transpose(params.tok_emb) : params.head_w;
  return { logits: dense(hs, headW), cache };
}

/**
 * The forward pass on a prepared batch: `patches` [B, nPatch, patchDim] from `patchify`, `text` from
 * `buildTextBatch`. Returns tensors the caller owns (call inside tf.tidy / variableGrads, or dispose).
 */
export function forwardLogProbs(cfg: PolicyConfig, params: TfParams, patches: Float32Array, text: TextBatch, opts: LogProbOptions = {}): LogProbOutputs {
  const { nPatch } = policyDims(cfg);
  const B = text.batch;
  const Lp = text.promptLen;
  const Lr = text.responseLen;
  const Lt = Lp + Lr;
  const L = nPatch + Lt;
  const img = embedImages(cfg, params, patches, B);
  const tokens = tf.tensor2d(text.tokens, [B, Lt], 'int32');
  const positions = tf.tensor2d(text.positions, [B, Lt], 'int32');
  const x = tf.concat([img, embedText(params, tokens, positions)], 1); // [B, L, d]
  const bias = tf.tensor4d(attentionBias(text, nPatch), [B, 1, L, L]);
  // Only the positions that predict response tokens are read out: the last prompt token .. the
  // second-to-last response token.
  const { logits } = decoderLogits(cfg, params, x, bias, { rows: [nPatch + Lp - 1, Lr] });
  const logp = tf.logSoftmax(logits); // [B, Lr, V]
  const mask = tf.tensor2d(text.responseMask, [B, Lr]);
  const targets = tf.slice(tokens, [0, Lp], [B, Lr]);
  const logprobs = tf.mul(pickTargets(logp, targets), mask) as tf.Tensor2D;
  const out: LogProbOutputs = { logprobs, mask };
  if (opts.withEntropy) out.entropy = tf.mul(entropyFromLogProbs(logp), mask) as tf.Tensor2D;
  return out;
}

/** The trainable policy: tf.Variables for every parameter of a config, and its log-prob forward. */
export class TfPolicy {
  readonly config: PolicyConfig;
  readonly vars: TfParams;

  constructor(config: PolicyConfig, params: Params = initParams(config)) {
    this.config = config;
    this.vars = createVariables(config, params);
  }

  /** The variables, in parameter-layout order (for optimizers and tf.variableGrads). */
  variableList(): tf.Variable[] {
    return Object.values(this.vars);
  }

  /**
   * Teacher-forced log-probs of `responseIds` given images and prompts; with gradient when called inside
   * tf.variableGrads / tf.grads. Returned tensors belong to the caller.
   */
  logProbs(inputs: LogProbInputs, opts: LogProbOptions = {}): LogProbOutputs {
    const cfg = this.config;
    const prompt = isPromptBatch(inputs.promptIds) ? inputs.promptIds : buildPromptBatch(inputs.promptIds, cfg);
    const response = isTokenMatrix(inputs.responseIds) ? inputs.responseIds : buildResponseBatch(inputs.responseIds, cfg);
    if (inputs.images.length !== prompt.batch) {
      throw new Error(`policy logProbs: ${inputs.images.length} images for ${prompt.batch} prompts`);
    }
    const text = buildTextBatch(prompt, response);
    const patches = patchify(inputs.images, cfg);
    return tf.tidy(() => forwardLogProbs(cfg, this.vars, patches, text, opts) as unknown as tf.TensorContainer) as unknown as LogProbOutputs;
  }

  /** A Float32Array copy of every parameter. */
  getParams(): Params {
    return readParams(this.vars);
  }

  /** Loads parameter values (same config). */
  setParams(params: Params): void {
    assignParams(this.config, this.vars, params);
  }

  dispose(): void {
    disposeVariables(this.vars);
  }
}
