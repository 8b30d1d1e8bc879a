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
}

export function createTask(c: TaskConfig): Task {
  switch (c.task) {
    case 'digits':
      return new DigitsTask({ seed: c.seed, digits: c.digits, families: c.families });
    case 'scenes':
      return new ScenesTask({ seed: c.seed, height: c.height, width: c.width, families: c.families });
    case 'manifest': {
      if (!c.manifest) throw new Error('task manifest needs a manifest path');
      const t = ManifestTask.load(c.manifest, {
        height: c.height ?? 28,
        width: c.width ?? 56,
        resize: c.resize,
        fit: c.fit,
        onError: c.onError,
      });
      return t;
    }
    default:
      throw new Error(`unknown task ${JSON.stringify(c.task)}; known: ${TASK_NAMES.join(', ')}`);
  }
}
