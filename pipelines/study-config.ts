/**
 * The study file of `papo study`: arms (a preset plus run-config overrides), seeds, the comparisons to make
 * and how every run is evaluated. Every arm x seed is a normal `papo train` run started from the same weights;
 * a seed is the run's `data.seed` (data order, sampling, masks and mini-batch order), while the task
 * (`data.task_seed`, hence the held-out test prompts), the starting weights and every other key stay fixed.
 *
 * @example
 * # studies/grpo-vs-papo_g.yaml
 * arms:
 *   grpo: { algorithm: { preset: grpo } }
 *   papo_g: { algorithm: { preset: papo_g } }
 * seeds: { from: 101, count: 10 }
 * compare: [[papo_g, grpo]]
 */
import * as path from 'node:path';
import { z } from 'zod';
import { applyOverrides } from '../util/overrides.ts';
import { parseConfig } from '../util/schema.ts';
import { trainConfig, type TrainConfig } from './train-config.ts';

const armName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'arm names are letters, digits, _ . - (they name directories)')
  .max(64);

/** A run config fragment: nested keys, or dotted keys (`worker.rollout.n: 4`), or both. */
const RunFragment = z.record(z.string(), z.unknown());

export const StudyConfigSchema = z
  .object({
    /** What the study is about; shown on its report. */
    title: z.string().max(200).optional(),
    /** Run config every arm starts from (nested or dotted keys). */
    base: RunFragment.default({}),
    /** Arm name -> its run config on top of `base` (e.g. `{ algorithm: { preset: grpo } }`). */
    arms: z.record(armName, RunFragment).refine((a) => Object.keys(a).length >= 1, 'a study needs at least one arm'),
    /** Seeds (each is every arm's `data.seed`): a list, or `{ from, count }`. */
    seeds: z.union([
      z.array(z.number().int().nonnegative()).min(1),
      z.object({ from: z.number().int().nonnegative(), count: z.number().int().positive().max(10_000) }).strict(),
    ]),
    /** Pairs [treatment, control]: the differences reported are treatment - control. Default: every arm against the first. */
    compare: z.array(z.tuple([armName, armName])).optional(),
    /** Modules to `--import` into every run (registries: rewards, estimators, tasks), relative to the study file. */
    import: z.array(z.string()).default([]),
    /** How each run's final weights (and the starting weights) are evaluated. */
    eval: z
      .object({
        split: z.enum(['validation', 'test']).default('test'),
        /** records (0 = the whole split) */
        limit: z.number().int().nonnegative().default(0),
        /** samples per prompt at `temperature` for avg@k (the paper: avg@8 at 1.0); 0 = greedy only */
        k: z.number().int().nonnegative().default(8),
        temperature: z.number().finite().nonnegative().default(1),
        /** sampling seed of the avg@k samples: the same for every run, so only the weights differ */
        seed: z.number().int().nonnegative().default(0),
        /** classify every greedy failure (perception, reasoning, calculation, inconsistency, format) */
        errors: z.boolean().default(true),
      })
      .strict()
      .default({ split: 'test', limit: 0, k: 8, temperature: 1, seed: 0, errors: true }),
    /** Statistics of the comparisons. */
    stats: z
      .object({
        /** confidence level of every interval */
        level: z.number().gt(0).lt(1).default(0.95),
        /** bootstrap resamples */
        reps: z.number().int().min(100).max(1_000_000).default(20_000),
        /** bootstrap interval: rliable's default 'percentile', or 'bca' */
        method: z.enum(['percentile', 'bca']).default('percentile'),
        /** seed of the resampling */
        seed: z.number().int().nonnegative().default(0),
        /** family-wise error rate of the Holm correction */
        alpha: z.number().gt(0).lt(1).default(0.05),
      })
      .strict()
      .default({ level: 0.95, reps: 20_000, method: 'percentile', seed: 0, alpha: 0.05 }),
  })
  .strict();

export type StudyConfig = z.output<typeof StudyConfigSchema>;

export interface StudyArm {
  name: string;
  /** the arm's run config (base + arm), nested, without seed or run directory */
  input: Record<string, unknown>;
  /** the same, validated */
  config: TrainConfig;
}

export interface Study {
  config: StudyConfig;
  arms: StudyArm[];
  seeds: number[];
  /** [treatment, control] */
  comparisons: [string, string][];
}

/** Nested keys and dotted keys of a fragment, merged onto `base` (later wins). */
export function mergeFragment(base: Record<string, unknown>, fragment: Record<string, unknown>, where: string): Record<string, unknown> {
  let out = structuredClone(base);
  for (const [k, v] of Object.entries(fragment)) {
    if (['__proto__', 'constructor', 'prototype'].some((bad) => k.split('.').includes(bad))) throw new Error(`${where}: key '${k}' is not allowed`);
    if (k.includes('.')) out = applyOverrides(out, [`${k}=${JSON.stringify(v)}`], (t) => JSON.parse(t));
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && out[k] !== null && typeof out[k] === 'object' && !Array.isArray(out[k]))
      out[k] = mergeFragment(out[k] as Record<string, unknown>, v as Record<string, unknown>, `${where}.${k}`);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) out[k] = mergeFragment({}, v as Record<string, unknown>, `${where}.${k}`);
    else out[k] = structuredClone(v);
  }
  return out;
}

/** Keys of a run config that the study sets per run: an arm may not set them. */
const STUDY_OWNED = ['data.seed', 'trainer.save_checkpoint_path', 'trainer.resume_mode'];

function getPath(o: Record<string, unknown>, dotted: string): unknown {
  let node: unknown = o;
  for (const k of dotted.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[k];
  }
  return node;
}

/** Validates a study document: every arm's run config is checked as `papo train` would, naming the arm. */
export function parseStudy(doc: unknown, file = 'study'): Study {
  const config = parseConfig(StudyConfigSchema, doc, `study file ${file}`);
  config.import = studyImports(config.import, file);
  const seeds = Array.isArray(config.seeds) ? config.seeds : Array.from({ length: config.seeds.count }, (_, i) => (config.seeds as { from: number }).from + i);
  if (new Set(seeds).size !== seeds.length) throw new Error(`invalid study file ${file}: seeds: a seed is listed twice`);
  const arms: StudyArm[] = Object.entries(config.arms).map(([name, fragment]) => {
    const input = mergeFragment(mergeFragment({}, config.base, 'base'), fragment, `arms.${name}`);
    for (const k of STUDY_OWNED)
      if (getPath(input, k) !== undefined) throw new Error(`invalid study file ${file}: arms.${name}: ${k} is set by the study for every run`);
    let cfg: TrainConfig;
    try {
      cfg = trainConfig(input);
    } catch (err) {
      throw new Error(`invalid study file ${file}: arms.${name}: ${(err as Error).message}`);
    }
    return { name, input, config: cfg };
  });
  const names = new Set(arms.map((a) => a.name));
  const comparisons = (config.compare ?? arms.slice(1).map((a) => [a.name, arms[0].name] as [string, string])).map(([t, c], i) => {
    for (const a of [t, c]) if (!names.has(a)) throw new Error(`invalid study file ${file}: compare.${i}: unknown arm '${a}' (arms: ${[...names].join(', ')})`);
    if (t === c) throw new Error(`invalid study file ${file}: compare.${i}: an arm compared with itself`);
    return [t, c] as [string, string];
  });
  const starts = new Set(arms.map((a) => path.resolve(a.config.worker.actor.model.model_path)));
  if (starts.size > 1) throw new Error(`invalid study file ${file}: every arm must start from the same weights (worker.actor.model.model_path differs)`);
  return { config, arms, seeds, comparisons };
}

/** The study's modules as absolute paths: relative ones are relative to the study file's directory. */
export function studyImports(modules: readonly string[], file: string): string[] {
  return modules.map((m) => path.resolve(path.dirname(path.resolve(file)), m));
}

/** `key=value` overrides (values as JSON, which `papo train` parses as YAML) of a nested run config. */
export function toOverrides(input: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(input)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...toOverrides(v as Record<string, unknown>, key));
    else out.push(`${key}=${JSON.stringify(v)}`);
  }
  return out;
}
