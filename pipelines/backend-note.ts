/**
 * The line a run says once at start about what computes it: the trainer engine of the update (and why, when
 * `auto` chose it) and the TensorFlow.js backend (and why: the backends skipped and their reasons), e.g.
 *
 *   train: update on ort (worker.actor.engine=auto: onnxruntime, as TensorFlow.js has no native backend here);
 *   TensorFlow.js backend wasm: tensorflow: tfjs-node-gpu is not installed (...)
 */
import type { TrainerEngine } from '../models/trainer/types.ts';
import { type BackendName, tfBackendReason } from '../util/tf-backend.ts';

export function describeBackends(command: string, requested: string, engine: TrainerEngine, backend: BackendName, key = 'worker.actor.engine'): string {
  const why =
    requested === 'auto'
      ? `: ${engine === 'tfjs' ? 'tfjs, as TensorFlow.js runs on its native backend' : 'onnxruntime, as TensorFlow.js has no native backend here'}`
      : '';
  return `${command}: update on ${engine} (${key}=${requested}${why}); TensorFlow.js backend ${tfBackendReason() ?? backend}`;
}
