/**
 * Credit-based backpressure for the RL graph. RxJS has none of its own (a source pulls as fast as `next`
 * returns and `concatMap` buffers without bound), so the source emits a batch only when the gate grants
 * one, and the sink hands the credit back once it has applied (or dropped) that batch.
 *
 * The gate admits a new rollout step while fewer than `limit = min(maxInflight, maxStaleness + 1)` steps
 * are between source and sink. Each step ahead of a new one adds at most one policy version before it is
 * trained, so a step admitted under that limit is at most `maxStaleness` versions old when it reaches the
 * update (AReaL's admission rule, in batches): admission waits rather than drops. Extra sampling rounds
 * for a step already admitted (dynamic sampling) are granted at once: they belong to that step's credit.
 *
 * Grants are emitted asynchronously (setImmediate): demand signalled synchronously from inside `next`
 * of a synchronous chain stalls RxJS after a few hundred items.
 *
 * @example
 * const gate = new CreditGate({ maxInflight: 2, maxStaleness: 1, maxSteps: 100 });
 * promptBatches(stream, { batchSize: 16, grants: gate.grants$, seed })
 *   .pipe(sampleGroups(engine, rollout), ..., papoUpdate({ ..., onStepDone: (step) => gate.complete(step) }));
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Logger } from '../util/logger.ts';

export interface Grant {
  /** 1-based rollout step */
  readonly step: number;
  /** 1 for a step's first sampling round, then 2, 3, ... for extra rounds */
  readonly round: number;
}

export interface CreditGateOptions {
  /** bound on steps between source and sink (memory); default maxStaleness + 1 */
  maxInflight?: number;
  /** policy versions a batch may lag when it is trained; default 0 (strictly on-policy) */
  maxStaleness?: number;
  /** steps to admit in all; default unbounded */
  maxSteps?: number;
  /** the first step number (resuming); default 1 */
  firstStep?: number;
  /**
   * Admit a step only once the step before it is sealed (`seal`) or completed: its extra sampling rounds
   * then draw their prompts before the next step draws any, so the data order is the same whatever the
   * timing (dynamic sampling with several steps in flight). Default false.
   */
  sealBeforeNext?: boolean;
  /** debug: each admission and returned credit; trace: extra rounds, and each time admission waits and why */
  logger?: Logger;
}

export class CreditGate {
  readonly limit: number;
  readonly grants$: Observable<Grant>;
  private readonly maxSteps: number;
  private nextStep: number;
  private readonly open = new Map<number, number>(); // step -> rounds granted
  private subscriber: Subscriber<Grant> | undefined;
  private stopping = false;
  private scheduled = false;
  private peak = 0;
  private readonly sealBeforeNext: boolean;
  private readonly sealed = new Set<number>();
  private readonly logger: Logger | undefined;
  /** why admission waited the last time it did (said once per change, at trace) */
  private waiting: string | undefined;

  constructor(opts: CreditGateOptions = {}) {
    const maxStaleness = opts.maxStaleness ?? 0;
    const maxInflight = opts.maxInflight ?? maxStaleness + 1;
    if (!(Number.isInteger(maxStaleness) && maxStaleness >= 0)) throw new Error(`maxStaleness must be a non-negative integer, got ${maxStaleness}`);
    if (!(Number.isInteger(maxInflight) && maxInflight >= 1)) throw new Error(`maxInflight must be a positive integer, got ${maxInflight}`);
    this.limit = Math.min(maxInflight, maxStaleness + 1);
    this.maxSteps = opts.maxSteps ?? Infinity;
    this.nextStep = opts.firstStep ?? 1;
    this.sealBeforeNext = opts.sealBeforeNext ?? false;
    this.logger = opts.logger;
    this.grants$ = new Observable<Grant>((sub) => {
      if (this.subscriber) {
        sub.error(new Error('CreditGate: grants$ has one subscriber (the source of one graph)'));
        return;
      }
      this.subscriber = sub;
      this.schedule();
      return () => {
        this.subscriber = undefined;
      };
    });
  }

  /** Steps admitted and not yet completed. */
  get inflight(): number {
    return this.open.size;
  }

  /** The most steps ever in flight at once. */
  get peakInflight(): number {
    return this.peak;
  }

  /** True once `stop()` was called. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Grants another sampling round for an admitted step (dynamic sampling asks when a batch is short). */
  requestRound(step: number): void {
    const rounds = this.open.get(step);
    if (rounds === undefined) throw new Error(`CreditGate: step ${step} is not in flight`);
    this.open.set(step, rounds + 1);
    const round = rounds + 1;
    this.logger?.trace({ event: 'gate_round', step, round }, 'extra sampling round granted');
    setImmediate(() => this.subscriber?.next({ step, round }));
  }

  /** `step` will ask for no more sampling rounds (see `sealBeforeNext`). */
  seal(step: number): void {
    if (!this.open.has(step)) return;
    this.sealed.add(step);
    this.schedule();
  }

  /** The sink finished `step` (applied or dropped): its credit returns, and the next step may be admitted. */
  complete(step: number): void {
    if (!this.open.delete(step)) throw new Error(`CreditGate: step ${step} completed but it is not in flight`);
    this.sealed.delete(step);
    this.logger?.debug({ event: 'gate_credit', step, inflight: this.open.size, limit: this.limit }, 'credit returned');
    this.schedule();
  }

  /** Admit no new steps; `grants$` completes once the steps in flight are completed. */
  stop(): void {
    this.stopping = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const sub = this.subscriber;
    if (!sub) return;
    const previousSealed = () => !this.sealBeforeNext || !this.open.has(this.nextStep - 1) || this.sealed.has(this.nextStep - 1);
    while (!this.stopping && this.nextStep <= this.maxSteps && this.open.size < this.limit && previousSealed()) {
      const step = this.nextStep++;
      this.open.set(step, 1);
      this.peak = Math.max(this.peak, this.open.size);
      this.waiting = undefined;
      this.logger?.debug({ event: 'gate_admit', step, inflight: this.open.size, limit: this.limit }, 'step admitted');
      sub.next({ step, round: 1 });
    }
    if (this.logger?.isLevelEnabled('trace')) this.traceWait(previousSealed());
    const exhausted = this.stopping || this.nextStep > this.maxSteps;
    if (exhausted && this.open.size === 0) sub.complete();
  }

  /** Says (at trace) why no further step is admitted now, once per reason. */
  private traceWait(previousSealed: boolean): void {
    const why = this.stopping
      ? 'stopping'
      : this.nextStep > this.maxSteps
        ? 'all steps admitted'
        : this.open.size >= this.limit
          ? `${this.open.size} steps in flight, the limit (min(max_inflight_batches, max_staleness + 1))`
          : previousSealed
            ? undefined
            : `step ${this.nextStep - 1} may still ask for sampling rounds`;
    if (why === this.waiting) return;
    this.waiting = why;
    if (why) this.logger?.trace({ event: 'gate_wait', next_step: this.nextStep, inflight: this.open.size, why }, 'admission waits');
  }
}
