/**
 * Saved weights -> one self-contained ONNX file (models/onnx/export-graph.ts, with the metadata of
 * models/export-metadata.ts) that onnxruntime in any language can run.
 *
 * The weights are read (and checksummed) in full before anything is written; the file is written to a
 * temporary sibling and published in one step, never over an existing file unless `force` is set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportMetadata } from '../models/export-metadata.ts';
import { exportCachedGraphBuilder, exportGraphBuilder } from '../models/onnx/export-graph.ts';
import { writeNewFileAtomic } from './atomic.ts';
import { loadPolicyWeights, type SavedPolicy } from './policy-weights.ts';

export interface ExportResult {
  /** the file written (absolute) */
  file: string;
  bytes: number;
  /** the weights directory read (for a run: its latest complete checkpoint's policy/) */
  weightsDir: string;
  meta: Record<string, unknown>;
}

/** The exported model's bytes for loaded weights. */
export function policyOnnxBytes(saved: SavedPolicy, opts: { kvCache?: boolean } = {}): Uint8Array {
  const source = { weights: saved.dir, step: saved.meta.step ?? null, kind: saved.meta.kind ?? null, task: saved.meta.task ?? null };
  const doc =
    'papo-stream policy: pixels (uint8 [batch, H, W, 3], RGB) + input_ids / attention_mask (int64 [batch, sequence], left-padded) -> logits [batch, sequence, vocab]. Tokenizer, image preprocessing and generation are described in metadata_props (papo.*, JSON).';
  const graph = opts.kvCache ? exportCachedGraphBuilder(saved.config, saved.params) : exportGraphBuilder(saved.config, saved.params);
  return graph.toBytes(opts.kvCache ? `${doc} Key/value-cache variant: see papo.io.` : doc, exportMetadata(saved.config, source, opts));
}

/**
 * Exports the weights at `weights` (a weights directory, a checkpoint, or a run directory) to `out`; with
 * `kvCache`, the key/value-cache variant. Refuses an existing `out` (and a missing parent directory)
 * before reading the weights, unless `force`.
 */
export async function exportPolicyOnnx(weights: string, out: string, opts: { force?: boolean; kvCache?: boolean } = {}): Promise<ExportResult> {
  const file = path.resolve(out);
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) throw new Error(`cannot write ${file}: directory ${dir} does not exist`);
  const existing = fs.lstatSync(file, { throwIfNoEntry: false });
  if (existing?.isDirectory()) throw new Error(`cannot write ${file}: it is a directory`);
  if (existing && !opts.force) throw new Error(`${file} already exists (nothing was changed); pass --force to replace it`);
  const saved = await loadPolicyWeights(weights);
  const bytes = policyOnnxBytes(saved, { kvCache: opts.kvCache });
  try {
    await writeNewFileAtomic(file, bytes, { overwrite: opts.force });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') throw new Error(`${file} was created by someone else meanwhile (nothing was changed); pass --force to replace it`);
    if (e.code === 'ENOSPC') throw new Error(`writing ${file}: disk full (ENOSPC); nothing was changed`);
    throw new Error(`writing ${file}: ${e.message}`);
  }
  return { file, bytes: bytes.length, weightsDir: saved.dir, meta: saved.meta };
}
