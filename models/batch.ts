/**
 * Batch layout of policy inputs, as plain JS (no tfjs), shared by the tfjs trainer and the onnxruntime
 * engine so that both see exactly the same padded tokens, position ids, masks and patches.
 *
 * Layout (see models/README.md): sequence = [image patches (nPatch)] ++ [prompt (Lp, LEFT-padded with
 * PAD)] ++ [response (Lr, RIGHT-padded with PAD)]. Text position ids count only real tokens: the first
 * real prompt token is position 0 (so extra left padding changes nothing). Attention is causal over the
 * whole sequence and never looks at PAD keys.
 */
import type { RgbImage } from '../util/image.ts';
import { MASK_VALUE, type PolicyConfig, policyDims } from './config.ts';
import { BOS_ID, PAD_ID, encodePrompt } from './tokenizer.ts';

/** A row-major [batch, length] matrix of token ids. */
export interface TokenMatrix {
  batch: number;
  length: number;
  ids: Int32Array;
}

/** Left-padded prompts: `pads[b]` PADs, then BOS and the question's tokens. */
export interface PromptBatch extends TokenMatrix {
  pads: Int32Array;
}

/** The text part of a batch, ready for a forward pass. */
export interface TextBatch {
  batch: number;
  promptLen: number;
  responseLen: number;
  /** [batch, promptLen + responseLen]: prompt then response tokens */
  tokens: Int32Array;
  /** [batch, promptLen + responseLen]: index minus the row's left pads (0 on left pads) */
  positions: Int32Array;
  /** [batch, promptLen + responseLen]: 1 for real tokens, 0 for PAD */
  keyValid: Uint8Array;
  /** [batch, responseLen]: 1 where the response token is real (its log-prob counts), 0 at PAD */
  responseMask: Float32Array;
  /** left pads of each prompt row */
  promptPads: Int32Array;
}

function checkId(id: number, vocab: number, where: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`${where}: token id ${id} is outside the vocabulary [0, ${vocab})`);
}

/**
 * Left-pads prompts to one length. A prompt is a question string (encoded as BOS + tokens) or token ids
 * that start with BOS, optionally preceded by PADs (already left-padded rows are accepted as they are).
 * `length` defaults to the longest row; it and every row must fit `cfg.maxPromptLen`.
 */
export function buildPromptBatch(
  prompts: readonly (string | ArrayLike<number>)[],
  cfg: Pick<PolicyConfig, 'maxPromptLen' | 'vocabSize'>,
  length?: number,
): PromptBatch {
  if (prompts.length === 0) throw new Error('prompt batch: no prompts');
  const rows = prompts.map((p, b) => {
    const ids = typeof p === 'string' ? encodePrompt(p) : Array.from(p);
    let lead = 0;
    while (lead < ids.length && ids[lead] === PAD_ID) lead++;
    const real = ids.slice(lead);
    if (real[0] !== BOS_ID) throw new Error(`prompt ${b}: must start with BOS (${BOS_ID}) after any left padding, got ${real[0]}`);
    real.forEach((id, j) => {
      checkId(id, cfg.vocabSize, `prompt ${b} token ${lead + j}`);
      if (id === PAD_ID) throw new Error(`prompt ${b}: PAD inside the prompt at token ${lead + j} (prompts are left-padded only)`);
    });
    if (real.length > cfg.maxPromptLen) throw new Error(`prompt ${b}: ${real.length} tokens exceed maxPromptLen ${cfg.maxPromptLen}`);
    return real;
  });
  const L = length ?? Math.max(...rows.map((r) => r.length));
  if (!Number.isInteger(L) || L > cfg.maxPromptLen) throw new Error(`prompt batch: length ${L} exceeds maxPromptLen ${cfg.maxPromptLen}`);
  const ids = new Int32Array(rows.length * L); // zero = PAD
  const pads = new Int32Array(rows.length);
  rows.forEach((r, b) => {
    if (r.length > L) throw new Error(`prompt ${b}: ${r.length} tokens do not fit the batch length ${L}`);
    pads[b] = L - r.length;
    ids.set(r, b * L + pads[b]);
  });
  return { batch: rows.length, length: L, ids, pads };
}

/**
 * Right-pads responses (token ids, usually ending in EOS) with PAD to one length. PAD may only appear
 * as a trailing run. `length` defaults to the longest row (at least 1).
 */
export function buildResponseBatch(
  responses: readonly ArrayLike<number>[],
  cfg: Pick<PolicyConfig, 'maxResponseLen' | 'vocabSize'>,
  length?: number,
): TokenMatrix {
  if (responses.length === 0) throw new Error('response batch: no responses');
  const rows = responses.map((r, b) => {
    const ids = Array.from(r);
    let end = ids.length;
    while (end > 0 && ids[end - 1] === PAD_ID) end--;
    const real = ids.slice(0, end);
    real.forEach((id, j) => {
      checkId(id, cfg.vocabSize, `response ${b} token ${j}`);
      if (id === PAD_ID) throw new Error(`response ${b}: PAD at token ${j} before real tokens (responses are right-padded only)`);
    });
    if (real.length > cfg.maxResponseLen) throw new Error(`response ${b}: ${real.length} tokens exceed maxResponseLen ${cfg.maxResponseLen}`);
    return real;
  });
  const L = length ?? Math.max(1, ...rows.map((r) => r.length));
  if (!Number.isInteger(L) || L < 1 || L > cfg.maxResponseLen)
    throw new Error(`response batch: length ${L} must be in [1, maxResponseLen ${cfg.maxResponseLen}]`);
  const ids = new Int32Array(rows.length * L);
  rows.forEach((r, b) => {
    if (r.length > L) throw new Error(`response ${b}: ${r.length} tokens do not fit the batch length ${L}`);
    ids.set(r, b * L);
  });
  return { batch: rows.length, length: L, ids };
}

/** Joins a prompt batch and a response batch into the text part of the sequence. */
export function buildTextBatch(prompt: PromptBatch, response: TokenMatrix): TextBatch {
  const B = prompt.batch;
  if (response.batch !== B) throw new Error(`text batch: ${B} prompts but ${response.batch} responses`);
  const Lp = prompt.length;
  const Lr = response.length;
  const Lt = Lp + Lr;
  const tokens = new Int32Array(B * Lt);
  const positions = new Int32Array(B * Lt);
  const keyValid = new Uint8Array(B * Lt);
  const responseMask = new Float32Array(B * Lr);
  for (let b = 0; b < B; b++) {
    const pads = prompt.pads[b];
    for (let j = 0; j < Lt; j++) {
      const id = j < Lp ? prompt.ids[b * Lp + j] : response.ids[b * Lr + j - Lp];
      tokens[b * Lt + j] = id;
      positions[b * Lt + j] = Math.max(0, j - pads);
      keyValid[b * Lt + j] = id === PAD_ID ? 0 : 1;
      if (j >= Lp) responseMask[b * Lr + j - Lp] = id === PAD_ID ? 0 : 1;
    }
  }
  return { batch: B, promptLen: Lp, responseLen: Lr, tokens, positions, keyValid, responseMask, promptPads: prompt.pads.slice() };
}

/** Convenience: prompts and responses (strings / token rows) straight to a TextBatch. */
export function textBatch(
  prompts: readonly (string | ArrayLike<number>)[],
  responses: readonly ArrayLike<number>[],
  cfg: Pick<PolicyConfig, 'maxPromptLen' | 'maxResponseLen' | 'vocabSize'>,
  lengths: { prompt?: number; response?: number } = {},
): TextBatch {
  return buildTextBatch(buildPromptBatch(prompts, cfg, lengths.prompt), buildResponseBatch(responses, cfg, lengths.response));
}

/**
 * Additive attention bias for the decoder, [batch, L, L] with L = nImage + promptLen + responseLen:
 * 0 where query q may attend key k, MASK_VALUE (-1e9) where k > q (causal) or k is a PAD token.
 * Image tokens are never padding.
 */
export function attentionBias(text: TextBatch, nImage: number): Float32Array {
  const B = text.batch;
  const Lt = text.promptLen + text.responseLen;
  const L = nImage + Lt;
  const out = new Float32Array(B * L * L);
  for (let b = 0; b < B; b++) {
    const base = b * L * L;
    for (let q = 0; q < L; q++) {
      const row = base + q * L;
      for (let k = 0; k < L; k++) {
        const masked = k > q || (k >= nImage && text.keyValid[b * Lt + k - nImage] === 0);
        if (masked) out[row + k] = MASK_VALUE;
      }
    }
  }
  return out;
}

/**
 * Images to patch vectors, [batch, nPatch, patchDim] float32 in [0, 1]: patches row-major over the grid
 * (gy, gx), each patch flattened in (py, px, c) order. Every image must have the config's size.
 */
export function patchify(images: readonly RgbImage[], cfg: PolicyConfig): Float32Array {
  const { nPatch, gridH, gridW, patchDim } = policyDims(cfg);
  const P = cfg.patchSize;
  const C = cfg.channels;
  if (C !== 3) throw new Error(`patchify: images are RGB, so config.channels must be 3, got ${C}`);
  const out = new Float32Array(images.length * nPatch * patchDim);
  const inv = 1 / 255;
  images.forEach((img, b) => {
    if (img.height !== cfg.imageHeight || img.width !== cfg.imageWidth) {
      throw new Error(`image ${b}: ${img.height}x${img.width}, the policy expects ${cfg.imageHeight}x${cfg.imageWidth}`);
    }
    if (img.data.length !== img.height * img.width * 3)
      throw new Error(`image ${b}: data has ${img.data.length} bytes, expected ${img.height * img.width * 3}`);
    const W = img.width;
    let o = b * nPatch * patchDim;
    for (let gy = 0; gy < gridH; gy++) {
      for (let gx = 0; gx < gridW; gx++) {
        for (let py = 0; py < P; py++) {
          const src = ((gy * P + py) * W + gx * P) * 3;
          for (let j = 0; j < P * 3; j++) out[o++] = img.data[src + j] * inv;
        }
      }
    }
  });
  return out;
}
