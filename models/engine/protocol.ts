/** The calls the engine (main thread) makes to its worker, and the worker's start-up data. */
import type { PolicyConfig } from '../config.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, WeightSlot } from './types.ts';

export interface WorkerInit {
  config: PolicyConfig;
  options: EngineOptions;
}

export interface EngineCalls {
  /** Installs a weight snapshot (the buffer is moved); returns its version. */
  setWeights(snapshot: { version: number; buffer: ArrayBuffer; slot: WeightSlot }): number;
  /** A copy of a retained version's weights, packed (weights.ts), moved to the caller. */
  getWeights(version: number): Float32Array;
  sample(request: SampleRequest): SampleResult;
  logProbs(request: LogProbRequest): LogProbResult;
  logProbViews(requests: LogProbRequest[]): LogProbResult[];
}
