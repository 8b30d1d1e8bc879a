/**
 * Policy weights as a Zarr v3 group (zarrita): one float32 array per parameter, named as in
 * `models/params.ts`, and the policy config in the group attributes, so both the tfjs trainer and the
 * onnxruntime engine can start from a saved policy.
 *
 * Layout of `<dir>/`:
 *   zarr.json                 group; attributes { format, format_version, policy_config, checksums, meta }
 *   <param name>/zarr.json    float32 array of the parameter's shape, one chunk, little-endian, uncompressed
 *   <param name>/c/...        the chunk
 * `checksums` holds the CRC-32 of every parameter's bytes: zarrita verifies nothing on read, and a
 * truncated or flipped chunk must be a clear error rather than silently different weights.
 *
 * Writes are atomic at the directory level: the group is written to a sibling temporary directory and
 * renamed into place, so an interrupted save leaves the previous checkpoint intact.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { policyConfig, type PolicyConfig } from '../models/config.ts';
import { paramSpecs, validateParams, type Params } from '../models/params.ts';

export const WEIGHTS_FORMAT = 'papo-stream/policy-weights';
export const WEIGHTS_FORMAT_VERSION = 1;

export interface SavedPolicy {
  config: PolicyConfig;
  params: Params;
  /** Free-form JSON saved alongside (training step, policy version, data seed...). */
  meta: Record<string, unknown>;
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export async function savePolicyWeights(dir: string, saved: { config: PolicyConfig; params: Params; meta?: Record<string, unknown> }): Promise<void> {
  const { config, params } = saved;
  validateParams(config, params, `saving weights to ${dir}`);
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    const root = zarr.root(new FileSystemStore(tmp));
    const specs = paramSpecs(config);
    const checksums: Record<string, number> = {};
    for (const s of specs) checksums[s.name] = crc32(bytesOf(params[s.name]));
    await zarr.create(root, {
      attributes: {
        format: WEIGHTS_FORMAT,
        format_version: WEIGHTS_FORMAT_VERSION,
        policy_config: config,
        checksums,
        meta: saved.meta ?? {},
      },
    });
    for (const s of specs) {
      const arr = await zarr.create(root.resolve(s.name), {
        shape: s.shape,
        chunkShape: s.shape,
        dtype: 'float32',
        codecs: [{ name: 'bytes', configuration: { endian: 'little' } }],
      });
      await zarr.set(arr, null, { data: params[s.name], shape: s.shape, stride: strides(s.shape) });
    }
    await replaceDir(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

export async function loadPolicyWeights(dir: string): Promise<SavedPolicy> {
  const where = path.resolve(dir);
  let attrs: Record<string, unknown>;
  const root = zarr.root(new FileSystemStore(where));
  try {
    attrs = (await zarr.open(root, { kind: 'group' })).attrs as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot read policy weights at ${where}: not a Zarr group (${(err as Error).message})`);
  }
  if (attrs.format !== WEIGHTS_FORMAT) throw new Error(`${where} is not a papo-stream policy checkpoint (format ${JSON.stringify(attrs.format)})`);
  if (attrs.format_version !== WEIGHTS_FORMAT_VERSION) throw new Error(`${where}: unsupported weights format version ${String(attrs.format_version)}`);
  const config = policyConfig(attrs.policy_config as PolicyConfig);
  const checksums = (attrs.checksums ?? {}) as Record<string, number>;
  const params: Params = {};
  for (const s of paramSpecs(config)) {
    let data: Float32Array;
    try {
      const arr = await zarr.open(root.resolve(s.name), { kind: 'array' });
      if (arr.dtype !== 'float32' || arr.shape.join() !== s.shape.join()) {
        throw new Error(`stored as ${arr.dtype} [${arr.shape}], expected float32 [${s.shape}]`);
      }
      data = (await zarr.get(arr)).data as Float32Array;
    } catch (err) {
      throw new Error(`${where}: parameter '${s.name}' is unreadable: ${(err as Error).message}`);
    }
    if (crc32(bytesOf(data)) !== checksums[s.name]) throw new Error(`${where}: parameter '${s.name}' fails its checksum (corrupt or truncated file)`);
    params[s.name] = data;
  }
  validateParams(config, params, `weights at ${where}`);
  return { config, params, meta: (attrs.meta ?? {}) as Record<string, unknown> };
}

function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc *= shape[i];
  }
  return out;
}

/** Moves `from` to `to`, replacing any existing `to` without a window in which neither exists intact. */
async function replaceDir(from: string, to: string): Promise<void> {
  const old = `${to}.old-${process.pid}-${Date.now()}`;
  let hadOld = false;
  try {
    await fs.rename(to, old);
    hadOld = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await fs.rename(from, to);
  } catch (err) {
    if (hadOld) await fs.rename(old, to);
    throw err;
  }
  if (hadOld) await fs.rm(old, { recursive: true, force: true });
}
