/**
 * Where a step's wall time went. Every stage notes the interval it ran (`addTiming` does it for the
 * stages of operators/, `noteStage` for any other); a `StepClock` listens while the sink runs and, for
 * each step's window (from the previous step leaving the sink to this one leaving it), measures the time
 * some stage was running: the union of the noted intervals inside the window. The rest of the window is
 * `timing_s/other` (no stage running: the gate, checkpoints, hand-offs between stages, a remote worker
 * computing a shard). The step's breakdown then satisfies, exactly (up to float rounding),
 *
 *   timing_s/step = sum of the stage timings (timing_s/gen, reward, ..., update_actor, update_weights)
 *                   + timing_s/other - timing_s/overlap
 *
 * (`timing_s/save_wait`, the wait of `papo train` for the previous step's writes, is added after the step left
 * the sink: it is not in the sum, and the wait itself falls in the next step's window, as `other`.)
 * `timing_s/overlap` is the time counted more than once by the stage timings: stages of one step running
 * concurrently (shards), or the next step's sampling running under this step's update (max_staleness >= 1).
 * It is signed: a step whose stages partly ran in the previous step's window (pipelined sampling) can count
 * less than its window's busy time, and its overlap is then negative.
 *
 * Listeners are process-wide: two runs in one process hear each other's stages (their `other` is smaller and
 * their overlap larger; the identity still holds). A shard computed on a remote worker is not heard here: its
 * stage timings come with its result, and its wall time in this process is `other`.
 *
 * @example
 * const clock = new StepClock();
 * const busy = clock.busySeconds(windowStart, performance.now()); clock.clear();
 */

type StageListener = (key: string, start: number, end: number) => void;

const listeners = new Set<StageListener>();

/** Notes that stage `key` ran from `start` to `end` (ms, performance.now()). */
export function noteStage(key: string, start: number, end: number): void {
  for (const l of listeners) l(key, start, end);
}

/** Calls `listener` with every stage interval noted from now on; returns the unsubscribe function. */
export function listenStages(listener: StageListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** Union length (ms) of intervals clipped to [a, b]. */
export function unionWithin(intervals: readonly (readonly [number, number])[], a: number, b: number): number {
  const clipped = intervals
    .map(([s, e]) => [Math.max(s, a), Math.min(e, b)] as const)
    .filter(([s, e]) => e > s)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curS = Number.NaN;
  let curE = Number.NaN;
  for (const [s, e] of clipped) {
    if (!(s <= curE)) {
      if (curE > curS) total += curE - curS;
      curS = s;
      curE = e;
    } else if (e > curE) curE = e;
  }
  if (curE > curS) total += curE - curS;
  return total;
}

/** Collects the stage intervals noted while it is open (see the module comment). */
export class StepClock {
  private intervals: (readonly [number, number])[] = [];
  private readonly stop: () => void;

  constructor() {
    this.stop = listenStages((_key, s, e) => this.intervals.push([s, e]));
  }

  /** Notes an interval of the clock's owner (the sink's own stages). */
  note(start: number, end: number): void {
    this.intervals.push([start, end]);
  }

  /** Seconds of [a, b] (ms) during which some noted stage ran. */
  busySeconds(a: number, b: number): number {
    return unionWithin(this.intervals, a, b) / 1000;
  }

  /** Forgets the intervals noted so far (after a step: they all ended by its end). */
  clear(): void {
    this.intervals = [];
  }

  close(): void {
    this.stop();
    this.intervals = [];
  }
}
