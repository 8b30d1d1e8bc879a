/**
 * The policy engine: sampling and teacher-forced log-probs in onnxruntime-node, behind a promise API on
 * the main thread. The sessions live in a worker_thread, because onnxruntime-node computes synchronously on
 * the thread that calls `run()`: the main thread stays free for the update (and the rest of the graph), and the two overlap.
 * With `workers` > 1, each worker thread has its own sessions and weights and takes a contiguous part of every
 * call (parts.ts): on small shapes two 1-thread workers keep two cores busier than one 2-thread session,
 * whose threads wait on each other at every node.
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
import { evenParts, LOGPROB_BATCH_ROWS, type Part, runParts } from './parts.ts';
import { packWeights, unpackWeights } from './weights.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, WeightSlot } from './types.ts';

export class PolicyEngine {
  private latestVersion: number | undefined;

  private constructor(
    readonly config: PolicyConfig,
    /** one per worker (EngineOptions.workers), each with its own sessions and weight snapshots */
    private readonly clients: WorkerClient<EngineCalls>[],
    /** rows per teacher-forced run (EngineOptions.logprobBatchRows) */
    private readonly runRows: number,
  ) {}

  /** Starts the worker(s) and compiles the graphs; resolves when the engine can take calls. */
  static async create(config: PolicyConfigInput, options: EngineOptions = {}): Promise<PolicyEngine> {
    const cfg = policyConfig(config);
    const workers = options.workers ?? 1;
    if (!(Number.isInteger(workers) && workers >= 1)) throw new Error(`engine: workers must be a positive integer, got ${workers}`);
    const workerData: WorkerInit = { config: cfg, options };
    const started = await Promise.allSettled(
      Array.from({ length: workers }, (_, i) =>
        WorkerClient.start<EngineCalls>(new URL('./worker.ts', import.meta.url), {
          name: workers > 1 ? `policy engine ${i + 1}` : 'policy engine',
          workerData,
        }),
      ),
    );
    const clients = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.allSettled(clients.map((c) => c.close()));
      throw failed.reason;
    }
    return new PolicyEngine(cfg, clients, options.logprobBatchRows ?? LOGPROB_BATCH_ROWS);
  }

  /** Worker threads sharing each call (EngineOptions.workers). */
  get workers(): number {
    return this.clients.length;
  }

  /**
   * Installs new weights (validated, copied once per worker) as `version`. Resolves when the workers hold
   * them; calls made after this one use them even without awaiting.
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
    // Every worker but the first takes a copy; the first takes the packed buffer itself.
    const buffers = this.clients.map((_, i) => (i === 0 ? snap.buffer : snap.buffer.slice(0)));
    return Promise.all(this.clients.map((c, i) => c.call('setWeights', { version, buffer: buffers[i], slot }, { what, transfer: [buffers[i]] }))).then(
      () => undefined,
    );
  }

  /**
   * A copy of the weights of a version the engine still holds (the latest `retainVersions`): the run's
   * copies of each version outside the trainer are the engine's, and a checkpoint reads them from here.
   */
  async getWeights(version: number): Promise<Params> {
    const flat = await this.clients[0].call('getWeights', version, { what: `getWeights(${version})` });
    const params: Params = {};
    for (const p of unpackWeights(this.config, flat.buffer as ArrayBuffer)) params[p.name] = p.data;
    return params;
  }

  /** The version of the latest `setWeights` call (undefined before the first). */
  get version(): number | undefined {
    return this.latestVersion;
  }

  /**
   * Samples `n` responses per prompt (see SampleRequest / SampledResponse); the workers take a part of the
   * prompts each. A response draws the random numbers of its place in the whole request, so the same request
   * gives the same responses; their values may differ in the last bits from another worker count's (a
   * decoding step's batch differs).
   */
  async sample(request: SampleRequest): Promise<SampleResult> {
    const parts = evenParts(request.prompts?.length ?? 0, this.clients.length);
    if (parts.length === 1 || !Array.isArray(request.prompts) || !Array.isArray(request.images) || request.images.length !== request.prompts.length)
      return this.clients[0].call('sample', { request, first: 0 }, { what: 'sample' });
    const offset = request.promptOffset ?? 0;
    const results = await Promise.all(
      parts.map((p, i) =>
        this.clients[i].call(
          'sample',
          {
            request: {
              ...request,
              images: request.images.slice(p.start, p.end),
              prompts: request.prompts.slice(p.start, p.end),
              promptOffset: offset + p.start,
            },
            first: p.start,
          },
          { what: 'sample' },
        ),
      ),
    );
    const version = sameVersion('sample', results);
    const responses = results.flatMap((r, i) => r.responses.map((x) => ({ ...x, promptIndex: x.promptIndex + parts[i].start })));
    return { responses, version, tokens: sum(results.map((r) => r.tokens)), stepRows: sum(results.map((r) => r.stepRows)) };
  }

  /** Teacher-forced per-token log-probs (and entropy if asked) of given responses; the workers take a part of the rows each. */
  async logProbs(request: LogProbRequest): Promise<LogProbResult> {
    const parts = this.rowParts(request);
    if (parts.length === 1) return this.clients[0].call('logProbs', { request, first: 0 }, { what: 'logProbs' });
    const results = await Promise.all(
      parts.map((p, i) => this.clients[i].call('logProbs', { request: rowsOf(request, p), first: p.start }, { what: 'logProbs' })),
    );
    return joinRows('logProbs', results);
  }

  /**
   * Several log-prob requests in one call to each worker (e.g. a step's masked view under its sampling
   * version and its reference log-probs): each result equals `logProbs` of its request, bit for bit.
   */
  async logProbViews(requests: readonly LogProbRequest[]): Promise<LogProbResult[]> {
    if (!Array.isArray(requests)) return this.clients[0].call('logProbViews', { requests: requests as LogProbRequest[], first: [] }, { what: 'logProbViews' });
    const split = requests.map((r) => this.rowParts(r));
    const calls = this.clients.map((c, i) => {
      const mine = split.flatMap((parts, q) => (parts[i] ? [{ q, part: parts[i] }] : []));
      if (mine.length === 0) return Promise.resolve({ mine, results: [] as LogProbResult[] });
      // A request in one part goes as it is (a malformed one too: the worker names what is wrong).
      const piece = (q: number, part: Part) => (split[q].length === 1 ? requests[q] : rowsOf(requests[q], part));
      const arg = { requests: mine.map(({ q, part }) => piece(q, part)), first: mine.map(({ part }) => part.start) };
      return c.call('logProbViews', arg, { what: 'logProbViews' }).then((results) => ({ mine, results }));
    });
    const byRequest: LogProbResult[][] = requests.map(() => []);
    for (const { mine, results } of await Promise.all(calls)) mine.forEach(({ q }, j) => byRequest[q].push(results[j]));
    return byRequest.map((results, q) => joinRows(`logProbViews: request ${q}`, results));
  }

  /**
   * A well-formed request's rows in parts of whole runs of `logprobBatchRows` (the runs the one-worker engine
   * makes, so the values are its own), one part per worker at most; anything else goes whole to one worker,
   * which names what is wrong.
   */
  private rowParts(request: LogProbRequest): Part[] {
    const rows = Array.isArray(request?.prompts) ? request.prompts.length : 0;
    const whole = [{ start: 0, end: rows }];
    if (this.clients.length === 1 || !Array.isArray(request.images) || !Array.isArray(request.responses)) return whole;
    if (request.images.length !== rows || request.responses.length !== rows) return whole;
    return runParts(rows, this.runRows, this.clients.length);
  }

  /** Releases the sessions and stops the workers. Calls already made finish first; later calls reject. */
  async close(): Promise<void> {
    const closed = await Promise.allSettled(this.clients.map((c) => c.close()));
    const failed = closed.find((c) => c.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);

function rowsOf(request: LogProbRequest, p: Part): LogProbRequest {
  return {
    ...request,
    images: request.images.slice(p.start, p.end),
    prompts: request.prompts.slice(p.start, p.end),
    responses: request.responses.slice(p.start, p.end),
  };
}

/** The version the parts of one call ran on: the same for all, since every worker receives the calls in the same order. */
function sameVersion(what: string, results: readonly { version: number }[]): number {
  const v = results[0].version;
  if (results.some((r) => r.version !== v)) throw new Error(`${what}: the engine's workers ran versions ${results.map((r) => r.version).join(', ')}`);
  return v;
}

function joinRows(what: string, results: readonly LogProbResult[]): LogProbResult {
  const version = sameVersion(what, results);
  const logprobs = results.flatMap((r) => r.logprobs);
  if (results.every((r) => r.entropy === undefined)) return { logprobs, version };
  return { logprobs, entropy: results.flatMap((r) => r.entropy ?? []), version };
}
