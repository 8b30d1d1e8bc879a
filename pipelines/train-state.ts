/**
 * The JSON part of a `papo train` checkpoint (everything but the arrays), declared once with its schema:
 * a checkpoint is read through `parseTrainState`, so a hand-edited or foreign state is refused with the
 * key that is wrong instead of steering the run.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AccuracyReport } from '../tasks/accuracy-report.ts';
import type { StreamCursor } from '../tasks/stream.ts';
import { flattenConfig, RESUME_SAFE_KEYS, type TrainConfig } from './train-config.ts';

const accuracy = z.number().min(0).max(1).nullable();
const TestAccuraciesSchema = z.object({ overall: accuracy, vision_dependent: accuracy, general: accuracy }).strict();
export type TestAccuracies = z.output<typeof TestAccuraciesSchema>;

const nonNegInt = z.number().int().nonnegative();

export const TrainStateSchema = z
  .object({
    /** policy version after the checkpoint's step */
    version: nonNegInt,
    /** data stream position after the last batch the update consumed (RecordStream.resume checks the rest) */
    cursor: z.object({ version: z.literal(1), task: z.string(), fingerprint: z.string(), position: nonNegInt, epoch: nonNegInt }).loose(),
    /** [step, version after it] for the last max_staleness + 1 steps: which version samples the next steps */
    versions: z.array(z.tuple([z.number().int().positive(), nonNegInt])),
    /** the run's config (compared with the launch's by the resume) */
    config: z.record(z.string(), z.unknown()),
    /** SHA-256 of the config's keys that a resume may not change: equal hashes, compatible runs */
    config_hash: z.string(),
    /** identifies the starting (and reference) weights */
    reference: z.object({ model_path: z.string(), fingerprint: z.string() }).strict(),
    /** greedy test accuracy before training (and avg@k with trainer.test_k), for the final comparison */
    test_before: TestAccuraciesSchema.extend({ sampled: TestAccuraciesSchema.extend({ k: z.number().int().positive() }).strict().optional() })
      .strict()
      .nullable(),
    /** the step's metrics (best-checkpoint retention) */
    metrics: z.record(z.string(), z.number()),
  })
  .strict();

export type TrainState = Omit<z.output<typeof TrainStateSchema>, 'cursor' | 'config'> & { cursor: StreamCursor; config: TrainConfig };

/**
 * The state of checkpoint `where` after step `step`, validated: versions no later than the step, the policy
 * version no more than the step (one version per step at most).
 */
export function parseTrainState(state: unknown, where: string, step: number): TrainState {
  const r = TrainStateSchema.safeParse(state);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${where}: the checkpoint's state is not a papo train state: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const s = r.data;
  if (s.version > step) throw new Error(`${where}: the checkpoint's state says policy version ${s.version} after step ${step} (at most one version per step)`);
  const late = s.versions.find(([k, v]) => k > step || v > s.version);
  if (late) throw new Error(`${where}: the checkpoint's state lists step ${late[0]} at version ${late[1]}, past its own step ${step} (version ${s.version})`);
  return s as unknown as TrainState;
}

/**
 * What a checkpoint's step implies about the rest of its state, checked on resume: the data stream has
 * consumed at least `rollout_batch_size` prompts per step (dynamic sampling and dropped stale groups only
 * take more), and the optimizer has taken at most `ppo_epochs` x mini-batches per step (skipped updates take
 * fewer). A state edited by hand past these bounds would resume a different run than the one saved.
 */
export function checkResumedProgress(state: TrainState, where: string, step: number, optimizerStep: number, cfg: TrainConfig, trainSize: number): void {
  if (cfg.data.rollouts_path !== undefined) return; // offline: the rollout log, not the stream, feeds the steps
  const { epoch, position } = state.cursor as unknown as { epoch: number; position: number };
  const consumed = epoch * trainSize + position;
  const batch = cfg.data.rollout_batch_size;
  if (consumed < step * batch)
    throw new Error(
      `${where}: the checkpoint's data cursor (epoch ${epoch}, position ${position}) has consumed ${consumed} prompts, fewer than its ${step} steps of ${batch} took; refusing to resume from it`,
    );
  const { ppo_epochs, global_batch_size } = cfg.worker.actor;
  const groupsPerStep = batch * (cfg.algorithm.dynamic_sampling ? cfg.algorithm.dynamic_sampling_max_tries + 1 : 1);
  const perStep = ppo_epochs * (global_batch_size > 0 ? Math.ceil(groupsPerStep / global_batch_size) : 1);
  if (optimizerStep > step * perStep)
    throw new Error(
      `${where}: the checkpoint's optimizer has taken ${optimizerStep} steps, more than ${step} rollout steps can take (${perStep} each at most); refusing to resume from it`,
    );
}

/** SHA-256 over the config's keys that change what a run computes (those a resume may change left out). */
export function configHash(cfg: TrainConfig): string {
  const kept = [...flattenConfig(cfg).entries()].filter(([k]) => !RESUME_SAFE_KEYS.includes(k)).sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(kept)).digest('hex');
}

export const testAccuracies = (a: AccuracyReport): TestAccuracies => ({
  overall: a.overall.accuracy,
  vision_dependent: a.visionDependent.accuracy,
  general: a.general.accuracy,
});
