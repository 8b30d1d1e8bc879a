/**
 * The digits task: a 28 x (28 * n) canvas holding n real handwritten MNIST digits side by side (default
 * n = 2, i.e. 28 x 56), and questions about them (see families.ts).
 *
 * Record `index` of a split is a pure function of (seed, split, index): its family is
 * `families[index % families.length]` (so every epoch is balanced), and everything else is drawn from
 * `Rng.derive(seed, 'digits', split, index)`. Digit images come only from that split's pool, so no image
 * of a validation or test question is ever seen in training.
 */
import { makeImage, type RgbImage } from '../../util/image.ts';
import { Rng } from '../../util/rng.ts';
import { checkIndex, type FamilyInfo, type Split, type Task, type TaskRecord } from '../types.ts';
import { checkSeed, checkSizes, familyInfos, familyRecord, generatedFingerprint, selectFamilies, type SplitSizes } from '../config-checks.ts';
import { DIGIT_FAMILIES, type DigitFamily } from './families.ts';
import { classifyDigitsError } from './error-grammar.ts';
import type { ErrorClassification } from '../error-taxonomy.ts';
import { DIGIT_SIZE, digitPixels, mnistPool, type MnistPool } from './mnist-pool.ts';

export interface DigitsOptions {
  seed?: number;
  /** Digits per canvas, 2..4 (the canvas is 28 x 28n). Default 2. */
  digits?: number;
  /** Family names to include; default all. */
  families?: readonly string[];
  /** Records per epoch of each split. */
  sizes?: Partial<SplitSizes>;
}

export const DEFAULT_DIGITS_SIZES: SplitSizes = { train: 20_000, validation: 500, test: 1_000 };

export class DigitsTask implements Task {
  readonly name = 'digits';
  readonly imageHeight = DIGIT_SIZE;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  readonly fingerprint: string;
  readonly seed: number;
  readonly digits: number;
  private readonly selected: DigitFamily[];
  private readonly sizes: SplitSizes;
  private readonly pool: MnistPool;

  constructor(opts: DigitsOptions = {}) {
    this.seed = checkSeed('digits', opts.seed);
    this.digits = opts.digits ?? 2;
    if (!(Number.isInteger(this.digits) && this.digits >= 2 && this.digits <= 4)) {
      throw new Error(`digits: digits per canvas must be 2, 3 or 4, got ${this.digits}`);
    }
    this.imageWidth = DIGIT_SIZE * this.digits;
    this.selected = selectFamilies('digits', DIGIT_FAMILIES, opts.families);
    this.families = familyInfos(this.selected);
    this.sizes = checkSizes('digits', { ...DEFAULT_DIGITS_SIZES, ...opts.sizes });
    this.fingerprint = generatedFingerprint('digits', `n${this.digits}`, this.seed, this.selected, this.sizes);
    this.pool = mnistPool();
  }

  size(split: Split): number {
    return this.sizes[split];
  }

  recordAt(split: Split, index: number): TaskRecord {
    checkIndex(this, split, index);
    const family = this.selected[index % this.selected.length];
    const rng = Rng.derive(this.seed, 'digits', split, index);
    const labels: number[] = [];
    const imageIds: number[] = [];
    for (let k = 0; k < this.digits; k++) {
      const d = rng.int(10);
      const ids = this.pool.byPool[split][d];
      labels.push(d);
      imageIds.push(ids[rng.int(ids.length)]);
    }
    const q = family.make(labels, rng);
    return familyRecord('digits', split, index, family, q, this.compose(imageIds), {
      digits: labels,
      mnistImages: imageIds.map((id) => `${this.pool.labels[id]}:${this.pool.sourceIndex[id]}`),
      ...q.params,
    });
  }

  /** Why a failed response failed, from the digits drawn and the family's trace grammar (error-grammar.ts). */
  classifyError(record: TaskRecord, response: string): ErrorClassification {
    return classifyDigitsError(record, response);
  }

  /** Digit k occupies columns [28k, 28k + 28); MNIST ink is white on black, copied to all channels. */
  private compose(imageIds: readonly number[]): RgbImage {
    const img = makeImage(DIGIT_SIZE, this.imageWidth);
    const W = this.imageWidth;
    imageIds.forEach((id, k) => {
      const px = digitPixels(this.pool, id);
      for (let y = 0; y < DIGIT_SIZE; y++) {
        for (let x = 0; x < DIGIT_SIZE; x++) {
          const v = px[y * DIGIT_SIZE + x];
          const o = (y * W + k * DIGIT_SIZE + x) * 3;
          img.data[o] = v;
          img.data[o + 1] = v;
          img.data[o + 2] = v;
        }
      }
    });
    return img;
  }
}
