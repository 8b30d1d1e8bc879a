/** `papo train`: a PAPO / GRPO / DAPO run (pipelines/train.ts) from a config file and dotted overrides. */
import type { Command } from 'commander';
import type { TrainFlags } from './train-args.ts';

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('RL training (PAPO by default) from the shipped warm start; prints held-out accuracy before and after')
    .argument('[overrides...]', 'dotted overrides, e.g. worker.rollout.n=4 trainer.max_steps=10 algorithm.kl_coef=0')
    .option('--config <file>', 'YAML/JSON run config (data, algorithm, worker.actor, worker.rollout, worker.reward, trainer)')
    .option('--preset <name>', 'objective preset: grpo | dapo | papo_g | papo_d | vppo (= algorithm.preset)')
    .option('--print-config', 'print the merged, validated config and exit')
    .option('--resume [run_dir]', 'continue the run in run_dir (default trainer.save_checkpoint_path) from its latest checkpoint, with its saved config')
    .option('--from-rollouts <run_dir>', "train offline on another run's rollout log instead of sampling (= data.rollouts_path)")
    .option('--force', 'start a new run in a directory that holds another run (its files are moved to previous-<time>/)')
    .action(async (overrides: string[], flags: TrainFlags) => {
      // loaded here, not at start-up: the config's registries load TensorFlow.js
      const [{ trainInputFromArgs }, { resolveTrainConfig }, { stringify }] = await Promise.all([
        import('./train-args.ts'),
        import('../pipelines/train-config.ts'),
        import('yaml'),
      ]);
      const input = trainInputFromArgs(flags, overrides);
      const { config: cfg, notes } = resolveTrainConfig(input); // validate before loading anything heavy
      if (flags.printConfig) {
        // the run says (and logs) its notes once it starts; the printed config is stdout's alone
        for (const n of notes) process.stderr.write(`${n}\n`);
        process.stdout.write(stringify(cfg));
        return;
      }
      const { runTrain } = await import('../pipelines/train.ts');
      // --resume without a config of its own continues a run or refuses: never a new run with a default config
      const r = await runTrain(input, { handleSignals: true, force: flags.force, resumeOnly: Boolean(flags.resume) && !flags.config });
      if (r.outcome !== 'completed') process.exitCode = r.outcome === 'interrupted' ? 130 : 3;
    });
}
