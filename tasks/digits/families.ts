/**
 * Question families over a row of handwritten digits. Each family turns the digit labels placed on the
 * canvas (plus its own random parameters) into a question, the answer and a short reasoning trace; the
 * answer is computed from the labels, so it is correct by construction.
 *
 * Traces read the digits first, then do the operation: the perception step is explicit, which is what a
 * small policy must learn and what PAPO rewards.
 */
import type { Rng } from '../../util/rng.ts';
import type { AnswerType, VisionDependency } from '../types.ts';

export interface DigitQuestion {
  question: string;
  answer: string;
  reasoning: string;
  params: Record<string, unknown>;
}

export interface DigitFamily {
  readonly name: string;
  readonly visionDependency: VisionDependency;
  readonly answerType: AnswerType;
  readonly template: string;
  /** `digits` are the labels drawn left to right. */
  make(digits: readonly number[], rng: Rng): DigitQuestion;
}

const ORDINALS = ['1st', '2nd', '3rd', '4th', '5th', '6th'];
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const relation = (a: number, b: number): string => `${a}${a > b ? '>' : a < b ? '<' : '='}${b}`;

/** Two distinct positions in random order. */
function pickPair(n: number, rng: Rng): [number, number] {
  const i = rng.int(n);
  const j = (i + 1 + rng.int(n - 1)) % n;
  return [i, j];
}

export const DIGIT_FAMILIES: readonly DigitFamily[] = [
  {
    name: 'read',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'What is the 2nd digit from the left?',
    make(digits, rng) {
      const k = rng.int(digits.length);
      return {
        question: `What is the ${ORDINALS[k]} digit from the left?`,
        answer: String(digits[k]),
        reasoning: `${digits.join(',')} #${k + 1}=${digits[k]}`,
        params: { position: k + 1 },
      };
    },
  },
  {
    name: 'sum',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'What is the sum of the digits?',
    make(digits) {
      const s = digits.reduce((a, b) => a + b, 0);
      return {
        question: 'What is the sum of the digits?',
        answer: String(s),
        reasoning: `${digits.join('+')}=${s}`,
        params: {},
      };
    },
  },
  {
    name: 'max',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'What is the largest digit?',
    make(digits) {
      const m = Math.max(...digits);
      return { question: 'What is the largest digit?', answer: String(m), reasoning: `max ${digits.join(',')}=${m}`, params: {} };
    },
  },
  {
    name: 'count',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'How many digits are greater than 4?',
    make(digits, rng) {
      const t = 1 + rng.int(8);
      const c = digits.filter((d) => d > t).length;
      return {
        question: `How many digits are greater than ${t}?`,
        answer: String(c),
        reasoning: `${digits.join(',')}>${t}:${c}`,
        params: { threshold: t },
      };
    },
  },
  {
    name: 'compare',
    visionDependency: 'high',
    answerType: 'yes/no',
    template: 'Is the 1st digit larger than the 2nd?',
    make(digits, rng) {
      const [i, j] = pickPair(digits.length, rng);
      return {
        question: `Is the ${ORDINALS[i]} digit larger than the ${ORDINALS[j]}?`,
        answer: yesNo(digits[i] > digits[j]),
        reasoning: relation(digits[i], digits[j]),
        params: { first: i + 1, second: j + 1 },
      };
    },
  },
  // Controls: the numbers are in the question; the digit image is present but irrelevant.
  {
    name: 'text-sum',
    visionDependency: 'low',
    answerType: 'integer',
    template: 'Ignore the image. What is 3+5?',
    make(digits, rng) {
      const xs = digits.map(() => rng.int(10));
      const s = xs.reduce((a, b) => a + b, 0);
      return {
        question: `Ignore the image. What is ${xs.join('+')}?`,
        answer: String(s),
        reasoning: `${xs.join('+')}=${s}`,
        params: { terms: xs },
      };
    },
  },
  {
    name: 'text-compare',
    visionDependency: 'low',
    answerType: 'yes/no',
    template: 'Ignore the image. Is 8 larger than 5?',
    make(_digits, rng) {
      const a = rng.int(10);
      const b = rng.int(10);
      return {
        question: `Ignore the image. Is ${a} larger than ${b}?`,
        answer: yesNo(a > b),
        reasoning: relation(a, b),
        params: { a, b },
      };
    },
  },
];
