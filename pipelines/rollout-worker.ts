/**
 * `papo worker`: a rollout worker. It pulls shard jobs from the NATS JetStream work queue one at a time, runs
 * the rollout segment on each (operators/rollout-segment.ts: the code a single-process run runs) and
 * publishes the result. Any number of workers, on any host, may join and leave at any time.
 *
 * - Weights: a job names the policy version it samples with; a worker that does not hold it waits until the
 *   run's version key reaches it, fetches it once from the object store (SHA-256 checked) and keeps the last
 *   few versions installed in its engine; the reference weights once per run.
 * - Rewards: only those the worker has itself (built-in, or registered by a module given with `--import`),
 *   and only when its reward of that name has the job's identity (`builtin:<name>`, `sha256:<hex of the
 *   module file>`, `code:<name>`: pipelines/reward-function.ts `rewardIdentity`); a job naming another, or
 *   the same name with other code, is answered with an error the trainer reports, naming this worker and the job.
 * - Long shards: the job is kept with `working()` heartbeats, about three per ack wait of the consumer, while
 *   the worker waits for and fetches the weights and while it computes; a worker that dies lets it be
 *   redelivered to another after the ack wait, which computes the same result (a job delivered again says so).
 * - Faults: pulls expire after 1 s, so a restarted server is noticed; every NATS call waits through a restart
 *   (`retrying`), and a lost jobs consumer is created again. A result published twice keeps its `Nats-Msg-Id`.
 */
import * as os from 'node:os';
import { lastValueFrom, of } from 'rxjs';
import type { JsMsg } from '@nats-io/jetstream';
import { PolicyEngine } from '../models/engine/engine.ts';
import { engineThreads } from '../models/engine/parts.ts';
import { rolloutSegment } from '../operators/rollout-segment.ts';
import { decodeJob, encodeResult, shardName, type ShardJob } from '../operators/shard-messages.ts';
import { connectNats, type NatsOptions } from '../storage/nats-connection.ts';
import { currentLaunch, getWeights, policyObject, referenceObject, waitForVersion } from '../storage/nats-weights.ts';
import { nextMessage, openBroker, resultSubject, retrying, type RolloutBroker } from '../storage/rollout-broker.ts';
import type { RewardScorer } from '../tasks/rewards/runner.ts';
import { rewardFunctions } from '../tasks/rewards/registry.ts';
import { openReward, rewardIdentity } from './reward-function.ts';

export interface RolloutWorkerOptions extends NatsOptions {
  /**
   * onnxruntime intra-op threads of the engine; default: each job's (the trainer's `worker.rollout.threads`),
   * which keeps the run bit for bit as in process (other counts change the log-probs' last bits, said once)
   */
  threads?: number;
  /** this worker's name in results and errors (default <host>-<pid>) */
  workerName?: string;
  /** stop after this many jobs (tests); default: until `signal` */
  maxJobs?: number;
  signal?: AbortSignal;
  /** one line for the user */
  say?: (line: string) => void;
  /** seconds a NATS call keeps retrying a server that does not answer before the worker stops (default 600; 0: no bound) */
  retryTimeoutS?: number;
  /** seconds between progress lines while jobs come in (default 30; 0: none); a new run is said at once */
  progressEveryS?: number;
}

/** how long a pull waits for a job before pulling again (short: a restarted server is noticed soon) */
const PULL_EXPIRES_MS = 1000;

/** Runs until `signal` aborts (the job in hand is finished first) or `maxJobs` jobs are done; resolves with the count. */
export async function runRolloutWorker(opts: RolloutWorkerOptions): Promise<{ jobs: number }> {
  const name = opts.workerName ?? `${os.hostname()}-${process.pid}`;
  const say = opts.say ?? (() => undefined);
  const nc = await connectNats({ ...opts, name: `papo worker ${name}` });
  const sayAs = (line: string) => say(`papo worker ${name}: ${line}`);
  const broker = await openBroker(nc, { say: sayAs, retryTimeoutS: opts.retryTimeoutS });
  const state = new WorkerState(broker, opts.threads, sayAs);
  let jobs = 0;
  const everyMs = (opts.progressEveryS ?? 30) * 1000;
  const since = { at: performance.now(), jobs: 0, busyMs: 0, run: '' };
  try {
    say(`papo worker ${name}: waiting for shard jobs on ${opts.url}`);
    while (!opts.signal?.aborted && (opts.maxJobs === undefined || jobs < opts.maxJobs)) {
      const m = await nextMessage(broker, 'jobs', PULL_EXPIRES_MS);
      if (!m) continue;
      const t0 = performance.now();
      const job = await handle(m, broker, state, name, say);
      jobs++;
      since.jobs++;
      since.busyMs += performance.now() - t0;
      const now = performance.now();
      if (job && job.run !== since.run) {
        since.run = job.run;
        say(`papo worker ${name}: run ${job.run} (trainer launch ${job.launch}): working from step ${job.step}`);
      } else if (job && everyMs > 0 && now - since.at >= everyMs) {
        const s = (now - since.at) / 1000;
        say(
          `papo worker ${name}: run ${job.run} step ${job.step}: ${jobs} jobs done, ${since.jobs} in the last ${s.toFixed(0)} s (busy ${((since.busyMs / 1000 / s) * 100).toFixed(0)}%)`,
        );
        Object.assign(since, { at: now, jobs: 0, busyMs: 0 });
      }
    }
    return { jobs };
  } finally {
    await state.close();
    await nc.drain().catch(() => undefined);
  }
}

/** Runs one job; resolves with it (undefined when it could not be read). */
async function handle(m: JsMsg, broker: RolloutBroker, state: WorkerState, name: string, say: (line: string) => void): Promise<ShardJob | undefined> {
  const started = performance.now();
  let job: ShardJob;
  try {
    job = decodeJob(m.data, m.subject);
  } catch (err) {
    say(`papo worker ${name}: dropped a job that cannot be read: ${(err as Error).message}`);
    m.term((err as Error).message.slice(0, 200));
    return undefined;
  }
  const id = { run: job.run, launch: job.launch, step: job.step, round: job.round, shard: job.shard };
  const dropStale = (current: string) => {
    // left behind by a trainer process of the run that has since been replaced (--resume): nobody reads its result
    say(`papo worker ${name}: dropped job ${shardName(job)} of launch ${job.launch} (the run's trainer is now launch ${current})`);
    m.ack();
    return job;
  };
  // kept from here on: the launch check and the weights may wait for a restarting server or a new version
  const heartbeat = setInterval(() => m.working(), Math.max(100, broker.ackWaitMs / 3));
  try {
    const current = await currentLaunch(broker, job.run);
    if (current !== undefined && current !== job.launch) return dropStale(current);
    if (m.info.deliveryCount > 1)
      say(
        `papo worker ${name}: job ${shardName(job)} delivered ${m.info.deliveryCount} times (a worker stopped or lost its connection before acking it); computing it again`,
      );
    let result: Uint8Array;
    const dist = { jobStoredMs: Number(m.timestampNanos / 1000n) / 1000, deliveries: m.info.deliveryCount, busyS: 0, weightFetchS: 0, weightBytes: 0 };
    state.fetched = { seconds: 0, bytes: 0 };
    try {
      const engine = await state.engineFor(job);
      const reward = await state.rewardFor(job, name);
      const shard = await lastValueFrom(of(job.batch).pipe(rolloutSegment(engine, reward, job.segment, () => job.version)));
      result = encodeResult(
        id,
        name,
        { shard },
        { ...dist, busyS: (performance.now() - started) / 1000, weightFetchS: state.fetched.seconds, weightBytes: state.fetched.bytes },
      );
    } catch (err) {
      if (err instanceof LaunchReplaced) return dropStale(err.current);
      const message = (err as Error).message;
      say(`papo worker ${name}: job ${shardName(job)} failed: ${message}`);
      result = encodeResult(id, name, { error: message });
    }
    const msgID = `result.${job.run}.${job.launch}.${job.step}.${job.round}.${job.shard}`;
    await retrying(broker, `publishing the result of job ${shardName(job)}`, () =>
      broker.js.publish(resultSubject(job.run, job.step, job.round, job.shard), result, { msgID }),
    );
    m.ack();
    return job;
  } finally {
    clearInterval(heartbeat);
  }
}

/** The run's trainer process was replaced while a job of the old one waited for its weights. */
class LaunchReplaced extends Error {
  constructor(readonly current: string) {
    super(`the run's trainer is now launch ${current}`);
  }
}

/** Waits for `job`'s policy version, giving up (LaunchReplaced) if the run's trainer is replaced meanwhile. */
async function waitForJobVersion(broker: RolloutBroker, job: ShardJob): Promise<void> {
  const stop = new AbortController();
  let replaced: string | undefined;
  const watch = setInterval(() => {
    currentLaunch(broker, job.run).then(
      (current) => {
        if (current !== undefined && current !== job.launch) {
          replaced = current;
          stop.abort();
        }
      },
      () => undefined,
    );
  }, 1000);
  try {
    await waitForVersion(broker, job.run, job.version, stop.signal);
  } catch (err) {
    if (replaced !== undefined) throw new LaunchReplaced(replaced);
    throw err;
  } finally {
    clearInterval(watch);
  }
}

/** What a worker keeps between jobs: its engine with the versions installed, and its rewards. */
class WorkerState {
  private engine: PolicyEngine | undefined;
  private policyKey = '';
  private engineLayout = '';
  private run = '';
  private installed: number[] = [];
  private reference = false;
  private readonly rewards = new Map<string, RewardScorer>();
  /** the weights fetched for the job in hand: seconds and bytes */
  fetched = { seconds: 0, bytes: 0 };

  private warnedThreads = '';

  constructor(
    private readonly broker: RolloutBroker,
    private readonly threads: number | undefined,
    private readonly say: (line: string) => void,
  ) {}

  async engineFor(job: ShardJob): Promise<PolicyEngine> {
    const key = JSON.stringify(job.policy);
    const threads = this.threads ?? job.threads ?? 2;
    if (this.threads !== undefined && job.threads !== undefined && this.threads !== job.threads && this.warnedThreads !== job.run) {
      this.warnedThreads = job.run;
      this.say(
        `runs its engine with ${this.threads} threads (--threads), the trainer of run ${job.run} with ${job.threads} (worker.rollout.threads): ` +
          'its log-probs may differ from the in-process run in the last bits; leave --threads out to follow the trainer',
      );
    }
    // The trainer's engine layout (its threads over its data_parallel_size workers), so a shard's values are the in-process run's.
    const layout = engineThreads(threads, job.dataParallelSize ?? 1);
    const layoutKey = `${layout.workers}x${layout.intraOpThreads}`;
    if (!this.engine || key !== this.policyKey || layoutKey !== this.engineLayout) {
      await this.engine?.close();
      this.engine = undefined;
      this.engine = await PolicyEngine.create(job.policy, { ...layout, retainVersions: 4 });
      this.engineLayout = layoutKey;
      this.policyKey = key;
      this.installed = [];
      this.reference = false;
    }
    if (job.run !== this.run) {
      this.run = job.run;
      this.installed = [];
      this.reference = false;
    }
    const e = this.engine;
    if (!this.installed.includes(job.version)) {
      await waitForJobVersion(this.broker, job);
      const t0 = performance.now();
      const w = await getWeights(this.broker, policyObject(job.run, job.version));
      this.fetched.seconds += (performance.now() - t0) / 1000;
      this.fetched.bytes += w?.bytes ?? 0;
      if (!w) throw new Error(`the weights of version ${job.version} of run ${job.run} are no longer in the object store`);
      if (JSON.stringify(w.policy) !== key) throw new Error(`the weights of version ${job.version} are of another policy architecture than the job's`);
      await e.setWeights(w.params, job.version);
      this.installed = [...this.installed, job.version].slice(-4);
    }
    if (job.segment.reference && !this.reference) {
      const t0 = performance.now();
      const w = await getWeights(this.broker, referenceObject(job.run));
      this.fetched.seconds += (performance.now() - t0) / 1000;
      this.fetched.bytes += w?.bytes ?? 0;
      if (!w) throw new Error(`run ${job.run} has no reference weights in the object store`);
      await e.setReferenceWeights(w.params);
      this.reference = true;
    }
    return e;
  }

  async rewardFor(job: ShardJob, worker: string): Promise<RewardScorer> {
    const spec = job.reward;
    if (!rewardFunctions.has(spec))
      throw new Error(
        `reward '${spec}' is not registered in this worker (it has ${rewardFunctions.names().join(', ')}); a worker runs only rewards it has itself: give it the module that registers yours with papo --import ext.ts worker`,
      );
    const own = rewardIdentity(spec);
    if (own !== job.rewardId)
      throw new Error(
        `reward '${spec}' of this worker (${worker}) is ${own}, the job ${shardName(job)} (launch ${job.launch}) asks for ${job.rewardId}: give the worker the same module as the trainer (papo --import ext.ts worker)`,
      );
    const have = this.rewards.get(spec);
    if (have) return have;
    const r = await openReward(spec);
    this.rewards.set(spec, r);
    return r;
  }

  async close(): Promise<void> {
    for (const r of this.rewards.values()) await r.close();
    await this.engine?.close();
  }
}
