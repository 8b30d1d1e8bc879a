/** Messages between the engine (main thread) and its worker. */
import type { PolicyConfig } from '../config.ts';
import type { EngineOptions, LogProbRequest, SampleRequest, WeightSlot } from './types.ts';

export interface WorkerInit {
  config: PolicyConfig;
  options: EngineOptions;
}

export type ToWorker =
  | { type: 'weights'; id: number; version: number; buffer: ArrayBuffer; slot: WeightSlot }
  | { type: 'sample'; id: number; request: SampleRequest }
  | { type: 'logprobs'; id: number; request: LogProbRequest }
  | { type: 'close'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; stack?: string }
  | { type: 'fatal'; message: string; stack?: string };
