/**
 * `createTrainer`: the trainer for a config, on the chosen engine ('ort', the default on CPU, or 'tfjs').
 * Both need TensorFlow.js initialised (the loss is a tfjs function): done here.
 *
 * @example
 * const trainer = await createTrainer({ engine: 'ort', config, params, optimizer: { lr: 1e-3 } });
 */
import { initTf } from '../../util/tf-backend.ts';
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { AdamWConfigInput } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import { OrtTrainer } from './ort-trainer.ts';
import { TfTrainer } from './tf-trainer.ts';
import type { Trainer, TrainerEngine } from './types.ts';

export interface CreateTrainerOptions {
  /** default 'ort' */
  engine?: TrainerEngine;
  config: PolicyConfig;
  params: Params;
  optimizer?: AdamWConfigInput;
  /** onnxruntime trainer only: threads, gradient mode, rows per run */
  ort?: OrtTrainOptions;
}

export async function createTrainer(opts: CreateTrainerOptions): Promise<Trainer> {
  await initTf();
  const engine = opts.engine ?? 'ort';
  if (engine === 'tfjs') return new TfTrainer(opts.config, opts.params, opts.optimizer);
  if (engine === 'ort') return OrtTrainer.create(opts.config, opts.params, opts.optimizer, opts.ort);
  throw new Error(`trainer engine must be 'ort' or 'tfjs', got '${String(engine)}'`);
}

export type { Trainer, TrainerEngine } from './types.ts';
