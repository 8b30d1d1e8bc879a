/** Validation of task options shared by the built-in tasks: family selection and split sizes. */

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
