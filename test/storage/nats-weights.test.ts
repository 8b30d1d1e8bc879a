/**
 * Weights through the NATS object store: a version read back equals the one put (SHA-256 checked), old
 * versions are removed in the background down to the ones kept, and a read that does not finish in time
 * is an error naming the object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initParams } from '../../models/params.ts';
import { getWeights, policyObject, prunedWeights, publishVersion } from '../../storage/nats-weights.ts';
import type { RolloutBroker } from '../../storage/rollout-broker.ts';
import { brokerForFile } from '../nats-server.ts';
import { TINY_POLICY } from '../pipelines/tiny-run.ts';

const file = brokerForFile();

test('published versions read back bit for bit; the versions below the kept ones are removed in the background', async () => {
  const { broker } = file;
  const versions = [0, 1, 2, 3, 4].map((v) => initParams(TINY_POLICY, 10 + v));
  for (const [v, params] of versions.entries()) await publishVersion(broker, 'rw', TINY_POLICY, v, params, v - 1);
  await prunedWeights(broker);
  const names = (await broker.weights.list()).map((i) => i.name).filter((n) => n.startsWith('rw/'));
  assert.deepEqual(names.sort(), [policyObject('rw', 3), policyObject('rw', 4)]);
  const back = await getWeights(broker, policyObject('rw', 4));
  assert.ok(back);
  assert.equal(back.version, 4);
  assert.deepEqual(back.params, versions[4]);
  assert.equal(await getWeights(broker, policyObject('rw', 0)), undefined);
});

test('a read of weights that does not finish within its timeout is an error naming the object and its size', async () => {
  const { broker } = file;
  await publishVersion(broker, 'rt', TINY_POLICY, 0, initParams(TINY_POLICY, 1), 0);
  // metadata naming chunks that never come
  const i = await broker.weights.info(policyObject('rt', 0));
  assert.ok(i);
  const info = { name: i.name, bucket: i.bucket, nuid: 'never', size: i.size, chunks: i.chunks, digest: i.digest, deleted: false };
  const stuck = { ...broker, weights: Object.assign(Object.create(broker.weights), { info: async () => info }) } as RolloutBroker;
  await assert.rejects(
    getWeights(stuck, policyObject('rt', 0), 0.05),
    /reading weights rt\/policy\/0 \(\d+\.\d MB\) from the NATS object store papo_weights took over 0\.05 s/,
  );
});
