/**
 * The rollout log of a run: every trained rollout step, appended as its own Zarr v3 group under
 * `<run>/rollouts/`, so a step can be inspected, replayed through the update, or trained on offline.
 *
 * Layout of `<run>/rollouts/`:
 *   zarr.json                    group; attributes { format, format_version }
 *   step_000012/                 one group per step; attributes: step, version (the policy it was trained
 *                                from), group_size, split, task, task_fingerprint, seed, mask_seed, rounds,
 *                                record_ids, dropped_groups, surplus_groups, zero_variance_groups,
 *                                reward_failures, cursor
 *     record_index   int32 [P]   each prompt's index in its split (task.recordAt(split, i))
 *     offsets        int32 [R+1] response r's tokens are [offsets[r], offsets[r+1]) of the flat arrays
 *     tokens         int32 [N]   response tokens, flat (EOS included when the response finished)
 *     old_logprobs   f32 [N]     per token: the sampler's log-probs, which are PPO's old (= behaviour) log-probs
 *     masked_logprobs f32 [N]    per token, on the masked image (when the objective uses it)
 *     ref_logprobs   f32 [N]     per token, under the reference policy (when kl_coef > 0)
 *     rewards, accuracy, format, advantages   f32 [R]
 *     versions       int32 [R]   the policy version that sampled each response
 *     finished       uint8 [R]
 * R = P * G responses, prompt-major (response g of prompt p at p * G + g). Every chunk carries crc32c.
 *
 * A step is written under a temporary name and published by one rename: a reader (even while the run
 * goes on) sees whole steps or none.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { StreamCursor } from '../tasks/stream.ts';
import { exists, isTmpName, readdirOrEmpty, tmpSibling } from './atomic.ts';
import { stepDirName } from './step-dirs.ts';
import { createGroup, openGroup, readArray, writeArray } from './zarr-arrays.ts';

export const ROLLOUT_LOG_FORMAT = 'papo-stream/rollout-log';
export const ROLLOUT_LOG_FORMAT_VERSION = 1;
const STEP = /^step_(\d{6,})$/;

/** One logged rollout step: plain arrays, as the update consumed them. */
export interface RolloutStepRecord {
  step: number;
  /** policy version the update started from */
  version: number;
  groupSize: number;
  split: string;
  task: string;
  taskFingerprint: string;
  seed: number;
  /** seed of the masks (PAPO's masked view), when drawn */
  maskSeed?: number;
  rounds: number;
  recordIds: string[];
  recordIndices: Int32Array;
  responses: Int32Array[];
  oldLogprobs: Float32Array[];
  maskedLogprobs?: Float32Array[];
  refLogprobs?: Float32Array[];
  rewards: Float32Array;
  accuracy: Float32Array;
  format: Float32Array;
  advantages: Float32Array;
  versions: Int32Array;
  finished: Uint8Array;
  /** counts the step's metrics report: groups dropped / discarded by dynamic sampling, zero-variance groups */
  droppedGroups: number;
  surplusGroups: number;
  zeroVarianceGroups: number;
  /** reward-function failures (reward 0 was used): plain JSON records */
  rewardFailures: readonly Record<string, unknown>[];
  /** the data stream's position after the step's prompts */
  cursor: StreamCursor;
}

/** Rows concatenated into one array of their type. */
function flatten<A extends Float32Array | Int32Array>(rows: readonly A[], make: new (n: number) => A): A {
  const out = new make(rows.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of rows) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

function split<A extends Float32Array | Int32Array>(flat: A, offsets: Int32Array): A[] {
  return Array.from({ length: offsets.length - 1 }, (_, r) => flat.slice(offsets[r], offsets[r + 1]) as A);
}

export class RolloutLog {
  readonly dir: string;

  constructor(runDir: string) {
    this.dir = path.resolve(runDir, 'rollouts');
  }

  /** Appends one step (published atomically). A step already logged is an error unless `replace`. */
  async append(rec: RolloutStepRecord): Promise<void> {
    if (!(await exists(path.join(this.dir, 'zarr.json')))) {
      await fs.mkdir(this.dir, { recursive: true });
      await createGroup(this.dir, { format: ROLLOUT_LOG_FORMAT, format_version: ROLLOUT_LOG_FORMAT_VERSION });
    }
    const R = rec.responses.length;
    for (const [k, n] of [
      ['oldLogprobs', rec.oldLogprobs.length],
      ['rewards', rec.rewards.length],
      ['advantages', rec.advantages.length],
      ['versions', rec.versions.length],
    ] as const) {
      if (n !== R) throw new Error(`rollout log, step ${rec.step}: ${k} has ${n} entries for ${R} responses`);
    }
    const target = path.join(this.dir, stepDirName(rec.step));
    if (await exists(target)) throw new Error(`rollout log: step ${rec.step} is already logged at ${target}`);
    const tmp = tmpSibling(target);
    try {
      const g = await createGroup(tmp, {
        step: rec.step,
        version: rec.version,
        group_size: rec.groupSize,
        split: rec.split,
        task: rec.task,
        task_fingerprint: rec.taskFingerprint,
        seed: rec.seed,
        mask_seed: rec.maskSeed ?? null,
        rounds: rec.rounds,
        record_ids: rec.recordIds,
        dropped_groups: rec.droppedGroups,
        surplus_groups: rec.surplusGroups,
        zero_variance_groups: rec.zeroVarianceGroups,
        reward_failures: rec.rewardFailures,
        cursor: rec.cursor,
      });
      const offsets = new Int32Array(R + 1);
      rec.responses.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
      await writeArray(g, 'record_index', rec.recordIndices);
      await writeArray(g, 'offsets', offsets);
      await writeArray(g, 'tokens', flatten(rec.responses, Int32Array));
      const perToken = { old_logprobs: rec.oldLogprobs, masked_logprobs: rec.maskedLogprobs, ref_logprobs: rec.refLogprobs };
      for (const [name, rows] of Object.entries(perToken)) {
        if (!rows) continue;
        rows.forEach((row, i) => {
          if (row.length < rec.responses[i].length) throw new Error(`rollout log, step ${rec.step}: ${name} of response ${i} is shorter than its tokens`);
        });
        await writeArray(
          g,
          name,
          flatten(
            rows.map((row, i) => row.subarray(0, rec.responses[i].length)),
            Float32Array,
          ),
        );
      }
      for (const [name, a] of Object.entries({
        rewards: rec.rewards,
        accuracy: rec.accuracy,
        format: rec.format,
        advantages: rec.advantages,
        versions: rec.versions,
        finished: rec.finished,
      })) {
        await writeArray(g, name, a);
      }
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      throw new Error(`rollout log: writing step ${rec.step} to ${target} failed: ${e.code === 'ENOSPC' ? 'disk full (ENOSPC)' : e.message}`, { cause: err });
    }
  }

  /** Logged steps, ascending. */
  async steps(): Promise<number[]> {
    const names = await readdirOrEmpty(this.dir);
    return names.flatMap((n) => (STEP.test(n) ? [Number(STEP.exec(n)![1])] : [])).sort((a, b) => a - b);
  }

  async read(step: number): Promise<RolloutStepRecord> {
    const where = path.join(this.dir, stepDirName(step));
    if (!(await exists(where))) throw new Error(`rollout log: step ${step} is not logged in ${this.dir}`);
    const g = await openGroup(where, 'rollout step');
    const a = g.attrs as Record<string, unknown>;
    const offsets = await readArray<Int32Array>(g, 'offsets', where, { dtype: 'int32' });
    const tokens = await readArray<Int32Array>(g, 'tokens', where, { dtype: 'int32' });
    const perToken = async (name: string) =>
      (await exists(path.join(where, name)))
        ? split(await readArray<Float32Array>(g, name, where, { dtype: 'float32', shape: [tokens.length] }), offsets)
        : undefined;
    const R = offsets.length - 1;
    const perResponse = async <A extends Float32Array | Int32Array | Uint8Array>(name: string, dtype: 'float32' | 'int32' | 'uint8') =>
      readArray<A>(g, name, where, { dtype, shape: [R] });
    return {
      step: a.step as number,
      version: a.version as number,
      groupSize: a.group_size as number,
      split: a.split as string,
      task: a.task as string,
      taskFingerprint: a.task_fingerprint as string,
      seed: a.seed as number,
      maskSeed: (a.mask_seed ?? undefined) as number | undefined,
      rounds: a.rounds as number,
      recordIds: a.record_ids as string[],
      recordIndices: await readArray<Int32Array>(g, 'record_index', where, { dtype: 'int32' }),
      responses: split(tokens, offsets),
      oldLogprobs: (await perToken('old_logprobs'))!,
      maskedLogprobs: await perToken('masked_logprobs'),
      refLogprobs: await perToken('ref_logprobs'),
      rewards: await perResponse<Float32Array>('rewards', 'float32'),
      accuracy: await perResponse<Float32Array>('accuracy', 'float32'),
      format: await perResponse<Float32Array>('format', 'float32'),
      advantages: await perResponse<Float32Array>('advantages', 'float32'),
      versions: await perResponse<Int32Array>('versions', 'int32'),
      finished: await perResponse<Uint8Array>('finished', 'uint8'),
      droppedGroups: (a.dropped_groups ?? 0) as number,
      surplusGroups: (a.surplus_groups ?? 0) as number,
      zeroVarianceGroups: (a.zero_variance_groups ?? 0) as number,
      rewardFailures: (a.reward_failures ?? []) as Record<string, unknown>[],
      cursor: a.cursor as StreamCursor,
    };
  }

  /**
   * Resuming from a checkpoint at `step`: steps after it (logged by the interrupted run after its last
   * checkpoint; the resumed run logs them again, identically) and temporaries of interrupted writes go.
   */
  async truncateAfter(step: number): Promise<number[]> {
    const removed: number[] = [];
    const names = await readdirOrEmpty(this.dir);
    for (const n of names) {
      const m = STEP.exec(n);
      if ((m && Number(m[1]) > step) || (isTmpName(n) && n.startsWith('step_'))) {
        await fs.rm(path.join(this.dir, n), { recursive: true, force: true });
        if (m) removed.push(Number(m[1]));
      }
    }
    return removed;
  }
}
