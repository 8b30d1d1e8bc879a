/**
 * The record and task types shared by every dataset in papo-stream: generated tasks (digits, scenes)
 * and user manifests all expose the same `Task`, so streams, evaluation and the preview treat them alike.
 */
import type { RgbImage } from '../util/image.ts';
import type { ErrorClassification } from './error-taxonomy.ts';

export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

/**
 * 'high': the answer needs the image. 'low': a control whose answer is recoverable from the question
 * text alone (the image is present but irrelevant), so evaluation can report both accuracies.
 */
export type VisionDependency = 'high' | 'low';

/** How the answer is written, which is also how the accuracy reward compares it. */
export type AnswerType = 'integer' | 'word' | 'yes/no';

export interface TaskRecord {
  /** Unique within a task across splits, e.g. `digits/test/17`. */
  readonly id: string;
  readonly image: RgbImage;
  /** Printable ASCII. */
  readonly question: string;
  /** Ground truth, printable ASCII, already in normal form (see rewards/accuracy.ts). */
  readonly answer: string;
  readonly family: string;
  readonly visionDependency: VisionDependency;
  /** A correct response `<think>...</think><answer>...</answer>` for a supervised warm start. */
  readonly demonstration?: string;
  /** Generator parameters (digits placed, objects drawn) or a manifest's extra fields. */
  readonly meta: Record<string, unknown>;
}

export interface FamilyInfo {
  readonly name: string;
  readonly visionDependency: VisionDependency;
  readonly answerType: AnswerType;
  /** One example question, for documentation and `data stats`. */
  readonly template: string;
}

/**
 * A task: a fixed-size set of records per split (an epoch), each computed on demand by `recordAt`.
 * `recordAt` is a pure function of the task's configuration, split and index, so streams only need to
 * store positions, never records.
 */
export interface Task {
  readonly name: string;
  readonly imageHeight: number;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  /**
   * A short string that changes whenever the configuration changes what `recordAt` returns; a stream
   * cursor carries it so a checkpoint cannot silently resume onto different data.
   */
  readonly fingerprint: string;
  /** Records in one epoch of the split. */
  size(split: Split): number;
  /** Record `index` (0 <= index < size(split)) of a split. */
  recordAt(split: Split, index: number): TaskRecord;
  /**
   * Optional: why `response`, a failure of one of this task's records (accuracy < 1), failed: format,
   * perception, reasoning, calculation or inconsistency, from the record's ground truth (error-taxonomy.ts).
   * Evaluation calls it through `classifyFailure`, which reports `unclassified` for a task without one.
   */
  classifyError?(record: TaskRecord, response: string): ErrorClassification;
}

export function checkSplit(split: string): Split {
  if (split !== 'train' && split !== 'validation' && split !== 'test') {
    throw new Error(`split must be train, validation or test, got ${JSON.stringify(split)}`);
  }
  return split;
}

export function checkIndex(task: Task, split: Split, index: number): void {
  const n = task.size(split);
  if (!(Number.isInteger(index) && index >= 0 && index < n)) {
    throw new Error(`${task.name}: record index ${index} out of range for split ${split} (size ${n})`);
  }
}
