/**
 * The config of `papo sft` (pipelines/sft.ts): the run config's sections and keys (pipelines/train-config.ts)
 * where the concept is the same (`data`, `worker.actor`, `trainer`), snake_case throughout, each key declared
 * once with its default and help. A key of the first format (`batchSize`, `task.maxImageBytes`, `out`, ...) is
 * an error naming the key that replaced it; `upgradeSftConfig` translates a config saved in that format.
 */
import { z } from 'zod';
import { TASK_DATA_KEYS, checkTaskData, impliedTask } from './train-config.ts';
import { applyOverrides } from '../util/overrides.ts';
import { type ConfigKey, describeSchema, parseConfig } from '../util/schema.ts';

const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().nonnegative();

const SftDataSchema = z
  .object({
    ...TASK_DATA_KEYS,
    digits: z.number().int().min(2).max(4).optional().describe('digits task: digits per canvas (default 2)'),
    train_batch_size: posInt().default(64).describe('records per optimizer step'),
    seed: nonNegInt().default(0).describe('seed of the data order, and of the initialisation unless worker.actor.model.override_config.seed is given'),
  })
  .strict();

const SftActorSchema = z
  .object({
    model: z
      .object({
        model_path: z.string().optional().meta({
          description: 'start from these weights (a weights directory, a checkpoint, or a run directory: its latest complete checkpoint)',
          defaultText: 'a fresh seeded initialisation',
        }),
        override_config: z.record(z.string(), z.unknown()).default({}).meta({
          description: 'policy architecture, keys of models/config.ts (dModel, nLayers, ...; papo sft --size sets them); ignored with model_path',
          defaultText: 'the base size',
        }),
      })
      .strict()
      .default({ override_config: {} }),
    engine: z
      .enum(['auto', 'ort', 'tfjs'])
      .default('auto')
      .describe('update engine: ort (onnxruntime), tfjs (the reference), or auto: tfjs on tfjs-node-gpu, else ort'),
    max_grad_norm: z.number().finite().nonnegative().default(1).describe('clip the global gradient norm (0 = off)'),
    optim: z
      .object({
        lr: z.number().finite().positive().default(1e-3).describe('AdamW peak learning rate'),
        weight_decay: z.number().finite().nonnegative().default(0.01).describe('decoupled weight decay (matrices only)'),
        betas: z
          .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
          .default([0.9, 0.999])
          .describe('AdamW betas'),
        lr_warmup_steps: nonNegInt().default(20).describe('linear warm-up, in optimizer steps, then cosine decay'),
        min_lr_ratio: z.number().min(0).max(1).default(0.1).describe('the cosine decay ends at this fraction of lr'),
      })
      .strict()
      .default({ lr: 1e-3, weight_decay: 0.01, betas: [0.9, 0.999], lr_warmup_steps: 20, min_lr_ratio: 0.1 }),
  })
  .strict();

const SftTrainerSchema = z
  .object({
    max_steps: posInt().default(300).describe('optimizer steps'),
    save_freq: nonNegInt().default(100).describe('write a checkpoint every n steps, as well as at the end (0 = at the end only)'),
    save_checkpoint_path: z.string().default('runs/sft').describe('run directory: checkpoints/, weights, log.jsonl, config.json'),
  })
  .strict();

export const SftConfigSchema = z
  .object({
    data: SftDataSchema.default(SftDataSchema.parse({})),
    worker: z
      .object({ actor: SftActorSchema.default(SftActorSchema.parse({})) })
      .strict()
      .default({ actor: SftActorSchema.parse({}) }),
    trainer: SftTrainerSchema.default(SftTrainerSchema.parse({})),
  })
  .strict();
export type SftConfig = z.output<typeof SftConfigSchema>;
export type SftConfigInput = z.input<typeof SftConfigSchema>;

/** Each key of the first `papo sft` config format, with the key that holds its value now. */
const RENAMED_SFT_KEYS: Readonly<Record<string, string>> = {
  'task.task': 'data.task',
  'task.seed': 'data.task_seed',
  'task.families': 'data.families',
  'task.digits': 'data.digits',
  'task.manifest': 'data.manifest',
  'task.allowOutsideManifestDir': 'data.allow_outside_manifest_dir',
  'task.maxImageBytes': 'data.max_image_bytes',
  'task.maxImagePixels': 'data.max_image_pixels',
  policy: 'worker.actor.model.override_config',
  init: 'worker.actor.model.model_path',
  steps: 'trainer.max_steps',
  engine: 'worker.actor.engine',
  batchSize: 'data.train_batch_size',
  seed: 'data.seed',
  lr: 'worker.actor.optim.lr',
  warmupSteps: 'worker.actor.optim.lr_warmup_steps',
  minLrRatio: 'worker.actor.optim.min_lr_ratio',
  weightDecay: 'worker.actor.optim.weight_decay',
  maxGradNorm: 'worker.actor.max_grad_norm',
  saveEvery: 'trainer.save_freq',
  out: 'trainer.save_checkpoint_path',
};

/** The keys of the first format an input holds, as [old, new] pairs. */
function renamedKeys(input: unknown): [string, string][] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return [];
  const found: [string, string][] = [];
  for (const [k, v] of Object.entries(input)) {
    if (k === 'task' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      for (const kk of Object.keys(v)) found.push([`task.${kk}`, RENAMED_SFT_KEYS[`task.${kk}`] ?? `data.${kk}`]);
    } else if (RENAMED_SFT_KEYS[k]) found.push([k, RENAMED_SFT_KEYS[k]]);
  }
  return found;
}

/**
 * A config of the first `papo sft` format (camelCase keys, `task:`, `out`) in this one's keys; a config of
 * this format is returned as it is. `papo sft --resume` reads a run saved in either.
 */
export function upgradeSftConfig(input: unknown): unknown {
  const renamed = renamedKeys(input);
  if (!renamed.length) return input;
  const old = input as Record<string, unknown>;
  let out: Record<string, unknown> = Object.fromEntries(Object.entries(old).filter(([k]) => k !== 'task' && !RENAMED_SFT_KEYS[k]));
  for (const [from, to] of renamed) {
    const [a, b] = from.split('.');
    const value = b === undefined ? old[a] : (old[a] as Record<string, unknown>)[b];
    if (value !== undefined) out = applyOverrides(out, [`${to}=${JSON.stringify(value)}`], JSON.parse);
  }
  return out;
}

export function sftConfig(input: unknown = {}): SftConfig {
  const renamed = renamedKeys(input);
  if (renamed.length) throw new Error(`invalid sft config: ${renamed.map(([from, to]) => `${from} is now ${to}`).join('; ')}`);
  const cfg = parseConfig(SftConfigSchema, impliedTask(input ?? {}), 'sft config');
  checkTaskData(cfg.data, 'sft config');
  // zod hands out nested default objects by reference: without the copy, mutating one config changes the next one's defaults
  return structuredClone(cfg);
}

/** Every key of the sft config with its default and help: the README's reference and `papo sft --help`. */
export function describeSftConfig(): ConfigKey[] {
  return describeSchema(SftConfigSchema, ['worker.actor.model.override_config']);
}
