/**
 * TensorBoard's scalar smoothing: an exponential moving average debiased like Adam's moments, so the first
 * points are not pulled towards zero. With weight w, `last = w * last + (1 - w) * y` and the smoothed value is
 * `last / (1 - w^n)` after n finite points. Non-finite points pass through unsmoothed and do not count; a
 * constant series stays as it is (TensorBoard's rule, against float round-off drawing a wiggle).
 *
 * @example
 * emaSmooth([1, 2, 3], 0.6); // [1, 1.625, 2.3265...]
 */

/** TensorBoard's default smoothing weight. */
export const DEFAULT_SMOOTHING = 0.6;

/** Throws unless `weight` is a smoothing weight: 0 (none) up to, not including, 1. */
export function checkSmoothing(weight: number, what = 'smoothing'): number {
  if (!(Number.isFinite(weight) && weight >= 0 && weight < 1)) throw new Error(`${what} must be at least 0 and below 1, got ${weight}`);
  return weight;
}

/** The debiased EMA of `values` (in step order) with smoothing weight `weight` in [0, 1). */
export function emaSmooth(values: readonly number[], weight: number = DEFAULT_SMOOTHING): number[] {
  checkSmoothing(weight);
  const constant = values.every((v) => v === values[0]);
  let last = 0;
  let n = 0;
  return values.map((y) => {
    if (constant || !Number.isFinite(y)) return y;
    last = last * weight + (1 - weight) * y;
    n++;
    return last / (1 - weight ** n);
  });
}
