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
  /** `first`: where the request's first prompt sits in the caller's (a part of it: errors count from there) */
  sample(arg: { request: SampleRequest; first: number }): SampleResult;
  logProbs(arg: { request: LogProbRequest; first: number }): LogProbResult;
  /** `first`: where each request's first row sits in the caller's */
  logProbViews(arg: { requests: LogProbRequest[]; first: number[] }): LogProbResult[];
}
