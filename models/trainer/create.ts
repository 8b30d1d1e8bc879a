/**
 * `createTrainer`: the trainer for a config, on the chosen engine: 'ort' (onnxruntime), 'tfjs', or 'auto'
 * (the default): tfjs when TensorFlow.js runs on its native backend (tfjs-node-gpu: the GPU path),
 * onnxruntime otherwise (CPU: several times faster than tfjs-wasm, see bench/update-step.ts).
 * Both need TensorFlow.js initialised (the loss is a tfjs function): done here.
 *
 * @example
 * const trainer = await createTrainer({ engine: 'ort', config, params, optimizer: { lr: 1e-3 } });
 */
import { type BackendName, initTf } from '../../util/tf-backend.ts';
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { AdamWConfigInput } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import { OrtTrainer } from './ort-trainer.ts';
import { TfTrainer } from './tf-trainer.ts';
import type { Trainer, TrainerEngine } from './types.ts';

export type TrainerEngineChoice = TrainerEngine | 'auto';

export interface CreateTrainerOptions {
  /** default 'auto' */
  engine?: TrainerEngineChoice;
  config: PolicyConfig;
  params: Params;
  optimizer?: AdamWConfigInput;
  /** onnxruntime trainer only: threads, gradient mode, rows per run */
  ort?: OrtTrainOptions;
}

/** The engine 'auto' resolves to on a tfjs backend. */
export const autoEngine = (backend: BackendName): TrainerEngine => (backend === 'tensorflow' ? 'tfjs' : 'ort');

export async function createTrainer(opts: CreateTrainerOptions): Promise<Trainer> {
  const backend = await initTf();
  const choice = opts.engine ?? 'auto';
  const engine = choice === 'auto' ? autoEngine(backend) : choice;
  if (engine === 'tfjs') return new TfTrainer(opts.config, opts.params, opts.optimizer);
  if (engine === 'ort') return OrtTrainer.create(opts.config, opts.params, opts.optimizer, opts.ort);
  throw new Error(`trainer engine must be 'auto', 'ort' or 'tfjs', got '${String(engine)}'`);
}

export type { Trainer, TrainerEngine } from './types.ts';
