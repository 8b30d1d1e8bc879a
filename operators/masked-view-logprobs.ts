/**
 * PAPO's masked view: masks each prompt's raw image once (shared by its G responses; `mask_type`, random
 * patch blackening by default), and teacher-forces the already-sampled tokens on the masked image under the
 * policy version that sampled them (docs/objective.md: m is computed once per rollout step, without gradient,
 * with the pre-update weights). The masks come from `Rng.derive(maskSeed, 'mask', p)` with `maskSeed`
 * derived from the batch seed and recorded on the batch, so a step's masks can be redrawn exactly.
 *
 * @example
 * scored$.pipe(maskedViewLogprobs(engine, { ratio: 0.6, patchSize: 14 }))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { maskTypes } from '../algorithms/masking.ts';
import { mixSeed, Rng } from '../util/rng.ts';
import type { RgbImage } from '../util/image.ts';
import type { LogProbRequest, LogProbResult } from '../models/engine/types.ts';
import { addTiming, stageError, type MaskedViews, type RolloutEngine, type SampledBatch } from './types.ts';

export interface MaskedViewOptions {
  /** `mask_type`: a registered masking (default `random_patch`) */
  type?: string;
  /** `mask_ratio`: probability that each patch is blackened */
  ratio: number;
  /** `mask_patch_size`, in raw pixels */
  patchSize: number;
}

/**
 * The masked copy of each prompt's image for a batch seed (what the stage computes, for replay and pictures);
 * image p is prompt `promptOffset + p` of its round (a shard's images start past 0).
 */
export function maskedImages(images: readonly RgbImage[], maskSeed: number, opts: MaskedViewOptions, promptOffset = 0): RgbImage[] {
  const type = opts.type ?? 'random_patch';
  const mask = maskTypes.get(type);
  return images.map((img, p) => {
    const masked = mask(img, opts, Rng.derive(maskSeed, 'mask', promptOffset + p));
    if (masked.height !== img.height || masked.width !== img.width || masked.data.length !== img.data.length) {
      throw new Error(`mask type "${type}" changed the image size ${img.height}x${img.width} to ${masked.height}x${masked.width}`);
    }
    return masked;
  });
}

/** How the engine computes a stage's teacher-forced log-probs. */
export interface LogprobPassOptions {
  /** `worker.rollout.share_prefix`: a prompt's image and prompt computed once for its G responses (LogProbRequest.sharePrefix) */
  sharePrefix?: boolean;
}

/**
 * The engine requests of a batch's log-probs with `images` (one per prompt): one per policy version that
 * sampled its responses, or one under the reference weights; `rows[k]` are the responses of request k.
 */
export function logProbRequests(
  batch: SampledBatch,
  images: readonly RgbImage[],
  weights: 'reference' | undefined,
  opts: LogprobPassOptions = {},
): { requests: LogProbRequest[]; rows: number[][] } {
  const G = batch.groupSize;
  const byVersion = new Map<number, number[]>();
  batch.versions.forEach((v, i) => {
    const key = weights ? -1 : v;
    const rows = byVersion.get(key);
    if (rows) rows.push(i);
    else byVersion.set(key, [i]);
  });
  const requests: LogProbRequest[] = [];
  const rows: number[][] = [];
  for (const [version, rs] of byVersion) {
    requests.push({
      images: rs.map((i) => images[Math.floor(i / G)]),
      prompts: rs.map((i) => batch.records[Math.floor(i / G)].question),
      responses: rs.map((i) => batch.responses[i]),
      weights: weights ?? version,
      ...(opts.sharePrefix ? { sharePrefix: true } : {}),
    });
    rows.push(rs);
  }
  return { requests, rows };
}

/** Puts the results of `logProbRequests` back in response order. */
export function placeLogprobs(n: number, rows: readonly number[][], results: readonly LogProbResult[]): Float32Array[] {
  const out = new Array<Float32Array>(n);
  rows.forEach((rs, k) => rs.forEach((i, j) => (out[i] = results[k].logprobs[j])));
  return out;
}

/** Log-probs of each response's tokens under the version that sampled it, one engine call per version. */
export async function logProbsAtSamplingVersion(
  engine: Pick<RolloutEngine, 'logProbs'>,
  batch: SampledBatch,
  images: readonly RgbImage[],
  weights?: 'reference',
  opts: LogprobPassOptions = {},
): Promise<Float32Array[]> {
  const { requests, rows } = logProbRequests(batch, images, weights, opts);
  const results: LogProbResult[] = [];
  for (const r of requests) results.push(await engine.logProbs(r));
  return placeLogprobs(batch.responses.length, rows, results);
}

export function maskedViewLogprobs<T extends SampledBatch>(
  engine: Pick<RolloutEngine, 'logProbs'>,
  opts: MaskedViewOptions & LogprobPassOptions,
): OperatorFunction<T, T & MaskedViews> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const maskSeed = mixSeed(batch.seed, 'mask');
      const images = maskedImages(
        batch.records.map((r) => r.image),
        maskSeed,
        opts,
        batch.promptOffset ?? 0,
      );
      const maskedLogprobs = await logProbsAtSamplingVersion(engine, batch, images, undefined, opts);
      return { ...batch, maskSeed, maskedImages: images, maskedLogprobs, timing: addTiming(batch.timing, 'masked_log_prob', t0) };
    } catch (err) {
      throw stageError('maskedViewLogprobs', batch, err);
    }
  });
}
