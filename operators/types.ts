/**
 * The records that flow through the RL graph. A batch starts as a `PromptBatch` at the source and grows
 * fields as it passes each stage (`T -> T & Added`), so a stage of a user's own can be inserted anywhere
 * and see everything upstream computed. Everything here is plain data (typed arrays, no tensors):
 * stages can be tested alone, and a batch can be logged or replayed as it is.
 *
 * Layout: a batch holds P prompts and, once sampled, P * G responses in prompt-major order (response
 * (p, g) at index p * G + g), the order the engine samples in and the advantage estimators expect.
 */
import type { RgbImage } from '../util/image.ts';
import type { PolicyConfig } from '../models/config.ts';
import type { Params } from '../models/params.ts';
import type { LogProbRequest, LogProbResult, SampleRequest, SampleResult } from '../models/engine/types.ts';
import type { StreamCursor } from '../tasks/stream.ts';
import type { TaskRecord } from '../tasks/types.ts';
import type { RewardFailure } from '../tasks/rewards/runner.ts';
import { noteStage } from './stage-clock.ts';

/** Seconds spent per stage, keyed by verl's `timing_s/*` names (`gen`, `reward`, `old_log_prob`, ...). */
export type StageTimings = Record<string, number>;

/** What the source emits: the prompts of one rollout step. */
export interface PromptBatch {
  /** 1-based rollout step this batch is trained in */
  readonly step: number;
  /** sampling rounds merged into this batch (more than 1 only under dynamic sampling) */
  readonly rounds: number;
  readonly records: readonly TaskRecord[];
  /** [P] each record's index in its split (`task.recordAt(split, index)` gives it back: replay) */
  readonly indices: Int32Array;
  /** the data stream's position after these records: what a checkpoint stores once the batch is trained */
  readonly cursor: StreamCursor;
  /** seeds everything random about this batch (sampling, masks), so a step can be re-run exactly */
  readonly seed: number;
  /**
   * A shard of a sampling round (operators/shards.ts): the place of its first prompt in the round. Prompt p of
   * the shard draws its responses and its mask as prompt `promptOffset + p` of the whole round would. Absent: 0.
   */
  readonly promptOffset?: number;
  readonly timing: StageTimings;
}

/** Added by `sampleGroups`. */
export interface SampledGroups {
  /** responses per prompt (G) */
  readonly groupSize: number;
  /** [P * G] generated token ids, EOS included when the response finished */
  readonly responses: readonly Int32Array[];
  /** [P * G] behaviour log-probs of each token (temperature 1, untruncated): the PPO `old_log_prob` */
  readonly oldLogprobs: readonly Float32Array[];
  /** [P * G] decoded response texts (without EOS) */
  readonly texts: readonly string[];
  /** [P * G] 1 if the response ended with EOS, 0 if it hit the length limit */
  readonly finished: Uint8Array;
  /** [P * G] policy version that sampled each response */
  readonly versions: Int32Array;
}

/** Added by `scoreRewards`. */
export interface ScoredGroups {
  /** [P * G] the scalar reward the advantage uses (`overall`) */
  readonly rewards: Float32Array;
  /** [P * G] accuracy component, 0..1 */
  readonly accuracy: Float32Array;
  /** [P * G] format component, 0..1 */
  readonly format: Float32Array;
  /** failures of the reward function (reward 0 was used), with record ids */
  readonly rewardFailures: readonly RewardFailure[];
}

/** Added by `keepInformativeGroups` (also when off, with zeros). */
export interface FilteredGroups {
  /** groups dropped because their mean accuracy was outside the kept range */
  readonly droppedGroups: number;
  /** groups kept beyond the batch size and discarded */
  readonly surplusGroups: number;
}

/** Added by `maskedViewLogprobs`. */
export interface MaskedViews {
  /** seed of this batch's masks: mask of prompt p from Rng.derive(maskSeed, 'mask', p) */
  readonly maskSeed: number;
  /** [P] the masked images (one mask per prompt, shared by its G responses) */
  readonly maskedImages: readonly RgbImage[];
  /** [P * G] log-probs of the sampled tokens with the masked image, under the sampling policy */
  readonly maskedLogprobs: readonly Float32Array[];
}

/** Added by `referenceLogprobs`. */
export interface ReferenceScored {
  /** [P * G] log-probs of the sampled tokens under the frozen reference policy */
  readonly refLogprobs: readonly Float32Array[];
}

/** Added by `groupAdvantages`. */
export interface Advantaged {
  /** [P * G] per-response advantages (broadcast over tokens by the loss) */
  readonly advantages: Float32Array;
  /** groups whose rewards were all equal (advantage 0) */
  readonly zeroVarianceGroups: number;
}

export type SampledBatch = PromptBatch & SampledGroups;
export type ScoredBatch = SampledBatch & ScoredGroups;
/** What the update sink consumes. `maskedLogprobs` / `refLogprobs` are present when the objective needs them. */
export type RolloutBatch = ScoredBatch & Partial<FilteredGroups & MaskedViews & ReferenceScored> & Advantaged;

/**
 * What the stages need from a policy engine: `PolicyEngine` (onnxruntime in a worker) provides it, and
 * tests pass a fake.
 */
export interface RolloutEngine {
  readonly config: PolicyConfig;
  /** version of the latest weights installed (undefined before the first) */
  readonly version: number | undefined;
  sample(request: SampleRequest): Promise<SampleResult>;
  logProbs(request: LogProbRequest): Promise<LogProbResult>;
  /** several log-prob requests in one call, each result equal to `logProbs` of its request (optional: stages fall back to `logProbs`) */
  logProbViews?(requests: readonly LogProbRequest[]): Promise<LogProbResult[]>;
  setWeights(params: Params, version: number): Promise<void>;
}

/**
 * Adds the time since `t0` (ms, from performance.now()) to a copy of the batch's timings, and notes the
 * interval for the step's breakdown (operators/stage-clock.ts).
 */
export function addTiming(timing: StageTimings, key: string, t0: number): StageTimings {
  const now = performance.now();
  noteStage(key, t0, now);
  return { ...timing, [key]: (timing[key] ?? 0) + (now - t0) / 1000 };
}

/** `step 3 (records digits/train/17 .. digits/train/40)`: names a batch in errors. */
export function describeBatch(b: Pick<PromptBatch, 'step' | 'records'>): string {
  const r = b.records;
  return r.length === 0 ? `step ${b.step} (no records)` : `step ${b.step} (records ${r[0].id} .. ${r[r.length - 1].id})`;
}

/** Rethrows an error of a stage with the stage's name and the batch's records. */
export function stageError(stage: string, b: Pick<PromptBatch, 'step' | 'records'>, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const e = new Error(`${stage}: ${describeBatch(b)}: ${msg}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}
