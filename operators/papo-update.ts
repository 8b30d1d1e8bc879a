/**
 * The sink of the RL graph: the PAPO update. For each rollout batch it
 *   1. drops groups sampled more than `maxStaleness` policy versions ago (counted; admission control at
 *      the source makes this rare),
 *   2. runs `ppoEpochs` passes over the groups in mini-batches of `globalBatchSize` prompts; each
 *      mini-batch is one optimizer step, its rows split into micro-batches of `microBatchSize` rows whose
 *      gradients accumulate (the loss of each is divided by their count),
 *   3. computes the loss with `papoLoss` from algorithms/ (the only place the objective is written) on
 *      the current policy's log-probs, the sampler's behaviour log-probs (PPO's `old_log_prob`), and the
 *      batch's reference and masked-view log-probs; a token weighting's statistics over the whole
 *      mini-batch (VPPO's dependency range) are computed once per mini-batch and given to each micro-batch,
 *   4. applies AdamW; a non-finite input at a valid token, loss or gradient skips that optimizer step
 *      (logged and counted) and never reaches the weights; so does every optimizer step of a batch whose
 *      every reward call failed (its rewards are placeholders, not scores),
 *   5. publishes the new weights as version v + 1 through the run's `PolicyVersions` (to the engine: the
 *      backward edge to the sampler),
 *   6. emits one record per rollout step with verl-named metrics, then returns the step's credit.
 * The forward, backward and AdamW run in a `Trainer` (models/trainer/: onnxruntime in a worker thread, or
 * tfjs); tensors exist only inside this stage, each micro-batch's inside the trainer's loss evaluation.
 *
 * @example
 * advantaged$.pipe(papoUpdate({ trainer, engine, objective, globalBatchSize: 8, microBatchSize: 32,
 *   ppoEpochs: 1, maxStaleness: 0, initialVersion: 0, seed, onStepDone: (s) => gate.complete(s) }))
 */
import { concatMap, defer, finalize, type OperatorFunction } from 'rxjs';
import { tf } from '../util/tf-backend.ts';
import { isNonFiniteGradient } from '../models/adamw.ts';
import { PAD_ID } from '../models/tokenizer.ts';
import type { Trainer, LossFn } from '../models/trainer/types.ts';
import { papoLoss } from '../algorithms/papo-loss.ts';
import { meanKlPrcp, padRows } from '../algorithms/kl.ts';
import { needsMaskedLogprobs, type ObjectiveConfig } from '../algorithms/config.ts';
import { tokenWeightings, tokenWeightingStats, type TokenWeightingStats } from '../algorithms/token-weighting.ts';
import { Rng } from '../util/rng.ts';
import type { Logger } from '../util/logger.ts';
import { selectGroups } from './groups.ts';
import { PolicyVersions } from './policy-versions.ts';
import { noteStage, StepClock } from './stage-clock.ts';
import { batchMetrics, meanMetrics, type Metrics } from './step-metrics.ts';
import { stageError, describeBatch, type RolloutBatch, type RolloutEngine } from './types.ts';

export interface PapoUpdateOptions {
  /** the policy's parameters, optimizer and gradients (`worker.actor.engine`: onnxruntime or tfjs) */
  trainer: Trainer;
  /**
   * The run's policy versions: the staleness guard reads the current version, and each step's new weights
   * are published through it (to the engine and any other subscriber). Without it, `engine` receives them.
   */
  versions?: PolicyVersions;
  /** receives the new weights after each step (version + 1) when no `versions` is given */
  engine?: Pick<RolloutEngine, 'setWeights'>;
  objective: ObjectiveConfig;
  /** prompts per optimizer step (`worker.actor.global_batch_size`); default 0 = the whole batch */
  globalBatchSize?: number;
  /** rows per forward/backward pass (`worker.actor.micro_batch_size_per_device_for_update`); default 64 */
  microBatchSize?: number;
  /** passes over each batch (`worker.actor.ppo_epochs`); default 1 */
  ppoEpochs?: number;
  /** groups older than this many versions are dropped at the sink; default 0 (or the versions') */
  maxStaleness?: number;
  /** version of the weights the engine holds before the first update, without `versions`; default 0 */
  initialVersion?: number;
  /** seeds the mini-batch order; default 0 */
  seed?: number;
  /** shuffle groups between mini-batches (`worker.actor.shuffle`); default true */
  shuffle?: boolean;
  /** the step is applied or dropped and its record emitted: return its credit here */
  onStepDone?: (step: number) => void;
  /**
   * Called once a step's update is applied and published, and awaited before any later step can touch
   * the weights: the moment to snapshot the trainer's parameters and optimizer state for a checkpoint.
   */
  onApplied?: (applied: { step: number; version: number; batch: RolloutBatch; trainer: Trainer }) => void | Promise<void>;
  logger?: Logger;
}

/** What the sink emits per rollout step. */
export interface TrainedStep {
  step: number;
  /** policy version after this step */
  version: number;
  /** policy version the step's update started from */
  trainedFrom: number;
  metrics: Metrics;
  /** the batch as trained (after the staleness guard) */
  batch: RolloutBatch;
}

/** 1 on a response's tokens up to its first PAD (the trainers' response mask), 0 after. */
function realTokens(response: ArrayLike<number>): Float32Array {
  const m = new Float32Array(response.length);
  for (let t = 0; t < response.length && response[t] !== PAD_ID; t++) m[t] = 1;
  return m;
}

export function papoUpdate(options: PapoUpdateOptions): OperatorFunction<RolloutBatch, TrainedStep> {
  const opts = {
    globalBatchSize: 0,
    microBatchSize: 64,
    ppoEpochs: 1,
    maxStaleness: 0,
    initialVersion: 0,
    seed: 0,
    shuffle: true,
    ...options,
  };
  const { trainer, objective } = opts;
  const versions = options.versions ?? PolicyVersions.untracked({ maxStaleness: opts.maxStaleness, version: opts.initialVersion });
  if (!options.versions) {
    const engine = options.engine;
    if (!engine) throw new Error('papoUpdate: give `versions` (PolicyVersions) or an `engine` to publish the new weights to');
    void versions.subscribe((v, params) => engine.setWeights(params, v), { replay: false });
  }
  const maxStaleness = options.versions ? options.versions.maxStaleness : opts.maxStaleness;
  let started: number | undefined;
  let lastDone: number | undefined;
  let clock: StepClock | undefined;
  if (!(Number.isInteger(opts.microBatchSize) && opts.microBatchSize >= 1))
    throw new Error(`papoUpdate: microBatchSize must be a positive integer, got ${opts.microBatchSize}`);
  if (!(Number.isInteger(opts.ppoEpochs) && opts.ppoEpochs >= 1)) throw new Error(`papoUpdate: ppoEpochs must be a positive integer, got ${opts.ppoEpochs}`);
  const needRef = objective.kl_coef > 0;
  const needMasked = needsMaskedLogprobs(objective);
  const weightingStats = tokenWeightings.get(objective.token_weighting).miniBatchStats !== undefined;

  /** Loss and metrics of one micro-batch (rows of `b`); its gradients accumulate in the trainer. */
  const microStep = async (b: RolloutBatch, rows: number[], accumSteps: number, stats: TokenWeightingStats | undefined) => {
    const G = b.groupSize;
    const records = rows.map((i) => b.records[Math.floor(i / G)]);
    const responses = rows.map((i) => b.responses[i]);
    const T = Math.max(1, ...responses.map((r) => r.length));
    const mat = (src: readonly Float32Array[] | undefined) =>
      src
        ? tf.tensor2d(
            padRows(
              rows.map((i) => src[i]),
              T,
            ),
            [rows.length, T],
          )
        : undefined;
    // With recompute_masked_logprobs the masked view is scored again, with gradient, by the current policy.
    const recompute = objective.recompute_masked_logprobs && b.maskedImages;
    const loss: LossFn<Metrics> = ({ logprobs, mask, maskedLogprobs }) => {
      const out = papoLoss(
        {
          logprobs,
          oldLogprobs: mat(b.oldLogprobs)!,
          refLogprobs: mat(b.refLogprobs),
          maskedLogprobs: recompute ? maskedLogprobs : mat(b.maskedLogprobs),
          advantages: tf.tensor1d(rows.map((i) => b.advantages[i])),
          responseMask: mask,
        },
        objective,
        { gradAccumSteps: accumSteps, tokenWeightingStats: stats },
      );
      return { loss: out.loss, metrics: out.metrics as Metrics };
    };
    const r = await trainer.accumulate(
      {
        images: records.map((rec) => rec.image),
        prompts: records.map((rec) => rec.question),
        responses,
        maskedImages: recompute ? rows.map((i) => b.maskedImages![Math.floor(i / G)]) : undefined,
      },
      loss,
    );
    return { loss: r.loss, metrics: r.metrics ?? {} };
  };

  /**
   * The first non-finite value the loss would read at a valid token of `rows`, named. Checked here because
   * the loss clamps log-ratios, and a backend's clamp may map NaN to a bound (wasm does): the loss would
   * then be finite and silently wrong.
   */
  const nonFiniteInput = (b: RolloutBatch, rows: number[]): string | undefined => {
    const masked = objective.recompute_masked_logprobs && b.maskedImages ? undefined : b.maskedLogprobs;
    const fields = [
      ['oldLogprobs', b.oldLogprobs],
      ['refLogprobs', b.refLogprobs],
      ['maskedLogprobs', masked],
    ] as const;
    const name = (i: number) => `${b.records[Math.floor(i / b.groupSize)].id} response ${i % b.groupSize}`;
    for (const i of rows) {
      if (!Number.isFinite(b.advantages[i])) return `advantage of ${name(i)} is ${b.advantages[i]}`;
      const resp = b.responses[i];
      for (const [field, src] of fields) {
        const row = src?.[i];
        if (!row) continue;
        for (let t = 0; t < resp.length; t++) if (resp[t] !== PAD_ID && !Number.isFinite(row[t])) return `${field} of ${name(i)} is ${row[t]} at token ${t}`;
      }
    }
    return undefined;
  };

  /** The token weighting's statistics over all the rows of a mini-batch (from constants: before any forward). */
  const miniBatchStats = (b: RolloutBatch, rows: number[]): TokenWeightingStats => {
    const responses = rows.map((i) => b.responses[i]);
    const T = Math.max(1, ...responses.map((r) => r.length));
    const mat = (src: readonly ArrayLike<number>[]) => tf.tensor2d(padRows(src, T), [rows.length, T]);
    const inputs = {
      oldLogprobs: mat(rows.map((i) => b.oldLogprobs[i])),
      maskedLogprobs: b.maskedLogprobs ? mat(rows.map((i) => b.maskedLogprobs![i])) : undefined,
      advantages: mat(rows.map((i) => new Float32Array(b.responses[i].length).fill(b.advantages[i]))),
      responseMask: mat(responses.map(realTokens)),
    };
    try {
      return tokenWeightingStats(objective, inputs);
    } finally {
      tf.dispose(Object.values(inputs).filter((t) => t !== undefined));
    }
  };

  /** One optimizer step over the rows of a mini-batch; null when skipped for a non-finite input, loss or gradient. */
  const miniBatchStep = async (b: RolloutBatch, rows: number[], where: string): Promise<{ metrics: Metrics; gradNorm: number; lr: number } | null> => {
    const bad = nonFiniteInput(b, rows);
    if (bad) {
      opts.logger?.warn({ event: 'nonfinite_input', where, message: bad }, 'non-finite input: optimizer step skipped');
      return null;
    }
    const micro = opts.microBatchSize;
    const chunks = Math.ceil(rows.length / micro);
    const metrics: Metrics[] = [];
    let finite = true;
    try {
      const stats = weightingStats ? miniBatchStats(b, rows) : undefined;
      for (let c = 0; c < chunks; c++) {
        const r = await microStep(b, rows.slice(c * micro, (c + 1) * micro), chunks, stats);
        metrics.push(r.metrics);
        if (!Number.isFinite(r.loss)) finite = false;
      }
    } catch (err) {
      await trainer.zeroGrad();
      throw err;
    }
    if (!finite) {
      await trainer.zeroGrad();
      opts.logger?.warn({ event: 'nonfinite_loss', where, metrics: meanMetrics(metrics) }, 'non-finite loss: optimizer step skipped');
      return null;
    }
    try {
      const info = await trainer.step();
      return { metrics: meanMetrics(metrics), gradNorm: info.gradNorm, lr: info.lr };
    } catch (err) {
      // AdamW refuses a non-finite gradient without touching any state; anything else is a real failure.
      if (!isNonFiniteGradient(err)) throw err;
      opts.logger?.warn({ event: 'nonfinite_grad', where, message: (err as Error).message }, 'non-finite gradient: optimizer step skipped');
      return null;
    }
  };

  /** Mean k3(old, masked) per response, split by vision dependency: how much the image matters, per group. */
  const perceptionByGroup = (b: RolloutBatch): Metrics => {
    if (!b.maskedLogprobs || b.responses.length === 0) return {};
    const values = meanKlPrcp(
      b.oldLogprobs,
      b.maskedLogprobs,
      b.responses.map((r) => r.length),
    );
    const acc: Record<string, number[]> = { vision_dependent: [], general: [] };
    values.forEach((v, i) => acc[b.records[Math.floor(i / b.groupSize)].visionDependency === 'high' ? 'vision_dependent' : 'general'].push(v));
    const out: Metrics = {};
    for (const [k, xs] of Object.entries(acc)) if (xs.length) out[`actor/kl_prcp/${k}`] = xs.reduce((a, c) => a + c, 0) / xs.length;
    return out;
  };

  const update = concatMap(async (input: RolloutBatch): Promise<TrainedStep> => {
    const t0 = performance.now();
    try {
      if (needRef && !input.refLogprobs) throw new Error('kl_coef > 0 but the batch has no refLogprobs (add the referenceLogprobs stage)');
      if (needMasked && !input.maskedLogprobs)
        throw new Error('the objective uses the masked view but the batch has no maskedLogprobs (add the maskedViewLogprobs stage)');
      // 1. Staleness guard, by whole groups (advantages are relative to the group).
      const G = input.groupSize;
      const version = versions.current;
      const fresh: number[] = [];
      for (let p = 0; p < input.records.length; p++) {
        let oldest = Infinity;
        for (let g = 0; g < G; g++) oldest = Math.min(oldest, input.versions[p * G + g]);
        if (version - oldest <= maxStaleness) fresh.push(p);
      }
      const stale = input.records.length - fresh.length;
      const b = stale ? selectGroups(input, fresh) : input;
      if (stale) opts.logger?.warn({ event: 'stale_groups_dropped', step: b.step, dropped: stale, version }, 'stale groups dropped');
      else
        opts.logger?.debug({ event: 'staleness_checked', step: b.step, groups: input.records.length, version, max_staleness: maxStaleness }, 'no stale groups');

      // 2-4. PPO epochs over mini-batches of groups.
      const tUpdate = performance.now();
      const P = b.records.length;
      const perMini = opts.globalBatchSize > 0 ? Math.min(opts.globalBatchSize, P) : P;
      const steps: { metrics: Metrics; gradNorm: number; lr: number }[] = [];
      let skipped = 0;
      const noRewards = b.rewards.length > 0 && b.rewardFailures.length >= b.rewards.length;
      if (noRewards)
        opts.logger?.warn(
          { event: 'all_rewards_failed', step: b.step, failures: b.rewardFailures.length, first: b.rewardFailures[0] },
          'every reward call of the batch failed: its optimizer steps are skipped',
        );
      for (let epoch = 0; epoch < opts.ppoEpochs && P > 0; epoch++) {
        const order = Array.from({ length: P }, (_, p) => p);
        if (opts.shuffle) Rng.derive(opts.seed, 'minibatch', b.step, epoch).shuffle(order);
        for (let s = 0; s < P; s += perMini) {
          const groups = order.slice(s, s + perMini);
          if (noRewards) {
            skipped++;
            continue;
          }
          const rows = groups.flatMap((p) => Array.from({ length: G }, (_, g) => p * G + g));
          const r = await miniBatchStep(b, rows, `${describeBatch(b)}, epoch ${epoch + 1}, mini-batch ${s / perMini + 1}`);
          if (r) steps.push(r);
          else skipped++;
        }
      }
      const tUpdateEnd = performance.now();
      noteStage('update_actor', tUpdate, tUpdateEnd);
      const updateSeconds = (tUpdateEnd - tUpdate) / 1000;

      // 5. Publish the new weights: the sampler's next batches use them.
      const tPublish = performance.now();
      const trainedFrom = version;
      const after = steps.length > 0 ? await versions.publish(await trainer.getParams()) : version;
      versions.applied(b.step);
      const tPublishEnd = performance.now();
      noteStage('update_weights', tPublish, tPublishEnd);
      const publishSeconds = (tPublishEnd - tPublish) / 1000;
      await opts.onApplied?.({ step: b.step, version: after, batch: b, trainer });

      // 6. The step's record.
      const metrics: Metrics = {
        ...batchMetrics(b, trainedFrom),
        ...meanMetrics(steps.map((s) => s.metrics)),
        ...perceptionByGroup(b),
      };
      if (steps.length) {
        metrics['actor/grad_norm'] = steps.reduce((a, s) => a + s.gradNorm, 0) / steps.length;
        metrics['actor/lr'] = steps[steps.length - 1].lr;
      }
      metrics['actor/optimizer_steps'] = steps.length;
      metrics['actor/skipped_steps'] = skipped;
      metrics['version_stats/dropped_stale_groups'] = stale;
      metrics['version_stats/policy_version'] = after;
      metrics['timing_s/update_actor'] = updateSeconds;
      metrics['timing_s/update_weights'] = publishSeconds;
      const tokens = b.responses.reduce((a, r) => a + r.length, 0);
      metrics['perf/total_num_tokens'] = tokens;
      // Wall time since the previous step left the sink: with overlap, less than the sum of the stages.
      const now = performance.now();
      const windowStart = lastDone ?? started ?? t0;
      const stepSeconds = (now - windowStart) / 1000;
      lastDone = now;
      metrics['timing_s/step'] = stepSeconds;
      // The breakdown's identity (operators/stage-clock.ts): step = sum of the stages + other - overlap.
      if (clock) {
        const stageSeconds = Object.keys(metrics)
          .filter((k) => k.startsWith('timing_s/') && k !== 'timing_s/step')
          .reduce((a, k) => a + metrics[k], 0);
        const other = Math.max(0, stepSeconds - clock.busySeconds(windowStart, now));
        clock.clear();
        metrics['timing_s/other'] = other;
        metrics['timing_s/overlap'] = stageSeconds + other - stepSeconds;
      }
      metrics['perf/throughput'] = stepSeconds > 0 ? tokens / stepSeconds : 0;
      return { step: b.step, version: after, trainedFrom, metrics, batch: b };
    } catch (err) {
      throw stageError('papoUpdate', input, err);
    } finally {
      opts.onStepDone?.(input.step);
    }
  });
  return (source) =>
    defer(() => {
      started = performance.now();
      clock = new StepClock();
      return update(source).pipe(
        finalize(() => {
          clock?.close();
          clock = undefined;
        }),
      );
    });
}
