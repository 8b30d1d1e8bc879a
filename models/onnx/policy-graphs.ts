/**
 * The policy's ONNX graphs. Every parameter is a graph INPUT named as in models/params.ts, so one exported
 * model serves every weight version (the engine passes the latest weights with each run). Batch size and
 * lengths are symbolic dims: one session serves any batch.
 *
 * - logprobs: teacher-forced per-token log-probs (and entropy) of response tokens given image + prompt.
 * - prefill:  image + left-padded prompt -> next-token logits and the key/value cache.
 * - step:     one new token per row + cache -> next-token logits and that token's keys/values.
 *
 * Inputs follow models/batch.ts: `patches` from `patchify` (values in [0, 1]), token ids, text position
 * ids and 0/1 key validity (PAD keys are masked; image keys never are).
 */
import { type PolicyConfig, policyDims } from '../config.ts';
import { paramSpecs } from '../params.ts';
import { type Dim, GraphBuilder } from './builder.ts';
import { Layers, SLICE_END } from './layers.ts';

export type GraphKind = 'logprobs' | 'prefill' | 'step';

export interface PolicyGraph {
  kind: GraphKind;
  bytes: Uint8Array;
  /** parameter names this graph takes as inputs */
  paramNames: string[];
}

/** Cache value names of decoder layer i (prefill outputs / step inputs / step outputs). */
export const cacheNames = (i: number) => ({
  kT: `kT.${i}`,
  v: `v.${i}`,
  pastKT: `past_kT.${i}`,
  pastV: `past_v.${i}`,
  newKT: `new_kT.${i}`,
  newV: `new_v.${i}`,
});

/** Declares the parameters as graph inputs (without the image's and encoder's when `withImage` is false); returns their names. */
export function declareParams(g: GraphBuilder, cfg: PolicyConfig, withImage: boolean): string[] {
  const names: string[] = [];
  for (const s of paramSpecs(cfg)) {
    if (!withImage && (s.name.startsWith('img.') || s.name.startsWith('enc.'))) continue;
    g.input(s.name, 'float32', s.shape);
    names.push(s.name);
  }
  return names;
}

/** Image tokens prepended to the embedded text, and the key-validity of the whole sequence. */
export function sequence(L: Layers, patches: string, tokens: string, positions: string, keyValid: string) {
  const g = L.g;
  const { nPatch } = policyDims(L.cfg);
  const img = L.image(patches);
  const x = g.op('Concat', [img, L.text(tokens, positions)], { axis: 1 });
  const ones = g.op('Expand', [
    g.constant('float32', new Array(nPatch).fill(1), [1, nPatch]),
    g.op('Concat', [L.dim(keyValid, 0), g.ints([nPatch])], { axis: 0 }),
  ]);
  const valid = g.op('Concat', [ones, keyValid], { axis: 1 });
  return { x, valid };
}

/** The decoder stack; with `lastRows` the last layer computes (and returns) only those rows (see Layers.block). */
export function decoder(
  L: Layers,
  x: string,
  bias: string,
  lastRows?: { start: string | number; end: string | number },
): { out: string; kT: string[]; v: string[] } {
  const kT: string[] = [];
  const v: string[] = [];
  for (let i = 0; i < L.cfg.nLayers; i++) {
    const b = L.block(`dec.${i}`, x, bias, i === L.cfg.nLayers - 1 ? lastRows : undefined);
    x = b.out;
    kT.push(b.kT);
    v.push(b.v);
  }
  return { out: x, kT, v };
}

export interface LogprobGraphOptions {
  /** also output the entropy of every scored position (default true; the training graphs leave it out) */
  entropy?: boolean;
}

/**
 * The teacher-forced graph as a builder (for graph transformations, e.g. models/onnx/autodiff.ts):
 * inputs `patches`, `prompt`, `response`, `positions`, `key_valid` and the parameters; outputs `logprobs`
 * and, unless turned off, `entropy`.
 */
export function logprobGraphBuilder(cfg: PolicyConfig, opts: LogprobGraphOptions = {}): { g: GraphBuilder; paramNames: string[] } {
  const g = new GraphBuilder('policy_logprobs');
  const { nPatch, patchDim } = policyDims(cfg);
  const patches = g.input('patches', 'float32', ['B', nPatch, patchDim]);
  const prompt = g.input('prompt', 'int64', ['B', 'Lp']);
  const response = g.input('response', 'int64', ['B', 'Lr']);
  const positions = g.input('positions', 'int64', ['B', 'L']);
  const keyValid = g.input('key_valid', 'float32', ['B', 'L']);
  const paramNames = declareParams(g, cfg, true);
  const L = new Layers(g, cfg);

  const tokens = g.op('Concat', [prompt, response], { axis: 1 });
  const { x, valid } = sequence(L, patches, tokens, positions, keyValid);
  const bias = g.op('Min', [L.causalBias(x), L.keyBias(valid)]);
  // Response token t is predicted at sequence position nPatch + Lp - 1 + t: only those rows are read.
  const Lp = L.dim(prompt, 1);
  const start = L.add(Lp, g.ints([nPatch - 1]));
  const h = decoder(L, x, bias, { start, end: -1 }).out;
  const logp = g.op('LogSoftmax', [L.logits(h)], { axis: -1 });
  const picked = g.op('Squeeze', [g.op('GatherElements', [logp, g.op('Unsqueeze', [response, g.ints([2])])], { axis: 2 }), g.ints([2])]);
  const respMask = L.slice(keyValid, 1, Lp, SLICE_END);
  g.output(L.mul(picked, respMask), 'logprobs', 'float32', ['B', 'Lr']);
  if (opts.entropy ?? true) {
    const plogp = g.op('ReduceSum', [L.mul(g.op('Exp', [logp]), logp), g.ints([-1])], { keepdims: 0 });
    g.output(L.mul(g.op('Neg', [plogp]), respMask), 'entropy', 'float32', ['B', 'Lr']);
  }
  return { g, paramNames };
}

export function buildLogprobGraph(cfg: PolicyConfig): PolicyGraph {
  const { g, paramNames } = logprobGraphBuilder(cfg);
  return { kind: 'logprobs', bytes: g.toBytes('teacher-forced response log-probs'), paramNames };
}

export function buildPrefillGraph(cfg: PolicyConfig): PolicyGraph {
  const g = new GraphBuilder('policy_prefill');
  const { nPatch, patchDim, headDim } = policyDims(cfg);
  const patches = g.input('patches', 'float32', ['B', nPatch, patchDim]);
  const prompt = g.input('prompt', 'int64', ['B', 'Lp']);
  const positions = g.input('positions', 'int64', ['B', 'Lp']);
  const keyValid = g.input('key_valid', 'float32', ['B', 'Lp']);
  const paramNames = declareParams(g, cfg, true);
  const L = new Layers(g, cfg);

  const { x, valid } = sequence(L, patches, prompt, positions, keyValid);
  const bias = g.op('Min', [L.causalBias(x), L.keyBias(valid)]);
  // Prompts are left-padded, so the last position is a real token in every row: only its logits are read.
  const dec = decoder(L, x, bias, { start: -1, end: SLICE_END });
  const last = g.op('Squeeze', [L.logits(dec.out), g.ints([1])]);
  g.output(last, 'logits', 'float32', ['B', cfg.vocabSize]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const n = cacheNames(i);
    g.output(dec.kT[i], n.kT, 'float32', ['B', cfg.nHeads, headDim, 'S']);
    g.output(dec.v[i], n.v, 'float32', ['B', cfg.nHeads, 'S', headDim]);
  }
  return { kind: 'prefill', bytes: g.toBytes('prompt prefill: next-token logits and key/value cache'), paramNames };
}

export function buildStepGraph(cfg: PolicyConfig): PolicyGraph {
  const g = new GraphBuilder('policy_step');
  const { headDim } = policyDims(cfg);
  const token = g.input('token', 'int64', ['B', 1]);
  const position = g.input('position', 'int64', ['B', 1]);
  const cacheValid = g.input('cache_valid', 'float32', ['B', 'T']);
  const past: { kT: string; v: string }[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const n = cacheNames(i);
    past.push({
      kT: g.input(n.pastKT, 'float32', ['B', cfg.nHeads, headDim, 'T'] as Dim[]),
      v: g.input(n.pastV, 'float32', ['B', cfg.nHeads, 'T', headDim] as Dim[]),
    });
  }
  const paramNames = declareParams(g, cfg, false);
  const L = new Layers(g, cfg);

  // Rows of the residual stream: [B, d] (see Layers.blockStep).
  const flat = (ids: string) => g.op('Reshape', [ids, g.ints([-1])]);
  let x = L.text(flat(token), flat(position));
  const bias = L.keyBias(cacheValid);
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = L.blockStep(`dec.${i}`, x, past[i].kT, past[i].v, bias);
    x = b.out;
    const n = cacheNames(i);
    g.output(b.kT, n.newKT, 'float32', ['B', cfg.nHeads, headDim, 1]);
    g.output(b.v, n.newV, 'float32', ['B', cfg.nHeads, 1, headDim]);
  }
  g.output(L.logits(x), 'logits', 'float32', ['B', cfg.vocabSize]);
  return { kind: 'step', bytes: g.toBytes('one decoding step against a key/value cache'), paramNames };
}

export function buildPolicyGraphs(cfg: PolicyConfig): Record<GraphKind, PolicyGraph> {
  return { logprobs: buildLogprobGraph(cfg), prefill: buildPrefillGraph(cfg), step: buildStepGraph(cfg) };
}
