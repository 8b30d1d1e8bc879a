/**
 * Supervised warm start: cross-entropy on the demonstration tokens (response tokens only, token mean),
 * the policy's AdamW with clipping and schedule, seeded data order and initialisation. RL needs a policy
 * that is sometimes right: a group whose responses all fail has zero advantage and teaches nothing.
 *
 * Writes `<out>/weights` (policy-weights Zarr group, atomically, every `saveEvery` steps and at the end)
 * and `<out>/log.jsonl` (pino, one record per step).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { initTf, tf } from '../models/tf-backend.ts';
import { policyConfig, policyDims, type PolicyConfig, type PolicyConfigInput } from '../models/config.ts';
import { initParams, paramCount } from '../models/params.ts';
import { TfPolicy } from '../models/policy-tf.ts';
import { AdamW } from '../models/optimizer.ts';
import { buildPromptBatch, buildResponseBatch } from '../models/batch.ts';
import { encodeResponse } from '../models/tokenizer.ts';
import { createTask, TASK_NAMES } from '../tasks/registry.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { Task, TaskRecord } from '../tasks/types.ts';
import { savePolicyWeights, loadPolicyWeights } from '../storage/policy-weights.ts';
import { createLogger, type Logger } from '../util/logger.ts';
import { createProgress, formatDuration } from '../util/progress.ts';
import { parseConfig } from '../util/schema.ts';

export const TaskSpecSchema = z
  .object({
    task: z.enum(TASK_NAMES).default('digits'),
    seed: z.number().int().nonnegative().default(0),
    families: z.array(z.string()).optional(),
    digits: z.number().int().min(2).max(4).optional(),
    manifest: z.string().optional(),
  })
  .strict();
export type TaskSpec = z.output<typeof TaskSpecSchema>;

export const SftConfigSchema = z
  .object({
    task: TaskSpecSchema.default({ task: 'digits', seed: 0 }),
    /** Policy architecture (models/config.ts); ignored when `init` gives a checkpoint. */
    policy: z.record(z.string(), z.unknown()).default({}),
    /** Start from these weights instead of a fresh seeded initialisation. */
    init: z.string().optional(),
    steps: z.number().int().positive().default(300),
    batchSize: z.number().int().positive().default(64),
    /** Seeds the data order (and the initialisation, unless policy.seed is given). */
    seed: z.number().int().nonnegative().default(0),
    lr: z.number().positive().default(1e-3),
    warmupSteps: z.number().int().nonnegative().default(20),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    weightDecay: z.number().min(0).default(0.01),
    maxGradNorm: z.number().min(0).default(1),
    saveEvery: z.number().int().nonnegative().default(100),
    out: z.string().default('runs/sft'),
  })
  .strict();
export type SftConfig = z.output<typeof SftConfigSchema>;
export type SftConfigInput = z.input<typeof SftConfigSchema>;

export function sftConfig(input: SftConfigInput = {}): SftConfig {
  return parseConfig(SftConfigSchema, input, 'sft config');
}

export interface SftStepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
}

export interface SftResult {
  policy: TfPolicy;
  config: PolicyConfig;
  task: Task;
  history: SftStepRecord[];
  seconds: number;
  weightsDir: string;
}

export interface SftOptions {
  logger?: Logger;
  /** No terminal progress (tests). */
  quiet?: boolean;
  /** Called after every step. */
  onStep?: (r: SftStepRecord) => void;
  /** Do not write weights (tests that only need the trained policy). */
  noSave?: boolean;
}

/** Demonstration of a record, or a clear error naming it (a task without demonstrations cannot warm-start). */
function demonstrationOf(r: TaskRecord): number[] {
  if (!r.demonstration) throw new Error(`record ${r.id} has no demonstration: supervised warm start needs one per record`);
  return encodeResponse(r.demonstration);
}

export async function runSft(input: SftConfigInput, opts: SftOptions = {}): Promise<SftResult> {
  const cfg = sftConfig(input);
  const backend = await initTf();
  const logger = opts.logger ?? createLogger(opts.noSave ? undefined : path.join(cfg.out, 'log.jsonl'));
  const task = createTask(cfg.task);

  let config: PolicyConfig;
  let params;
  if (cfg.init) {
    const saved = await loadPolicyWeights(cfg.init);
    config = saved.config;
    params = saved.params;
  } else {
    config = policyConfig({ seed: cfg.seed, ...(cfg.policy as PolicyConfigInput) });
    params = initParams(config);
  }
  if (task.imageHeight !== config.imageHeight || task.imageWidth !== config.imageWidth) {
    throw new Error(
      `task ${task.name} makes ${task.imageHeight}x${task.imageWidth} images but the policy expects ${config.imageHeight}x${config.imageWidth}: set policy.imageHeight/imageWidth`,
    );
  }
  const policy = new TfPolicy(config, params);
  const optimizer = new AdamW(policy.vars, {
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm,
    schedule: { kind: 'cosine', warmupSteps: cfg.warmupSteps, totalSteps: cfg.steps, minLrRatio: cfg.minLrRatio },
  });
  const stream = RecordStream.open(task, { split: 'train', seed: cfg.seed });
  const { nPatch } = policyDims(config);
  logger.info({ event: 'sft_start', backend, config: cfg, policy: config, parameters: paramCount(config) }, 'sft start');

  const weightsDir = path.join(cfg.out, 'weights');
  const save = async (step: number) => {
    if (opts.noSave) return;
    await savePolicyWeights(weightsDir, {
      config,
      params: policy.getParams(),
      meta: { kind: 'sft', step, task: cfg.task, seed: cfg.seed, cursor: stream.cursor() },
    });
  };

  const progress = createProgress('sft', cfg.steps, { quiet: opts.quiet });
  const history: SftStepRecord[] = [];
  const t0 = performance.now();
  try {
    for (let step = 1; step <= cfg.steps; step++) {
      const records = Array.from({ length: cfg.batchSize }, () => stream.next().value as TaskRecord);
      const prompts = buildPromptBatch(records.map((r) => r.question), config);
      const responses = buildResponseBatch(records.map(demonstrationOf), config);
      const images = records.map((r) => r.image);
      const ts = performance.now();
      const where = `step ${step} (records ${records[0].id} .. ${records[records.length - 1].id})`;
      let info;
      try {
        info = optimizer.minimize(() => {
          const { logprobs, mask } = policy.logProbs({ images, promptIds: prompts, responseIds: responses });
          return tf.div(tf.neg(tf.sum(logprobs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
        });
      } catch (err) {
        // AdamW refuses a non-finite gradient without touching the weights; the last saved weights stand.
        throw new Error(`sft: ${where}: ${(err as Error).message}`);
      }
      if (!Number.isFinite(info.loss)) throw new Error(`sft: loss is ${info.loss} at ${where}; the last saved weights are kept`);
      const tokens = cfg.batchSize * (nPatch + prompts.length + responses.length);
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
      if (cfg.saveEvery > 0 && step % cfg.saveEvery === 0 && step < cfg.steps) await save(step);
    }
  } finally {
    progress.stop();
    optimizer.dispose();
  }
  await save(cfg.steps);
  const seconds = (performance.now() - t0) / 1000;
  logger.info({ event: 'sft_end', seconds, finalLoss: history.at(-1)?.loss }, 'sft end');
  if (!opts.quiet) process.stderr.write(`sft: ${cfg.steps} steps in ${formatDuration(seconds)}, final loss ${history.at(-1)?.loss.toFixed(4)}${opts.noSave ? '' : `, weights in ${weightsDir}`}\n`);
  return { policy, config, task, history, seconds, weightsDir };
}
