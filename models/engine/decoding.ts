/**
 * The decoding loop's data and steps, as plain functions over typed arrays (the runner holds the sessions
 * and calls them): the sizes of a sampling call, the per-response key/value cache, token choice, dropping
 * finished rows, and the responses. Hot loops live in small functions so that V8 optimises them.
 */
import type { Rng } from '../../util/rng.ts';
import { EOS_ID } from '../tokenizer.ts';
import { chooseToken, type SamplingOptions } from './sampler.ts';
import type { SampledResponse } from './types.ts';

/** The sizes of one sampling call, computed once (`planSampling`) and shared by its steps. */
export interface SamplingShape {
  /** distinct prompts (Bp) */
  prompts: number;
  /** responses per prompt (G) */
  n: number;
  /** response rows, N = Bp * G */
  rows: number;
  /** padded prompt length (Lp) */
  promptLen: number;
  /** image and prompt positions, S0 = nPatch + Lp */
  prefixLen: number;
  /** cache slots per row, T = S0 + maxNew - 1 */
  cacheLen: number;
  maxNew: number;
  heads: number;
  headDim: number;
  vocab: number;
  nPatch: number;
  /** floats per row of one layer's key (or value) cache: H * headDim * T */
  rowFloats: number;
}

/** Per decoder layer, keys [rows, H, k, T] (transposed, as the graph consumes them) and values [rows, H, T, k]. */
export interface ResponseCache {
  keys: Float32Array[];
  values: Float32Array[];
}

/** What decoding has produced, per response row. */
export interface Decoded {
  tokens: Int32Array[];
  logprobs: Float32Array[];
  samplingLogprobs: Float32Array[];
  length: Int32Array;
  done: Uint8Array;
  /** tokens of the row's prompt without padding: the position of its first response token */
  promptTokens: number[];
  /** rows computed by the step graph, summed over steps */
  stepRows: number;
}

export function startDecoding(shape: SamplingShape, pads: Int32Array): Decoded {
  const { rows, n, maxNew, promptLen } = shape;
  return {
    tokens: Array.from({ length: rows }, () => new Int32Array(maxNew)),
    logprobs: Array.from({ length: rows }, () => new Float32Array(maxNew)),
    samplingLogprobs: Array.from({ length: rows }, () => new Float32Array(maxNew)),
    length: new Int32Array(rows),
    done: new Uint8Array(rows),
    promptTokens: Array.from({ length: rows }, (_, r) => promptLen - pads[Math.floor(r / n)]),
    stepRows: 0,
  };
}

/** 1 where a row's cache slot holds a key to attend to: the image and the prompt's real tokens so far. */
export function initialCacheValid(shape: SamplingShape, keyValid: Float32Array): Float32Array {
  const { rows, n, cacheLen, nPatch, promptLen } = shape;
  const valid = new Float32Array(rows * cacheLen);
  for (let r = 0; r < rows; r++) {
    const b = Math.floor(r / n);
    valid.fill(1, r * cacheLen, r * cacheLen + nPatch);
    valid.set(keyValid.subarray(b * promptLen, (b + 1) * promptLen), r * cacheLen + nPatch);
  }
  return valid;
}

/** Chooses token t of every unfinished response in the batch; returns how many are still unfinished. */
export function chooseTokens(
  decoded: Decoded,
  batchRows: Int32Array,
  logits: Float32Array,
  t: number,
  shape: SamplingShape,
  sampling: SamplingOptions,
  rngs: Rng[],
): number {
  const V = shape.vocab;
  let unfinished = 0;
  for (let i = 0; i < batchRows.length; i++) {
    const r = batchRows[i];
    if (decoded.done[r]) continue;
    const row = t === 0 ? Math.floor(r / shape.n) : i;
    const c = chooseToken(logits.subarray(row * V, (row + 1) * V), sampling, rngs[r]);
    decoded.tokens[r][t] = c.token;
    decoded.logprobs[r][t] = c.logprob;
    decoded.samplingLogprobs[r][t] = c.samplingLogprob;
    decoded.length[r] = t + 1;
    if (c.token === EOS_ID) decoded.done[r] = 1;
    else unfinished++;
  }
  return unfinished;
}

/**
 * The batch rows without the finished responses, their cache rows moved up in place, so later steps
 * compute only for responses still being written. Rows are independent, so this changes no result.
 */
export function dropFinishedRows(batchRows: Int32Array, done: Uint8Array, cache: ResponseCache, cacheValid: Float32Array, shape: SamplingShape): Int32Array {
  const { rowFloats, cacheLen } = shape;
  const kept = Int32Array.from(batchRows.filter((r) => !done[r]));
  for (let i = 0, j = 0; j < batchRows.length; j++) {
    if (done[batchRows[j]]) continue;
    if (i !== j) {
      for (let layer = 0; layer < cache.keys.length; layer++) {
        cache.keys[layer].copyWithin(i * rowFloats, j * rowFloats, (j + 1) * rowFloats);
        cache.values[layer].copyWithin(i * rowFloats, j * rowFloats, (j + 1) * rowFloats);
      }
      cacheValid.copyWithin(i * cacheLen, j * cacheLen, (j + 1) * cacheLen);
    }
    i++;
  }
  return kept;
}

/** The sampled responses, prompt-major, each cut to its length. */
export function collectResponses(decoded: Decoded, shape: SamplingShape, version: number): SampledResponse[] {
  return Array.from({ length: shape.rows }, (_, r) => {
    const length = decoded.length[r];
    return {
      promptIndex: Math.floor(r / shape.n),
      sampleIndex: r % shape.n,
      tokens: decoded.tokens[r].slice(0, length),
      logprobs: decoded.logprobs[r].slice(0, length),
      samplingLogprobs: decoded.samplingLogprobs[r].slice(0, length),
      length,
      finished: decoded.done[r] === 1,
      version,
    };
  });
}

/**
 * Copies per-prompt cache rows into per-response rows: `src` is [Bp, groups, srcLen] and `dst` is
 * [Bp * G, groups, dstLen] (dstLen >= srcLen); response r takes prompt floor(r / G).
 */
export function expandRows(src: Float32Array, dst: Float32Array, N: number, G: number, groups: number, srcLen: number, dstLen: number): void {
  for (let r = 0; r < N; r++) {
    const b = Math.floor(r / G);
    for (let q = 0; q < groups; q++) {
      const s = (b * groups + q) * srcLen;
      const d = (r * groups + q) * dstLen;
      dst.set(src.subarray(s, s + srcLen), d); // a block copy: an element loop here was ~15% of sampling at 64 rows
      dst.fill(0, d + srcLen, d + dstLen);
    }
  }
}

/**
 * Writes one time slot of a cache: `src` is [rows, width] (the new token's keys or values) and `dst` is
 * [rows, T, width]; row i's vector lands at time `slot`.
 */
export function writeSlot(src: Float32Array, dst: Float32Array, rows: number, width: number, T: number, slot: number): void {
  for (let i = 0; i < rows; i++) {
    const d = (i * T + slot) * width;
    const s = i * width;
    for (let c = 0; c < width; c++) dst[d + c] = src[s + c];
  }
}
