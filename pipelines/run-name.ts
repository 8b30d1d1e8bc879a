/**
 * The run directory EasyR1's `trainer.project_name` / `trainer.experiment_name` name when
 * `trainer.save_checkpoint_path` is not given. EasyR1 writes to checkpoints/<project_name>/<experiment_name>;
 * here runs live under runs/, so the names map to runs/<project_name>/<experiment_name>, and without a
 * project to runs/<experiment_name> (the default experiment, train, is the default run directory runs/train).
 * `tensorboard --logdir runs` then lists the run as <project_name>/<experiment_name>/tensorboard.
 */
import * as path from 'node:path';
import { z } from 'zod';

/** A project or experiment name: one path segment (letters, digits, `.`, `_`, `-`; not `.` or `..`). */
export const RUN_NAME = z
  .string()
  .regex(/^[A-Za-z0-9._-]+$/, 'must be one directory name: letters, digits, ., _ and - only')
  .refine((s) => s !== '.' && s !== '..', 'must be a directory name, not . or ..');

/** The experiment of a run named by its project only. */
export const DEFAULT_EXPERIMENT = 'train';

/** `runs/[<project_name>/]<experiment_name>`, or undefined when neither name is given. */
export function runDirOf(names: { project_name?: string; experiment_name?: string }): string | undefined {
  if (names.project_name === undefined && names.experiment_name === undefined) return undefined;
  return path.posix.join('runs', ...(names.project_name === undefined ? [] : [names.project_name]), names.experiment_name ?? DEFAULT_EXPERIMENT);
}

/** The config document with `trainer.save_checkpoint_path` set from the names when it is not given (valid names only: the schema names bad ones). */
export function namedRunDir(input: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(input) || !isMap(input.trainer) || input.trainer.save_checkpoint_path !== undefined) return input;
  const { project_name: p, experiment_name: e } = input.trainer;
  const ok = (v: unknown) => v === undefined || RUN_NAME.safeParse(v).success;
  if (!ok(p) || !ok(e)) return input;
  const dir = runDirOf({ project_name: p as string | undefined, experiment_name: e as string | undefined });
  return dir === undefined ? input : { ...input, trainer: { ...input.trainer, save_checkpoint_path: dir } };
}
