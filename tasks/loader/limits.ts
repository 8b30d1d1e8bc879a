/**
 * What reading one manifest image may cost. A manifest is data from elsewhere: its image paths and
 * files are untrusted, so each file is capped in bytes before it is read and in pixels before it is
 * decoded (from the size its header declares). The defaults admit any 4096 x 4096 image; larger ones
 * are refused with the limit's name, so a user who needs them can raise it.
 */

/** Bytes of one image file (64 MiB). */
export const DEFAULT_MAX_IMAGE_BYTES = 64 * 2 ** 20;

/** Pixels of one decoded image (2^24 = 4096 x 4096, about 16.8 megapixels; ~64 MB as RGBA). */
export const DEFAULT_MAX_IMAGE_PIXELS = 2 ** 24;

/** A limit option: a positive safe integer, else an error naming it. */
export function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && Number.isSafeInteger(value) && value > 0)) {
    throw new Error(`${name} must be a positive integer, got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Records a dataset or manifest may have together (200,000). Records are held decoded in memory, about 7 KB
 * each at the default 28 x 56 image size (200,000 records measured 1.36 GB): raise the limit knowingly.
 */
export const DEFAULT_MAX_ROWS = 200_000;

/** Bytes all the files of a dataset (or a manifest file) may have together, from their sizes, before reading (16 GiB). */
export const DEFAULT_MAX_DATASET_BYTES = 16 * 2 ** 30;

/** Bytes one row of a dataset file may have: a JSON line, or a parquet row's values (80 MiB: one image at the byte limit and its text). */
export const DEFAULT_MAX_ROW_BYTES = 80 * 2 ** 20;

/** Bytes of a parquet file's footer (its metadata), read before any row. */
export const MAX_PARQUET_FOOTER_BYTES = 64 * 2 ** 20;
