/**
 * storage/object-chunks.ts writes and reads objects in the JetStream object store's own format: the store's
 * client reads what it writes and it reads what the client writes, an overwritten object's old chunks are
 * purged, and a read of a damaged or unfinished object is an error naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstreamManager } from '@nats-io/jetstream';
import { getObject, putObject } from '../../storage/object-chunks.ts';
import { WEIGHTS_BUCKET } from '../../storage/rollout-broker.ts';
import { brokerForFile } from '../nats-server.ts';

const file = brokerForFile();

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 255);

test("the object store's client reads what putObject stores, and getObject what the client stores", async () => {
  const { broker } = file;
  const a = bytesOf(1_300_000, 1);
  await putObject(broker, WEIGHTS_BUCKET, 'oc/a', a, { chunkSize: 512 * 1024, metadata: { k: 'v' } });
  const info = await broker.weights.info('oc/a');
  assert.ok(info);
  assert.deepEqual([info.size, info.chunks, info.metadata, info.deleted], [a.length, 3, { k: 'v' }, false]);
  assert.deepEqual(await broker.weights.getBlob('oc/a'), a, 'the client checks the digest and gets the same bytes');
  assert.deepEqual((await getObject(broker, info, 10_000)).bytes, a);

  const b = bytesOf(300_000, 2);
  await broker.weights.putBlob({ name: 'oc/b' }, b);
  const infoB = await broker.weights.info('oc/b');
  assert.ok(infoB);
  assert.deepEqual((await getObject(broker, infoB, 10_000)).bytes, b);

  const empty = new Uint8Array(0);
  await putObject(broker, WEIGHTS_BUCKET, 'oc/empty', empty, { chunkSize: 1024 });
  const infoE = await broker.weights.info('oc/empty');
  assert.ok(infoE);
  assert.deepEqual((await getObject(broker, infoE, 10_000)).bytes, empty);
  assert.deepEqual(await broker.weights.getBlob('oc/empty'), empty);
});

test("an object stored again under its name reads as the new bytes and its old chunks are gone; the client's delete removes it", async () => {
  const { broker, nc } = file;
  const chunksOf = async (nuid: string) =>
    (await (await jetstreamManager(nc)).streams.info(`OBJ_${WEIGHTS_BUCKET}`, { subjects_filter: `$O.${WEIGHTS_BUCKET}.C.${nuid}` })).state.subjects?.[
      `$O.${WEIGHTS_BUCKET}.C.${nuid}`
    ] ?? 0;
  await putObject(broker, WEIGHTS_BUCKET, 'oc/again', bytesOf(200_000, 3), { chunkSize: 64 * 1024 });
  const first = await broker.weights.info('oc/again');
  assert.ok(first);
  assert.equal(await chunksOf(first.nuid), 4);
  const second = bytesOf(100_000, 4);
  await putObject(broker, WEIGHTS_BUCKET, 'oc/again', second, { chunkSize: 64 * 1024 });
  const info = await broker.weights.info('oc/again');
  assert.ok(info);
  assert.notEqual(info.nuid, first.nuid);
  assert.equal(await chunksOf(first.nuid), 0, 'the first chunks were purged');
  assert.deepEqual((await getObject(broker, info, 10_000)).bytes, second);
  await broker.weights.delete('oc/again');
  assert.equal(await chunksOf(info.nuid), 0);
  assert.equal((await broker.weights.info('oc/again'))?.deleted, true);
});

test('a damaged object, or one whose chunks do not all arrive in time, is an error naming it', async () => {
  const { broker } = file;
  const a = bytesOf(100_000, 5);
  await putObject(broker, WEIGHTS_BUCKET, 'oc/damaged', a, { chunkSize: 32 * 1024 });
  const i = await broker.weights.info('oc/damaged');
  assert.ok(i);
  const info = { name: i.name, bucket: i.bucket, nuid: i.nuid, size: i.size, chunks: i.chunks, digest: i.digest };
  await assert.rejects(
    getObject(broker, { ...info, digest: `SHA-256=${'A'.repeat(43)}=` }, 10_000),
    /object oc\/damaged of bucket papo_weights: its bytes hash to SHA-256=\S+, its metadata says SHA-256=A+=/,
  );
  await assert.rejects(getObject(broker, { ...info, digest: 'MD5=x' }, 10_000), /object oc\/damaged of bucket papo_weights: unknown digest MD5=x/);
  await assert.rejects(getObject(broker, { ...info, size: 10 }, 10_000), /its chunks hold more than its 10 bytes/);
  await assert.rejects(getObject(broker, { ...info, nuid: 'nochunks' }, 300), /object oc\/damaged of bucket papo_weights: 0 of its 4 chunks read in 0.3 s/);
});
