/**
 * A loaded manifest as a `Task`, so user data flows through the same streams, evaluation and preview
 * as the built-in tasks. Records without a `split` field are assigned by a hash of their id (stable
 * when lines are added or reordered); records are kept in manifest order within a split.
 */
import { createHash } from 'node:crypto';
import { mixSeed } from '../../util/rng.ts';
import { checkIndex, SPLITS, type FamilyInfo, type Split, type Task, type TaskRecord } from '../types.ts';
import { loadManifest, type LoadedManifest, type ManifestOptions } from './manifest.ts';

export interface ManifestTaskOptions extends ManifestOptions {
  /** Fractions of unassigned records sent to validation and test. Default 0.1 each. */
  validationFraction?: number;
  testFraction?: number;
  /** Changes the hash-based assignment. Default 0. */
  splitSeed?: number;
}

export class ManifestTask implements Task {
  readonly name: string;
  readonly imageHeight: number;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  readonly fingerprint: string;
  private readonly bySplit: Record<Split, TaskRecord[]> = { train: [], validation: [], test: [] };

  constructor(
    readonly loaded: LoadedManifest,
    opts: ManifestTaskOptions,
  ) {
    this.name = `manifest:${loaded.path}`;
    this.imageHeight = opts.height;
    this.imageWidth = opts.width;
    const v = opts.validationFraction ?? 0.1;
    const t = opts.testFraction ?? 0.1;
    if (!(v >= 0 && t >= 0 && v + t < 1)) throw new Error(`manifest split fractions must be >= 0 and sum below 1, got ${v} and ${t}`);
    const seed = opts.splitSeed ?? 0;
    // the fingerprint covers what the images show, not only their paths: pixels replaced between a run and
    // its resume make a different dataset, which the resume refuses
    const pixels = createHash('sha256');
    let hash = mixSeed(seed, `${opts.height}x${opts.width}/${opts.resize ?? 'auto'}/${opts.fit ?? 'stretch'}`);
    for (const r of loaded.records) {
      let split = r.split;
      if (!split) split = hashSplit(seed, r.id, v, t);
      this.bySplit[split].push(r);
      hash = mixSeed(hash, `${r.id}\n${split}\n${r.question}\n${r.answer}\n${r.meta.image}`);
      pixels.update(r.image.data);
    }
    const fams = new Map<string, FamilyInfo>();
    for (const r of loaded.records) {
      if (!fams.has(r.family)) {
        fams.set(r.family, { name: r.family, visionDependency: r.visionDependency, answerType: 'word', template: r.question });
      }
    }
    this.families = [...fams.values()];
    this.fingerprint = `manifest/v2/${loaded.records.length}/${hash.toString(16)}/${pixels.digest('hex').slice(0, 16)}`;
  }

  static load(path: string, opts: ManifestTaskOptions): ManifestTask {
    return new ManifestTask(loadManifest(path, opts), opts);
  }

  size(split: Split): number {
    return this.bySplit[split].length;
  }

  recordAt(split: Split, index: number): TaskRecord {
    checkIndex(this, split, index);
    return this.bySplit[split][index];
  }

  counts(): Record<Split, number> {
    return Object.fromEntries(SPLITS.map((s) => [s, this.size(s)])) as Record<Split, number>;
  }
}

/** The split of a record with none of its own: validation for a fraction `v` of ids, test for `t`, the rest train. */
export function hashSplit(seed: number, id: string, v: number, t: number): Split {
  const u = fmix32(mixSeed(seed, id)) / 2 ** 32;
  return u < v ? 'validation' : u < v + t ? 'test' : 'train';
}

/** murmur3's finaliser: FNV-1a alone leaves the high bits of similar short ids (r1, r2, ...) correlated. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
