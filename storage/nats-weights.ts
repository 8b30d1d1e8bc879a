/**
 * Policy weights through a JetStream object store (storage/rollout-broker.ts): each published version of a
 * run as `<run>/policy/<version>`, its reference weights as `<run>/reference`, both one binary message
 * (storage/message-codec.ts: the policy config in the header, one float32 array per parameter) whose SHA-256
 * is stored beside it and checked on every read. The run's latest version goes to the KV key `<run>.version`,
 * which workers poll to learn that a version they wait for exists. Every call waits through a server restart
 * (`retrying`).
 */
import { createHash } from 'node:crypto';
import type { PolicyConfig } from '../models/config.ts';
import type { Params } from '../models/params.ts';
import { decodeMessage, encodeMessage } from './message-codec.ts';
import { getObject, ObjectReadTimeout, putObject } from './object-chunks.ts';
import { type RolloutBroker, retrying, WEIGHTS_BUCKET } from './rollout-broker.ts';

export const policyObject = (run: string, version: number) => `${run}/policy/${version}`;
export const referenceObject = (run: string) => `${run}/reference`;
const versionKey = (run: string) => `${run}.version`;

export interface StoredWeights {
  policy: PolicyConfig;
  params: Params;
  version: number;
  bytes: number;
}

/**
 * Object chunks of 512 KB (the object store client's default is 128 KB): fewer messages and acks per version;
 * less on a server whose max_payload (1 MB by default) is smaller.
 */
function chunkSize(b: RolloutBroker): number {
  const max = b.nc.info?.max_payload ?? 1024 * 1024;
  return Math.max(16 * 1024, Math.min(512 * 1024, max - 4096));
}

/** Stores weights under `name`; resolves with the bytes stored. */
export async function putWeights(b: RolloutBroker, name: string, policy: PolicyConfig, version: number, params: Params): Promise<number> {
  const bytes = encodeMessage({ kind: 'weights', version, policy }, params);
  const hash = createHash('sha256').update(bytes).digest();
  await retrying(b, `storing weights ${name}`, () =>
    putObject(b, WEIGHTS_BUCKET, name, bytes, { chunkSize: chunkSize(b), metadata: { sha256: hash.toString('hex') }, sha256: hash }),
  );
  return bytes.length;
}

/** The removal of old versions in the background, one at a time per broker (a put never waits for it). */
const pruning = new WeakMap<RolloutBroker, Promise<void>>();

/**
 * Publishes a policy version: its weights, then the run's version key; the versions below `keepFrom` are
 * removed in the background (`prunedWeights` waits for that). Resolves with the bytes stored.
 */
export async function publishVersion(b: RolloutBroker, run: string, policy: PolicyConfig, version: number, params: Params, keepFrom: number): Promise<number> {
  const stored = await putWeights(b, policyObject(run, version), policy, version, params);
  await retrying(b, `publishing version ${version}`, () => b.runs.put(versionKey(run), String(version)));
  const prune = async () => {
    for (const info of await retrying(b, 'listing the weights', () => b.weights.list())) {
      const m = info.name.startsWith(`${run}/policy/`) ? Number(info.name.slice(run.length + 8)) : Number.NaN;
      if (Number.isInteger(m) && m < keepFrom) await retrying(b, `deleting weights ${info.name}`, () => b.weights.delete(info.name));
    }
  };
  // a failed removal leaves an old version behind, which the next one removes
  pruning.set(
    b,
    (pruning.get(b) ?? Promise.resolve()).then(prune).catch(() => undefined),
  );
  return stored;
}

/** Resolves when the removals of old versions started so far are done. */
export async function prunedWeights(b: RolloutBroker): Promise<void> {
  await pruning.get(b);
}

/** Seconds a read of weights from the object store may take by default before it is an error. */
export const WEIGHTS_READ_TIMEOUT_S = 300;

/**
 * The weights stored under `name`, checked against their SHA-256; undefined if there are none. A server
 * restart is waited through (`retrying`); a read that takes over `timeoutS` seconds (default
 * WEIGHTS_READ_TIMEOUT_S) once the server answers is an error naming the object and its size.
 */
export async function getWeights(b: RolloutBroker, name: string, timeoutS = WEIGHTS_READ_TIMEOUT_S): Promise<StoredWeights | undefined> {
  const read = await retrying(b, `reading weights ${name}`, async () => {
    const info = await b.weights.info(name);
    if (!info || info.deleted) return undefined;
    try {
      return { info, ...(await getObject(b, info, timeoutS * 1000)) };
    } catch (err) {
      if (err instanceof ObjectReadTimeout)
        throw new Error(
          `reading weights ${name} (${(info.size / 1e6).toFixed(1)} MB) from the NATS object store ${WEIGHTS_BUCKET} took over ${timeoutS} s: is the server reachable and not overloaded?`,
        );
      throw err;
    }
  });
  if (!read) return undefined;
  const { info, bytes } = read;
  const want = info.metadata?.sha256;
  const got = read.sha256.toString('hex');
  if (want !== got) throw new Error(`weights ${name} in object store ${b.weights.constructor.name}: SHA-256 ${got} differs from the stored ${String(want)}`);
  const { header, arrays } = decodeMessage(bytes, `weights ${name}`);
  const params: Params = {};
  for (const [k, a] of arrays) {
    if (!(a instanceof Float32Array)) throw new Error(`weights ${name}: parameter ${k} is not float32`);
    params[k] = a;
  }
  if (!Number.isInteger(header.version) || !header.policy || typeof header.policy !== 'object') throw new Error(`weights ${name}: no version or policy config`);
  return { policy: header.policy as PolicyConfig, params, version: header.version as number, bytes: bytes.length };
}

/** Marks `launch` as the run's current trainer process: workers drop the jobs of earlier launches. */
export async function setCurrentLaunch(b: RolloutBroker, run: string, launch: string): Promise<void> {
  await retrying(b, 'marking the launch', () => b.runs.put(`${run}.launch`, launch));
}

/** The run's current trainer process, if one said so. */
export async function currentLaunch(b: RolloutBroker, run: string): Promise<string | undefined> {
  return (await retrying(b, 'reading the launch', () => b.runs.get(`${run}.launch`)))?.string() || undefined;
}

/**
 * Resolves once the run's latest published version is at least `version`, polling its KV key every
 * `pollMs` (a watch would die with the connection when the server restarts).
 */
export async function waitForVersion(b: RolloutBroker, run: string, version: number, signal?: AbortSignal, pollMs = 200): Promise<void> {
  const latest = async () => Number((await retrying(b, `reading the version of run ${run}`, () => b.runs.get(versionKey(run)), signal))?.string() ?? -1);
  while ((await latest()) < version) {
    if (signal?.aborted) throw new Error(`stopped waiting for version ${version} of run ${run}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
