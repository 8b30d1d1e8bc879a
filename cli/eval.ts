/** `papo eval`: held-out evaluation of saved weights with the onnxruntime engine (pipelines/evaluate.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { TaskConfig } from '../tasks/registry.ts';
import { checkSplit } from '../tasks/types.ts';
import { DATASET_ONLY } from '../tasks/loader/dataset-options.ts';
import { addManifestFileFlags, manifestFileOptions, type ManifestFileFlags } from './manifest-flags.ts';
import { checkWritableFile, intAtLeastOption, intOption, numberOption, splitList } from './config-file.ts';

interface EvalFlags extends ManifestFileFlags {
  weights: string;
  task?: string;
  families?: string;
  manifest?: string;
  trainFiles?: string[];
  valFiles?: string[];
  split: string;
  limit?: number;
  k: number;
  temperature: number;
  seed: number;
  json?: string;
  threads: number;
  errors?: boolean;
  reward?: string;
}

/** The task to evaluate on: the flags over what the weights were trained on; a manifest implies task manifest, dataset files task dataset. */
function evalTaskConfig(f: EvalFlags, trained: Partial<TaskConfig>): TaskConfig {
  const files = f.trainFiles !== undefined || f.valFiles !== undefined;
  const name = f.task ?? (f.manifest !== undefined ? 'manifest' : files ? 'dataset' : (trained.task ?? 'digits'));
  if (f.manifest !== undefined && name !== 'manifest') throw new Error(`--manifest is only read by --task manifest, not --task ${name}`);
  if (files && name !== 'dataset') throw new Error(`--train-files and --val-files are only read by --task dataset, not --task ${name}`);
  const taskCfg: TaskConfig = { ...trained, task: name };
  if (name !== 'manifest') delete taskCfg.manifest;
  if (name !== 'dataset' || trained.task !== 'dataset') for (const k of DATASET_ONLY) delete taskCfg[k];
  if (f.valFiles) taskCfg.valFiles = f.valFiles;
  // the train split is not evaluated: without train files, the val files stand in for them
  if (name === 'dataset') taskCfg.trainFiles = f.trainFiles ?? taskCfg.trainFiles ?? f.valFiles;
  // what a manifest may read is the command line's to say, never a checkpoint's
  for (const k of ['allowOutsideManifestDir', 'maxImageBytes', 'maxImagePixels', 'maxRows', 'maxDatasetBytes', 'maxRowBytes'] as const) delete taskCfg[k];
  if (f.manifest) taskCfg.manifest = f.manifest;
  Object.assign(taskCfg, manifestFileOptions(f));
  if (f.families) taskCfg.families = splitList(f.families);
  else if (name !== trained.task) delete taskCfg.families;
  return taskCfg;
}

export function registerEvalCommand(program: Command): void {
  addManifestFileFlags(program.command('eval'))
    .description('evaluate saved weights on a held-out split: accuracy per family and vision-dependency group, format rate, length, RL-signal fraction')
    .option(
      '--weights <dir>',
      'policy weights: a Zarr group written by papo sft, a checkpoint, or a run directory (its latest complete checkpoint)',
      'runs/sft/weights',
    )
    .option('--task <name>', 'digits | scenes | manifest (default: the task the weights were trained on, else digits)')
    .option('--manifest <file>', 'JSONL manifest of a user dataset (implies --task manifest)')
    .option(
      '--val-files <file...>',
      'dataset files to evaluate on, as data.val_files: their records are the test and validation splits (implies --task dataset)',
    )
    .option('--train-files <file...>', 'dataset task: data.train_files (default: those the weights were trained on, else the val files)')
    .option('--families <list>', 'comma-separated families (default: all)')
    .option('--split <name>', 'validation | test (train is allowed, with a warning: it is not held out)', 'test')
    .option('--limit <n>', 'evaluate the first n records (default: the whole split)', intAtLeastOption('--limit', 1))
    .option('--k <n>', 'samples per prompt at --temperature (0: greedy only)', intAtLeastOption('--k', 0), 4)
    .option('--temperature <x>', 'sampling temperature for the k samples', numberOption('--temperature'), 1)
    .option('--seed <n>', 'sampling seed', intOption('--seed'), 0)
    .option('--threads <n>', 'onnxruntime intra-op threads', intAtLeastOption('--threads', 1), 2)
    .option('--json <file>', 'also write the full report as JSON')
    .option('--errors', 'classify each greedy failure (format, perception, reasoning, calculation, inconsistency) and print the table')
    .option(
      '--reward <spec>',
      "score with this reward instead of the task's own verifier: a registered name or file.ts:export, as worker.reward.score_function (user code runs in reward workers)",
    )
    .action(async (f: EvalFlags, cmd: Command) => {
      // everything the flags alone can get wrong is refused before the weights load
      const split = checkSplit(f.split);
      if (!(f.temperature >= 0)) throw new Error(`--temperature must be >= 0, got ${f.temperature}`);
      if (f.json !== undefined) checkWritableFile('--json', f.json);
      if (f.manifest !== undefined && f.task !== undefined && f.task !== 'manifest')
        throw new Error(`--manifest is only read by --task manifest, not --task ${f.task}`);
      if (f.reward !== undefined) {
        const { scoreFunctionProblem } = await import('../pipelines/reward-function.ts');
        const problem = scoreFunctionProblem(f.reward);
        if (problem) throw new Error(`--reward: ${problem}`);
      }
      if (split === 'train')
        process.stderr.write('papo eval: warning: --split train evaluates records the policy may have been trained on; its accuracy is not held-out\n');
      // loaded here, not at start-up: `papo --help` and the other commands need none of it
      const [{ loadPolicyWeights }, { createTask }, { PolicyEngine }, { evaluate, formatEvalReport }] = await Promise.all([
        import('../storage/policy-weights.ts'),
        import('../tasks/registry.ts'),
        import('../models/engine/engine.ts'),
        import('../pipelines/evaluate.ts'),
      ]);
      if (cmd.getOptionValueSource('weights') === 'default' && !fs.existsSync(f.weights)) {
        const { SHIPPED_WARM_START, TrainConfigSchema } = await import('../pipelines/train-config.ts');
        // after the main job (`npx papo train`), the run it trained
        const trained = TrainConfigSchema.parse({}).trainer.save_checkpoint_path;
        if (fs.existsSync(path.join(trained, 'checkpoints'))) {
          process.stderr.write(`papo eval: no ${f.weights} (papo sft's weights); evaluating the papo train run in ${trained}\n`);
          f.weights = trained;
        } else
          throw new Error(
            `no weights at ${f.weights} (where papo sft writes them) and no papo train run in ${trained}: train one, or pass --weights DIR (weights, a checkpoint or a run directory; the shipped warm start is ${SHIPPED_WARM_START})`,
          );
      }
      const saved = await loadPolicyWeights(f.weights);
      // a run or checkpoint directory resolves to one checkpoint's weights: say which
      if (saved.dir !== path.resolve(f.weights)) process.stderr.write(`papo eval: evaluating the weights in ${saved.dir}\n`);
      const task = createTask(evalTaskConfig(f, (saved.meta.task ?? {}) as Partial<TaskConfig>));
      const reward = f.reward === undefined ? undefined : await (await import('../pipelines/reward-function.ts')).openReward(f.reward);
      const engine = await PolicyEngine.create(saved.config, { intraOpThreads: f.threads }).catch(async (err) => {
        await reward?.close();
        throw err;
      });
      try {
        await engine.setWeights(saved.params, Number(saved.meta.step ?? 0));
        const report = await evaluate(engine, task, {
          split,
          limit: f.limit,
          k: f.k,
          temperature: f.temperature,
          seed: f.seed,
          errors: f.errors,
          reward,
        });
        console.log(formatEvalReport(report));
        if (f.json) fs.writeFileSync(f.json, JSON.stringify(report, null, 2));
      } finally {
        await engine.close();
        await reward?.close();
      }
    });
}
