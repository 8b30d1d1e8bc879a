/**
 * `trainer.val_generations_to_log`: at each validation, the greedy generations of the first N validation
 * records (the same prompts every time, so their answers can be followed through the run) as EasyR1 logs
 * them, (prompt, output, ground_truth, score): a Markdown table in TensorBoard's Text tab under
 * `val/generations`, and one JSON line per validation in `<run>/val_generations.jsonl`
 * (`{ step, generations: [{ id, prompt, output, ground_truth, score }] }`; step 0 is the validation before
 * training). A resumed run rewinds the file to its checkpoint's step, as it does metrics.jsonl.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TensorBoardWriter } from '../storage/tensorboard.ts';
import { openAppendNoFollow } from '../util/append-file.ts';
import type { EvalReport } from './evaluate.ts';
import { truncateMetrics } from './run-dir.ts';

export const VAL_GENERATIONS_FILE = 'val_generations.jsonl';
/** TensorBoard's tag of the table, EasyR1's name. */
export const VAL_GENERATIONS_TAG = 'val/generations';

export interface ValGeneration {
  id: string;
  prompt: string;
  output: string;
  ground_truth: string;
  score: number;
}

export const generationsOf = (examples: EvalReport['examples']): ValGeneration[] =>
  examples.map((e) => ({ id: e.id, prompt: e.question, output: e.response, ground_truth: e.answer, score: e.score }));

/** The generations as a Markdown table (cells on one line, `|` escaped). */
export function generationsTable(generations: readonly ValGeneration[]): string {
  const cell = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replace(/\r?\n/g, ' ');
  return [
    '| id | prompt | output | ground_truth | score |',
    '|---|---|---|---|---|',
    ...generations.map((g) => `| ${cell(g.id)} | ${cell(g.prompt)} | ${cell(g.output)} | ${cell(g.ground_truth)} | ${g.score.toFixed(3)} |`),
  ].join('\n');
}

/** Where a run keeps its validation generations; `write` appends one validation's, `rewind` drops those after a step. */
export class ValGenerationsLog {
  readonly file: string;

  constructor(
    runDir: string,
    private readonly tensorboard?: TensorBoardWriter,
  ) {
    this.file = path.join(runDir, VAL_GENERATIONS_FILE);
  }

  /** The generations of the validation at `step`, in the file and (with a writer) in TensorBoard. */
  write(step: number, generations: readonly ValGeneration[]): void {
    if (generations.length === 0) return;
    const fd = openAppendNoFollow(this.file);
    try {
      fs.writeSync(fd, `${JSON.stringify({ step, generations })}\n`);
    } finally {
      fs.closeSync(fd);
    }
    this.tensorboard?.texts(step, { [VAL_GENERATIONS_TAG]: generationsTable(generations) });
  }

  /** Keeps the validations up to `step` (a resumed run validates the later steps again). */
  async rewind(step: number): Promise<void> {
    await truncateMetrics(this.file, step);
  }

  /** Every validation's generations in the file, oldest first. */
  read(): { step: number; generations: ValGeneration[] }[] {
    if (!fs.existsSync(this.file)) return [];
    return fs
      .readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { step: number; generations: ValGeneration[] });
  }
}
