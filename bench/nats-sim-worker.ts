/**
 * A simulated rollout worker for bench/nats-scaleout.ts: `--connections` workers in one process, each
 * pulling one shard job at a time from the jobs stream like `papo worker`, decoding it, sleeping
 * `--sample-ms` (the measured time of a real shard) instead of running an engine, and answering with a
 * canned real result (`--result`, a file of an encoded result) re-addressed to the job. It stops after
 * `--seconds` or on SIGTERM.
 *
 *   node --import tsx bench/nats-sim-worker.ts --nats URL --connections 8 --sample-ms 400 --result FILE --seconds 30 --name simA
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { decodeJob } from '../operators/shard-messages.ts';
import { decodeMessage, encodeMessage } from '../storage/message-codec.ts';
import { connectNats } from '../storage/nats-connection.ts';
import { jobsConsumer, openBroker, resultSubject } from '../storage/rollout-broker.ts';

const { values: a } = parseArgs({
  options: {
    nats: { type: 'string' },
    connections: { type: 'string', default: '8' },
    'sample-ms': { type: 'string', default: '0' },
    result: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    name: { type: 'string', default: 'sim' },
  },
});
const canned = decodeMessage(new Uint8Array(fs.readFileSync(a.result as string)), 'canned result');
const arrays = Object.fromEntries(canned.arrays);
const sampleMs = Number(a['sample-ms']);
const until = performance.now() + Number(a.seconds) * 1000;
let stop = false;
process.on('SIGTERM', () => {
  stop = true;
});

async function worker(k: number): Promise<number> {
  const nc = await connectNats({ url: a.nats as string, name: `${a.name}-${k}`, env: {} });
  const broker = await openBroker(nc);
  const consumer = await jobsConsumer(broker);
  let jobs = 0;
  while (!stop && performance.now() < until) {
    const m = await consumer.next({ expires: 1000 }).catch(() => null);
    if (!m) continue;
    const job = decodeJob(m.data, m.subject);
    const t0 = performance.now();
    if (sampleMs > 0) await new Promise((r) => setTimeout(r, sampleMs));
    const id = { run: job.run, launch: job.launch, step: job.step, round: job.round, shard: job.shard };
    const dist = {
      jobStoredMs: Number(m.timestampNanos / 1000n) / 1000,
      deliveries: m.info.deliveryCount,
      busyS: (performance.now() - t0) / 1000,
      weightFetchS: 0,
      weightBytes: 0,
    };
    const bytes = encodeMessage({ ...canned.header, ...id, worker: `${a.name}-${k}`, dist }, arrays);
    await broker.js.publish(resultSubject(job.run, job.step, job.round, job.shard), bytes, {
      msgID: `result.${job.run}.${job.launch}.${job.step}.${job.round}.${job.shard}`,
    });
    m.ack();
    jobs++;
  }
  await nc.drain();
  return jobs;
}

const counts = await Promise.all(Array.from({ length: Number(a.connections) }, (_, k) => worker(k)));
process.stdout.write(`${JSON.stringify({ name: a.name, jobs: counts.reduce((x, y) => x + y, 0) })}\n`);
