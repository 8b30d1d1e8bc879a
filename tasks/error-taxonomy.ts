/**
 * Why a held-out response failed: an automatic version of the PAPO paper's hand classification of GRPO
 * failures (arXiv 2507.06448, where 67% were perception errors), for every failure of an evaluation.
 *
 * A response is `<think>TRACE</think><answer>ANSWER</answer>`; the built-in tasks write traces in a small
 * grammar per family (`digits/error-grammar.ts`, `scenes/error-grammar.ts`) that states what was read from
 * the image, then the operation, then its result. A family's grammar checks that chain against the record's
 * ground truth (`meta`), one step at a time, each step taken as the trace wrote the steps before it:
 *
 *   1. perception    what the trace read (digits, objects, colours, shapes, positions) differs from the
 *                    image in a way that matters: the right operation on the trace's reading gives
 *                    another answer than on the image (a misread the answer does not depend on is no error);
 *   2. reasoning     the reading is used with the wrong operation or logic: wrong position, threshold,
 *                    comparison direction, attribute, objects, or a trace of another family's kind;
 *   3. calculation   the trace's own operation on its own reading is carried out wrong (`3+5=9`);
 *   4. inconsistency the final answer differs from the trace's own result.
 *
 * If the answer is wrong, at least one step breaks (the chain image -> reading -> operation -> result ->
 * answer is a chain of equalities otherwise). Besides these, `format`: there is no answer (as the accuracy
 * reward extracts it), the answer is not of the family's type (a word where a number is asked), or the
 * trace is in no grammar of the task; `unclassified`: the task declares no classifier (manifests, user
 * tasks), or the classifier found nothing wrong (possible only with a reward other than the built-in one).
 *
 * Precedence, when several apply: format > perception > reasoning > calculation > inconsistency, i.e. the
 * EARLIEST broken step of the chain. Each later step works on what the earlier ones produced, so the first
 * break is the root cause (a misread digit makes the sum "wrong" too, but fixing the reading is what would
 * have saved the answer), and this is how the paper attributes a failure to one cause. Format comes first
 * because without a readable chain no later step can be judged. The other breaks found are kept in `detail`.
 *
 * Text-only controls (digits text-sum / text-compare, scenes text-count / text-color / text-left): the
 * numbers, words or letters are in the question and the image is irrelevant, so there is no perception
 * step. Quoting the question wrongly (`3+6=9` for "What is 3+5?") is classed `reasoning`: `perception`
 * stays strictly visual, so its share is comparable with the paper's and the general (text-only) group
 * never contains perception errors by construction.
 *
 * "Failure" is decided by the caller from the reward's accuracy (< 1), the same accuracy evaluation
 * reports (`classifyFailure`); a task's classifier is only asked about failures.
 */
import type { ByGroup, GroupedItem } from './accuracy-report.ts';
import { sumByGroup } from './accuracy-report.ts';
import { accuracyReward, extractAnswer, normalizeAnswer } from './rewards/accuracy.ts';
import type { AnswerType, Task, TaskRecord } from './types.ts';

/** In precedence order (see the module comment); `unclassified` last. */
export const ERROR_CLASSES = ['format', 'perception', 'reasoning', 'calculation', 'inconsistency', 'unclassified'] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

export interface ErrorClassification {
  class: ErrorClass;
  /** What was found, for a person: the first break, then any later ones (`; also ...`). */
  detail?: string;
}

/** A task's classifier: why `response` (a failure of `record`) failed. */
export type ErrorClassifier = (record: TaskRecord, response: string) => ErrorClassification;

/** The steps of the chain a trace grammar checks, in precedence order. */
export const CHAIN_STEPS = ['perception', 'reasoning', 'calculation', 'inconsistency'] as const;
export type ChainStep = (typeof CHAIN_STEPS)[number];

/** One broken step of a response's chain. */
export interface Finding {
  class: ChainStep;
  detail: string;
}

/**
 * One family's trace grammar. `parse` reads a trace (whitespace trimmed and collapsed to single spaces)
 * or returns null; `check` lists the broken steps of the chain against the record, given the answer in
 * normal form (rewards/accuracy.ts) and already of the family's answer type.
 */
export interface TraceGrammar<P = unknown> {
  /** What kind of trace this is, for messages ("sum", "scene listing"); families may share one parser. */
  readonly kind: string;
  parse(trace: string): P | null;
  check(record: TaskRecord, parsed: P, answer: string): Finding[];
  /**
   * For a grammar whose trace lists the whole image (a digit row, a scene listing): how that listing
   * contradicts the record's image, or null when it does not. Used when a trace of this kind answers a
   * question of another family: a wrong listing is then still a perception error.
   */
  misread?(record: TaskRecord, parsed: P): string | null;
}

export interface TraceFamily {
  readonly name: string;
  readonly answerType: AnswerType;
}

/** The trace and the answer of a response, or why they cannot be read. */
export function responseParts(response: string): { trace: string; answer: string } | { problem: string } {
  if (typeof response !== 'string') return { problem: 'the response is not text' };
  // the answer exactly as the accuracy reward extracts it: the last answer block
  const answer = extractAnswer(response);
  if (answer === null) return { problem: 'no <answer>...</answer> block' };
  if (answer.trim() === '') return { problem: 'empty answer' };
  let answerAt = 0;
  for (const m of response.matchAll(/<answer>[\s\S]*?<\/answer>/g)) answerAt = m.index;
  let trace: string | null = null;
  for (const m of response.slice(0, answerAt).matchAll(/<think>([\s\S]*?)<\/think>/g)) trace = m[1];
  if (trace === null) return { problem: 'no <think>...</think> block before the answer' };
  return { trace: trace.trim().replace(/\s+/g, ' '), answer };
}

/** The answer in normal form if it is of `type`, else null. */
export function answerOfType(answer: string, type: AnswerType): string | null {
  const a = normalizeAnswer(answer);
  const ok = type === 'integer' ? /^-?\d+$/.test(a) : type === 'yes/no' ? a === 'yes' || a === 'no' : /^[a-z]+$/.test(a);
  return ok ? a : null;
}

const an = (word: string): string => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
const ARTICLE: Record<AnswerType, string> = { integer: 'an integer', 'yes/no': 'yes or no', word: 'one word' };

/** The earliest broken step, with the later ones in the detail; `unclassified` when nothing broke. */
export function firstBreak(findings: readonly Finding[]): ErrorClassification {
  const sorted = [...findings].sort((a, b) => CHAIN_STEPS.indexOf(a.class) - CHAIN_STEPS.indexOf(b.class));
  if (!sorted.length) return { class: 'unclassified', detail: 'no error found: the trace and the answer agree with the record' };
  const [first, ...rest] = sorted;
  return { class: first.class, detail: [first.detail, ...rest.map((f) => `also ${f.class}: ${f.detail}`)].join('; ') };
}

/**
 * A task's classifier from its families' trace grammars (`grammars[family]`). A trace that is not in its
 * own family's grammar but in another family's is a reasoning error (the response answered another kind
 * of question), or a perception error when that trace lists the image wrongly on a vision-dependent family.
 */
export function grammarClassifier(families: readonly TraceFamily[], grammars: Readonly<Record<string, TraceGrammar>>): ErrorClassifier {
  for (const f of families) if (!grammars[f.name]) throw new Error(`no trace grammar for family ${f.name}`);
  const types = new Map(families.map((f) => [f.name, f.answerType]));
  return (record, response) => {
    const own = grammars[record.family];
    const type = types.get(record.family);
    if (!own || !type) return { class: 'unclassified', detail: `no trace grammar for family ${record.family}` };
    const parts = responseParts(response);
    if ('problem' in parts) return { class: 'format', detail: parts.problem };
    const answer = answerOfType(parts.answer, type);
    if (answer === null) return { class: 'format', detail: `answer ${JSON.stringify(parts.answer.trim())} is not ${ARTICLE[type]}` };
    const parsed = own.parse(parts.trace);
    if (parsed !== null) return firstBreak(own.check(record, parsed, answer));
    for (const [family, g] of Object.entries(grammars)) {
      if (g.kind === own.kind) continue;
      const other = g.parse(parts.trace);
      if (other === null) continue;
      const what = `${an(g.kind)} trace ("${parts.trace}") for ${an(record.family)} question`;
      const misread = record.visionDependency === 'high' && g.misread ? g.misread(record, other) : null;
      if (misread) return { class: 'perception', detail: `${misread}; ${what}` };
      return { class: 'reasoning', detail: `${what}: answered as ${an(family)} question` };
    }
    return { class: 'format', detail: `trace ${JSON.stringify(parts.trace)} is not in the ${own.kind} grammar (nor any other of the task)` };
  };
}

/**
 * The class of one response, or null when it is not a failure (`accuracy` >= 1). `accuracy` should be the
 * one the evaluation reports (the reward's); by default the built-in accuracy reward. A task without a
 * classifier gives `unclassified`, as does a classifier that throws (its message in `detail`).
 */
export function classifyFailure(
  task: Pick<Task, 'name' | 'classifyError'>,
  record: TaskRecord,
  response: string,
  accuracy: number = accuracyReward(response, record.answer),
): ErrorClassification | null {
  if (accuracy >= 1) return null;
  if (!task.classifyError) return { class: 'unclassified', detail: `task ${task.name} declares no error classifier` };
  try {
    return task.classifyError(record, response);
  } catch (e) {
    return { class: 'unclassified', detail: `the classifier failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** One group's failures by class. */
export interface ErrorCell {
  /** responses in the group */
  n: number;
  /** of which failures (accuracy < 1) */
  failures: number;
  counts: Record<ErrorClass, number>;
  /** count / failures, or null when the group has no failure */
  shares: Record<ErrorClass, number | null>;
}

export type ErrorTable = ByGroup<ErrorCell>;

/** Failures by class overall, vision-dependent, general and per family; `errorClass` null = not a failure. */
export function errorTable(items: Iterable<GroupedItem & { errorClass: ErrorClass | null }>): ErrorTable {
  const sums = sumByGroup(items, (it) => {
    const v = { failures: it.errorClass ? 1 : 0 } as Record<ErrorClass | 'failures', number>;
    for (const c of ERROR_CLASSES) v[c] = it.errorClass === c ? 1 : 0;
    return v;
  });
  const cell = (g: { n: number; sums: Record<ErrorClass | 'failures', number> }): ErrorCell => {
    const failures = g.sums.failures ?? 0;
    const counts = {} as Record<ErrorClass, number>;
    const shares = {} as Record<ErrorClass, number | null>;
    for (const c of ERROR_CLASSES) {
      counts[c] = g.sums[c] ?? 0;
      shares[c] = failures ? counts[c] / failures : null;
    }
    return { n: g.n, failures, counts, shares };
  };
  const byFamily: Record<string, ErrorCell> = {};
  for (const [family, g] of Object.entries(sums.byFamily)) byFamily[family] = cell(g);
  return { overall: cell(sums.overall), visionDependent: cell(sums.visionDependent), general: cell(sums.general), byFamily };
}
