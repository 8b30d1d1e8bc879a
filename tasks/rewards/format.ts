/**
 * The format reward: the response is exactly `<think>...</think><answer>...</answer>`, with optional
 * whitespace around and between the two blocks and nothing else (R1 / EasyR1 style). The answer must be
 * non-empty after trimming; the think block may be empty. Neither block may contain another tag.
 */

const FORMAT = /^\s*<think>([\s\S]*?)<\/think>\s*<answer>([\s\S]*?)<\/answer>\s*$/;
const ANY_TAG = /<\/?(think|answer)>/;

export interface ParsedResponse {
  reasoning: string;
  answer: string;
}

/** The two blocks of a well-formed response, or null. Non-strings are malformed. */
export function parseResponse(response: unknown): ParsedResponse | null {
  if (typeof response !== 'string') return null;
  const m = FORMAT.exec(response);
  if (!m) return null;
  const [, reasoning, answer] = m;
  if (ANY_TAG.test(reasoning) || ANY_TAG.test(answer) || answer.trim() === '') return null;
  return { reasoning, answer: answer.trim() };
}

/** 1 when the response is well formed, else 0. */
export function formatReward(response: unknown): number {
  return parseResponse(response) ? 1 : 0;
}
