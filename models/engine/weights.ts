/**
 * Weight snapshots for the engine: every parameter of a config packed into one ArrayBuffer, in
 * `paramSpecs` order, tagged with the policy version.
 *
 * Why a fresh buffer per version (copy-on-update) rather than a shared, overwritten one: onnxruntime-node
 * rejects tensors whose data lives in a SharedArrayBuffer ("Invalid argument", measured with 1.30), so a
 * SharedArrayBuffer would need a second copy inside the worker anyway. Instead the trainer's weights are
 * copied once into a new ArrayBuffer that is *transferred* (moved, not copied) to the worker, where it is
 * immutable: a call captures the snapshot current when it starts and keeps it to the end, so an update
 * arriving mid-call can never produce torn weights. Cost: one copy per update (~2 MB for the default
 * config), none per call; a snapshot is freed when no call holds it.
 */
import type { PolicyConfig } from '../config.ts';
import { type Params, paramSpecs, sizeOf, validateParams } from '../params.ts';

export interface WeightSnapshot {
  version: number;
  /** all parameters, float32, concatenated in paramSpecs order */
  buffer: ArrayBuffer;
}

export function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`weights version must be a non-negative integer, got ${version}`);
}

/** Copies `params` (validated against the config) into one new buffer. */
export function packWeights(cfg: PolicyConfig, params: Params, version: number): WeightSnapshot {
  checkVersion(version);
  validateParams(cfg, params, `weights v${version}`);
  const specs = paramSpecs(cfg);
  const total = specs.reduce((n, s) => n + sizeOf(s.shape), 0);
  const flat = new Float32Array(total);
  let o = 0;
  for (const s of specs) {
    flat.set(params[s.name], o);
    o += sizeOf(s.shape);
  }
  return { version, buffer: flat.buffer };
}

/** Views (no copy) of each parameter inside a packed buffer. */
export function unpackWeights(cfg: PolicyConfig, buffer: ArrayBuffer): { name: string; shape: number[]; data: Float32Array }[] {
  const specs = paramSpecs(cfg);
  const total = specs.reduce((n, s) => n + sizeOf(s.shape), 0);
  if (buffer.byteLength !== total * 4) throw new Error(`weights buffer has ${buffer.byteLength} bytes, the config needs ${total * 4}`);
  let o = 0;
  return specs.map((s) => {
    const n = sizeOf(s.shape);
    const data = new Float32Array(buffer, o * 4, n);
    o += n;
    return { name: s.name, shape: s.shape, data };
  });
}
