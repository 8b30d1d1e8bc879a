/** `papo train`: a PAPO / GRPO / DAPO run (pipelines/train.ts) from a config file and dotted overrides. */
import * as path from 'node:path';
import type { Command } from 'commander';
import { parse, stringify } from 'yaml';
import { resolveScoreFunction } from '../pipelines/reward-function.ts';
import { applyOverrides, trainConfig } from '../pipelines/train-config.ts';
import { readConfigFile } from './config-file.ts';

interface TrainFlags {
  config?: string;
  preset?: string;
  printConfig?: boolean;
}

/** YAML scalar / flow value of an override (`4`, `1e-4`, `true`, `[sum, read]`, `./r.ts:score`). */
function parseOverrideValue(text: string): unknown {
  try {
    return parse(text);
  } catch {
    return text;
  }
}

/** A config file's reward file is named relative to the config file; command-line paths stay relative to the cwd. */
function resolveFileRewardPath(input: Record<string, unknown>, configFile: string): void {
  const worker = input.worker as { reward?: { score_function?: unknown } } | undefined;
  const spec = worker?.reward?.score_function;
  if (typeof spec === 'string') worker!.reward!.score_function = resolveScoreFunction(spec, path.dirname(path.resolve(configFile)));
}

/** The merged run config of a command line: file, then --preset, then overrides (later wins). */
export function trainInputFromArgs(flags: TrainFlags, overrides: readonly string[]): Record<string, unknown> {
  let input: Record<string, unknown> = flags.config ? readConfigFile(flags.config) : {};
  if (flags.config) resolveFileRewardPath(input, flags.config);
  if (flags.preset) input = applyOverrides(input, [`algorithm.preset=${flags.preset}`], String);
  return applyOverrides(input, overrides, parseOverrideValue);
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('RL training (PAPO by default) from the shipped warm start; prints held-out accuracy before and after')
    .argument('[overrides...]', 'dotted overrides, e.g. worker.rollout.n=4 trainer.max_steps=10 algorithm.kl_coef=0')
    .option('--config <file>', 'YAML/JSON run config (data, algorithm, worker.actor, worker.rollout, worker.reward, trainer)')
    .option('--preset <name>', 'objective preset: grpo | dapo | papo_g | papo_d (= algorithm.preset)')
    .option('--print-config', 'print the merged, validated config and exit')
    .action(async (overrides: string[], flags: TrainFlags) => {
      const input = trainInputFromArgs(flags, overrides);
      const cfg = trainConfig(input); // validate before loading anything heavy
      if (flags.printConfig) {
        process.stdout.write(stringify(cfg));
        return;
      }
      const { runTrain } = await import('../pipelines/train.ts');
      const r = await runTrain(input, { handleSignals: true });
      if (r.outcome !== 'completed') process.exitCode = r.outcome === 'interrupted' ? 130 : 3;
    });
}
