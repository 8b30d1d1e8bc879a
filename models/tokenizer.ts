/**
 * The policy's tokenizer for the task language: one token per printable ASCII character plus a few
 * special tokens. Small and fully deterministic, so the trainer (tfjs) and the sampler (onnxruntime)
 * agree on ids without any shared vocabulary file.
 *
 * Ids: 0 PAD, 1 EOS, 2 BOS, 3 `<think>`, 4 `</think>`, 5 `<answer>`, 6 `</answer>`, then printable ASCII
 * 32..126 as ids 7..101 (id = code - 25). Markup strings are matched greedily as single tokens, so
 * `decode(encode(s)) === s` for every printable-ASCII string.
 */

export const PAD_ID = 0;
export const EOS_ID = 1;
export const BOS_ID = 2;
export const THINK_OPEN_ID = 3;
export const THINK_CLOSE_ID = 4;
export const ANSWER_OPEN_ID = 5;
export const ANSWER_CLOSE_ID = 6;

const FIRST_CHAR_CODE = 32;
const LAST_CHAR_CODE = 126;
const CHAR_OFFSET = 25; // id = char code - 25
export const FIRST_CHAR_ID = FIRST_CHAR_CODE - CHAR_OFFSET; // 7
export const VOCAB_SIZE = LAST_CHAR_CODE - CHAR_OFFSET + 1; // 102

/** Markup tokens, in id order. */
export const MARKUP: readonly { readonly id: number; readonly text: string }[] = [
  { id: THINK_OPEN_ID, text: '<think>' },
  { id: THINK_CLOSE_ID, text: '</think>' },
  { id: ANSWER_OPEN_ID, text: '<answer>' },
  { id: ANSWER_CLOSE_ID, text: '</answer>' },
];

/** Encodes text into token ids (no BOS/EOS). Throws on any character outside printable ASCII. */
export function encode(text: string): number[] {
  const ids: number[] = [];
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 60 /* '<' */) {
      const m = MARKUP.find((t) => text.startsWith(t.text, i));
      if (m) {
        ids.push(m.id);
        i += m.text.length;
        continue;
      }
    }
    if (code < FIRST_CHAR_CODE || code > LAST_CHAR_CODE) {
      const ch = text.codePointAt(i) as number;
      throw new Error(
        `tokenizer: unsupported character ${JSON.stringify(String.fromCodePoint(ch))} (U+${ch.toString(16).toUpperCase().padStart(4, '0')}) at position ${i}; only printable ASCII (32..126) is allowed`,
      );
    }
    ids.push(code - CHAR_OFFSET);
    i++;
  }
  return ids;
}

/**
 * Decodes ids to text. PAD and BOS are skipped; decoding stops at the first EOS (a response ends there).
 * Throws on an id outside the vocabulary, naming its position.
 */
export function decode(ids: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === EOS_ID) break;
    if (id === PAD_ID || id === BOS_ID) continue;
    if (id >= FIRST_CHAR_ID && id < VOCAB_SIZE && Number.isInteger(id)) out += String.fromCharCode(id + CHAR_OFFSET);
    else if (id >= THINK_OPEN_ID && id <= ANSWER_CLOSE_ID && Number.isInteger(id)) out += MARKUP[id - THINK_OPEN_ID].text;
    else throw new Error(`tokenizer: token id ${id} at position ${i} is outside the vocabulary [0, ${VOCAB_SIZE})`);
  }
  return out;
}

/** Prompt tokens as the policy sees them: BOS followed by the encoded question. */
export function encodePrompt(question: string): number[] {
  return [BOS_ID, ...encode(question)];
}

/** Response tokens as a supervised target: the encoded text followed by EOS. */
export function encodeResponse(text: string): number[] {
  return [...encode(text), EOS_ID];
}

/** A readable rendering of any ids, special tokens included (for logs and error messages). */
export function describeTokens(ids: ArrayLike<number>): string {
  const names = ['<pad>', '<eos>', '<bos>'];
  let out = '';
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    out += id < names.length && id >= 0 ? names[id] : id < VOCAB_SIZE && id >= 0 ? decode([id]) : `<?${id}>`;
  }
  return out;
}
