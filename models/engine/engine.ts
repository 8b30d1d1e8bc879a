/**
 * The policy engine: sampling and teacher-forced log-probs in onnxruntime-node, behind a promise API on
 * the main thread. The sessions live in a worker_thread, because onnxruntime-node computes synchronously on
 * the thread that calls `run()`: the main thread stays free for the tfjs update, and the two overlap.
 *
 * Weights: `setWeights` copies the parameters once into a fresh buffer and moves it to the worker (see
 * weights.ts for why copy-on-update and not a shared, overwritten buffer). Messages are ordered, so every
 * call made after `setWeights(params, v)` runs on version v (or a later one), and each result records the
 * version it used; a call already running keeps the weights it started with.
 *
 * Failures: an error inside the worker rejects that call's promise with the worker's message; a worker
 * that dies rejects every pending and later call (no hangs).
 */
import type { Worker } from 'node:worker_threads';
import { type PolicyConfig, type PolicyConfigInput, policyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.ts';
import { packWeights } from './weights.ts';
import { startTsWorker } from '../../util/ts-worker.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, WeightSlot } from './types.ts';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  what: string;
}

export class PolicyEngine {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  private latestVersion: number | undefined;

  private constructor(
    readonly config: PolicyConfig,
    private readonly worker: Worker,
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.fail(new Error(`policy engine worker crashed: ${err.message}`)));
    worker.on('exit', (code) => this.fail(new Error(this.closed ? 'policy engine is closed' : `policy engine worker exited unexpectedly (code ${code})`)));
  }

  /** Starts the worker and compiles the graphs; resolves when the engine can take calls. */
  static async create(config: PolicyConfigInput, options: EngineOptions = {}): Promise<PolicyEngine> {
    const cfg = policyConfig(config);
    const init: WorkerInit = { config: cfg, options };
    const worker = startTsWorker(new URL('./worker.ts', import.meta.url), init);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'ready') done(undefined);
        else if (m.type === 'fatal') done(new Error(m.message));
      };
      const onError = (err: Error) => done(new Error(`policy engine worker failed to start: ${err.message}`));
      const onExit = (code: number) => done(new Error(`policy engine worker exited during start-up (code ${code})`));
      const done = (err: Error | undefined) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        if (err) {
          void worker.terminate();
          reject(err);
        } else resolve();
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
    return new PolicyEngine(cfg, worker);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'ready') return;
    if (m.type === 'fatal') {
      this.fail(new Error(m.message));
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(new Error(m.message));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(new Error(`${p.what}: ${err.message}`));
    this.pending.clear();
  }

  private call<R>(what: string, msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.failure) return Promise.reject(new Error(`${what}: ${this.failure.message}`));
    return new Promise<R>((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (v: unknown) => void, reject, what });
      try {
        this.worker.postMessage(msg, transfer);
      } catch (err) {
        this.pending.delete(msg.id);
        reject(new Error(`${what}: ${(err as Error).message}`));
      }
    });
  }

  /**
   * Installs new weights (validated, copied once) as `version`. Resolves when the worker holds them;
   * calls made after this one use them even without awaiting.
   */
  setWeights(params: Params, version: number): Promise<void> {
    return this.install(params, version, 'policy');
  }

  /**
   * Installs the frozen reference policy (for the reference KL), held beside the current weights;
   * `logProbs({ ..., weights: 'reference' })` uses it.
   */
  setReferenceWeights(params: Params, version = 0): Promise<void> {
    return this.install(params, version, 'reference');
  }

  private install(params: Params, version: number, slot: WeightSlot): Promise<void> {
    let snap: ReturnType<typeof packWeights>;
    try {
      snap = packWeights(this.config, params, version);
    } catch (err) {
      return Promise.reject(err);
    }
    if (slot === 'policy') this.latestVersion = version;
    return this.call<number>(`set${slot === 'policy' ? '' : 'Reference'}Weights`, { type: 'weights', id: this.nextId++, version, buffer: snap.buffer, slot }, [
      snap.buffer,
    ]).then(() => undefined);
  }

  /** The version of the latest `setWeights` call (undefined before the first). */
  get version(): number | undefined {
    return this.latestVersion;
  }

  /** Samples `n` responses per prompt (see SampleRequest / SampledResponse). */
  sample(request: SampleRequest): Promise<SampleResult> {
    return this.call('sample', { type: 'sample', id: this.nextId++, request });
  }

  /** Teacher-forced per-token log-probs (and entropy if asked) of given responses. */
  logProbs(request: LogProbRequest): Promise<LogProbResult> {
    return this.call('logProbs', { type: 'logprobs', id: this.nextId++, request });
  }

  /** Releases the sessions and stops the worker. Pending calls finish first (messages are ordered). */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure) {
      this.closed = true;
      await this.worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    try {
      await this.call('close', { type: 'close', id: this.nextId++ });
    } finally {
      this.closed = true;
    }
    await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    await this.worker.terminate();
  }
}
