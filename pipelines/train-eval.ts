/**
 * The evaluations around and inside a `papo train` run: the held-out test before and after training
 * (greedy, avg@k with `trainer.test_k`, the error taxonomy with `trainer.test_errors`), validation every
 * `trainer.val_freq` steps, and the closing comparison of the two tests. They are scored by the task's own
 * verifier (the composite reward), so a training reward that fails or is wrong does not move them, unless
 * `trainer.test_reward=score_function`; failed reward calls are said beside the accuracy.
 */
import type { RolloutEngine } from '../operators/index.ts';
import { compositeReward } from '../tasks/rewards/composite.ts';
import type { RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import type { Task } from '../tasks/types.ts';
import type { Logger } from '../util/logger.ts';
import { describeRewardFailures, evaluate, type EvalReport } from './evaluate.ts';
import { failureKinds } from './reward-failures.ts';
import type { TrainConfig } from './train-config.ts';
import { testAccuracies, type TestAccuracies, type TrainState } from './train-state.ts';
import { generationsOf, type ValGeneration } from './val-generations.ts';

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

export interface TrainEvals {
  /** the held-out test, said on the terminal and logged as `test_<label>` */
  test(label: 'before' | 'after'): Promise<EvalReport>;
  /** validation metrics (`val-core/...`) of the current weights, at `step` (0: before training) */
  val(step: number): Promise<Record<string, number>>;
}

export function trainEvals(
  engine: Pick<RolloutEngine, 'sample' | 'version'>,
  task: Task,
  reward: RewardFunction | RewardScorer,
  cfg: TrainConfig,
  io: {
    say: (line: string) => void;
    logger: Logger;
    quiet?: boolean;
    /** receives the `trainer.val_generations_to_log` generations of each validation */
    onGenerations?: (step: number, generations: ValGeneration[]) => void;
  },
): TrainEvals {
  const { trainer, data } = cfg;
  const { say, logger } = io;
  // the task's own verifier unless the config asks for the training reward: a broken reward must not move the test
  const heldOut = trainer.test_reward === 'score_function' ? reward : compositeReward();
  if (heldOut !== reward && heldOut.name !== reward.name && (trainer.test_before_and_after || trainer.val_freq > 0 || trainer.val_before_train))
    say(
      `the held-out test and validation are scored by the task's verifier, ${heldOut.name}, not by the training reward ${reward.name} (trainer.test_reward=score_function scores them with it)`,
    );
  return {
    async test(label) {
      // avg@k samples with a seed of their own, the same before and after: only the weights differ
      const r = await evaluate(engine, task, {
        split: 'test',
        k: trainer.test_k,
        temperature: trainer.test_temperature,
        seed: 0,
        limit: trainer.test_limit || undefined,
        reward: heldOut,
        quiet: io.quiet,
        errors: trainer.test_errors,
      });
      const g = r.greedy.accuracy;
      say(
        `${label}: held-out test greedy accuracy ${pct(g.overall.accuracy)} overall, ${pct(g.visionDependent.accuracy)} vision-dependent, ${pct(g.general.accuracy)} general (${r.records} prompts; ${describeRewardFailures(r)})`,
      );
      if (r.errors) {
        const e = r.errors.visionDependent;
        const classes = Object.entries(e.counts).filter(([, n]) => n > 0);
        say(
          `${label}: greedy failures on vision-dependent questions: ${classes.map(([c, n]) => `${c} ${n} (${pct(e.shares[c as keyof typeof e.shares])})`).join(', ') || 'none'}`,
        );
      }
      if (r.sampled) {
        const s = r.sampled.accuracy;
        say(
          `${label}: held-out test avg@${r.sampled.k} (temperature ${r.sampled.temperature}) ${pct(s.overall.accuracy)} overall, ${pct(s.visionDependent.accuracy)} vision-dependent, ${pct(s.general.accuracy)} general`,
        );
      }
      logger.info(
        {
          event: `test_${label}`,
          accuracy: r.greedy.accuracy,
          formatRate: r.greedy.formatRate,
          reward: r.reward,
          reward_calls: r.rewardCalls,
          reward_failures: r.rewardFailures.length,
          ...(r.rewardFailures.length ? failureKinds(r.rewardFailures) : {}),
          ...(r.sampled ? { sampled: { k: r.sampled.k, temperature: r.sampled.temperature, accuracy: r.sampled.accuracy } } : {}),
          ...(r.errors
            ? { errors: { overall: r.errors.overall.counts, vision_dependent: r.errors.visionDependent.counts, general: r.errors.general.counts } }
            : {}),
        },
        `test ${label}`,
      );
      return r;
    },
    async val(step) {
      const examples = trainer.val_generations_to_log;
      const r = await evaluate(engine, task, { split: data.val_split, k: 0, limit: trainer.val_limit || undefined, reward: heldOut, quiet: true, examples });
      if (examples > 0) io.onGenerations?.(step, generationsOf(r.examples));
      if (r.rewardFailures.length) {
        const first = r.rewardFailures[0];
        logger.warn({ event: 'val_reward_failures', calls: r.rewardCalls, failures: r.rewardFailures.length, first }, 'validation reward failures');
      }
      const m: Record<string, number> = {};
      const a = r.greedy.accuracy;
      if (a.overall.accuracy !== null) m['val-core/accuracy/overall'] = a.overall.accuracy;
      if (a.visionDependent.accuracy !== null) m['val-core/accuracy/vision_dependent'] = a.visionDependent.accuracy;
      if (a.general.accuracy !== null) m['val-core/accuracy/general'] = a.general.accuracy;
      m['val-core/format'] = r.greedy.formatRate;
      m['val-core/response_length'] = r.greedy.meanLength;
      return m;
    },
  };
}

/** What a checkpoint keeps of the test before training. */
export function testSummary(before: EvalReport): NonNullable<TrainState['test_before']> {
  return {
    ...testAccuracies(before.greedy.accuracy),
    ...(before.sampled ? { sampled: { k: before.sampled.k, ...testAccuracies(before.sampled.accuracy) } } : {}),
  };
}

/** The change from the test before training to the one after, in the terminal's words. */
export function describeChange(before: NonNullable<TrainState['test_before']>, after: EvalReport): string[] {
  const d = (a: number | null, b: number | null) => (a === null || b === null ? '-' : `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`);
  const change = (now: TestAccuracies, then: TestAccuracies) =>
    `${d(now.overall, then.overall)} points overall, ${d(now.vision_dependent, then.vision_dependent)} vision-dependent, ${d(now.general, then.general)} general`;
  const lines = [`change: ${change(testAccuracies(after.greedy.accuracy), before)}`];
  if (after.sampled && before.sampled?.k === after.sampled.k)
    lines.push(`change of avg@${after.sampled.k}: ${change(testAccuracies(after.sampled.accuracy), before.sampled)}`);
  return lines;
}
