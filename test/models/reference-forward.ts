/**
 * An independent float64 plain-JS forward of the policy (models/README.md), written row by row straight
 * from the contract, with its own patch extraction, padding and masking (nothing from models/batch.ts).
 * Tests compare the onnxruntime graphs and the tfjs forward against it, and the tfjs gradients against
 * its central differences. Slow; meant for tiny configs.
 */
import type { RgbImage } from '../../util/image.ts';
import type { PolicyConfig } from '../../models/config.ts';
import type { Params } from '../../models/params.ts';
import { Rng } from '../../util/rng.ts';
import { paramSpecs } from '../../models/params.ts';

const PAD = 0;

type Mat = Float64Array[]; // rows

function mat(params: Params, name: string, rows: number, cols: number): Mat {
  const a = params[name];
  if (!a) throw new Error(`reference forward: missing parameter ${name}`);
  return Array.from({ length: rows }, (_, r) => Float64Array.from(a.subarray(r * cols, (r + 1) * cols)));
}
const vec = (params: Params, name: string): Float64Array => Float64Array.from(params[name]);

function matVec(x: Float64Array, w: Float64Array, n: number, b?: Float64Array): Float64Array {
  // x [k] @ w [k, n] (w row-major flat)
  const out = new Float64Array(n);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    for (let j = 0; j < n; j++) out[j] += xi * w[i * n + j];
  }
  if (b) for (let j = 0; j < n; j++) out[j] += b[j];
  return out;
}

function layerNorm(x: Float64Array, g: Float64Array, b: Float64Array): Float64Array {
  const n = x.length;
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  let vr = 0;
  for (const v of x) vr += (v - mean) ** 2;
  vr /= n;
  const inv = 1 / Math.sqrt(vr + 1e-5);
  return x.map((v, i) => (v - mean) * inv * g[i] + b[i]);
}

const gelu = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function block(cfg: PolicyConfig, params: Params, prefix: string, xs: Mat, canSee: (q: number, k: number) => boolean): Mat {
  const d = cfg.dModel;
  const H = cfg.nHeads;
  const hd = d / H;
  const m = cfg.mlpRatio * d;
  const W = (n: string) => Float64Array.from(params[`${prefix}.${n}`]);
  const [wq, bq, wk, bk, wv, bv, wo, bo] = ['wq', 'bq', 'wk', 'bk', 'wv', 'bv', 'wo', 'bo'].map(W);
  const [w1, b1, w2, b2] = ['w1', 'b1', 'w2', 'b2'].map(W);
  const [ln1g, ln1b, ln2g, ln2b] = ['ln1_g', 'ln1_b', 'ln2_g', 'ln2_b'].map(W);
  const ln1 = xs.map((x) => layerNorm(x, ln1g, ln1b));
  const q = ln1.map((x) => matVec(x, wq, d, bq));
  const k = ln1.map((x) => matVec(x, wk, d, bk));
  const v = ln1.map((x) => matVec(x, wv, d, bv));
  const S = xs.length;
  const out: Mat = [];
  for (let i = 0; i < S; i++) {
    const att = new Float64Array(d);
    for (let h = 0; h < H; h++) {
      const scores = new Float64Array(S);
      for (let j = 0; j < S; j++) {
        let s = 0;
        for (let t = 0; t < hd; t++) s += q[i][h * hd + t] * k[j][h * hd + t];
        scores[j] = s / Math.sqrt(hd) + (canSee(i, j) ? 0 : -1e9);
      }
      const mx = Math.max(...scores);
      let z = 0;
      const p = scores.map((s) => {
        const e = Math.exp(s - mx);
        z += e;
        return e;
      });
      for (let j = 0; j < S; j++) for (let t = 0; t < hd; t++) att[h * hd + t] += (p[j] / z) * v[j][h * hd + t];
    }
    const proj = matVec(att, wo, d, bo);
    const x1 = xs[i].map((x, c) => x + proj[c]);
    const hmid = matVec(layerNorm(x1, ln2g, ln2b), w1, m, b1).map(gelu);
    const mlp = matVec(hmid, w2, d, b2);
    out.push(x1.map((x, c) => x + mlp[c]));
  }
  return out;
}

export interface ReferenceOutput {
  /** [B][Lr], 0 at PAD */
  logprobs: number[][];
  /** [B][Lr], 0 at PAD */
  entropy: number[][];
  /** [B][Lr][V]: the full next-token log-distribution predicting each response slot */
  logDist: number[][][];
}

/**
 * Teacher-forced log-probs of `responses` (right-padded with PAD to the longest) given images and
 * prompts (token ids starting with BOS, left-padded to the longest).
 */
export function referenceForward(
  cfg: PolicyConfig,
  params: Params,
  images: readonly RgbImage[],
  prompts: readonly (readonly number[])[],
  responses: readonly (readonly number[])[],
): ReferenceOutput {
  const d = cfg.dModel;
  const P = cfg.patchSize;
  const V = cfg.vocabSize;
  const gh = cfg.imageHeight / P;
  const gw = cfg.imageWidth / P;
  const nPatch = gh * gw;
  const pd = P * P * cfg.channels;
  const Lp = Math.max(...prompts.map((p) => p.length));
  const Lr = Math.max(1, ...responses.map((r) => r.length));
  const patchW = vec(params, 'img.patch_w');
  const patchB = vec(params, 'img.patch_b');
  const imgPos = mat(params, 'img.pos', nPatch, d);
  const tokEmb = mat(params, 'tok_emb', V, d);
  const txtPos = mat(params, 'txt_pos', cfg.maxPromptLen + cfg.maxResponseLen, d);
  const lnfG = vec(params, 'ln_f_g');
  const lnfB = vec(params, 'ln_f_b');
  const headW = cfg.tieEmbeddings ? undefined : vec(params, 'head_w');
  const out: ReferenceOutput = { logprobs: [], entropy: [], logDist: [] };

  images.forEach((img, b) => {
    // image tokens
    let xs: Mat = [];
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        const patch = new Float64Array(pd);
        let o = 0;
        for (let py = 0; py < P; py++) {
          for (let px = 0; px < P; px++) {
            for (let c = 0; c < cfg.channels; c++) patch[o++] = img.data[((gy * P + py) * img.width + gx * P + px) * 3 + c] / 255;
          }
        }
        const e = matVec(patch, patchW, d, patchB);
        xs.push(e.map((v, c) => v + imgPos[gy * gw + gx][c]));
      }
    }
    for (let e = 0; e < cfg.nEncoderLayers; e++) xs = block(cfg, params, `enc.${e}`, xs, () => true);
    // text tokens
    const pads = Lp - prompts[b].length;
    const text = [...new Array(pads).fill(PAD), ...prompts[b], ...responses[b], ...new Array(Lr - responses[b].length).fill(PAD)];
    text.forEach((id, j) => {
      const pos = Math.max(0, j - pads);
      xs.push(tokEmb[id].map((v, c) => v + txtPos[pos][c]));
    });
    const valid = (k: number) => k < nPatch || text[k - nPatch] !== PAD;
    for (let i = 0; i < cfg.nLayers; i++) xs = block(cfg, params, `dec.${i}`, xs, (q, k) => k <= q && valid(k));
    const lp: number[] = [];
    const ent: number[] = [];
    const dists: number[][] = [];
    for (let t = 0; t < Lr; t++) {
      const h = layerNorm(xs[nPatch + Lp - 1 + t], lnfG, lnfB);
      const logits = headW ? Array.from(matVec(h, headW, V)) : tokEmb.map((row) => row.reduce((s, w, c) => s + w * h[c], 0));
      const mx = Math.max(...logits);
      const lse = mx + Math.log(logits.reduce((s, z) => s + Math.exp(z - mx), 0));
      const logd = logits.map((z) => z - lse);
      dists.push(logd);
      const real = t < responses[b].length;
      lp.push(real ? logd[responses[b][t]] : 0);
      ent.push(real ? -logd.reduce((s, l) => s + Math.exp(l) * l, 0) : 0);
    }
    out.logprobs.push(lp);
    out.entropy.push(ent);
    out.logDist.push(dists);
  });
  return out;
}

/** Test parameters: every tensor random (biases and gains too) at a scale where outputs depend on inputs. */
export function randomParams(cfg: PolicyConfig, seed: number, std = 0.2): Params {
  const out: Params = {};
  for (const s of paramSpecs(cfg)) {
    const rng = Rng.derive(seed, 'test-params', s.name);
    const a = new Float32Array(s.shape.reduce((x, y) => x * y, 1));
    for (let j = 0; j < a.length; j++) a[j] = (s.kind === 'gain' ? 1 : 0) + rng.normal() * std;
    out[s.name] = a;
  }
  return out;
}

/** A deterministic random image. */
export function randomImage(cfg: PolicyConfig, seed: number): RgbImage {
  const rng = Rng.derive(seed, 'test-image');
  const data = new Uint8Array(cfg.imageHeight * cfg.imageWidth * 3);
  for (let j = 0; j < data.length; j++) data[j] = rng.int(256);
  return { height: cfg.imageHeight, width: cfg.imageWidth, data };
}
