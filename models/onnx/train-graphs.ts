/**
 * The policy's training graphs, generated from the teacher-forced log-prob graph by models/onnx/autodiff.ts
 * (no hand-written gradients: an architecture change in layers.ts is differentiated as is).
 *
 * - `forward`: the log-prob graph without entropy: inputs as in policy-graphs.ts, output `logprobs` [B, Lr].
 * - `gradient`: the same inputs plus `grad.logprobs` [B, Lr] (dL/dlogprobs, from the loss in algorithms/),
 *   outputs `grad.<param>` for every parameter ('recompute' also outputs `logprobs`: a loss whose
 *   gradient does not depend on the log-probs, like the supervised NLL, needs this one run only).
 *
 * With `sharePrefix` both graphs are the shared-prefix pass (models/onnx/shared-prefix-graph.ts: each
 * prompt's image and prompt computed once for the rows that share them, inputs as there), 'recompute' only.
 *
 * Two forms, measured by bench/ort-gradients.ts:
 * - 'recompute' (the default, measured faster): `gradient` recomputes the forward inside;
 * - 'saved': `forward` also outputs every activation the backward reads (`saved`) and `gradient` takes
 *   them as inputs instead of recomputing. onnxruntime-node copies every output into a fresh JS buffer, and
 *   that copy costs about what recomputing the forward does.
 *
 * @example
 * const g = buildTrainGraphs(cfg);
 * // run g.forward -> logprobs; loss and dL/dlogprobs in tfjs; run g.gradient with grad.logprobs -> grad.<param>
 */
import type { PolicyConfig } from '../config.ts';
import { gradientGraph, splitSaved } from './autodiff.ts';
import { logprobGraphBuilder } from './policy-graphs.ts';
import { sharedPrefixTrainBuilder } from './shared-prefix-graph.ts';

export type GradientMode = 'recompute' | 'saved';

export interface PolicyTrainGraphs {
  mode: GradientMode;
  forward: Uint8Array;
  gradient: Uint8Array;
  /** parameter names, in paramSpecs order (inputs of both graphs; `grad.<name>` outputs of `gradient`) */
  paramNames: string[];
  /** 'saved' only: values output by `forward` and input to `gradient` */
  saved: string[];
  /** the graphs take shared-prefix inputs */
  sharePrefix: boolean;
}

/** Name of the gradient output of parameter `name`. */
export const gradOutputName = (name: string): string => `grad.${name}`;
/** Name of the cotangent input of the gradient graph. */
export const COTANGENT = 'grad.logprobs';

export function buildTrainGraphs(cfg: PolicyConfig, mode: GradientMode = 'recompute', opts: { sharePrefix?: boolean } = {}): PolicyTrainGraphs {
  const sharePrefix = opts.sharePrefix ?? false;
  if (sharePrefix && mode !== 'recompute') throw new Error(`trainer: the shared-prefix pass has the 'recompute' gradient only, not '${mode}'`);
  const { g, paramNames } = sharePrefix ? sharedPrefixTrainBuilder(cfg) : logprobGraphBuilder(cfg, { entropy: false });
  const forward = g.toBytes('teacher-forced response log-probs (training forward)');
  const one = gradientGraph(g, { output: 'logprobs', wrt: paramNames, cotangent: COTANGENT, gradName: gradOutputName, keepOutputs: true });
  if (mode === 'recompute')
    return { mode, forward, gradient: one.builder.toBytes('parameter gradients of the log-probs (forward recomputed)'), paramNames, saved: [], sharePrefix };
  const split = splitSaved(one.builder, one.cotangent, ['logprobs']);
  return {
    mode,
    forward: split.forward.toBytes('teacher-forced response log-probs and the activations the backward reads'),
    gradient: split.backward.toBytes('parameter gradients of the log-probs from saved activations'),
    paramNames,
    saved: split.saved,
    sharePrefix,
  };
}
