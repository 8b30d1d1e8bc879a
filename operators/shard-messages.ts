/**
 * A shard on the wire: the job a trainer sends to a rollout worker and the result the worker sends back,
 * each one binary message (storage/message-codec.ts). A job carries its shard's prompts (images included:
 * a worker needs no dataset), the batch seed, the policy version to sample with and the rollout segment's
 * options. A result carries the fields the segment added, taken generically from the batch schema
 * (storage/batch-schema.ts). `decodeResult` checks every shape and number before the trainer uses it; a
 * bad result is an error naming the worker and the job.
 */
import type { PolicyConfig } from '../models/config.ts';
import { batchFields, type TypedRow } from '../storage/batch-schema.ts';
import { decodeMessage, encodeMessage, flattenRows, unflattenRows } from '../storage/message-codec.ts';
import type { TaskRecord } from '../tasks/types.ts';
import type { RgbImage } from '../util/image.ts';
import type { RolloutSegmentOptions, RolloutShard } from './rollout-segment.ts';
import type { PromptBatch } from './types.ts';

/** Names a shard: its run, the trainer process (launch) that asked for it, step, round and index. */
export interface ShardId {
  run: string;
  launch: string;
  step: number;
  round: number;
  shard: number;
}

export interface ShardJob extends ShardId {
  /** the policy version the shard samples with (and scores its masked view under) */
  version: number;
  segment: RolloutSegmentOptions;
  /** `worker.reward.score_function`: a worker runs only rewards it has itself */
  reward: string;
  /** the reward's identity (`builtin:<name>`, `sha256:<hex of its module>`, `code:<name>`): a worker whose reward of that name differs refuses the job */
  rewardId: string;
  policy: PolicyConfig;
  /**
   * the intra-op threads of the trainer's engine (`worker.rollout.threads`): a worker runs its engine with
   * them unless told otherwise, since onnxruntime's sums, and so the log-probs' last bits, depend on them
   */
  threads?: number;
  /** the workers those threads are shared by (`worker.rollout.data_parallel_size`); absent: 1 */
  dataParallelSize?: number;
  /** the shard's prompts, as the trainer's stages see them */
  batch: PromptBatch;
}

export const shardName = (id: ShardId) => `${id.run}.${id.step}.${id.round}.${id.shard}`;
const describeJob = (id: ShardId) => `job ${shardName(id)} (launch ${id.launch})`;

const IDENTIFIER = /^[A-Za-z0-9_-]{1,64}$/;

function flatImages(images: readonly RgbImage[]): Uint8Array {
  const out = new Uint8Array(images.reduce((n, i) => n + i.data.length, 0));
  let at = 0;
  for (const i of images) {
    out.set(i.data, at);
    at += i.data.length;
  }
  return out;
}

function splitImages(flat: Uint8Array, sizes: readonly { height: number; width: number }[], what: string): RgbImage[] {
  let at = 0;
  const out = sizes.map(({ height, width }) => {
    const n = height * width * 3;
    if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0 && at + n <= flat.length))
      throw new Error(`${what}: image sizes do not match its pixels`);
    const data = flat.slice(at, at + n);
    at += n;
    return { height, width, data };
  });
  if (at !== flat.length) throw new Error(`${what}: ${flat.length - at} pixels beyond its images`);
  return out;
}

export function encodeJob(job: ShardJob): Uint8Array {
  const { batch, ...rest } = job;
  const records = batch.records.map(({ image, ...r }) => ({ ...r, height: image.height, width: image.width }));
  return encodeMessage(
    { kind: 'job', ...rest, seed: batch.seed, promptOffset: batch.promptOffset ?? 0, rounds: batch.rounds, records },
    { indices: batch.indices, images: flatImages(batch.records.map((r) => r.image)) },
  );
}

/** A job's content, checked; the batch has no cursor (a worker never needs one). */
export function decodeJob(bytes: Uint8Array, subject: string): ShardJob {
  const what = `shard job ${subject}`;
  const { header: h, arrays } = decodeMessage(bytes, what);
  const bad = (why: string): never => {
    throw new Error(`${what}: ${why}`);
  };
  if (h.kind !== 'job') bad(`kind ${JSON.stringify(h.kind)} is not a job`);
  for (const k of ['run', 'launch'] as const) if (typeof h[k] !== 'string' || !IDENTIFIER.test(h[k] as string)) bad(`${k} is not an identifier`);
  for (const k of ['step', 'round', 'shard', 'version', 'seed', 'promptOffset', 'rounds'] as const)
    if (!Number.isSafeInteger(h[k]) || (h[k] as number) < 0) bad(`${k} is not a non-negative integer`);
  if (typeof h.reward !== 'string') bad('reward is not a name');
  if (typeof h.rewardId !== 'string' || !/^(builtin|sha256|code):./.test(h.rewardId)) bad('rewardId is not a reward identity (builtin:, sha256: or code:)');
  if (!h.segment || typeof h.segment !== 'object' || !h.policy || typeof h.policy !== 'object') bad('segment or policy missing');
  if (h.threads !== undefined && !(Number.isSafeInteger(h.threads) && (h.threads as number) >= 1 && (h.threads as number) <= 1024))
    bad(`threads ${JSON.stringify(h.threads)} is not an integer from 1 to 1024`);
  if (
    h.dataParallelSize !== undefined &&
    !(Number.isSafeInteger(h.dataParallelSize) && (h.dataParallelSize as number) >= 1 && (h.dataParallelSize as number) <= 1024)
  )
    bad(`dataParallelSize ${JSON.stringify(h.dataParallelSize)} is not an integer from 1 to 1024`);
  const recs = h.records as (Omit<TaskRecord, 'image'> & { height: number; width: number })[];
  if (!Array.isArray(recs) || recs.length === 0) bad('it has no records');
  const indices = arrays.get('indices');
  const pixels = arrays.get('images');
  if (!(indices instanceof Int32Array) || indices.length !== recs.length) bad('indices do not match its records');
  if (!(pixels instanceof Uint8Array)) bad('it has no images');
  const images = splitImages(pixels as Uint8Array, recs, what);
  const records: TaskRecord[] = recs.map(({ height: _h, width: _w, ...r }, i) => {
    if (typeof r.id !== 'string' || typeof r.question !== 'string' || typeof r.answer !== 'string') bad(`record ${i} lacks id, question or answer`);
    return { ...r, meta: r.meta ?? {}, image: images[i] };
  });
  const id = h as unknown as ShardId & { version: number; seed: number; promptOffset: number; rounds: number };
  return {
    run: id.run,
    launch: id.launch,
    step: id.step,
    round: id.round,
    shard: id.shard,
    version: id.version,
    segment: h.segment as RolloutSegmentOptions,
    reward: h.reward as string,
    rewardId: h.rewardId as string,
    policy: h.policy as PolicyConfig,
    ...(h.threads !== undefined ? { threads: h.threads as number } : {}),
    ...(h.dataParallelSize !== undefined ? { dataParallelSize: h.dataParallelSize as number } : {}),
    batch: {
      step: id.step,
      rounds: id.rounds,
      records,
      indices: indices as Int32Array,
      cursor: undefined as unknown as PromptBatch['cursor'],
      seed: id.seed,
      promptOffset: id.promptOffset,
      timing: {},
    },
  };
}

/** A worker's timings of one job, sent with its result (the trainer's `dist/` metrics). */
export interface ShardDist {
  /** the job's time in the stream (server clock, ms since the epoch), echoed */
  jobStoredMs: number;
  /** times the job was delivered (more than 1: redelivered) */
  deliveries: number;
  /** seconds from taking the job to its result */
  busyS: number;
  /** seconds spent fetching weights for it, and their bytes */
  weightFetchS: number;
  weightBytes: number;
}

/** What a worker sends back: the fields the segment added, or the reason it could not run the job; `dist` its timings. */
export function encodeResult(id: ShardId, worker: string, outcome: { shard: RolloutShard } | { error: string }, dist?: ShardDist): Uint8Array {
  const header: Record<string, unknown> = { kind: 'result', ...id, worker, ...(dist ? { dist } : {}) };
  if ('error' in outcome) return encodeMessage({ ...header, error: outcome.error });
  const s = outcome.shard as unknown as Record<string, unknown>;
  const arrays: Record<string, TypedRow> = {};
  const objects: Record<string, unknown> = {};
  for (const f of batchFields()) {
    const v = s[f.name];
    if (v === undefined || f.name === 'records' || f.name === 'indices') continue;
    if (f.layout === 'value') arrays[f.name] = v as TypedRow;
    else if (f.layout === 'tokens') {
      const { flat, offsets } = flattenRows(v as Float32Array[], (n) => (f.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n)) as Float32Array);
      arrays[f.name] = flat;
      arrays[`${f.name}.offsets`] = offsets;
    } else if (f.name === 'maskedImages') arrays[f.name] = flatImages(v as RgbImage[]);
    else objects[f.name] = v;
  }
  const { groupSize, rewardFailures, maskSeed, timing } = outcome.shard;
  return encodeMessage({ ...header, groupSize, rewardFailures, maskSeed, timing, objects }, arrays);
}

/** The header of a result: who sent it and for which shard (checked before anything else is read); `dist` only when its numbers are sound. */
export function resultId(bytes: Uint8Array, subject: string): ShardId & { worker: string; error?: string; dist?: ShardDist } {
  const { header: h } = decodeMessage(bytes, `shard result ${subject}`);
  if (h.kind !== 'result' || typeof h.run !== 'string' || typeof h.launch !== 'string' || typeof h.worker !== 'string')
    throw new Error(`shard result ${subject}: not a result (kind, run, launch, worker)`);
  for (const k of ['step', 'round', 'shard'] as const) if (!Number.isSafeInteger(h[k])) throw new Error(`shard result ${subject}: ${k} is not an integer`);
  const d = h.dist as Record<string, unknown> | undefined;
  const sound =
    d &&
    typeof d === 'object' &&
    ['jobStoredMs', 'deliveries', 'busyS', 'weightFetchS', 'weightBytes'].every((k) => typeof d[k] === 'number' && Number.isFinite(d[k]) && d[k] >= 0);
  return { ...(h as unknown as ShardId & { worker: string; error?: string }), dist: sound ? (d as unknown as ShardDist) : undefined };
}

export interface ResultLimits {
  /** tokens a response may have */
  maxNewTokens: number;
  /** token ids are below it */
  vocabSize: number;
  /** the version every response must carry */
  version: number;
}

/**
 * The shard with the fields of its result, each checked (shapes, token ids, lengths within
 * `maxNewTokens`, finite numbers, the job's version); an error names the worker and the job.
 */
export function decodeResult(shard: PromptBatch, id: ShardId, bytes: Uint8Array, subject: string, limits: ResultLimits): RolloutShard {
  const { header: h, arrays } = decodeMessage(bytes, `shard result ${subject}`);
  const where = `the result of ${describeJob(id)} from worker ${String(h.worker)}`;
  const bad = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (typeof h.error === 'string') bad(`the worker could not run it: ${h.error}`);
  const P = shard.records.length;
  const G = h.groupSize as number;
  if (!(Number.isInteger(G) && G >= 1 && G <= 65536)) bad(`groupSize ${String(h.groupSize)} is not a positive integer`);
  const N = P * G;
  const out: Record<string, unknown> = { ...shard, groupSize: G };
  const objects = (h.objects ?? {}) as Record<string, unknown>;
  for (const f of batchFields()) {
    if (f.name === 'records' || f.name === 'indices') continue;
    const rows = f.per === 'prompt' ? P : N;
    const v = arrays.get(f.name);
    if (f.layout === 'value') {
      if (v === undefined) {
        if (!f.optional) bad(`${f.name} is missing`);
        continue;
      }
      if (v.length !== rows) bad(`${f.name} has ${v.length} values, expected ${rows}`);
      if (f.dtype && !(v instanceof { float32: Float32Array, int32: Int32Array, uint8: Uint8Array }[f.dtype])) bad(`${f.name} is not ${f.dtype}`);
      if (v instanceof Float32Array && !v.every(Number.isFinite)) bad(`${f.name} holds a non-finite number`);
      out[f.name] = v;
    } else if (f.layout === 'tokens') {
      const offsets = arrays.get(`${f.name}.offsets`);
      if (v === undefined) {
        if (!f.optional) bad(`${f.name} is missing`);
        continue;
      }
      if (!(offsets instanceof Int32Array) || offsets.length !== N + 1) bad(`${f.name} has no offsets for ${N} responses`);
      const r = unflattenRows(v as Float32Array, offsets as Int32Array, `${where}: ${f.name}`);
      out[f.name] = r;
    } else if (f.name === 'maskedImages') {
      if (v === undefined) continue;
      out[f.name] = splitImages(
        v as Uint8Array,
        shard.records.map((r) => r.image),
        `${where}: maskedImages`,
      );
    } else if (f.name === 'texts') {
      const t = objects.texts;
      if (!Array.isArray(t) || t.length !== N || !t.every((x) => typeof x === 'string')) bad(`texts is not ${N} strings`);
      out.texts = t;
    } else if (objects[f.name] !== undefined) out[f.name] = objects[f.name];
  }
  const responses = out.responses as Int32Array[];
  responses.forEach((tokens, i) => {
    if (tokens.length > limits.maxNewTokens) bad(`response ${i} has ${tokens.length} tokens, over max_response_length ${limits.maxNewTokens}`);
    for (const t of tokens) if (!(t >= 0 && t < limits.vocabSize)) bad(`response ${i} holds token id ${t}, outside the vocabulary of ${limits.vocabSize}`);
    for (const name of ['oldLogprobs', 'maskedLogprobs', 'refLogprobs']) {
      const lp = (out[name] as Float32Array[] | undefined)?.[i];
      if (lp === undefined) continue;
      if (lp.length !== tokens.length) bad(`${name} of response ${i} has ${lp.length} values for ${tokens.length} tokens`);
      if (!lp.every((x) => Number.isFinite(x) && x <= 0)) bad(`${name} of response ${i} holds a value that is not a finite log-probability`);
    }
  });
  if (!(out.versions as Int32Array).every((v) => v === limits.version)) bad(`responses were not sampled with version ${limits.version}`);
  if ((out.maskedLogprobs === undefined) !== (out.maskedImages === undefined)) bad('maskedLogprobs and maskedImages come together');
  if (out.maskedLogprobs !== undefined) {
    if (!Number.isSafeInteger(h.maskSeed)) bad('maskSeed is not an integer');
    out.maskSeed = h.maskSeed;
  }
  if (!Array.isArray(h.rewardFailures)) bad('rewardFailures is not a list');
  for (const f of h.rewardFailures as { index: unknown }[])
    if (!f || typeof f !== 'object' || !Number.isInteger(f.index) || (f.index as number) < 0 || (f.index as number) >= N)
      bad('a reward failure names no response of the shard');
  out.rewardFailures = h.rewardFailures;
  const timing: Record<string, number> = {};
  for (const [k, s] of Object.entries((h.timing ?? {}) as Record<string, unknown>)) if (typeof s === 'number' && Number.isFinite(s) && s >= 0) timing[k] = s;
  out.timing = timing;
  return out as unknown as RolloutShard;
}
