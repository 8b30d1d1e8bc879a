/**
 * The synthetic micro-batches of the update benches (update-step.ts, trainer-replicas.ts): row i has a
 * seeded random image, a 37-token prompt and 48 response tokens, the same whichever batch it is in.
 */
import type { PolicyConfig } from '../models/config.ts';
import { encodePrompt, EOS_ID } from '../models/tokenizer.ts';
import type { TrainRows } from '../models/trainer/types.ts';
import type { RgbImage } from '../util/image.ts';
import { Rng } from '../util/rng.ts';

export const PROMPT_TOKENS = 37;
export const RESPONSE_TOKENS = 48;

function image(cfg: PolicyConfig, seed: number): RgbImage {
  const rng = Rng.seeded(seed);
  const data = new Uint8Array(cfg.imageHeight * cfg.imageWidth * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { height: cfg.imageHeight, width: cfg.imageWidth, data };
}

/** Rows [from, to): exactly 37 prompt and `responseTokens` (48) response tokens each. */
export function benchRows(cfg: PolicyConfig, from: number, to: number, responseTokens = RESPONSE_TOKENS): TrainRows {
  const ids = Array.from({ length: to - from }, (_, i) => from + i);
  const prompts = ids.map((i) => encodePrompt(`Add the two digits in the image. #${10 + (i % 90)}`));
  if (prompts.some((p) => p.length !== PROMPT_TOKENS)) throw new Error(`bench prompts must be ${PROMPT_TOKENS} tokens`);
  return {
    images: ids.map((i) => image(cfg, i)),
    prompts,
    responses: ids.map((i) => [...Array.from({ length: responseTokens - 1 }, (_, t) => 7 + ((i * 7 + t) % 90)), EOS_ID]),
  };
}
