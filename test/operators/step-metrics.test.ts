import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchMetrics, meanMetrics } from '../../operators/step-metrics.ts';
import type { RolloutBatch } from '../../operators/types.ts';
import { makeRecord, sampledBatch } from './fakes.ts';
import { assertClose } from '../asserts.ts';

// Prompts 0 and 2 need the image, prompt 1 does not; G = 2.
const records = [makeRecord(0, { visionDependency: 'high' }), makeRecord(1, { visionDependency: 'low' }), makeRecord(2, { visionDependency: 'high' })];

function batch(over: Partial<RolloutBatch> = {}): RolloutBatch {
  // Response lengths (text + EOS): 2, 3, 4, 5, 2, 3.
  const s = sampledBatch({ G: 2, records, texts: ['a', 'bb', 'ccc', 'dddd', 'e', 'ff'], versions: [3, 3, 4, 4, 5, 5], timing: { gen: 1.5, reward: 0.25 } });
  return {
    ...s,
    rounds: 2,
    finished: Uint8Array.of(1, 0, 1, 1, 0, 1),
    rewards: Float32Array.of(1, 0, 0.5, 0.5, 1, -1),
    accuracy: Float32Array.of(1, 0, 1, 1, 0, 1),
    format: Float32Array.of(1, 1, 1, 1, 0, 0),
    rewardFailures: [{ id: 'fake/2', index: 5, reward: 'r', kind: 'threw', reason: 'x' }],
    advantages: Float32Array.of(0.5, -0.5, 0, 0, 1, -1),
    zeroVarianceGroups: 1,
    droppedGroups: 4,
    surplusGroups: 1,
    ...over,
  };
}

test('score, reward and advantage statistics', () => {
  const m = batchMetrics(batch(), 5);
  assertClose(m['critic/score/mean'], 2 / 6, 1e-6);
  assert.equal(m['critic/score/max'], 1);
  assert.equal(m['critic/score/min'], -1);
  assert.equal(m['critic/rewards/mean'], m['critic/score/mean']);
  assertClose(m['critic/advantages/mean'], 0, 1e-6);
  assert.equal(m['critic/advantages/max'], 1);
  assert.equal(m['critic/advantages/min'], -1);
  assertClose(m['reward/format/mean'], 4 / 6, 1e-6);
  assert.equal(m['reward/format/min'], 0);
});

test('response lengths and the clip ratio (responses that hit the limit without EOS)', () => {
  const m = batchMetrics(batch(), 5);
  assertClose(m['response_length/mean'], 19 / 6, 1e-6);
  assert.equal(m['response_length/max'], 5);
  assert.equal(m['response_length/min'], 2);
  assertClose(m['response_length/clip_ratio'], 2 / 6, 1e-6);
  assert.equal(batchMetrics(batch({ finished: new Uint8Array(6).fill(1) }), 5)['response_length/clip_ratio'], 0);
});

test('accuracy overall and split by vision dependency', () => {
  const m = batchMetrics(batch(), 5);
  assertClose(m['reward/accuracy/mean'], 4 / 6, 1e-6);
  // vision-dependent rows 0, 1, 4, 5: accuracy 1, 0, 0, 1; general rows 2, 3: 1, 1.
  assert.equal(m['reward/accuracy/vision_dependent'], 0.5);
  assert.equal(m['reward/accuracy/general'], 1);
  const onlyHigh = batch({ records: [records[0], records[2], records[0]] });
  const m2 = batchMetrics(onlyHigh, 5);
  assert.equal(m2['reward/accuracy/general'], undefined, 'no general prompts, no general figure');
  assertClose(m2['reward/accuracy/vision_dependent'], 4 / 6, 1e-6);
});

test('staleness against the version the batch is trained from', () => {
  // versions 3, 3, 4, 4, 5, 5 trained from version 5: staleness 2, 2, 1, 1, 0, 0.
  const m = batchMetrics(batch(), 5);
  assert.equal(m['version_stats/sample_staleness_avg'], 1);
  assert.equal(m['version_stats/sample_staleness_max'], 2);
  const later = batchMetrics(batch(), 7);
  assert.equal(later['version_stats/sample_staleness_avg'], 3);
  assert.equal(later['version_stats/sample_staleness_max'], 4);
});

test('counts and timings', () => {
  const m = batchMetrics(batch(), 5);
  assert.equal(m['reward/failures'], 1);
  assert.equal(m['data/groups'], 3);
  assert.equal(m['data/zero_variance_groups'], 1);
  assert.equal(m['data/sampling_rounds'], 2);
  assert.equal(m['data/dynamic_sampling_dropped_groups'], 4);
  assert.equal(m['data/dynamic_sampling_surplus_groups'], 1);
  assert.equal(m['timing_s/gen'], 1.5);
  assert.equal(m['timing_s/reward'], 0.25);
  const plain = batchMetrics(batch({ droppedGroups: undefined, surplusGroups: undefined }), 5);
  assert.equal('data/dynamic_sampling_dropped_groups' in plain, false);
  assert.equal('data/dynamic_sampling_surplus_groups' in plain, false);
});

test('an empty batch has counts but no statistics', () => {
  const empty = sampledBatch({ G: 2, records: [] });
  const m = batchMetrics(
    {
      ...empty,
      rewards: new Float32Array(0),
      accuracy: new Float32Array(0),
      format: new Float32Array(0),
      rewardFailures: [],
      advantages: new Float32Array(0),
      zeroVarianceGroups: 0,
    },
    3,
  );
  assert.equal(m['data/groups'], 0);
  assert.equal(m['critic/score/mean'], undefined);
  assert.equal(m['response_length/clip_ratio'], undefined);
  assert.equal(m['version_stats/sample_staleness_avg'], undefined);
  assert.ok(Object.values(m).every(Number.isFinite));
});

test('meanMetrics averages each key over the records that have it', () => {
  assert.deepEqual(meanMetrics([{ a: 1, b: 2 }, { a: 3 }, { a: 5, c: -1 }]), { a: 3, b: 2, c: -1 });
  assert.deepEqual(meanMetrics([]), {});
});
