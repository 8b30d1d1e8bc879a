/**
 * `runTrain(config)`: a PAPO / GRPO / DAPO run as an RxJS graph.
 *
 *   promptBatches ─> sampleGroups ─> scoreRewards ─> keepInformativeGroups ─> maskedViewLogprobs
 *        ^                ^                                  │ (more rounds)       ─> referenceLogprobs
 *        │ credit         │ weights v+1                      v                     ─> groupAdvantages
 *   CreditGate <──────── papoUpdate (sink) <───────────────────────────────────────────┘
 *                           │
 *                           └─> validation tap ─> loss-hacking watch ─> metrics.jsonl, progress, hooks
 *
 * The two backward edges are explicit: weights go from the sink to the engine (versioned, the sampler
 * reads them), credit from the sink to the gate (which the source waits on). The engine (onnxruntime in
 * a worker thread) samples and scores log-probs while the main thread runs the tfjs update.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { concatMap, identity, toArray, type Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { initTf } from '../util/tf-backend.ts';
import { needsMaskedLogprobs } from '../algorithms/config.ts';
import { createTrainer } from '../models/trainer/create.ts';
import type { AdamWConfigInput } from '../models/adamw.ts';
import { PolicyEngine } from '../models/engine/engine.ts';
import type { Params } from '../models/params.ts';
import { loadPolicyWeights, paramsFingerprint } from '../storage/policy-weights.ts';
import { CheckpointStore, type Checkpoint } from '../storage/checkpoints.ts';
import { BackgroundWriter } from '../storage/background-writer.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { acquireRunLock } from '../storage/run-lock.ts';
import { RolloutLog, type RolloutStepRecord } from '../storage/rollout-log.ts';
import { TensorBoardWriter } from '../storage/tensorboard.ts';
import { createTask } from '../tasks/registry.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { Task } from '../tasks/types.ts';
import type { AccuracyReport } from '../tasks/accuracy-report.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import { inThreadScorer, type RewardFailure } from '../tasks/rewards/runner.ts';
import { createLogger, type Logger } from '../util/logger.ts';
import { openAppendNoFollow } from '../util/append-file.ts';
import { createProgress, formatDuration } from '../util/progress.ts';
import {
  CreditGate,
  promptBatches,
  sampleGroups,
  scoreRewards,
  keepInformativeGroups,
  maskedViewLogprobs,
  referenceLogprobs,
  groupAdvantages,
  papoUpdate,
  watchLossHacking,
  loggedRolloutSource,
  currentPolicyLogprobs,
  type ScoredBatch,
  type FilteredGroups,
  type TrainedStep,
  type RolloutEngine,
  type LossHackingAlarm,
  type RolloutBatch,
  type PromptBatch,
} from '../operators/index.ts';
import type { StreamCursor } from '../tasks/stream.ts';

/** What the masked-view stage receives, sampled online or read from a rollout log. */
type RolloutBatchBeforeMask = ScoredBatch & Partial<FilteredGroups>;
import { evaluate, type EvalReport } from './evaluate.ts';
import { openReward } from './reward-function.ts';
import { configChanges, defaultsLike, flattenConfig, trainConfig, RESUME_SAFE_KEYS, type TrainConfig } from './train-config.ts';
import { prepareFreshRunDir, refuseLinkedRunFiles, truncateMetrics, type MetricsLine } from './run-dir.ts';

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

type TestAccuracies = { overall: number | null; vision_dependent: number | null; general: number | null };

const testAccuracies = (a: AccuracyReport): TestAccuracies => ({
  overall: a.overall.accuracy,
  vision_dependent: a.visionDependent.accuracy,
  general: a.general.accuracy,
});

/** The JSON part of a training checkpoint: everything but the arrays. */
interface TrainState {
  /** policy version after the checkpoint's step */
  version: number;
  /** data stream position after the last batch the update consumed */
  cursor: StreamCursor;
  /** [step, version after it] for the last max_staleness + 1 steps: which version samples the next steps */
  versions: [number, number][];
  config: TrainConfig;
  /** SHA-256 of the config's keys that a resume may not change: equal hashes, compatible runs */
  config_hash: string;
  /** identifies the starting (and reference) weights */
  reference: { model_path: string; fingerprint: string };
  /** greedy test accuracy before training (and avg@k with trainer.test_k), for the final comparison */
  test_before: (TestAccuracies & { sampled?: TestAccuracies & { k: number } }) | null;
  /** the step's metrics (best-checkpoint retention) */
  metrics: Record<string, number>;
}

/** A checkpoint captured at the end of a step, written once the step's records are out. */
interface PendingCheckpoint {
  step: number;
  params: Params;
  optimizer: Checkpoint['optimizer'];
  samplers: Checkpoint['samplers'];
  state: TrainState;
}

/** What the rollout log stores of a trained batch. */
function rolloutRecord(b: RolloutBatch, version: number, task: Task): RolloutStepRecord {
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
  };
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

/** SHA-256 over the config's keys that change what a run computes (those a resume may change left out). */
export function configHash(cfg: TrainConfig): string {
  const kept = [...flattenConfig(cfg).entries()].filter(([k]) => !RESUME_SAFE_KEYS.includes(k)).sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(kept)).digest('hex');
}

/** The actor's AdamW as the run config declares it. */
export function actorOptimizer(actor: TrainConfig['worker']['actor']): AdamWConfigInput {
  return {
    lr: actor.optim.lr,
    beta1: actor.optim.betas[0],
    beta2: actor.optim.betas[1],
    weightDecay: actor.optim.weight_decay,
    maxGradNorm: actor.max_grad_norm,
    schedule: actor.optim.lr_warmup_steps > 0 ? { kind: 'linear-warmup', warmupSteps: actor.optim.lr_warmup_steps } : { kind: 'constant' },
  };
}

const fmt = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

export async function runTrain(input: unknown, opts: TrainOptions = {}): Promise<TrainResult> {
  const cfg = trainConfig(input);
  if (opts.noSave) return train(cfg, opts);
  // One writer per run directory, from before anything is swept or written until the end (storage/run-lock.ts).
  const lock = acquireRunLock(cfg.trainer.save_checkpoint_path, { command: 'papo train' });
  try {
    return await train(cfg, opts);
  } finally {
    lock.release();
  }
}

async function train(cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const { data, algorithm: objective, trainer } = cfg;
  const { actor, rollout } = cfg.worker;
  const runDir = trainer.save_checkpoint_path;
  const say = (line: string) => {
    if (!opts.quiet) process.stderr.write(`${line}\n`);
  };

  // The run directory: a new run, or the continuation of the one there.
  const store = opts.noSave ? undefined : new CheckpointStore(runDir);
  const logRollouts = !opts.noSave && trainer.rollout_log;
  const metricsFile = opts.noSave ? undefined : path.join(runDir, 'metrics.jsonl');
  let resumed: Checkpoint | undefined;
  let resumedState: TrainState | undefined;
  let history: MetricsLine[] = [];
  const notes: string[] = [];
  let restartInPlace = false;
  if (!opts.noSave) refuseLinkedRunFiles(runDir);
  if (store && trainer.resume_mode === 'auto') {
    const swept = await store.sweep();
    if (swept.length) notes.push(`removed ${swept.length} unfinished checkpoint write(s): ${swept.join(', ')}`);
    const name = await store.latest();
    if (name) {
      resumed = await store.load(name);
      resumedState = resumed.state as unknown as TrainState;
      const { safe, unsafe } = configChanges(resumedState.config, cfg, RESUME_SAFE_KEYS, defaultsLike(cfg));
      if (unsafe.length) {
        throw new Error(
          `cannot resume ${runDir}: the config differs from its checkpoint's (${name}) in keys that change what the run computes:\n  ${unsafe.join('\n  ')}\n` +
            `keys a resume may change: ${RESUME_SAFE_KEYS.join(', ')}`,
        );
      }
      // The run directory and the resume switch itself are how a resume is asked for, not changes to report.
      const shown = safe.filter((c) => !c.startsWith('trainer.resume_mode:') && !c.startsWith('trainer.save_checkpoint_path:'));
      if (shown.length) notes.push(`resuming with changed settings: ${shown.join('; ')}`);
      history = await truncateMetrics(metricsFile!, resumed.step);
      await new RolloutLog(runDir).truncateAfter(resumed.step);
    } else {
      // Killed before its first checkpoint: the run starts again from step 0, in place, if it is this config's run.
      const savedConfig = path.join(runDir, 'config.json');
      if (fs.existsSync(savedConfig)) {
        const { unsafe } = configChanges(JSON.parse(fs.readFileSync(savedConfig, 'utf8')), cfg, RESUME_SAFE_KEYS, defaultsLike(cfg));
        if (unsafe.length)
          throw new Error(
            `cannot resume ${runDir}: it has no checkpoint, and its config.json differs in:\n  ${unsafe.join('\n  ')}\nstart over with --force (its files are moved to previous-<time>/)`,
          );
        await truncateMetrics(metricsFile!, 0);
        await new RolloutLog(runDir).truncateAfter(0);
        restartInPlace = true;
        notes.push(`no complete checkpoint in ${runDir}: starting its run again from step 0`);
      } else if (opts.resumeOnly) {
        throw new Error(
          `cannot resume ${runDir}: it holds no checkpoint and no config.json, so there is no run to continue (a start stopped before it saved its config leaves this); ` +
            `start the run anew with its config: the same command without --resume (with --config FILE, or its overrides), trainer.save_checkpoint_path=${runDir}`,
        );
      } else notes.push(`no run in ${runDir}: starting a new run`);
    }
  }
  if (!opts.noSave && !resumed && !restartInPlace) {
    const aside = prepareFreshRunDir(runDir, opts.force ?? false);
    if (aside) notes.push(`moved the earlier run's files to ${aside}`);
  }
  // The config first: a run stopped at any later instant continues with --resume (its config.json says what it is).
  if (!opts.noSave) await writeFileAtomic(path.join(runDir, 'config.json'), JSON.stringify(cfg, null, 2));
  const logger = opts.logger ?? createLogger(opts.noSave ? undefined : path.join(runDir, 'log.jsonl'));
  for (const n of notes) {
    say(n);
    logger.info({ event: 'run_dir', message: n }, n);
  }
  // Event files are rewound with metrics.jsonl on resume, whether or not this launch writes them.
  const tensorboard = opts.noSave
    ? undefined
    : TensorBoardWriter.open(path.join(runDir, 'tensorboard'), {
        rewindTo: resumed?.step ?? (restartInPlace ? 0 : undefined),
        onNote: (n) => logger.info({ event: 'run_dir', message: n }, n),
      });

  const backend = await initTf();
  const start = await loadPolicyWeights(actor.model.model_path);
  // a run or checkpoint directory resolves to one checkpoint's weights: say which
  if (start.dir !== path.resolve(actor.model.model_path)) say(`train: starting from the weights in ${start.dir}`);
  const policyCfg = start.config;
  const reference = { model_path: actor.model.model_path, fingerprint: paramsFingerprint(start.params) };
  if (resumedState && resumedState.reference.fingerprint !== reference.fingerprint) {
    throw new Error(
      `cannot resume ${runDir}: the starting weights at ${actor.model.model_path} changed since the run began (fingerprint ${resumedState.reference.fingerprint}, now ${reference.fingerprint}); they are the run's reference policy`,
    );
  }
  const images = { allowOutsideManifestDir: data.allow_outside_manifest_dir, maxImageBytes: data.max_image_bytes, maxImagePixels: data.max_image_pixels };
  const task: Task = createTask({
    task: data.task,
    seed: data.task_seed,
    families: data.families,
    manifest: data.manifest,
    ...(data.task === 'manifest' ? images : {}),
  });
  if (task.imageHeight !== policyCfg.imageHeight || task.imageWidth !== policyCfg.imageWidth) {
    throw new Error(
      `task ${task.name} makes ${task.imageHeight}x${task.imageWidth} images but the policy at ${actor.model.model_path} expects ${policyCfg.imageHeight}x${policyCfg.imageWidth}`,
    );
  }
  const maxResponseLength = data.max_response_length ?? policyCfg.maxResponseLen;
  if (maxResponseLength > policyCfg.maxResponseLen) {
    throw new Error(`data.max_response_length ${maxResponseLength} exceeds the policy's maxResponseLen ${policyCfg.maxResponseLen}`);
  }
  // A reward of the user's runs in the reward workers (tasks/rewards/pool.ts); the built-in one here.
  let strays = 0;
  const onStray = (line: string) => {
    strays++;
    logger.warn({ event: 'reward_stray', message: line }, line);
    if (strays <= 3) say(`\nwarning: ${line}${strays === 3 ? ' (further ones in log.jsonl only)' : ''}`);
  };
  const { num_workers: workers, max_memory_mb: maxMemoryMb } = cfg.worker.reward;
  const reward = opts.reward ? inThreadScorer(opts.reward) : await openReward(cfg.worker.reward.score_function, { workers, maxMemoryMb, onStray });
  const needMasked = needsMaskedLogprobs(objective); // PAPO's terms, or a token weighting that reads the masked view (VPPO)
  const needRef = objective.kl_coef > 0;
  const S = trainer.max_staleness;
  const firstStep = (resumed?.step ?? 0) + 1;
  logger.info(
    { event: 'train_start', backend, trainer: actor.engine, config: cfg, policy: policyCfg, reward: reward.name, resumed_from: resumed?.step },
    'train start',
  );

  let actorTrainer: Awaited<ReturnType<typeof createTrainer>>;
  let engine: PolicyEngine;
  try {
    actorTrainer = await createTrainer({
      engine: actor.engine,
      config: policyCfg,
      params: resumed ? resumed.policy.params : start.params,
      optimizer: actorOptimizer(actor),
    });
    if (resumed) await actorTrainer.importOptimizerState(resumed.optimizer);
    engine = await PolicyEngine.create(policyCfg, { intraOpThreads: rollout.threads, retainVersions: S + 2 });
  } catch (err) {
    await reward.close();
    throw err;
  }
  const signalHandlers: [NodeJS.Signals, () => void][] = [];
  let subscription: Subscription | undefined;
  let closeWriter: () => Promise<void> | undefined = () => undefined;
  let metricsFd: number | undefined;
  try {
    // The engine holds the current weights and the older versions the next steps still sample with.
    const initialVersion = resumedState?.version ?? 0;
    for (const s of [...(resumed?.samplers ?? [])].sort((a, b) => a.version - b.version))
      if (s.version !== initialVersion) await engine.setWeights(s.params, s.version);
    await engine.setWeights(resumed ? resumed.policy.params : start.params, initialVersion);
    if (needRef) await engine.setReferenceWeights(start.params);

    const testEval = async (label: string) => {
      // avg@k samples with a seed of their own, the same before and after: only the weights differ
      const r = await evaluate(engine, task, {
        split: 'test',
        k: trainer.test_k,
        temperature: trainer.test_temperature,
        seed: 0,
        limit: trainer.test_limit || undefined,
        reward,
        quiet: opts.quiet,
        errors: trainer.test_errors,
      });
      say(
        `${label}: held-out test greedy accuracy ${pct(r.greedy.accuracy.overall.accuracy)} overall, ${pct(r.greedy.accuracy.visionDependent.accuracy)} vision-dependent, ${pct(r.greedy.accuracy.general.accuracy)} general (${r.records} prompts)`,
      );
      if (r.errors) {
        const e = r.errors.visionDependent;
        const classes = Object.entries(e.counts).filter(([, n]) => n > 0);
        say(
          `${label}: greedy failures on vision-dependent questions: ${classes.map(([c, n]) => `${c} ${n} (${pct(e.shares[c as keyof typeof e.shares])})`).join(', ') || 'none'}`,
        );
      }
      if (r.sampled)
        say(
          `${label}: held-out test avg@${r.sampled.k} (temperature ${r.sampled.temperature}) ${pct(r.sampled.accuracy.overall.accuracy)} overall, ${pct(r.sampled.accuracy.visionDependent.accuracy)} vision-dependent, ${pct(r.sampled.accuracy.general.accuracy)} general`,
        );
      logger.info(
        {
          event: `test_${label}`,
          accuracy: r.greedy.accuracy,
          formatRate: r.greedy.formatRate,
          ...(r.sampled ? { sampled: { k: r.sampled.k, temperature: r.sampled.temperature, accuracy: r.sampled.accuracy } } : {}),
          ...(r.errors
            ? { errors: { overall: r.errors.overall.counts, vision_dependent: r.errors.visionDependent.counts, general: r.errors.general.counts } }
            : {}),
        },
        `test ${label}`,
      );
      return r;
    };
    const valMetrics = async (): Promise<Record<string, number>> => {
      const r = await evaluate(engine, task, { split: data.val_split, k: 0, limit: trainer.val_limit || undefined, reward, quiet: true });
      const m: Record<string, number> = {};
      const a = r.greedy.accuracy;
      if (a.overall.accuracy !== null) m['val-core/accuracy/overall'] = a.overall.accuracy;
      if (a.visionDependent.accuracy !== null) m['val-core/accuracy/vision_dependent'] = a.visionDependent.accuracy;
      if (a.general.accuracy !== null) m['val-core/accuracy/general'] = a.general.accuracy;
      m['val-core/format'] = r.greedy.formatRate;
      m['val-core/response_length'] = r.greedy.meanLength;
      return m;
    };

    if (resumed && resumed.step >= trainer.max_steps)
      say(`${runDir} is already complete (${resumed.step} of ${trainer.max_steps} steps); raise trainer.max_steps to train it longer`);
    else if (resumed)
      say(`resuming ${runDir} from checkpoint step ${resumed.step} (policy version ${initialVersion}); steps ${firstStep}..${trainer.max_steps} to go`);
    const before = trainer.test_before_and_after && !resumed ? await testEval('before') : undefined;
    const testBefore: TrainState['test_before'] = before
      ? {
          ...testAccuracies(before.greedy.accuracy),
          ...(before.sampled ? { sampled: { k: before.sampled.k, ...testAccuracies(before.sampled.accuracy) } } : {}),
        }
      : (resumedState?.test_before ?? null);
    if (trainer.val_before_train && !resumed) logger.info({ event: 'val_before_train', metrics: await valMetrics() }, 'validation before training');

    // Offline (`--from-rollouts RUN`): the steps of another run's rollout log instead of sampling.
    const offline = data.rollouts_path ? new RolloutLog(data.rollouts_path) : undefined;
    const offlineSteps = offline ? await offline.steps() : [];
    if (offline && offlineSteps.length === 0)
      throw new Error(`data.rollouts_path: ${data.rollouts_path} has no logged rollout steps (expected <run>/rollouts/step_*)`);
    const maxSteps = offline ? Math.min(trainer.max_steps, offlineSteps.length) : trainer.max_steps;
    const gate = new CreditGate({
      maxInflight: trainer.max_inflight_batches,
      maxStaleness: S,
      maxSteps,
      firstStep,
      sealBeforeNext: objective.dynamic_sampling && !offline,
    });
    const stream = offline
      ? undefined
      : resumedState
        ? RecordStream.resume(task, resumedState.cursor)
        : RecordStream.open(task, { split: 'train', seed: data.seed, shuffle: data.shuffle });
    const alarms: LossHackingAlarm[] = [];
    let outcome: TrainOutcome = 'completed';
    const stop = (why: TrainOutcome) => {
      if (gate.stopped) return;
      outcome = why;
      gate.stop();
    };
    // An abort that came before this point (during start-up or the test before training) fires no event.
    if (opts.signal?.aborted) stop('interrupted');
    else opts.signal?.addEventListener('abort', () => stop('interrupted'), { once: true });
    let abandon: ((err: Error) => void) | undefined;
    const abandoned = new Promise<never>((_, reject) => (abandon = reject));
    abandoned.catch(() => undefined);
    if (opts.handleSignals) {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        const h = () => {
          if (!gate.stopped) {
            say(`\n${sig}: finishing the ${gate.inflight} step(s) in flight, then saving a checkpoint and stopping (${sig} again abandons them)`);
            logger.warn({ event: 'signal', signal: sig, inflight: gate.inflight }, 'stopping after the steps in flight');
            stop('interrupted');
          } else {
            say(`\n${sig} again: abandoning the steps in flight; the last checkpoint stands`);
            logger.warn({ event: 'signal_abandon', signal: sig }, 'abandoning the steps in flight');
            subscription?.unsubscribe();
            abandon?.(new Error(`interrupted by ${sig}: abandoned the steps in flight; resume from the last checkpoint with --resume`));
          }
        };
        process.on(sig, h);
        signalHandlers.push([sig, h]);
      }
    }

    // Which policy version samples step k: the one after step k - S - 1, whatever the timing of the updates,
    // so a run (and its resumption) samples the same responses. Admission guarantees that step is done.
    const versionAfter = new Map<number, number>(resumedState?.versions ?? []);
    const versionOf = (b: PromptBatch) => {
      const k = b.step - S - 1;
      if (k < 1) return 0;
      const v = versionAfter.get(k);
      if (v === undefined) throw new Error(`internal: step ${b.step} is admitted before step ${k} was trained`);
      return v;
    };
    // Weights of the versions the next S steps sample with (a checkpoint holds them), version 0 first.
    const samplerParams = new Map<number, Params>(
      S > 0 && store
        ? [
            [0, start.params],
            ...(resumed?.samplers ?? []).map((s) => [s.version, s.params] as [number, Params]),
            ...(resumed ? [[initialVersion, resumed.policy.params] as [number, Params]] : []),
          ]
        : [],
    );
    const pending = new Map<number, PendingCheckpoint>();
    let last: { step: number; version: number; cursor: StreamCursor } | undefined;
    const trainedFrom = new Map<number, number>();
    const saveDue = (step: number) => store !== undefined && trainer.save_freq > 0 && step % trainer.save_freq === 0;

    const capture = async (step: number, version: number, cursor: StreamCursor): Promise<PendingCheckpoint> => {
      const needed = new Set<number>();
      for (let k = step - S; k < step; k++) needed.add(k < 1 ? 0 : versionAfter.get(k)!);
      needed.delete(version);
      return {
        step,
        params: await actorTrainer.getParams(),
        optimizer: await actorTrainer.exportOptimizerState(),
        samplers: [...needed].map((v) => {
          const params = samplerParams.get(v);
          if (!params) throw new Error(`internal: weights of policy version ${v} were not kept for the checkpoint of step ${step}`);
          return { version: v, params };
        }),
        state: {
          version,
          cursor,
          versions: [...versionAfter.entries()].filter(([k]) => k > step - S - 1 && k <= step),
          config: cfg,
          config_hash: configHash(cfg),
          reference,
          test_before: testBefore,
          metrics: {},
        },
      };
    };
    const onApplied = async ({ step, version, batch }: { step: number; version: number; batch: RolloutBatch }) => {
      trainedFrom.set(step, last?.version ?? initialVersion);
      versionAfter.set(step, version);
      for (const k of versionAfter.keys()) if (k < step - S) versionAfter.delete(k);
      last = { step, version, cursor: batch.cursor };
      if (S > 0 && store) {
        samplerParams.set(version, await actorTrainer.getParams());
        const live = new Set([...versionAfter.values()]);
        for (const v of samplerParams.keys()) if (!live.has(v) && v !== 0) samplerParams.delete(v);
        if (step > S) samplerParams.delete(0);
      }
      if (saveDue(step)) pending.set(step, await capture(step, version, batch.cursor));
    };

    // Writes of a step (rollout log, checkpoint) run in a worker thread while the next step computes; the
    // rollout of a step is always written before its checkpoint, and at most one step's writes are pending.
    const writer = store ? new BackgroundWriter() : undefined;
    closeWriter = () => writer?.close();
    let io: Promise<void> = Promise.resolve();
    let lastCheckpoint: string | undefined;
    let lastCheckpointStep: number | undefined;
    const writeCheckpoint = async (p: PendingCheckpoint) => {
      const checkpoint: Checkpoint = {
        kind: 'train',
        step: p.step,
        policy: { config: policyCfg, params: p.params },
        optimizer: p.optimizer,
        samplers: p.samplers,
        state: p.state as unknown as Record<string, unknown>,
      };
      const metric = trainer.save_best_metric;
      const saved = await writer!.saveCheckpoint(runDir, checkpoint, {
        keepLast: trainer.save_limit,
        metric,
        higherIsBetter: trainer.save_best_mode === 'max',
      });
      lastCheckpoint = saved.dir;
      lastCheckpointStep = p.step;
      logger.info(
        { event: 'checkpoint', step: p.step, dir: saved.dir, bytes: saved.bytes, seconds: saved.seconds, removed: saved.removed },
        'checkpoint saved',
      );
    };

    // Reward failures: every step's in log.jsonl; the terminal hears the first step with each kind.
    const kindsSaid = new Set<string>();
    const noteRewardFailures = (step: number, failures: readonly RewardFailure[], calls: number) => {
      if (failures.length === 0) return;
      const kinds: Record<string, number> = {};
      for (const f of failures) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
      logger.warn({ event: 'reward_failures', step, calls, failures: failures.length, kinds, first: failures[0] }, 'reward failures');
      for (const [kind, n] of Object.entries(kinds)) {
        if (kindsSaid.has(kind)) continue;
        kindsSaid.add(kind);
        const f = failures.find((x) => x.kind === kind)!;
        say(
          `\nreward ${f.reward}: step ${step}: ${n} of ${calls} calls failed (${kind}; first: record ${f.id}: ${f.reason}); each scores 0 and counts in reward/failures (every step's in log.jsonl)`,
        );
      }
    };
    let skippedInARow = 0;

    const progress = createProgress('train', maxSteps, { quiet: opts.quiet || !trainer.logger.includes('console'), every: 1, startAt: firstStep - 1 });
    const when = <A, B>(on: boolean, op: OperatorFunction<A, B>): OperatorFunction<A, B> => (on ? op : (identity as unknown as OperatorFunction<A, B>));

    const sampled$: Observable<RolloutBatchBeforeMask> = offline
      ? loggedRolloutSource(offline, task, offlineSteps, gate.grants$).pipe(currentPolicyLogprobs(engine))
      : promptBatches(stream!, { batchSize: data.rollout_batch_size, grants: gate.grants$, seed: data.seed }).pipe(
          sampleGroups(engine, {
            n: rollout.n,
            temperature: rollout.temperature,
            topP: rollout.top_p,
            topK: Math.max(0, rollout.top_k),
            maxNewTokens: maxResponseLength,
            versionOf,
          }),
          scoreRewards(reward, { timeoutMs: cfg.worker.reward.timeout_ms, concurrency: cfg.worker.reward.concurrency }),
          keepInformativeGroups(
            {
              enabled: objective.dynamic_sampling,
              minAcc: objective.dynamic_sampling_min_acc,
              maxAcc: objective.dynamic_sampling_max_acc,
              maxTries: objective.dynamic_sampling_max_tries,
              batchSize: data.rollout_batch_size,
            },
            (step) => gate.requestRound(step),
            (step) => gate.seal(step),
          ),
        );
    const trained$ = sampled$.pipe(
      when(needMasked, maskedViewLogprobs(engine, { type: objective.mask_type, ratio: objective.mask_ratio, patchSize: objective.mask_patch_size })),
      when(needRef, referenceLogprobs(engine)),
      groupAdvantages({ estimator: objective.adv_estimator, eps: objective.adv_eps }),
      papoUpdate({
        trainer: actorTrainer,
        engine: engine as RolloutEngine,
        objective,
        globalBatchSize: actor.global_batch_size,
        microBatchSize: actor.micro_batch_size_per_device_for_update,
        ppoEpochs: actor.ppo_epochs,
        maxStaleness: S,
        initialVersion,
        seed: data.seed,
        shuffle: actor.shuffle,
        logger,
        onApplied,
        onStepDone: (step) => gate.complete(step),
      }),
    );
    // Taps on the trained steps: validation, the loss-hacking watch, metrics and progress, logs and checkpoints, user hooks.
    const graph = trained$.pipe(
      concatMap(async (s) => {
        if (trainer.val_freq > 0 && s.step % trainer.val_freq === 0) Object.assign(s.metrics, await valMetrics());
        return s;
      }),
      watchLossHacking(
        {
          klPrcpThreshold: trainer.loss_hacking_kl_prcp,
          accuracyDrop: trainer.loss_hacking_accuracy_drop,
          window: trainer.loss_hacking_window,
          entropyRise: trainer.loss_hacking_entropy_rise,
          generalKlPrcp: trainer.loss_hacking_kl_prcp_general,
        },
        (alarm) => {
          // every alarm goes to the log; the terminal hears the first of each stretch of steps (and of each symptom)
          const previous = alarms.at(-1);
          const repeat = previous !== undefined && previous.step === alarm.step - 1 && previous.symptom === alarm.symptom;
          alarms.push(alarm);
          logger.warn({ event: 'loss_hacking', ...alarm }, alarm.message);
          if (!repeat || trainer.stop_on_loss_hacking)
            say(
              `\nwarning: ${alarm.message}${trainer.stop_on_loss_hacking ? '; stopping (trainer.stop_on_loss_hacking)' : ' (said once while it lasts; every step in log.jsonl)'}`,
            );
          if (trainer.stop_on_loss_hacking) stop('loss_hacking');
        },
        history.map((r) => ({ step: r.step, metrics: r })),
      ),
      concatMap(async (s) => {
        const m = s.metrics;
        // The previous step's writes must be done (bounded memory); the wait is the stall saving causes.
        const tWait = performance.now();
        await io;
        m['timing_s/save_wait'] = (performance.now() - tWait) / 1000;
        logger.info({ event: 'step', step: s.step, version: s.version, metrics: m }, 'step');
        if (metricsFile) {
          metricsFd ??= openAppendNoFollow(metricsFile);
          fs.writeSync(metricsFd, `${JSON.stringify({ step: s.step, version: s.version, ...m })}\n`);
        }
        if (trainer.logger.includes('tensorboard')) tensorboard?.scalars(s.step, m);
        progress.update(s.step, {
          reward: fmt(m['critic/score/mean']),
          acc: fmt(m['reward/accuracy/mean']),
          kl_prcp: fmt(m['actor/kl_prcp_loss'] === undefined ? undefined : -m['actor/kl_prcp_loss'], 4),
          entropy: fmt(m['actor/entropy_loss']),
          len: fmt(m['response_length/mean'], 1),
          'tok/s': fmt(m['perf/throughput'], 0),
        });
        const record = logRollouts ? rolloutRecord(s.batch, trainedFrom.get(s.step) ?? s.version, task) : undefined;
        trainedFrom.delete(s.step);
        const snapshot = pending.get(s.step);
        pending.delete(s.step);
        if (snapshot) snapshot.state.metrics = { ...m };
        io = (async () => {
          if (record) await writer!.appendRollout(runDir, record);
          if (snapshot) await writeCheckpoint(snapshot);
        })();
        io.catch(() => undefined);
        noteRewardFailures(s.step, s.batch.rewardFailures, s.batch.rewards.length);
        const limit = trainer.max_consecutive_skipped_steps;
        skippedInARow = m['actor/optimizer_steps'] === 0 && m['actor/skipped_steps'] > 0 ? skippedInARow + 1 : 0;
        if (limit > 0 && skippedInARow >= limit) throw new Error(skippedStepsError(s.step, limit, s.batch.rewardFailures, s.batch.rewards.length));
        await opts.hooks?.onStep?.(s);
        return { step: s.step, version: s.version, metrics: m };
      }),
      toArray(),
    );

    let steps: TrainResult['steps'];
    try {
      steps = await Promise.race([
        new Promise<TrainResult['steps']>((resolve, reject) => {
          subscription = graph.subscribe({ next: resolve, error: reject });
        }),
        abandoned,
      ]);
    } finally {
      progress.stop();
      // Whatever happened, the writes already started finish (a checkpoint is published whole or not at all).
      await io.catch((err: Error) => logger.error({ event: 'write_failed', message: err.message }, err.message));
    }
    await io;
    // The final checkpoint: the state after the last trained step (nothing is in flight any more).
    if (store && last && lastCheckpointStep !== last.step) {
      const p = await capture(last.step, last.version, last.cursor);
      p.state.metrics = steps.at(-1)?.metrics ?? {};
      await writeCheckpoint(p);
    }
    if (lastCheckpoint) say(`checkpoint of step ${last?.step} (policy version ${last?.version}) in ${lastCheckpoint}`);
    const after = trainer.test_before_and_after ? await testEval('after') : undefined;
    const seconds = (performance.now() - t0) / 1000;
    if (testBefore && after) {
      const d = (a: number | null, b: number | null) => (a === null || b === null ? '-' : `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`);
      const change = (now: TestAccuracies, then: TestAccuracies) =>
        `${d(now.overall, then.overall)} points overall, ${d(now.vision_dependent, then.vision_dependent)} vision-dependent, ${d(now.general, then.general)} general`;
      say(`change: ${change(testAccuracies(after.greedy.accuracy), testBefore)}`);
      if (after.sampled && testBefore.sampled?.k === after.sampled.k)
        say(`change of avg@${after.sampled.k}: ${change(testAccuracies(after.sampled.accuracy), testBefore.sampled)}`);
    }
    say(`train: ${outcome}, ${steps.length} steps in ${formatDuration(seconds)}${opts.noSave ? '' : `; metrics in ${path.join(runDir, 'metrics.jsonl')}`}`);
    if ((outcome as TrainOutcome) === 'interrupted' && lastCheckpoint) say(`continue with: papo train --resume ${runDir}`);
    logger.info({ event: 'train_end', outcome, steps: steps.length, seconds, checkpoint: lastCheckpoint }, 'train end');
    return { config: cfg, steps, before, after, outcome, alarms, seconds, runDir, resumedFrom: resumed?.step, checkpoint: lastCheckpoint };
  } finally {
    for (const [sig, h] of signalHandlers) process.off(sig, h);
    subscription?.unsubscribe();
    await reward.close();
    await closeWriter();
    if (metricsFd !== undefined) fs.closeSync(metricsFd);
    tensorboard?.close();
    await engine.close();
    await actorTrainer.close();
  }
}
