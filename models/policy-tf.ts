/**
 * The policy in TensorFlow.js, for the update: teacher-forced per-token log-probs of response tokens
 * (differentiable w.r.t. the parameters) and, if asked, the exact entropy of each next-token distribution.
 * The architecture is specified in models/README.md; the ONNX graphs compute the same function.
 *
 * Built for tfjs-wasm speed: every head in one batched matmul ([B, heads, L, dh]), matmuls and lookups
 * through models/ops.ts (explicit-transpose gradients, one-hot embeddings, no gather gradients), and the
 * last decoder layer evaluated only at the rows whose outputs are read.
 */
import type { RgbImage } from '../util/image.ts';
import { tf } from './tf-backend.ts';
import { matMul, dense, embed, pickTargets, entropyFromLogProbs } from './ops.ts';
import { LN_EPS, type PolicyConfig, policyDims } from './config.ts';
import { type Params, initParams } from './params.ts';
import { type TfParams, createVariables, assignParams, readParams, disposeVariables } from './params-tf.ts';
import {
  type PromptBatch, type TokenMatrix, type TextBatch,
  buildPromptBatch, buildResponseBatch, buildTextBatch, attentionBias, patchify,
} from './batch.ts';

type T = tf.Tensor;

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

function layerNorm(x: T, g: T, b: T): T {
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
function gelu(x: T): T {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), GELU_2C);
  return tf.mul(x, tf.sigmoid(inner));
}

/**
 * Pre-norm transformer block; `bias` is the additive attention mask [B, 1, L, L] (none: full attention).
 * With `rows` = [start, count], only those query rows are computed and returned ([B, count, d]); keys and
 * values still cover the whole sequence. The last decoder layer needs only the rows that predict
 * response tokens, which skips most of its work.
 */
function block(x: T, p: TfParams, pre: string, c: PolicyConfig, bias: T | undefined, rows?: [number, number]): T {
  const [B, L, d] = x.shape as [number, number, number];
  const H = c.nHeads;
  const dh = d / H;
  const [start, Lq] = rows ?? [0, L];
  const h = layerNorm(x, p[`${pre}.ln1_g`], p[`${pre}.ln1_b`]);
  const hq = rows ? tf.slice(h, [0, start, 0], [B, Lq, d]) : h;
  const xq = rows ? tf.slice(x, [0, start, 0], [B, Lq, d]) : x;
  const heads = (src: T, n: number, w: string, bName: string) =>
    tf.reshape(dense(src, p[`${pre}.${w}`], p[`${pre}.${bName}`]), [B, n, H, dh]);
  const q = tf.transpose(heads(hq, Lq, 'wq', 'bq'), [0, 2, 1, 3]); // [B, H, Lq, dh]
  const kT = tf.transpose(heads(h, L, 'wk', 'bk'), [0, 2, 3, 1]); // [B, H, dh, L]
  const v = tf.transpose(heads(h, L, 'wv', 'bv'), [0, 2, 1, 3]); // [B, H, L, dh]
  let scores = matMul(tf.mul(q, 1 / Math.sqrt(dh)), kT); // [B, H, Lq, L]
  if (bias) scores = tf.add(scores, rows ? tf.slice(bias, [0, 0, start, 0], [B, 1, Lq, L]) : bias);
  const att = matMul(tf.softmax(scores), v); // [B, H, Lq, dh]
  const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B, Lq, d]);
  const x1 = tf.add(xq, dense(merged, p[`${pre}.wo`], p[`${pre}.bo`]));
  const h2 = layerNorm(x1, p[`${pre}.ln2_g`], p[`${pre}.ln2_b`]);
  const mlp = dense(gelu(dense(h2, p[`${pre}.w1`], p[`${pre}.b1`])), p[`${pre}.w2`], p[`${pre}.b2`]);
  return tf.add(x1, mlp);
}

/**
 * The forward pass on a prepared batch: `patches` [B, nPatch, patchDim] from `patchify`, `text` from
 * `buildTextBatch`. Returns tensors the caller owns (call inside tf.tidy / variableGrads, or dispose).
 */
export function forwardLogProbs(
  c: PolicyConfig,
  p: TfParams,
  patches: Float32Array,
  text: TextBatch,
  opts: LogProbOptions = {},
): LogProbOutputs {
  const { nPatch, patchDim } = policyDims(c);
  const B = text.batch;
  const Lp = text.promptLen;
  const Lr = text.responseLen;
  const Lt = Lp + Lr;
  const L = nPatch + Lt;
  if (patches.length !== B * nPatch * patchDim) {
    throw new Error(`policy forward: ${patches.length / (nPatch * patchDim)} images for a batch of ${B} prompts`);
  }
  // Image tokens, then the (optional) bidirectional encoder.
  let img = dense(tf.tensor3d(patches, [B, nPatch, patchDim]), p['img.patch_w'], p['img.patch_b']);
  img = tf.add(img, p['img.pos']);
  for (let e = 0; e < c.nEncoderLayers; e++) img = block(img, p, `enc.${e}`, c, undefined);
  // Text tokens with position ids that count only real tokens.
  const tokens = tf.tensor2d(text.tokens, [B, Lt], 'int32');
  const positions = tf.tensor2d(text.positions, [B, Lt], 'int32');
  const txt = tf.add(embed(tokens, p['tok_emb']), embed(positions, p['txt_pos']));
  let x = tf.concat([img, txt], 1); // [B, L, d]
  const bias = tf.tensor4d(attentionBias(text, nPatch), [B, 1, L, L]);
  // Only the positions that predict response tokens are read out: the last prompt token .. the
  // second-to-last response token. The last layer computes just those rows.
  const predict: [number, number] = [nPatch + Lp - 1, Lr];
  for (let i = 0; i < c.nLayers; i++) x = block(x, p, `dec.${i}`, c, bias, i === c.nLayers - 1 ? predict : undefined);
  const hs = layerNorm(x, p['ln_f_g'], p['ln_f_b']); // [B, Lr, d]
  const headW = c.tieEmbeddings ? tf.transpose(p['tok_emb']) : p['head_w'];
  const logp = tf.logSoftmax(dense(hs, headW)); // [B, Lr, V]
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
    const c = this.config;
    const prompt = isPromptBatch(inputs.promptIds) ? inputs.promptIds : buildPromptBatch(inputs.promptIds, c);
    const response = isTokenMatrix(inputs.responseIds) ? inputs.responseIds : buildResponseBatch(inputs.responseIds, c);
    if (inputs.images.length !== prompt.batch) {
      throw new Error(`policy logProbs: ${inputs.images.length} images for ${prompt.batch} prompts`);
    }
    const text = buildTextBatch(prompt, response);
    const patches = patchify(inputs.images, c);
    return tf.tidy(() => forwardLogProbs(c, this.vars, patches, text, opts) as unknown as tf.TensorContainer) as unknown as LogProbOutputs;
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
