/**
 * A micro-batch's loss on plain log-prob matrices: its value, metrics, and its gradient w.r.t. the
 * log-probs (the cotangent the onnxruntime gradient graph takes). The loss is the caller's tfjs function
 * (`LossFn`), the same one the tfjs trainer differentiates end to end, so the objective is written once.
 *
 * @example
 * const r = lossCotangent(logprobs, undefined, mask, B, T, ({ logprobs, mask }) => ({ loss: nll(logprobs, mask) }));
 * // r.loss, r.metrics, r.cotangent (Float32Array [B, T])
 */
import { tf } from '../../util/tf-backend.ts';
import type { LossFn } from './types.ts';

export interface LossCotangent<M> {
  loss: number;
  metrics: M | undefined;
  /** dL/dlogprobs [B, T] */
  cotangent: Float32Array;
  /** dL/dmaskedLogprobs [B, T] when masked log-probs were given (zeros if the loss ignores them) */
  maskedCotangent?: Float32Array;
}

export function lossCotangent<M>(
  logprobs: Float32Array,
  masked: Float32Array | undefined,
  mask: Float32Array,
  B: number,
  T: number,
  loss: LossFn<M>,
): LossCotangent<M> {
  let metrics: M | undefined;
  // Variables rather than plain tensors: variableGrads gives no gradient (instead of an error) for an
  // input the loss does not use.
  // Variables outlive tidy; their initial-value tensors do not.
  const lp = tf.tidy(() => tf.variable(tf.tensor2d(logprobs, [B, T]), true));
  const mlp = masked ? tf.tidy(() => tf.variable(tf.tensor2d(masked, [B, T]), true)) : undefined;
  const maskT = tf.tensor2d(mask, [B, T]);
  try {
    const { value, grads } = tf.variableGrads(
      () => {
        const r = loss({ logprobs: lp as unknown as tf.Tensor2D, mask: maskT, maskedLogprobs: mlp as unknown as tf.Tensor2D | undefined });
        metrics = r.metrics;
        return r.loss;
      },
      mlp ? [lp, mlp] : [lp],
    );
    const read = (v: tf.Variable) => {
      const g = grads[v.name];
      return g ? Float32Array.from(g.dataSync() as Float32Array) : new Float32Array(B * T);
    };
    const out: LossCotangent<M> = { loss: (value.dataSync() as Float32Array)[0], metrics, cotangent: read(lp) };
    if (mlp) out.maskedCotangent = read(mlp);
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  } finally {
    tf.dispose([lp, maskT, ...(mlp ? [mlp] : [])]);
  }
}

/** A micro-batch's loss value and metrics, without its gradient. */
export function lossValue<M>(
  logprobs: Float32Array,
  masked: Float32Array | undefined,
  mask: Float32Array,
  B: number,
  T: number,
  loss: LossFn<M>,
): { loss: number; metrics: M | undefined } {
  let metrics: M | undefined;
  const value = tf.tidy(() => {
    const r = loss({
      logprobs: tf.tensor2d(logprobs, [B, T]),
      mask: tf.tensor2d(mask, [B, T]),
      maskedLogprobs: masked ? tf.tensor2d(masked, [B, T]) : undefined,
    });
    metrics = r.metrics;
    return (r.loss.dataSync() as Float32Array)[0];
  });
  return { loss: value, metrics };
}

/**
 * Checks that a loss declared linear (`LossFn.linear`) is affine in the log-probs on this micro-batch:
 * loss(lp) = loss(0) + <dL/dlp, lp>, to float32 rounding. Returns a message when it is not.
 */
export function affineMismatch(loss: number, lossAtZero: number, cotangent: Float32Array, logprobs: Float32Array): string | undefined {
  let dot = 0;
  let scale = Math.abs(lossAtZero);
  for (let i = 0; i < cotangent.length; i++) {
    dot += cotangent[i] * logprobs[i];
    scale += Math.abs(cotangent[i] * logprobs[i]);
  }
  const predicted = lossAtZero + dot;
  if (Math.abs(loss - predicted) <= 1e-4 * scale + 1e-6) return undefined;
  return `the loss is declared linear in the log-probs (LossFn.linear) but is not: it is ${loss}, its linear prediction from zero log-probs is ${predicted}`;
}
