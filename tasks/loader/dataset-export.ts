/**
 * A task's records written as a dataset in the layout verl / EasyR1 read (and dataset.ts reads back):
 *
 * - parquet: `<dir>/<split>.parquet`, columns `problem` (`<image>` then the question, as EasyR1's geometry3k
 *   writes it), `answer`, `images` (a list of one struct `{bytes, path}`, the HF datasets Image feature,
 *   PNG bytes embedded), `id`, `family`, `visionDependency`, `demonstration` (null when none); snappy, row
 *   groups of 1000 rows, written 1000 rows at a time;
 * - jsonl: `<dir>/<split>.jsonl` with the same fields, `images` a list of one path to a PNG file written
 *   beside it (`images/<split>/<index>.png`), as JSON cannot hold bytes.
 *
 * Each file is written under a temporary name and renamed when complete, so an interrupted export never
 * leaves a partial file under the final name. PNG is lossless: the records read back have the same pixels.
 *
 *   exportDataset(new DigitsTask(), { format: 'parquet', out: 'data/digits', splits: ['train', 'test'] });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';
import { encodePng } from '../preview/contact-sheet.ts';
import type { Split, Task, TaskRecord } from '../types.ts';

export type ExportFormat = 'parquet' | 'jsonl';

export interface ExportOptions {
  format: ExportFormat;
  /** The folder written to (created if missing). */
  out: string;
  splits: readonly Split[];
  /** At most this many records per split (default: the whole split). */
  limit?: number;
}

/** Rows per parquet row group, and per write. */
const ROWS_PER_GROUP = 1000;

/** The HF datasets layout of the exported columns. */
const SCHEMA: ConstructorParameters<typeof ParquetWriter>[0]['schema'] = [
  { name: 'root', num_children: 7 },
  { name: 'problem', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'answer', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'images', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
  { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'family', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'visionDependency', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'demonstration', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
];

export interface ExportedSplit {
  split: Split;
  file: string;
  records: number;
}

export function exportDataset(task: Task, opts: ExportOptions): ExportedSplit[] {
  if (opts.format !== 'parquet' && opts.format !== 'jsonl') throw new Error(`export format must be parquet or jsonl, got ${JSON.stringify(opts.format)}`);
  if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0))
    throw new Error(`export limit must be a positive integer, got ${opts.limit}`);
  fs.mkdirSync(opts.out, { recursive: true });
  return opts.splits.map((split) => {
    const n = Math.min(task.size(split), opts.limit ?? Number.POSITIVE_INFINITY);
    const file = path.join(opts.out, `${split}.${opts.format}`);
    const tmp = `${file}.partial-${process.pid}`;
    try {
      if (opts.format === 'parquet') writeParquet(task, split, n, tmp);
      else writeJsonl(task, split, n, tmp, opts.out);
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return { split, file, records: n };
  });
}

function problemOf(r: TaskRecord): string {
  return `<image>${r.question}`;
}

function writeParquet(task: Task, split: Split, n: number, file: string): void {
  const pq = new ParquetWriter({ writer: fileWriter(file), schema: SCHEMA, createdBy: 'papo-stream data export' });
  for (let start = 0; start < n; start += ROWS_PER_GROUP) {
    const records: TaskRecord[] = [];
    for (let i = start; i < Math.min(n, start + ROWS_PER_GROUP); i++) records.push(task.recordAt(split, i));
    const column = (name: string, data: unknown[]) => ({ name, data: data as never });
    const pending = pq.write({
      columnData: [
        column('problem', records.map(problemOf)),
        column(
          'answer',
          records.map((r) => r.answer),
        ),
        column(
          'images',
          records.map((r) => [{ bytes: new Uint8Array(encodePng(r.image)), path: null }]),
        ),
        column(
          'id',
          records.map((r) => r.id),
        ),
        column(
          'family',
          records.map((r) => r.family),
        ),
        column(
          'visionDependency',
          records.map((r) => r.visionDependency),
        ),
        column(
          'demonstration',
          records.map((r) => r.demonstration ?? null),
        ),
      ],
      rowGroupSize: ROWS_PER_GROUP,
    });
    if (pending) throw new Error('the parquet writer wanted to write asynchronously');
  }
  pq.finish();
}

function writeJsonl(task: Task, split: Split, n: number, file: string, out: string): void {
  const imageDir = path.join(out, 'images', split);
  fs.mkdirSync(imageDir, { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    const digits = String(Math.max(n - 1, 0)).length;
    for (let i = 0; i < n; i++) {
      const r = task.recordAt(split, i);
      const rel = path.posix.join('images', split, `${String(i).padStart(digits, '0')}.png`);
      fs.writeFileSync(path.join(out, rel), encodePng(r.image));
      const row = {
        problem: problemOf(r),
        answer: r.answer,
        images: [rel],
        id: r.id,
        family: r.family,
        visionDependency: r.visionDependency,
        ...(r.demonstration === undefined ? {} : { demonstration: r.demonstration }),
      };
      fs.writeSync(fd, `${JSON.stringify(row)}\n`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
