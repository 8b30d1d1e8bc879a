/**
 * The `papo` command line.
 */
import { Command } from 'commander';
import { registerDataCommands } from '../tasks/cli.ts';

const program = new Command('papo').description('PAPO / GRPO / DAPO training for vision-language policies');

program
  .command('selfcheck')
  .description('check the objective against its float64 reference on random inputs and print the result')
  .action(async () => {
    const { runSelfCheck } = await import('./selfcheck.ts');
    process.exitCode = (await runSelfCheck()) ? 0 : 1;
  });

registerDataCommands(program);

await program.parseAsync(process.argv);
