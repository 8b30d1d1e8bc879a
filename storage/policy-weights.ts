/**
 * Policy weights as a Zarr v3 group: one float32 array per parameter, named as in `models/params.ts`, and
 * the policy config in the group attributes, so both the tfjs trainer and the onnxruntime engine can start
 * from a saved policy.
 *
 * Layout of `<dir>/` (format version 2):
 *   zarr.json                 group; attributes { format, format_version, policy_config, meta }
 *   <param name>/zarr.json    float32 array of the parameter's shape, one chunk, codecs bytes(little) + crc32c
 *   <param name>/c/...        the chunk, closed by its CRC32C (verified on every read)
 * Version 1 (no crc32c codec; CRC-32 of each parameter in the attribute `checksums`) still loads.
 *
 * `savePolicyWeights` writes into a fresh temporary directory and publishes it with one rename; it refuses
 * a destination that exists, so it never replaces or deletes anything. `loadPolicyWeights` also accepts a
 * training checkpoint (its `policy/` group) or a run directory (its latest complete checkpoint, chosen as
 * `CheckpointStore.latest()` chooses it: see checkpoint-dirs.ts).
 */
import * as fs from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { policyConfig, type PolicyConfig } from '../models/config.ts';
import { paramSpecs, validateParams, type Params } from '../models/params.ts';
import { exists, fsyncTree, tmpSibling } from './atomic.ts';
import { CHECKPOINT_FORMAT, checkCompleteCheckpoint, latestCompleteCheckpoint } from './checkpoint-dirs.ts';
import { crc32cOf } from './crc32c.ts';
import { createGroup, openGroup, readArray, writeArray, type Group } from './zarr-arrays.ts';

export const WEIGHTS_FORMAT = 'papo-stream/policy-weights';
export const WEIGHTS_FORMAT_VERSION = 2;

export interface SavedPolicy {
  config: PolicyConfig;
  params: Params;
  /** Free-form JSON saved alongside (training step, policy version, data seed...). */
  meta: Record<string, unknown>;
  /** The directory the weights were read from (for a run directory: `<run>/checkpoints/<latest complete>/policy`). */
  dir: string;
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes a weights group into `dir`, which must be new or empty (no atomicity: callers publish it). */
export async function writePolicyGroup(dir: string, saved: { config: PolicyConfig; params: Params; meta?: Record<string, unknown> }): Promise<void> {
  const { config, params } = saved;
  validateParams(config, params, `saving weights to ${dir}`);
  const root = await createGroup(dir, { format: WEIGHTS_FORMAT, format_version: WEIGHTS_FORMAT_VERSION, policy_config: config, meta: saved.meta ?? {} });
  for (const s of paramSpecs(config)) await writeArray(root, s.name, params[s.name], s.shape);
}

/**
 * Saves weights to a new directory `dir`, complete or not at all (temporary sibling, fsync, one rename).
 * Refuses an existing `dir`: choose a new path (training runs keep their weights in checkpoints).
 */
export async function savePolicyWeights(dir: string, saved: { config: PolicyConfig; params: Params; meta?: Record<string, unknown> }): Promise<void> {
  const target = path.resolve(dir);
  if (await exists(target)) throw new Error(`cannot save weights to ${target}: it already exists (nothing was changed); choose a new path`);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  try {
    await writePolicyGroup(tmp, saved);
    await fsyncTree(tmp);
    // rename() onto a directory created meanwhile would replace it only if empty; check again to never clobber.
    if (await exists(target)) throw new Error(`cannot save weights to ${target}: it was created by someone else meanwhile (nothing was changed)`);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new Error(`saving weights to ${target}: disk full (ENOSPC); nothing was changed`);
    throw err;
  }
}

/**
 * Where the weights are: `dir` itself, its checkpoint's `policy/` (a complete checkpoint only), or a run
 * directory's latest complete checkpoint (as `CheckpointStore.latest()` picks it).
 */
async function resolveWeightsDir(dir: string): Promise<string> {
  const where = path.resolve(dir);
  if (!existsSync(where)) {
    const hint = path.basename(where) === 'weights' ? '' : ` (papo sft and papo train write weights to <run dir>/weights, e.g. ${path.join(where, 'weights')})`;
    throw new Error(`policy weights: ${where} does not exist${hint}`);
  }
  if (!statSync(where).isDirectory()) throw new Error(`policy weights: ${where} is not a directory`);
  if (existsSync(path.join(where, 'zarr.json'))) {
    const g = await openGroup(where, 'policy weights group');
    if ((g.attrs as Record<string, unknown>).format !== CHECKPOINT_FORMAT) return where;
    await checkCompleteCheckpoint(where).catch((err: Error) => {
      throw new Error(`policy weights: ${err.message}`);
    });
    return path.join(where, 'policy');
  }
  const hint = existsSync(path.join(where, 'weights')) ? `; did you mean ${path.join(where, 'weights')}?` : '';
  const checkpoints = path.join(where, 'checkpoints');
  if (existsSync(checkpoints)) {
    const name = await latestCompleteCheckpoint(checkpoints);
    if (name) return path.join(checkpoints, name, 'policy');
    throw new Error(`policy weights: run directory ${where} has no complete checkpoint in ${checkpoints}${hint}`);
  }
  throw new Error(`policy weights: ${where} holds neither weights, a checkpoint, nor a run's checkpoints${hint}`);
}

export async function loadPolicyWeights(dir: string): Promise<SavedPolicy> {
  const where = await resolveWeightsDir(dir);
  const root = await openGroup(where, 'policy weights group');
  return readPolicyGroup(root, where);
}

/** Reads a weights group (format 1 or 2) opened at `where`. */
export async function readPolicyGroup(root: Group, where: string): Promise<SavedPolicy> {
  const attrs = root.attrs as Record<string, unknown>;
  if (attrs.format !== WEIGHTS_FORMAT) throw new Error(`${where} is not a papo-stream policy checkpoint (format ${JSON.stringify(attrs.format)})`);
  const version = attrs.format_version;
  if (version !== 1 && version !== 2) {
    throw new Error(`${where}: unsupported weights format version ${String(version)} (this papo-stream reads versions 1 and 2)`);
  }
  const config = policyConfig(attrs.policy_config as PolicyConfig);
  const checksums = (attrs.checksums ?? {}) as Record<string, number>;
  const params: Params = {};
  for (const s of paramSpecs(config)) {
    const data = await readArray<Float32Array>(root, s.name, where, { dtype: 'float32', shape: s.shape }).catch((err: Error) => {
      throw new Error(err.message.replace(`array '${s.name}'`, `parameter '${s.name}'`));
    });
    // Version 1 predates the crc32c codec: its checksums sit in the attributes.
    if (version === 1 && crc32(bytesOf(data)) !== checksums[s.name])
      throw new Error(`${where}: parameter '${s.name}' fails its checksum (corrupt or truncated file)`);
    params[s.name] = data;
  }
  validateParams(config, params, `weights at ${where}`);
  return { config, params, meta: (attrs.meta ?? {}) as Record<string, unknown>, dir: where };
}

/** CRC32C over every parameter's bytes in name order: identifies a set of weights (e.g. a run's reference). */
export function paramsFingerprint(params: Params): string {
  let crc = 0;
  for (const name of Object.keys(params).sort()) crc = crc32cOf(params[name], crc);
  return (crc >>> 0).toString(16).padStart(8, '0');
}
