/**
 * Choosing the next token from a row of logits: greedy, temperature, top-k and top-p (nucleus), with a
 * seeded `Rng` per response so a response does not depend on how the batch was formed.
 *
 * Each choice reports two log-probs of the chosen token:
 * - `logprob`: under the model's own distribution (softmax of the logits at temperature 1, no truncation),
 *   i.e. what a teacher-forced pass computes (up to float32 rounding);
 * - `samplingLogprob`: under the distribution actually sampled from (tempered, top-k / top-p truncated
 *   and renormalised); 0 for greedy decoding, which is deterministic.
 * The two coincide at temperature 1 without truncation (up to the never-sampled tokens below).
 * Tokens that cannot occur in a response (PAD, BOS) are never chosen: they are removed from the sampled
 * distribution (and from greedy argmax), while `logprob` keeps the model's full normalisation so that it
 * equals the teacher-forced value. The RL pipeline does not use either as the "old"
 * log-probs: like verl / EasyR1 it recomputes them with a separate teacher-forced pass.
 */
import type { Rng } from '../../util/rng.ts';
import { BOS_ID, PAD_ID } from '../tokenizer.ts';

const banned = (j: number): boolean => j === PAD_ID || j === BOS_ID;

export interface SamplingOptions {
  /** 0 = greedy (argmax, ties to the lowest id) */
  temperature: number;
  /** keep the k most likely tokens; 0 = no limit */
  topK: number;
  /** keep the smallest most-likely set with probability >= topP; 1 = no limit */
  topP: number;
}

export interface TokenChoice {
  token: number;
  logprob: number;
  samplingLogprob: number;
}

export function checkSamplingOptions(o: SamplingOptions): void {
  if (!(Number.isFinite(o.temperature) && o.temperature >= 0)) throw new Error(`sample: temperature must be >= 0, got ${o.temperature}`);
  if (!(Number.isInteger(o.topK) && o.topK >= 0)) throw new Error(`sample: topK must be a non-negative integer, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`sample: topP must be in (0, 1], got ${o.topP}`);
}

/** Scratch weights, reused across calls (sampling is single-threaded per engine). */
let scratch = new Float64Array(0);

/** Chooses one token from `logits` (one row, length V). */
export function chooseToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): TokenChoice {
  const V = logits.length;
  let mx = -Infinity;
  for (let j = 0; j < V; j++) if (logits[j] > mx) mx = logits[j];
  if (o.temperature === 0) {
    let best = -1;
    let z = 0;
    for (let j = 0; j < V; j++) {
      z += Math.exp(logits[j] - mx);
      if (!banned(j) && (best < 0 || logits[j] > logits[best])) best = j;
    }
    return { token: best, logprob: logits[best] - mx - Math.log(z), samplingLogprob: 0 };
  }
  if (scratch.length < V) scratch = new Float64Array(V);
  const w = scratch;
  const inv = 1 / o.temperature;
  // z1: the model's normaliser at temperature 1 (over every token), for `logprob`.
  let z1 = 0;
  for (let j = 0; j < V; j++) {
    const e = Math.exp(logits[j] - mx);
    z1 += e;
    w[j] = banned(j) ? 0 : inv === 1 ? e : Math.exp((logits[j] - mx) * inv);
  }

  const truncate = (o.topK > 0 && o.topK < V) || o.topP < 1;
  if (truncate) {
    // Most likely first, ties to the lower id: a deterministic order to cut.
    const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => w[b] - w[a] || a - b);
    let keep = o.topK > 0 ? Math.min(o.topK, V) : V;
    if (o.topP < 1) {
      let total = 0;
      for (let r = 0; r < keep; r++) total += w[order[r]];
      let cum = 0;
      for (let r = 0; r < keep; r++) {
        cum += w[order[r]];
        if (cum >= o.topP * total) {
          keep = r + 1;
          break;
        }
      }
    }
    for (let r = keep; r < V; r++) w[order[r]] = 0;
  }
  let total = 0;
  for (let j = 0; j < V; j++) total += w[j];
  let u = rng.float() * total;
  let token = -1;
  for (let j = 0; j < V; j++) {
    if (w[j] === 0) continue;
    token = j;
    u -= w[j];
    if (u < 0) break;
  }
  return { token, logprob: logits[token] - mx - Math.log(z1), samplingLogprob: Math.log(w[token] / total) };
}
