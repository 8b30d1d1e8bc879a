/** `papo rollouts RUN --step N`: a contact sheet of a logged rollout step (pipelines/rollout-sheet.ts). */
import type { Command } from 'commander';
import { checkWritableFile, intAtLeastOption } from './config-file.ts';
import { addManifestFileFlags, type ManifestFileFlags, manifestFileOptions } from './manifest-flags.ts';

export function registerRolloutsCommand(program: Command): void {
  addManifestFileFlags(program.command('rollouts'))
    .description(
      'a contact sheet (PNG) of a logged step: per prompt the image, its masked view, question and answer, and the G responses with reward, advantage and per-token kl_prcp',
    )
    .argument('<run_dir>', 'a papo train run directory (with its rollouts/ log)')
    .requiredOption('--step <n>', 'the logged step to draw', intAtLeastOption('--step', 1))
    .option('--out <file>', 'the PNG (default <run>/rollouts-step_<N>.png, N zero-padded to six digits: rollouts-step_000080.png for --step 80)')
    .option('--prompts <n>', 'draw the first n prompts only (default all)', intAtLeastOption('--prompts', 1))
    .option('--scale <n>', 'image upscale factor', intAtLeastOption('--scale', 1), 3)
    .action(async (runDir: string, flags: { step: number; out?: string; prompts?: number; scale: number } & ManifestFileFlags) => {
      if (flags.out) checkWritableFile('--out', flags.out);
      const { writeRolloutSheet } = await import('../pipelines/rollout-sheet.ts');
      const r = await writeRolloutSheet(runDir, {
        step: flags.step,
        out: flags.out,
        prompts: flags.prompts,
        scale: flags.scale,
        images: manifestFileOptions(flags),
      });
      process.stdout.write(`rollouts: ${r.out} (${r.prompts.length} prompts, ${r.width} x ${r.height} px)\n`);
    });
}
