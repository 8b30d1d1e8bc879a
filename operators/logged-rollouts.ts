/**
 * A source that streams logged rollout steps (storage/rollout-log.ts) back into the graph as the batches
 * the update sink consumes: prompts are recomputed from the task by their split index (and checked
 * against the logged ids and task fingerprint), tokens, log-probs, rewards and advantages are the logged
 * ones. With `mask`, the masked images are redrawn from the logged mask seed (for
 * `recompute_masked_logprobs`). No engine, no reward function: `papo replay` feeds these to `papoUpdate`.
 *
 * @example
 * loggedRollouts(new RolloutLog('runs/train'), task, [4, 5, 6]).pipe(papoUpdate({ ... }))
 * loggedRolloutSource(log, task, await log.steps(), gate.grants$).pipe(currentPolicyLogprobs(engine), ...)
 */
import { from, concatMap, type Observable } from 'rxjs';
import { decode } from '../models/tokenizer.ts';
import type { RolloutLog, RolloutStepRecord } from '../storage/rollout-log.ts';
import type { RewardFailure } from '../tasks/rewards/runner.ts';
import { checkSplit, type Task } from '../tasks/types.ts';
import { maskedImages, type MaskedViewOptions } from './masked-view-logprobs.ts';
import type { RolloutBatch } from './types.ts';
import type { Grant } from './credit-gate.ts';

/** The batch a logged step was trained on. */
export function batchFromLog(rec: RolloutStepRecord, task: Task, mask?: MaskedViewOptions): RolloutBatch {
  const where = `rollout log step ${rec.step}`;
  if (rec.task !== task.name || rec.taskFingerprint !== task.fingerprint) {
    throw new Error(
      `${where} was logged for task ${rec.task} (${rec.taskFingerprint}), not ${task.name} (${task.fingerprint}): the data configuration changed`,
    );
  }
  const split = checkSplit(rec.split);
  const records = Array.from(rec.recordIndices, (i, p) => {
    const r = task.recordAt(split, i);
    if (r.id !== rec.recordIds[p]) throw new Error(`${where}: prompt ${p} is ${r.id} in the task, ${rec.recordIds[p]} in the log`);
    return r;
  });
  const maskedViews =
    mask && rec.maskSeed !== undefined
      ? maskedImages(
          records.map((r) => r.image),
          rec.maskSeed,
          mask,
        )
      : undefined;
  return {
    step: rec.step,
    rounds: rec.rounds,
    records,
    indices: rec.recordIndices,
    cursor: rec.cursor,
    seed: rec.seed,
    timing: {},
    groupSize: rec.groupSize,
    responses: rec.responses,
    oldLogprobs: rec.oldLogprobs,
    texts: rec.responses.map((t) => decode(t)),
    finished: rec.finished,
    versions: rec.versions,
    rewards: rec.rewards,
    accuracy: rec.accuracy,
    format: rec.format,
    rewardFailures: rec.rewardFailures as unknown as RewardFailure[],
    droppedGroups: rec.droppedGroups,
    surplusGroups: rec.surplusGroups,
    ...(rec.maskSeed !== undefined && rec.maskedLogprobs
      ? { maskSeed: rec.maskSeed, maskedImages: maskedViews ?? [], maskedLogprobs: rec.maskedLogprobs }
      : {}),
    ...(rec.refLogprobs ? { refLogprobs: rec.refLogprobs } : {}),
    advantages: rec.advantages,
    zeroVarianceGroups: rec.zeroVarianceGroups,
    // fields of stages of one's own (storage/batch-schema.ts), as logged
    ...rec.extra,
  } as RolloutBatch;
}

export function loggedRollouts(log: RolloutLog, task: Task, steps: readonly number[], mask?: MaskedViewOptions): Observable<RolloutBatch> {
  return from(steps).pipe(concatMap(async (step) => batchFromLog(await log.read(step), task, mask)));
}

/**
 * The source of offline training (`papo train --from-rollouts RUN`): one logged step per grant of credit
 * (see credit-gate.ts), in the log's order; grant k reads the k-th logged step and renumbers it as step k.
 */
export function loggedRolloutSource(log: RolloutLog, task: Task, steps: readonly number[], grants: Observable<Grant>): Observable<RolloutBatch> {
  return grants.pipe(
    concatMap(async (g) => {
      const logged = steps[g.step - 1];
      if (logged === undefined) throw new Error(`loggedRolloutSource: step ${g.step} asked for, but the log has ${steps.length} steps`);
      // The logged masked-view and reference log-probs and advantages were the logging run's: this run's stages recompute them.
      const { maskSeed: _seed, maskedImages: _images, maskedLogprobs: _masked, refLogprobs: _ref, ...batch } = batchFromLog(await log.read(logged), task);
      return { ...batch, step: g.step } as RolloutBatch;
    }),
  );
}
