/**
 * The policy's parameter layout: names, shapes and seeded initialisation, as plain JS (no tfjs), so the
 * trainer, the ONNX export/engine and checkpoints all share one contract.
 *
 * Parameters travel as a flat `Record<string, Float32Array>` (row-major). Names (see models/README.md):
 *   img.patch_w [P*P*C, d], img.patch_b [d], img.pos [nPatch, d], enc.{e}.<block>, tok_emb [V, d],
 *   txt_pos [maxPromptLen + maxResponseLen, d], dec.{i}.<block>, ln_f_g [d], ln_f_b [d],
 *   head_w [d, V] (untied only)
 * where <block> is ln1_g ln1_b wq bq wk bk wv bv wo bo ln2_g ln2_b w1 b1 w2 b2.
 */
import { Rng } from '../util/rng.ts';
import { type PolicyConfig, policyDims } from './config.ts';

export type Params = Record<string, Float32Array>;

export type ParamKind = 'weight' | 'bias' | 'gain';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** weight: N(0, initStd) (matrices and embeddings); bias: 0 (biases, LN shifts); gain: 1 (LN gains) */
  kind: ParamKind;
}

/** Per-block parameter suffixes, in layout order. */
export const BLOCK_PARAMS = ['ln1_g', 'ln1_b', 'wq', 'bq', 'wk', 'bk', 'wv', 'bv', 'wo', 'bo', 'ln2_g', 'ln2_b', 'w1', 'b1', 'w2', 'b2'] as const;
export type BlockParam = (typeof BLOCK_PARAMS)[number];

function blockSpecs(prefix: string, d: number, mlp: number): ParamSpec[] {
  const shapes: Record<BlockParam, [number[], ParamKind]> = {
    ln1_g: [[d], 'gain'],
    ln1_b: [[d], 'bias'],
    wq: [[d, d], 'weight'],
    bq: [[d], 'bias'],
    wk: [[d, d], 'weight'],
    bk: [[d], 'bias'],
    wv: [[d, d], 'weight'],
    bv: [[d], 'bias'],
    wo: [[d, d], 'weight'],
    bo: [[d], 'bias'],
    ln2_g: [[d], 'gain'],
    ln2_b: [[d], 'bias'],
    w1: [[d, mlp], 'weight'],
    b1: [[mlp], 'bias'],
    w2: [[mlp, d], 'weight'],
    b2: [[d], 'bias'],
  };
  return BLOCK_PARAMS.map((k) => ({ name: `${prefix}.${k}`, shape: shapes[k][0], kind: shapes[k][1] }));
}

/** Every parameter of a config, in a fixed order (the order used for flattening and checkpoints). */
export function paramSpecs(c: PolicyConfig): ParamSpec[] {
  const { nPatch, patchDim, mlpDim, maxTextLen } = policyDims(c);
  const d = c.dModel;
  const specs: ParamSpec[] = [
    { name: 'img.patch_w', shape: [patchDim, d], kind: 'weight' },
    { name: 'img.patch_b', shape: [d], kind: 'bias' },
    { name: 'img.pos', shape: [nPatch, d], kind: 'weight' },
  ];
  for (let e = 0; e < c.nEncoderLayers; e++) specs.push(...blockSpecs(`enc.${e}`, d, mlpDim));
  specs.push({ name: 'tok_emb', shape: [c.vocabSize, d], kind: 'weight' });
  specs.push({ name: 'txt_pos', shape: [maxTextLen, d], kind: 'weight' });
  for (let i = 0; i < c.nLayers; i++) specs.push(...blockSpecs(`dec.${i}`, d, mlpDim));
  specs.push({ name: 'ln_f_g', shape: [d], kind: 'gain' }, { name: 'ln_f_b', shape: [d], kind: 'bias' });
  if (!c.tieEmbeddings) specs.push({ name: 'head_w', shape: [d, c.vocabSize], kind: 'weight' });
  return specs;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Total number of scalar parameters. */
export function paramCount(c: PolicyConfig): number {
  return paramSpecs(c).reduce((n, s) => n + sizeOf(s.shape), 0);
}

/**
 * Seeded initialisation: weights N(0, initStd), each drawn row-major from its own stream
 * `Rng.derive(seed, 'init', name)` (so adding a parameter never changes the others); biases 0; gains 1.
 */
export function initParams(c: PolicyConfig, seed: number = c.seed): Params {
  const out: Params = {};
  for (const s of paramSpecs(c)) {
    const a = new Float32Array(sizeOf(s.shape));
    if (s.kind === 'gain') a.fill(1);
    else if (s.kind === 'weight') {
      const rng = Rng.derive(seed, 'init', s.name);
      for (let j = 0; j < a.length; j++) a[j] = rng.normal() * c.initStd;
    }
    out[s.name] = a;
  }
  return out;
}

/** Throws unless `params` has exactly the config's parameters with the right sizes and finite values. */
export function validateParams(c: PolicyConfig, params: Params, what = 'params'): void {
  const specs = paramSpecs(c);
  const expected = new Set(specs.map((s) => s.name));
  for (const name of Object.keys(params)) {
    if (!expected.has(name)) throw new Error(`${what}: unexpected parameter '${name}' for this policy config`);
  }
  for (const s of specs) {
    const a = params[s.name];
    if (!a) throw new Error(`${what}: missing parameter '${s.name}' [${s.shape.join(', ')}]`);
    if (!(a instanceof Float32Array)) throw new Error(`${what}: parameter '${s.name}' must be a Float32Array`);
    const n = sizeOf(s.shape);
    if (a.length !== n) throw new Error(`${what}: parameter '${s.name}' has ${a.length} values, expected ${n} for shape [${s.shape.join(', ')}]`);
    for (let j = 0; j < n; j++) {
      if (!Number.isFinite(a[j])) throw new Error(`${what}: parameter '${s.name}' has a non-finite value ${a[j]} at index ${j}`);
    }
  }
}
