/** Messages between the onnxruntime trainer (main thread) and its worker. */
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { AdamWConfigInput, AdamWState } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import type { RowsPayload } from './types.ts';

export interface TrainerInit {
  config: PolicyConfig;
  params: Params;
  optimizer: AdamWConfigInput;
  options: OrtTrainOptions;
}

export type TrainerCall = { id: number } & (
  | { method: 'forward'; rows: RowsPayload }
  | { method: 'backward'; cotangent: Float32Array }
  | { method: 'forwardBackward'; rows: RowsPayload; cotangent: Float32Array }
  | { method: 'step' | 'zeroGrad' | 'gradients' | 'getParams' | 'exportState' | 'heldArrays' | 'close' }
  | { method: 'setParams'; params: Params }
  | { method: 'importState'; state: AdamWState }
);

export type TrainerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; stack?: string }
  | { type: 'fatal'; message: string; stack?: string };
