/**
 * Time left from the steady-state rate: the steps after the first one this launch completes. The first
 * step carries the start-up (engine and trainer threads, JIT, the pipeline filling), so a rate that counts
 * it overstates the time left of a short run many times over. Until a second step is done the time left is
 * unknown (NaN); at the last step it is 0.
 *
 * @example
 * const eta = new SteadyEta(80);
 * eta.update(1, t1); eta.update(2, t2);
 * eta.seconds(2, t2); // (t2 - t1) / 1 step * 78 steps, in seconds
 */
export class SteadyEta {
  private first?: { step: number; ms: number };

  constructor(private readonly total: number) {}

  /** `step` is done at `ms` (performance.now()). */
  update(step: number, ms: number): void {
    this.first ??= { step, ms };
  }

  /** Seconds left after `step` at `ms`: NaN before a step beyond the first is done. */
  seconds(step: number, ms: number): number {
    const f = this.first;
    if (step >= this.total) return 0;
    if (!f || step <= f.step) return Number.NaN;
    return ((ms - f.ms) / 1000 / (step - f.step)) * Math.max(this.total - step, 0);
  }
}
