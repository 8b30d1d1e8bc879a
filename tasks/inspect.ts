/**
 * Looking at a split before training: a sample of records for contact sheets, and the statistics
 * `papo data stats` prints (family mix, answer distribution, text lengths, generation speed).
 */
import { RecordStream } from './stream.ts';
import { responseTokenCount } from './text.ts';
import type { Split, Task, TaskRecord } from './types.ts';

/** Up to n records of the chosen families, in the split's seeded epoch order. */
export function sampleRecords(task: Task, split: Split, n: number, seed: number, families?: readonly string[]): TaskRecord[] {
  const stream = RecordStream.open(task, { split, seed, shuffle: true, epochs: 1 });
  const out: TaskRecord[] = [];
  for (const r of stream) {
    if (!families?.length || families.includes(r.family)) out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

export interface SplitStats {
  task: string;
  split: Split;
  size: number;
  scanned: number;
  image: string;
  msPerRecord: number;
  families: Record<string, { count: number; visionDependency: string; answers: Record<string, number>; maxQuestion: number; maxResponseTokens: number }>;
}

export function splitStats(task: Task, split: Split, n: number, families?: readonly string[]): SplitStats {
  const t0 = performance.now();
  const fams: SplitStats['families'] = {};
  let scanned = 0;
  for (let i = 0; i < n; i++) {
    const r = task.recordAt(split, i);
    scanned++;
    if (families?.length && !families.includes(r.family)) continue;
    const s = (fams[r.family] ??= { count: 0, visionDependency: r.visionDependency, answers: {}, maxQuestion: 0, maxResponseTokens: 0 });
    s.count++;
    s.answers[r.answer] = (s.answers[r.answer] ?? 0) + 1;
    s.maxQuestion = Math.max(s.maxQuestion, r.question.length);
    if (r.demonstration) s.maxResponseTokens = Math.max(s.maxResponseTokens, responseTokenCount(r.demonstration) + 1);
  }
  return {
    task: task.name,
    split,
    size: task.size(split),
    scanned,
    image: `${task.imageHeight}x${task.imageWidth}`,
    msPerRecord: (performance.now() - t0) / Math.max(1, scanned),
    families: fams,
  };
}
