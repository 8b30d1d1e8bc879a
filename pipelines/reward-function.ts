/**
 * Resolving `worker.reward.score_function` to a reward, the way EasyR1 names one: a registered name
 * (`composite`, the paper's 0.9 accuracy + 0.1 format, or one added with `registerReward`), or
 * `path/to/file.ts:exportName` (default export when the name is omitted) of the user's own. The export may
 * be a `RewardFunction` (from `defineReward` / `defineBatchReward`) or a plain function
 * `(input) => { overall, accuracy, format }`, sync or async.
 *
 * `openReward` is what a run uses: the built-in rewards run in the calling thread; user reward code (a
 * reward file, or a reward registered by a module given with `--import`) runs in the worker pool of
 * tasks/rewards/pool.ts, and the calling thread never imports or calls it. `loadRewardFunction` imports a
 * reward into the calling thread, for a program that wants it there.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { importRewardFile, SCORE_FUNCTION_KEY, splitRewardSpec, type RewardType } from '../tasks/rewards/load.ts';
import { RewardPool } from '../tasks/rewards/pool.ts';
import { BUILT_IN_REWARDS, rewardFunctions } from '../tasks/rewards/registry.ts';
import { inThreadScorer, type RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import { extensionModules } from '../util/user-module.ts';

/**
 * The spec with its file made absolute against `baseDir`; anything else is returned unchanged for
 * loadRewardFunction to judge. `papo train` resolves a config file's `score_function` against the config
 * file's directory this way, so the reward file can sit next to the config.
 */
export function resolveScoreFunction(spec: string, baseDir: string): string {
  const s = rewardFunctions.has(spec) ? undefined : splitRewardSpec(spec);
  if (!s) return spec;
  const file = path.resolve(baseDir, s.file);
  return spec.length > s.file.length ? `${file}:${s.name}` : file;
}

/** What is wrong with a `score_function` value, or undefined: a registered name or a .ts/.js file spec is fine. */
export function scoreFunctionProblem(spec: string): string | undefined {
  if (rewardFunctions.has(spec) || splitRewardSpec(spec)) return undefined;
  return `'${spec}' is neither a registered reward function (${rewardFunctions.names().join(', ')}; add one with registerReward) nor a .ts/.js file with :export`;
}

/** The reward in the calling thread. Relative file paths resolve against `baseDir` (default: the current directory). */
export async function loadRewardFunction(spec: string, baseDir = process.cwd(), rewardType?: RewardType): Promise<RewardFunction> {
  if (rewardFunctions.has(spec)) return rewardFunctions.get(spec);
  const s = splitRewardSpec(spec);
  if (!s) throw new Error(`${SCORE_FUNCTION_KEY}: ${scoreFunctionProblem(spec)}`);
  return importRewardFile(s, baseDir, rewardType);
}

export interface OpenRewardOptions {
  /** Relative reward files resolve against it (default: the current directory). */
  baseDir?: string;
  /** Reward worker threads (`worker.reward.num_workers`). */
  workers?: number;
  /** Each reward worker's cap of heap and of buffers, MB (`worker.reward.max_memory_mb`). */
  maxMemoryMb?: number;
  /** Receives a stray error of the reward's code, in one line naming the reward and the record. */
  onStray?: (line: string) => void;
  /** How a plain function of a reward file is called (`worker.reward.reward_type`). */
  rewardType?: RewardType;
}

/**
 * The reward of `spec`, ready to score: a built-in in the calling thread, user code in the reward workers.
 * A reward registered by code papo did not import (a program that calls `registerReward` itself, with no
 * `--import` module to load in the workers) runs in the calling thread, where that program put it.
 * Close it when done.
 */
export async function openReward(spec: string, opts: OpenRewardOptions = {}): Promise<RewardScorer> {
  const modules = extensionModules();
  if (rewardFunctions.has(spec) && opts.rewardType !== undefined) {
    const mode = rewardFunctions.get(spec).mode === 'batch' ? 'batch' : 'sequential';
    if (mode !== opts.rewardType) throw new Error(`worker.reward.reward_type: ${opts.rewardType}, but the registered reward '${spec}' is a ${mode} reward`);
  }
  if (rewardFunctions.has(spec) && (BUILT_IN_REWARDS.includes(spec) || modules.length === 0)) return inThreadScorer(rewardFunctions.get(spec));
  if (!rewardFunctions.has(spec) && !splitRewardSpec(spec)) throw new Error(`${SCORE_FUNCTION_KEY}: ${scoreFunctionProblem(spec)}`);
  const { baseDir, workers, maxMemoryMb, onStray, rewardType } = opts;
  return RewardPool.start({ spec, baseDir, modules, workers, maxMemoryMb, onStray, rewardType });
}

/**
 * What names a reward's code across processes (a shard job carries it; a rollout worker runs the job only
 * when its own reward of that name has the same identity): `builtin:<name>` for a built-in reward,
 * `sha256:<hex>` of the module file for a reward registered by an `--import`ed module or given as a reward
 * file, `code:<name>` for one registered by a program's own code (no file to hash).
 */
export function rewardIdentity(spec: string, baseDir = process.cwd()): string {
  const name = rewardFunctions.resolve(spec);
  const hashFile = (file: string) => {
    try {
      return `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
    } catch (err) {
      throw new Error(`reward '${spec}': cannot hash its module ${file}: ${(err as Error).message}`);
    }
  };
  if (name !== undefined) {
    if (BUILT_IN_REWARDS.includes(name)) return `builtin:${name}`;
    const from = rewardFunctions.origin(name);
    return from ? hashFile(from) : `code:${name}`;
  }
  const s = splitRewardSpec(spec);
  return s ? hashFile(path.resolve(baseDir, s.file)) : `code:${spec}`;
}
