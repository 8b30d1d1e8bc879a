/**
 * `papo selfcheck`: evaluates the objective on the selected TensorFlow.js backend for every preset and
 * built-in aggregation mode on random rollout-like inputs, and compares the loss and every metric with the
 * independent float64 implementation that the test suite uses as its oracle.
 */
import { initTf, tf } from '../util/tf-backend.ts';
import { objectiveConfig, PRESETS, type PresetName } from '../algorithms/config.ts';
import { papoLoss } from '../algorithms/papo-loss.ts';
import { FLOAT64_REFERENCE, randomInputs, refPapoLoss, type Mat } from '../algorithms/float64-reference.ts';

export async function runSelfCheck(seed = 0): Promise<boolean> {
  const backend = await initTf(undefined, (m) => console.log(m));
  let worst = 0;
  let checked = 0;
  console.log('preset   loss_agg_mode             loss (tfjs)      loss (float64)   max rel. diff over loss + metrics');
  for (const preset of Object.keys(PRESETS) as PresetName[]) {
    for (const mode of FLOAT64_REFERENCE.lossAggModes) {
      const cfg = objectiveConfig({ loss_agg_mode: mode }, preset);
      const ref = randomInputs(seed + 100 * checked++, 16, 48);
      const t2 = (m: Mat) => tf.tensor2d(m);
      const inputs = {
        logprobs: t2(ref.logprobs),
        oldLogprobs: t2(ref.oldLogprobs),
        refLogprobs: t2(ref.refLogprobs!),
        maskedLogprobs: t2(ref.maskedLogprobs!),
        advantages: tf.tensor1d(ref.advantages as number[]),
        responseMask: t2(ref.responseMask),
      };
      const { loss, metrics } = papoLoss(inputs, cfg);
      const got = loss.dataSync()[0];
      const want = refPapoLoss(ref, cfg);
      let rel = Math.abs(got - want.loss) / Math.max(Math.abs(want.loss), 1e-3);
      for (const [k, v] of Object.entries(want.metrics)) {
        rel = Math.max(rel, Math.abs((metrics as Record<string, number>)[k] - v) / Math.max(Math.abs(v), 1e-3));
      }
      worst = Math.max(worst, rel);
      console.log(`${preset.padEnd(8)} ${mode.padEnd(25)} ${got.toFixed(8).padStart(14)}   ${want.loss.toFixed(8).padStart(14)}   ${rel.toExponential(2)}`);
      loss.dispose();
      Object.values(inputs).forEach((t) => t.dispose());
    }
  }
  const ok = worst <= 1e-5;
  console.log(`${ok ? 'OK' : 'FAILED'}: worst relative difference ${worst.toExponential(2)} (tolerance 1e-5) on the ${backend} backend`);
  return ok;
}
