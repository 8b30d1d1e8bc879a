/**
 * The run config of `papo train`: one nested document in the shape of EasyR1's `examples/config.yaml`
 * (`data`, `algorithm`, `worker.actor`, `worker.rollout`, `worker.reward`, `trainer`), keys named as
 * EasyR1 / verl name them wherever the concept exists, snake_case throughout. `algorithm` holds the
 * objective's keys (algorithms/config.ts) plus `preset`. Every key is declared once here, with its
 * default and a help string; `papo train --print-config` shows the merged, validated result.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ObjectiveConfigSchema, PRESETS, type ObjectiveConfig, type PresetName } from '../algorithms/config.ts';
import type { AdamWConfigInput } from '../models/adamw.ts';
import { createTask, taskFactories, type TaskConfig } from '../tasks/registry.ts';
import type { Task } from '../tasks/types.ts';
import {
  DEFAULT_MAX_DATASET_BYTES,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_IMAGE_PIXELS,
  DEFAULT_MAX_ROW_BYTES,
  DEFAULT_MAX_ROWS,
} from '../tasks/loader/limits.ts';
import { DEFAULT_ANSWER_KEY, DEFAULT_IMAGE_KEY, DEFAULT_PROMPT_KEY, MAX_PROMPT_LENGTH } from '../tasks/loader/dataset.ts';
import { scoreFunctionProblem } from './reward-function.ts';
import { REWARD_TYPES } from '../tasks/rewards/load.ts';
import { type ConfigKey, describeSchema, issueLines } from '../util/schema.ts';
import { warmStartPath } from '../storage/warm-start.ts';
import { objectiveProblems, translateEasyR1 } from './easyr1-keys.ts';
import { effectiveObjectiveLine } from './effective-objective.ts';
import { namedRunDir, RUN_NAME } from './run-name.ts';
import { DEFAULT_MAX_STEPS } from './training-steps.ts';

/**
 * The warm-start checkpoint shipped with the package (made by `papo sft` with its defaults), as an absolute
 * path: `papo train` finds it from any working directory (`warmStartPath` of storage/warm-start.ts).
 */
export const SHIPPED_WARM_START = warmStartPath;

const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().nonnegative();
/** A path or a list of paths (EasyR1 takes one, verl a list). */
const dataFiles = () => z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/**
 * The task a run trains on and what a manifest may read: the same keys in `papo train`'s and `papo sft`'s
 * `data` (`taskOf` builds the task from them).
 */
export const TASK_DATA_KEYS = {
  task: taskFactories
    .name()
    .default('digits')
    .describe('a registered task: digits, scenes, manifest (a JSONL manifest), dataset (parquet / JSONL / JSON files) or your own'),
  families: z.array(z.string()).optional().describe('families to train and evaluate on (default all)'),
  manifest: z.string().optional().describe('JSONL manifest of a user dataset (implies task: manifest)'),
  train_files: dataFiles().optional().describe('dataset: training .parquet / .jsonl / .json files or folders of them, path or list (implies task: dataset)'),
  val_files: dataFiles()
    .optional()
    .describe('dataset: evaluation files, both the validation and the test split (default: 10 % + 10 % of train_files by a hash of the id)'),
  prompt_key: z.string().min(1).default(DEFAULT_PROMPT_KEY).describe("dataset: the column of the question (an '<image>' placeholder in it is removed)"),
  answer_key: z.string().min(1).default(DEFAULT_ANSWER_KEY).describe('dataset: the column of the ground-truth answer'),
  image_key: z
    .string()
    .min(1)
    .default(DEFAULT_IMAGE_KEY)
    .describe('dataset: the column of the image: a list of one {bytes, path} struct, binary data or a path'),
  image_dir: z.string().optional().describe("dataset: where image paths resolve, and what they may not leave (default: the data file's folder)"),
  format_prompt: z.string().optional().describe('dataset: a template file applied to every question ({{ content }} substitution only)'),
  max_prompt_length: z
    .number()
    .int()
    .min(2)
    .max(MAX_PROMPT_LENGTH)
    .default(MAX_PROMPT_LENGTH)
    .describe("dataset: prompt tokens (the question's characters + 1); longer prompts are dropped or refused (filter_overlong_prompts)"),
  filter_overlong_prompts: z.boolean().default(true).describe('dataset: drop rows whose prompt is over max_prompt_length (false: they are errors)'),
  max_rows: posInt()
    .default(DEFAULT_MAX_ROWS)
    .describe('dataset / manifest: records all its files may have together (held decoded in memory: about 7 KB each at 28 x 56)'),
  max_dataset_bytes: posInt().default(DEFAULT_MAX_DATASET_BYTES).describe('dataset / manifest: bytes all its files may have together (checked before reading)'),
  max_row_bytes: posInt().default(DEFAULT_MAX_ROW_BYTES).describe('dataset: bytes one row may have (a JSON line; a parquet row and its row group)'),
  allow_outside_manifest_dir: z
    .boolean()
    .default(false)
    .describe("let manifest (and dataset) image paths lead outside the manifest's directory (dataset: image_dir) (../x, absolute paths, links out)"),
  max_image_bytes: posInt().default(DEFAULT_MAX_IMAGE_BYTES).describe('bytes one manifest or dataset image may have (checked before reading or decoding)'),
  max_image_pixels: posInt()
    .default(DEFAULT_MAX_IMAGE_PIXELS)
    .describe('pixels one manifest or dataset image may have (from its header, checked before decoding)'),
  task_seed: nonNegInt().default(0).describe('seed of the task generator (which digits, which questions)'),
};

const TaskDataSchema = z.object(TASK_DATA_KEYS);
/** The `data` keys `taskOf` reads (`digits`: `papo sft`'s digits per canvas). */
export type TaskData = z.output<typeof TaskDataSchema> & { digits?: number };

const DataSchema = z
  .object({
    ...TASK_DATA_KEYS,
    rollout_batch_size: posInt().default(32).describe('prompts per rollout step'),
    seed: nonNegInt().default(1).describe('seed of data order, sampling, masks and mini-batch order'),
    shuffle: z.boolean().default(true).describe('shuffle the training records each epoch'),
    max_response_length: posInt().optional().describe("tokens a response may have (default: the policy's maxResponseLen)"),
    val_split: z.enum(['validation', 'test']).default('validation').describe('split of the in-training evaluation'),
    rollouts_path: z.string().optional().describe('train offline on the rollout log of this run directory instead of sampling (papo train --from-rollouts)'),
  })
  .strict();

const ActorSchema = z
  .object({
    model: z
      .object({
        model_path: z.string().default(SHIPPED_WARM_START).meta({
          description: 'policy weights to start from (a papo sft weights directory, a checkpoint, or a run directory: its latest complete checkpoint)',
          defaultText: 'the shipped warm start (warmStartPath)',
        }),
      })
      .strict()
      .default({ model_path: SHIPPED_WARM_START }),
    engine: z
      .enum(['auto', 'ort', 'tfjs'])
      .default('auto')
      .describe(
        "update engine: ort (onnxruntime, gradients generated from the policy's ONNX graph, in two worker threads that each take half of a micro-batch's rows), tfjs (the reference), or auto: tfjs on tfjs-node-gpu, else ort",
      ),
    global_batch_size: nonNegInt().default(16).describe('prompts per optimizer step (mini-batch); 0 = the whole rollout batch'),
    micro_batch_size_per_device_for_update: posInt().default(64).describe('responses per forward/backward pass; gradients accumulate over them'),
    ppo_epochs: posInt().default(1).describe('passes over each rollout batch'),
    share_prefix: z
      .boolean()
      .default(true)
      .describe(
        "the update's passes (engine ort) compute each prompt's image and prompt once for the G responses (and the masked view) that share them (false: a full pass per response; values differ in their last bits). A run saved before this key resumes and replays with false, the pass it trained with",
      ),
    shuffle: z.boolean().default(true).describe('shuffle groups between mini-batches'),
    max_grad_norm: z.number().finite().nonnegative().default(1).describe('clip the global gradient norm (0 = off)'),
    optim: z
      .object({
        lr: z.number().finite().positive().default(2e-5).describe('AdamW learning rate'),
        weight_decay: z.number().finite().nonnegative().default(0.01).describe('decoupled weight decay (matrices only)'),
        betas: z
          .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
          .default([0.9, 0.999])
          .describe('AdamW betas'),
        lr_warmup_steps: nonNegInt().default(0).describe('linear warm-up, in optimizer steps'),
      })
      .strict()
      .default({ lr: 2e-5, weight_decay: 0.01, betas: [0.9, 0.999], lr_warmup_steps: 0 }),
  })
  .strict();

const RolloutSchema = z
  .object({
    n: posInt().default(8).describe('responses per prompt (the group size G)'),
    temperature: z
      .number()
      .finite()
      .nonnegative()
      .default(0.7)
      .describe('sampling temperature (the paper: 1.0; 0.7 measured better here, see docs/benchmarks.md)'),
    top_p: z.number().gt(0).max(1).default(1).describe('nucleus sampling cut (1 = none)'),
    top_k: z.number().int().min(-1).default(-1).describe('top-k cut (-1 or 0 = none)'),
    threads: posInt().default(2).describe('onnxruntime threads of the engine (sampling and log-probs), shared evenly by its data_parallel_size workers'),
    data_parallel_size: posInt()
      .default(2)
      .describe(
        'engine worker threads, each with its own sessions and copy of the weights, each taking a contiguous part of every sampling and log-prob call (at most threads; 1: one worker of threads intra-op threads, which waits on its threads at every node). Sampled log-probs differ from another size in their last bits. A run saved before this key resumes and replays with 1',
      ),
    fused_logprobs: z.boolean().default(true).describe('the masked-view and reference log-probs of a step in one engine call (the same values as two calls)'),
    share_prefix: z
      .boolean()
      .default(true)
      .describe(
        "teacher-forced log-probs compute each prompt's image and prompt once for its G responses, as sampling does (false: a full pass per response; values differ in their last bits)",
      ),
    shard_size: posInt()
      .optional()
      .describe(
        'prompts per shard: each sampling round is cut into shards that sample, score and take the masked-view and reference log-probs on their own (in this process, or on rollout workers with backend nats); unset: the whole round at once, the graph of the single-process run',
      ),
    backend: z
      .enum(['local', 'nats'])
      .optional()
      .describe("where shards run: 'local' (default) in this process; 'nats' on rollout workers (papo worker) over NATS JetStream"),
    nats: z
      .object({
        url: z
          .string()
          .default('nats://127.0.0.1:4222')
          .describe(
            'NATS server(s) of backend nats, comma-separated; credentials never here: PAPO_NATS_TOKEN, PAPO_NATS_USER / PAPO_NATS_PASSWORD or creds_file',
          ),
        creds_file: z.string().optional().describe('a NATS credentials file (.creds: JWT and nkey seed) of backend nats'),
        nkey_file: z.string().optional().describe('a file holding the NATS nkey seed (SU...) the trainer connects with'),
        tls_ca_file: z.string().optional().describe('TLS of backend nats: the CA certificate the server is checked against (any tls_ key turns TLS on)'),
        tls_cert_file: z.string().optional().describe("TLS of backend nats: this trainer's client certificate (with tls_key_file)"),
        tls_key_file: z.string().optional().describe("TLS of backend nats: the client certificate's key"),
        result_timeout_s: z
          .number()
          .finite()
          .positive()
          .default(600)
          .describe(
            'seconds without a new shard result before the round fails (after a tenth of it, or 10 s, the trainer says it waits and how many shards are pending)',
          ),
        retry_timeout_s: z
          .number()
          .finite()
          .nonnegative()
          .default(600)
          .describe(
            'seconds a NATS call (a publish, a weight upload, a read) keeps retrying a server that does not answer before the run fails naming the call (0: no bound); the trainer says once that it waits',
          ),
        ack_wait_s: z
          .number()
          .finite()
          .positive()
          .default(60)
          .describe(
            "seconds a worker may hold a shard job without a sign of life before it is redelivered to another (the workers' consumer; workers signal about 3 times per ack wait while they work, so long shards are not redelivered)",
          ),
      })
      .strict()
      .optional()
      .describe('the NATS connection of backend nats'),
  })
  .strict();

const RewardSchema = z
  .object({
    score_function: z
      .string()
      .superRefine((spec, ctx) => {
        const problem = scoreFunctionProblem(spec);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('composite')
      .describe(
        "a registered reward ('composite': 0.9 accuracy + 0.1 format) or ./file.ts:export of your own (EasyR1's reward_function is accepted for it: path:function, main when not named)",
      ),
    reward_type: z
      .enum(REWARD_TYPES)
      .optional()
      .describe(
        "how a plain function of a reward file is called (EasyR1's): 'sequential' once per response, 'batch' with a list of inputs (a chunk of a step's responses per reward worker) returning a list; default: the file's REWARD_TYPE export, else sequential",
      ),
    timeout_ms: z
      .number()
      .finite()
      .positive()
      .max(2 ** 31 - 1)
      .default(10_000)
      .describe('per call; a call over it scores 0 and is counted (a call that blocks its reward worker stops it)'),
    concurrency: posInt().default(32).describe('reward calls in flight at once'),
    num_workers: posInt()
      .max(64)
      .default(2)
      .describe('worker threads that run a reward of your own (a file, or one an --import module registers); built-in rewards run in the main thread'),
    max_memory_mb: posInt()
      .min(16)
      .default(512)
      .describe("each reward worker's cap of JS heap and of buffers; past it the worker is replaced and its calls fail"),
  })
  .strict();

const TrainerSchema = z
  .object({
    max_steps: posInt()
      .optional()
      .meta({
        description: 'rollout steps; wins over total_epochs when both are set (EasyR1)',
        defaultText: `${DEFAULT_MAX_STEPS} (when total_epochs is unset)`,
      }),
    total_epochs: posInt()
      .optional()
      .describe(
        'passes over the training split: floor(training records / data.rollout_batch_size) x total_epochs rollout steps, as EasyR1 counts them (ignored when max_steps is set)',
      ),
    project_name: RUN_NAME.optional().describe('names the run directory runs/<project_name>/<experiment_name> when save_checkpoint_path is not given'),
    experiment_name: RUN_NAME.optional().describe(
      'names the run directory: runs/<experiment_name>, or runs/<project_name>/<experiment_name> (default: train, i.e. runs/train)',
    ),
    load_checkpoint_path: z
      .string()
      .optional()
      .describe(
        "a new run starts from this checkpoint (a checkpoints/step_N directory, or a run directory: its latest): its weights, optimizer state, step and data position; the reference policy stays model_path's weights",
      ),
    val_generations_to_log: nonNegInt()
      .default(0)
      .describe('at each validation, this many generations (prompt, response, answer, score) as TensorBoard text and in <run>/val_generations.jsonl'),
    max_staleness: nonNegInt().default(0).describe('policy versions between sampling and update (0 = strictly on-policy; 1 overlaps sampling with the update)'),
    max_inflight_batches: posInt().optional().describe('rollout batches between source and sink (default max_staleness + 1)'),
    val_freq: nonNegInt().default(0).describe('evaluate on data.val_split every n steps (0 = never)'),
    val_before_train: z.boolean().default(false).describe('evaluate on data.val_split before training'),
    val_limit: nonNegInt().default(250).describe('records of the in-training evaluation (0 = the whole split)'),
    test_before_and_after: z.boolean().default(true).describe('greedy accuracy on the held-out test split before and after training'),
    test_limit: nonNegInt().default(0).describe('records of the before/after test (0 = the whole split)'),
    test_k: nonNegInt()
      .default(0)
      .describe('also sample k responses per test prompt at test_temperature and report their mean accuracy, avg@k (the paper: avg@8 at 1.0); 0 = greedy only'),
    test_temperature: z.number().finite().nonnegative().default(1).describe('sampling temperature of the avg@k test'),
    test_errors: z
      .boolean()
      .default(false)
      .describe('classify the greedy failures of the before/after test: perception, reasoning, calculation, inconsistency, format (papo eval --errors)'),
    save_freq: nonNegInt().default(5).describe('write a checkpoint every n steps, as well as at the end (0 = at the end only)'),
    save_limit: nonNegInt().default(3).describe('checkpoints kept: the newest n, plus the best by save_best_metric (0 = keep all)'),
    save_best_metric: z.string().optional().describe("metric whose best checkpoint is always kept, e.g. 'val-core/accuracy/overall'"),
    save_best_mode: z.enum(['max', 'min']).default('max').describe('whether save_best_metric is better higher or lower'),
    save_checkpoint_path: z.string().default('runs/train').meta({
      description: 'run directory: checkpoints/, rollouts/, metrics.jsonl, log.jsonl',
      defaultText: 'runs/train, or runs/[<project_name>/]<experiment_name> when either is set',
    }),
    resume_mode: z
      .enum(['disable', 'auto'])
      .default('disable')
      .describe("'auto': continue the run in save_checkpoint_path from its latest checkpoint (papo train --resume)"),
    logger: z
      .array(z.enum(['console', 'tensorboard', 'file']))
      .default(['console', 'tensorboard'])
      .describe(
        "where each step's metrics go besides metrics.jsonl (always written): 'console' the progress line, 'tensorboard' event files in <run>/tensorboard/, 'file' (EasyR1's: a JSON line per step in the run directory) is metrics.jsonl itself (verl's key; other verl loggers are refused by name)",
      ),
    rollout_log: z.boolean().default(true).describe('log every rollout step to <run>/rollouts/ (replay, offline training)'),
    max_consecutive_skipped_steps: nonNegInt()
      .default(3)
      .describe(
        'stop the run with an error after this many steps in a row whose every update was skipped (every reward failed, or non-finite losses); 0 = never',
      ),
    max_reward_failure_rate: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        'stop the run with an error, naming the failures, when more than this share of the reward calls of the last reward_failure_window steps failed (each scores 0); 1 = never',
      ),
    reward_failure_window: posInt().default(5).describe('steps whose reward calls max_reward_failure_rate is taken over (fewer at the start of a run)'),
    test_reward: z
      .enum(['task', 'score_function'])
      .default('task')
      .describe(
        "what scores the before/after test and validation: task, the task's own verifier (the composite reward: the record's answer); score_function, worker.reward.score_function",
      ),
    stop_on_loss_hacking: z.boolean().default(false).describe('stop the run when the loss-hacking watch fires'),
    loss_hacking_kl_prcp: z.number().finite().positive().default(0.5).describe('watch: kl_prcp above this (healthy runs stay near 0.03) ...'),
    loss_hacking_accuracy_drop: z.number().finite().positive().default(0.1).describe('... while accuracy fell this much below its best'),
    loss_hacking_window: posInt().default(5).describe('steps averaged by the watch'),
    loss_hacking_entropy_rise: z
      .number()
      .finite()
      .nonnegative()
      .default(1.5)
      .describe('... or while the entropy of the sampled tokens is this many times its lowest (0 = not watched)'),
    loss_hacking_kl_prcp_general: z
      .number()
      .finite()
      .nonnegative()
      .default(0.02)
      .describe('watch, alone: kl_prcp on the questions that need no image above this (healthy runs stay near 0.005; 0 = not watched)'),
  })
  .strict();

const AlgorithmSchema = z
  .object({
    preset: z
      .enum(Object.keys(PRESETS) as [PresetName, ...PresetName[]])
      .default('papo_g')
      .describe('grpo | dapo | papo_g | papo_d | vppo; other keys override it'),
  })
  .catchall(z.unknown());

export const TrainConfigSchema = z
  .object({
    data: DataSchema.default(DataSchema.parse({})),
    algorithm: AlgorithmSchema.default({ preset: 'papo_g' }),
    worker: z
      .object({
        actor: ActorSchema.default(ActorSchema.parse({})),
        rollout: RolloutSchema.default(RolloutSchema.parse({})),
        reward: RewardSchema.default(RewardSchema.parse({})),
      })
      .strict()
      .default({ actor: ActorSchema.parse({}), rollout: RolloutSchema.parse({}), reward: RewardSchema.parse({}) }),
    trainer: TrainerSchema.default(TrainerSchema.parse({})),
  })
  .strict();

export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
type Parsed = z.output<typeof TrainConfigSchema>;
/** The validated config, with `algorithm` resolved to the full objective (preset + overrides). */
export type TrainConfig = Omit<Parsed, 'algorithm'> & { algorithm: ObjectiveConfig & { preset: PresetName } };

/** Validates a run config; errors name the full key path (`worker.rollout.n: ...`). */
export function trainConfig(input: unknown = {}): TrainConfig {
  return resolveTrainConfig(input).config;
}

/**
 * The validated config and what to say at start about how it was read: EasyR1 keys that do not apply
 * here, and the effective objective when objective keys were given beside a preset. Every problem of the
 * document (unknown keys in any section, the objective's included) is reported in one error.
 */
export function resolveTrainConfig(input: unknown = {}): { config: TrainConfig; notes: string[] } {
  const t = translateEasyR1(impliedTask(input ?? {}));
  const named = namedRunDir(t.input);
  const problems = [...t.problems];
  const parsed = TrainConfigSchema.safeParse(named);
  if (!parsed.success) problems.push(...issueLines(parsed.error));
  // The objective is judged even when other sections are wrong, so that every unknown key is named at once.
  const algorithm = isMapping(named) && isMapping(named.algorithm) ? named.algorithm : {};
  const { preset: givenPreset, ...overrides } = algorithm;
  const preset: PresetName = parsed.success
    ? parsed.data.algorithm.preset
    : typeof givenPreset === 'string' && givenPreset in PRESETS
      ? (givenPreset as PresetName)
      : 'papo_g';
  const r = ObjectiveConfigSchema.safeParse({ ...PRESETS[preset], ...overrides });
  if (!r.success) problems.push(...issueLines(r.error, ['algorithm']));
  else problems.push(...objectiveProblems(t, r.data, preset));
  if (parsed.success) {
    try {
      checkTaskData(parsed.data.data, 'run config');
    } catch (err) {
      problems.push((err as Error).message.replace(/^invalid run config: /, ''));
    }
  }
  if (problems.length || !parsed.success || !r.success) throw new Error(`invalid run config: ${problems.join('; ')}`);
  const objective: ObjectiveConfig = r.data;
  const notes = [...t.notes];
  const line = effectiveObjectiveLine(preset, overrides, t.mapped, objective);
  if (line) notes.push(line);
  // zod hands out nested default objects by reference: without the copy, mutating one config changes the next one's defaults
  const config = structuredClone({ ...parsed.data, algorithm: { preset, ...objective } });
  if (config.trainer.max_steps === undefined && config.trainer.total_epochs === undefined) config.trainer.max_steps = DEFAULT_MAX_STEPS;
  return { config, notes };
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `data.manifest` with no `data.task` means the manifest task; `data.train_files`, the dataset task. */
export function impliedTask(input: unknown): unknown {
  const data = (input as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return input;
  const d = data as Record<string, unknown>;
  if (d.task !== undefined) return input;
  if (d.manifest !== undefined) return { ...(input as object), data: { ...d, task: 'manifest' } };
  if (d.train_files !== undefined) return { ...(input as object), data: { ...d, task: 'dataset' } };
  return input;
}

/** The data a task reads is given to that task, and only to it: `papo train`'s and `papo sft`'s check. */
export function checkTaskData(data: Pick<TaskData, 'task' | 'manifest' | 'train_files' | 'val_files'>, what: string): void {
  const { task, manifest } = data;
  if (manifest !== undefined && task !== 'manifest')
    throw new Error(`invalid ${what}: data.manifest is only read by data.task manifest, but data.task is ${task}`);
  if (task === 'manifest' && manifest === undefined) throw new Error(`invalid ${what}: data.manifest: data.task manifest needs a manifest path`);
  for (const key of ['train_files', 'val_files'] as const) {
    if (data[key] !== undefined && task !== 'dataset')
      throw new Error(`invalid ${what}: data.${key} is only read by data.task dataset, but data.task is ${task}`);
  }
  if (task === 'dataset' && data.train_files === undefined) throw new Error(`invalid ${what}: data.train_files: data.task dataset needs train files`);
}

/** Every key of the run config with its default and help: the README's reference and `papo train --help`. */
export function describeConfig(): ConfigKey[] {
  return describeSchema(TrainConfigSchema).map((k) =>
    k.key === 'algorithm.preset' ? { ...k, help: `${k.help} (algorithm.kl_coef, algorithm.mask_ratio, ...: the objective's keys)` } : k,
  );
}

/**
 * Keys a resumed run may change: they do not alter what the run computes (`worker.reward.timeout_ms` and
 * `max_memory_mb` could, if calls time out or run out of memory; `worker.rollout.threads` changes the last
 * bits of the sampled log-probs, and a resume that changes it says so; they are listed so a slow or small
 * machine can resume). Everything else must match the checkpoint's config.
 */
export const RESUME_SAFE_KEYS = [
  'trainer.max_steps',
  'trainer.total_epochs',
  'trainer.project_name',
  'trainer.experiment_name',
  'trainer.val_generations_to_log',
  'trainer.load_checkpoint_path',
  'trainer.val_freq',
  'trainer.val_before_train',
  'trainer.val_limit',
  'trainer.test_before_and_after',
  'trainer.test_limit',
  'trainer.test_k',
  'trainer.test_temperature',
  'trainer.test_errors',
  'trainer.save_freq',
  'trainer.save_limit',
  'trainer.save_best_metric',
  'trainer.save_best_mode',
  'trainer.save_checkpoint_path',
  'trainer.resume_mode',
  'trainer.rollout_log',
  'trainer.logger',
  'trainer.stop_on_loss_hacking',
  'trainer.loss_hacking_kl_prcp',
  'trainer.loss_hacking_accuracy_drop',
  'trainer.loss_hacking_window',
  'trainer.loss_hacking_entropy_rise',
  'trainer.loss_hacking_kl_prcp_general',
  'worker.rollout.threads',
  'worker.rollout.fused_logprobs',
  // where shards run changes nothing they compute (shard_size does, and is not listed)
  'worker.rollout.backend',
  'worker.rollout.nats.url',
  'worker.rollout.nats.creds_file',
  'worker.rollout.nats.nkey_file',
  'worker.rollout.nats.tls_ca_file',
  'worker.rollout.nats.tls_cert_file',
  'worker.rollout.nats.tls_key_file',
  'worker.rollout.nats.result_timeout_s',
  'worker.rollout.nats.ack_wait_s',
  'worker.rollout.nats.retry_timeout_s',
  'worker.reward.timeout_ms',
  'worker.reward.concurrency',
  'worker.reward.num_workers',
  'worker.reward.max_memory_mb',
  'trainer.max_consecutive_skipped_steps',
  'trainer.max_reward_failure_rate',
  'trainer.reward_failure_window',
  'trainer.test_reward',
  // what a manifest or dataset may read: records they let in or keep out change the data, which the stream cursor's fingerprint refuses
  'data.allow_outside_manifest_dir',
  'data.max_image_bytes',
  'data.max_image_pixels',
  'data.max_rows',
  'data.max_dataset_bytes',
  'data.max_row_bytes',
];

/** Every leaf of a config as `dotted.key -> JSON value`. */
export function flattenConfig(cfg: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (cfg !== null && typeof cfg === 'object' && !Array.isArray(cfg)) {
    for (const [k, v] of Object.entries(cfg)) for (const [kk, vv] of flattenConfig(v, prefix ? `${prefix}.${k}` : k)) out.set(kk, vv);
  } else out.set(prefix, JSON.stringify(cfg));
  return out;
}

/**
 * The keys whose values differ between two configs, split into those a resume may change and the rest. With
 * `defaults` (a config of this version's defaults), a key the saved config lacks (one added since it was
 * saved) is unchanged when its value now is its default, which by construction computes what the run did.
 */
export function configChanges(
  saved: unknown,
  now: unknown,
  safeKeys: readonly string[] = RESUME_SAFE_KEYS,
  defaults?: unknown,
): { safe: string[]; unsafe: string[] } {
  const a = flattenConfig(saved);
  const b = flattenConfig(now);
  const d = defaults === undefined ? undefined : flattenConfig(defaults);
  const changed = [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => a.get(k) !== b.get(k))
    .filter((k) => !(d && !a.has(k) && b.has(k) && d.get(k) === b.get(k)))
    .sort();
  const describe = (k: string) => `${k}: ${a.get(k) ?? '(unset)'} -> ${b.get(k) ?? '(unset)'}`;
  return {
    safe: changed.filter((k) => safeKeys.includes(k)).map(describe),
    unsafe: changed.filter((k) => !safeKeys.includes(k)).map(describe),
  };
}

/** What `configChanges` takes as `defaults` for a run config: this version's defaults with the run's preset. */
export const defaultsLike = (cfg: TrainConfig): TrainConfig => trainConfig({ algorithm: { preset: cfg.algorithm.preset } });

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

/** The task options the `data` keys name (what `taskOf` builds; a weights directory's meta records them). */
export function taskConfigOf(data: TaskData): TaskConfig {
  const images = {
    allowOutsideManifestDir: data.allow_outside_manifest_dir,
    maxImageBytes: data.max_image_bytes,
    maxImagePixels: data.max_image_pixels,
    maxRows: data.max_rows,
    maxDatasetBytes: data.max_dataset_bytes,
  };
  const list = (v: string | string[] | undefined) => (v === undefined ? undefined : typeof v === 'string' ? [v] : v);
  const dataset = {
    trainFiles: list(data.train_files),
    ...(data.val_files === undefined ? {} : { valFiles: list(data.val_files) }),
    promptKey: data.prompt_key,
    answerKey: data.answer_key,
    imageKey: data.image_key,
    ...(data.image_dir === undefined ? {} : { imageDir: data.image_dir }),
    ...(data.format_prompt === undefined ? {} : { formatPrompt: data.format_prompt }),
    maxPromptLength: data.max_prompt_length,
    filterOverlongPrompts: data.filter_overlong_prompts,
    maxRowBytes: data.max_row_bytes,
  };
  return {
    task: data.task,
    seed: data.task_seed,
    families: data.families,
    manifest: data.manifest,
    ...(data.digits === undefined ? {} : { digits: data.digits }),
    ...(data.task === 'manifest' || data.task === 'dataset' ? images : {}),
    ...(data.task === 'dataset' ? dataset : {}),
  };
}

/** The task a run config names: what `papo train` and `papo sft` train on, and what `papo replay` and `papo rollouts` rebuild. */
export function taskOf(data: TaskData): Task {
  return createTask(taskConfigOf(data));
}

/** What a reader of a saved run lets its manifest read: given on the reader's command line, never by the run. */
export interface ImageReadingOptions {
  allowOutsideManifestDir?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
}

/**
 * The `data` of another run's saved config (`papo replay`, `papo rollouts`) with the image-reading keys
 * replaced by the reader's: a config.json from elsewhere cannot opt its manifest out of the manifest's
 * directory or raise the image limits, exactly as a checkpoint's task cannot for `papo eval`.
 */
export function confinedTaskData<D extends TaskData>(data: D, opts: ImageReadingOptions = {}): D {
  return {
    ...data,
    allow_outside_manifest_dir: opts.allowOutsideManifestDir ?? false,
    max_image_bytes: opts.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
    max_image_pixels: opts.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
  };
}

/** The loss-hacking watch's options (operators/watch-loss-hacking.ts) as the run config's `trainer` sets them. */
export function lossHackingOptions(
  trainer: Pick<
    TrainConfig['trainer'],
    'loss_hacking_kl_prcp' | 'loss_hacking_accuracy_drop' | 'loss_hacking_window' | 'loss_hacking_entropy_rise' | 'loss_hacking_kl_prcp_general'
  >,
) {
  return {
    klPrcpThreshold: trainer.loss_hacking_kl_prcp,
    accuracyDrop: trainer.loss_hacking_accuracy_drop,
    window: trainer.loss_hacking_window,
    entropyRise: trainer.loss_hacking_entropy_rise,
    generalKlPrcp: trainer.loss_hacking_kl_prcp_general,
  };
}

/**
 * Keys added since the first saved runs whose default changes what a run computes, with the value a run
 * saved before them was trained with: `worker.actor.share_prefix` false (the update's full pass),
 * `worker.rollout.data_parallel_size` 1 (one engine worker: the sampled log-probs' last bits).
 */
const ADDED_KEYS: readonly { section: 'actor' | 'rollout'; key: string; before: unknown }[] = [
  { section: 'actor', key: 'share_prefix', before: false },
  { section: 'rollout', key: 'data_parallel_size', before: 1 },
];

/**
 * A saved run config as this version reads it. A saved config holds every key of the version that wrote it,
 * so a key missing from it was added since; where that key's default would change what the run computes, it
 * takes the value the run was trained with (`ADDED_KEYS`), so a resumed or replayed older run computes what
 * it did, to the bit.
 */
export function savedTrainConfig<T>(raw: T): T {
  return withKeys(raw, missingKeys(raw));
}

/**
 * The config a run resumed from `saved` continues with: a key added since the run was saved, which the
 * command line (`input`) does not set, takes the value the run was trained with (as `savedTrainConfig`
 * reads it), not this version's default; e.g. a study continued with its study file. A saved config that has
 * the key, or a command line that sets it, follows the usual rules (a change is refused).
 */
export function withSavedKeys(cfg: TrainConfig, input: unknown, saved: unknown): TrainConfig {
  const given = flattenConfig(input);
  return withKeys(
    cfg,
    missingKeys(saved).filter((k) => !given.has(`worker.${k.section}.${k.key}`)),
  );
}

/** The added keys a saved config lacks (none for what is not a saved config's shape). */
function missingKeys(saved: unknown): (typeof ADDED_KEYS)[number][] {
  const worker = (saved as { worker?: Record<string, unknown> } | null)?.worker;
  const isObject = (x: unknown): x is object => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(worker)) return [];
  return ADDED_KEYS.filter((k) => isObject(worker[k.section]) && !(k.key in (worker[k.section] as object)));
}

function withKeys<T>(c: T, keys: readonly (typeof ADDED_KEYS)[number][]): T {
  if (keys.length === 0) return c;
  const worker = { ...(c as { worker: Record<string, object> }).worker };
  for (const k of keys) worker[k.section] = { ...worker[k.section], [k.key]: k.before };
  return { ...c, worker };
}

/**
 * The saved config of the `papo train` run in `runDir` (its config.json), for a command that reads the run
 * (`replay`, `rollouts`, `train --resume`): errors name the file, and with `validate` the key.
 */
export function readRunConfig(runDir: string, command: string): Record<string, unknown>;
export function readRunConfig(runDir: string, command: string, validate: true): TrainConfig;
export function readRunConfig(runDir: string, command: string, validate = false): Record<string, unknown> | TrainConfig {
  const file = path.join(runDir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${command}: ${runDir} is not a papo train run (no config.json)`);
    throw new Error(`${command}: cannot read ${file}: ${code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${command}: ${file} is not valid JSON (cut short, or edited): it is the run's saved config`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${command}: ${file} does not hold a run config (a JSON object)`);
  value = savedTrainConfig(value);
  if (!validate) return value as Record<string, unknown>;
  try {
    return trainConfig(value);
  } catch (err) {
    throw new Error(`${command}: ${file}: ${(err as Error).message}`);
  }
}
