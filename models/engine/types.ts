/** Requests and results of the policy engine (plain data: they cross the worker boundary). */
import type { RgbImage } from '../../util/image.ts';

/** A prompt: a question string (encoded as BOS + tokens) or token ids starting with BOS. */
export type PromptInput = string | ArrayLike<number>;

export interface SampleRequest {
  /** one image per prompt */
  images: readonly RgbImage[];
  prompts: readonly PromptInput[];
  /** responses per prompt (the group size G); default 1 */
  n?: number;
  /** default 1; 0 = greedy */
  temperature?: number;
  /** default 1 (no nucleus cut) */
  topP?: number;
  /** default 0 (no limit) */
  topK?: number;
  /** default and maximum: the config's maxResponseLen (also bounded by the position table) */
  maxNewTokens?: number;
  /** response (p, g) draws from Rng.derive(seed, 'sample', promptOffset + p, g): independent of batch composition */
  seed: number;
  /**
   * The place of the first prompt in its sampling round (a shard of a batch starts past 0), so a prompt draws
   * the same random numbers whichever shard carries it; default 0.
   */
  promptOffset?: number;
  /**
   * Which weights: 'latest' (default) or a policy version still retained by the engine. A run that pins
   * each step to a version samples the same responses whatever the timing of its updates.
   */
  weights?: 'latest' | number;
}

export interface SampledResponse {
  promptIndex: number;
  sampleIndex: number;
  /** generated tokens, EOS included when the response finished */
  tokens: Int32Array;
  /** per token: log-prob under the model at temperature 1 without truncation (teacher-forced value) */
  logprobs: Float32Array;
  /** per token: log-prob under the distribution actually sampled from (tempered, truncated); 0 if greedy */
  samplingLogprobs: Float32Array;
  length: number;
  /** stopped on EOS (false: hit maxNewTokens) */
  finished: boolean;
  /** policy version that produced it */
  version: number;
}

export interface SampleResult {
  /** prompt-major: response (p, g) is at index p * n + g */
  responses: SampledResponse[];
  version: number;
  /** total generated tokens */
  tokens: number;
  /** rows computed by the decoding-step graph, summed over steps (finished rows are dropped) */
  stepRows: number;
}

export interface LogProbRequest {
  /** one image per row */
  images: readonly RgbImage[];
  prompts: readonly PromptInput[];
  /** response token ids per row (EOS included if any; trailing PAD allowed) */
  responses: readonly ArrayLike<number>[];
  /** also return the exact entropy of each next-token distribution */
  withEntropy?: boolean;
  /**
   * Which weights: 'latest' (default), 'reference' (set by setReferenceWeights), or a policy version
   * still retained by the engine (the latest `retainVersions`), e.g. the version that sampled a rollout.
   */
  weights?: 'latest' | 'reference' | number;
  /**
   * Compute the prefix (image and prompt) once for consecutive rows that share it, as sampling does, and
   * run each row's response against it (default false: one full pass per row). The same function; values
   * differ from the full pass in their last bits (the attention sums are split).
   */
  sharePrefix?: boolean;
}

/** Where `setWeights` puts a snapshot: the current policy, or the frozen reference policy. */
export type WeightSlot = 'policy' | 'reference';

export interface LogProbResult {
  /** per row, one value per given response token (0 at PAD) */
  logprobs: Float32Array[];
  entropy?: Float32Array[];
  version: number;
}

export interface EngineOptions {
  /** onnxruntime intra-op threads of each worker (default 2) */
  intraOpThreads?: number;
  /**
   * Worker threads, each with its own sessions and copy of the weights, that share every call: each samples
   * or scores a contiguous part of the prompts or rows (default 1). Teacher-forced log-probs are those of one
   * worker, bit for bit (each worker takes whole runs of `logprobBatchRows` rows); sampled responses draw the
   * same random numbers, and their log-probs may differ from one worker's in the last bits.
   */
  workers?: number;
  /** onnxruntime inter-op threads (default 1) */
  interOpThreads?: number;
  /** let onnxruntime threads spin while idle (default false: the cores are shared with the trainer) */
  allowSpinning?: boolean;
  /** rows per teacher-forced run; larger requests are split (default 64) */
  logprobBatchRows?: number;
  /** policy versions kept for log-probs pinned to a version (default 2: the latest and the one before) */
  retainVersions?: number;
  /** onnxruntime profiling (bench/scaling.ts --profile): a JSON trace per session, written on release to `<profile><graph>_<time>.json`; default '' (off) */
  profile?: string;
}
