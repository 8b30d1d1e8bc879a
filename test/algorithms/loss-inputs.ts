/**
 * What the objective's tests share: the float64 reference's inputs as float32 tensors for `papoLoss`, and the
 * finite-difference gradient of the reference loss.
 */
import { tf } from '../../util/tf-backend.ts';
import type { ObjectiveConfig } from '../../algorithms/config.ts';
import type { PapoLossInputs } from '../../algorithms/papo-loss.ts';
import { refPapoLoss, type Mat, type RefInputs } from '../../algorithms/float64-reference.ts';

export const t2 = (m: Mat) => tf.tensor2d(m, undefined, 'float32');

export function toTf(r: RefInputs): PapoLossInputs {
  return {
    logprobs: t2(r.logprobs),
    oldLogprobs: t2(r.oldLogprobs),
    refLogprobs: r.refLogprobs && t2(r.refLogprobs),
    maskedLogprobs: r.maskedLogprobs && t2(r.maskedLogprobs),
    advantages: Array.isArray(r.advantages[0]) ? t2(r.advantages as Mat) : tf.tensor1d(r.advantages as number[]),
    responseMask: t2(r.responseMask),
  };
}

export const disposeInputs = (x: PapoLossInputs) => Object.values(x).forEach((t) => t && (t as tf.Tensor).dispose());

/** d loss / d logprobs by central differences on the float64 reference. */
export function fdGrad(ref: RefInputs, cfg: ObjectiveConfig, h = 1e-6): Mat {
  return ref.logprobs.map((row, b) =>
    row.map((_, t) => {
      const at = (d: number) => {
        const lp = ref.logprobs.map((r) => r.slice());
        lp[b][t] += d;
        return refPapoLoss({ ...ref, logprobs: lp }, cfg).loss;
      };
      return (at(h) - at(-h)) / (2 * h);
    }),
  );
}
