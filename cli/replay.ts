/** `papo replay RUN --step N`: a logged step reproduced through the update sink (pipelines/replay.ts). */
import type { Command } from 'commander';
import { intOption } from './config-file.ts';
import { addManifestFileFlags, type ManifestFileFlags, manifestFileOptions } from './manifest-flags.ts';

const show = (x: number | undefined) => (x === undefined ? '-' : Number.isInteger(x) ? String(x) : x.toPrecision(9));

export function registerReplayCommand(program: Command): void {
  addManifestFileFlags(program.command('replay'))
    .description("replay a logged step through the update, from the nearest checkpoint before it; compare its metrics (and weights) with the run's")
    .argument('<run_dir>', 'a papo train run directory (with its rollouts/ log)')
    .requiredOption('--step <n>', 'the step to reproduce', intOption('--step'))
    .option('--json', 'print the report as JSON')
    .action(async (runDir: string, flags: { step: number; json?: boolean } & ManifestFileFlags) => {
      const { replayRun } = await import('../pipelines/replay.ts');
      const r = await replayRun(runDir, flags.step, manifestFileOptions(flags));
      const exact = r.differing.length === 0 && (r.weights?.equal ?? true);
      if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        const lines = [
          `replayed steps ${r.replayedSteps[0]}..${r.step} from ${r.from ? `checkpoint ${r.from}` : 'the starting weights'}`,
          `${'metric'.padEnd(44)} ${'logged'.padStart(16)} ${'replayed'.padStart(16)}`,
        ];
        for (const [k, [a, b]] of Object.entries(r.metrics))
          lines.push(`${k.padEnd(44)} ${show(a).padStart(16)} ${show(b).padStart(16)}${Object.is(a, b) ? '' : '   differs'}`);
        if (r.weights)
          lines.push(
            `weights and optimizer state vs checkpoint ${r.weights.checkpoint}: ${r.weights.equal ? 'identical, bit for bit' : `differ in ${r.weights.differing.slice(0, 5).join(', ')}${r.weights.differing.length > 5 ? ', ...' : ''}`}`,
          );
        lines.push(exact ? 'replay: exact' : `replay: ${r.differing.length} metric(s) differ`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!exact) process.exitCode = 2;
    });
}
