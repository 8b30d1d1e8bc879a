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
 *     <log name>                 fields registered by stages of one's own (storage/batch-schema.ts), described
 *                                in the step's `extra_fields` attribute so that any reader can read them back
 * R = P * G responses, prompt-major (response g of prompt p at p * G + g). Every chunk carries crc32c.
 * Which fields are logged, under which names and element types, is the batch schema's (storage/batch-schema.ts).
 *
 * A step is written under a temporary name and published by one rename: a reader (even while the run
 * goes on) sees whole steps or none.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { StreamCursor } from '../tasks/stream.ts';
import { exists, isTmpName, readdirOrEmpty, tmpSibling } from './atomic.ts';
import { stepDirName } from './step-dirs.ts';
import { BUILTIN_BATCH_FIELDS, batchFields, registeredBatchFields, typedArray, type BatchField, type TypedRow } from './batch-schema.ts';
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
  /** values of fields registered by stages of one's own (storage/batch-schema.ts), by field name */
  extra?: Record<string, TypedRow | TypedRow[]>;
}

/** The key of a logged field in a RolloutStepRecord: the batch's name, but `indices` is `recordIndices`. */
const recordKey = (f: BatchField) => (f.name === 'indices' ? 'recordIndices' : f.name);

/** A logged field's value in `rec` (undefined: absent). */
function fieldValue(rec: RolloutStepRecord, f: BatchField): TypedRow | TypedRow[] | undefined {
  const builtin = BUILTIN_BATCH_FIELDS.includes(f);
  return (builtin ? (rec as unknown as Record<string, unknown>)[recordKey(f)] : rec.extra?.[f.name]) as TypedRow | TypedRow[] | undefined;
}

/** Rows concatenated into one array of their type. */
function flatten(rows: readonly TypedRow[], dtype: Parameters<typeof typedArray>[0]): TypedRow {
  const out = typedArray(
    dtype,
    rows.reduce((a, r) => a + r.length, 0),
  );
  let o = 0;
  for (const r of rows) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

function split<A extends TypedRow>(flat: A, offsets: Int32Array): A[] {
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
    const P = rec.recordIds.length;
    // The logged fields present, from the batch schema; registered ones are described in the step's attributes.
    const logged = batchFields().filter((f) => f.log !== undefined && fieldValue(rec, f) !== undefined);
    for (const f of logged) {
      const v = fieldValue(rec, f)!;
      const n = f.per === 'prompt' ? P : R;
      if (v.length !== n) throw new Error(`rollout log, step ${rec.step}: ${f.name} has ${v.length} entries for ${n} ${f.per}s`);
    }
    const extra = logged.filter((f) => registeredBatchFields().includes(f));
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
        ...(extra.length ? { extra_fields: extra.map(({ name, per, layout, dtype, log }) => ({ name, per, layout, dtype, log })) } : {}),
      });
      const offsets = new Int32Array(R + 1);
      rec.responses.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
      await writeArray(g, 'offsets', offsets);
      for (const f of logged) {
        const v = fieldValue(rec, f)!;
        if (f.layout !== 'tokens') {
          await writeArray(g, f.log!, v as TypedRow);
          continue;
        }
        const rows = v as TypedRow[];
        rows.forEach((row, i) => {
          if (row.length < rec.responses[i].length) throw new Error(`rollout log, step ${rec.step}: ${f.log} of response ${i} is shorter than its tokens`);
        });
        await writeArray(
          g,
          f.log!,
          flatten(
            rows.map((row, i) => row.subarray(0, rec.responses[i].length)),
            f.dtype!,
          ),
        );
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
    const R = offsets.length - 1;
    const P = (a.record_ids as unknown[]).length;
    // Every logged field of the batch schema, and those the step's attributes describe (stages of one's own).
    const described = ((a.extra_fields ?? []) as BatchField[]).map((f) => ({ ...f, optional: true }));
    const values: Record<string, TypedRow | TypedRow[]> = {};
    let tokens = 0;
    for (const f of [...BUILTIN_BATCH_FIELDS, ...described]) {
      if (f.log === undefined) continue;
      if (!(await exists(path.join(where, f.log)))) {
        if (f.optional) continue;
        throw new Error(`rollout log: ${where} has no array ${f.log}`);
      }
      const dtype = f.dtype!;
      if (f.layout === 'tokens') {
        const flat = await readArray<TypedRow>(g, f.log, where, f.name === 'responses' ? { dtype } : { dtype, shape: [tokens] });
        if (f.name === 'responses') tokens = flat.length;
        values[f.name] = split(flat, offsets);
      } else values[f.name] = await readArray<TypedRow>(g, f.log, where, { dtype, shape: [f.per === 'prompt' ? P : R] });
    }
    const builtin = new Set(BUILTIN_BATCH_FIELDS.map((f) => f.name));
    const extra = Object.fromEntries(Object.entries(values).filter(([k]) => !builtin.has(k)));
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
      recordIndices: values.indices as Int32Array,
      responses: values.responses as Int32Array[],
      oldLogprobs: values.oldLogprobs as Float32Array[],
      maskedLogprobs: values.maskedLogprobs as Float32Array[] | undefined,
      refLogprobs: values.refLogprobs as Float32Array[] | undefined,
      rewards: values.rewards as Float32Array,
      accuracy: values.accuracy as Float32Array,
      format: values.format as Float32Array,
      advantages: values.advantages as Float32Array,
      versions: values.versions as Int32Array,
      finished: values.finished as Uint8Array,
      droppedGroups: (a.dropped_groups ?? 0) as number,
      surplusGroups: (a.surplus_groups ?? 0) as number,
      zeroVarianceGroups: (a.zero_variance_groups ?? 0) as number,
      rewardFailures: (a.reward_failures ?? []) as Record<string, unknown>[],
      cursor: a.cursor as StreamCursor,
      ...(Object.keys(extra).length ? { extra } : {}),
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
