/**
 * Datasets as verl / EasyR1 ship them: parquet, JSONL or JSON files of rows with a prompt, an answer and
 * images (dataset-rows.ts, dataset-image.ts), read with EasyR1's keys:
 *
 * - `promptKey` (default `problem`): the question. EasyR1 splits it at `<image>` to place the images; the
 *   policy reads its one image before the text, so one `<image>` placeholder is removed (more than one is
 *   a problem of the row). Then `formatPrompt` (a template file, format-prompt.ts) is applied.
 * - `answerKey` (default `answer`): the ground truth, a string or a number.
 * - `imageKey` (default `images`): the image (a list of one `{bytes, path}` struct, as HF datasets write it).
 * - `maxPromptLength` (default 61): prompt tokens, the question's characters plus the start token. Longer
 *   prompts are dropped and counted (`filtered`) with `filterOverlongPrompts` (default true, as EasyR1),
 *   else they are problems of their rows.
 * - The optional fields of a manifest line (`id`, `family`, `visionDependency`, `split`, `demonstration`)
 *   mean the same here (record-fields.ts, shared with manifest.ts); other columns are kept in `meta`.
 *
 * Records are decoded and resized when loaded. Problems name the file and the row; `onError: 'fail'`
 * (default) throws a `DatasetError` listing them, `'skip'` drops those rows and counts them. Limits over
 * all the files: `maxRows` rows and `maxDatasetBytes` bytes (from the files' sizes, before reading).
 *
 *   const d = loadDataset({ trainFiles: ['data/train.parquet'], height: 28, width: 56 });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RgbImage } from '../../util/image.ts';
import { MAX_QUESTION_CHARS } from '../text.ts';
import type { Split, TaskRecord } from '../types.ts';
import { imageBytes, type ImageSource } from './dataset-image.ts';
import { DATASET_EXTENSIONS, datasetRows } from './dataset-rows.ts';
import { loadFormatPrompt } from './format-prompt.ts';
import { checkLimit, DEFAULT_MAX_DATASET_BYTES, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_ROW_BYTES, DEFAULT_MAX_ROWS } from './limits.ts';
import { toModelImage, type ImageFitOptions } from './model-image.ts';
import { extraFields, recordFields } from './record-fields.ts';

export interface DatasetOptions extends ImageFitOptions {
  /** Training files (`data.train_files`): `.parquet`, `.jsonl` or `.json` files, or folders of them. */
  trainFiles: string[];
  /** Evaluation files (`data.val_files`): their records are both the validation and the test split. */
  valFiles?: string[];
  promptKey?: string;
  answerKey?: string;
  imageKey?: string;
  /** Where image paths resolve and what they may not leave. Default: each data file's folder. */
  imageDir?: string;
  /** A template file applied to every prompt (`{{ content }}`). */
  formatPrompt?: string;
  /** Prompt tokens: the question's characters plus one. Default 61. */
  maxPromptLength?: number;
  filterOverlongPrompts?: boolean;
  onError?: 'fail' | 'skip';
  allowOutsideManifestDir?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
  maxRows?: number;
  maxDatasetBytes?: number;
  maxRowBytes?: number;
}

export const DEFAULT_PROMPT_KEY = 'problem';
export const DEFAULT_ANSWER_KEY = 'answer';
export const DEFAULT_IMAGE_KEY = 'images';
/** The question budget (60 characters) plus the start token. */
export const MAX_PROMPT_LENGTH = MAX_QUESTION_CHARS + 1;

export interface DatasetIssue {
  readonly file: string;
  /** 1-based row (in a JSONL file, the line). */
  readonly row: number;
  readonly reason: string;
}

export interface DatasetRecord extends TaskRecord {
  /** train for train files; validation for val files; for train files without val files, the row's `split` field or null. */
  readonly split: Split | null;
  readonly file: string;
  readonly row: number;
}

export interface LoadedDataset {
  readonly files: { train: string[]; val: string[] };
  readonly records: DatasetRecord[];
  readonly issues: DatasetIssue[];
  /** Rows read. */
  readonly rows: number;
  /** Rows dropped for a problem (with onError 'skip'). */
  readonly skipped: number;
  /** Rows dropped for a prompt over maxPromptLength (with filterOverlongPrompts). */
  readonly filtered: number;
}

export class DatasetError extends Error {
  constructor(readonly issues: DatasetIssue[]) {
    const shown = issues.slice(0, 10).map((i) => `  ${i.file}: row ${i.row}: ${i.reason}`);
    if (issues.length > 10) shown.push(`  ... and ${issues.length - 10} more`);
    super(`dataset has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${shown.join('\n')}`);
    this.name = 'DatasetError';
  }
}

/** `file` or `file@train` or a folder: the data files it names (EasyR1's `path@split` form; a local file holds one split, train). */
export function expandDataPath(spec: string, key = 'data.train_files'): string[] {
  let p = spec;
  const at = spec.lastIndexOf('@');
  if (at > 0 && !fs.existsSync(spec)) {
    const split = spec.slice(at + 1);
    p = spec.slice(0, at);
    if (split !== 'train') {
      throw new Error(
        `${key}: ${spec}: a local file holds one split, which HF datasets calls train; "@${split}" names a split of a hub dataset, which is not downloaded here: give the file of that split (e.g. ${key.endsWith('val_files') ? 'test.parquet' : 'train.parquet'})`,
      );
    }
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new Error(
      `${key}: ${p} does not exist${/^[\w.-]+\/[\w.-]+$/.test(p) ? ' (a hub dataset name? datasets are not downloaded here: download its parquet files and give their paths)' : ''}`,
    );
  }
  if (st.isDirectory()) {
    const files = fs
      .readdirSync(p)
      .filter((f) => (DATASET_EXTENSIONS as readonly string[]).includes(path.extname(f).toLowerCase()))
      .sort()
      .map((f) => path.join(p, f));
    if (!files.length) throw new Error(`${key}: ${p} is a folder with no ${DATASET_EXTENSIONS.join(', ')} files`);
    return files;
  }
  if (!(DATASET_EXTENSIONS as readonly string[]).includes(path.extname(p).toLowerCase())) {
    throw new Error(`${key}: ${p}: unknown dataset file type; give ${DATASET_EXTENSIONS.join(', ')} files`);
  }
  return [p];
}

const IMAGE_PLACEHOLDER = '<image>';

/** Reads, validates, decodes and resizes every row of the train and val files. */
export function loadDataset(opts: DatasetOptions): LoadedDataset {
  const onError = opts.onError ?? 'fail';
  if (onError !== 'fail' && onError !== 'skip') throw new Error(`dataset onError must be fail or skip, got ${JSON.stringify(onError)}`);
  const promptKey = opts.promptKey ?? DEFAULT_PROMPT_KEY;
  const answerKey = opts.answerKey ?? DEFAULT_ANSWER_KEY;
  const imageKey = opts.imageKey ?? DEFAULT_IMAGE_KEY;
  const maxPrompt = checkLimit('maxPromptLength', opts.maxPromptLength, MAX_PROMPT_LENGTH);
  if (maxPrompt < 2 || maxPrompt > MAX_PROMPT_LENGTH)
    throw new Error(`maxPromptLength must be 2..${MAX_PROMPT_LENGTH} (the start token and 1..${MAX_QUESTION_CHARS} characters), got ${maxPrompt}`);
  const maxRows = checkLimit('maxRows', opts.maxRows, DEFAULT_MAX_ROWS);
  const maxDatasetBytes = checkLimit('maxDatasetBytes', opts.maxDatasetBytes, DEFAULT_MAX_DATASET_BYTES);
  const maxRowBytes = checkLimit('maxRowBytes', opts.maxRowBytes, DEFAULT_MAX_ROW_BYTES);
  const maxImageBytes = checkLimit('maxImageBytes', opts.maxImageBytes, DEFAULT_MAX_IMAGE_BYTES);
  const maxPixels = checkLimit('maxImagePixels', opts.maxImagePixels, DEFAULT_MAX_IMAGE_PIXELS);
  const allowOutside = opts.allowOutsideManifestDir ?? false;
  if (typeof allowOutside !== 'boolean') throw new Error(`allowOutsideManifestDir must be true or false, got ${String(allowOutside)}`);
  const filter = opts.filterOverlongPrompts ?? true;
  if (!opts.trainFiles?.length) throw new Error('a dataset needs train files (data.train_files)');
  const train = opts.trainFiles.flatMap((f) => expandDataPath(f, 'data.train_files')).map((f) => path.resolve(f));
  const val = (opts.valFiles ?? []).flatMap((f) => expandDataPath(f, 'data.val_files')).map((f) => path.resolve(f));
  let total = 0;
  for (const f of [...train, ...val]) {
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch (e) {
      throw new Error(`cannot read dataset file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!st.isFile()) throw new Error(`dataset file ${f} is not a regular file`);
    total += st.size;
    if (total > maxDatasetBytes)
      throw new Error(`dataset files are ${total}+ bytes together (at ${f}), over the limit of ${maxDatasetBytes} (max_dataset_bytes)`);
  }
  const format = opts.formatPrompt ? loadFormatPrompt(opts.formatPrompt) : undefined;
  const question = (raw: string): string => {
    const parts = raw.split(IMAGE_PLACEHOLDER);
    if (parts.length > 2) throw new Error(`has ${parts.length - 1} ${IMAGE_PLACEHOLDER} placeholders: the policy reads exactly one image per prompt`);
    const text =
      parts.length === 2
        ? parts
            .map((p) => p.trim())
            .filter(Boolean)
            .join(' ')
        : raw;
    return format ? format(text) : text;
  };
  const imageRoot = opts.imageDir === undefined ? undefined : path.resolve(opts.imageDir);
  const known = new Set([promptKey, answerKey, imageKey, 'id', 'family', 'visionDependency', 'split', 'demonstration']);
  const records: DatasetRecord[] = [];
  const issues: DatasetIssue[] = [];
  const ids = new Map<string, string>();
  const idRows = new Map<string, number>();
  let rows = 0;
  let skipped = 0;
  let filtered = 0;
  for (const [files, fileSplit] of [
    [train, val.length ? 'train' : null],
    [val, 'validation'],
  ] as const) {
    for (const file of files) {
      const root = imageRoot ?? path.dirname(file);
      let realRoot = root;
      try {
        realRoot = fs.realpathSync(root);
      } catch {
        // a missing image_dir: every path in it reports its image as missing
      }
      const source: ImageSource = { root, realRoot, allowOutside, maxBytes: maxImageBytes };
      try {
        for (const r of datasetRows(file, { maxRowBytes })) {
          rows += r.problem !== undefined ? (r.count ?? 1) : 1;
          if (rows > maxRows) throw new Error(`row ${r.row}: more than ${maxRows} rows in the dataset's files (max_rows)`);
          const problems: string[] = [];
          const bad = (reason: string) => void problems.push(reason);
          let record: DatasetRecord | null = null;
          if (r.problem !== undefined) bad(r.problem);
          else if (typeof r.value !== 'object' || r.value === null || Array.isArray(r.value) || r.value instanceof Uint8Array) bad('row is not an object');
          else {
            const o = withoutNulls(r.value as Record<string, unknown>);
            const raw = o[promptKey];
            if (filter && typeof raw === 'string') {
              let q: string | undefined;
              try {
                q = question(raw);
              } catch {
                // reported by recordFields below
              }
              if (q !== undefined && q.length + 1 > maxPrompt) {
                filtered++;
                continue;
              }
            }
            record = datasetRecord(
              o,
              { file, row: r.row, fileSplit, promptKey, answerKey, imageKey, known, question, maxPrompt, ids: idRows, source, opts, maxPixels },
              bad,
            );
          }
          if (problems.length) {
            skipped += r.problem !== undefined ? (r.count ?? 1) : 1;
            for (const reason of problems) issues.push({ file, row: r.row, reason });
          } else if (record) {
            if (ids.has(record.id) && ids.get(record.id) !== file) {
              skipped++;
              issues.push({ file, row: r.row, reason: `duplicate id ${JSON.stringify(record.id)} (first in ${ids.get(record.id)})` });
              continue;
            }
            ids.set(record.id, file);
            idRows.set(record.id, r.row);
            records.push(record);
          }
        }
      } catch (e) {
        throw new Error(`dataset file ${file}: ${(e as Error).message}`);
      }
      idRows.clear();
    }
  }
  if (onError === 'fail' && issues.length) throw new DatasetError(issues);
  return { files: { train, val }, records, issues, rows, skipped, filtered };
}

interface RowContext {
  file: string;
  row: number;
  fileSplit: Split | null;
  promptKey: string;
  answerKey: string;
  imageKey: string;
  known: ReadonlySet<string>;
  question: (raw: string) => string;
  maxPrompt: number;
  ids: ReadonlyMap<string, number>;
  source: ImageSource;
  opts: ImageFitOptions;
  maxPixels: number;
}

function datasetRecord(o: Record<string, unknown>, c: RowContext, bad: (reason: string) => void): DatasetRecord | null {
  const fields = recordFields(
    o,
    { question: c.promptKey, answer: c.answerKey },
    {
      defaultId: `${path.basename(c.file)}:${c.row}`,
      defaultFamily: 'dataset',
      maxQuestionChars: c.maxPrompt - 1,
      ids: c.ids,
      question: c.question,
      unit: 'row',
    },
    bad,
  );
  let pixels: RgbImage | undefined;
  let image: string | undefined;
  try {
    const got = imageBytes(o[c.imageKey], c.imageKey, c.source);
    image = got.image;
    try {
      pixels = toModelImage(got.bytes, c.opts, c.maxPixels);
    } catch (e) {
      bad(`field "${c.imageKey}"${got.file ? `: ${got.file}` : ''}: ${(e as Error).message}`);
    }
  } catch (e) {
    bad((e as Error).message);
  }
  if (!fields || !pixels || image === undefined) return null;
  const meta = extraFields(o, c.known, { image, file: c.file, row: c.row });
  for (const [k, v] of Object.entries(meta)) meta[k] = plain(v);
  return { ...fields, split: c.fileSplit ?? fields.split, image: pixels, meta, file: c.file, row: c.row };
}

/** A parquet null is an absent value: an optional column left empty means the field's default. */
function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

/** A value `meta` can hold as JSON: bigints as numbers (strings past 2^53), binary data as its length, dates as ISO strings. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: plain(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}
