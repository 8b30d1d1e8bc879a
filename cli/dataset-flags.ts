/**
 * The command-line flags of the dataset task (tasks/loader/dataset.ts), shared by the `papo data` commands;
 * `papo train` and `papo sft` have them as `data.*` config keys (data.train_files, data.prompt_key, ...).
 *
 *   addDatasetFlags(cmd).action((f) => createTask({ task: 'dataset', ...datasetOptions(f) }))
 */
import type { Command } from 'commander';

export interface DatasetFlags {
  trainFiles?: string[];
  valFiles?: string[];
  promptKey?: string;
  answerKey?: string;
  imageKey?: string;
  imageDir?: string;
  formatPrompt?: string;
}

export function addDatasetFlags(cmd: Command): Command {
  return cmd
    .option('--train-files <file...>', 'dataset task: training .parquet / .jsonl / .json files or folders (= data.train_files)')
    .option('--val-files <file...>', 'dataset task: evaluation files, the validation and test splits (= data.val_files)')
    .option('--prompt-key <key>', 'dataset task: the question column (= data.prompt_key, default problem)')
    .option('--answer-key <key>', 'dataset task: the answer column (= data.answer_key, default answer)')
    .option('--image-key <key>', 'dataset task: the image column (= data.image_key, default images)')
    .option('--image-dir <dir>', "dataset task: where image paths resolve (= data.image_dir, default the data file's folder)")
    .option('--format-prompt <file>', 'dataset task: a {{ content }} template applied to every question (= data.format_prompt)');
}

/** The flags given, as task options (absent ones left to the loader's defaults). */
export function datasetOptions(f: DatasetFlags): DatasetFlags {
  const out: DatasetFlags = {};
  for (const k of ['trainFiles', 'valFiles', 'promptKey', 'answerKey', 'imageKey', 'imageDir', 'formatPrompt'] as const) {
    if (f[k] !== undefined) Object.assign(out, { [k]: f[k] });
  }
  return out;
}
