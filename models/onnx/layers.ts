/**
 * The policy's layers as ONNX subgraphs (the function of models/README.md, written once for all graphs).
 *
 * Shapes: B batch, S sequence, d = dModel, h = nHeads, k = d / h. Keys are kept transposed per head,
 * kT [B, h, k, S], so every MatMul runs on untransposed operands and a decoding cache can be fed back as is.
 */
import { LN_EPS, MASK_VALUE, type PolicyConfig, policyDims } from '../config.ts';
import type { GraphBuilder } from './builder.ts';

/** The graph value holding parameter `name`: parameters are graph inputs named as in models/params.ts. */
export const param = (name: string): string => name;

/** int64 "to the end" for Slice ends (Slice clamps it). */
export const SLICE_END = 2 ** 40;

export class Layers {
  readonly d: number;
  readonly h: number;
  readonly k: number;

  constructor(
    readonly g: GraphBuilder,
    readonly cfg: PolicyConfig,
  ) {
    this.d = cfg.dModel;
    this.h = cfg.nHeads;
    this.k = policyDims(cfg).headDim;
  }

  add(a: string, b: string): string {
    return this.g.op('Add', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.g.op('Mul', [a, b]);
  }
  matmul(a: string, b: string): string {
    return this.g.op('MatMul', [a, b]);
  }
  dense(x: string, w: string, b?: string): string {
    const y = this.matmul(x, w);
    return b ? this.add(y, b) : y;
  }
  layerNorm(x: string, gain: string, bias: string): string {
    return this.g.op('LayerNormalization', [x, gain, bias], { axis: -1, epsilon: { float: LN_EPS } });
  }
  /**
   * tanh GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated as x * sigmoid(x (c1 + c2 x^2))
   * with c1 = 2 sqrt(2/pi), c2 = 0.044715 c1 (the same function: 0.5 (1 + tanh z) = sigmoid(2z)) in six
   * elementwise ops instead of nine: fewer passes over [B, S, mlpDim] forward, and fewer in its gradient.
   */
  gelu(x: string): string {
    const g = this.g;
    const c1 = 2 * Math.sqrt(2 / Math.PI);
    const c2 = 0.044715 * c1;
    const xx = this.mul(x, x);
    const s = g.op('Sigmoid', [this.mul(x, this.add(this.mul(xx, g.scalarF(c2)), g.scalarF(c1)))]);
    const y = this.mul(x, s);
    // Its gradient from x^2, s and y in seven ops (grad-rules.ts, TanhGelu) rather than thirteen per-op ones.
    g.customVjp({ op: 'TanhGelu', inputs: [x], output: y, uses: { s, xx }, attrs: { c1, c2 } });
    return y;
  }
  /** Slice along one axis with int64 1-D start/end values (names) or numbers. */
  slice(x: string, axis: number, start: string | number, end: string | number): string {
    const s = typeof start === 'number' ? this.g.ints([start]) : start;
    const e = typeof end === 'number' ? this.g.ints([end]) : end;
    return this.g.op('Slice', [x, s, e, this.g.ints([axis])]);
  }
  /** Dimension `axis` of x as an int64 1-D tensor of length 1. */
  dim(x: string, axis: number): string {
    return this.g.op('Shape', [x], { start: axis, end: axis + 1 });
  }

  /** [B, S, d] -> per-head q or v layout [B, h, S, k]. */
  heads(x: string): string {
    const r = this.g.op('Reshape', [x, this.g.ints([0, 0, this.h, this.k])]);
    return this.g.op('Transpose', [r], { perm: [0, 2, 1, 3] });
  }
  /** [B, S, d] -> transposed key layout [B, h, k, S]. */
  headsT(x: string): string {
    const r = this.g.op('Reshape', [x, this.g.ints([0, 0, this.h, this.k])]);
    return this.g.op('Transpose', [r], { perm: [0, 2, 3, 1] });
  }
  /** [B, h, S, k] -> [B, S, d]. */
  merge(x: string): string {
    const t = this.g.op('Transpose', [x], { perm: [0, 2, 1, 3] });
    return this.g.op('Reshape', [t, this.g.ints([0, 0, this.d])]);
  }

  /** 0/1 key validity [B, S] -> additive bias [B, 1, 1, S] (0 or MASK_VALUE). */
  keyBias(valid: string): string {
    const g = this.g;
    const bias = this.mul(g.op('Sub', [g.scalarF(1), valid]), g.scalarF(MASK_VALUE));
    return g.op('Unsqueeze', [bias, g.ints([1, 2])]);
  }

  /** Causal bias [S, S] for the sequence length of x ([B, S, ...]): MASK_VALUE where key > query. */
  causalBias(x: string): string {
    const g = this.g;
    const S = g.op('Squeeze', [this.dim(x, 1), g.ints([0])]);
    const idx = g.op('Range', [g.scalarI(0), S, g.scalarI(1)]);
    const q = g.op('Unsqueeze', [idx, g.ints([1])]);
    const k = g.op('Unsqueeze', [idx, g.ints([0])]);
    const after = g.op('Greater', [k, q]);
    return g.op('Where', [after, g.scalarF(MASK_VALUE), g.scalarF(0)]);
  }

  private mlpResidual(prefix: string, x: string): string {
    const hn = this.layerNorm(x, param(`${prefix}.ln2_g`), param(`${prefix}.ln2_b`));
    const m = this.dense(this.gelu(this.dense(hn, param(`${prefix}.w1`), param(`${prefix}.b1`))), param(`${prefix}.w2`), param(`${prefix}.b2`));
    return this.add(x, m);
  }

  /**
   * A full pre-norm block over a whole sequence x [B, S, d]; `bias` is an additive attention bias
   * broadcastable to [B, h, S, S] (or absent: no mask). Returns the output and this block's keys/values.
   *
   * With `rows` ([start, end) along the sequence, int64 [1] values or numbers as for `slice`), only those
   * query rows are computed and returned ([B, end - start, d]); keys and values still cover all of x.
   * The last decoder layer needs only the rows whose outputs are read, which skips most of its work.
   */
  block(prefix: string, x: string, bias?: string, rows?: { start: string | number; end: string | number }): { out: string; kT: string; v: string } {
    const hn = this.layerNorm(x, param(`${prefix}.ln1_g`), param(`${prefix}.ln1_b`));
    const pick = (t: string, axis: number) => (rows ? this.slice(t, axis, rows.start, rows.end) : t);
    const q = this.heads(this.dense(pick(hn, 1), param(`${prefix}.wq`), param(`${prefix}.bq`)));
    const kT = this.headsT(this.dense(hn, param(`${prefix}.wk`), param(`${prefix}.bk`)));
    const v = this.heads(this.dense(hn, param(`${prefix}.wv`), param(`${prefix}.bv`)));
    let s = this.mul(this.matmul(q, kT), this.g.scalarF(1 / Math.sqrt(this.k)));
    if (bias) s = this.add(s, pick(bias, 2));
    const p = this.g.op('Softmax', [s], { axis: -1 });
    const o = this.merge(this.matmul(p, v));
    const x1 = this.add(pick(x, 1), this.dense(o, param(`${prefix}.wo`), param(`${prefix}.bo`)));
    return { out: this.mlpResidual(prefix, x1), kT, v };
  }

  /**
   * One decoding step of a block on a 2-D residual stream x [B, d] (one new token per row), attending to a
   * cache (pastKT [B, h, k, T], pastV [B, h, T, k], masked by pastBias [B, 1, 1, T]) and to itself.
   * - 2-D rows let onnxruntime fuse each projection and its bias into one Gemm, and per-head views of a
   *   single token are plain reshapes (no transposes).
   * - The cache is not concatenated (that would copy it every step): the scores of past and self are
   *   joined, softmaxed, and the two value products summed; q . k_self is a multiply-and-sum, cheaper
   *   than a batch of 1x1 matmuls.
   * Returns the output [B, d] and the new token's key/value ([B, h, k, 1], [B, h, 1, k]).
   */
  blockStep(prefix: string, x: string, pastKT: string, pastV: string, pastBias: string): { out: string; kT: string; v: string } {
    const g = this.g;
    const hn = this.layerNorm(x, param(`${prefix}.ln1_g`), param(`${prefix}.ln1_b`));
    const proj = (w: string, b: string, shape: number[]) => g.op('Reshape', [this.dense(hn, param(`${prefix}.${w}`), param(`${prefix}.${b}`)), g.ints(shape)]);
    const q = proj('wq', 'bq', [0, this.h, 1, this.k]);
    const kRow = proj('wk', 'bk', [0, this.h, 1, this.k]);
    const v = proj('wv', 'bv', [0, this.h, 1, this.k]);
    const kT = g.op('Reshape', [kRow, g.ints([0, this.h, this.k, 1])]);
    const scale = g.scalarF(1 / Math.sqrt(this.k));
    const sPast = this.add(this.mul(this.matmul(q, pastKT), scale), pastBias);
    const sSelf = this.mul(g.op('ReduceSum', [this.mul(q, kRow), g.ints([-1])], { keepdims: 1 }), scale);
    const p = g.op('Softmax', [g.op('Concat', [sPast, sSelf], { axis: -1 })], { axis: -1 });
    const pPast = this.slice(p, 3, 0, -1);
    const pSelf = this.slice(p, 3, -1, SLICE_END);
    const o = g.op('Reshape', [this.add(this.matmul(pPast, pastV), this.mul(pSelf, v)), g.ints([0, this.d])]);
    const x1 = this.add(x, this.dense(o, param(`${prefix}.wo`), param(`${prefix}.bo`)));
    return { out: this.mlpResidual(prefix, x1), kT, v };
  }

  /**
   * A block over new rows x [B, n, d] that also attend to a past: `pastK`, `pastV` [B, h, T, k] (keys not
   * transposed, as exported caches usually are; T may be 0). `bias` broadcasts to [B, h, n, T + n].
   * Returns the output and the present keys/values [B, h, T + n, k] (past and new, concatenated).
   */
  blockWithPast(prefix: string, x: string, pastK: string, pastV: string, bias: string): { out: string; k: string; v: string } {
    const g = this.g;
    const hn = this.layerNorm(x, param(`${prefix}.ln1_g`), param(`${prefix}.ln1_b`));
    const q = this.heads(this.dense(hn, param(`${prefix}.wq`), param(`${prefix}.bq`)));
    const k = g.op('Concat', [pastK, this.heads(this.dense(hn, param(`${prefix}.wk`), param(`${prefix}.bk`)))], { axis: 2 });
    const v = g.op('Concat', [pastV, this.heads(this.dense(hn, param(`${prefix}.wv`), param(`${prefix}.bv`)))], { axis: 2 });
    const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    const s = this.add(this.mul(this.matmul(q, kT), g.scalarF(1 / Math.sqrt(this.k))), bias);
    const o = this.merge(this.matmul(g.op('Softmax', [s], { axis: -1 }), v));
    const x1 = this.add(x, this.dense(o, param(`${prefix}.wo`), param(`${prefix}.bo`)));
    return { out: this.mlpResidual(prefix, x1), k, v };
  }

  /** Image patches [B, nPatch, patchDim] (values in [0, 1]) -> image tokens [B, nPatch, d], encoder applied. */
  image(patches: string): string {
    let x = this.add(this.dense(patches, param('img.patch_w'), param('img.patch_b')), param('img.pos'));
    for (let e = 0; e < this.cfg.nEncoderLayers; e++) x = this.block(`enc.${e}`, x).out;
    return x;
  }

  /** Text tokens and position ids (int64 [B, L]) -> embeddings [B, L, d]. */
  text(tokens: string, positions: string): string {
    const tok = this.g.op('Gather', [param('tok_emb'), tokens], { axis: 0 });
    const pos = this.g.op('Gather', [param('txt_pos'), positions], { axis: 0 });
    return this.add(tok, pos);
  }

  /** Final norm and output head: [..., d] -> logits [..., V]. */
  logits(h: string): string {
    const n = this.layerNorm(h, param('ln_f_g'), param('ln_f_b'));
    const w = this.cfg.tieEmbeddings ? this.g.op('Transpose', [param('tok_emb')], { perm: [1, 0] }) : param('head_w');
    return this.matmul(n, w);
  }
}
