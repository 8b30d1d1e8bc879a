/** `papo sft`: supervised warm start on a task's demonstrations (pipelines/sft.ts). */
import { type Command, Option } from 'commander';
import { POLICY_SIZES } from '../models/config.ts';
import type { SftConfigInput } from '../pipelines/sft-config.ts';
import { applyOverrides } from '../util/overrides.ts';
import { addManifestFileFlags, manifestFileOptions, type ManifestFileFlags } from './manifest-flags.ts';
import { intOption, numberOption, parseOverrideValue, splitList, readConfigFile } from './config-file.ts';

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

/** Each flag of `papo sft` and the config key it sets. */
const FLAG_KEYS = {
  task: 'data.task',
  manifest: 'data.manifest',
  steps: 'trainer.max_steps',
  batchSize: 'data.train_batch_size',
  lr: 'worker.actor.optim.lr',
  seed: 'data.seed',
  out: 'trainer.save_checkpoint_path',
  init: 'worker.actor.model.model_path',
  saveEvery: 'trainer.save_freq',
  engine: 'worker.actor.engine',
} as const;

/** The config of a command line: the --config file, then the flags, then the dotted overrides (later wins). */
export function sftInputFromFlags(f: SftFlags, overrides: readonly string[] = []): SftConfigInput {
  let input: Record<string, unknown> = f.config ? readConfigFile(f.config) : {};
  const set = (key: string, value: unknown) => {
    input = applyOverrides(input, [`${key}=${JSON.stringify(value)}`], JSON.parse);
  };
  for (const [flag, key] of Object.entries(FLAG_KEYS)) if (f[flag as keyof typeof FLAG_KEYS] !== undefined) set(key, f[flag as keyof typeof FLAG_KEYS]);
  const images = manifestFileOptions(f);
  if (images.allowOutsideManifestDir) set('data.allow_outside_manifest_dir', true);
  if (images.maxImageBytes !== undefined) set('data.max_image_bytes', images.maxImageBytes);
  if (images.maxImagePixels !== undefined) set('data.max_image_pixels', images.maxImagePixels);
  if (f.families) set('data.families', splitList(f.families));
  if (f.size) {
    const size = POLICY_SIZES[f.size];
    if (!size) throw new Error(`--size must be one of ${Object.keys(POLICY_SIZES).join(', ')}, got '${f.size}'`);
    for (const [k, v] of Object.entries(size)) set(`worker.actor.model.override_config.${k}`, v);
  }
  return applyOverrides(input, overrides, parseOverrideValue) as SftConfigInput;
}

export function registerSftCommand(program: Command): void {
  addManifestFileFlags(program.command('sft'))
    .description('supervised warm start: cross-entropy on the demonstrations of a task; writes <out>/checkpoints/, <out>/weights and <out>/log.jsonl')
    .argument('[overrides...]', 'dotted overrides of config keys, e.g. trainer.max_steps=100 worker.actor.optim.lr=5e-4 (they win over flags)')
    .option('--config <file>', 'YAML/JSON config (data, worker.actor, trainer: the keys below; flags and overrides win over it)')
    .option('--task <name>', '= data.task: digits | scenes | manifest (default digits)')
    .option('--manifest <file>', '= data.manifest: JSONL manifest of a user dataset (implies --task manifest; records need demonstrations)')
    .option('--families <list>', '= data.families, comma-separated (default all)')
    .option('--size <name>', `policy size preset: ${Object.keys(POLICY_SIZES).join(', ')} (default base; sets worker.actor.model.override_config)`)
    .option('--steps <n>', '= trainer.max_steps: optimizer steps (default 300)', intOption('--steps'))
    .option('--batch-size <n>', '= data.train_batch_size: records per step (default 64)', intOption('--batch-size'))
    .option('--lr <x>', '= worker.actor.optim.lr: peak learning rate (default 1e-3, cosine decay)', numberOption('--lr'))
    .option('--seed <n>', '= data.seed: seed of data order and initialisation (default 0)', intOption('--seed'))
    .option('--save-every <n>', '= trainer.save_freq: a checkpoint every n steps as well as at the end (default 100; 0 = end only)', intOption('--save-every'))
    .option(
      '--init <dir>',
      '= worker.actor.model.model_path: start from saved weights instead of a fresh initialisation (weights, a checkpoint, or a run directory: its latest complete checkpoint)',
    )
    .addOption(
      new Option('--engine <name>', '= worker.actor.engine: ort (onnxruntime), tfjs, or auto (default: tfjs on tfjs-node-gpu, else ort)').choices([
        'auto',
        'ort',
        'tfjs',
      ]),
    )
    .option('--out <dir>', '= trainer.save_checkpoint_path: the run directory (default runs/sft)')
    .option('--resume', 'continue the run in --out from its latest checkpoint (with its saved settings)')
    .option('--force', 'start over in an --out that holds another run (its files are moved to previous-<time>/)')
    .action(async (overrides: string[], flags: SftFlags) => {
      const { runSft } = await import('../pipelines/sft.ts'); // loads TensorFlow.js only when needed
      const r = await runSft(sftInputFromFlags(flags, overrides), { resume: flags.resume, force: flags.force, handleSignals: true });
      if (r.outcome === 'interrupted') process.exitCode = 130;
    });
}
