/**
 * Text rules imposed by the policy: a character-level tokenizer over printable ASCII (32..126) plus one
 * token per markup tag, a 64-token prompt budget and a 48-token response budget (end token included).
 */

export const MAX_QUESTION_CHARS = 60;
/** A full demonstration, tags written out as characters, fits here; so it also fits the token budget. */
export const MAX_DEMONSTRATION_CHARS = 46;

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';
const TAGS = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE];

/** Index of the first character outside printable ASCII, or -1. */
export function firstNonPrintable(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c > 126) return i;
  }
  return -1;
}

export function isPrintableAscii(s: string): boolean {
  return firstNonPrintable(s) < 0;
}

/** Tokens a response costs under the character-level tokenizer (each tag is one token; no end token). */
export function responseTokenCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; ) {
    const tag = TAGS.find((t) => s.startsWith(t, i));
    i += tag ? tag.length : 1;
    n++;
  }
  return n;
}

/** `<think>reasoning</think><answer>answer</answer>`, checked against the tokenizer's rules. */
export function demonstration(reasoning: string, answer: string): string {
  const s = `${THINK_OPEN}${reasoning}${THINK_CLOSE}${ANSWER_OPEN}${answer}${ANSWER_CLOSE}`;
  if (!isPrintableAscii(s)) throw new Error(`demonstration ${JSON.stringify(s)} is not printable ASCII`);
  if (s.length > MAX_DEMONSTRATION_CHARS) {
    throw new Error(`demonstration ${JSON.stringify(s)} has ${s.length} characters, over ${MAX_DEMONSTRATION_CHARS}`);
  }
  return s;
}

/** Throws unless the question fits the prompt rules. */
export function checkQuestion(q: string): string {
  if (!isPrintableAscii(q)) throw new Error(`question ${JSON.stringify(q)} is not printable ASCII`);
  if (q.length > MAX_QUESTION_CHARS) {
    throw new Error(`question ${JSON.stringify(q)} has ${q.length} characters, over ${MAX_QUESTION_CHARS}`);
  }
  return q;
}
