/**
 * The `papo` command line.
 */
import { Command } from 'commander';
import { importExtension } from '../util/user-module.ts';
import { registerDataCommands } from './data.ts';
import { registerSftCommand } from './sft.ts';
import { registerEvalCommand } from './eval.ts';
import { registerExportCommand } from './export.ts';
import { registerGenerateCommand } from './generate.ts';
import { registerTrainCommand } from './train.ts';
import { registerReplayCommand } from './replay.ts';
import { registerReportCommand } from './report.ts';
import { registerRolloutsCommand } from './rollouts.ts';
import { registerStudyCommand } from './study.ts';
import { explainFsError } from '../util/fs-errors.ts';
import { registerWorkerCommand } from './worker.ts';
import { logLevelFromEnv } from '../util/logger.ts';
import { packageVersion } from '../util/package-files.ts';

// Started by a parent over an IPC channel (papo study): stop as on SIGTERM when the parent goes away, so a
// killed parent leaves no run training on its own.
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

// `papo ... | head`: a reader that goes away ends the command quietly, as for any Unix tool
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('papo')
  .description('PAPO / GRPO / DAPO training for vision-language policies')
  .version(packageVersion(), '-V, --version', 'print the version of papo-stream')
  .option(
    '--import <module>',
    'import a .ts/.js module of yours before the command runs (repeatable): the names it registers (registerAdvEstimator, registerPolicyLoss, registerKlEstimator, registerLossAggMode, registerMaskType, registerReward, registerTask) can then be used in configs and flags',
    (file: string, previous: string[]) => [...previous, file],
    [] as string[],
  )
  .hook('preAction', async () => {
    // environment errors before any command starts work
    logLevelFromEnv('info');
    for (const file of program.opts<{ import: string[] }>().import) await importExtension(file, process.cwd());
  });

program
  .command('selfcheck')
  .description('check the objective against its float64 reference on random inputs and print the result')
  .action(async () => {
    const { runSelfCheck } = await import('./selfcheck.ts');
    process.exitCode = (await runSelfCheck()) ? 0 : 1;
  });

registerTrainCommand(program);
registerReplayCommand(program);
registerReportCommand(program);
registerRolloutsCommand(program);
registerSftCommand(program);
registerEvalCommand(program);
registerGenerateCommand(program);
registerExportCommand(program);
registerStudyCommand(program);
registerWorkerCommand(program);
registerDataCommands(program);

// `papo train --help` and `papo sft --help` end with every key of their config, its default and its help (the
// schemas load the registries, hence TensorFlow.js: only when help is asked for)
if (process.argv.slice(2).some((a) => a === '--help' || a === '-h' || a === 'help')) {
  const [{ describeConfig }, { describeSftConfig }, { formatConfigHelp }] = await Promise.all([
    import('../pipelines/train-config.ts'),
    import('../pipelines/sft-config.ts'),
    import('../util/schema.ts'),
  ]);
  for (const [name, keys] of [
    ['train', describeConfig()],
    ['sft', describeSftConfig()],
  ] as const) {
    const text = `\nConfig keys (in a --config file, or as key.path=value), with their defaults:\n${formatConfigHelp(keys)}\n`;
    program.commands.find((c) => c.name() === name)?.addHelpText('after', text);
  }
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Errors are written for people: the message names the record, key or file; the stack only on request.
  // A file-system error says what could not be written or read, where and why (util/fs-errors.ts).
  const said = err instanceof Error ? (process.env.PAPO_DEBUG ? err.stack : (explainFsError(err) ?? err.message)) : String(err);
  process.stderr.write(`papo: ${said}\n`);
  process.exitCode = 1;
}
