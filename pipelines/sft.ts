/**
 * Supervised warm start: cross-entropy on the demonstration tokens (response tokens only, token mean),
 * the policy's AdamW with clipping and schedule, seeded data order and initialisation. RL needs a policy
 * that is sometimes right: a group whose responses all fail has zero advantage and teaches nothing.
 *
 * Writes, in the run directory `<out>` (`trainer.save_checkpoint_path`), `<out>/checkpoints/step_N/`
 * (training checkpoints: weights, optimizer, data cursor; every `trainer.save_freq` steps and at the end),
 * `<out>/weights` (the final policy, once) and `<out>/log.jsonl` (pino, one record per step). `resume` continues from the latest checkpoint, exactly; SIGINT / SIGTERM (with
 * `handleSignals`) finish the current step, save a checkpoint and stop. `<out>/config.json` is written before
 * anything else, so `resume` of a run stopped before its first checkpoint starts it again from step 0; the
 * run directory is locked against a second writer (storage/run-lock.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../util/tf-backend.ts';
import { describeBackends } from './backend-note.ts';
import { policyConfig, policyDims, type PolicyConfig, type PolicyConfigInput } from '../models/config.ts';
import { type Params, initParams, paramCount } from '../models/params.ts';
import { createTrainer } from '../models/trainer/create.ts';
import { tokenMeanNll } from '../models/trainer/losses.ts';
import { buildPromptBatch, buildResponseBatch } from '../models/batch.ts';
import { encodeResponse } from '../models/tokenizer.ts';
import { RecordStream, type StreamCursor } from '../tasks/stream.ts';
import { ManifestTask } from '../tasks/loader/manifest-task.ts';
import type { Task, TaskRecord } from '../tasks/types.ts';
import { savePolicyWeights, loadPolicyWeights } from '../storage/policy-weights.ts';
import { configChanges, taskConfigOf, taskOf } from './train-config.ts';
import { type SftConfig, type SftConfigInput, sftConfig, upgradeSftConfig } from './sft-config.ts';
import { withRun, type Run } from './run-harness.ts';
import type { Logger } from '../util/logger.ts';
import { createProgress, formatDuration } from '../util/progress.ts';
import { deepMerge } from '../util/overrides.ts';

/** Every training record needs a demonstration: refuse a dataset without them before training starts. */
function checkDemonstrations(task: Task): void {
  const missing: string[] = [];
  const n = task instanceof ManifestTask ? task.size('train') : 0; // generated tasks always have them
  for (let i = 0; i < n; i++) {
    const r = task.recordAt('train', i);
    if (!r.demonstration) missing.push(r.id);
  }
  if (missing.length) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ', ...' : '');
    throw new Error(`${missing.length} of ${n} training records have no demonstration (${shown}): supervised warm start needs one per record`);
  }
}

export interface SftStepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
}

export interface SftResult {
  /** the trained weights */
  params: Params;
  config: PolicyConfig;
  task: Task;
  history: SftStepRecord[];
  seconds: number;
  weightsDir: string;
  outcome: 'completed' | 'interrupted';
  resumedFrom?: number;
}

export interface SftOptions {
  logger?: Logger;
  /** No terminal progress (tests). */
  quiet?: boolean;
  /** Called after every step. */
  onStep?: (r: SftStepRecord) => void;
  /** Do not write weights (tests that only need the trained policy). */
  noSave?: boolean;
  /** Continue from the latest checkpoint in `out` (`papo sft --resume`). */
  resume?: boolean;
  /** `out` holds another run: move its files to previous-<time>/ and start over (`--force`). */
  force?: boolean;
  /** Stop at the end of the current step (saving a checkpoint) when aborted. */
  signal?: AbortSignal;
  /** SIGINT / SIGTERM stop at the end of the current step, with a checkpoint. */
  handleSignals?: boolean;
}

/** Keys a resumed warm start may change. */
const SFT_RESUME_SAFE = [
  'trainer.save_freq',
  'trainer.save_checkpoint_path',
  // what a manifest may read: records they let in or keep out change the data, which the stream cursor's fingerprint refuses
  'data.allow_outside_manifest_dir',
  'data.max_image_bytes',
  'data.max_image_pixels',
];

/** Demonstration of a record, or a clear error naming it (a task without demonstrations cannot warm-start). */
function demonstrationOf(r: TaskRecord): number[] {
  if (!r.demonstration) throw new Error(`record ${r.id} has no demonstration: supervised warm start needs one per record`);
  return encodeResponse(r.demonstration);
}

export async function runSft(input: SftConfigInput, opts: SftOptions = {}): Promise<SftResult> {
  const given = sftConfig(input);
  const out = given.trainer.save_checkpoint_path;
  // a new run's dataset without demonstrations is refused before the run directory is touched
  const fresh = opts.resume ? undefined : taskOf(given.data);
  if (fresh) checkDemonstrations(fresh);
  return withRun(
    {
      command: 'papo sft',
      dir: out,
      resume: opts.resume ? 'only' : 'never',
      force: opts.force,
      noSave: opts.noSave,
      // A resumed run keeps the settings it was saved with; those given again must agree with them.
      settle: (saved) => {
        if (!saved) return { config: sftConfig(input) };
        if (saved.checkpoint && saved.checkpoint.kind !== 'sft')
          throw new Error(`cannot resume ${out}: its checkpoint step_${saved.checkpoint.step} is of a ${saved.checkpoint.kind} run, not papo sft`);
        // a run saved with the first config format's keys is read in this one's
        const base = sftConfig(upgradeSftConfig(saved.config));
        const cfg = sftConfig(deepMerge(deepMerge(base, input as Record<string, unknown>), { trainer: { save_checkpoint_path: out } }));
        const { unsafe } = configChanges(base, cfg, SFT_RESUME_SAFE);
        if (unsafe.length) throw new Error(`cannot resume ${out}: the config differs from ${saved.from}:\n  ${unsafe.join('\n  ')}`);
        return { config: cfg };
      },
      logger: opts.logger,
      quiet: opts.quiet,
      signals: opts.handleSignals ? { stopping: () => 'finishing the current step, then saving a checkpoint and stopping', abandon: false } : undefined,
      abort: opts.signal,
    },
    (run) => sft(run, opts, fresh),
  );
}

async function sft(run: Run<SftConfig>, opts: SftOptions, fresh: Task | undefined): Promise<SftResult> {
  const { config: cfg, store, resumed, say, logger } = run;
  const task = fresh ?? taskOf(cfg.data);
  const { actor } = cfg.worker;
  const { max_steps: maxSteps, save_freq: saveFreq, save_checkpoint_path: out } = cfg.trainer;
  if (!fresh) checkDemonstrations(task);
  const weightsDir = path.join(out, 'weights');
  if (resumed && resumed.step >= maxSteps && fs.existsSync(weightsDir)) {
    say(
      `${out} is already finished (${resumed.step} of ${maxSteps} steps; weights in ${weightsDir}); to train longer, start a new warm start from its weights: papo sft --init ${out} --out NEW_DIR --steps N`,
    );
    return {
      params: resumed.policy.params,
      config: resumed.policy.config,
      task,
      history: [],
      seconds: 0,
      weightsDir,
      outcome: 'completed',
      resumedFrom: resumed.step,
    };
  }
  const backend = await initTf();

  let config: PolicyConfig;
  let params: Params;
  if (resumed) {
    config = resumed.policy.config;
    params = resumed.policy.params;
  } else if (actor.model.model_path !== undefined) {
    const saved = await loadPolicyWeights(actor.model.model_path);
    // a run or checkpoint directory resolves to one checkpoint's weights: say which
    if (saved.dir !== path.resolve(actor.model.model_path)) say(`sft: starting from the weights in ${saved.dir}`);
    config = saved.config;
    params = saved.params;
  } else {
    config = policyConfig({ seed: cfg.data.seed, ...(actor.model.override_config as PolicyConfigInput) });
    params = initParams(config);
  }
  if (task.imageHeight !== config.imageHeight || task.imageWidth !== config.imageWidth) {
    throw new Error(
      `task ${task.name} makes ${task.imageHeight}x${task.imageWidth} images but the policy expects ${config.imageHeight}x${config.imageWidth}: set worker.actor.model.override_config.imageHeight/imageWidth`,
    );
  }
  const trainer = await createTrainer({
    engine: actor.engine,
    config,
    params,
    optimizer: {
      lr: actor.optim.lr,
      beta1: actor.optim.betas[0],
      beta2: actor.optim.betas[1],
      weightDecay: actor.optim.weight_decay,
      maxGradNorm: actor.max_grad_norm,
      schedule: { kind: 'cosine', warmupSteps: actor.optim.lr_warmup_steps, totalSteps: maxSteps, minLrRatio: actor.optim.min_lr_ratio },
    },
  });
  if (resumed) await trainer.importOptimizerState(resumed.optimizer);
  const stream = resumed ? RecordStream.resume(task, resumed.state.cursor as StreamCursor) : RecordStream.open(task, { split: 'train', seed: cfg.data.seed });
  const { nPatch } = policyDims(config);
  logger.info(
    { event: 'sft_start', backend, trainer: trainer.engine, config: cfg, policy: config, parameters: paramCount(config), resumed_from: resumed?.step },
    'sft start',
  );
  const backends = describeBackends('sft', actor.engine, trainer.engine, backend);
  say(backends);
  logger.info({ event: 'backend', message: backends }, backends);
  if (resumed) say(`resuming ${out} from checkpoint step ${resumed.step}`);

  let lastSaved = resumed?.step ?? 0;
  const saveCheckpoint = async (step: number) => {
    if (!store || lastSaved === step) return;
    const saved = await store.save({
      kind: 'sft',
      step,
      policy: { config, params: await trainer.getParams() },
      optimizer: await trainer.exportOptimizerState(),
      samplers: [],
      state: { cursor: stream.cursor(), config: cfg, task: taskConfigOf(cfg.data) },
    });
    lastSaved = step;
    await store.retain({ keepLast: 2 });
    logger.info({ event: 'checkpoint', step, dir: saved.dir, bytes: saved.bytes, seconds: saved.seconds }, 'checkpoint saved');
  };

  const firstStep = (resumed?.step ?? 0) + 1;
  const progress = createProgress('sft', maxSteps, { quiet: opts.quiet, startAt: firstStep - 1 });
  const history: SftStepRecord[] = [];
  const t0 = performance.now();
  let step = firstStep - 1;
  try {
    while (step < maxSteps && !run.stopping) {
      step++;
      const records = Array.from({ length: cfg.data.train_batch_size }, () => stream.next().value as TaskRecord);
      const questions = records.map((r) => r.question);
      const demonstrations = records.map(demonstrationOf);
      const prompts = buildPromptBatch(questions, config);
      const responses = buildResponseBatch(demonstrations, config);
      const images = records.map((r) => r.image);
      const ts = performance.now();
      const where = `step ${step} (records ${records[0].id} .. ${records[records.length - 1].id})`;
      let info: Awaited<ReturnType<typeof trainer.minimize>>;
      try {
        info = await trainer.minimize({ images, prompts: questions, responses: demonstrations }, tokenMeanNll);
      } catch (err) {
        // AdamW refuses a non-finite gradient without touching the weights; the last checkpoint stands.
        throw new Error(`sft: ${where}: ${(err as Error).message}`);
      }
      if (!Number.isFinite(info.loss)) throw new Error(`sft: loss is ${info.loss} at ${where}; the last checkpoint is kept`);
      const tokens = cfg.data.train_batch_size * (nPatch + prompts.length + responses.length);
      const rec: SftStepRecord = {
        step,
        loss: info.loss,
        lr: info.lr,
        gradNorm: info.gradNorm,
        tokensPerSec: tokens / ((performance.now() - ts) / 1000),
      };
      history.push(rec);
      logger.info({ event: 'sft_step', ...rec }, 'sft step');
      opts.onStep?.(rec);
      progress.update(step, { loss: rec.loss.toFixed(4), 'tok/s': rec.tokensPerSec.toFixed(0) });
      if (saveFreq > 0 && step % saveFreq === 0) await saveCheckpoint(step);
      // Let a signal be handled between steps.
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    progress.stop();
  }
  try {
    await saveCheckpoint(step);
    const outcome = step >= maxSteps ? 'completed' : 'interrupted';
    const trained = await trainer.getParams();
    if (store && outcome === 'completed') {
      await savePolicyWeights(weightsDir, {
        config,
        params: trained,
        meta: { kind: 'sft', step, task: taskConfigOf(cfg.data), seed: cfg.data.seed, cursor: stream.cursor() },
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    logger.info({ event: 'sft_end', seconds, outcome, finalLoss: history.at(-1)?.loss }, 'sft end');
    if (outcome === 'interrupted') say(`sft: interrupted after step ${step}; checkpoint in ${store?.dir ?? '-'}; continue with papo sft --resume --out ${out}`);
    else
      say(
        `sft: ${maxSteps} steps in ${formatDuration(seconds)}, final loss ${history.at(-1)?.loss.toFixed(4)}${opts.noSave ? '' : `, weights in ${weightsDir}`}`,
      );
    return { params: trained, config, task, history, seconds, weightsDir, outcome, resumedFrom: resumed?.step };
  } finally {
    await trainer.close();
  }
}
