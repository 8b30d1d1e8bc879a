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

// own keys only: `toString` or `constructor` must not pass for a built-in
const builtinReward = (spec: string) => (Object.hasOwn(BUILTIN_REWARDS, spec) ? BUILTIN_REWARDS[spec] : undefined);

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
  const s = builtinReward(spec) ? undefined : splitSpec(spec);
  if (!s) return spec;
  const file = path.resolve(baseDir, s.file);
  return spec.length > s.file.length ? `${file}:${s.name}` : file;
}

/** Relative file paths resolve against `baseDir` (default: the current directory). */
export async function loadRewardFunction(spec: string, baseDir = process.cwd()): Promise<RewardFunction> {
  const builtin = builtinReward(spec);
  if (builtin) return builtin();
  const s = splitSpec(spec);
  if (!s) {
    throw new Error(`worker.reward.score_function: '${spec}' is neither a built-in (${Object.keys(BUILTIN_REWARDS).join(', ')}) nor a .ts/.js file with :export`);
  }
  const { file, name } = s;
  const where = path.resolve(baseDir, file);
  if (!fs.existsSync(where)) {
    const rel = path.isAbsolute(file) ? '' : ` (relative paths resolve against ${baseDir})`;
    throw new Error(`worker.reward.score_function: file ${where} does not exist${rel}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(where).href)) as Record<string, unknown>;
  } catch (err) {
    // Node 20 + tsx: a .ts/.js file with `export` outside any "type": "module" package fails with this cryptic code
    const hint = (err as { code?: string }).code === 'ERR_REQUIRE_CYCLE_MODULE'
      ? `it is an ES module in a CommonJS scope; rename it to .mts (or .mjs), or put a package.json with {"type": "module"} in its directory`
      : (err as Error).message;
    throw new Error(`worker.reward.score_function: cannot load ${where}: ${hint}`);
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
