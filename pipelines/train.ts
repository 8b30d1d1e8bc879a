/**
 * `runTrain(config)`: a PAPO / GRPO / DAPO run as an RxJS graph, read top to bottom below.
 *
 *   promptBatches ─> sampleGroups ─> scoreRewards ─> keepInformativeGroups ─> maskedViewLogprobs
 *        ^                ^                                  │ (more rounds)       ─> referenceLogprobs
 *        │ credit         │ weights v+1                      v                     ─> groupAdvantages
 *   CreditGate <──────── papoUpdate (sink) <───────────────────────────────────────────┘
 *                           │
 *                           └─> validation tap ─> loss-hacking watch ─> metrics.jsonl, progress, hooks
 *
 * The two backward edges are explicit: weights go from the sink to the engine through `PolicyVersions`
 * (which also says which version samples each step), credit from the sink to the gate (which the source
 * waits on). The engine (onnxruntime in a worker thread) samples and scores log-probs while the update runs
 * in the trainer (onnxruntime in worker threads, or tfjs). Around the graph: the run directory's lifecycle
 * (run-harness.ts: lock, resume, config.json, signals, writer, logs), what the run is made of
 * (train-setup.ts), the evaluations (train-eval.ts), and what is kept of each step (train-records.ts).
 */
import * as path from 'node:path';
import { concatMap, toArray, type Observable, type Subscription } from 'rxjs';
import {
  CreditGate,
  promptBatches,
  sampleGroups,
  scoreRewards,
  keepInformativeGroups,
  viewLogprobs,
  groupAdvantages,
  papoUpdate,
  watchLossHacking,
  loggedRolloutSource,
  currentPolicyLogprobs,
  shardRollouts,
  type ScoredBatch,
  type FilteredGroups,
  type MaskedViews,
  type ReferenceScored,
  type TrainedStep,
  type LossHackingAlarm,
} from '../operators/index.ts';
import { RolloutLog } from '../storage/rollout-log.ts';
import { RecordStream, type StreamCursor } from '../tasks/stream.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import type { Logger } from '../util/logger.ts';
import { createProgress, formatDuration } from '../util/progress.ts';
import type { EvalReport } from './evaluate.ts';
import { withRun, type Run, type SavedRun } from './run-harness.ts';
import {
  configChanges,
  defaultsLike,
  lossHackingOptions,
  resolveTrainConfig,
  RESUME_SAFE_KEYS,
  savedTrainConfig,
  type TrainConfig,
  withSavedKeys,
} from './train-config.ts';
import { describeChange, testSummary, trainEvals } from './train-eval.ts';
import { lossHackingAlarms, recordSteps, TrainCheckpoints, type StepSummary } from './train-records.ts';
import { trainParts, type TrainParts } from './train-setup.ts';
import { configHash } from './train-state.ts';
import { stepsNote } from './training-steps.ts';
import { loadTrainCheckpoint } from './load-checkpoint.ts';
import { ValGenerationsLog, type ValGeneration } from './val-generations.ts';

/** What the advantage stage receives: sampled online (whole or in shards) or read from a rollout log. */
type RolloutBatchBeforeAdvantage = ScoredBatch & Partial<FilteredGroups & MaskedViews & ReferenceScored>;

export interface TrainHooks {
  /** After every rollout step (its metrics and the batch as trained); awaited before the next record. */
  onStep?: (step: TrainedStep) => void | Promise<void>;
}

export interface TrainOptions {
  logger?: Logger;
  /** No terminal output (tests). */
  quiet?: boolean;
  hooks?: TrainHooks;
  /** A reward function object instead of `worker.reward.score_function` (it runs in this thread). */
  reward?: RewardFunction;
  /** Stop admitting steps when aborted; the steps in flight finish (as with SIGINT). */
  signal?: AbortSignal;
  /** Handle SIGINT / SIGTERM: first stops cleanly, second abandons the step in flight. Default false. */
  handleSignals?: boolean;
  /** Write nothing to the run directory (tests). */
  noSave?: boolean;
  /** A directory holding another run: move its files to previous-<time>/ and start over (`--force`). */
  force?: boolean;
  /**
   * `papo train --resume` without a config of its own: a directory with neither a checkpoint nor a saved
   * config.json is refused (there is no run to continue), never started anew with a default config.
   */
  resumeOnly?: boolean;
}

export type TrainOutcome = 'completed' | 'interrupted' | 'loss_hacking';

export interface TrainResult {
  config: TrainConfig;
  steps: { step: number; version: number; metrics: Record<string, number> }[];
  /** greedy test-split evaluation before and after training (trainer.test_before_and_after) */
  before?: EvalReport;
  after?: EvalReport;
  outcome: TrainOutcome;
  alarms: LossHackingAlarm[];
  seconds: number;
  runDir: string;
  /** the checkpoint step this run continued from (trainer.resume_mode=auto) */
  resumedFrom?: number;
  /** the last checkpoint written, if any */
  checkpoint?: string;
}

export async function runTrain(input: unknown, opts: TrainOptions = {}): Promise<TrainResult> {
  const t0 = performance.now();
  const { config: cfg, notes } = resolveTrainConfig(input);
  const dir = cfg.trainer.save_checkpoint_path;
  let stopMessage = (sig: NodeJS.Signals) => `stopping once start-up is done (${sig} again abandons the run)`;
  return withRun(
    {
      command: 'papo train',
      dir,
      resume: cfg.trainer.resume_mode !== 'auto' ? 'never' : opts.resumeOnly ? 'only' : 'auto',
      force: opts.force,
      noSave: opts.noSave,
      settle: (saved) => {
        const settled = saved ? withSavedKeys(cfg, input, saved.config) : cfg;
        return { config: settled, notes: [...notes, ...resumeNotes(settled, dir, saved)] };
      },
      metrics: true,
      rollouts: true,
      tensorboard: cfg.trainer.logger.includes('tensorboard'),
      logger: opts.logger,
      quiet: opts.quiet,
      signals: opts.handleSignals ? { stopping: (sig) => stopMessage(sig), abandon: true } : undefined,
      abort: opts.signal,
      startFrom: cfg.trainer.load_checkpoint_path === undefined ? undefined : () => loadTrainCheckpoint(cfg.trainer.load_checkpoint_path as string),
    },
    async (run) => {
      const parts = await trainParts(run, opts.reward);
      try {
        return await train(run, parts, opts, t0, (f) => (stopMessage = f));
      } finally {
        await parts.close();
      }
    },
  );
}

/** Refuses a resume whose config changes what the run computes; notes the changes a resume may make. */
export function resumeNotes(cfg: TrainConfig, dir: string, saved: SavedRun | undefined): string[] {
  if (!saved) return [];
  const { safe, unsafe } = configChanges(savedTrainConfig(saved.config), cfg, RESUME_SAFE_KEYS, defaultsLike(cfg));
  if (unsafe.length)
    throw new Error(
      `cannot resume ${dir}: the config differs from ${saved.from} in keys that change what the run computes:\n  ${unsafe.join('\n  ')}\n` +
        `keys a resume may change: ${RESUME_SAFE_KEYS.join(', ')}; or start over with --force (its files are moved to previous-<time>/)`,
    );
  // The run directory and the resume switch itself are how a resume is asked for, not changes to report.
  const shown = safe.filter((c) => !c.startsWith('trainer.resume_mode:') && !c.startsWith('trainer.save_checkpoint_path:'));
  if (!saved.checkpoint || !shown.length) return [];
  const notes = [`resuming with changed settings: ${shown.join('; ')}`];
  if (shown.some((c) => c.startsWith('worker.rollout.threads:')))
    notes.push(
      "worker.rollout.threads changed: the engine's onnxruntime sums, so the sampled log-probs, differ from the uninterrupted run's in their last bits (keep it to resume bit for bit)",
    );
  return notes;
}

async function train(
  run: Run<TrainConfig>,
  parts: TrainParts,
  opts: TrainOptions,
  t0: number,
  stopMessage: (f: (sig: NodeJS.Signals) => string) => void,
): Promise<TrainResult> {
  const cfg = run.config;
  const { data, algorithm: objective, trainer } = cfg;
  const { actor, rollout } = cfg.worker;
  const { task, reward, engine, versions, resumed } = parts;
  const resumedStep = run.resumedStep;
  const firstStep = (resumedStep ?? 0) + 1;
  run.logger.info(
    { event: 'train_start', backend: parts.backend, trainer: actor.engine, config: cfg, policy: parts.policy, reward: reward.name, resumed_from: resumedStep },
    'train start',
  );
  // validation generations (trainer.val_generations_to_log): rewound with metrics.jsonl on resume
  const generations = run.store ? new ValGenerationsLog(run.dir, run.tensorboard) : undefined;
  if (generations && (resumedStep !== undefined || run.restarted)) await generations.rewind(resumedStep ?? 0);
  const onGenerations = (step: number, g: ValGeneration[]) => generations?.write(step, g);
  const evals = trainEvals(engine, task, reward, cfg, { say: run.say, logger: run.logger, quiet: opts.quiet, onGenerations });
  const stepsLine = stepsNote(trainer, parts.maxSteps, task.size('train'), data.rollout_batch_size);
  if (stepsLine && !resumed) {
    run.say(stepsLine);
    run.logger.info({ event: 'training_steps', steps: parts.maxSteps, message: stepsLine }, stepsLine);
  }
  if (resumedStep !== undefined && resumedStep >= parts.maxSteps)
    run.say(`${run.dir} is already complete (${resumedStep} of ${parts.maxSteps} steps); raise trainer.max_steps to train it longer`);
  else if (resumedStep !== undefined)
    run.say(
      `${run.startedFrom ? `starting ${run.dir} from ${run.startedFrom}` : `resuming ${run.dir} from checkpoint`} step ${resumedStep} (policy version ${versions.current}); steps ${firstStep}..${parts.maxSteps} to go`,
    );
  const before = trainer.test_before_and_after && !resumed ? await evals.test('before') : undefined;
  const testBefore = before ? testSummary(before) : (resumed?.test_before ?? null);
  if (trainer.val_before_train && !resumed) run.logger.info({ event: 'val_before_train', metrics: await evals.val(0) }, 'validation before training');

  // The source: prompts from the data stream, or (`--from-rollouts RUN`) the steps of another run's rollout log.
  const offline = data.rollouts_path ? new RolloutLog(data.rollouts_path) : undefined;
  const offlineSteps = offline ? await offline.steps() : [];
  if (offline && offlineSteps.length === 0)
    throw new Error(`data.rollouts_path: ${data.rollouts_path} has no logged rollout steps (expected <run>/rollouts/step_*)`);
  const maxSteps = offline ? Math.min(parts.maxSteps, offlineSteps.length) : parts.maxSteps;
  const gate = new CreditGate({
    maxInflight: trainer.max_inflight_batches,
    maxStaleness: versions.maxStaleness,
    maxSteps,
    firstStep,
    sealBeforeNext: objective.dynamic_sampling && !offline,
    logger: run.logger,
  });
  const stream = resumed ? RecordStream.resume(task, resumed.cursor) : RecordStream.open(task, { split: 'train', seed: data.seed, shuffle: data.shuffle });

  // How the run ends: all steps done, a signal or abort (the steps in flight finish), or loss hacking.
  let outcome: TrainOutcome = 'completed';
  let trained = false;
  const stop = (why: TrainOutcome) => {
    if (gate.stopped || trained) return;
    outcome = why;
    gate.stop();
  };
  run.onStop(() => stop('interrupted'));
  stopMessage((sig) =>
    trained
      ? 'training is done and its checkpoint saved; the held-out test after it goes on'
      : `finishing the ${gate.inflight} step(s) in flight, then saving a checkpoint and stopping (${sig} again abandons them)`,
  );
  let subscription: Subscription | undefined;
  run.onAbandon(() => subscription?.unsubscribe());
  const { alarms, onAlarm } = lossHackingAlarms(run, () => stop('loss_hacking'));

  const checkpoints = new TrainCheckpoints(run, parts.trainer, versions, parts.policy, {
    config: cfg,
    config_hash: configHash(cfg),
    reference: parts.reference,
    test_before: testBefore,
  });
  let last: { step: number; cursor: StreamCursor } | undefined;
  const progress = createProgress('train', maxSteps, { quiet: opts.quiet || !trainer.logger.includes('console'), every: 1, startAt: firstStep - 1 });
  const poolStats = (reward as { stats?: Record<string, number> }).stats;
  const keep = recordSteps(run, { task, checkpoints, progress, onStep: opts.hooks?.onStep, rewardStats: poolStats && (() => ({ ...poolStats })) });

  // The graph.
  const dynamicSampling = keepInformativeGroups(
    {
      enabled: objective.dynamic_sampling,
      minAcc: objective.dynamic_sampling_min_acc,
      maxAcc: objective.dynamic_sampling_max_acc,
      maxTries: objective.dynamic_sampling_max_tries,
      batchSize: data.rollout_batch_size,
      logger: run.logger,
    },
    (step) => gate.requestRound(step),
    (step) => gate.seal(step),
  );
  const { segment } = parts;
  const prompts$ = () => promptBatches(stream, { batchSize: data.rollout_batch_size, grants: gate.grants$, seed: data.seed });
  const logprobStages = (batches: Observable<ScoredBatch & Partial<FilteredGroups>>): Observable<RolloutBatchBeforeAdvantage> =>
    batches.pipe(viewLogprobs(engine, { mask: segment.mask, reference: segment.reference, ...segment.logprobs }));
  const rollouts$: Observable<RolloutBatchBeforeAdvantage> = offline
    ? logprobStages(loggedRolloutSource(offline, task, offlineSteps, gate.grants$).pipe(currentPolicyLogprobs(engine)))
    : parts.shards
      ? // worker.rollout.shard_size or backend nats: the rollout segment per shard (here, or on rollout workers), then the filter
        prompts$().pipe(shardRollouts(parts.shards, { shardSize: rollout.shard_size }), dynamicSampling)
      : logprobStages(
          prompts$().pipe(sampleGroups(engine, { ...segment.sample, versionOf: versions.versionOf }), scoreRewards(reward, segment.reward), dynamicSampling),
        );
  const graph = rollouts$.pipe(
    groupAdvantages({ estimator: objective.adv_estimator, eps: objective.adv_eps }),
    papoUpdate({
      trainer: parts.trainer,
      versions,
      objective,
      globalBatchSize: actor.global_batch_size,
      microBatchSize: actor.micro_batch_size_per_device_for_update,
      ppoEpochs: actor.ppo_epochs,
      seed: data.seed,
      shuffle: actor.shuffle,
      logger: run.logger,
      onApplied: async ({ step, batch }) => {
        last = { step, cursor: batch.cursor };
        await checkpoints.applied(step, batch.cursor);
      },
      onStepDone: (step) => gate.complete(step),
    }),
    concatMap(async (s: TrainedStep) => {
      if (trainer.val_freq > 0 && s.step % trainer.val_freq === 0) Object.assign(s.metrics, await evals.val(s.step));
      if (parts.distMetrics) Object.assign(s.metrics, parts.distMetrics(s.step));
      return s;
    }),
    watchLossHacking(
      lossHackingOptions(trainer),
      onAlarm,
      run.history.map((r) => ({ step: r.step, metrics: r })),
    ),
    keep,
    toArray(),
  );

  // Run it; whatever happened, the writes already started finish (a checkpoint is published whole or not at all).
  let steps: StepSummary[];
  try {
    steps = await Promise.race([
      new Promise<StepSummary[]>((resolve, reject) => (subscription = graph.subscribe({ next: resolve, error: reject }))),
      run.abandoned,
    ]);
  } finally {
    progress.stop();
    subscription?.unsubscribe();
    await keep.flush().catch((err: Error) => run.logger.error({ event: 'write_failed', message: err.message }, err.message));
  }
  await keep.flush();
  trained = true;
  // The final checkpoint: the state after the last trained step (nothing is in flight any more).
  if (last) await checkpoints.final(last.step, last.cursor, steps.at(-1)?.metrics ?? {});
  if (checkpoints.last) run.say(`checkpoint of step ${last?.step} (policy version ${versions.current}) in ${checkpoints.last.dir}`);
  // A second signal during the test after training ends the command; the trained run stands.
  const abandonTest = run.abandoned.catch(() => {
    throw new Error(`the held-out test after training was abandoned; training is complete (${run.dir}): papo eval ${run.dir} tests it`);
  });
  abandonTest.catch(() => undefined);
  const after = trainer.test_before_and_after ? await Promise.race([evals.test('after'), abandonTest]) : undefined;
  const seconds = (performance.now() - t0) / 1000;
  if (testBefore && after) for (const line of describeChange(testBefore, after)) run.say(line);
  run.say(
    `train: ${outcome}, ${steps.length} ${steps.length === 1 ? 'step' : 'steps'} in ${formatDuration(seconds)}${run.store ? `; metrics in ${path.join(run.dir, 'metrics.jsonl')}` : ''}`,
  );
  if ((outcome as TrainOutcome) === 'interrupted' && checkpoints.last) run.say(`continue with: papo train --resume ${run.dir}`);
  run.logger.info({ event: 'train_end', outcome, steps: steps.length, seconds, checkpoint: checkpoints.last?.dir }, 'train end');
  return { config: cfg, steps, before, after, outcome, alarms, seconds, runDir: run.dir, resumedFrom: resumedStep, checkpoint: checkpoints.last?.dir };
}
