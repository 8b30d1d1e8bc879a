/**
 * Parameter records <-> tf.Variables for the trainer. Kept apart from params.ts so that the onnxruntime
 * side can use the layout without loading TensorFlow.js.
 */
import { tf } from '../util/tf-backend.ts';
import type { PolicyConfig } from './config.ts';
import { type Params, paramSpecs, validateParams } from './params.ts';

export type TfParams = Record<string, tf.Variable>;

/** Trainable variables holding a copy of `params` (validated against the config). */
export function createVariables(c: PolicyConfig, params: Params): TfParams {
  validateParams(c, params);
  const vars: TfParams = {};
  // Variables outlive tidy; their initial-value tensors do not.
  for (const s of paramSpecs(c)) vars[s.name] = tf.tidy(() => tf.variable(tf.tensor(params[s.name], s.shape, 'float32'), true));
  return vars;
}

/** Overwrites the variables' values with `params` (validated against the config). */
export function assignParams(c: PolicyConfig, vars: TfParams, params: Params): void {
  validateParams(c, params);
  for (const s of paramSpecs(c)) {
    const t = tf.tensor(params[s.name], s.shape, 'float32');
    vars[s.name].assign(t);
    t.dispose();
  }
}

/** A Float32Array copy of every variable, keyed by parameter name. */
export function readParams(vars: TfParams): Params {
  const out: Params = {};
  for (const [name, v] of Object.entries(vars)) out[name] = (v.dataSync() as Float32Array).slice();
  return out;
}

export function disposeVariables(vars: TfParams): void {
  for (const v of Object.values(vars)) v.dispose();
}
