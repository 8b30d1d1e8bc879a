/**
 * Teacher-forced log-probs of many responses against a shared prefix: the G responses of a prompt share its
 * image and prompt, so the prefix's keys and values are computed once (by the prefill graph, over the image
 * and the prompt without its last token) and each response row runs only its own tokens against them, as
 * sampling does. The same function as the logprobs graph (policy-graphs.ts); the sums of attention are
 * split between prefix and response, so values differ from the full pass in their last bits.
 *
 * Inputs, for Bp prefixes of S0 positions and B response rows of Lr slots:
 * - `prefix_kT.i` [Bp, h, k, S0], `prefix_v.i` [Bp, h, S0, k]: decoder layer i's prefix keys and values
 *   (the prefill graph's `kT.i`, `v.i`);
 * - `prefix_valid` [Bp, S0]: 0/1 validity of the prefix keys (image keys 1, PAD prompt tokens 0);
 * - `row_prefix` [B] int64: the prefix of each row;
 * - `tokens` [B, Lr] int64: the tokens fed, the prompt's last token then the response but its last token;
 * - `positions` [B, Lr] int64: their text positions; `token_valid` [B, Lr]: 0 at PAD;
 * - `targets` [B, Lr] int64: the response (right-padded); `target_valid` [B, Lr]: 0 at PAD.
 * Outputs `logprobs` and `entropy` [B, Lr] (0 at PAD targets), as the logprobs graph's.
 *
 * `sharedPrefixTrainBuilder` is the trainer's form: the prefixes computed inside the graph, from the image
 * and prompt, so that the gradient generated from it (models/onnx/autodiff.ts) reaches them.
 */
import { type PolicyConfig, policyDims } from '../config.ts';
import { GraphBuilder } from './builder.ts';
import { Layers, param, SLICE_END } from './layers.ts';
import { declareParams, decoder, type PolicyGraph, sequence } from './policy-graphs.ts';

/** Input names of decoder layer i's prefix keys and values. */
export const prefixNames = (i: number) => ({ kT: `prefix_kT.${i}`, v: `prefix_v.${i}` });

/**
 * A block over new rows x [B, n, d] attending to a prefix (kT [B, h, k, S0], v [B, h, S0, k], additive bias
 * [B, 1, 1, S0]) and causally to themselves (bias [B, 1, n, n]). The scores of prefix and self are joined
 * and softmaxed together, and the two value products summed: the prefix is never concatenated.
 */
function blockAfterPrefix(L: Layers, prefix: string, x: string, pastKT: string, pastV: string, pastBias: string, selfBias: string): string {
  const g = L.g;
  const hn = L.layerNorm(x, param(`${prefix}.ln1_g`), param(`${prefix}.ln1_b`));
  const q = L.heads(L.dense(hn, param(`${prefix}.wq`), param(`${prefix}.bq`)));
  const kT = L.headsT(L.dense(hn, param(`${prefix}.wk`), param(`${prefix}.bk`)));
  const v = L.heads(L.dense(hn, param(`${prefix}.wv`), param(`${prefix}.bv`)));
  const scale = g.scalarF(1 / Math.sqrt(L.k));
  const sPast = L.add(L.mul(L.matmul(q, pastKT), scale), pastBias);
  const sSelf = L.add(L.mul(L.matmul(q, kT), scale), selfBias);
  const p = g.op('Softmax', [g.op('Concat', [sPast, sSelf], { axis: -1 })], { axis: -1 });
  const S0 = L.dim(pastKT, 3);
  const o = L.merge(L.add(L.matmul(L.slice(p, 3, 0, S0), pastV), L.matmul(L.slice(p, 3, S0, SLICE_END), v)));
  const x1 = L.add(x, L.dense(o, param(`${prefix}.wo`), param(`${prefix}.bo`)));
  const hn2 = L.layerNorm(x1, param(`${prefix}.ln2_g`), param(`${prefix}.ln2_b`));
  const m = L.dense(L.gelu(L.dense(hn2, param(`${prefix}.w1`), param(`${prefix}.b1`))), param(`${prefix}.w2`), param(`${prefix}.b2`));
  return L.add(x1, m);
}

/** The response rows' inputs (see the header), declared on `g`. */
function rowInputs(g: GraphBuilder) {
  return {
    rowPrefix: g.input('row_prefix', 'int64', ['B']),
    tokens: g.input('tokens', 'int64', ['B', 'Lr']),
    positions: g.input('positions', 'int64', ['B', 'Lr']),
    tokenValid: g.input('token_valid', 'float32', ['B', 'Lr']),
    targets: g.input('targets', 'int64', ['B', 'Lr']),
    targetValid: g.input('target_valid', 'float32', ['B', 'Lr']),
  };
}

/** The response rows against their prefixes (keys and values per layer): outputs `logprobs` and, if asked, `entropy`. */
function scoreRows(
  g: GraphBuilder,
  L: Layers,
  past: { kT: string; v: string }[],
  prefixValid: string,
  r: ReturnType<typeof rowInputs>,
  entropy: boolean,
): void {
  const rows = (t: string) => g.op('Gather', [t, r.rowPrefix], { axis: 0 });
  let x = L.text(r.tokens, r.positions);
  const pastBias = L.keyBias(rows(prefixValid));
  const selfBias = g.op('Min', [L.causalBias(x), L.keyBias(r.tokenValid)]);
  for (let i = 0; i < L.cfg.nLayers; i++) x = blockAfterPrefix(L, `dec.${i}`, x, rows(past[i].kT), rows(past[i].v), pastBias, selfBias);
  const logp = g.op('LogSoftmax', [L.logits(x)], { axis: -1 });
  const picked = g.op('Squeeze', [g.op('GatherElements', [logp, g.op('Unsqueeze', [r.targets, g.ints([2])])], { axis: 2 }), g.ints([2])]);
  g.output(L.mul(picked, r.targetValid), 'logprobs', 'float32', ['B', 'Lr']);
  if (!entropy) return;
  const plogp = g.op('ReduceSum', [L.mul(g.op('Exp', [logp]), logp), g.ints([-1])], { keepdims: 0 });
  g.output(L.mul(g.op('Neg', [plogp]), r.targetValid), 'entropy', 'float32', ['B', 'Lr']);
}

/** The engine's graph: the prefixes' keys and values are inputs (the prefill graph's outputs). */
export function buildSharedPrefixGraph(cfg: PolicyConfig): PolicyGraph {
  const g = new GraphBuilder('policy_shared_prefix_logprobs');
  const { headDim } = policyDims(cfg);
  const past: { kT: string; v: string }[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const n = prefixNames(i);
    past.push({ kT: g.input(n.kT, 'float32', ['Bp', cfg.nHeads, headDim, 'S0']), v: g.input(n.v, 'float32', ['Bp', cfg.nHeads, 'S0', headDim]) });
  }
  const prefixValid = g.input('prefix_valid', 'float32', ['Bp', 'S0']);
  const r = rowInputs(g);
  const paramNames = declareParams(g, cfg, false);
  scoreRows(g, new Layers(g, cfg), past, prefixValid, r, true);
  return { kind: 'logprobs', bytes: g.toBytes('teacher-forced response log-probs against shared prefixes'), paramNames };
}

/**
 * The training pass as one graph (for models/onnx/autodiff.ts): the prefixes computed in it as the prefill
 * graph computes them, from `patches` [Bp, nPatch, patchDim], `prompt`, `prompt_positions` and
 * `prompt_valid` [Bp, Lq] (the prompt without its last token), then the rows as above; output `logprobs`.
 * The gradient flows from every row of a prefix into it (Gather's gradient sums them).
 */
export function sharedPrefixTrainBuilder(cfg: PolicyConfig): { g: GraphBuilder; paramNames: string[] } {
  const g = new GraphBuilder('policy_shared_prefix_train');
  const { nPatch, patchDim } = policyDims(cfg);
  const patches = g.input('patches', 'float32', ['Bp', nPatch, patchDim]);
  const prompt = g.input('prompt', 'int64', ['Bp', 'Lq']);
  const promptPositions = g.input('prompt_positions', 'int64', ['Bp', 'Lq']);
  const promptValid = g.input('prompt_valid', 'float32', ['Bp', 'Lq']);
  const r = rowInputs(g);
  const paramNames = declareParams(g, cfg, true);
  const L = new Layers(g, cfg);
  const { x, valid } = sequence(L, patches, prompt, promptPositions, promptValid);
  const bias = g.op('Min', [L.causalBias(x), L.keyBias(valid)]);
  // only the keys and values are read: the last layer computes the rest for the last position only
  const dec = decoder(L, x, bias, { start: -1, end: SLICE_END });
  const past = dec.kT.map((kT, i) => ({ kT, v: dec.v[i] }));
  scoreRows(g, L, past, valid, r, false);
  return { g, paramNames };
}
