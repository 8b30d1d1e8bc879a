/**
 * The inputs of a teacher-forced pass with the prompt prefix shared (models/onnx/shared-prefix-graph.ts):
 * rows with the same prompt and the same image content share one prefix, the image and the prompt without
 * its last token, computed once; each row then runs the prompt's last token and its response but the last
 * token against it. Used by the engine's log-probs and by the trainer's passes. Plain typed arrays.
 */
import { type PolicyConfig, policyDims } from './config.ts';
import { buildPromptBatch, buildResponseBatch, patchify } from './batch.ts';
import { PAD_ID } from './tokenizer.ts';
import type { RgbImage } from '../util/image.ts';

export interface SharedPrefixBatch {
  /** prefixes and response rows */
  Bp: number;
  B: number;
  /** prompt columns of the prefix (the left-padded prompt batch's length - 1) and its positions, image included */
  Lq: number;
  S0: number;
  /** columns of the response rows */
  Lr: number;
  /** the prefixes: patches [Bp, nPatch, patchDim], prompt ids, text positions and 0/1 validity [Bp, Lq] */
  patches: Float32Array;
  prefixIds: BigInt64Array;
  prefixPositions: BigInt64Array;
  prefixKeyValid: Float32Array;
  /** validity of the prefix keys [Bp, S0]: image keys 1, PAD prompt tokens 0 */
  prefixValid: Float32Array;
  /** the prefix of each row [B] */
  rowPrefix: BigInt64Array;
  /** [B, Lr]: the tokens fed, their text positions, 0 at PAD; the targets (the response) and 0 at PAD */
  tokens: BigInt64Array;
  positions: BigInt64Array;
  tokenValid: Float32Array;
  targets: BigInt64Array;
  targetValid: Float32Array;
}

const sameIds = (a: ArrayLike<number> | string, b: ArrayLike<number> | string): boolean => {
  if (a === b) return true;
  if (typeof a === 'string' || typeof b === 'string' || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

const sameImage = (a: RgbImage, b: RgbImage): boolean => {
  if (a === b) return true;
  if (a.height !== b.height || a.width !== b.width || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
};

const keyOf = (p: ArrayLike<number> | string): string => (typeof p === 'string' ? `s${p}` : Array.prototype.join.call(p, ','));

/**
 * The shared-prefix inputs of rows (images, prompts, responses), or undefined when the prompts are single
 * tokens (no prefix beyond the image: the full pass serves them). Errors name the row.
 */
export function buildSharedPrefixBatch(
  images: readonly RgbImage[],
  prompts: readonly (string | ArrayLike<number>)[],
  responses: readonly ArrayLike<number>[],
  cfg: PolicyConfig,
): SharedPrefixBatch | undefined {
  const { nPatch } = policyDims(cfg);
  const B = prompts.length;
  // Rows of one prefix: same prompt ids and same image content, in order of first appearance.
  const rowPrefix = new BigInt64Array(B);
  const firstRows: number[] = [];
  const byPrompt = new Map<string, number[]>();
  for (let b = 0; b < B; b++) {
    const last = firstRows.length - 1;
    let p = last >= 0 && sameIds(prompts[firstRows[last]], prompts[b]) && sameImage(images[firstRows[last]], images[b]) ? last : -1;
    const key = keyOf(prompts[b]);
    const same = byPrompt.get(key);
    if (p < 0 && same) p = same.find((q) => sameImage(images[firstRows[q]], images[b])) ?? -1;
    if (p < 0) {
      p = firstRows.length;
      firstRows.push(b);
      if (same) same.push(p);
      else byPrompt.set(key, [p]);
    }
    rowPrefix[b] = BigInt(p);
  }
  let promptBatch: ReturnType<typeof buildPromptBatch>;
  try {
    promptBatch = buildPromptBatch(
      firstRows.map((b) => prompts[b]),
      cfg,
    );
  } catch (err) {
    // the batch holds one prompt per prefix: name the first row of that prefix
    throw new Error((err as Error).message.replace(/^prompt (\d+):/, (_, p: string) => `prompt ${firstRows[Number(p)]}:`));
  }
  const responseBatch = buildResponseBatch(responses, cfg);
  const Bp = firstRows.length;
  const Lp = promptBatch.length;
  if (Lp < 2) return undefined;
  // The prefix: image and prompt columns 0 .. Lp - 2 (left-padded: the last column is every prompt's last token).
  const Lq = Lp - 1;
  const S0 = nPatch + Lq;
  const prefixIds = new BigInt64Array(Bp * Lq);
  const prefixPositions = new BigInt64Array(Bp * Lq);
  const prefixKeyValid = new Float32Array(Bp * Lq);
  const prefixValid = new Float32Array(Bp * S0);
  for (let p = 0; p < Bp; p++) {
    prefixValid.fill(1, p * S0, p * S0 + nPatch);
    for (let j = 0; j < Lq; j++) {
      const id = promptBatch.ids[p * Lp + j];
      prefixIds[p * Lq + j] = BigInt(id);
      prefixPositions[p * Lq + j] = BigInt(Math.max(0, j - promptBatch.pads[p]));
      prefixKeyValid[p * Lq + j] = id === PAD_ID ? 0 : 1;
      prefixValid[p * S0 + nPatch + j] = prefixKeyValid[p * Lq + j];
    }
  }
  // Each row feeds the prompt's last token, then its response but the last token.
  const Lr = responseBatch.length;
  const tokens = new BigInt64Array(B * Lr);
  const positions = new BigInt64Array(B * Lr);
  const tokenValid = new Float32Array(B * Lr);
  const targets = new BigInt64Array(B * Lr);
  const targetValid = new Float32Array(B * Lr);
  for (let b = 0; b < B; b++) {
    const p = Number(rowPrefix[b]);
    const promptTokens = Lp - promptBatch.pads[p];
    for (let t = 0; t < Lr; t++) {
      const id = t === 0 ? promptBatch.ids[p * Lp + Lp - 1] : responseBatch.ids[b * Lr + t - 1];
      const target = responseBatch.ids[b * Lr + t];
      tokens[b * Lr + t] = BigInt(id);
      positions[b * Lr + t] = BigInt(promptTokens - 1 + t);
      tokenValid[b * Lr + t] = id === PAD_ID ? 0 : 1;
      targets[b * Lr + t] = BigInt(target);
      targetValid[b * Lr + t] = target === PAD_ID ? 0 : 1;
    }
  }
  const patches = patchify(
    firstRows.map((b) => images[b]),
    cfg,
  );
  return {
    Bp,
    B,
    Lq,
    S0,
    Lr,
    patches,
    prefixIds,
    prefixPositions,
    prefixKeyValid,
    prefixValid,
    rowPrefix,
    tokens,
    positions,
    tokenValid,
    targets,
    targetValid,
  };
}

/** The response rows' inputs of the shared-prefix graphs (engine and trainer), by input name. */
export function sharedRowInputs(sb: SharedPrefixBatch): { name: string; type: 'int64' | 'float32'; data: BigInt64Array | Float32Array; dims: number[] }[] {
  const rows = [sb.B, sb.Lr];
  return [
    { name: 'row_prefix', type: 'int64', data: sb.rowPrefix, dims: [sb.B] },
    { name: 'tokens', type: 'int64', data: sb.tokens, dims: rows },
    { name: 'positions', type: 'int64', data: sb.positions, dims: rows },
    { name: 'token_valid', type: 'float32', data: sb.tokenValid, dims: rows },
    { name: 'targets', type: 'int64', data: sb.targets, dims: rows },
    { name: 'target_valid', type: 'float32', data: sb.targetValid, dims: rows },
  ];
}
