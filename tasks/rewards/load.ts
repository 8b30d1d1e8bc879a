/**
 * A reward function from the user's file, as `worker.reward.score_function` names one: `path/to/file.ts:export`
 * (the default export when `:export` is omitted). The export may be a `RewardFunction` (from `defineReward` /
 * `defineBatchReward`) or a plain function `(input) => { overall, accuracy, format }`, sync or async. Used by
 * the reward workers (pool-worker.ts), which import the file; and by `loadRewardFunction`
 * (pipelines/reward-function.ts) for a program that runs a reward in its own thread.
 */
import * as path from 'node:path';
import { importUserModule } from '../../util/user-module.ts';
import { defineReward, isRewardFunction, type RewardFunction, type SingleRewardFunction } from './types.ts';

/** The config key that names a reward, in errors. */
export const SCORE_FUNCTION_KEY = 'worker.reward.score_function';

/** `file.ts:name` split into its file and export name (`default` when omitted); undefined unless a .ts/.js file. */
export function splitRewardSpec(spec: string): { file: string; name: string } | undefined {
  const colon = spec.lastIndexOf(':');
  // `C:\x.ts` has a colon at 1: only a colon after the file's extension separates the export name.
  const hasName = colon > 1 && /\.[cm]?[jt]s$/.test(spec.slice(0, colon));
  const file = hasName ? spec.slice(0, colon) : spec;
  const name = hasName ? spec.slice(colon + 1) : 'default';
  return /\.[cm]?[jt]s$/.test(file) ? { file, name } : undefined;
}

/** Imports the file of a `file.ts:export` spec (relative paths against `baseDir`) and returns the reward it exports. */
export async function importRewardFile(spec: { file: string; name: string }, baseDir: string): Promise<RewardFunction> {
  const { file, name } = spec;
  const { where, exports } = await importUserModule(file, baseDir, SCORE_FUNCTION_KEY);
  const fn = exports[name];
  if (fn === undefined) {
    throw new Error(`${SCORE_FUNCTION_KEY}: ${where} has no export '${name}' (exports: ${Object.keys(exports).join(', ') || 'none'})`);
  }
  if (typeof fn === 'function') return defineReward(name === 'default' ? path.basename(file) : name, fn as SingleRewardFunction['score']);
  if (isRewardFunction(fn)) return fn;
  throw new Error(`${SCORE_FUNCTION_KEY}: export '${name}' of ${where} is neither a function nor a reward from defineReward / defineBatchReward`);
}
