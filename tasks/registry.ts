/** Building a task by name from command-line or config options. */
import { DigitsTask } from './digits/task.ts';
import { ScenesTask } from './scenes/task.ts';
import { ManifestTask } from './loader/manifest-task.ts';
import type { ResizeMethod } from './loader/resize.ts';
import type { Task } from './types.ts';

export const TASK_NAMES = ['digits', 'scenes', 'manifest'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export interface TaskConfig {
  task: TaskName;
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
}

export function createTask(c: TaskConfig): Task {
  switch (c.task) {
    case 'digits':
      checkNoManifest(c);
      return new DigitsTask({ seed: c.seed, digits: c.digits, families: c.families });
    case 'scenes':
      checkNoManifest(c);
      return new ScenesTask({ seed: c.seed, height: c.height, width: c.width, families: c.families });
    case 'manifest': {
      if (!c.manifest) throw new Error('task manifest needs a manifest path');
      const t = ManifestTask.load(c.manifest, {
        height: c.height ?? 28,
        width: c.width ?? 56,
        resize: c.resize,
        fit: c.fit,
        onError: c.onError,
        allowOutsideManifestDir: c.allowOutsideManifestDir,
        maxImageBytes: c.maxImageBytes,
        maxImagePixels: c.maxImagePixels,
      });
      return t;
    }
    default:
      throw new Error(`unknown task ${JSON.stringify(c.task)}; known: ${TASK_NAMES.join(', ')}`);
  }
}

/** Manifest options given to another task would be ignored without a word: refuse them instead. */
function checkNoManifest(c: TaskConfig): void {
  if (c.manifest !== undefined) {
    throw new Error(`a manifest (${c.manifest}) is only read by task manifest, but the task is ${c.task}: choose task manifest, or drop the manifest`);
  }
  const given = (['allowOutsideManifestDir', 'maxImageBytes', 'maxImagePixels'] as const).filter((k) => c[k] !== undefined);
  if (given.length) throw new Error(`${given.join(', ')} only apply to task manifest, but the task is ${c.task}`);
}
