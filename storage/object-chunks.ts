/**
 * Storing and reading an object of a JetStream object store in the store's own format, hashed with
 * node:crypto: what `storage/nats-weights.ts` moves policy versions with.
 *
 * Why not the object store client's `putBlob` / `getBlob` (@nats-io/obj): it hashes every chunk with a
 * JavaScript SHA-256 (js-sha256) on put and on get, about 30 MB/s on the machines this project runs on,
 * 60 ms of each direction for the 1.8 MB default policy, where the bytes themselves travel in 3-6 ms. This
 * module writes the same messages the client writes — chunks on `$O.<bucket>.C.<nuid>`, then the object's
 * metadata (name, nuid, size, chunks, `SHA-256=` digest, mtime) on `$O.<bucket>.M.<base64url name>` with a
 * subject rollup, then the purge of the object's previous chunks — and reads them back with an ordered
 * consumer, checking the digest, so the client's `get`, `info`, `list` and `delete` work on these objects
 * as on their own (tested both ways in test/storage/object-chunks.test.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { headers } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { ObjectInfo } from '@nats-io/obj';
import type { RolloutBroker } from './rollout-broker.ts';

/** What a read needs of an object's metadata (`ObjectStore.info`). */
export type ObjectRef = Pick<ObjectInfo, 'name' | 'bucket' | 'nuid' | 'size' | 'chunks' | 'digest'>;

/** base64url with padding, as the object store encodes names and digests */
const base64UrlPadded = (b: Uint8Array | Buffer) => Buffer.from(b).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
const digestOf = (sha256: Buffer) => `SHA-256=${base64UrlPadded(sha256)}`;

/** A read of an object that did not finish in time. */
export class ObjectReadTimeout extends Error {}

/** Stores `bytes` as object `name` of `bucket` in chunks of `chunkSize` bytes, with `metadata` (`sha256`: their SHA-256, when the caller has it). */
export async function putObject(
  b: Pick<RolloutBroker, 'nc' | 'js' | 'weights'>,
  bucket: string,
  name: string,
  bytes: Uint8Array,
  opts: { chunkSize: number; metadata?: Record<string, string>; sha256?: Buffer },
): Promise<void> {
  if (name.length === 0) throw new Error('putObject: an object needs a name');
  const old = await b.weights.info(name);
  const nuid = randomBytes(16).toString('base64url');
  const chunkSubject = `$O.${bucket}.C.${nuid}`;
  const stream = `OBJ_${bucket}`;
  const jsm = await jetstreamManager(b.nc);
  let chunks = 0;
  try {
    // published in order on one connection (the stream keeps that order), acks awaited together
    const acks: Promise<unknown>[] = [];
    for (let at = 0; at < bytes.length; at += opts.chunkSize) {
      acks.push(b.js.publish(chunkSubject, bytes.subarray(at, Math.min(bytes.length, at + opts.chunkSize))));
      chunks++;
    }
    await Promise.all(acks);
    const info = {
      name,
      options: { max_chunk_size: opts.chunkSize },
      ...(opts.metadata ? { metadata: opts.metadata } : {}),
      bucket,
      nuid,
      size: bytes.length,
      chunks,
      mtime: new Date().toISOString(),
      digest: digestOf(opts.sha256 ?? sha256Of(bytes)),
      deleted: false,
    };
    const h = headers();
    h.set('Nats-Rollup', 'sub');
    await b.js.publish(`$O.${bucket}.M.${base64UrlPadded(Buffer.from(name, 'utf8'))}`, JSON.stringify(info), { headers: h });
  } catch (err) {
    await jsm.streams.purge(stream, { filter: chunkSubject }).catch(() => undefined);
    throw err;
  }
  // the new object is live; its previous chunks go (a failure here leaves them, as the client does)
  if (old && !old.deleted && old.nuid) await jsm.streams.purge(stream, { filter: `$O.${bucket}.C.${old.nuid}` }).catch(() => undefined);
}

/**
 * The bytes of the object `info` describes and their SHA-256, its digest checked; an error names the object.
 * A read that takes over `timeoutMs` stops with an ObjectReadTimeout.
 */
export async function getObject(b: Pick<RolloutBroker, 'js'>, info: ObjectRef, timeoutMs: number): Promise<{ bytes: Uint8Array; sha256: Buffer }> {
  const what = `object ${info.name} of bucket ${info.bucket}`;
  if (!info.digest.startsWith('SHA-256=')) throw new Error(`${what}: unknown digest ${info.digest}`);
  const out = new Uint8Array(info.size);
  if (info.size === 0) return { bytes: out, sha256: sha256Of(out) };
  const consumer = await b.js.consumers.get(`OBJ_${info.bucket}`, { filter_subjects: `$O.${info.bucket}.C.${info.nuid}` });
  // bounded batches: a pull of the default size over large chunks stalls
  const messages = await consumer.consume({ max_messages: 16 });
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    messages.stop();
  }, timeoutMs);
  let at = 0;
  let got = 0;
  try {
    for await (const m of messages) {
      if (at + m.data.length > out.length) throw new Error(`${what}: its chunks hold more than its ${info.size} bytes`);
      out.set(m.data, at);
      at += m.data.length;
      got++;
      if (m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  if (late && got < info.chunks) throw new ObjectReadTimeout(`${what}: ${got} of its ${info.chunks} chunks read in ${timeoutMs / 1000} s`);
  if (got !== info.chunks || at !== info.size) throw new Error(`${what}: ${got} chunks of ${at} bytes, its metadata says ${info.chunks} of ${info.size}`);
  const sha256 = sha256Of(out);
  const digest = digestOf(sha256);
  if (digest !== info.digest) throw new Error(`${what}: its bytes hash to ${digest}, its metadata says ${info.digest}`);
  return { bytes: out, sha256 };
}
