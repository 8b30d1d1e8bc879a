/**
 * What the generated tasks (digits, scenes) share: the seed, the selection of question families and its
 * public description, split sizes, the fingerprint's shape, and a record made from a family's question.
 */
import { checkQuestion, demonstration } from './text.ts';
import type { RgbImage } from '../util/image.ts';
import type { FamilyInfo, Split, TaskRecord } from './types.ts';

/** The task's seed, checked (a record is a pure function of seed, split and index). */
export function checkSeed(task: string, seed: number | undefined): number {
  const s = seed ?? 0;
  if (!Number.isSafeInteger(s)) throw new Error(`${task}: seed must be a safe integer, got ${s}`);
  return s;
}

/** The public description of the selected families (Task.families). */
export function familyInfos(selected: readonly FamilyInfo[]): FamilyInfo[] {
  return selected.map(({ name, visionDependency, answerType, template }) => ({ name, visionDependency, answerType, template }));
}

/** `<task>/v1/<what the task's own options make>/s<seed>/<families>/<train>,<validation>,<test>`. */
export function generatedFingerprint(task: string, own: string, seed: number, selected: readonly { name: string }[], sizes: SplitSizes): string {
  return `${task}/v1/${own}/s${seed}/${selected.map((f) => f.name).join('+')}/${sizes.train},${sizes.validation},${sizes.test}`;
}

/** A family's question about a generated image, as record `index` of `split`. */
export function familyRecord(
  task: string,
  split: Split,
  index: number,
  family: Pick<FamilyInfo, 'name' | 'visionDependency'>,
  q: { question: string; answer: string; reasoning: string },
  image: RgbImage,
  meta: Record<string, unknown>,
): TaskRecord {
  return {
    id: `${task}/${split}/${index}`,
    image,
    question: checkQuestion(q.question),
    answer: q.answer,
    family: family.name,
    visionDependency: family.visionDependency,
    demonstration: demonstration(q.reasoning, q.answer),
    meta,
  };
}

/** The families named (in the order given), or all of them; unknown names are an error listing the valid ones. */
export function selectFamilies<F extends { name: string }>(task: string, all: readonly F[], names?: readonly string[]): F[] {
  if (!names || names.length === 0) return [...all];
  const out: F[] = [];
  for (const n of names) {
    const f = all.find((x) => x.name === n);
    if (!f) throw new Error(`${task}: unknown family ${JSON.stringify(n)}; known: ${all.map((x) => x.name).join(', ')}`);
    if (!out.includes(f)) out.push(f);
  }
  return out;
}

export interface SplitSizes {
  train: number;
  validation: number;
  test: number;
}

/** A stream keeps one epoch's order in memory (4 bytes a record): cap an epoch at 16M records. */
export const MAX_SPLIT_SIZE = 2 ** 24;

export function checkSizes(task: string, s: SplitSizes): SplitSizes {
  for (const k of ['train', 'validation', 'test'] as const) {
    if (!(Number.isInteger(s[k]) && s[k] > 0 && s[k] <= MAX_SPLIT_SIZE)) {
      throw new Error(`${task}: size of split ${k} must be an integer in 1..${MAX_SPLIT_SIZE}, got ${s[k]}`);
    }
  }
  return { ...s };
}
