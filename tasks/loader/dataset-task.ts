/**
 * A loaded dataset (dataset.ts) as a `Task`. Splits follow EasyR1: the rows of `train_files` are the
 * training split; the rows of `val_files` are the evaluation data, served both as the validation split
 * (`data.val_split: validation`, `trainer.val_freq`) and as the test split (the before/after test, `papo
 * eval`). Without val files, records with no `split` field of their own are assigned by a hash of their id,
 * as a manifest's are (10 % validation, 10 % test). Records keep file order within a split.
 */
import { createHash } from 'node:crypto';
import { checkIndex, type FamilyInfo, type Split, type Task, type TaskRecord } from '../types.ts';
import { loadDataset, type DatasetOptions, type LoadedDataset } from './dataset.ts';
import { hashSplit } from './manifest-task.ts';

export class DatasetTask implements Task {
  readonly name: string;
  readonly imageHeight: number;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  readonly fingerprint: string;
  private readonly bySplit: Record<Split, TaskRecord[]> = { train: [], validation: [], test: [] };

  constructor(
    readonly loaded: LoadedDataset,
    opts: Pick<DatasetOptions, 'height' | 'width' | 'resize' | 'fit'> & { splitSeed?: number },
  ) {
    this.name = `dataset:${loaded.files.train.join(',')}`;
    this.imageHeight = opts.height;
    this.imageWidth = opts.width;
    const seed = opts.splitSeed ?? 0;
    const hash = createHash('sha256').update(`${opts.height}x${opts.width}/${opts.resize ?? 'auto'}/${opts.fit ?? 'stretch'}\n`);
    for (const r of loaded.records) {
      const split = r.split ?? hashSplit(seed, r.id, 0.1, 0.1);
      this.bySplit[split].push(r);
      if (split === 'validation' && loaded.files.val.length) this.bySplit.test.push(r);
      hash.update(`${r.id}\n${split}\n${r.question}\n${r.answer}\n${r.family}\n${r.visionDependency}\n`).update(r.image.data);
    }
    const fams = new Map<string, FamilyInfo>();
    for (const r of loaded.records) {
      if (!fams.has(r.family)) fams.set(r.family, { name: r.family, visionDependency: r.visionDependency, answerType: 'word', template: r.question });
    }
    this.families = [...fams.values()];
    this.fingerprint = `dataset/v1/${loaded.records.length}/${hash.digest('hex').slice(0, 16)}`;
  }

  static load(opts: DatasetOptions & { splitSeed?: number }): DatasetTask {
    return new DatasetTask(loadDataset(opts), opts);
  }

  size(split: Split): number {
    return this.bySplit[split].length;
  }

  recordAt(split: Split, index: number): TaskRecord {
    checkIndex(this, split, index);
    return this.bySplit[split][index];
  }
}
