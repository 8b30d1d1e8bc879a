/**
 * The trainer interface that the RL update sink and `papo sft` call, with two implementations:
 * onnxruntime (`OrtTrainer`, the default on CPU: gradients from the policy's ONNX graph, in a worker
 * thread) and TensorFlow.js (`TfTrainer`: the reference, and the GPU path through tfjs-node-gpu).
 *
 * The loss is written once, as a tfjs function of the log-prob tensors (`LossFn`); both trainers call
 * it: the tfjs trainer inside its gradient tape, the onnxruntime trainer on the log-probs its forward
 * produced, to get dL/dlogprobs, which its gradient graph turns into parameter gradients.
 *
 * Parameters and optimizer state cross the interface as named Float32Arrays (`Params`, `AdamWState`), the
 * form checkpoints store.
 *
 * @example
 * const trainer = await createTrainer({ engine: 'ort', config, params, optimizer: { lr: 1e-3 } });
 * const { loss } = await trainer.accumulate({ images, prompts, responses }, ({ logprobs, mask }) =>
 *   ({ loss: tf.div(tf.neg(tf.sum(logprobs)), tf.sum(mask)) as tf.Scalar }));
 * const info = await trainer.step(); // { step, lr, gradNorm }
 */
import type { RgbImage } from '../../util/image.ts';
import type { tf } from '../../util/tf-backend.ts';
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { AdamWConfig, AdamWState, StepInfo } from '../adamw.ts';

export type TrainerEngine = 'ort' | 'tfjs';

/** One micro-batch: rows of (image, prompt, response). */
export interface TrainRows {
  /** one image per row */
  images: readonly RgbImage[];
  /** question strings or BOS-first token ids (optionally left-padded) */
  prompts: readonly (string | ArrayLike<number>)[];
  /** response token ids (optionally right-padded with PAD) */
  responses: readonly ArrayLike<number>[];
  /**
   * Also score every row on this image (PAPO's masked view, `recompute_masked_logprobs`), with gradient:
   * the loss then receives `maskedLogprobs`.
   */
  maskedImages?: readonly RgbImage[];
}

/** The number of rows of a micro-batch, after checking that its images, prompts and masked images agree. */
export function checkTrainRows(rows: TrainRows): number {
  const B = rows.responses.length;
  if (rows.images.length !== B || rows.prompts.length !== B)
    throw new Error(`trainer: ${B} responses but ${rows.images.length} images and ${rows.prompts.length} prompts`);
  if (rows.maskedImages && rows.maskedImages.length !== B) throw new Error(`trainer: ${B} rows but ${rows.maskedImages.length} masked images`);
  return B;
}

/** What a loss sees: [B, T] tensors, T the longest response of the micro-batch. */
export interface LossInputs {
  /** log pi(response token | image, prompt, earlier tokens); 0 at PAD; carries the gradient */
  logprobs: tf.Tensor2D;
  /** 1 on real response tokens, 0 at PAD */
  mask: tf.Tensor2D;
  /** the same tokens scored on `maskedImages` (when given); carries the gradient */
  maskedLogprobs?: tf.Tensor2D;
}

/**
 * A micro-batch's loss as a scalar tensor, plus any plain metrics. Tensors it creates are released by the
 * trainer; it may read values (dataSync) for its metrics.
 *
 * `linear: true` declares the loss affine in `logprobs` and `maskedLogprobs` (its gradient w.r.t. them
 * depends only on the mask, as for the supervised NLL): the onnxruntime trainer then takes that gradient
 * before the forward and computes the log-probs and the parameter gradients in one run instead of two.
 * It checks the declaration on every micro-batch (the loss must equal its value at zero log-probs plus
 * the gradient's inner product with them) and throws if it does not hold. See `linearLoss`.
 */
export type LossFn<M> = ((inputs: LossInputs) => { loss: tf.Scalar; metrics?: M }) & { readonly linear?: boolean };

export interface MicroBatchResult<M> {
  loss: number;
  metrics: M | undefined;
}

export interface Trainer {
  readonly engine: TrainerEngine;
  readonly config: PolicyConfig;
  readonly optimizerConfig: AdamWConfig;
  /**
   * Forward, loss and backward of one micro-batch; the gradients add to those accumulated since the last
   * `step` / `zeroGrad` (divide the loss by the number of micro-batches for a mean).
   */
  accumulate<M>(rows: TrainRows, loss: LossFn<M>): Promise<MicroBatchResult<M>>;
  /**
   * One AdamW step on the accumulated gradients, which are then cleared. On a non-finite gradient norm
   * it throws and leaves the parameters and optimizer state untouched (the gradients are cleared too).
   */
  step(): Promise<StepInfo>;
  /** Drops the accumulated gradients. */
  zeroGrad(): Promise<void>;
  /** `accumulate` one micro-batch, then `step` (the supervised warm start). */
  minimize<M>(rows: TrainRows, loss: LossFn<M>): Promise<StepInfo & MicroBatchResult<M>>;
  /** Optimizer steps taken so far. */
  readonly stepCount: number;
  /** Copies of every parameter, keyed by name. */
  getParams(): Promise<Params>;
  /** Loads parameter values (same config, validated). Accumulated gradients are dropped. */
  setParams(params: Params): Promise<void>;
  /** Copies of the optimizer's step count and moments. */
  exportOptimizerState(): Promise<AdamWState>;
  /** Restores a state from `exportOptimizerState` (validated: names and sizes). */
  importOptimizerState(state: AdamWState): Promise<void>;
  /** Releases the trainer (its worker, sessions or tensors). */
  close(): Promise<void>;
}

/** Plain-JS batch of a micro-batch's rows: ids as row arrays (they cross the worker boundary). */
export interface RowsPayload {
  images: RgbImage[];
  prompts: (string | number[])[];
  responses: number[][];
}
