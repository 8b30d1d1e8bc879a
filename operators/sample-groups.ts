/**
 * Samples G responses per prompt in the policy engine (onnxruntime, in its worker). Each response carries
 * the policy version that produced it and its behaviour log-probs, which the update uses as the PPO
 * `old_log_prob` (as verl's one-step-off trainer does): no second pass is needed to recompute them.
 *
 * @example
 * batches$.pipe(sampleGroups(engine, { n: 8, temperature: 1, topP: 1, maxNewTokens: 48 }))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { decode } from '../models/tokenizer.ts';
import { addTiming, stageError, type PromptBatch, type RolloutEngine, type SampledGroups } from './types.ts';

export interface SampleGroupsOptions {
  /** responses per prompt (`worker.rollout.n`) */
  n: number;
  /** 0 = greedy; default 1 */
  temperature?: number;
  /** nucleus cut; default 1 (none) */
  topP?: number;
  /** 0 = no limit; default 0 */
  topK?: number;
  /** default: the policy's maxResponseLen */
  maxNewTokens?: number;
  /** the sampling seed of a batch; default the batch's own seed */
  seedOf?: (batch: PromptBatch) => number;
  /** the policy version a batch is sampled with; default the engine's latest */
  versionOf?: (batch: PromptBatch) => number;
}

export function sampleGroups<T extends PromptBatch>(engine: Pick<RolloutEngine, 'sample'>, opts: SampleGroupsOptions): OperatorFunction<T, T & SampledGroups> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const result = await engine.sample({
        images: batch.records.map((r) => r.image),
        prompts: batch.records.map((r) => r.question),
        n: opts.n,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        maxNewTokens: opts.maxNewTokens,
        seed: opts.seedOf ? opts.seedOf(batch) : batch.seed,
        ...(batch.promptOffset ? { promptOffset: batch.promptOffset } : {}),
        weights: opts.versionOf ? opts.versionOf(batch) : 'latest',
      });
      const rs = result.responses;
      return {
        ...batch,
        groupSize: opts.n,
        responses: rs.map((r) => r.tokens),
        oldLogprobs: rs.map((r) => r.logprobs),
        texts: rs.map((r) => decode(r.tokens)),
        finished: Uint8Array.from(rs, (r) => (r.finished ? 1 : 0)),
        versions: Int32Array.from(rs, (r) => r.version),
        timing: addTiming(batch.timing, 'gen', t0),
      };
    } catch (err) {
      throw stageError('sampleGroups', batch, err);
    }
  });
}
