/**
 * The accuracy reward: the extracted answer equals the ground truth after normalisation.
 *
 * Extraction: the content of the LAST `<answer>...</answer>` in the response, whether or not the whole
 * response is well formed (format is scored separately, as in EasyR1); no answer block scores 0 (we never
 * guess an answer from free text).
 *
 * Normalisation (applied to both sides): trim; lower-case; collapse inner whitespace; drop one trailing
 * `.`, `!` or `?` and surrounding quotes; numbers compare by value (`+07`, `7`, `7.0`, `1,000` and
 * `1000` are equal); number words zero..twenty equal their integers; `true`/`false` are NOT yes/no.
 */

const NUMBER_WORDS = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
  'twenty',
];
const NUMBER = /^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$/;
const ANSWER_BLOCK = /<answer>([\s\S]*?)<\/answer>/g;

/** The content of the last answer block, or null. */
export function extractAnswer(response: unknown): string | null {
  if (typeof response !== 'string') return null;
  let last: string | null = null;
  for (const m of response.matchAll(ANSWER_BLOCK)) last = m[1];
  return last;
}

/** The canonical form of an answer: numbers as their shortest decimal, words lower-cased and trimmed. */
export function normalizeAnswer(s: string): string {
  let t = s.trim().toLowerCase().replace(/\s+/g, ' ');
  t = t.replace(/[.!?]$/, '').trim();
  if (/^(["'`]).*\1$/.test(t) && t.length >= 2) t = t.slice(1, -1).trim();
  if (NUMBER.test(t)) {
    const v = Number(t.replace(/,/g, ''));
    if (Number.isFinite(v)) return String(v === 0 ? 0 : v); // -0 -> 0
  }
  const w = NUMBER_WORDS.indexOf(t);
  if (w >= 0) return String(w);
  return t;
}

/** 1 when the extracted answer matches the ground truth, else 0. */
export function accuracyReward(response: unknown, groundTruth: string): number {
  if (typeof groundTruth !== 'string' && typeof groundTruth !== 'number') {
    throw new Error(`ground truth must be a string, got ${typeof groundTruth}`);
  }
  const a = extractAnswer(response);
  if (a === null) return 0;
  return normalizeAnswer(a) === normalizeAnswer(String(groundTruth)) && a.trim() !== '' ? 1 : 0;
}
