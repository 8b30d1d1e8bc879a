/**
 * What a `papo train` run does with the reward calls that failed (the reward threw, timed out, returned a bad
 * value, or its worker died: tasks/rewards/runner.ts). Each failed call scores 0, so a broken reward quietly
 * trains on zeros unless somebody is told:
 *
 * - log.jsonl: every step with failures (`reward_failures`: the count, the count per kind, and the first
 *   failure of each kind with its record id and reason); with `PAPO_LOG_LEVEL=debug`, every failure
 *   (`reward_failure`).
 * - the terminal: the first failure of each kind in full (record id and reason); then a count per step, at
 *   most one line every `sayEveryMs` (the steps in between are summed into the next line).
 * - the stop: when more than `maxRate` of the reward calls of the last `window` steps failed (fewer steps at
 *   the start), the run stops with an error giving the figures and the first failure of each kind.
 *
 * Memory is bounded by `window` steps of counts and at most one failure per kind each.
 */
import type { RewardFailure, RewardFailureKind } from '../tasks/rewards/runner.ts';
import type { Logger } from '../util/logger.ts';

export interface RewardFailureOptions {
  /** stop when more than this share of the window's calls failed (`trainer.max_reward_failure_rate`; 1: never) */
  maxRate: number;
  /** steps the share is taken over (`trainer.reward_failure_window`) */
  window: number;
  /** at most one count line on the terminal this often; default 10 s */
  sayEveryMs?: number;
  /** the clock (ms), for tests */
  now?: () => number;
}

/** A failure as the log and the messages name it. */
export interface NamedFailure {
  id: string;
  reason: string;
}

interface StepCounts {
  step: number;
  calls: number;
  failures: number;
  kinds: Partial<Record<RewardFailureKind, number>>;
  first: Partial<Record<RewardFailureKind, NamedFailure>>;
}

/** The count per kind and the first failure of each kind. */
export function failureKinds(failures: readonly RewardFailure[]): Pick<StepCounts, 'kinds' | 'first'> {
  const kinds: StepCounts['kinds'] = {};
  const first: StepCounts['first'] = {};
  for (const f of failures) {
    kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
    first[f.kind] ??= { id: f.id, reason: f.reason };
  }
  return { kinds, first };
}

/** `threw 3 (first: record a/1: Error: boom), timeout 1 (first: ...)`. */
export function describeKinds(counts: Pick<StepCounts, 'kinds' | 'first'>): string {
  return Object.entries(counts.kinds)
    .map(([kind, n]) => {
      const f = counts.first[kind as RewardFailureKind];
      return `${kind} ${n}${f ? ` (first: record ${f.id}: ${f.reason})` : ''}`;
    })
    .join(', ');
}

export class RewardFailureWatch {
  private readonly recent: StepCounts[] = [];
  private readonly kindsSaid = new Set<string>();
  private lastSaid = -Infinity;
  /** steps with failures, and their failures, since the last count line */
  private unsaid = { steps: 0, failures: 0, calls: 0 };
  private readonly sayEveryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly io: { say: (line: string) => void; logger: Logger },
    private readonly opts: RewardFailureOptions,
  ) {
    if (!(opts.maxRate >= 0 && opts.maxRate <= 1)) throw new Error(`max reward failure rate must be in [0, 1], got ${opts.maxRate}`);
    if (!(Number.isInteger(opts.window) && opts.window >= 1)) throw new Error(`reward failure window must be an integer >= 1, got ${opts.window}`);
    this.sayEveryMs = opts.sayEveryMs ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * A step's reward calls: logged, said as the module doc describes; throws the stop's error when the
   * window's share of failures is above the limit.
   */
  note(step: number, failures: readonly RewardFailure[], calls: number): void {
    const counts: StepCounts = { step, calls, failures: failures.length, ...failureKinds(failures) };
    this.recent.push(counts);
    if (this.recent.length > this.opts.window) this.recent.shift();
    const { logger } = this.io;
    if (failures.length > 0) {
      logger.warn(
        { event: 'reward_failures', step, calls, failures: failures.length, kinds: counts.kinds, first: failures[0], first_by_kind: counts.first },
        'reward failures',
      );
      if (logger.isLevelEnabled('debug'))
        for (const f of failures) logger.debug({ event: 'reward_failure', step, id: f.id, kind: f.kind, reason: f.reason }, 'reward failure');
      this.say(step, failures, calls, counts);
    }
    this.checkRate();
  }

  private say(step: number, failures: readonly RewardFailure[], calls: number, counts: StepCounts): void {
    const reward = failures[0].reward;
    const fresh = Object.keys(counts.kinds).filter((k) => !this.kindsSaid.has(k));
    for (const kind of fresh) {
      this.kindsSaid.add(kind);
      const f = failures.find((x) => x.kind === kind)!;
      this.io.say(
        `\nreward ${reward}: step ${step}: ${counts.kinds[f.kind]} of ${calls} calls failed (${kind}; first: record ${f.id}: ${f.reason}); each scores 0 and counts in reward/failures (every step's in log.jsonl)`,
      );
    }
    this.unsaid.steps++;
    this.unsaid.failures += failures.length;
    this.unsaid.calls += calls;
    const t = this.now();
    if (fresh.length > 0) {
      this.lastSaid = t;
      this.unsaid = { steps: 0, failures: 0, calls: 0 };
    } else if (t - this.lastSaid >= this.sayEveryMs) {
      const { steps, failures: n, calls: c } = this.unsaid;
      const kinds = Object.entries(counts.kinds)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      this.io.say(
        `\nreward ${reward}: step ${step}: ${failures.length} of ${calls} calls failed (${kinds})${steps > 1 ? `; ${n} of ${c} over the ${steps} steps with failures since the last such line` : ''}`,
      );
      this.lastSaid = t;
      this.unsaid = { steps: 0, failures: 0, calls: 0 };
    }
  }

  private checkRate(): void {
    const calls = this.recent.reduce((a, s) => a + s.calls, 0);
    const failed = this.recent.reduce((a, s) => a + s.failures, 0);
    if (calls === 0 || failed / calls <= this.opts.maxRate) return;
    const kinds: StepCounts['kinds'] = {};
    const first: StepCounts['first'] = {};
    for (const s of this.recent) {
      for (const [k, n] of Object.entries(s.kinds) as [RewardFailureKind, number][]) kinds[k] = (kinds[k] ?? 0) + n;
      for (const [k, f] of Object.entries(s.first) as [RewardFailureKind, NamedFailure][]) first[k] ??= f;
    }
    const from = this.recent[0].step;
    const to = this.recent.at(-1)!.step;
    const message =
      `stopping: ${failed} of ${calls} reward calls failed over ${from === to ? `step ${to}` : `steps ${from}..${to}`} (${((100 * failed) / calls).toFixed(1)}%), ` +
      `above trainer.max_reward_failure_rate=${this.opts.maxRate} (taken over the last trainer.reward_failure_window=${this.opts.window} steps): ${describeKinds({ kinds, first })}. ` +
      `Each failed call scores 0, so the run would train on zeros; the last checkpoint stands: fix the reward and continue with --resume (trainer.max_reward_failure_rate=1 never stops)`;
    this.io.logger.error(
      { event: 'reward_failure_rate', from, to, calls, failures: failed, kinds, first_by_kind: first },
      'reward failure rate above the limit',
    );
    throw new Error(message);
  }
}
