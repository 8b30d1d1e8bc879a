/**
 * The policy engine: sampling and teacher-forced log-probs in onnxruntime-node, behind a promise API on
 * the main thread. The sessions live in a worker_thread, because onnxruntime-node computes synchronously on
 * the thread that calls `run()`: the main thread stays free for the update (and the rest of the graph), and the two overlap.
 *
 * Weights: `setWeights` copies the parameters once into a fresh buffer and moves it to the worker (see
 * weights.ts for why copy-on-update and not a shared, overwritten buffer). Messages are ordered, so every
 * call made after `setWeights(params, v)` runs on version v (or a later one), and each result records the
 * version it used; a call already running keeps the weights it started with.
 *
 * Failures (util/worker-client.ts): an error inside the worker rejects that call's promise with the
 * worker's message, which names the call (`sample: ...`); a worker that dies rejects every pending and
 * later call (no hangs).
 */
import { WorkerClient } from '../../util/worker-client.ts';
import { type PolicyConfig, type PolicyConfigInput, policyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import type { EngineCalls, WorkerInit } from './protocol.ts';
import { packWeights, unpackWeights } from './weights.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, WeightSlot } from './types.ts';

export class PolicyEngine {
  private latestVersion: number | undefined;

  private constructor(
    readonly config: PolicyConfig,
    private readonly client: WorkerClient<EngineCalls>,
  ) {}

  /** Starts the worker and compiles the graphs; resolves when the engine can take calls. */
  static async create(config: PolicyConfigInput, options: EngineOptions = {}): Promise<PolicyEngine> {
    const cfg = policyConfig(config);
    const workerData: WorkerInit = { config: cfg, options };
    const client = await WorkerClient.start<EngineCalls>(new URL('./worker.ts', import.meta.url), { name: 'policy engine', workerData });
    return new PolicyEngine(cfg, client);
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
    const what = slot === 'policy' ? 'setWeights' : 'setReferenceWeights';
    return this.client.call('setWeights', { version, buffer: snap.buffer, slot }, { what, transfer: [snap.buffer] }).then(() => undefined);
  }

  /**
   * A copy of the weights of a version the engine still holds (the latest `retainVersions`): the run's
   * one copy of each version outside the trainer is the engine's, and a checkpoint reads it from here.
   */
  async getWeights(version: number): Promise<Params> {
    const flat = await this.client.call('getWeights', version, { what: `getWeights(${version})` });
    const params: Params = {};
    for (const p of unpackWeights(this.config, flat.buffer as ArrayBuffer)) params[p.name] = p.data;
    return params;
  }

  /** The version of the latest `setWeights` call (undefined before the first). */
  get version(): number | undefined {
    return this.latestVersion;
  }

  /** Samples `n` responses per prompt (see SampleRequest / SampledResponse). */
  sample(request: SampleRequest): Promise<SampleResult> {
    return this.client.call('sample', request);
  }

  /** Teacher-forced per-token log-probs (and entropy if asked) of given responses. */
  logProbs(request: LogProbRequest): Promise<LogProbResult> {
    return this.client.call('logProbs', request);
  }

  /**
   * Several log-prob requests in one call to the worker (e.g. a step's masked view under its sampling
   * version and its reference log-probs): each result equals `logProbs` of its request, bit for bit.
   */
  logProbViews(requests: readonly LogProbRequest[]): Promise<LogProbResult[]> {
    return this.client.call('logProbViews', [...requests], { what: 'logProbViews' });
  }

  /** Releases the sessions and stops the worker. Calls already made finish first; later calls reject. */
  close(): Promise<void> {
    return this.client.close();
  }
}
