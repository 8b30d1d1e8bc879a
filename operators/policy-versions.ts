/**
 * `PolicyVersions`: the one owner of the policy's versions in a run.
 *
 * - **Which version samples step k**: the one after step k - S - 1 (S = `maxStaleness`), whatever the timing
 *   of the updates, so a run, its resumption and a distributed run sample the same responses. The credit gate
 *   admits step k only once step k - S - 1 is trained, so the answer is always known when it is asked.
 * - **The weights still needed**: of the current version, and (S > 0) of the versions the next S steps sample
 *   with, fetched from the trainer once per version (`publish`). Kept here, or (`heldBy`) only by the
 *   subscriber that holds them anyway (the engine) and read back from it when a checkpoint or a late
 *   subscriber needs them: then a run keeps one copy of each version outside the trainer.
 * - **Publication**: every new version goes to each subscriber (the engine, a remote engine over a broker),
 *   awaited before the next step can touch the weights; a late subscriber first receives the versions still
 *   needed, oldest first.
 * - **What a checkpoint records of them** (`checkpoint(step)`), and the state a resume starts from
 *   (`PolicyVersions.restore`).
 *
 * @example
 * const versions = PolicyVersions.restore({ maxStaleness: 1, start: params });
 * await versions.subscribe((version, weights) => engine.setWeights(weights, version));
 * prompts$.pipe(sampleGroups(engine, { ..., versionOf: versions.versionOf }), ..., papoUpdate({ ..., versions }));
 */
import type { Params } from '../models/params.ts';

/** Receives each new version's weights; awaited before the update that made them completes. */
export type VersionListener = (version: number, params: Params) => void | Promise<void>;

/** Gives back the weights of a version it holds (the engine's `getWeights`). */
export type WeightSource = (version: number) => Promise<Params>;

/** What a checkpoint holds of the versions (storage/checkpoints.ts writes `params` and `samplers`). */
export interface VersionsCheckpoint {
  /** the version of `params`: the policy after the checkpoint's step */
  version: number;
  /** the current weights */
  params: Params;
  /** [step, version after it] for the steps whose versions later steps still sample with */
  versions: [number, number][];
  /** weights of older versions the next steps sample with */
  samplers: { version: number; params: Params }[];
}

export interface RestoreOptions {
  /** policy versions a batch may lag when it is trained (`trainer.max_staleness`) */
  maxStaleness: number;
  /** the starting weights (version 0) */
  start: Params;
  /** a checkpoint to continue from */
  from?: { version: number; params: Params; versions: [number, number][]; samplers: { version: number; params: Params }[] };
}

export class PolicyVersions {
  /** the version the trainer's weights are at */
  private currentVersion: number;
  /** [step -> version after it] for the last S + 1 trained steps */
  private readonly after: Map<number, number>;
  /**
   * The versions still needed (the current one and, with S > 0, those the next S steps sample with) and
   * their weights, or null where only `source` holds them.
   */
  private readonly weights = new Map<number, Params | null>();
  private readonly listeners: VersionListener[] = [];
  private source: WeightSource | undefined;

  private constructor(
    readonly maxStaleness: number,
    version: number,
    after: [number, number][],
  ) {
    if (!(Number.isInteger(maxStaleness) && maxStaleness >= 0))
      throw new Error(`PolicyVersions: maxStaleness must be a non-negative integer, got ${maxStaleness}`);
    this.currentVersion = version;
    this.after = new Map(after);
  }

  /** A run's versions at its start, or at the checkpoint it continues from. */
  static restore(opts: RestoreOptions): PolicyVersions {
    const from = opts.from;
    const v = new PolicyVersions(opts.maxStaleness, from?.version ?? 0, from?.versions ?? []);
    if (opts.maxStaleness > 0 && !from) v.weights.set(0, opts.start);
    for (const s of from?.samplers ?? []) v.weights.set(s.version, s.params);
    v.weights.set(v.currentVersion, from ? from.params : opts.start);
    return v;
  }

  /** The version the trainer's weights are at (the latest published). */
  get current(): number {
    return this.currentVersion;
  }

  /**
   * Versions without their weights (a graph that only publishes, such as `papoUpdate` given an engine):
   * the weights are known from the first `publish` on.
   */
  static untracked(opts: { maxStaleness: number; version?: number }): PolicyVersions {
    return new PolicyVersions(opts.maxStaleness, opts.version ?? 0, []);
  }

  /**
   * From now on the weights of every version still needed are held by `source` (a subscriber that keeps
   * them anyway, such as the engine with `retainVersions` >= S + 2): this object drops its own copies and
   * reads them back from `source` for a checkpoint or a late subscriber.
   */
  heldBy(source: WeightSource): void {
    this.source = source;
    for (const v of this.weights.keys()) this.weights.set(v, null);
  }

  /** The versions whose weights this object keeps itself (none once `heldBy`). */
  get kept(): number[] {
    return [...this.weights].filter(([, p]) => p !== null).map(([v]) => v);
  }

  /** The weights of a version still needed: kept here, or read back from the source that holds them. */
  async params(version = this.currentVersion): Promise<Params> {
    const p = this.weights.get(version);
    if (p) return p;
    if (p === null && this.source) return this.source(version);
    throw new Error(
      version === this.currentVersion
        ? `PolicyVersions: the weights of version ${version} are not known (restore the versions with their weights)`
        : `PolicyVersions: the weights of version ${version} were not kept (still needed: ${[...this.weights.keys()].join(', ') || 'none'})`,
    );
  }

  /** The version step `step` samples with (see the header). Bound: pass it as `versionOf`. */
  readonly versionOf = (batch: { step: number }): number => {
    const k = batch.step - this.maxStaleness - 1;
    if (k < 1) return 0;
    const v = this.after.get(k);
    if (v === undefined) throw new Error(`PolicyVersions: step ${batch.step} samples with the version after step ${k}, which is not trained yet`);
    return v;
  };

  /**
   * Adds a subscriber. With `replay` (the default) it first receives the versions still needed, oldest
   * first, then the current one, and this resolves once it holds them.
   */
  async subscribe(listener: VersionListener, opts: { replay?: boolean } = {}): Promise<() => void> {
    this.listeners.push(listener);
    if (opts.replay ?? true) {
      for (const v of [...this.weights.keys()].sort((a, b) => a - b)) if (v !== this.currentVersion) await listener(v, await this.params(v));
      if (this.weights.has(this.currentVersion)) await listener(this.currentVersion, await this.params());
    }
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The trainer's new weights become version current + 1, published to every subscriber. */
  async publish(params: Params): Promise<number> {
    const version = this.currentVersion + 1;
    this.currentVersion = version;
    this.weights.set(version, this.source ? null : params);
    for (const l of this.listeners) await l(version, params);
    return version;
  }

  /**
   * Step `step` is trained (its update published, or skipped): the current version is the one after it.
   * Forgets what no later step samples with.
   */
  applied(step: number): void {
    const S = this.maxStaleness;
    this.after.set(step, this.currentVersion);
    for (const k of this.after.keys()) if (k < step - S) this.after.delete(k);
    const live = new Set([...this.after.values(), this.currentVersion]);
    if (S > 0 && step <= S) live.add(0);
    for (const v of this.weights.keys()) if (!live.has(v)) this.weights.delete(v);
  }

  /** What a checkpoint after `step` (the last trained step) records: the current weights and those still needed. */
  async checkpoint(step: number): Promise<VersionsCheckpoint> {
    const S = this.maxStaleness;
    const needed = new Set<number>();
    for (let k = step - S; k < step; k++) needed.add(k < 1 ? 0 : this.after.get(k)!);
    needed.delete(this.currentVersion);
    const samplers: VersionsCheckpoint['samplers'] = [];
    for (const v of needed) {
      if (!this.weights.has(v)) throw new Error(`PolicyVersions: the weights of version ${v} were not kept for the checkpoint of step ${step}`);
      samplers.push({ version: v, params: await this.params(v) });
    }
    return {
      version: this.currentVersion,
      params: await this.params(),
      versions: [...this.after.entries()].filter(([k]) => k > step - S - 1 && k <= step),
      samplers,
    };
  }
}
