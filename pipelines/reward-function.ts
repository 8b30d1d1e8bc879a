/**
 * Resolving `worker.reward.score_function` to a reward function, the way EasyR1 names one: a registered
 * name (`composite`, the paper's 0.9 accuracy + 0.1 format, or one added with `registerReward`), or
 * `path/to/file.ts:exportName` (default export when the name is omitted) of the user's own. The export may
 * be a `RewardFunction` (from `defineReward` / `defineBatchReward`) or a plain function
 * `(input) => { overall, accuracy, format }`, sync or async.
 */
import * as path from 'node:path';
import { rewardFunctions } from '../tasks/rewards/registry.ts';
import { defineReward, isRewardFunction, type RewardFunction, type SingleRewardFunction } from '../tasks/rewards/types.ts';
import { importUserModule } from '../util/user-module.ts';

/** `file.ts:name` split into its file and export name (`default` when omitted); undefined unless a .ts/.js file. */
function splitSpec(spec: string): { file: string; name: string } | undefined {
  const colon = spec.lastIndexOf(':');
  // `C:\x.ts` has a colon at 1: only a colon after the file's extension separates the export name.
  const hasName = colon > 1 && /\.[cm]?[jt]s$/.test(spec.slice(0, colon));
  const file = hasName ? spec.slice(0, colon) : spec;
  const name = hasName ? spec.slice(colon + 1) : 'default';
  return /\.[cm]?[jt]s$/.test(file) ? { file, name } : undefined;
}

/**
 * The spec with its file made absolute against `baseDir`; anything else is returned unchanged for
 * loadRewardFunction to judge. `papo train` resolves a config file's `score_function` against the config
 * file's directory this way, so the reward file can sit next to the config.
 */
export function resolveScoreFunction(spec: string, baseDir: string): string {
  const s = rewardFunctions.has(spec) ? undefined : splitSpec(spec);
  if (!s) return spec;
  const file = path.resolve(baseDir, s.file);
  return spec.length > s.file.length ? `${file}:${s.name}` : file;
}

/** What is wrong with a `score_function` value, or undefined: a registered name or a .ts/.js file spec is fine. */
export function scoreFunctionProblem(spec: string): string | undefined {
  if (rewardFunctions.has(spec) || splitSpec(spec)) return undefined;
  return `'${spec}' is neither a registered reward function (${rewardFunctions.names().join(', ')}; add one with registerReward) nor a .ts/.js file with :export`;
}

/** Relative file paths resolve against `baseDir` (default: the current directory). */
export async function loadRewardFunction(spec: string, baseDir = process.cwd()): Promise<RewardFunction> {
  const key = 'worker.reward.score_function';
  if (rewardFunctions.has(spec)) return rewardFunctions.get(spec);
  const s = splitSpec(spec);
  if (!s) throw new Error(`${key}: ${scoreFunctionProblem(spec)}`);
  const { file, name } = s;
  const { where, exports } = await importUserModule(file, baseDir, key);
  const fn = exports[name];
  if (fn === undefined) {
    throw new Error(`${key}: ${where} has no export '${name}' (exports: ${Object.keys(exports).join(', ') || 'none'})`);
  }
  if (typeof fn === 'function') return defineReward(name === 'default' ? path.basename(file) : name, fn as SingleRewardFunction['score']);
  if (isRewardFunction(fn)) return fn;
  throw new Error(`${key}: export '${name}' of ${where} is neither a function nor a reward from defineReward / defineBatchReward`);
}
