/**
 * The trace grammars of the digits families (families.ts writes the traces), for the error taxonomy
 * (../error-taxonomy.ts: the steps, their precedence and the text-control rule).
 *
 * | family | trace | reading | operation | result |
 * |---|---|---|---|---|
 * | read | `8,0 #2=0` | the digit row | position `#k` | the digit |
 * | sum, text-sum | `1+9=10` | the terms | the operators (`+`; `-`, `*`, `x` are read as wrong operations) | the value |
 * | max | `max 3,6=6` | the digit row | `max` (`min` is read as a wrong operation) | the value |
 * | count | `6,5>4:2` | the digit row | comparison and threshold (`>`, `>=`, `<`, `<=`, `=`) | the count |
 * | compare, text-compare | `3<8` | the two digits | their order | the relation: `>` means yes |
 *
 * Spaces around the punctuation are allowed. For the text controls the "reading" is a quote of the
 * question, and a wrong quote is a reasoning error. Compare traces name no positions: a pair that is the
 * image's digits at other positions (e.g. swapped, `8>3` for "is the 1st (3) larger than the 2nd (8)")
 * counts as compared at the wrong positions (reasoning); any other pair as misread (perception).
 */
import { type Finding, grammarClassifier, type TraceGrammar } from '../error-taxonomy.ts';
import { normalizeAnswer } from '../rewards/accuracy.ts';
import type { TaskRecord } from '../types.ts';
import { DIGIT_FAMILIES } from './families.ts';

const LIST = String.raw`\d+(?: ?, ?\d+)*`;
const ORD = (k: number): string => `${k}${k % 10 === 1 && k !== 11 ? 'st' : k % 10 === 2 && k !== 12 ? 'nd' : k % 10 === 3 && k !== 13 ? 'rd' : 'th'}`;
const list = (s: string): number[] => s.split(',').map((x) => Number(x.trim()));
const row = (xs: readonly number[]): string => xs.join(',');
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** The digit labels drawn on the record's image, left to right. */
function drawn(record: TaskRecord): number[] {
  const d = record.meta.digits;
  if (!Array.isArray(d) || !d.every((x) => Number.isInteger(x))) throw new Error(`record ${record.id} has no meta.digits`);
  return d as number[];
}

function int(record: TaskRecord, key: string): number {
  const v = record.meta[key];
  if (!Number.isInteger(v)) throw new Error(`record ${record.id} has no integer meta.${key}`);
  return v as number;
}

/** The inconsistency step, shared: the answer is not the trace's result. */
function answerStep(result: string, answer: string): Finding[] {
  return normalizeAnswer(result) === answer ? [] : [{ class: 'inconsistency', detail: `the trace gives ${result}, the answer is ${answer}` }];
}

/** How a listed digit row contradicts the image, or null. */
function rowMisread(record: TaskRecord, read: readonly number[]): string | null {
  const truth = drawn(record);
  return row(read) === row(truth) ? null : `read ${row(read)}, the image shows ${row(truth)}`;
}

interface ReadTrace {
  read: number[];
  position: number;
  value: number;
}
const READ = new RegExp(`^(${LIST}) ?# ?(\\d+) ?= ?(\\d+)$`);

const readGrammar: TraceGrammar<ReadTrace> = {
  kind: 'read',
  parse(t) {
    const m = READ.exec(t);
    return m ? { read: list(m[1]), position: Number(m[2]), value: Number(m[3]) } : null;
  },
  check(record, { read, position, value }, answer) {
    const truth = drawn(record);
    const k = int(record, 'position');
    const out: Finding[] = [];
    if (read[k - 1] !== truth[k - 1]) {
      out.push({ class: 'perception', detail: `read ${row(read)}, the image shows ${row(truth)}: the ${ORD(k)} digit is ${truth[k - 1]}` });
    }
    if (position !== k && read[position - 1] !== read[k - 1]) {
      out.push({ class: 'reasoning', detail: `took the ${ORD(position)} digit, the question asks for the ${ORD(k)}` });
    }
    const picked = read[position - 1];
    if (picked !== undefined && value !== picked) {
      out.push({ class: 'calculation', detail: `the ${ORD(position)} digit of ${row(read)} is ${picked}, the trace says ${value}` });
    }
    return [...out, ...answerStep(String(value), answer)];
  },
  misread: (record, p) => rowMisread(record, p.read),
};

interface SumTrace {
  terms: number[];
  ops: string[];
  result: number;
}
const SUM = /^(\d+(?: ?[-+*x] ?\d+)*) ?= ?(-?\d+)$/;

/** Value of `terms` joined by `ops`, `*` and `x` before `+` and `-`. */
function evaluate(terms: readonly number[], ops: readonly string[]): number {
  let total = 0;
  let sign = 1;
  let product = terms[0];
  ops.forEach((op, i) => {
    if (op === '*' || op === 'x') product *= terms[i + 1];
    else {
      total += sign * product;
      sign = op === '-' ? -1 : 1;
      product = terms[i + 1];
    }
  });
  return total + sign * product;
}

const expression = (terms: readonly number[], ops: readonly string[]): string => terms.map((t, i) => (i ? ops[i - 1] : '') + t).join('');

/** sum and text-sum share the parser; `reading` is the perception step (sum) or the quote step (text-sum). */
function sumGrammar(reading: (record: TaskRecord, terms: number[]) => Finding[]): TraceGrammar<SumTrace> {
  return {
    kind: 'sum',
    parse(t) {
      const m = SUM.exec(t);
      if (!m) return null;
      const parts = m[1].replace(/ /g, '').split(/([-+*x])/);
      return { terms: parts.filter((_, i) => i % 2 === 0).map(Number), ops: parts.filter((_, i) => i % 2 === 1), result: Number(m[2]) };
    },
    check(record, { terms, ops, result }, answer) {
      const out = reading(record, terms);
      const own = evaluate(terms, ops);
      if (ops.some((o) => o !== '+') && own !== sum(terms)) {
        out.push({ class: 'reasoning', detail: `the trace computes ${expression(terms, ops)}, the question asks for the sum` });
      }
      if (result !== own) out.push({ class: 'calculation', detail: `${expression(terms, ops)} is ${own}, the trace says ${result}` });
      return [...out, ...answerStep(String(result), answer)];
    },
    misread: (record, p) => rowMisread(record, p.terms),
  };
}

interface MaxTrace {
  op: 'max' | 'min';
  read: number[];
  value: number;
}
const MAX = new RegExp(`^(max|min) ?(${LIST}) ?= ?(\\d+)$`);

const maxGrammar: TraceGrammar<MaxTrace> = {
  kind: 'max',
  parse(t) {
    const m = MAX.exec(t);
    return m ? { op: m[1] as 'max' | 'min', read: list(m[2]), value: Number(m[3]) } : null;
  },
  check(record, { op, read, value }, answer) {
    const truth = drawn(record);
    const out: Finding[] = [];
    if (Math.max(...read) !== Math.max(...truth)) {
      out.push({ class: 'perception', detail: `read ${row(read)}, the image shows ${row(truth)} (largest ${Math.max(...truth)})` });
    }
    const own = op === 'max' ? Math.max(...read) : Math.min(...read);
    if (own !== Math.max(...read)) out.push({ class: 'reasoning', detail: `the trace takes the ${op}, the question asks for the largest` });
    if (value !== own) out.push({ class: 'calculation', detail: `${op} ${row(read)} is ${own}, the trace says ${value}` });
    return [...out, ...answerStep(String(value), answer)];
  },
  misread: (record, p) => rowMisread(record, p.read),
};

type Relation = '>' | '>=' | '<' | '<=' | '=';
interface CountTrace {
  read: number[];
  relation: Relation;
  threshold: number;
  count: number;
}
const COUNT = new RegExp(`^(${LIST}) ?(>=|<=|>|<|=) ?(\\d+) ?: ?(\\d+)$`);
const holds = (d: number, r: Relation, t: number): boolean => (r === '>' ? d > t : r === '>=' ? d >= t : r === '<' ? d < t : r === '<=' ? d <= t : d === t);
const countOf = (xs: readonly number[], r: Relation, t: number): number => xs.filter((d) => holds(d, r, t)).length;

const countGrammar: TraceGrammar<CountTrace> = {
  kind: 'count',
  parse(t) {
    const m = COUNT.exec(t);
    return m ? { read: list(m[1]), relation: m[2] as Relation, threshold: Number(m[3]), count: Number(m[4]) } : null;
  },
  check(record, { read, relation, threshold, count }, answer) {
    const truth = drawn(record);
    const t = int(record, 'threshold');
    const out: Finding[] = [];
    if (countOf(read, '>', t) !== countOf(truth, '>', t)) {
      out.push({ class: 'perception', detail: `read ${row(read)}, the image shows ${row(truth)} (${countOf(truth, '>', t)} greater than ${t})` });
    }
    const own = countOf(read, relation, threshold);
    if (own !== countOf(read, '>', t)) {
      out.push({ class: 'reasoning', detail: `the trace counts digits ${relation} ${threshold}, the question asks for > ${t}` });
    }
    if (count !== own) out.push({ class: 'calculation', detail: `${own} of ${row(read)} are ${relation} ${threshold}, the trace says ${count}` });
    return [...out, ...answerStep(String(count), answer)];
  },
  misread: (record, p) => rowMisread(record, p.read),
};

interface CompareTrace {
  a: number;
  relation: '<' | '>' | '=';
  b: number;
}
const COMPARE = /^(\d+) ?(<|>|=) ?(\d+)$/;
const trueRelation = (a: number, b: number): string => (a > b ? '>' : a < b ? '<' : '=');

/** compare and text-compare share the parser; `pair` is the perception step (compare) or the quote step. */
function compareGrammar(pair: (record: TaskRecord, a: number, b: number) => Finding[]): TraceGrammar<CompareTrace> {
  return {
    kind: 'compare',
    parse(t) {
      const m = COMPARE.exec(t);
      return m ? { a: Number(m[1]), relation: m[2] as CompareTrace['relation'], b: Number(m[3]) } : null;
    },
    check(record, { a, relation, b }, answer) {
      const out = pair(record, a, b);
      // the relation written means yes iff it is '>'; a wrong relation only matters when it flips that
      if ((relation === '>') !== a > b) out.push({ class: 'calculation', detail: `${a}${relation}${b} is false (${a}${trueRelation(a, b)}${b})` });
      return [...out, ...answerStep(yesNo(relation === '>'), answer)];
    },
  };
}

/** compare: the pair as the image's digits at the asked positions, at other positions, or misread. */
function comparePair(record: TaskRecord, a: number, b: number): Finding[] {
  const d = drawn(record);
  const i = int(record, 'first') - 1;
  const j = int(record, 'second') - 1;
  const right = d[i] > d[j];
  if (a === d[i] && b === d[j]) return [];
  const candidates: [number, number][] = [[j, i]];
  for (let p = 0; p < d.length; p++) for (let q = 0; q < d.length; q++) if (p !== q) candidates.push([p, q]);
  const at = candidates.find(([p, q]) => d[p] === a && d[q] === b);
  if (at) {
    const [p, q] = at;
    return a > b === right
      ? []
      : [
          {
            class: 'reasoning',
            detail: `compared the ${ORD(p + 1)} and ${ORD(q + 1)} digits (${a}, ${b}), the question asks for the ${ORD(i + 1)} and ${ORD(j + 1)}`,
          },
        ];
  }
  return a > b === right
    ? []
    : [{ class: 'perception', detail: `read ${a} and ${b}, the image's ${ORD(i + 1)} and ${ORD(j + 1)} digits are ${d[i]} and ${d[j]} (row ${row(d)})` }];
}

/** text-compare: the pair quoted from the question. */
function quotedPair(record: TaskRecord, a: number, b: number): Finding[] {
  const a0 = int(record, 'a');
  const b0 = int(record, 'b');
  return a > b === a0 > b0 ? [] : [{ class: 'reasoning', detail: `misquoted the question: compared ${a} and ${b}, the question has ${a0} and ${b0}` }];
}

/** Per family: its trace grammar. */
export const DIGIT_GRAMMARS: Readonly<Record<string, TraceGrammar>> = {
  read: readGrammar,
  sum: sumGrammar((record, terms) => {
    const truth = drawn(record);
    return sum(terms) === sum(truth) ? [] : [{ class: 'perception', detail: `read ${row(terms)}, the image shows ${row(truth)} (sum ${sum(truth)})` }];
  }),
  max: maxGrammar,
  count: countGrammar,
  compare: compareGrammar(comparePair),
  'text-sum': sumGrammar((record, terms) => {
    const quoted = record.meta.terms;
    if (!Array.isArray(quoted)) throw new Error(`record ${record.id} has no meta.terms`);
    return sum(terms) === sum(quoted as number[]) ? [] : [{ class: 'reasoning', detail: `misquoted the question: ${terms.join('+')} for ${quoted.join('+')}` }];
  }),
  'text-compare': compareGrammar(quotedPair),
} as Record<string, TraceGrammar>;

/** The digits task's error classifier (every family). */
export const classifyDigitsError = grammarClassifier(DIGIT_FAMILIES, DIGIT_GRAMMARS);
