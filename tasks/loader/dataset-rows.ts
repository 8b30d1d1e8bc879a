/**
 * The rows of one dataset file as EasyR1 reads them (`load_dataset` by the file's extension): `.parquet`
 * (one row group at a time, parquet-file.ts), `.jsonl` (JSON lines), `.json` (a JSON array of objects, or
 * JSON lines). Rows are numbered from 1 (in a JSONL file, the line number; blank lines are not rows).
 *
 * Untrusted input, bounded before it is held: a JSON line longer than `maxRowBytes` is a problem of its row
 * and is skipped without being kept (the file is read in 1 MiB chunks); a parquet row group whose declared
 * uncompressed size exceeds its rows x `maxRowBytes` is refused before it is read, and a parquet row whose
 * values exceed `maxRowBytes` is a problem of its row. File-level problems (not a regular file, an unknown
 * extension, an unsupported parquet codec, a JSON array file too large to parse at once) throw, naming the file.
 *
 *   for (const r of datasetRows('train.parquet', { maxRowBytes })) r.value ?? r.problem;
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ParquetFile } from './parquet-file.ts';
import { MAX_PARQUET_FOOTER_BYTES } from './limits.ts';
import { malformedJson } from './record-fields.ts';

export const DATASET_EXTENSIONS = ['.parquet', '.jsonl', '.json'] as const;

/** One row: its value (any JSON or parquet value; the caller checks it is an object) or a problem; `count` rows when a whole row group is refused. */
export type DatasetRow = { row: number; value: unknown; problem?: undefined } | { row: number; problem: string; count?: number };

export interface RowLimits {
  maxRowBytes: number;
}

/** A JSON array is parsed whole: above this it must be written as JSON lines (V8 strings stop near 512 MiB). */
const MAX_JSON_ARRAY_BYTES = 256 * 2 ** 20;
const CHUNK = 2 ** 20;

/** The rows of `file`, by its extension; file-level problems throw. */
export function* datasetRows(file: string, limits: RowLimits): Generator<DatasetRow> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.parquet') yield* parquetRows(file, limits);
  else if (ext === '.jsonl') yield* jsonLines(file, limits);
  else if (ext === '.json') yield* startsWithBracket(file) ? jsonArray(file) : jsonLines(file, limits);
  else throw new Error(`unknown dataset file type "${ext || '(none)'}": give ${DATASET_EXTENSIONS.join(', ')} files`);
}

function* parquetRows(file: string, limits: RowLimits): Generator<DatasetRow> {
  const pq = ParquetFile.open(file, { maxFooterBytes: MAX_PARQUET_FOOTER_BYTES });
  try {
    let start = 0;
    for (const [i, g] of pq.groups.entries()) {
      if (g.bytes > g.rows * limits.maxRowBytes) {
        yield {
          row: start + 1,
          count: g.rows,
          problem: `row group ${i} (rows ${start + 1}-${start + g.rows}) declares ${g.bytes} uncompressed bytes, over ${g.rows} rows x max_row_bytes ${limits.maxRowBytes}; not read`,
        };
      } else if (g.rows > 0) {
        const rows = pq.rows(start, start + g.rows);
        for (const [k, value] of rows.entries()) {
          const bytes = valueBytes(value);
          if (bytes > limits.maxRowBytes)
            yield { row: start + k + 1, problem: `row has ${bytes} bytes of values, over the limit of ${limits.maxRowBytes} (max_row_bytes)` };
          else yield { row: start + k + 1, value };
        }
      }
      start += g.rows;
    }
  } finally {
    pq.close();
  }
}

/** Bytes a value holds: string lengths, binary lengths, 8 per other scalar. */
function valueBytes(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + valueBytes(x), 0);
  if (v !== null && typeof v === 'object') return Object.values(v).reduce((n: number, x) => n + valueBytes(x), 0);
  return 8;
}

function openRegular(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new Error('not a regular file');
  }
  return fd;
}

function startsWithBracket(file: string): boolean {
  const fd = openRegular(file);
  try {
    const buf = Buffer.alloc(4096);
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return false;
      for (let i = 0; i < n; i++) {
        const c = buf[i];
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || (pos === 0 && i < 3 && (c === 0xef || c === 0xbb || c === 0xbf))) continue;
        return c === 0x5b;
      }
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function* jsonArray(file: string): Generator<DatasetRow> {
  const fd = openRegular(file);
  let text: string;
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_JSON_ARRAY_BYTES) {
      throw new Error(
        `a JSON array of ${size} bytes, over the ${MAX_JSON_ARRAY_BYTES} a JSON array file may have (it is parsed whole); write it as JSON lines (.jsonl) or parquet`,
      );
    }
    const buf = Buffer.alloc(size);
    for (let n = 0; n < size; ) {
      const got = fs.readSync(fd, buf, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    text = buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(malformedJson(e, 'a .json file must hold a JSON array of objects, or JSON lines'));
  }
  if (!Array.isArray(parsed)) throw new Error('a .json file must hold a JSON array of objects, or JSON lines');
  for (const [i, value] of parsed.entries()) yield { row: i + 1, value };
}

function* jsonLines(file: string, limits: RowLimits): Generator<DatasetRow> {
  const fd = openRegular(file);
  try {
    const buf = Buffer.alloc(CHUNK);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let tooLong = false;
    let line = 0;
    let pos = 0;
    const finish = (): DatasetRow | undefined => {
      line++;
      if (tooLong) {
        const r = { row: line, problem: `line is ${pendingBytes} bytes, over the limit of ${limits.maxRowBytes} (max_row_bytes)` };
        pending = [];
        pendingBytes = 0;
        tooLong = false;
        return r;
      }
      let text = Buffer.concat(pending).toString('utf8');
      pending = [];
      pendingBytes = 0;
      if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.trim() === '') return undefined;
      try {
        return { row: line, value: JSON.parse(text) };
      } catch (e) {
        return { row: line, problem: malformedJson(e) };
      }
    };
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      let start = 0;
      for (let nl = buf.indexOf(0x0a, 0); nl >= 0 && nl < n; nl = buf.indexOf(0x0a, start)) {
        take(buf.subarray(start, nl));
        start = nl + 1;
        const r = finish();
        if (r) yield r;
      }
      take(buf.subarray(start, n));
    }
    if (pendingBytes > 0 || tooLong) {
      const r = finish();
      if (r) yield r;
    }

    function take(part: Buffer): void {
      pendingBytes += part.length;
      if (pendingBytes > limits.maxRowBytes) {
        tooLong = true;
        pending = [];
      } else if (part.length) pending.push(Buffer.from(part));
    }
  } finally {
    fs.closeSync(fd);
  }
}
