/**
 * The scenes task: coloured shapes on a grid of 14 x 14 cells (default 28 x 56, the digits task's size,
 * so one model can train on both) with counting, colour, shape and spatial questions.
 *
 * Record `index` of a split is a pure function of (seed, split, index): family
 * `families[index % families.length]`, scene and question from `Rng.derive(seed, 'scenes', split, index)`.
 * Held-out scenes: every possible scene (its full list of shapes, colours and pixel positions) belongs
 * to exactly one split, by a hash of its description (10% validation, 10% test); a split redraws scenes
 * that hash elsewhere. So no validation or test image can ever appear in training.
 */
import { mixSeed, Rng } from '../../util/rng.ts';
import { checkIndex, type FamilyInfo, type Split, type Task, type TaskRecord } from '../types.ts';
import { checkSeed, checkSizes, familyInfos, familyRecord, generatedFingerprint, selectFamilies, type SplitSizes } from '../config-checks.ts';
import { SCENE_FAMILIES, type SceneFamily } from './families.ts';
import { classifyScenesError } from './error-grammar.ts';
import type { ErrorClassification } from '../error-taxonomy.ts';
import { CELL, randomScene, renderScene, type SceneObject } from './render.ts';

export interface ScenesOptions {
  seed?: number;
  /** Canvas size, multiples of 14. Default 28 x 56. */
  height?: number;
  width?: number;
  /** Shapes per scene: 1..maxObjects, at most 4 (longer scene listings would not fit the response budget). */
  maxObjects?: number;
  families?: readonly string[];
  sizes?: Partial<SplitSizes>;
}

export const DEFAULT_SCENES_SIZES: SplitSizes = { train: 20_000, validation: 500, test: 1_000 };
const MAX_TRIES = 400;

export class ScenesTask implements Task {
  readonly name = 'scenes';
  readonly imageHeight: number;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  readonly fingerprint: string;
  readonly seed: number;
  readonly maxObjects: number;
  private readonly rows: number;
  private readonly cols: number;
  private readonly selected: SceneFamily[];
  private readonly sizes: SplitSizes;

  constructor(opts: ScenesOptions = {}) {
    this.seed = checkSeed('scenes', opts.seed);
    this.imageHeight = opts.height ?? 28;
    this.imageWidth = opts.width ?? 56;
    for (const [k, v] of [
      ['height', this.imageHeight],
      ['width', this.imageWidth],
    ] as const) {
      if (!(Number.isInteger(v) && v >= CELL && v % CELL === 0)) throw new Error(`scenes: ${k} must be a positive multiple of ${CELL}, got ${v}`);
    }
    this.rows = this.imageHeight / CELL;
    this.cols = this.imageWidth / CELL;
    this.maxObjects = opts.maxObjects ?? 4;
    if (!(Number.isInteger(this.maxObjects) && this.maxObjects >= 2 && this.maxObjects <= Math.min(4, this.rows * this.cols))) {
      throw new Error(`scenes: maxObjects must be an integer in 2..${Math.min(4, this.rows * this.cols)}, got ${this.maxObjects}`);
    }
    const usable = SCENE_FAMILIES.filter((f) => (f.minRows ?? 1) <= this.rows);
    if (opts.families) {
      const tooSmall = opts.families.filter((n) => SCENE_FAMILIES.some((f) => f.name === n && !usable.includes(f)));
      if (tooSmall.length) throw new Error(`scenes: family ${tooSmall.join(', ')} needs at least 2 rows of cells (height >= 28)`);
    }
    this.selected = selectFamilies('scenes', usable, opts.families);
    this.families = familyInfos(this.selected);
    this.sizes = checkSizes('scenes', { ...DEFAULT_SCENES_SIZES, ...opts.sizes });
    this.fingerprint = generatedFingerprint('scenes', `${this.imageHeight}x${this.imageWidth}/m${this.maxObjects}`, this.seed, this.selected, this.sizes);
  }

  size(split: Split): number {
    return this.sizes[split];
  }

  recordAt(split: Split, index: number): TaskRecord {
    checkIndex(this, split, index);
    const family = this.selected[index % this.selected.length];
    const rng = Rng.derive(this.seed, 'scenes', split, index);
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const scene = randomScene(this.rows, this.cols, this.maxObjects, rng);
      if (sceneSplit(scene) !== split) continue;
      const q = family.make(scene, rng);
      if (!q) continue;
      return familyRecord('scenes', split, index, family, q, renderScene(scene, this.imageHeight, this.imageWidth), {
        objects: scene.map(describe),
        ...q.params,
      });
    }
    throw new Error(`scenes: family ${family.name} found no suitable scene in ${MAX_TRIES} tries (record ${split}/${index})`);
  }

  /** Why a failed response failed, from the objects drawn and the family's trace grammar (error-grammar.ts). */
  classifyError(record: TaskRecord, response: string): ErrorClassification {
    return classifyScenesError(record, response);
  }
}

const describe = (o: SceneObject): Record<string, unknown> => ({ ...o });

/** The split a scene belongs to, from a hash of everything that determines its pixels. */
export function sceneSplit(scene: readonly SceneObject[]): Split {
  const key = scene.map((o) => `${o.shape},${o.color},${o.x},${o.y},${o.size}`).join(';');
  let h = mixSeed(0x5ce9e, key);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  const bucket = ((h ^ (h >>> 16)) >>> 0) % 10;
  return bucket === 0 ? 'test' : bucket === 1 ? 'validation' : 'train';
}
