/** `papo report RUN [RUN ...]`: a run's curves as one self-contained HTML page and PNG charts (pipelines/report.ts). */
import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { checkSmoothing, DEFAULT_SMOOTHING } from '../util/smoothing.ts';
import { checkWritableFile, intAtLeastOption, numberOption } from './config-file.ts';

/** A smoothing weight in [0, 1), refused by the flag's name otherwise. */
function smoothingOption(flag: string) {
  const parse = numberOption(flag);
  return (v: string): number => {
    try {
      return checkSmoothing(parse(v), flag);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'the curves of one or more papo train runs (reward and accuracy, kl_prcp per group, entropy, loss terms, grad norm, lr, clipping, length, reward failures, throughput, time per stage, loss-hacking warnings) as an HTML page and PNG charts',
    )
    .argument('<run_dirs...>', 'papo train run directories; several are overlaid (e.g. a GRPO and a PAPO run)')
    .option(
      '--out <file>',
      'the page (default <run>/report.html for one run, report.html for several); PNGs are written beside it as <name>.png (all charts) and <name>-<chart>.png',
    )
    .option('--names <list>', 'comma-separated names of the runs, in order, for legends and tables (default: their directories)')
    .option('--no-png', 'write the page only')
    .option('--scale <n>', 'PNG pixels per chart pixel', intAtLeastOption('--scale', 1), 2)
    .option(
      '--smoothing <w>',
      "TensorBoard's smoothing weight, 0 (none) to below 1: each curve is its debiased EMA, the raw values faint behind it",
      smoothingOption('--smoothing'),
      DEFAULT_SMOOTHING,
    )
    .action(async (runDirs: string[], flags: { out?: string; png: boolean; scale: number; names?: string; smoothing: number }) => {
      const out = flags.out ?? (runDirs.length === 1 ? path.join(runDirs[0], 'report.html') : 'report.html');
      if (flags.out) checkWritableFile('--out', flags.out);
      const { writeReport } = await import('../pipelines/report.ts');
      const r = await writeReport(runDirs, {
        out,
        png: flags.png,
        scale: flags.scale,
        followOut: flags.out !== undefined,
        names: flags.names?.split(',').map((n) => n.trim()),
        smoothing: flags.smoothing,
      });
      const lines = [`report: ${r.html}`];
      if (r.pngs.length) lines.push(`charts: ${r.pngs[0]} (all), ${r.pngs.length - 1} more beside it`);
      for (const run of r.runs)
        lines.push(
          `${run.name}: ${run.metrics.length} steps${run.alarms.length ? `, loss-hacking warnings at steps ${run.alarms.map((a) => a.step).join(', ')}` : ''}`,
        );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
