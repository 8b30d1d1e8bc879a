/**
 * The broker's fault handling: `retrying` waits through the errors of a restarting server and throws the
 * others at once; the trainer's ack wait replaces a different one of the workers' consumer (and says so), a
 * worker keeps the consumer's; a lost jobs consumer is created again by the next pull, with the ack wait last
 * seen. A NATS server of the test's own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../storage/nats-connection.ts';
import { ensureStream, isTransient, JOBS_STREAM, nextMessage, openBroker, retrying, WORKERS_CONSUMER } from '../../storage/rollout-broker.ts';
import { deleteConsumer, startNatsServer, type TestNatsServer } from '../nats-server.ts';

let nats: TestNatsServer;
let nc: NatsConnection;
before(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

test('retrying retries transient errors, saying so once, and throws any other at once', async () => {
  const said: string[] = [];
  let calls = 0;
  const r = await retrying({ nc, say: (l) => said.push(l) }, 'reading x', async () => {
    calls++;
    if (calls <= 3) throw named(calls === 2 ? 'NoRespondersError' : 'TimeoutError', 'timeout');
    return 42;
  });
  assert.equal(r, 42);
  assert.equal(calls, 4);
  assert.deepEqual(said, ['NATS: reading x failed (timeout); retrying until the server answers', 'NATS: reading x done after the wait']);
  calls = 0;
  await assert.rejects(
    retrying({ nc, say: () => undefined }, 'x', async () => {
      calls++;
      throw named('JetStreamApiError', 'maximum payload exceeded');
    }),
    /maximum payload exceeded/,
  );
  assert.equal(calls, 1);
  // bounded: a server that never answers fails the call after retryTimeoutMs, naming it and the last error
  said.length = 0;
  calls = 0;
  const t0 = performance.now();
  await assert.rejects(
    retrying({ nc, say: (l) => said.push(l), retryTimeoutMs: 400 }, 'storing weights r1/policy/3', async () => {
      calls++;
      throw named('TimeoutError', 'timeout');
    }),
    (err: Error) => {
      assert.match(
        err.message,
        /^NATS: storing weights r1\/policy\/3 failed for \d+ s, the server not answering \(last error: timeout\); giving up after worker\.rollout\.nats\.retry_timeout_s/,
      );
      return true;
    },
  );
  assert.ok(performance.now() - t0 >= 400 && calls >= 3, `${calls} calls`);
  assert.deepEqual(said, ['NATS: storing weights r1/policy/3 failed (timeout); retrying until the server answers']);
  assert.ok(isTransient(named('RequestError', 'x')));
  assert.ok(isTransient(new Error('outer', { cause: named('ConnectionError', 'x') })));
  assert.ok(!isTransient(named('ConsumerNotFoundError', 'consumer not found')));
});

test("the trainer's ack wait replaces the consumer's and says so; a worker keeps it; a lost consumer is created again with it", async () => {
  const jsm = await jetstreamManager(nc);
  const ackWait = async () => (await jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER)).config.ack_wait;
  const said: string[] = [];
  await openBroker(nc, { ackWaitS: 60 });
  assert.equal(await ackWait(), 60e9);
  await openBroker(nc, { ackWaitS: 2.5, say: (l) => said.push(l) });
  assert.equal(await ackWait(), 2.5e9);
  assert.deepEqual(said, ["NATS: the workers' consumer workers had an ack wait of 60 s; updated to 2.5 s (worker.rollout.nats.ack_wait_s)"]);
  const worker = await openBroker(nc, { say: (l) => said.push(l) });
  assert.equal(worker.ackWaitMs, 2500);
  assert.equal(await ackWait(), 2.5e9);
  assert.equal(said.length, 1);
  await deleteConsumer(jsm, JOBS_STREAM, WORKERS_CONSUMER);
  assert.equal(await nextMessage(worker, 'jobs', 1000), null);
  assert.equal(await ackWait(), 2.5e9);
  assert.deepEqual(said.slice(1), ['NATS: consumer workers of PAPO_JOBS was missing; created it again']);
});

test("a consumer answer without its config (a restarting server's) is a pull that found nothing, said once; another error is thrown", async () => {
  const said: string[] = [];
  const real = await openBroker(nc, { say: (l) => said.push(l) });
  let thrown: Error = new TypeError("Cannot read properties of undefined (reading 'deliver_subject')");
  const consumers = { get: async () => Promise.reject(thrown) };
  const broker = { ...real, js: Object.assign(Object.create(real.js), { consumers }) } as typeof real;
  assert.equal(await nextMessage(broker, 'jobs', 100), null);
  assert.equal(await nextMessage(broker, 'jobs', 100), null);
  assert.deepEqual(said, ["NATS: waiting for the server (Cannot read properties of undefined (reading 'deliver_subject'))"]);
  thrown = new RangeError('something else');
  await assert.rejects(nextMessage(broker, 'jobs', 100), /something else/);
});

test('ensureStream: a stream added meanwhile, or restored late after a restart, is found again; a foreign one on its subjects is named', async () => {
  // A fake manager: the stream is not found, adding it says it exists (JetStream's 10065), then it is found.
  const calls: string[] = [];
  let infos = 0;
  const late = {
    streams: {
      info: async () => {
        calls.push('info');
        if (++infos < 3) throw Object.assign(new Error('stream not found'), { name: 'JetStreamApiError', code: 10059 });
        return {} as never;
      },
      add: async () => {
        calls.push('add');
        throw Object.assign(new Error('subjects overlap with an existing stream'), { name: 'JetStreamApiError', code: 10065 });
      },
    },
  };
  await ensureStream(late, 'papo-jobs', ['papo.job.>']);
  assert.deepEqual(calls, ['info', 'add', 'info', 'add', 'info']);
  // Any other failure of the add is thrown at once.
  const denied = {
    streams: {
      info: async () => Promise.reject(Object.assign(new Error('stream not found'), { name: 'JetStreamApiError', code: 10059 })),
      add: async () => Promise.reject(Object.assign(new Error('insufficient resources'), { name: 'JetStreamApiError', code: 10023 })),
    },
  };
  await assert.rejects(ensureStream(denied, 'papo-jobs', ['papo.job.>']), /insufficient resources/);
  // On a real server: another stream holds the subjects.
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'someone-else', subjects: ['papo.test.>'] });
  await assert.rejects(
    ensureStream(jsm, 'papo-test', ['papo.test.>'], 300),
    /NATS: stream papo-test is not found, yet adding it fails: .*overlap.* \(another stream holds papo\.test\.>\?\)/,
  );
  await jsm.streams.delete('someone-else');
  await ensureStream(jsm, 'papo-test', ['papo.test.>']);
  assert.equal((await jsm.streams.info('papo-test')).config.name, 'papo-test');
  await jsm.streams.delete('papo-test');
});
