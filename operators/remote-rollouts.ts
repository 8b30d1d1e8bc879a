/**
 * The trainer's side of the scale-out: a `ShardRunner` (operators/shard-rollouts.ts) that sends each shard
 * of a round to the rollout workers as a JetStream job and reassembles their results in shard order.
 *
 * - Jobs go to the work-queue stream (storage/rollout-broker.ts) on `papo.job.<run>.<step>.<round>.<shard>`,
 *   with `Nats-Msg-Id` `<run>.<launch>.<step>.<round>.<shard>`: one worker takes each, and a job published
 *   twice is stored once. The job names the policy version the step samples with (`versionOf`); the weights
 *   go to the object store as the versions are published (`publishWeights`).
 * - Results are read from the run's own consumer. A result of another launch of the run (a trainer that died
 *   before), of another round, or a second result of a shard already in is acked and dropped; every other is
 *   decoded and checked (operators/shard-messages.ts) before it is used.
 * - Backpressure: one round is in the runner at a time (its shards, at most ceil(P / shard_size), are the
 *   only jobs of this trainer in the stream), and the credit gate admits steps as in a single-process run.
 * - Each step's `dist/` figures (`stepMetrics(step)`, taken once): distinct workers that sent results, shards,
 *   shards whose job was redelivered, the mean time a job waited before a worker took it (server clock: the
 *   result's stream time minus the job's minus the worker's busy time), the trainer's wait for results, the
 *   workers' busy seconds, and their weight-fetch seconds and MB/s, from the timings workers send with results.
 * - With no result for `resultTimeoutS / 10` seconds the trainer says once that it waits, with the number of
 *   shards pending; with none for `resultTimeoutS` the round fails with an error naming them.
 * - A server restart is waited through (`retrying`, storage/rollout-broker.ts), and the results consumer is
 *   created again if it was lost; a job published again keeps its `Nats-Msg-Id`, so it is stored once.
 *
 * @example
 * const runner = remoteRollouts({ broker, run, launch, segment, reward: 'composite', rewardId: 'builtin:composite', policy, versionOf: versions.versionOf, maxNewTokens: 48 });
 * prompts$.pipe(shardRollouts(runner, { shardSize: 8 }))
 */
import type { PolicyConfig } from '../models/config.ts';
import type { Params } from '../models/params.ts';
import { jobSubject, nextMessage, resultsConsumer, retrying, type RolloutBroker } from '../storage/rollout-broker.ts';
import { publishVersion, putWeights, referenceObject, setCurrentLaunch } from '../storage/nats-weights.ts';
import type { PolicyVersions } from './policy-versions.ts';
import type { RolloutSegmentOptions, RolloutShard } from './rollout-segment.ts';
import { decodeResult, encodeJob, resultId, shardName, type ShardId } from './shard-messages.ts';
import type { ShardRunner } from './shard-rollouts.ts';
import type { Metrics } from './step-metrics.ts';
import type { PromptBatch } from './types.ts';

export interface RemoteRolloutsOptions {
  broker: RolloutBroker;
  /** the run's id on the broker (stable across its launches: `--resume` continues it) */
  run: string;
  /** this trainer process's id: results of other launches are ignored */
  launch: string;
  segment: RolloutSegmentOptions;
  /** `worker.reward.score_function` */
  reward: string;
  /** its identity (pipelines/reward-function.ts `rewardIdentity`): workers refuse a job whose reward they hold otherwise */
  rewardId: string;
  policy: PolicyConfig;
  /** the trainer's `worker.rollout.threads`, which workers run their engines with (results to the bit) */
  threads?: number;
  /** the trainer's `worker.rollout.data_parallel_size`: the engine workers those threads are shared by */
  dataParallelSize?: number;
  /** the policy version a step samples with (`PolicyVersions.versionOf`) */
  versionOf: (batch: PromptBatch) => number;
  /** tokens a response may have (results longer are refused) */
  maxNewTokens: number;
  /** seconds without a result before the round fails; default 600 */
  resultTimeoutS?: number;
  /** one line for the user (waiting for workers) */
  say?: (line: string) => void;
  /** one line for the log only (a result dropped: of an earlier launch, or a second one of a shard) */
  note?: (line: string) => void;
}

interface StepDist {
  workers: Set<string>;
  shards: number;
  redelivered: number;
  queueWaitS: number;
  resultWaitS: number;
  busyS: number;
  fetchS: number;
  fetchBytes: number;
}

/**
 * A runner of shards on rollout workers; `stepMetrics(step)` hands out (once) the step's `dist/` metrics,
 * with the weight puts `notePut` recorded since the previous call.
 */
export type RemoteRunner = ShardRunner & { stepMetrics(step: number): Metrics; notePut(seconds: number, bytes: number): void };

export function remoteRollouts(opts: RemoteRolloutsOptions): RemoteRunner {
  const rounds = new Map<number, number>();
  const dists = new Map<number, StepDist>();
  const puts = { seconds: 0, bytes: 0 };
  const timeoutMs = (opts.resultTimeoutS ?? 600) * 1000;
  const consumer = retrying(opts.broker, 'creating the results consumer', () => resultsConsumer(opts.broker, opts.run));
  const run = async (shards: readonly PromptBatch[]): Promise<RolloutShard[]> => {
    const step = shards[0].step;
    const round = (rounds.get(step) ?? 0) + 1;
    rounds.set(step, round);
    for (const k of rounds.keys()) if (k < step - 16) rounds.delete(k);
    for (const k of dists.keys()) if (k < step - 16) dists.delete(k);
    let dist = dists.get(step);
    if (!dist) {
      dist = { workers: new Set(), shards: 0, redelivered: 0, queueWaitS: 0, resultWaitS: 0, busyS: 0, fetchS: 0, fetchBytes: 0 };
      dists.set(step, dist);
    }
    const version = opts.versionOf(shards[0]);
    const ids: ShardId[] = shards.map((_, shard) => ({ run: opts.run, launch: opts.launch, step, round, shard }));
    for (const [k, shard] of shards.entries()) {
      const id = ids[k];
      const job = encodeJob({
        ...id,
        version,
        segment: opts.segment,
        reward: opts.reward,
        rewardId: opts.rewardId,
        policy: opts.policy,
        ...(opts.threads ? { threads: opts.threads } : {}),
        ...(opts.dataParallelSize ? { dataParallelSize: opts.dataParallelSize } : {}),
        batch: shard,
      });
      const msgID = `${opts.run}.${opts.launch}.${step}.${round}.${k}`;
      await retrying(opts.broker, `publishing job ${shardName(id)}`, () => opts.broker.js.publish(jobSubject(opts.run, step, round, k), job, { msgID }));
    }
    const waitFrom = performance.now();
    const results = new Array<RolloutShard | undefined>(shards.length);
    let pending = shards.length;
    let last = performance.now();
    let said = false;
    await consumer;
    while (pending > 0) {
      const m = await nextMessage(opts.broker, { results: opts.run }, Math.max(1000, Math.min(5000, timeoutMs)));
      if (!m) {
        const idle = performance.now() - last;
        if (idle >= timeoutMs)
          throw new Error(
            `no rollout worker returned a result for ${Math.round(idle / 1000)} s (worker.rollout.nats.result_timeout_s): ${pending} of ${shards.length} shards of step ${step} round ${round} pending (${ids
              .filter((_, k) => !results[k])
              .map(shardName)
              .join(', ')}); is a papo worker connected to the same NATS server?`,
          );
        if (!said && idle >= Math.min(10_000, timeoutMs / 10)) {
          said = true;
          opts.say?.(
            `waiting for rollout workers: ${pending} of ${shards.length} shards of step ${step} round ${round} pending (start one with: papo worker --nats <url>)`,
          );
        }
        continue;
      }
      m.ack();
      const rid = resultId(m.data, m.subject);
      if (rid.run !== opts.run || rid.launch !== opts.launch) {
        opts.note?.(`dropped the result of job ${shardName(rid)} of launch ${rid.launch} (an earlier trainer process of the run)`);
        continue;
      }
      if (rid.step !== step || rid.round !== round || !(rid.shard >= 0 && rid.shard < shards.length) || results[rid.shard]) {
        opts.note?.(`dropped a second result of job ${shardName(rid)} (launch ${rid.launch})`);
        continue;
      }
      results[rid.shard] = decodeResult(shards[rid.shard], ids[rid.shard], m.data, m.subject, {
        maxNewTokens: opts.maxNewTokens,
        vocabSize: opts.policy.vocabSize,
        version,
      });
      pending--;
      last = performance.now();
      dist.workers.add(rid.worker);
      dist.shards++;
      const d = rid.dist;
      if (d) {
        if (d.deliveries > 1) dist.redelivered++;
        dist.queueWaitS += Math.max(0, (Number(m.timestampNanos / 1000n) / 1000 - d.jobStoredMs) / 1000 - d.busyS);
        dist.busyS += d.busyS;
        dist.fetchS += d.weightFetchS;
        dist.fetchBytes += d.weightBytes;
      }
    }
    dist.resultWaitS += (performance.now() - waitFrom) / 1000;
    return results as RolloutShard[];
  };
  return Object.assign(run, {
    notePut(seconds: number, bytes: number) {
      puts.seconds += seconds;
      puts.bytes += bytes;
    },
    stepMetrics(step: number): Metrics {
      const d = dists.get(step);
      if (!d) return {};
      dists.delete(step);
      const put = { ...puts };
      puts.seconds = 0;
      puts.bytes = 0;
      return {
        'dist/weight_put_s': put.seconds,
        ...(put.seconds > 0 ? { 'dist/weight_put_mb_per_s': put.bytes / 1e6 / put.seconds } : {}),
        'dist/workers': d.workers.size,
        'dist/shards': d.shards,
        'dist/shards_redelivered': d.redelivered,
        'dist/queue_wait_s': d.shards ? d.queueWaitS / d.shards : 0,
        'dist/result_wait_s': d.resultWaitS,
        'dist/worker_busy_s': d.busyS,
        'dist/weight_fetch_s': d.fetchS,
        ...(d.fetchS > 0 ? { 'dist/weight_fetch_mb_per_s': d.fetchBytes / 1e6 / d.fetchS } : {}),
      };
    },
  });
}

/**
 * Publishes the run's weights to the object store: the reference weights once (with `reference`), then every
 * version the trainer publishes (and, first, the versions still needed), keeping at most max_staleness + 2.
 * `launch` becomes the run's current launch: workers drop the jobs an earlier trainer process left behind.
 * `onPut` receives the seconds and bytes of each version's put (a runner's `notePut`).
 */
export async function publishWeights(
  broker: RolloutBroker,
  run: string,
  launch: string,
  policy: PolicyConfig,
  versions: PolicyVersions,
  reference?: Params,
  onPut?: (seconds: number, bytes: number) => void,
): Promise<() => void> {
  await setCurrentLaunch(broker, run, launch);
  if (reference) await putWeights(broker, referenceObject(run), policy, 0, reference);
  const keep = versions.maxStaleness + 2;
  return versions.subscribe(async (v, params) => {
    const t0 = performance.now();
    const bytes = await publishVersion(broker, run, policy, v, params, v - keep + 1);
    onPut?.((performance.now() - t0) / 1000, bytes);
  });
}
