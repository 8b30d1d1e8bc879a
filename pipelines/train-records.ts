/**
 * What a `papo train` run keeps of its trained steps: the checkpoints (captured the moment a step's update
 * is applied, written once the step's records are out) and the per-step records (metrics.jsonl,
 * TensorBoard, the progress line, the rollout log). Writes of a step run in the background writer while the
 * next step computes; a step's rollout is always written before its checkpoint, and at most one step's
 * writes are pending.
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import type { PolicyConfig } from '../models/config.ts';
import type { Trainer } from '../models/trainer/types.ts';
import type { LossHackingAlarm, PolicyVersions, RolloutBatch, TrainedStep } from '../operators/index.ts';
import { registeredBatchFields, type TypedRow } from '../storage/batch-schema.ts';
import type { Checkpoint } from '../storage/checkpoints.ts';
import type { RolloutStepRecord } from '../storage/rollout-log.ts';
import type { RewardFailure } from '../tasks/rewards/runner.ts';
import type { StreamCursor } from '../tasks/stream.ts';
import type { Task } from '../tasks/types.ts';
import type { Progress } from '../util/progress.ts';
import { RewardFailureWatch } from './reward-failures.ts';
import type { Run } from './run-harness.ts';
import type { TrainConfig } from './train-config.ts';
import type { TrainState } from './train-state.ts';

/** A checkpoint captured at the end of a step, written once the step's records are out. */
interface PendingCheckpoint extends Omit<Checkpoint, 'kind' | 'policy' | 'state'> {
  params: Checkpoint['policy']['params'];
  state: TrainState;
}

export class TrainCheckpoints {
  private readonly pending = new Map<number, PendingCheckpoint>();
  /** the last checkpoint written: its directory and step */
  last?: { dir: string; step: number };

  constructor(
    private readonly run: Run<TrainConfig>,
    private readonly trainer: Trainer,
    private readonly versions: PolicyVersions,
    private readonly policy: PolicyConfig,
    /** what every checkpoint's state holds besides the step's own */
    private readonly base: Pick<TrainState, 'config' | 'config_hash' | 'reference' | 'test_before'>,
  ) {}

  /** Called once a step's update is applied: captures the trainer's state if a checkpoint is due. */
  async applied(step: number, cursor: StreamCursor): Promise<void> {
    const every = this.run.config.trainer.save_freq;
    if (this.run.store && every > 0 && step % every === 0) this.pending.set(step, await this.capture(step, cursor));
  }

  /** The checkpoint captured at `step`, if any, with the step's metrics (for best-checkpoint retention). */
  take(step: number, metrics: Record<string, number>): PendingCheckpoint | undefined {
    const p = this.pending.get(step);
    this.pending.delete(step);
    if (p) p.state.metrics = { ...metrics };
    return p;
  }

  /** The state after the last trained step, unless it is already saved (nothing may be in flight). */
  async final(step: number, cursor: StreamCursor, metrics: Record<string, number>): Promise<void> {
    if (!this.run.store || this.last?.step === step) return;
    const p = await this.capture(step, cursor);
    p.state.metrics = metrics;
    await this.write(p);
  }

  async write(p: PendingCheckpoint): Promise<void> {
    const { trainer } = this.run.config;
    const checkpoint: Checkpoint = {
      kind: 'train',
      step: p.step,
      policy: { config: this.policy, params: p.params },
      optimizer: p.optimizer,
      samplers: p.samplers,
      state: p.state as unknown as Record<string, unknown>,
    };
    const saved = await this.run.writer().saveCheckpoint(this.run.dir, checkpoint, {
      keepLast: trainer.save_limit,
      metric: trainer.save_best_metric,
      higherIsBetter: trainer.save_best_mode === 'max',
    });
    this.last = { dir: saved.dir, step: p.step };
    this.run.logger.debug(
      {
        event: 'checkpoint_retention',
        step: p.step,
        keep_last: trainer.save_limit,
        best_metric: trainer.save_best_metric,
        best_mode: trainer.save_best_mode,
        value: trainer.save_best_metric === undefined ? undefined : p.state.metrics[trainer.save_best_metric],
        removed: saved.removed,
      },
      `checkpoint retention: the newest ${trainer.save_limit || 'all'}${trainer.save_best_metric ? ` and the best by ${trainer.save_best_metric}` : ''} kept`,
    );
    this.run.logger.info(
      { event: 'checkpoint', step: p.step, dir: saved.dir, bytes: saved.bytes, seconds: saved.seconds, removed: saved.removed },
      'checkpoint saved',
    );
  }

  private async capture(step: number, cursor: StreamCursor): Promise<PendingCheckpoint> {
    // the weights from the engine and the optimizer state from the trainer, read at once
    const [v, optimizer] = await Promise.all([this.versions.checkpoint(step), this.trainer.exportOptimizerState()]);
    return {
      step,
      params: v.params,
      optimizer,
      samplers: v.samplers,
      state: { version: v.version, cursor, versions: v.versions, ...this.base, metrics: {} },
    };
  }
}

/** What the rollout log stores of a trained batch. */
export function rolloutRecord(b: RolloutBatch, version: number, task: Task): RolloutStepRecord {
  return {
    step: b.step,
    version,
    groupSize: b.groupSize,
    split: 'train',
    task: task.name,
    taskFingerprint: task.fingerprint,
    seed: b.seed,
    maskSeed: b.maskSeed,
    rounds: b.rounds,
    recordIds: b.records.map((r) => r.id),
    recordIndices: b.indices,
    responses: [...b.responses],
    oldLogprobs: [...b.oldLogprobs],
    maskedLogprobs: b.maskedLogprobs ? [...b.maskedLogprobs] : undefined,
    refLogprobs: b.refLogprobs ? [...b.refLogprobs] : undefined,
    rewards: b.rewards,
    accuracy: b.accuracy,
    format: b.format,
    advantages: b.advantages,
    versions: b.versions,
    finished: b.finished,
    droppedGroups: b.droppedGroups ?? 0,
    surplusGroups: b.surplusGroups ?? 0,
    zeroVarianceGroups: b.zeroVarianceGroups,
    rewardFailures: b.rewardFailures.map((f) => ({ ...f })),
    cursor: b.cursor,
    ...extraFields(b),
  };
}

/** The values of the registered fields (stages of one's own) a batch carries, for the rollout log. */
function extraFields(b: RolloutBatch): Pick<RolloutStepRecord, 'extra'> {
  const src = b as unknown as Record<string, TypedRow | TypedRow[] | undefined>;
  const present = registeredBatchFields().filter((f) => f.log !== undefined && src[f.name] !== undefined);
  return present.length ? { extra: Object.fromEntries(present.map((f) => [f.name, src[f.name]!])) } : {};
}

const fmt = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

/** The figures of a step on the progress line; `workers` only when its rollouts ran on NATS workers. */
export function progressFields(m: Record<string, number>): Record<string, string> {
  return {
    reward: fmt(m['critic/score/mean']),
    acc: fmt(m['reward/accuracy/mean']),
    kl_prcp: fmt(m['actor/kl_prcp_loss'] === undefined ? undefined : -m['actor/kl_prcp_loss'], 4),
    entropy: fmt(m['actor/entropy_loss']),
    len: fmt(m['response_length/mean'], 1),
    'tok/s': fmt(m['perf/throughput'], 0),
    ...(m['dist/workers'] !== undefined ? { workers: fmt(m['dist/workers'], 0) } : {}),
  };
}

/** One step as `runTrain` returns it. */
export interface StepSummary {
  step: number;
  version: number;
  metrics: Record<string, number>;
}

/**
 * The tap that keeps each trained step: metrics.jsonl, TensorBoard, the progress line, then the step's
 * rollout and checkpoint handed to the background writer, its reward failures said (and the run stopped
 * when too many failed: reward-failures.ts), the run stopped after `trainer.max_consecutive_skipped_steps`
 * steps in a row that trained nothing; `onStep` (user hooks) is awaited last.
 */
export function recordSteps(
  run: Run<TrainConfig>,
  opts: {
    task: Task;
    checkpoints: TrainCheckpoints;
    progress: Progress;
    onStep?: (s: TrainedStep) => void | Promise<void>;
    /** the reward workers' running counts (timeouts, deaths, strays, replaced), for the debug log */
    rewardStats?: () => Record<string, number>;
  },
): OperatorFunction<TrainedStep, StepSummary> & { flush(): Promise<void> } {
  const { trainer } = run.config;
  const logRollouts = run.store !== undefined && trainer.rollout_log;
  let io: Promise<void> = Promise.resolve();
  const failures = new RewardFailureWatch(run, { maxRate: trainer.max_reward_failure_rate, window: trainer.reward_failure_window });
  let skippedInARow = 0;
  const op = concatMap(async (s: TrainedStep): Promise<StepSummary> => {
    const m = s.metrics;
    // The previous step's writes must be done (bounded memory); the wait is the stall saving causes.
    const tWait = performance.now();
    await io;
    m['timing_s/save_wait'] = (performance.now() - tWait) / 1000;
    run.logger.info({ event: 'step', step: s.step, version: s.version, metrics: m }, 'step');
    run.appendMetrics({ step: s.step, version: s.version, ...m });
    run.tensorboard?.scalars(s.step, m);
    opts.progress.update(s.step, progressFields(m));
    const record = logRollouts ? rolloutRecord(s.batch, s.trainedFrom, opts.task) : undefined;
    const snapshot = opts.checkpoints.take(s.step, m);
    io = (async () => {
      if (record) await run.writer().appendRollout(run.dir, record);
      if (snapshot) await opts.checkpoints.write(snapshot);
    })();
    io.catch(() => undefined);
    run.logger.debug(
      {
        event: 'reward_calls',
        step: s.step,
        calls: s.batch.rewards.length,
        failures: s.batch.rewardFailures.length,
        seconds: m['timing_s/reward'],
        workers: opts.rewardStats?.(),
      },
      'reward calls',
    );
    failures.note(s.step, s.batch.rewardFailures, s.batch.rewards.length);
    const limit = trainer.max_consecutive_skipped_steps;
    skippedInARow = m['actor/optimizer_steps'] === 0 && m['actor/skipped_steps'] > 0 ? skippedInARow + 1 : 0;
    if (limit > 0 && skippedInARow >= limit) throw new Error(skippedStepsError(s.step, limit, s.batch.rewardFailures, s.batch.rewards.length));
    await opts.onStep?.(s);
    return { step: s.step, version: s.version, metrics: m };
  });
  return Object.assign(op, {
    /** Waits for the writes already started (a checkpoint is published whole or not at all). */
    flush: () => io,
  });
}

/**
 * What a run does with the loss-hacking watch's alarms: every alarm goes to the log; the terminal hears the
 * first of each stretch of steps (and of each symptom); with `trainer.stop_on_loss_hacking` the run stops.
 */
export function lossHackingAlarms(run: Run<TrainConfig>, stop: () => void): { alarms: LossHackingAlarm[]; onAlarm: (alarm: LossHackingAlarm) => void } {
  const alarms: LossHackingAlarm[] = [];
  const stopping = run.config.trainer.stop_on_loss_hacking;
  const onAlarm = (alarm: LossHackingAlarm) => {
    const previous = alarms.at(-1);
    const repeat = previous !== undefined && previous.step === alarm.step - 1 && previous.symptom === alarm.symptom;
    alarms.push(alarm);
    run.logger.warn({ event: 'loss_hacking', ...alarm }, alarm.message);
    if (!repeat || stopping)
      run.say(`\nwarning: ${alarm.message}${stopping ? '; stopping (trainer.stop_on_loss_hacking)' : ' (said once while it lasts; every step in log.jsonl)'}`);
    if (stopping) stop();
  };
  return { alarms, onAlarm };
}

/** Why a run stops after `limit` steps in a row whose every optimizer step was skipped. */
function skippedStepsError(step: number, limit: number, failures: readonly RewardFailure[], calls: number): string {
  const first = failures[0];
  const cause =
    calls > 0 && failures.length >= calls
      ? `every reward call failed (step ${step}: all ${calls}; first: record ${first.id}: ${first.reason})`
      : `non-finite inputs, losses or gradients (the nonfinite_* events in log.jsonl)${first ? `; ${failures.length} of ${calls} reward calls failed too (first: record ${first.id}: ${first.reason})` : ''}`;
  return (
    `stopping: the last ${limit} steps (to step ${step}) trained nothing, every optimizer step skipped: ${cause}. ` +
    `trainer.max_consecutive_skipped_steps=${limit} allows that many in a row (0: no limit); the last checkpoint stands: fix the cause and continue with --resume`
  );
}
