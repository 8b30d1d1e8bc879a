/**
 * The run config of a `papo train` command line (cli/train.ts): the config file, --resume's saved config,
 * --preset, --from-rollouts and the dotted overrides, merged in that order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rewardFunctionSpec } from '../pipelines/easyr1-keys.ts';
import { resolveScoreFunction } from '../pipelines/reward-function.ts';
import { readRunConfig, trainConfig } from '../pipelines/train-config.ts';
import { applyOverrides, deepMerge } from '../util/overrides.ts';
import { parseOverrideValue, readConfigFile } from './config-file.ts';

export interface TrainFlags {
  config?: string;
  preset?: string;
  printConfig?: boolean;
  /** true, or the run directory */
  resume?: boolean | string;
  force?: boolean;
  fromRollouts?: string;
}

/** A config file's reward file is named relative to the config file; command-line paths stay relative to the cwd. */
function resolveFileRewardPath(input: Record<string, unknown>, configFile: string): void {
  const reward = (input.worker as { reward?: Record<string, unknown> } | undefined)?.reward;
  if (typeof reward !== 'object' || reward === null) return;
  // EasyR1's reward_function, whose function is `main` when not named, as score_function's file is.
  for (const [key, spec] of [
    ['score_function', reward.score_function],
    ['reward_function', typeof reward.reward_function === 'string' ? rewardFunctionSpec(reward.reward_function) : undefined],
  ] as const)
    if (typeof spec === 'string') reward[key] = resolveScoreFunction(spec, path.dirname(path.resolve(configFile)));
}

/** The merged run config of a command line: file, then --preset, then overrides (later wins). */
export function trainInputFromArgs(flags: TrainFlags, overrides: readonly string[]): Record<string, unknown> {
  let input: Record<string, unknown> = flags.config ? readConfigFile(flags.config) : {};
  if (flags.config) resolveFileRewardPath(input, flags.config);
  if (flags.resume) {
    // A resumed run starts from the config it was saved with; the command line may change what a resume allows.
    const dir =
      typeof flags.resume === 'string' ? flags.resume : String(trainConfig(applyOverrides(input, overrides, parseOverrideValue)).trainer.save_checkpoint_path);
    // A run directory named on the command line must exist (a typo would otherwise start a new run there);
    // the one a --config file configures may not yet, as after a kill before the run's first write.
    if (typeof flags.resume === 'string' && !fs.existsSync(dir))
      throw new Error(`--resume ${dir}: no such run directory (a new run there: papo train trainer.save_checkpoint_path=${dir})`);
    // Without a config file, the saved config is the run's: no directory, no run to continue (never a default run).
    if (!flags.config && !fs.existsSync(dir))
      throw new Error(`--resume: no run directory at ${dir} (trainer.save_checkpoint_path); name the run: papo train --resume RUN_DIR`);
    let base: Record<string, unknown> = {};
    if (fs.existsSync(path.join(dir, 'config.json'))) {
      base = readRunConfig(dir, '--resume');
      // a saved config that is not a valid one (edited, or from elsewhere) is named as the file it is
      readRunConfig(dir, '--resume', true);
      // A preset's objective keys were expanded when saved: keep them, so the run goes on with the same objective.
    }
    input = deepMerge(base, input);
    input = applyOverrides(input, [`trainer.save_checkpoint_path=${JSON.stringify(dir)}`, 'trainer.resume_mode=auto'], parseOverrideValue);
  }
  if (flags.preset) input = applyOverrides(input, [`algorithm.preset=${flags.preset}`], String);
  if (flags.fromRollouts) input = applyOverrides(input, [`data.rollouts_path=${JSON.stringify(flags.fromRollouts)}`], parseOverrideValue);
  return applyOverrides(input, overrides, parseOverrideValue);
}
