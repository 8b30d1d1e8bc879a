/**
 * Cutting a sampling round into shards of `shard_size` prompts and joining their results back in shard
 * order (operators/shard-rollouts.ts). A shard keeps its round's step, round, seed and cursor and records
 * where its first prompt sits in the round (`promptOffset`), so each prompt draws the random numbers it would
 * draw in the whole round.
 */
import { concatGroups } from './groups.ts';
import type { RolloutShard } from './rollout-segment.ts';
import type { PromptBatch } from './types.ts';

/** The shards of a round batch: prompts [k * size, (k + 1) * size), the last one possibly shorter. */
export function splitShards(batch: PromptBatch, size: number): PromptBatch[] {
  if (!(Number.isInteger(size) && size >= 1)) throw new Error(`splitShards: shard size must be a positive integer, got ${size}`);
  const out: PromptBatch[] = [];
  const base = batch.promptOffset ?? 0;
  for (let start = 0; start < batch.records.length; start += size) {
    const end = Math.min(start + size, batch.records.length);
    out.push({
      ...batch,
      records: batch.records.slice(start, end),
      indices: batch.indices.slice(start, end),
      promptOffset: base + start,
      timing: {},
    });
  }
  return out;
}

/**
 * The round batch with its shards' results, in shard order: per-prompt and per-response fields concatenated
 * (the batch schema's), reward failures re-indexed, timings summed. Each part must carry its shard's prompts.
 */
export function joinShards<T extends PromptBatch>(batch: T, shards: readonly PromptBatch[], parts: readonly RolloutShard[]): T & RolloutShard {
  if (parts.length !== shards.length || parts.length === 0)
    throw new Error(`joinShards: step ${batch.step} round ${batch.rounds}: ${parts.length} results for ${shards.length} shards`);
  parts.forEach((p, k) => {
    const s = shards[k];
    const same = p.records.length === s.records.length && p.records.every((r, i) => r.id === s.records[i].id);
    if (!same || p.step !== s.step || p.promptOffset !== s.promptOffset)
      throw new Error(
        `joinShards: step ${batch.step}: the result of shard ${k} does not carry that shard's prompts (offset ${s.promptOffset}, ${s.records.length} records)`,
      );
  });
  const { promptOffset: _offset, ...joined } = parts.slice(1).reduce((a, b) => concatGroups(a, b), parts[0]);
  const timing = { ...batch.timing };
  for (const [key, s] of Object.entries(joined.timing)) timing[key] = (timing[key] ?? 0) + s;
  return { ...joined, ...(batch.promptOffset ? { promptOffset: batch.promptOffset } : {}), rounds: batch.rounds, timing } as T & RolloutShard;
}
