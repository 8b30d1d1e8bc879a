/**
 * The self-contained policy model that `papo export` writes: the weights baked in as initializers, the
 * image preprocessing (scaling to [0, 1], patch extraction) and the position ids inside the graph, so a
 * caller in any language feeds raw pixels and token ids and reads logits.
 *
 * Inputs:
 * - `pixels` uint8 [B, H, W, C]: RGB, row-major, channels last, the config's image size.
 * - `input_ids` int64 [B, L]: BOS, the question's tokens, then the response so far; rows of a batch are
 *   LEFT-padded with PAD (0) to one length. L is at most maxPromptLen + maxResponseLen.
 * - `attention_mask` int64 [B, L]: 1 on tokens, 0 on the left padding.
 * Output:
 * - `logits` float32 [B, L, V]: at position j, the next-token logits after token j (so the last position
 *   gives the next token of a generation, and position j scores token j + 1 of a teacher-forced sequence).
 *
 * The function is models/README.md's: position ids are `cumsum(attention_mask) - 1` clamped at 0 (the
 * real tokens count from 0, left pads sit at 0), padded keys are masked, every text token sees the
 * whole image.
 *
 * The key/value-cache variant (`exportCachedGraphBuilder`, `papo export --kv-cache`) computes the same
 * logits for only the new tokens of each call:
 * - `input_ids` int64 [B, new]: the new tokens (the whole left-padded prompt on the first call, then one
 *   token per row);
 * - `attention_mask` int64 [B, past_text + new]: the mask of every text token so far;
 * - `past_key.{i}`, `past_value.{i}` float32 [B, heads, past, head_dim] per decoder layer i: empty
 *   (past = 0) on the first call, then the previous call's `present_key.{i}`, `present_value.{i}`;
 * - `pixels` is read on the first call only (its image tokens then sit at the start of the cache).
 * Outputs `logits` [B, new, V] and `present_key.{i}`, `present_value.{i}` [B, heads, past + added, head_dim].
 */
import { MASK_VALUE, type PolicyConfig, policyDims } from '../config.ts';
import { paramSpecs, type Params, validateParams } from '../params.ts';
import { GraphBuilder, onnxDataType } from './builder.ts';
import { Layers, SLICE_END } from './layers.ts';

/** Names of the exported model's inputs and output. */
export const EXPORT_IO = { pixels: 'pixels', inputIds: 'input_ids', attentionMask: 'attention_mask', logits: 'logits' } as const;

/** Cache input and output names of decoder layer i in the key/value-cache variant. */
export const exportCacheNames = (i: number) => ({
  pastKey: `past_key.${i}`,
  pastValue: `past_value.${i}`,
  presentKey: `present_key.${i}`,
  presentValue: `present_value.${i}`,
});

/** The graph, its three inputs, the weights as initializers, and the image and text embeddings' inputs. */
function commonPart(cfg: PolicyConfig, params: Params, name: string, dims: { ids: string; mask: string }) {
  validateParams(cfg, params, 'exporting the policy');
  const g = new GraphBuilder(name);
  const { nPatch, patchDim, gridH, gridW } = policyDims(cfg);
  const P = cfg.patchSize;
  const pixels = g.input(EXPORT_IO.pixels, 'uint8', ['batch', cfg.imageHeight, cfg.imageWidth, cfg.channels]);
  const ids = g.input(EXPORT_IO.inputIds, 'int64', ['batch', dims.ids]);
  const mask = g.input(EXPORT_IO.attentionMask, 'int64', ['batch', dims.mask]);
  for (const s of paramSpecs(cfg)) g.addConstant(s.name, { type: 'float32', dims: s.shape, values: Array.from(params[s.name]) });
  const L = new Layers(g, cfg);

  // pixels -> patches [B, nPatch, patchDim] in [0, 1], each patch flattened in (py, px, c) order (batch.ts patchify)
  const scaled = g.op('Div', [g.op('Cast', [pixels], { to: onnxDataType('float32') }), g.scalarF(255)]);
  const grid = g.op('Reshape', [scaled, g.ints([0, gridH, P, gridW, P, cfg.channels])]);
  const patches = g.op('Reshape', [g.op('Transpose', [grid], { perm: [0, 1, 3, 2, 4, 5] }), g.ints([0, nPatch, patchDim])]);

  // positions: real tokens count from 0 after the left padding; pads sit at 0
  const counted = g.op('Sub', [g.op('CumSum', [mask, g.scalarI(1)]), g.scalarI(1)]);
  const positions = g.op('Max', [counted, g.scalarI(0)]);
  // key validity of [image, text]: image keys are never masked
  const imageValid = g.op('Expand', [
    g.constant('float32', new Array(nPatch).fill(1), [1, nPatch]),
    g.op('Concat', [L.dim(ids, 0), g.ints([nPatch])], { axis: 0 }),
  ]);
  const keyValid = g.op('Concat', [imageValid, g.op('Cast', [mask], { to: onnxDataType('float32') })], { axis: 1 });
  return { g, L, ids, mask, positions, keyValid, img: L.image(patches) };
}

/**
 * The exported model's graph: `params` become initializers named as in models/params.ts. Returns the
 * builder; `toBytes(doc, metadata)` serialises it.
 */
export function exportGraphBuilder(cfg: PolicyConfig, params: Params): GraphBuilder {
  const { g, L, ids, positions, keyValid, img } = commonPart(cfg, params, 'papo_policy', { ids: 'sequence', mask: 'sequence' });
  const { nPatch } = policyDims(cfg);
  const x = g.op('Concat', [img, L.text(ids, positions)], { axis: 1 });
  const bias = g.op('Min', [L.causalBias(x), L.keyBias(keyValid)]);
  let h = x;
  // the last layer computes only the text rows (image rows are never read)
  for (let i = 0; i < cfg.nLayers; i++) h = L.block(`dec.${i}`, h, bias, i === cfg.nLayers - 1 ? { start: nPatch, end: SLICE_END } : undefined).out;
  g.output(L.logits(h), EXPORT_IO.logits, 'float32', ['batch', 'sequence', cfg.vocabSize]);
  return g;
}

/** The key/value-cache variant (see the top of this file). */
export function exportCachedGraphBuilder(cfg: PolicyConfig, params: Params): GraphBuilder {
  const { g, L, ids, mask, positions, keyValid, img } = commonPart(cfg, params, 'papo_policy_kv_cache', { ids: 'new', mask: 'text' });
  const { nPatch, headDim } = policyDims(cfg);
  const past = Array.from({ length: cfg.nLayers }, (_, i) => {
    const n = exportCacheNames(i);
    return {
      k: g.input(n.pastKey, 'float32', ['batch', cfg.nHeads, 'past', headDim]),
      v: g.input(n.pastValue, 'float32', ['batch', cfg.nHeads, 'past', headDim]),
    };
  });
  // the image's tokens enter on the first call only (an empty past)
  const pastLen = g.op('Shape', [past[0].k], { start: 2, end: 3 });
  const nImage = L.mul(g.op('Cast', [g.op('Equal', [pastLen, g.ints([0])])], { to: onnxDataType('int64') }), g.ints([nPatch]));
  const newText = L.dim(ids, 1);
  const newPositions = L.slice(positions, 1, g.op('Sub', [L.dim(mask, 1), newText]), SLICE_END);
  const x = g.op('Concat', [L.slice(img, 1, 0, nImage), L.text(ids, newPositions)], { axis: 1 });
  // causal over absolute positions: new row r sits at pastLen + r and sees keys up to it
  const scalar = (v: string) => g.op('Squeeze', [v, g.ints([0])]);
  const added = L.add(nImage, newText);
  const queries = L.add(g.op('Range', [g.scalarI(0), scalar(added), g.scalarI(1)]), scalar(pastLen));
  const keys = g.op('Range', [g.scalarI(0), scalar(L.add(pastLen, added)), g.scalarI(1)]);
  const after = g.op('Greater', [g.op('Unsqueeze', [keys, g.ints([0])]), g.op('Unsqueeze', [queries, g.ints([1])])]);
  const causal = g.op('Where', [after, g.scalarF(MASK_VALUE), g.scalarF(0)]);
  const bias = g.op('Min', [causal, L.keyBias(keyValid)]);
  let h = x;
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = L.blockWithPast(`dec.${i}`, h, past[i].k, past[i].v, bias);
    h = b.out;
    const n = exportCacheNames(i);
    g.output(b.k, n.presentKey, 'float32', ['batch', cfg.nHeads, 'present', headDim]);
    g.output(b.v, n.presentValue, 'float32', ['batch', cfg.nHeads, 'present', headDim]);
  }
  g.output(L.logits(L.slice(h, 1, nImage, SLICE_END)), EXPORT_IO.logits, 'float32', ['batch', 'new', cfg.vocabSize]);
  return g;
}
