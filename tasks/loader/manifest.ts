/**
 * User datasets: a JSONL manifest, one record per line:
 *
 *   {"image": "imgs/a.png", "question": "How many cats?", "answer": "3", "source": "web"}
 *
 * `image` is a path relative to the manifest's folder (PNG or JPEG); `question` a string; `answer` a
 * string or finite number. Optional: `id` (default `<manifest file>:<line>`), `family` (default
 * `manifest`), `visionDependency` ('high' | 'low', default 'high'), `split` ('train' | 'validation' |
 * 'test'; default: assigned by a hash of the id), `demonstration` (a well-formed response whose answer is
 * the ground truth). Every other field is kept in `meta`. Blank lines are ignored.
 *
 * Images are decoded and resized when the manifest is loaded, so every problem surfaces at once, with
 * its line number and file: malformed JSON, missing or mistyped fields, duplicate ids, text the
 * tokenizer cannot encode, missing and undecodable image files. `onError: 'fail'` (default) throws a
 * `ManifestError` listing all of them; `'skip'` drops those lines and counts them.
 *
 * Image paths are untrusted (image-file.ts): they may not leave the manifest's directory unless
 * `allowOutsideManifestDir` is set, only regular files are read, and each file is capped in bytes
 * (`maxImageBytes`) and in decoded pixels (`maxImagePixels`, checked from its header before decoding).
 * A UTF-8 byte-order mark at the start of the file is ignored.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { RgbImage } from '../../util/image.ts';
import { MAX_QUESTION_CHARS } from '../text.ts';
import type { Split, TaskRecord } from '../types.ts';
import { confineImagePath, readImageFile } from './image-file.ts';
import { checkLimit, DEFAULT_MAX_DATASET_BYTES, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_ROWS } from './limits.ts';
import { toModelImage, type ImageFitOptions } from './model-image.ts';
import { describeValue, extraFields, malformedJson, recordFields } from './record-fields.ts';

export { describeValue } from './record-fields.ts';

export interface ManifestOptions extends ImageFitOptions {
  onError?: 'fail' | 'skip';
  /** Longer questions are an error. Default 60, the policy's prompt budget. */
  maxQuestionChars?: number;
  /** Let image paths lead outside the manifest's directory (`../x`, absolute paths, links out). Default false. */
  allowOutsideManifestDir?: boolean;
  /** Bytes one image file may have. Default 64 MiB. */
  maxImageBytes?: number;
  /** Pixels one decoded image may have, from its header. Default 2^24 (4096 x 4096). */
  maxImagePixels?: number;
  /** Records (non-blank lines) the manifest may have: all are held decoded in memory. Default 200,000. */
  maxRows?: number;
  /** Bytes the manifest file may have, from its size before reading. Default 16 GiB. */
  maxBytes?: number;
}

export interface ManifestIssue {
  /** 1-based line in the manifest. */
  readonly line: number;
  /** The manifest, or the image file when the problem is the image. */
  readonly file: string;
  readonly reason: string;
}

export interface ManifestRecord extends TaskRecord {
  /** From the line's `split` field, or null when the loader should assign one. */
  readonly split: Split | null;
  readonly line: number;
}

export interface LoadedManifest {
  readonly path: string;
  readonly records: ManifestRecord[];
  /** Problems found; with onError 'skip' their lines were dropped. */
  readonly issues: ManifestIssue[];
  /** Non-blank lines read. */
  readonly lines: number;
  readonly skipped: number;
}

export class ManifestError extends Error {
  constructor(readonly issues: ManifestIssue[]) {
    const shown = issues.slice(0, 10).map((i) => `  ${i.file}:${i.line}: ${i.reason}`);
    if (issues.length > 10) shown.push(`  ... and ${issues.length - 10} more`);
    super(`manifest has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${shown.join('\n')}`);
    this.name = 'ManifestError';
  }
}

const KNOWN = new Set(['id', 'image', 'question', 'answer', 'family', 'visionDependency', 'split', 'demonstration']);

/** Reads, validates, decodes and resizes a whole manifest. */
export function loadManifest(path: string, opts: ManifestOptions): LoadedManifest {
  const manifest = resolve(path);
  const root = dirname(manifest);
  const onError = opts.onError ?? 'fail';
  if (onError !== 'fail' && onError !== 'skip') throw new Error(`manifest onError must be fail or skip, got ${JSON.stringify(onError)}`);
  const maxQ = opts.maxQuestionChars ?? MAX_QUESTION_CHARS;
  const maxRows = checkLimit('maxRows', opts.maxRows, DEFAULT_MAX_ROWS);
  const maxBytes = checkLimit('maxBytes', opts.maxBytes, DEFAULT_MAX_DATASET_BYTES);
  const images: ImageReading = {
    root,
    realRoot: root,
    allowOutside: opts.allowOutsideManifestDir ?? false,
    maxBytes: checkLimit('maxImageBytes', opts.maxImageBytes, DEFAULT_MAX_IMAGE_BYTES),
    maxPixels: checkLimit('maxImagePixels', opts.maxImagePixels, DEFAULT_MAX_IMAGE_PIXELS),
  };
  if (typeof images.allowOutside !== 'boolean') throw new Error(`allowOutsideManifestDir must be true or false, got ${describeValue(images.allowOutside)}`);
  let text: string;
  try {
    // A FIFO or device given as the manifest would block or never end: only regular files are read.
    const st = statSync(manifest);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > maxBytes) throw new Error(`it has ${st.size} bytes, over the limit of ${maxBytes} (data.max_dataset_bytes)`);
    text = readFileSync(manifest, 'utf8');
    images.realRoot = realpathSync(root);
  } catch (e) {
    throw new Error(`cannot read manifest ${manifest}: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // UTF-8 byte-order mark
  const records: ManifestRecord[] = [];
  const issues: ManifestIssue[] = [];
  const ids = new Map<string, number>();
  let lines = 0;
  const rows = text.split(/\r?\n/);
  // counted before any image is read: a manifest past the bound is refused at once, not after decoding it
  const nonBlank = rows.reduce((n, raw) => n + (raw.trim() === '' ? 0 : 1), 0);
  if (nonBlank > maxRows)
    throw new Error(
      `manifest ${manifest} has ${nonBlank} records, over the limit of ${maxRows} (data.max_rows; records are held decoded in memory, about 7 KB each at 28 x 56)`,
    );
  rows.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    lines++;
    const problems: ManifestIssue[] = [];
    const bad = (reason: string, file = manifest): void => void problems.push({ line, file, reason });
    const record = parseLine(raw, line, manifest, images, opts, maxQ, ids, bad);
    if (problems.length) issues.push(...problems);
    else if (record) {
      ids.set(record.id, line);
      records.push(record);
    }
  });
  if (onError === 'fail' && issues.length) throw new ManifestError(issues);
  const badLines = new Set(issues.map((i) => i.line)).size;
  return { path: manifest, records, issues, lines, skipped: badLines };
}

interface ImageReading {
  root: string;
  realRoot: string;
  allowOutside: boolean;
  maxBytes: number;
  maxPixels: number;
}

function parseLine(
  raw: string,
  line: number,
  manifest: string,
  images: ImageReading,
  opts: ManifestOptions,
  maxQ: number,
  ids: Map<string, number>,
  bad: (reason: string, file?: string) => void,
): ManifestRecord | null {
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch (e) {
    bad(malformedJson(e));
    return null;
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    bad('line is not a JSON object');
    return null;
  }
  const o = obj as Record<string, unknown>;
  let image: string | undefined;
  if (o.image === undefined) bad('missing field "image"');
  else if (typeof o.image !== 'string' || o.image.trim() === '') bad(`field "image" must be a non-empty string, got ${describeValue(o.image)}`);
  else image = o.image;
  const fields = recordFields(o, { question: 'question', answer: 'answer' }, { defaultId: `${basename(manifest)}:${line}`, maxQuestionChars: maxQ, ids }, bad);
  let pixels: RgbImage | undefined;
  if (image !== undefined) {
    let file = resolve(images.root, image);
    try {
      file = confineImagePath(images.root, images.realRoot, image, images.allowOutside);
      pixels = toModelImage(readImageFile(file, { maxBytes: images.maxBytes }), opts, images.maxPixels);
    } catch (e) {
      bad((e as Error).message, file);
    }
  }
  if (!(image && fields && pixels)) return null;
  return { ...fields, image: pixels, meta: extraFields(o, KNOWN, { image }), line };
}
