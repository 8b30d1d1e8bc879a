/**
 * How many rollout steps a `papo train` run takes: `trainer.max_steps` when set, else (with
 * `trainer.total_epochs`) EasyR1's count, floor(training records / rollout_batch_size) x total_epochs (its
 * training loader drops the last partial batch of each epoch), else the default.
 *
 * Here the record stream runs on across epochs, so batches do not stop at an epoch's end: the run takes
 * that many batches of the stream, at most total_epochs passes over the training split.
 */

/** Rollout steps when neither `trainer.max_steps` nor `trainer.total_epochs` is given. */
export const DEFAULT_MAX_STEPS = 80;

export function trainingSteps(trainer: { max_steps?: number; total_epochs?: number }, trainRecords: number, rolloutBatchSize: number): number {
  if (trainer.max_steps !== undefined) return trainer.max_steps;
  if (trainer.total_epochs === undefined) return DEFAULT_MAX_STEPS;
  const perEpoch = Math.floor(trainRecords / rolloutBatchSize);
  if (perEpoch < 1)
    throw new Error(
      `trainer.total_epochs: the training split has ${trainRecords} records, fewer than one batch of data.rollout_batch_size ${rolloutBatchSize}: no full step per epoch (set trainer.max_steps, or a smaller batch)`,
    );
  return perEpoch * trainer.total_epochs;
}

/** What to say at start about the count when `trainer.total_epochs` is given (undefined otherwise). */
export function stepsNote(
  trainer: { max_steps?: number; total_epochs?: number },
  steps: number,
  trainRecords: number,
  rolloutBatchSize: number,
): string | undefined {
  if (trainer.total_epochs === undefined) return undefined;
  if (trainer.max_steps !== undefined) return `trainer.total_epochs ${trainer.total_epochs} is ignored: trainer.max_steps ${trainer.max_steps} is set and wins`;
  return `trainer.total_epochs ${trainer.total_epochs}: ${steps} rollout steps (floor(${trainRecords} training records / data.rollout_batch_size ${rolloutBatchSize}) x ${trainer.total_epochs})`;
}
