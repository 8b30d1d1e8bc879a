/** `papo sft`: supervised warm start on a task's demonstrations (pipelines/sft.ts). */
import { type Command, Option } from 'commander';
import { POLICY_SIZES } from '../models/config.ts';
import type { SftConfigInput } from '../pipelines/sft.ts';
import { addManifestFileFlags, manifestFileOptions, type ManifestFileFlags } from './manifest-flags.ts';
import { intOption, numberOption, splitList, readConfigFile } from './config-file.ts';

interface SftFlags extends ManifestFileFlags {
  config?: string;
  task?: string;
  families?: string;
  manifest?: string;
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  out?: string;
  init?: string;
  size?: string;
  engine?: string;
  saveEvery?: number;
  resume?: boolean;
  force?: boolean;
}

export function sftInputFromFlags(f: SftFlags): SftConfigInput {
  const input: Record<string, unknown> = f.config ? readConfigFile(f.config) : {};
  const task = { ...((input.task as object) ?? {}) } as Record<string, unknown>;
  if (f.task) task.task = f.task;
  if (f.manifest) task.manifest = f.manifest;
  Object.assign(task, manifestFileOptions(f));
  if (f.families) task.families = splitList(f.families);
  if (Object.keys(task).length) input.task = task;
  if (f.size) {
    const size = POLICY_SIZES[f.size];
    if (!size) throw new Error(`--size must be one of ${Object.keys(POLICY_SIZES).join(', ')}, got '${f.size}'`);
    input.policy = { ...((input.policy as object) ?? {}), ...size };
  }
  for (const k of ['steps', 'batchSize', 'lr', 'seed', 'out', 'init', 'saveEvery', 'engine'] as const) if (f[k] !== undefined) input[k] = f[k];
  return input as SftConfigInput;
}

export function registerSftCommand(program: Command): void {
  addManifestFileFlags(program.command('sft'))
    .description('supervised warm start: cross-entropy on the demonstrations of a task; writes <out>/checkpoints/, <out>/weights and <out>/log.jsonl')
    .option('--config <file>', 'YAML/JSON file with the options of pipelines/sft.ts (flags override it)')
    .option('--task <name>', 'digits | scenes | manifest (default digits)')
    .option('--manifest <file>', 'JSONL manifest of a user dataset (implies --task manifest; records need demonstrations)')
    .option('--families <list>', 'comma-separated families to train on (default all)')
    .option('--size <name>', `policy size preset: ${Object.keys(POLICY_SIZES).join(', ')} (default base)`)
    .option('--steps <n>', 'optimizer steps (default 300)', intOption('--steps'))
    .option('--batch-size <n>', 'records per step (default 64)', intOption('--batch-size'))
    .option('--lr <x>', 'peak learning rate (default 1e-3, cosine decay)', numberOption('--lr'))
    .option('--seed <n>', 'seed of data order and initialisation (default 0)', intOption('--seed'))
    .option('--save-every <n>', 'write a checkpoint every n steps as well as at the end (default 100; 0 = end only)', intOption('--save-every'))
    .option(
      '--init <dir>',
      'start from saved weights instead of a fresh initialisation (weights, a checkpoint, or a run directory: its latest complete checkpoint)',
    )
    .addOption(
      new Option('--engine <name>', 'update engine: ort (onnxruntime), tfjs, or auto (default: tfjs on tfjs-node-gpu, else ort)').choices([
        'auto',
        'ort',
        'tfjs',
      ]),
    )
    .option('--out <dir>', 'run directory (default runs/sft)')
    .option('--resume', 'continue the run in --out from its latest checkpoint (with its saved settings)')
    .option('--force', 'start over in an --out that holds another run (its files are moved to previous-<time>/)')
    .action(async (flags: SftFlags) => {
      const { runSft } = await import('../pipelines/sft.ts'); // loads TensorFlow.js only when needed
      const r = await runSft(sftInputFromFlags(flags), { resume: flags.resume, force: flags.force, handleSignals: true });
      if (r.outcome === 'interrupted') process.exitCode = 130;
    });
}
