/**
 * A float64 plain-JS implementation of the policy's forward (models/README.md), written independently of
 * tfjs: the reference for the tfjs forward, and, through finite differences, for its gradients.
 * Slow; meant for tiny configs.
 */
import { LN_EPS, type PolicyConfig, policyDims } from '../../models/config.ts';
import type { Params } from '../../models/params.ts';
import { type TextBatch, attentionBias } from '../../models/batch.ts';

type Mat = Float64Array[]; // rows

function matmul(x: Mat, w: ArrayLike<number>, n: number, bias?: ArrayLike<number>): Mat {
  const k = x[0].length;
  return x.map((row) => {
    const out = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let i = 0; i < k; i++) s += row[i] * w[i * n + j];
      out[j] = s;
    }
    return out;
  });
}

function layerNorm(x: Mat, g: ArrayLike<number>, b: ArrayLike<number>): Mat {
  return x.map((row) => {
    const d = row.length;
    let mu = 0;
    for (const v of row) mu += v;
    mu /= d;
    let varr = 0;
    for (const v of row) varr += (v - mu) ** 2;
    varr /= d;
    const inv = 1 / Math.sqrt(varr + LN_EPS);
    return row.map((v, j) => (v - mu) * inv * g[j] + b[j]);
  });
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** One block on one sequence; `bias` [L*L] additive mask or undefined (full attention). */
function block(x: Mat, p: Params, pre: string, c: PolicyConfig, bias?: Float32Array): Mat {
  const d = c.dModel;
  const H = c.nHeads;
  const dh = d / H;
  const L = x.length;
  const h = layerNorm(x, p[`${pre}.ln1_g`], p[`${pre}.ln1_b`]);
  const q = matmul(h, p[`${pre}.wq`], d, p[`${pre}.bq`]);
  const k = matmul(h, p[`${pre}.wk`], d, p[`${pre}.bk`]);
  const v = matmul(h, p[`${pre}.wv`], d, p[`${pre}.bv`]);
  const merged: Mat = Array.from({ length: L }, () => new Float64Array(d));
  for (let hd = 0; hd < H; hd++) {
    const o = hd * dh;
    for (let i = 0; i < L; i++) {
      const s = new Float64Array(L);
      let mx = -Infinity;
      for (let j = 0; j < L; j++) {
        let dot = 0;
        for (let t = 0; t < dh; t++) dot += q[i][o + t] * k[j][o + t];
        s[j] = dot / Math.sqrt(dh) + (bias ? bias[i * L + j] : 0);
        mx = Math.max(mx, s[j]);
      }
      let z = 0;
      for (let j = 0; j < L; j++) z += (s[j] = Math.exp(s[j] - mx));
      for (let j = 0; j < L; j++) {
        const a = s[j] / z;
        if (a !== 0) for (let t = 0; t < dh; t++) merged[i][o + t] += a * v[j][o + t];
      }
    }
  }
  const att = matmul(merged, p[`${pre}.wo`], d, p[`${pre}.bo`]);
  const x1 = x.map((row, i) => row.map((val, j) => val + att[i][j]));
  const h2 = layerNorm(x1, p[`${pre}.ln2_g`], p[`${pre}.ln2_b`]);
  const mlpDim = c.mlpRatio * d;
  const m1 = matmul(h2, p[`${pre}.w1`], mlpDim, p[`${pre}.b1`]).map((r) => r.map(gelu));
  const m2 = matmul(m1, p[`${pre}.w2`], d, p[`${pre}.b2`]);
  return x1.map((row, i) => row.map((val, j) => val + m2[i][j]));
}

/** Per-row log-probs and entropies [B][Lr] (0 at PAD) in float64. */
export function referenceLogProbs(
  c: PolicyConfig,
  p: Params,
  patches: Float32Array,
  text: TextBatch,
): { logprobs: number[][]; entropy: number[][] } {
  const { nPatch, patchDim } = policyDims(c);
  const d = c.dModel;
  const V = c.vocabSize;
  const B = text.batch;
  const Lp = text.promptLen;
  const Lr = text.responseLen;
  const Lt = Lp + Lr;
  const L = nPatch + Lt;
  const biasAll = attentionBias(text, nPatch);
  const logprobs: number[][] = [];
  const entropy: number[][] = [];
  for (let b = 0; b < B; b++) {
    const pt: Mat = Array.from({ length: nPatch }, (_, i) => Float64Array.from(patches.subarray((b * nPatch + i) * patchDim, (b * nPatch + i + 1) * patchDim)));
    let img: Mat = matmul(pt, p['img.patch_w'], d, p['img.patch_b']).map((row, i) => row.map((v, j) => v + p['img.pos'][i * d + j]));
    for (let e = 0; e < c.nEncoderLayers; e++) img = block(img, p, `enc.${e}`, c);
    const txt: Mat = [];
    for (let j = 0; j < Lt; j++) {
      const tok = text.tokens[b * Lt + j];
      const pos = text.positions[b * Lt + j];
      txt.push(Float64Array.from({ length: d }, (_, t) => p['tok_emb'][tok * d + t] + p['txt_pos'][pos * d + t]));
    }
    let x: Mat = [...img, ...txt];
    const bias = biasAll.subarray(b * L * L, (b + 1) * L * L);
    for (let i = 0; i < c.nLayers; i++) x = block(x, p, `dec.${i}`, c, bias);
    const h = layerNorm(x, p['ln_f_g'], p['ln_f_b']);
    const lpRow: number[] = [];
    const entRow: number[] = [];
    for (let t = 0; t < Lr; t++) {
      const target = text.tokens[b * Lt + Lp + t];
      if (text.responseMask[b * Lr + t] === 0) {
        lpRow.push(0);
        entRow.push(0);
        continue;
      }
      const hv = h[nPatch + Lp - 1 + t];
      const logits = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += hv[j] * (c.tieEmbeddings ? p['tok_emb'][v * d + j] : p['head_w'][j * V + v]);
        logits[v] = s;
      }
      const mx = Math.max(...logits);
      let z = 0;
      for (const l of logits) z += Math.exp(l - mx);
      const lse = mx + Math.log(z);
      let ent = 0;
      for (const l of logits) ent -= Math.exp(l - lse) * (l - lse);
      lpRow.push(logits[target] - lse);
      entRow.push(ent);
    }
    logprobs.push(lpRow);
    entropy.push(entRow);
  }
  return { logprobs, entropy };
}
