/**
 * The rollout segment sharded: each sampling round is cut into shards of `shardSize` prompts
 * (`worker.rollout.shard_size`; default the whole round), a runner computes each shard's rollout segment
 * (operators/rollout-segment.ts), and the results are joined back in shard order. The runner decides where
 * shards run: `localShards` runs them one after another in this process; `remoteRollouts`
 * (operators/remote-rollouts.ts) sends them to rollout workers over NATS JetStream. Since every random choice
 * of a prompt is drawn from (batch seed, its place in the round), the runner never changes the result.
 *
 * One round is in the runner at a time (`concatMap`), so at most ceil(P / shardSize) shards are pending.
 *
 * @example
 * prompts$.pipe(shardRollouts(localShards(rolloutSegment(engine, reward, segment, versions.versionOf)), { shardSize: 8 }))
 */
import { concatMap, lastValueFrom, of, type OperatorFunction } from 'rxjs';
import type { RolloutShard } from './rollout-segment.ts';
import { joinShards, splitShards } from './shards.ts';
import type { PromptBatch } from './types.ts';

/** Computes the rollout segment of a round's shards; resolves with their results in the same order. */
export type ShardRunner = (shards: readonly PromptBatch[]) => Promise<RolloutShard[]>;

export interface ShardRolloutsOptions {
  /** prompts per shard; default (undefined) the whole round in one shard */
  shardSize?: number;
}

export function shardRollouts<T extends PromptBatch>(run: ShardRunner, opts: ShardRolloutsOptions = {}): OperatorFunction<T, T & RolloutShard> {
  if (opts.shardSize !== undefined && !(Number.isInteger(opts.shardSize) && opts.shardSize >= 1))
    throw new Error(`shardRollouts: shardSize must be a positive integer, got ${opts.shardSize}`);
  return concatMap(async (batch) => {
    const shards = splitShards(batch, opts.shardSize ?? batch.records.length);
    return joinShards(batch, shards, await run(shards));
  });
}

/** A runner that computes the shards one after another in this process with the given segment. */
export function localShards(segment: OperatorFunction<PromptBatch, RolloutShard>): ShardRunner {
  return async (shards) => {
    const out: RolloutShard[] = [];
    for (const s of shards) out.push(await lastValueFrom(of(s).pipe(segment)));
    return out;
  };
}
