/**
 * Tasks by the name users type (`data.task`, `--task`): `digits`, `scenes`, `manifest`, `dataset`, and any that user
 * code adds with `registerTask` before the config is parsed.
 *
 * @example
 * registerTask('my_digits', (o) => new DigitsTask({ ...o, digits: 3 }));
 * createTask({ task: 'my_digits', seed: 1 });
 */
import { DigitsTask } from './digits/task.ts';
import { ScenesTask } from './scenes/task.ts';
import { ManifestTask } from './loader/manifest-task.ts';
import { DatasetTask } from './loader/dataset-task.ts';
import { DATASET_ONLY } from './loader/dataset-options.ts';
import type { ResizeMethod } from './loader/resize.ts';
import type { Task } from './types.ts';
import { Registry } from '../util/registry.ts';

/** Options a task may read; each built-in reads those marked for it and ignores the rest. */
export interface TaskOptions {
  seed?: number;
  families?: string[];
  /** digits: digits per canvas */
  digits?: number;
  /** scenes / manifest: image size */
  height?: number;
  width?: number;
  /** manifest */
  manifest?: string;
  resize?: ResizeMethod;
  fit?: 'stretch' | 'pad';
  onError?: 'fail' | 'skip';
  /** manifest: image paths may leave the manifest's directory; bytes per image file; pixels per decoded image */
  allowOutsideManifestDir?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
  /** dataset (parquet / JSONL / JSON files, EasyR1's data keys; see loader/dataset.ts) */
  trainFiles?: string[];
  valFiles?: string[];
  promptKey?: string;
  answerKey?: string;
  imageKey?: string;
  imageDir?: string;
  formatPrompt?: string;
  maxPromptLength?: number;
  filterOverlongPrompts?: boolean;
  maxRows?: number;
  maxDatasetBytes?: number;
  maxRowBytes?: number;
}

export interface TaskConfig extends TaskOptions {
  /** a registered task name */
  task: string;
}

/** Builds a task from its options. */
export type TaskFactory = (options: TaskOptions) => Task;

export const taskFactories = new Registry<TaskFactory>('task', 'registerTask');

/** Makes `name` a value of `data.task` / `--task`; a name already registered is refused. */
export function registerTask(name: string, factory: TaskFactory): void {
  taskFactories.register(name, factory);
}

registerTask('digits', (o) => {
  checkNoManifest('digits', o);
  return new DigitsTask({ seed: o.seed, digits: o.digits, families: o.families });
});
registerTask('scenes', (o) => {
  checkNoManifest('scenes', o);
  return new ScenesTask({ seed: o.seed, height: o.height, width: o.width, families: o.families });
});
registerTask('manifest', (o) => {
  if (!o.manifest) throw new Error('task manifest needs a manifest path');
  checkNoDataset('manifest', o);
  return ManifestTask.load(o.manifest, {
    height: o.height ?? 28,
    width: o.width ?? 56,
    resize: o.resize,
    fit: o.fit,
    onError: o.onError,
    allowOutsideManifestDir: o.allowOutsideManifestDir,
    maxImageBytes: o.maxImageBytes,
    maxImagePixels: o.maxImagePixels,
    maxRows: o.maxRows,
    maxBytes: o.maxDatasetBytes,
  });
});

registerTask('dataset', (o) => {
  if (o.manifest !== undefined)
    throw new Error(
      `a manifest (${o.manifest}) is only read by task manifest, but the task is dataset: give the manifest's rows as data.train_files, or choose task manifest`,
    );
  if (!o.trainFiles?.length) throw new Error('task dataset needs train files (data.train_files)');
  return DatasetTask.load({
    height: o.height ?? 28,
    width: o.width ?? 56,
    resize: o.resize,
    fit: o.fit,
    onError: o.onError,
    trainFiles: o.trainFiles,
    valFiles: o.valFiles,
    promptKey: o.promptKey,
    answerKey: o.answerKey,
    imageKey: o.imageKey,
    imageDir: o.imageDir,
    formatPrompt: o.formatPrompt,
    maxPromptLength: o.maxPromptLength,
    filterOverlongPrompts: o.filterOverlongPrompts,
    allowOutsideManifestDir: o.allowOutsideManifestDir,
    maxImageBytes: o.maxImageBytes,
    maxImagePixels: o.maxImagePixels,
    maxRows: o.maxRows,
    maxDatasetBytes: o.maxDatasetBytes,
    maxRowBytes: o.maxRowBytes,
  });
});

export function createTask(c: TaskConfig): Task {
  return taskFactories.get(c.task)(c);
}

/** Manifest options given to another task would be ignored without a word: refuse them instead. */
function checkNoManifest(task: string, o: TaskOptions): void {
  if (o.manifest !== undefined) {
    throw new Error(`a manifest (${o.manifest}) is only read by task manifest, but the task is ${task}: choose task manifest, or drop the manifest`);
  }
  const given = (['allowOutsideManifestDir', 'maxImageBytes', 'maxImagePixels'] as const).filter((k) => o[k] !== undefined);
  if (given.length) throw new Error(`${given.join(', ')} only apply to task manifest, but the task is ${task}`);
  checkNoDataset(task, o);
}

/** Dataset options given to another task would be ignored without a word: refuse them instead. */
function checkNoDataset(task: string, o: TaskOptions): void {
  const given = DATASET_ONLY.filter((k) => o[k] !== undefined);
  if (given.length) throw new Error(`${given.join(', ')} only apply to task dataset, but the task is ${task}`);
}
