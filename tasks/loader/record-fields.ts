/**
 * The checks every user record passes, whatever file it came from (a JSONL manifest, a parquet / JSONL /
 * JSON dataset): a question the tokenizer can encode within the prompt budget, a non-empty answer, an
 * optional unique id, family, vision dependency, split and demonstration, and every other field kept in
 * `meta` as an ordinary key. Each problem goes to `bad` with a reason naming the field (the caller names
 * the file and the line or row).
 *
 *   const fields = recordFields(obj, { question: 'problem', answer: 'answer' }, { defaultId: 'a.parquet:3', maxQuestionChars: 60, ids }, bad);
 */
import { parseResponse } from '../rewards/format.ts';
import { normalizeAnswer } from '../rewards/accuracy.ts';
import { firstNonPrintable } from '../text.ts';
import type { Split, VisionDependency } from '../types.ts';

/** The fields of a record that are not its image. */
export interface RecordFields {
  id: string;
  question: string;
  answer: string;
  family: string;
  visionDependency: VisionDependency;
  split: Split | null;
  demonstration?: string;
}

export interface RecordFieldOptions {
  /** The id of a record without an `id` field. */
  defaultId: string;
  /** Longer questions are a problem of the record. */
  maxQuestionChars: number;
  /** Ids already taken, with where they were taken (a line or row number); the caller adds the record's. */
  ids: ReadonlyMap<string, number>;
  /** What the question is before it is checked (EasyR1's `<image>` placeholder and `format_prompt`). */
  question?: (raw: string) => string;
  /** How `ids` values are named in a duplicate-id message. Default 'line'. */
  unit?: string;
  /** The family of a record without a `family` field. Default 'manifest'. */
  defaultFamily?: string;
}

/** Where the question and the answer are: `question`/`answer` in a manifest, `prompt_key`/`answer_key` in a dataset. */
export interface FieldNames {
  question: string;
  answer: string;
}

/** A value for an error message: short, and non-finite numbers as themselves (JSON would say null). */
/**
 * What is wrong with a line (or file) that JSON.parse refused, without quoting it: a file given as a
 * dataset by mistake (or by a foreign run's config) is never echoed, only the place of the error.
 */
export function malformedJson(e: unknown, what = 'each line must be one JSON object'): string {
  const at = /at position (\d+)/.exec((e as Error).message)?.[1];
  return `malformed JSON${at === undefined ? '' : ` at column ${Number(at) + 1}`} (${what})`;
}

export function describeValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === undefined) return String(v);
  if (v instanceof Uint8Array) return `${v.length} bytes of binary data`;
  let text: string;
  try {
    text = JSON.stringify(v) ?? typeof v;
  } catch {
    text = Array.isArray(v) ? 'an array' : typeof v; // too deep to print
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The record's text fields, or null when any is missing or wrong (each problem reported to `bad`). */
export function recordFields(o: Record<string, unknown>, names: FieldNames, opts: RecordFieldOptions, bad: (reason: string) => void): RecordFields | null {
  let ok = true;
  const fail = (reason: string): undefined => {
    ok = false;
    bad(reason);
    return undefined;
  };
  const str = (field: string, required: boolean): string | undefined => {
    const v = own(o, field);
    if (v === undefined) return required ? fail(`missing field "${field}"`) : undefined;
    if (typeof v !== 'string' || v.trim() === '') return fail(`field "${field}" must be a non-empty string, got ${describeValue(v)}`);
    return v;
  };
  let question = str(names.question, true);
  if (question !== undefined && opts.question) {
    try {
      question = opts.question(question);
    } catch (e) {
      question = fail(`field "${names.question}": ${(e as Error).message}`);
    }
  }
  if (question !== undefined && question.trim() === '') question = fail(`field "${names.question}" is empty once the <image> placeholder is removed`);
  const rawAnswer = own(o, names.answer);
  let answer: string | undefined;
  if (rawAnswer === undefined) fail(`missing field "${names.answer}"`);
  else if (typeof rawAnswer === 'number' && Number.isFinite(rawAnswer)) answer = String(rawAnswer);
  else if (typeof rawAnswer === 'bigint') answer = String(rawAnswer);
  else if (typeof rawAnswer === 'string' && rawAnswer.trim() !== '') answer = rawAnswer.trim();
  else fail(`field "${names.answer}" must be a non-empty string or a finite number, got ${describeValue(rawAnswer)}`);
  const id = own(o, 'id') === undefined ? opts.defaultId : str('id', false);
  const family = own(o, 'family') === undefined ? undefined : str('family', false);
  const vd = own(o, 'visionDependency') ?? 'high';
  if (vd !== 'high' && vd !== 'low') fail(`field "visionDependency" must be "high" or "low", got ${describeValue(vd)}`);
  const split = own(o, 'split') ?? null;
  if (split !== null && split !== 'train' && split !== 'validation' && split !== 'test') {
    fail(`field "split" must be train, validation or test, got ${describeValue(split)}`);
  }
  const demonstration = own(o, 'demonstration') === undefined ? undefined : str('demonstration', false);
  for (const [field, v] of [
    [names.question, question],
    [names.answer, answer],
    ['id', id],
    ['demonstration', demonstration],
  ] as const) {
    if (v === undefined) continue;
    const at = firstNonPrintable(v);
    if (at >= 0) fail(`field "${field}" has a character outside printable ASCII at position ${at} (code ${v.charCodeAt(at)}); the tokenizer cannot encode it`);
  }
  if (question !== undefined && question.length > opts.maxQuestionChars) {
    fail(`field "${names.question}" has ${question.length} characters, over the limit of ${opts.maxQuestionChars}`);
  }
  if (demonstration !== undefined && answer !== undefined) {
    const parsed = parseResponse(demonstration);
    if (!parsed) fail('field "demonstration" is not <think>...</think><answer>...</answer>');
    else if (normalizeAnswer(parsed.answer) !== normalizeAnswer(answer))
      fail(`field "demonstration" answers ${JSON.stringify(parsed.answer)}, not the ground truth ${JSON.stringify(answer)}`);
  }
  if (id !== undefined && opts.ids.has(id)) fail(`duplicate id ${JSON.stringify(id)} (first on ${opts.unit ?? 'line'} ${opts.ids.get(id)})`);
  if (!ok || question === undefined || answer === undefined || id === undefined) return null;
  return {
    id,
    question,
    answer,
    family: family ?? opts.defaultFamily ?? 'manifest',
    visionDependency: vd as VisionDependency,
    split: split as Split | null,
    ...(demonstration !== undefined ? { demonstration } : {}),
  };
}

/** Every field not in `known`, as `meta`; defined, not assigned, so a "__proto__" field stays an ordinary key. */
export function extraFields(o: Record<string, unknown>, known: ReadonlySet<string>, into: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) {
    if (!known.has(k)) Object.defineProperty(into, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return into;
}

/** An own property only: a record's `constructor` or `toString` is not a field it has. */
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}
