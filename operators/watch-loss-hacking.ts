/**
 * The loss-hacking watch (docs/objective.md, "Loss hacking"): the perception term is unbounded and maximised,
 * so a policy can learn to make its original and masked views differ by emitting unrelated tokens. The
 * symptoms are accuracy collapsing while kl_prcp climbs, or while the entropy of the sampled tokens rises
 * (the policy emits unrelated tokens: on the digits task this is the collapse seen, with kl_prcp falling,
 * not climbing; docs/does-papo-help.md). Over a window of steps, the watch fires when the mean accuracy is
 * `accuracyDrop` below its best window so far and either the mean kl_prcp exceeds `klPrcpThreshold` or the
 * mean entropy (`actor/entropy_loss`) is `entropyRise` times its lowest window (0 or absent: that symptom
 * is not watched). The earliest symptom needs no accuracy drop: on questions that need no image (the
 * general families, `actor/kl_prcp/general`) kl_prcp should stay near 0; its window mean above
 * `generalKlPrcp` means the answers to them came to depend on the image (on digits it passed 0.02 some 25
 * steps before the collapse, while healthy runs stay under 0.012). `onAlarm` gets the step and the figures
 * (and may stop the run). Records pass through unchanged.
 *
 * @example
 * trained$.pipe(watchLossHacking({ klPrcpThreshold: 0.5, accuracyDrop: 0.1, window: 5 }, (a) => logger.warn(a)))
 */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';

export interface LossHackingOptions {
  klPrcpThreshold: number;
  accuracyDrop: number;
  window: number;
  /** entropy window mean over its lowest window mean that counts as a symptom (0 / absent: not watched) */
  entropyRise?: number;
  /** window mean of kl_prcp on the general (image-free) questions that counts alone (0 / absent: not watched) */
  generalKlPrcp?: number;
}

export interface LossHackingAlarm {
  step: number;
  klPrcp: number;
  accuracy: number;
  bestAccuracy: number;
  /** which symptom came with the accuracy drop */
  symptom: 'kl_prcp' | 'entropy' | 'kl_prcp_general';
  /** window mean of kl_prcp on the general questions (when logged) */
  klPrcpGeneral?: number;
  /** window mean of the sampled tokens' entropy, and its lowest window mean so far (when logged) */
  entropy?: number;
  lowestEntropy?: number;
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
  const ent: number[] = [];
  const gen: number[] = [];
  let best = -Infinity;
  let lowestEntropy = Infinity;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  let priming = true;
  const observe = (r: { step: number; metrics: Record<string, number> }) => {
    const klLoss = r.metrics['actor/kl_prcp_loss'];
    const a = r.metrics['reward/accuracy/mean'];
    if (klLoss === undefined || a === undefined) return;
    kl.push(-klLoss);
    acc.push(a);
    const e = r.metrics['actor/entropy_loss'];
    ent.push(e === undefined || !Number.isFinite(e) ? Number.NaN : e);
    const g = r.metrics['actor/kl_prcp/general'];
    gen.push(g === undefined || !Number.isFinite(g) ? Number.NaN : g);
    if (kl.length > opts.window) {
      kl.shift();
      acc.shift();
      ent.shift();
      gen.shift();
    }
    if (kl.length < opts.window) return;
    const k = mean(kl);
    const m = mean(acc);
    const h = mean(ent); // NaN while a step of the window lacks it
    best = Math.max(best, m);
    const kg = mean(gen); // NaN while a step of the window lacks it (no general questions)
    if (Number.isFinite(h)) lowestEntropy = Math.min(lowestEntropy, h);
    if (priming) return;
    const generalUp = (opts.generalKlPrcp ?? 0) > 0 && Number.isFinite(kg) && kg > (opts.generalKlPrcp ?? 0);
    const dropped = m < best - opts.accuracyDrop;
    const rise = opts.entropyRise ?? 0;
    const entropyUp = rise > 0 && Number.isFinite(h) && lowestEntropy > 0 && h > rise * lowestEntropy;
    const symptom = dropped && k > opts.klPrcpThreshold ? 'kl_prcp' : dropped && entropyUp ? 'entropy' : generalUp ? 'kl_prcp_general' : undefined;
    if (symptom === undefined) return;
    const fell = `while accuracy ${m.toFixed(3)} fell from ${best.toFixed(3)} (means of the last ${opts.window} steps)`;
    onAlarm({
      step: r.step,
      klPrcp: k,
      accuracy: m,
      bestAccuracy: best,
      symptom,
      ...(Number.isFinite(h) ? { entropy: h, lowestEntropy } : {}),
      ...(Number.isFinite(kg) ? { klPrcpGeneral: kg } : {}),
      message:
        `possible loss hacking at step ${r.step}: ` +
        (symptom === 'kl_prcp'
          ? `kl_prcp ${k.toFixed(3)} (over ${opts.klPrcpThreshold}) ${fell}`
          : symptom === 'entropy'
            ? `entropy ${h.toFixed(3)} is ${(h / lowestEntropy).toFixed(1)}x its lowest (${lowestEntropy.toFixed(3)}; kl_prcp ${k.toFixed(3)}) ${fell}`
            : `kl_prcp on the questions that need no image ${kg.toFixed(3)} (over ${opts.generalKlPrcp}; mean of the last ${opts.window} steps): their answers came to depend on the image, accuracy ${m.toFixed(3)} (best ${best.toFixed(3)})`) +
        '; try a smaller perception_loss_weight, a larger entropy_coef_* or a larger kl_coef',
    });
  };
  history.forEach(observe);
  priming = false;
  return tap<T>((r) => observe(r));
}
