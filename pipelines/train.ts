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
import * as fs from 'node:fs';
import * as path from 'node:path';
import { concatMap, identity, lastValueFrom, tap, toArray, type OperatorFunction, type Subscription } from 'rxjs';
import { initTf } from '../models/tf-backend.ts';
import { TfPolicy } from '../models/policy-tf.ts';
import { AdamW } from '../models/optimizer.ts';
import { PolicyEngine } from '../models/engine/engine.ts';
import { loadPolicyWeights, savePolicyWeights } from '../storage/policy-weights.ts';
import { createTask } from '../tasks/registry.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { Task } from '../tasks/types.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import { createLogger, type Logger } from '../util/logger.ts';
import { createProgress, formatDuration } from '../util/progress.ts';
import {
  CreditGate, promptBatches, sampleGroups, scoreRewards, keepInformativeGroups, maskedViewLogprobs, referenceLogprobs,
  groupAdvantages, papoUpdate, watchLossHacking, type TrainedStep, type RolloutEngine, type LossHackingAlarm,
} from '../operators/index.ts';
import { evaluate, type EvalReport } from './evaluate.ts';
import { loadRewardFunction } from './reward-function.ts';
import { trainConfig, type TrainConfig } from './train-config.ts';

export interface TrainHooks {
  /** After every rollout step (its metrics and the batch as trained); awaited before the next record. */
  onStep?: (step: TrainedStep) => void | Promise<void>;
}

export interface TrainOptions {
  logger?: Logger;
  /** No terminal output (tests). */
  quiet?: boolean;
  hooks?: TrainHooks;
  /** A reward function object instead of `worker.reward.score_function`. */
  reward?: RewardFunction;
  /** Stop admitting steps when aborted; the steps in flight finish (as with SIGINT). */
  signal?: AbortSignal;
  /** Handle SIGINT / SIGTERM: first stops cleanly, second abandons the step in flight. Default false. */
  handleSignals?: boolean;
  /** Write nothing to the run directory (tests). */
  noSave?: boolean;
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
}

/** The run directory must not hold another run: its weights and metrics would be mixed with this one's. */
function prepareRunDir(dir: string): void {
  for (const f of ['metrics.jsonl', 'weights']) {
    if (fs.existsSync(path.join(dir, f))) {
      throw new Error(`${dir} already holds a run (${f}); set trainer.save_checkpoint_path to a new directory, or remove it`);
    }
  }
  fs.mkdirSync(dir, { recursive: true });
}

const fmt = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

export async function runTrain(input: unknown, opts: TrainOptions = {}): Promise<TrainResult> {
  const cfg = trainConfig(input);
  const t0 = performance.now();
  const { data, algorithm: objective, trainer } = cfg;
  const { actor, rollout } = cfg.worker;
  const runDir = trainer.save_checkpoint_path;
  if (!opts.noSave) prepareRunDir(runDir);
  const logger = opts.logger ?? createLogger(opts.noSave ? undefined : path.join(runDir, 'log.jsonl'));
  const say = (line: string) => {
    if (!opts.quiet) process.stderr.write(`${line}\n`);
  };

  const backend = await initTf();
  const start = await loadPolicyWeights(actor.model.model_path);
  const policyCfg = start.config;
  const task: Task = createTask({ task: data.task, seed: data.task_seed, families: data.families, manifest: data.manifest });
  if (task.imageHeight !== policyCfg.imageHeight || task.imageWidth !== policyCfg.imageWidth) {
    throw new Error(`task ${task.name} makes ${task.imageHeight}x${task.imageWidth} images but the policy at ${actor.model.model_path} expects ${policyCfg.imageHeight}x${policyCfg.imageWidth}`);
  }
  const maxResponseLength = data.max_response_length ?? policyCfg.maxResponseLen;
  if (maxResponseLength > policyCfg.maxResponseLen) {
    throw new Error(`data.max_response_length ${maxResponseLength} exceeds the policy's maxResponseLen ${policyCfg.maxResponseLen}`);
  }
  const reward = opts.reward ?? (await loadRewardFunction(cfg.worker.reward.score_function));
  const needMasked = objective.perception_loss_weight > 0 || objective.entropy_coef_masked > 0;
  const needRef = objective.kl_coef > 0;
  logger.info({ event: 'train_start', backend, config: cfg, policy: policyCfg, reward: reward.name }, 'train start');
  if (!opts.noSave) fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify(cfg, null, 2));

  const policy = new TfPolicy(policyCfg, start.params);
  const optimizer = new AdamW(policy.vars, {
    lr: actor.optim.lr,
    beta1: actor.optim.betas[0],
    beta2: actor.optim.betas[1],
    weightDecay: actor.optim.weight_decay,
    maxGradNorm: actor.max_grad_norm,
    schedule: actor.optim.lr_warmup_steps > 0 ? { kind: 'linear-warmup', warmupSteps: actor.optim.lr_warmup_steps } : { kind: 'constant' },
  });
  const engine = await PolicyEngine.create(policyCfg, { intraOpThreads: rollout.threads, retainVersions: trainer.max_staleness + 2 });
  const signalHandlers: [NodeJS.Signals, () => void][] = [];
  let subscription: Subscription | undefined;
  try {
    await engine.setWeights(start.params, 0);
    if (needRef) await engine.setReferenceWeights(start.params);

    const testEval = async (label: string) => {
      const r = await evaluate(engine, task, { split: 'test', k: 0, limit: trainer.test_limit || undefined, reward, quiet: opts.quiet });
      say(`${label}: held-out test greedy accuracy ${pct(r.greedy.accuracy.overall.accuracy)} overall, ${pct(r.greedy.accuracy.visionDependent.accuracy)} vision-dependent, ${pct(r.greedy.accuracy.general.accuracy)} general (${r.records} prompts)`);
      logger.info({ event: `test_${label}`, accuracy: r.greedy.accuracy, formatRate: r.greedy.formatRate }, `test ${label}`);
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

    const before = trainer.test_before_and_after ? await testEval('before') : undefined;
    if (trainer.val_before_train) logger.info({ event: 'val_before_train', metrics: await valMetrics() }, 'validation before training');

    const gate = new CreditGate({ maxInflight: trainer.max_inflight_batches, maxStaleness: trainer.max_staleness, maxSteps: trainer.max_steps });
    const stream = RecordStream.open(task, { split: 'train', seed: data.seed, shuffle: data.shuffle });
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
            say(`\n${sig}: finishing the ${gate.inflight} step(s) in flight, then saving and stopping (${sig} again abandons them)`);
            logger.warn({ event: 'signal', signal: sig, inflight: gate.inflight }, 'stopping after the steps in flight');
            stop('interrupted');
          } else {
            say(`\n${sig} again: abandoning the steps in flight`);
            logger.warn({ event: 'signal_abandon', signal: sig }, 'abandoning the steps in flight');
            subscription?.unsubscribe();
            abandon?.(new Error(`interrupted by ${sig}: abandoned the steps in flight; the last saved weights are kept`));
          }
        };
        process.on(sig, h);
        signalHandlers.push([sig, h]);
      }
    }

    const metricsFile = opts.noSave ? undefined : path.join(runDir, 'metrics.jsonl');
    const weightsDir = path.join(runDir, 'weights');
    const saveWeights = (step: number, version: number) =>
      savePolicyWeights(weightsDir, {
        config: policyCfg,
        params: policy.getParams(),
        meta: { kind: 'train', step, version, task: { task: data.task, seed: data.task_seed, families: data.families, manifest: data.manifest }, outcome },
      });
    const progress = createProgress('train', trainer.max_steps, { quiet: opts.quiet, every: 1 });
    const when = <A, B>(on: boolean, op: OperatorFunction<A, B>): OperatorFunction<A, B> => (on ? op : (identity as unknown as OperatorFunction<A, B>));

    const trained$ = promptBatches(stream, { batchSize: data.rollout_batch_size, grants: gate.grants$, seed: data.seed }).pipe(
      sampleGroups(engine, { n: rollout.n, temperature: rollout.temperature, topP: rollout.top_p, topK: Math.max(0, rollout.top_k), maxNewTokens: maxResponseLength }),
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
      ),
      when(needMasked, maskedViewLogprobs(engine, { ratio: objective.mask_ratio, patchSize: objective.mask_patch_size })),
      when(needRef, referenceLogprobs(engine)),
      groupAdvantages({ estimator: objective.adv_estimator, eps: objective.adv_eps }),
      papoUpdate({
        policy,
        optimizer,
        engine: engine as RolloutEngine,
        objective,
        globalBatchSize: actor.global_batch_size,
        microBatchSize: actor.micro_batch_size_per_device_for_update,
        ppoEpochs: actor.ppo_epochs,
        maxStaleness: trainer.max_staleness,
        initialVersion: 0,
        seed: data.seed,
        shuffle: actor.shuffle,
        logger,
        onStepDone: (step) => gate.complete(step),
      }),
    );
    // Taps on the trained steps: validation, the loss-hacking watch, metrics and progress, user hooks.
    const graph = trained$.pipe(
      concatMap(async (s) => {
        if (trainer.val_freq > 0 && s.step % trainer.val_freq === 0) Object.assign(s.metrics, await valMetrics());
        return s;
      }),
      watchLossHacking(
        { klPrcpThreshold: trainer.loss_hacking_kl_prcp, accuracyDrop: trainer.loss_hacking_accuracy_drop, window: trainer.loss_hacking_window },
        (alarm) => {
          alarms.push(alarm);
          logger.warn({ event: 'loss_hacking', ...alarm }, alarm.message);
          say(`\nwarning: ${alarm.message}${trainer.stop_on_loss_hacking ? '; stopping (trainer.stop_on_loss_hacking)' : ''}`);
          if (trainer.stop_on_loss_hacking) stop('loss_hacking');
        },
      ),
      concatMap(async (s) => {
        const m = s.metrics;
        logger.info({ event: 'step', step: s.step, version: s.version, metrics: m }, 'step');
        if (metricsFile) fs.appendFileSync(metricsFile, `${JSON.stringify({ step: s.step, version: s.version, ...m })}\n`);
        progress.update(s.step, {
          reward: fmt(m['critic/score/mean']),
          acc: fmt(m['reward/accuracy/mean']),
          kl_prcp: fmt(m['actor/kl_prcp_loss'] === undefined ? undefined : -m['actor/kl_prcp_loss'], 4),
          entropy: fmt(m['actor/entropy_loss']),
          len: fmt(m['response_length/mean'], 1),
          'tok/s': fmt(m['perf/throughput'], 0),
        });
        if (!opts.noSave && trainer.save_freq > 0 && s.step % trainer.save_freq === 0) await saveWeights(s.step, s.version);
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
    }
    const version = steps.at(-1)?.version ?? 0;
    if (!opts.noSave) {
      await saveWeights(steps.at(-1)?.step ?? 0, version);
      say(`weights of policy version ${version} saved to ${weightsDir}`);
    }
    const after = trainer.test_before_and_after ? await testEval('after') : undefined;
    const seconds = (performance.now() - t0) / 1000;
    if (before && after) {
      const d = (k: 'overall' | 'visionDependent' | 'general') => {
        const a = after.greedy.accuracy[k].accuracy;
        const b = before.greedy.accuracy[k].accuracy;
        return a === null || b === null ? '-' : `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`;
      };
      say(`change: ${d('overall')} points overall, ${d('visionDependent')} vision-dependent, ${d('general')} general`);
    }
    say(`train: ${outcome}, ${steps.length} steps in ${formatDuration(seconds)}${opts.noSave ? '' : `; metrics in ${path.join(runDir, 'metrics.jsonl')}`}`);
    logger.info({ event: 'train_end', outcome, steps: steps.length, seconds }, 'train end');
    return { config: cfg, steps, before, after, outcome, alarms, seconds, runDir };
  } finally {
    for (const [sig, h] of signalHandlers) process.off(sig, h);
    subscription?.unsubscribe();
    await engine.close();
    optimizer.dispose();
    policy.dispose();
  }
}
