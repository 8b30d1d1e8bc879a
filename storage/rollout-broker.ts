/**
 * The JetStream side of the scale-out: what a trainer and its rollout workers share on a NATS server.
 *
 * - `PAPO_JOBS` (work queue, subjects `papo.job.<run>.<step>.<round>.<shard>`): shard jobs, each delivered to
 *   one worker of the shared pull consumer `workers` and redelivered if not acked within `ackWaitS`.
 * - `PAPO_RESULTS` (work queue, subjects `papo.result.<run>.<step>.<round>.<shard>`): results, read by the
 *   run's own consumer `trainer-<run>`.
 * - object store `papo_weights`: each published policy version (`<run>/policy/<version>`) and the run's
 *   reference weights (`<run>/reference`), SHA-256 checked on read (storage/nats-weights.ts).
 * - KV bucket `papo_runs`: `<run>.version`, the latest version published, which workers watch.
 *
 * Messages carry `Nats-Msg-Id`, so a message published twice within the streams' duplicate window is stored
 * once. Everything is created if missing, with the same settings by trainer and workers.
 *
 * A NATS server may restart under a run (JetStream on disk keeps the streams, the consumers and the buckets):
 * every operation goes through `retrying`, which waits through connection, timeout and JetStream-unavailable
 * errors with backoff, saying so once; a consumer lost with the server's state is created again on the next
 * pull (`nextMessage`).
 */
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerConfig,
  type JetStreamClient,
  type JsMsg,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';

export const JOBS_STREAM = 'PAPO_JOBS';
export const RESULTS_STREAM = 'PAPO_RESULTS';
export const WORKERS_CONSUMER = 'workers';
export const WEIGHTS_BUCKET = 'papo_weights';
export const RUNS_BUCKET = 'papo_runs';

export const jobSubject = (run: string, step: number, round: number, shard: number) => `papo.job.${run}.${step}.${round}.${shard}`;
export const resultSubject = (run: string, step: number, round: number, shard: number) => `papo.result.${run}.${step}.${round}.${shard}`;

export interface BrokerOptions {
  /**
   * seconds a worker may hold a job without acking (or `working()`) before it is redelivered. Given (the
   * trainer: `worker.rollout.nats.ack_wait_s`), an existing consumer with another ack wait is updated to it;
   * not given (a worker), the consumer's own is kept, and 60 s is used if it must be created.
   */
  ackWaitS?: number;
  /** one line for the user (a consumer updated, a connection waited for) */
  say?: (line: string) => void;
  /**
   * seconds a NATS call keeps retrying an unreachable or restarting server before it fails (default
   * DEFAULT_RETRY_TIMEOUT_S; 0: no bound). The trainer: `worker.rollout.nats.retry_timeout_s`; a worker:
   * `papo worker --retry-timeout`.
   */
  retryTimeoutS?: number;
}

export const DEFAULT_RETRY_TIMEOUT_S = 600;

export interface RolloutBroker {
  nc: NatsConnection;
  js: JetStreamClient;
  weights: ObjectStore;
  runs: KV;
  /** the ack wait of the workers' consumer, in ms, as last seen (kept if the consumer must be created again) */
  ackWaitMs: number;
  say: (line: string) => void;
  /** how long `retrying` retries before it fails, ms (0: no bound) */
  retryTimeoutMs?: number;
}

const TRANSIENT = new Set(['TimeoutError', 'NoRespondersError', 'ConnectionError', 'RequestError', 'JetStreamNotEnabled', 'JetStreamStatusError']);

/** An error a restarting or unreachable server gives, worth retrying while the connection is not closed. */
export function isTransient(err: unknown): boolean {
  for (let e = err as (Error & { status?: number; code?: unknown }) | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (TRANSIENT.has(e.name)) return true;
    if (e.name === 'JetStreamApiError' && (e.status === 503 || e.status === 408 || e.status === 500)) return true;
    if (/timeout|timed out|no responders|unavailable|disconnect|reconnect|not enabled|heartbeat/i.test(e.message ?? '')) return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `op` until it succeeds, retrying on transient errors (`isTransient`) with backoff from 100 ms to 2 s,
 * and saying once per wait that it waits for the server. Other errors, and any once the connection is closed
 * or `signal` aborted, are thrown; so is the last transient one once the retries have lasted
 * `b.retryTimeoutMs` (default DEFAULT_RETRY_TIMEOUT_S; 0: no bound), in an error saying how long it tried.
 */
export async function retrying<T>(
  b: Pick<RolloutBroker, 'nc' | 'say' | 'retryTimeoutMs'>,
  what: string,
  op: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let delay = 100;
  let said = false;
  const bound = b.retryTimeoutMs ?? DEFAULT_RETRY_TIMEOUT_S * 1000;
  let since: number | undefined;
  for (;;) {
    try {
      const r = await op();
      if (said) b.say(`NATS: ${what} done after the wait`);
      return r;
    } catch (err) {
      if (!isTransient(err) || b.nc.isClosed() || signal?.aborted) throw err;
      since ??= performance.now();
      if (bound > 0 && performance.now() - since >= bound)
        throw new Error(
          `NATS: ${what} failed for ${((performance.now() - since) / 1000).toFixed(0)} s, the server not answering (last error: ${(err as Error).message}); ` +
            'giving up after worker.rollout.nats.retry_timeout_s (papo worker --retry-timeout)',
          { cause: err },
        );
      if (!said) {
        said = true;
        b.say(`NATS: ${what} failed (${(err as Error).message}); retrying until the server answers`);
      }
      await sleep(delay);
      delay = Math.min(2000, delay * 2);
    }
  }
}

const jobsConsumerConfig = (ackWaitMs: number): Partial<ConsumerConfig> => ({
  durable_name: WORKERS_CONSUMER,
  ack_policy: AckPolicy.Explicit,
  ack_wait: Math.round(ackWaitMs * 1e6),
  filter_subject: 'papo.job.>',
});
const resultsConsumerName = (run: string) => `trainer-${run}`;
/**
 * The trainer acks a result as it reads it; a result delivered to a pull that a server restart or the trainer's
 * death cut off comes again after 5 s (a second copy is dropped by its shard id), not after the default 30 s.
 */
const resultsConsumerConfig = (run: string): Partial<ConsumerConfig> => ({
  durable_name: resultsConsumerName(run),
  ack_policy: AckPolicy.Explicit,
  ack_wait: 5e9,
  filter_subject: `papo.result.${run}.>`,
});

/** Creates (or finds) the streams, the workers' consumer and the buckets. */
export async function openBroker(nc: NatsConnection, opts: BrokerOptions = {}): Promise<RolloutBroker> {
  const say = opts.say ?? (() => undefined);
  const retryTimeoutMs = (opts.retryTimeoutS ?? DEFAULT_RETRY_TIMEOUT_S) * 1000;
  return retrying({ nc, say, retryTimeoutMs }, 'opening the JetStream streams', () => open(nc, opts, say, retryTimeoutMs));
}

/** JetStream's answers to adding a stream that is there already: under its name, or on its subjects. */
const STREAM_EXISTS = new Set([10058, 10065]);

/**
 * Finds the work-queue stream `name`, or adds it. A stream another process adds at the same moment, or one a
 * restarted server is still restoring (not found, yet its subjects are taken), is looked for again for up to
 * `waitMs` before the error, which names the subjects, is thrown.
 */
export async function ensureStream(
  jsm: { streams: Pick<JetStreamManager['streams'], 'info' | 'add'> },
  name: string,
  subjects: string[],
  waitMs = 10_000,
): Promise<void> {
  const t0 = performance.now();
  for (let delay = 100; ; delay = Math.min(1000, delay * 2)) {
    try {
      await jsm.streams.info(name);
      return;
    } catch (err) {
      if (isTransient(err)) throw err;
    }
    try {
      await jsm.streams.add({ name, subjects, retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: 120_000_000_000 });
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (!(typeof code === 'number' && STREAM_EXISTS.has(code))) throw err;
      if (performance.now() - t0 >= waitMs)
        throw new Error(`NATS: stream ${name} is not found, yet adding it fails: ${(err as Error).message} (another stream holds ${subjects.join(', ')}?)`, {
          cause: err,
        });
    }
    await sleep(delay);
  }
}

async function open(nc: NatsConnection, opts: BrokerOptions, say: (line: string) => void, retryTimeoutMs: number): Promise<RolloutBroker> {
  const jsm = await jetstreamManager(nc);
  const ensure = (name: string, subjects: string[]) => ensureStream(jsm, name, subjects);
  await ensure(JOBS_STREAM, ['papo.job.>']);
  await ensure(RESULTS_STREAM, ['papo.result.>']);
  let ackWaitMs = (opts.ackWaitS ?? 60) * 1000;
  let info: Awaited<ReturnType<typeof jsm.consumers.info>> | undefined;
  try {
    info = await jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER);
  } catch (err) {
    if (isTransient(err)) throw err;
    await jsm.consumers.add(JOBS_STREAM, jobsConsumerConfig(ackWaitMs));
  }
  if (info) {
    const had = (info.config.ack_wait ?? 30e9) / 1e6;
    if (opts.ackWaitS !== undefined && Math.abs(had - ackWaitMs) > 0.5) {
      await jsm.consumers.update(JOBS_STREAM, WORKERS_CONSUMER, { ack_wait: Math.round(ackWaitMs * 1e6) });
      say(
        `NATS: the workers' consumer ${WORKERS_CONSUMER} had an ack wait of ${had / 1000} s; updated to ${ackWaitMs / 1000} s (worker.rollout.nats.ack_wait_s)`,
      );
    } else ackWaitMs = had;
  }
  const js = jetstream(nc);
  const weights = await new Objm(js).create(WEIGHTS_BUCKET, { storage: StorageType.File });
  const runs = await new Kvm(js).create(RUNS_BUCKET, { history: 1 });
  return { nc, js, weights, runs, ackWaitMs, say, retryTimeoutMs };
}

/** The workers' shared pull consumer of the jobs stream. */
export function jobsConsumer(b: RolloutBroker): Promise<Consumer> {
  return b.js.consumers.get(JOBS_STREAM, WORKERS_CONSUMER);
}

/** The run's consumer of its results (created if missing): every result of the run, acked as read. */
export async function resultsConsumer(b: RolloutBroker, run: string): Promise<Consumer> {
  await ensureConsumer(b, RESULTS_STREAM, resultsConsumerConfig(run));
  return b.js.consumers.get(RESULTS_STREAM, resultsConsumerName(run));
}

async function ensureConsumer(b: RolloutBroker, stream: string, cfg: Partial<ConsumerConfig>): Promise<void> {
  const jsm = await jetstreamManager(b.nc);
  try {
    await jsm.consumers.info(stream, cfg.durable_name!);
  } catch (err) {
    if (isTransient(err)) throw err;
    await jsm.consumers.add(stream, cfg);
    b.say(`NATS: consumer ${cfg.durable_name} of ${stream} was missing; created it again`);
  }
}

/**
 * The next message of the workers' jobs (`of: 'jobs'`) or of a run's results (`of: { results: run }`), or
 * null after `expiresMs` without one, or after a transient error (said once by `retrying`'s rules). A consumer
 * that is gone (deleted, or lost with a server's state) is created again; for the jobs, with the ack wait last
 * seen. The jobs consumer's ack wait is refreshed into `b.ackWaitMs` on every pull.
 */
export async function nextMessage(b: RolloutBroker, of: 'jobs' | { results: string }, expiresMs: number): Promise<JsMsg | null> {
  const [stream, cfg] = of === 'jobs' ? [JOBS_STREAM, jobsConsumerConfig(b.ackWaitMs)] : [RESULTS_STREAM, resultsConsumerConfig(of.results)];
  let c: Consumer;
  try {
    c = await b.js.consumers.get(stream, cfg.durable_name!);
  } catch (err) {
    if (err instanceof Error && err.name === 'ConsumerNotFoundError') {
      await retrying(b, `creating consumer ${cfg.durable_name}`, () => ensureConsumer(b, stream, cfg));
      return null;
    }
    return waitedOut(b, err);
  }
  if (of === 'jobs') {
    try {
      const ackWait = (await c.info(true)).config?.ack_wait;
      if (ackWait) b.ackWaitMs = ackWait / 1e6;
    } catch (err) {
      return waitedOut(b, err);
    }
  }
  try {
    return await c.next({ expires: expiresMs });
  } catch (err) {
    // a pull that missed its heartbeats (a busy event loop, a server restarting): the caller pulls again
    if (b.nc.isClosed()) throw err;
    await sleep(200);
    return null;
  }
}

/**
 * A consumer lookup that failed the way a restarting server makes it fail: said once, a short wait, then
 * null (the caller pulls again); any other error is thrown. A TypeError counts: it is the client reading a
 * consumer answer without its config, as a restarting server may give.
 */
async function waitedOut(b: RolloutBroker, err: unknown): Promise<null> {
  if (!(isTransient(err) || err instanceof TypeError) || b.nc.isClosed()) throw err;
  await warnOnce(b, err);
  return null;
}

const warned = new WeakSet<RolloutBroker>();
async function warnOnce(b: RolloutBroker, err: unknown): Promise<void> {
  if (!warned.has(b)) {
    warned.add(b);
    b.say(`NATS: waiting for the server (${(err as Error).message})`);
  }
  await sleep(500);
}
