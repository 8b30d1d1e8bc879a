/** The calls the onnxruntime trainer (main thread) makes to its worker, and the worker's start-up data. */
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { AdamWConfigInput, AdamWState, StepInfo } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import type { RowsPayload } from './types.ts';

export interface TrainerInit {
  config: PolicyConfig;
  params: Params;
  optimizer: AdamWConfigInput;
  options: OrtTrainOptions;
}

/** Log-probs [rows, T] of a forward (the masked rows, if any, follow). */
export interface Forward {
  logprobs: Float32Array;
  rows: number;
  T: number;
}

/** One method per OrtTrainRunner method (see ort-train-runner.ts). */
export interface TrainerCalls {
  forward(rows: RowsPayload): Forward;
  backward(cotangent: Float32Array): void;
  forwardBackward(a: { rows: RowsPayload; cotangent: Float32Array }): Forward;
  takeGradients(): Params | null;
  applyGradients(grads: Params): StepInfo;
  zeroGrad(): void;
  gradients(): Params;
  getParams(): Params;
  setParams(params: Params): void;
  exportState(): AdamWState;
  importState(state: AdamWState): void;
  heldArrays(): number;
}
