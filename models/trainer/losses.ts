/**
 * Losses of the trainer interface that are not the RL objective (that one is `papoLoss` in algorithms/).
 *
 * @example
 * await trainer.minimize(rows, tokenMeanNll); // the supervised warm start's step
 */
import { tf } from '../../util/tf-backend.ts';
import type { LossFn, LossInputs } from './types.ts';

/** Marks a loss as affine in the log-probs (see `LossFn.linear`), so the onnxruntime trainer needs one run. */
export function linearLoss<M>(loss: (inputs: LossInputs) => { loss: tf.Scalar; metrics?: M }): LossFn<M> {
  return Object.assign((inputs: LossInputs) => loss(inputs), { linear: true as const });
}

/** Token-mean negative log-likelihood of the response tokens: -sum(logprobs) / max(tokens, 1) (PAD log-probs are 0). */
export const tokenMeanNll: LossFn<undefined> = linearLoss(({ logprobs, mask }) => ({
  loss: tf.div(tf.neg(tf.sum(logprobs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar,
}));
