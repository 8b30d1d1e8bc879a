/**
 * Several tasks with the same image size as one task (e.g. digits + scenes for one model): record i of a
 * split is record floor(i / k) of task i mod k, so every epoch interleaves the tasks evenly; an epoch
 * is k times the smallest member's split. Ids keep their task prefix, so records stay distinguishable.
 */
import { checkIndex, type FamilyInfo, type Split, type Task, type TaskRecord } from './types.ts';
import type { ErrorClassification } from './error-taxonomy.ts';

export class MixtureTask implements Task {
  readonly name: string;
  readonly imageHeight: number;
  readonly imageWidth: number;
  readonly families: readonly FamilyInfo[];
  readonly fingerprint: string;

  constructor(readonly members: readonly Task[]) {
    if (members.length === 0) throw new Error('mixture needs at least one task');
    const [first] = members;
    for (const t of members) {
      if (t.imageHeight !== first.imageHeight || t.imageWidth !== first.imageWidth) {
        throw new Error(`mixture: task ${t.name} has ${t.imageHeight}x${t.imageWidth} images, ${first.name} has ${first.imageHeight}x${first.imageWidth}`);
      }
    }
    this.name = `mixture(${members.map((t) => t.name).join('+')})`;
    this.imageHeight = first.imageHeight;
    this.imageWidth = first.imageWidth;
    const fams: FamilyInfo[] = [];
    for (const t of members) for (const f of t.families) if (!fams.some((g) => g.name === f.name)) fams.push(f);
    this.families = fams;
    this.fingerprint = `mixture/v1/${members.map((t) => t.fingerprint).join('|')}`;
  }

  size(split: Split): number {
    return this.members.length * Math.min(...this.members.map((t) => t.size(split)));
  }

  recordAt(split: Split, index: number): TaskRecord {
    checkIndex(this, split, index);
    const k = this.members.length;
    return this.members[index % k].recordAt(split, Math.floor(index / k));
  }

  /** The classifier of the first member that declares the record's family; `unclassified` if it has none. */
  classifyError(record: TaskRecord, response: string): ErrorClassification {
    const member = this.members.find((t) => t.families.some((f) => f.name === record.family));
    if (!member?.classifyError) return { class: 'unclassified', detail: `no member of ${this.name} classifies family ${record.family}` };
    return member.classifyError(record, response);
  }
}
