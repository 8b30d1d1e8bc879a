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
 */
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type Consumer, type JetStreamClient } from '@nats-io/jetstream';
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
  /** seconds a worker may hold a job without acking (or `working()`) before it is redelivered; default 60 */
  ackWaitS?: number;
}

export interface RolloutBroker {
  nc: NatsConnection;
  js: JetStreamClient;
  weights: ObjectStore;
  runs: KV;
}

/** Creates (or finds) the streams, the workers' consumer and the buckets. */
export async function openBroker(nc: NatsConnection, opts: BrokerOptions = {}): Promise<RolloutBroker> {
  const jsm = await jetstreamManager(nc);
  const ensure = async (name: string, subjects: string[]) => {
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add({ name, subjects, retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: 120_000_000_000 });
    }
  };
  await ensure(JOBS_STREAM, ['papo.job.>']);
  await ensure(RESULTS_STREAM, ['papo.result.>']);
  const ackWait = Math.round((opts.ackWaitS ?? 60) * 1e9);
  try {
    await jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER);
  } catch {
    await jsm.consumers.add(JOBS_STREAM, { durable_name: WORKERS_CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: ackWait, filter_subject: 'papo.job.>' });
  }
  const js = jetstream(nc);
  const weights = await new Objm(js).create(WEIGHTS_BUCKET, { storage: StorageType.File });
  const runs = await new Kvm(js).create(RUNS_BUCKET, { history: 1 });
  return { nc, js, weights, runs };
}

/** The workers' shared pull consumer of the jobs stream. */
export function jobsConsumer(b: RolloutBroker): Promise<Consumer> {
  return b.js.consumers.get(JOBS_STREAM, WORKERS_CONSUMER);
}

/** The run's consumer of its results (created if missing): every result of the run, acked as read. */
export async function resultsConsumer(b: RolloutBroker, run: string): Promise<Consumer> {
  const jsm = await jetstreamManager(b.nc);
  const name = `trainer-${run}`;
  try {
    await jsm.consumers.info(RESULTS_STREAM, name);
  } catch {
    await jsm.consumers.add(RESULTS_STREAM, { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: `papo.result.${run}.>` });
  }
  return b.js.consumers.get(RESULTS_STREAM, name);
}
