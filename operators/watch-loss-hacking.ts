/**
 * The loss-hacking watch (PAPO-SPEC.md, "Loss hacking"): the perception term is unbounded and maximised,
 * so a policy can learn to make its original and masked views differ by emitting unrelated tokens. The
 * symptoms are kl_prcp climbing while accuracy collapses. Over a window of steps, the watch fires when the
 * mean kl_prcp exceeds `klPrcpThreshold` while the mean accuracy is `accuracyDrop` below its best window
 * so far; `onAlarm` gets the step and the figures (and may stop the run). Records pass through unchanged.
 *
 * @example
 * trained$.pipe(watchLossHacking({ klPrcpThreshold: 0.5, accuracyDrop: 0.1, window: 5 }, (a) => logger.warn(a)))
 */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';

export interface LossHackingOptions {
  klPrcpThreshold: number;
  accuracyDrop: number;
  window: number;
}

export interface LossHackingAlarm {
  step: number;
  klPrcp: number;
  accuracy: number;
  bestAccuracy: number;
  message: string;
}

export function watchLossHacking<T extends { step: number; metrics: Record<string, number> }>(
  opts: LossHackingOptions,
  onAlarm: (alarm: LossHackingAlarm) => void,
  /** the records of earlier steps (a resumed run): they fill the window and the best accuracy, silently */
  history: readonly { step: number; metrics: Record<string, number> }[] = [],
): MonoTypeOperatorFunction<T> {
  const kl: number[] = [];
  const acc: number[] = [];
  let best = -Infinity;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  let priming = true;
  const observe = (r: { step: number; metrics: Record<string, number> }) => {
    const klLoss = r.metrics['actor/kl_prcp_loss'];
    const a = r.metrics['reward/accuracy/mean'];
    if (klLoss === undefined || a === undefined) return;
    kl.push(-klLoss);
    acc.push(a);
    if (kl.length > opts.window) {
      kl.shift();
      acc.shift();
    }
    if (kl.length < opts.window) return;
    const k = mean(kl);
    const m = mean(acc);
    best = Math.max(best, m);
    if (!priming && k > opts.klPrcpThreshold && m < best - opts.accuracyDrop) {
      onAlarm({
        step: r.step,
        klPrcp: k,
        accuracy: m,
        bestAccuracy: best,
        message:
          `possible loss hacking at step ${r.step}: kl_prcp ${k.toFixed(3)} (over ${opts.klPrcpThreshold}) while accuracy ${m.toFixed(3)} ` +
          `fell from ${best.toFixed(3)} (means of the last ${opts.window} steps); try a larger entropy_coef_*, a smaller perception_loss_weight or a larger kl_coef`,
      });
    }
  };
  history.forEach(observe);
  priming = false;
  return tap<T>((r) => observe(r));
}
