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
 */
import { type PolicyConfig, policyDims } from '../config.ts';
import { paramSpecs, type Params, validateParams } from '../params.ts';
import { GraphBuilder, onnxDataType } from './builder.ts';
import { Layers, SLICE_END } from './layers.ts';

/** Names of the exported model's inputs and output. */
export const EXPORT_IO = { pixels: 'pixels', inputIds: 'input_ids', attentionMask: 'attention_mask', logits: 'logits' } as const;

/**
 * The exported model's graph: `params` become initializers named as in models/params.ts. Returns the
 * builder; `toBytes(doc, metadata)` serialises it.
 */
export function exportGraphBuilder(cfg: PolicyConfig, params: Params): GraphBuilder {
  validateParams(cfg, params, 'exporting the policy');
  const g = new GraphBuilder('papo_policy');
  const { nPatch, patchDim, gridH, gridW } = policyDims(cfg);
  const P = cfg.patchSize;
  const pixels = g.input(EXPORT_IO.pixels, 'uint8', ['batch', cfg.imageHeight, cfg.imageWidth, cfg.channels]);
  const ids = g.input(EXPORT_IO.inputIds, 'int64', ['batch', 'sequence']);
  const mask = g.input(EXPORT_IO.attentionMask, 'int64', ['batch', 'sequence']);
  for (const s of paramSpecs(cfg)) g.addConstant(s.name, { type: 'float32', dims: s.shape, values: Array.from(params[s.name]) });
  const L = new Layers(g, cfg);

  // pixels -> patches [B, nPatch, patchDim] in [0, 1], each patch flattened in (py, px, c) order (batch.ts patchify)
  const scaled = g.op('Div', [g.op('Cast', [pixels], { to: onnxDataType('float32') }), g.scalarF(255)]);
  const grid = g.op('Reshape', [scaled, g.ints([0, gridH, P, gridW, P, cfg.channels])]);
  const patches = g.op('Reshape', [g.op('Transpose', [grid], { perm: [0, 1, 3, 2, 4, 5] }), g.ints([0, nPatch, patchDim])]);

  // positions: real tokens count from 0 after the left padding; pads sit at 0
  const counted = g.op('Sub', [g.op('CumSum', [mask, g.scalarI(1)]), g.scalarI(1)]);
  const positions = g.op('Max', [counted, g.scalarI(0)]);
  const keyValid = g.op('Cast', [mask], { to: onnxDataType('float32') });

  const img = L.image(patches);
  const x = g.op('Concat', [img, L.text(ids, positions)], { axis: 1 });
  const imageValid = g.op('Expand', [
    g.constant('float32', new Array(nPatch).fill(1), [1, nPatch]),
    g.op('Concat', [L.dim(ids, 0), g.ints([nPatch])], { axis: 0 }),
  ]);
  const bias = g.op('Min', [L.causalBias(x), L.keyBias(g.op('Concat', [imageValid, keyValid], { axis: 1 }))]);
  let h = x;
  // the last layer computes only the text rows (image rows are never read)
  for (let i = 0; i < cfg.nLayers; i++) h = L.block(`dec.${i}`, h, bias, i === cfg.nLayers - 1 ? { start: nPatch, end: SLICE_END } : undefined).out;
  g.output(L.logits(h), EXPORT_IO.logits, 'float32', ['batch', 'sequence', cfg.vocabSize]);
  return g;
}
