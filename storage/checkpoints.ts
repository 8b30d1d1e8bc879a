/**
 * Training checkpoints of a run: everything a run needs to continue exactly where it was.
 *
 * Layout of `<run>/checkpoints/`:
 *   latest                    the name of the newest complete checkpoint (replaced by rename, last act of a save)
 *   step_000120/              one Zarr v3 group per checkpoint; attributes { format, format_version, kind, step, state }
 *     policy/                 the policy weights (storage/policy-weights.ts format), loadable by `papo eval`
 *     optimizer/              AdamW: attributes { step }; m/<param>, v/<param> float32 arrays
 *     samplers/v<version>/    weights of older policy versions that steps in flight still sample with
 *     reference/              the frozen reference policy (when the run uses one)
 *     COMPLETE                written last, before the directory is published
 * `state` is JSON: data cursor, policy versions, run config and its hash, metrics; see pipelines/train.ts.
 *
 * A save writes `checkpoints/step_000120.tmp-<pid>-<random>/`, fsyncs it, publishes it under a name nobody
 * holds (`step_000120`, or `step_000120-2` if a concurrent writer took it), then replaces `latest`. A kill at
 * any instant leaves the previous checkpoint and `latest` intact; leftovers are removed by `sweep()`.
 * Which checkpoints are complete and which is the latest is decided in checkpoint-dirs.ts, which
 * `loadPolicyWeights` also uses for a run directory.
 */
import * as fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { policyConfig, type PolicyConfig } from '../models/config.ts';
import { paramSpecs, type Params } from '../models/params.ts';
import type { AdamWState } from '../models/optimizer.ts';
import { exists, fsyncTree, isTmpName, publishDir, readdirOrEmpty, tmpSibling, treeBytes, writeFileAtomic } from './atomic.ts';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_NAME,
  COMPLETE,
  LATEST,
  checkCompleteCheckpoint,
  completeCheckpoints,
  latestCompleteCheckpoint,
} from './checkpoint-dirs.ts';
import { createChildGroup, createGroup, openChildGroup, openGroup, readArray, writeArray } from './zarr-arrays.ts';
import { readPolicyGroup, writePolicyGroup } from './policy-weights.ts';
import { stepDirName } from './step-dirs.ts';

export { CHECKPOINT_FORMAT };
export const CHECKPOINT_FORMAT_VERSION = 1;

export interface Checkpoint {
  kind: 'train' | 'sft';
  /** steps completed */
  step: number;
  policy: { config: PolicyConfig; params: Params };
  optimizer: AdamWState;
  /** weights of older policy versions still needed to sample the steps in flight */
  samplers: { version: number; params: Params }[];
  reference?: Params;
  /** JSON state: data cursor, versions, config, metrics... */
  state: Record<string, unknown>;
}

export interface SavedCheckpoint {
  name: string;
  dir: string;
  bytes: number;
  seconds: number;
}

export class CheckpointStore {
  readonly dir: string;

  constructor(runDir: string) {
    this.dir = path.resolve(runDir, 'checkpoints');
  }

  /** Writes a checkpoint and makes it the latest; the previous one stays intact until then. */
  async save(ckpt: Checkpoint): Promise<SavedCheckpoint> {
    const t0 = performance.now();
    await fs.mkdir(this.dir, { recursive: true });
    const base = stepDirName(ckpt.step);
    const tmp = tmpSibling(path.join(this.dir, base));
    try {
      await writeCheckpoint(tmp, ckpt);
      const bytes = await treeBytes(tmp);
      await fs.writeFile(path.join(tmp, COMPLETE), `${JSON.stringify({ step: ckpt.step, bytes })}\n`);
      await fsyncTree(tmp);
      const name = await publishDir(tmp, this.dir, base);
      await writeFileAtomic(path.join(this.dir, LATEST), `${name}\n`);
      return { name, dir: path.join(this.dir, name), bytes, seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOSPC' ? 'disk full (ENOSPC)' : e.message;
      throw new Error(`checkpoint of step ${ckpt.step} to ${this.dir} failed: ${why}; the previous checkpoint is intact`, { cause: err });
    }
  }

  /** Complete checkpoints, oldest first. */
  list(): Promise<{ name: string; step: number }[]> {
    return completeCheckpoints(this.dir);
  }

  /** The newest complete checkpoint: the one `latest` names, else the highest step found. */
  latest(): Promise<string | undefined> {
    return latestCompleteCheckpoint(this.dir);
  }

  /** The newest complete checkpoint at or before `step`. */
  async atOrBefore(step: number): Promise<string | undefined> {
    return (await this.list()).filter((c) => c.step <= step).at(-1)?.name;
  }

  async load(name: string): Promise<Checkpoint> {
    const dir = path.join(this.dir, name);
    await checkCompleteCheckpoint(dir);
    const ckpt = await readCheckpoint(dir);
    // A checkpoint's step is said three times (its directory's name, its attributes, its COMPLETE marker):
    // a hand-edited or misplaced one that disagrees would resume the run at the wrong step.
    const named = CHECKPOINT_NAME.exec(name);
    if (!(Number.isSafeInteger(ckpt.step) && ckpt.step >= 0)) throw new Error(`${dir}: its step ${JSON.stringify(ckpt.step)} is not a non-negative integer`);
    if (named && Number(named[1]) !== ckpt.step)
      throw new Error(
        `${dir}: the checkpoint says step ${ckpt.step} but its directory is of step ${Number(named[1])} (edited or moved by hand?); refusing to resume from it`,
      );
    return ckpt;
  }

  /** A checkpoint's JSON state, read from its attributes alone (no arrays); undefined if unreadable. */
  stateOf(name: string): Record<string, unknown> | undefined {
    try {
      const state = JSON.parse(readFileSync(path.join(this.dir, name, 'zarr.json'), 'utf8')).attributes?.state;
      return state && typeof state === 'object' ? state : undefined;
    } catch {
      return undefined;
    }
  }

  /** The value of `metric` in a checkpoint's saved step metrics (best-checkpoint retention). */
  metricOf(name: string, metric: string): number | undefined {
    const v = (this.stateOf(name)?.metrics as Record<string, unknown> | undefined)?.[metric];
    return typeof v === 'number' ? v : undefined;
  }

  /** Removes temporaries of interrupted saves (only names this module makes). Returns what it removed. */
  async sweep(): Promise<string[]> {
    const removed: string[] = [];
    const names = await readdirOrEmpty(this.dir);
    for (const name of names) {
      if (isTmpName(name) && (CHECKPOINT_NAME.test(name.slice(0, name.indexOf('.tmp-'))) || name.startsWith(LATEST))) {
        await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  /**
   * Keeps the newest `keepLast` checkpoints (0 = all) plus the one with the best `metric`, and the one
   * `latest` names; removes the other complete checkpoints of this run. Returns the removed names.
   */
  async retain(opts: { keepLast: number; best?: { name: string; higherIsBetter: boolean; value: (name: string) => number | undefined } }): Promise<string[]> {
    if (!(opts.keepLast > 0)) return [];
    const all = await this.list();
    const keep = new Set(all.slice(-opts.keepLast).map((c) => c.name));
    const latest = await this.latest();
    if (latest) keep.add(latest);
    if (opts.best) {
      let bestName: string | undefined;
      let bestValue = opts.best.higherIsBetter ? -Infinity : Infinity;
      for (const c of all) {
        const v = opts.best.value(c.name);
        if (v === undefined || !Number.isFinite(v)) continue;
        if (opts.best.higherIsBetter ? v > bestValue : v < bestValue) {
          bestValue = v;
          bestName = c.name;
        }
      }
      if (bestName) keep.add(bestName);
    }
    const removed: string[] = [];
    for (const c of all) {
      if (keep.has(c.name)) continue;
      // Unpublish first (a rename), so a kill mid-removal never leaves a half-deleted "complete" checkpoint.
      const doomed = tmpSibling(path.join(this.dir, c.name));
      await fs.rename(path.join(this.dir, c.name), doomed);
      await fs.rm(doomed, { recursive: true, force: true });
      removed.push(c.name);
    }
    return removed;
  }
}

async function writeCheckpoint(dir: string, c: Checkpoint): Promise<void> {
  const root = await createGroup(dir, { format: CHECKPOINT_FORMAT, format_version: CHECKPOINT_FORMAT_VERSION, kind: c.kind, step: c.step, state: c.state });
  const config = c.policy.config;
  await writePolicyGroup(path.join(dir, 'policy'), { config, params: c.policy.params, meta: { kind: c.kind, step: c.step } });
  const opt = await createChildGroup(root, 'optimizer', { step: c.optimizer.step });
  const m = await createChildGroup(opt, 'm');
  const v = await createChildGroup(opt, 'v');
  for (const s of paramSpecs(config)) {
    await writeArray(m, s.name, c.optimizer.m[s.name], s.shape);
    await writeArray(v, s.name, c.optimizer.v[s.name], s.shape);
  }
  await createChildGroup(root, 'samplers', { versions: c.samplers.map((s) => s.version) });
  for (const s of c.samplers) await writePolicyGroup(path.join(dir, 'samplers', `v${s.version}`), { config, params: s.params, meta: { version: s.version } });
  if (c.reference) await writePolicyGroup(path.join(dir, 'reference'), { config, params: c.reference, meta: { reference: true } });
}

async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const root = await openGroup(dir, 'checkpoint');
  const attrs = root.attrs as Record<string, unknown>;
  if (attrs.format !== CHECKPOINT_FORMAT) throw new Error(`${dir} is not a papo-stream checkpoint (format ${JSON.stringify(attrs.format)})`);
  if (attrs.format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(
      `${dir}: unsupported checkpoint format version ${String(attrs.format_version)} (this papo-stream reads version ${CHECKPOINT_FORMAT_VERSION})`,
    );
  }
  const policy = await readPolicyGroup(await openGroup(path.join(dir, 'policy'), 'policy weights group'), path.join(dir, 'policy'));
  const config = policyConfig(policy.config);
  const opt = await openChildGroup(root, 'optimizer', dir);
  const optStep = (opt.attrs as { step?: unknown }).step;
  if (!(Number.isInteger(optStep) && (optStep as number) >= 0)) throw new Error(`${dir}: optimizer step ${String(optStep)} is not a non-negative integer`);
  const optimizer: AdamWState = { step: optStep as number, m: {}, v: {} };
  for (const which of ['m', 'v'] as const) {
    const g = await openChildGroup(opt, which, `${dir}/optimizer`);
    for (const s of paramSpecs(config))
      optimizer[which][s.name] = await readArray<Float32Array>(g, s.name, `${dir}/optimizer/${which}`, { dtype: 'float32', shape: s.shape });
  }
  const samplersGroup = await openChildGroup(root, 'samplers', dir);
  const versions = ((samplersGroup.attrs as { versions?: unknown }).versions ?? []) as number[];
  const samplers: Checkpoint['samplers'] = [];
  for (const version of versions) {
    const where = path.join(dir, 'samplers', `v${version}`);
    samplers.push({ version, params: (await readPolicyGroup(await openGroup(where, 'sampler weights'), where)).params });
  }
  let reference: Params | undefined;
  const refDir = path.join(dir, 'reference');
  if (await exists(refDir)) reference = (await readPolicyGroup(await openGroup(refDir, 'reference weights'), refDir)).params;
  const kind = attrs.kind === 'sft' ? 'sft' : 'train';
  return {
    kind,
    step: attrs.step as number,
    policy: { config, params: policy.params },
    optimizer,
    samplers,
    reference,
    state: (attrs.state ?? {}) as Record<string, unknown>,
  };
}
