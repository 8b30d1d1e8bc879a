/**
 * The trace grammars of the scenes families (families.ts writes the traces), for the error taxonomy
 * (../error-taxonomy.ts: the steps, their precedence and the text-control rule). Objects are codes of a
 * colour letter and a shape letter (`rs` = red square).
 *
 * | family | trace | checked |
 * |---|---|---|
 * | count-color, count-shape, count-all | `bc rc ys` (scene listing) | perception: the listing's count of what is asked differs from the image's (order and other objects do not matter); the answer is not the listing's count: reasoning when it is the count of another colour (shape) present in the listing, i.e. the wrong attribute counted, else calculation. These traces state no result, so there is no inconsistency step and the reasoning/calculation split is a guess from the answer. |
 * | color-of, shape-of | `rc` (the object) | perception: the asked object's colour (shape) misread, or an object the image does not have; reasoning: another object of the image described; answer a shape word for a colour question (or the reverse): reasoning (wrong attribute); another answer than the code's: inconsistency |
 * | left-of, above | `r left b`, `b above r` | perception: the relation between the asked objects is false in the image, or a colour the image does not have; reasoning: other objects related; inconsistency: the answer is not what the relation implies for the question |
 * | text-count | `red x2` | quote: another word counted (reasoning); calculation: the count of that word in the question's list; inconsistency |
 * | text-color | `blue` | quote: another colour (reasoning); inconsistency |
 * | text-left | `P left Q` | quote: another statement (reasoning); inconsistency: the answer is not what the quoted statement implies |
 */
import { type Finding, grammarClassifier, type TraceGrammar } from '../error-taxonomy.ts';
import type { TaskRecord } from '../types.ts';
import { SCENE_FAMILIES } from './families.ts';
import { COLORS, type Color, SHAPES, type Shape } from './render.ts';

interface Obj {
  color: Color;
  shape: Shape;
  row: number;
  col: number;
}

const COLOR_OF: Record<string, Color> = Object.fromEntries(COLORS.map((c) => [c[0], c]));
const SHAPE_OF: Record<string, Shape> = Object.fromEntries(SHAPES.map((s) => [s[0], s]));
const code = (o: Pick<Obj, 'color' | 'shape'>): string => o.color[0] + o.shape[0];
const words = (c: string): string => `${COLOR_OF[c[0]]} ${SHAPE_OF[c[1]]}`;
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

function objects(record: TaskRecord): Obj[] {
  const os = record.meta.objects;
  if (!Array.isArray(os)) throw new Error(`record ${record.id} has no meta.objects`);
  return os as Obj[];
}

function str(record: TaskRecord, key: string): string {
  const v = record.meta[key];
  if (typeof v !== 'string') throw new Error(`record ${record.id} has no meta.${key}`);
  return v;
}

const listing = (os: readonly Pick<Obj, 'color' | 'shape'>[]): string => os.map(code).join(' ');
const sorted = (codes: readonly string[]): string => [...codes].sort().join(' ');

function answerStep(result: string, answer: string): Finding[] {
  return result === answer ? [] : [{ class: 'inconsistency', detail: `the trace gives ${result}, the answer is ${answer}` }];
}

// ---- scene listings: count-color, count-shape, count-all

const LISTING = /^[rgby][sct](?: [rgby][sct])*$/;
const parseListing = (t: string): string[] | null => (LISTING.test(t) ? t.split(' ') : null);

/** How a listing contradicts the image as a set of objects (order aside), or null. */
function listingMisread(record: TaskRecord, codes: readonly string[]): string | null {
  const truth = objects(record).map(code);
  return sorted(codes) === sorted(truth) ? null : `listed ${codes.join(' ')}, the image has ${truth.join(' ')}`;
}

/** A counting family: of one colour (`meta.color`), of one shape (`meta.shape`), or all objects. */
function countGrammar(kind: 'colour' | 'shape' | 'all'): TraceGrammar<string[]> {
  const at = kind === 'colour' ? 0 : 1;
  return {
    kind: 'scene listing',
    parse: parseListing,
    check(record, codes, answer) {
      const truth = objects(record).map(code);
      const asked = kind === 'colour' ? str(record, 'color') : kind === 'shape' ? str(record, 'shape') : '';
      const count = (cs: readonly string[], letter: string) => (kind === 'all' ? cs.length : cs.filter((c) => c[at] === letter).length);
      const what = kind === 'all' ? 'shapes' : kind === 'colour' ? `${asked} shapes` : `${asked}s`;
      const listed = count(codes, asked[0]);
      const out: Finding[] = [];
      if (listed !== count(truth, asked[0])) {
        out.push({
          class: 'perception',
          detail: `listed ${codes.join(' ')} (${listed} ${what}), the image has ${truth.join(' ')} (${count(truth, asked[0])})`,
        });
      }
      const n = Number(answer);
      if (n !== listed) {
        const others = kind === 'all' ? [] : [...new Set(codes.map((c) => c[at]))].filter((l) => l !== asked[0] && count(codes, l) === n);
        if (n >= 1 && others.length) {
          const other = kind === 'colour' ? `${COLOR_OF[others[0]]} shapes` : `${SHAPE_OF[others[0]]}s`;
          out.push({ class: 'reasoning', detail: `the answer ${n} is the number of ${other} in the listing, which has ${listed} ${what}` });
        } else {
          out.push({ class: 'calculation', detail: `the listing ${codes.join(' ')} has ${listed} ${what}, the answer is ${n}` });
        }
      }
      return out;
    },
    misread: listingMisread,
  };
}

// ---- one object: color-of, shape-of

const OBJECT = /^([rgby])([sct])$/;

/** color-of names its object by shape and asks its colour; shape-of the reverse. */
function objectGrammar(asks: 'color' | 'shape'): TraceGrammar<string> {
  const named = asks === 'color' ? 'shape' : 'color';
  return {
    kind: 'object',
    parse: (t) => (OBJECT.test(t) ? t : null),
    check(record, c, answer) {
      const os = objects(record);
      const key = str(record, named);
      const target = os.find((o) => o[named] === key);
      if (!target) throw new Error(`record ${record.id}: no ${key} object`);
      const out: Finding[] = [];
      const askedAt = asks === 'color' ? 0 : 1;
      const namedAt = 1 - askedAt;
      const wordOf = (cc: string) => (asks === 'color' ? COLOR_OF[cc[0]] : SHAPE_OF[cc[1]]);
      if (c[askedAt] !== code(target)[askedAt]) {
        if (c[namedAt] === code(target)[namedAt]) {
          out.push({ class: 'perception', detail: `the ${asks === 'color' ? key : `${key} one`} is ${words(code(target))}, the trace reads ${words(c)}` });
        } else if (os.some((o) => code(o) === c)) {
          out.push({ class: 'reasoning', detail: `described the ${words(c)}, the question asks about the ${asks === 'color' ? key : `${key} one`}` });
        } else {
          out.push({ class: 'perception', detail: `the trace names a ${words(c)}, the image has ${listing(os)}` });
        }
      }
      const result = wordOf(c);
      if (answer !== result) {
        const otherWords: readonly string[] = asks === 'color' ? SHAPES : COLORS;
        if (otherWords.includes(answer)) out.push({ class: 'reasoning', detail: `answered the ${named} (${answer}), the question asks for the ${asks}` });
        else out.push(...answerStep(result, answer));
      }
      return out;
    },
  };
}

// ---- relations: left-of, above

interface RelationTrace {
  x: string;
  y: string;
}

function relationGrammar(word: 'left' | 'above'): TraceGrammar<RelationTrace> {
  const re = new RegExp(`^([rgby]) ${word} ([rgby])$`);
  const axis = word === 'left' ? 'col' : 'row';
  const where = (o: Obj) => (word === 'left' ? `column ${o.col + 1}` : `row ${o.row + 1}`);
  return {
    kind: word,
    parse(t) {
      const m = re.exec(t);
      return m ? { x: m[1], y: m[2] } : null;
    },
    check(record, { x, y }, answer) {
      const os = objects(record);
      const a = str(record, 'first');
      const b = str(record, 'second');
      const one = (letter: string) => os.find((o) => o.color[0] === letter);
      const out: Finding[] = [];
      const missing = [x, y].filter((l) => !one(l));
      let implied: string | undefined;
      if (missing.length) {
        out.push({ class: 'perception', detail: `the trace names ${missing.map((l) => COLOR_OF[l]).join(' and ')}, the image has ${listing(os)}` });
      } else if (x !== y && [x, y].sort().join() === [a[0], b[0]].sort().join()) {
        const [ox, oy] = [one(x)!, one(y)!];
        if (!(ox[axis] < oy[axis])) {
          out.push({
            class: 'perception',
            detail: `the trace has ${x} ${word} ${y}, but the ${ox.color} shape is in ${where(ox)} and the ${oy.color} in ${where(oy)}`,
          });
        }
        implied = yesNo(x === a[0]);
      } else {
        out.push({ class: 'reasoning', detail: `the trace relates ${COLOR_OF[x]} and ${COLOR_OF[y]}, the question asks about ${a} and ${b}` });
      }
      return implied === undefined ? out : [...out, ...answerStep(implied, answer)];
    },
  };
}

// ---- text controls

interface TextCountTrace {
  word: string;
  n: number;
}

const textCount: TraceGrammar<TextCountTrace> = {
  kind: 'text-count',
  parse(t) {
    const m = /^([a-z]+) ?x ?(\d+)$/.exec(t);
    return m ? { word: m[1], n: Number(m[2]) } : null;
  },
  check(record, { word, n }, answer) {
    const list = record.meta.words;
    if (!Array.isArray(list)) throw new Error(`record ${record.id} has no meta.words`);
    const target = str(record, 'target');
    const count = (w: string) => list.filter((v) => v === w).length;
    const out: Finding[] = [];
    if (word !== target && count(word) !== count(target)) {
      out.push({ class: 'reasoning', detail: `counted ${word}, the question asks for ${target}` });
    }
    if (n !== count(word)) out.push({ class: 'calculation', detail: `${word} occurs ${count(word)} times in ${list.join(',')}, the trace says ${n}` });
    return [...out, ...answerStep(String(n), answer)];
  },
};

const textColor: TraceGrammar<string> = {
  kind: 'text-color',
  parse: (t) => (/^[a-z]+$/.test(t) ? t : null),
  check(record, word, answer) {
    const color = str(record, 'color');
    const out: Finding[] = word === color ? [] : [{ class: 'reasoning', detail: `misquoted the question: ${word} for ${color}` }];
    return [...out, ...answerStep(word, answer)];
  },
};

const textLeft: TraceGrammar<RelationTrace> = {
  kind: 'text-left',
  parse(t) {
    const m = /^([A-Z]) left ([A-Z])$/.exec(t);
    return m ? { x: m[1], y: m[2] } : null;
  },
  check(record, { x, y }, answer) {
    const l = str(record, 'left');
    const r = str(record, 'right');
    const asked = record.meta.asked;
    if (!Array.isArray(asked)) throw new Error(`record ${record.id} has no meta.asked`);
    const [p, q] = asked as string[];
    const implied = x === p && y === q ? 'yes' : x === q && y === p ? 'no' : undefined;
    const truth = yesNo(p === l && q === r);
    const out: Finding[] = implied === truth ? [] : [{ class: 'reasoning', detail: `misquoted the question: ${x} left ${y} for ${l} left ${r}` }];
    return implied === undefined ? out : [...out, ...answerStep(implied, answer)];
  },
};

/**
 * Per family: its trace grammar. A trace in another family's grammar is matched in this order, so a single
 * code (`rc`) is taken as one object (color-of) rather than as a listing of a one-object scene.
 */
export const SCENE_GRAMMARS: Readonly<Record<string, TraceGrammar>> = {
  'color-of': objectGrammar('color'),
  'shape-of': objectGrammar('shape'),
  'count-color': countGrammar('colour'),
  'count-shape': countGrammar('shape'),
  'count-all': countGrammar('all'),
  'left-of': relationGrammar('left'),
  above: relationGrammar('above'),
  'text-count': textCount,
  'text-color': textColor,
  'text-left': textLeft,
} as Record<string, TraceGrammar>;

/** The scenes task's error classifier (every family). */
export const classifyScenesError = grammarClassifier(SCENE_FAMILIES, SCENE_GRAMMARS);
