/**
 * Resolving `worker.reward.score_function` to a reward function, the way EasyR1 names one:
 * `composite` (the paper's 0.9 accuracy + 0.1 format), or `path/to/file.ts:exportName` (default export
 * when the name is omitted) of the user's own. The export may be a `RewardFunction` (from `defineReward`
 * / `defineBatchReward`) or a plain function `(input) => { overall, accuracy, format }`, sync or async.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compositeReward } from '../tasks/rewards/composite.ts';
import { defineReward, type RewardFunction, type SingleRewardFunction } from '../tasks/rewards/types.ts';

export const BUILTIN_REWARDS: Record<string, () => RewardFunction> = {
  composite: () => compositeReward(),
};

export async function loadRewardFunction(spec: string, baseDir = process.cwd()): Promise<RewardFunction> {
  const builtin = BUILTIN_REWARDS[spec];
  if (builtin) return builtin();
  const colon = spec.lastIndexOf(':');
  // `C:\x.ts` has a colon at 1: only a colon after the file's extension separates the export name.
  const hasName = colon > 1 && /\.[cm]?[jt]s$/.test(spec.slice(0, colon));
  const file = hasName ? spec.slice(0, colon) : spec;
  const name = hasName ? spec.slice(colon + 1) : 'default';
  if (!/\.[cm]?[jt]s$/.test(file)) {
    throw new Error(`worker.reward.score_function: '${spec}' is neither a built-in (${Object.keys(BUILTIN_REWARDS).join(', ')}) nor a .ts/.js file with :export`);
  }
  const where = path.resolve(baseDir, file);
  if (!fs.existsSync(where)) throw new Error(`worker.reward.score_function: file ${where} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(where).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`worker.reward.score_function: cannot load ${where}: ${(err as Error).message}`);
  }
  const fn = mod[name];
  if (fn === undefined) {
    throw new Error(`worker.reward.score_function: ${where} has no export '${name}' (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  if (typeof fn === 'function') return defineReward(name === 'default' ? path.basename(file) : name, fn as SingleRewardFunction['score']);
  if (fn && typeof fn === 'object' && 'mode' in fn && (('score' in fn && typeof fn.score === 'function') || ('scoreBatch' in fn && typeof fn.scoreBatch === 'function'))) {
    return fn as RewardFunction;
  }
  throw new Error(`worker.reward.score_function: export '${name}' of ${where} is neither a function nor a reward from defineReward / defineBatchReward`);
}
