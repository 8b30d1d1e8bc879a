/**
 * Rollouts on workers over NATS JetStream (a server of the test's own) end bit for bit as the same run with
 * its shards computed in process: the metrics (timings aside), the final weights and optimizer state, the
 * rollout log and the TensorBoard scalars, with one and with two workers; a job a worker cannot run, and a
 * run without workers, end in an error that names what is wrong rather than a hang; jobs left behind by a
 * replaced trainer process are dropped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { runTrain } from '../../pipelines/train.ts';
import { runRolloutWorker } from '../../pipelines/rollout-worker.ts';
import { jetstreamManager } from '@nats-io/jetstream';
import { encodeJob } from '../../operators/shard-messages.ts';
import { connectNats } from '../../storage/nats-connection.ts';
import { setCurrentLaunch } from '../../storage/nats-weights.ts';
import { jobSubject, openBroker, RESULTS_STREAM } from '../../storage/rollout-broker.ts';
import { makeRecords, promptBatch } from '../operators/fakes.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { startNatsServer, type TestNatsServer } from '../nats-server.ts';
import { assertSameRun } from './same-run.ts';
import { TINY_POLICY, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
let nats: TestNatsServer;
before(async () => {
  nats = await startNatsServer();
  ({ tmp, weights } = await tinyPolicyInTmp('papo-nats-test-'));
});
after(async () => {
  await nats?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function config(run: string, staleness: number, backend: 'local' | 'nats'): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g' },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } },
      rollout: { n: 4, threads: 1, shard_size: 2, backend, nats: { url: nats.url, result_timeout_s: 60 } },
    },
    trainer: { max_steps: 2, max_staleness: staleness, save_freq: 0, save_limit: 0, test_before_and_after: false, save_checkpoint_path: run },
  };
}

/** A run with `workers` rollout workers in this process (0: shards in process). */
async function trainWith(run: string, staleness: number, workers: number) {
  const stop = new AbortController();
  const said: string[] = [];
  // settled at once, so that a worker failing while the run goes on is reported here, not as an unhandled rejection
  const running = Array.from({ length: workers }, (_, i) =>
    // no threads given: the workers run their engines with the job's, the trainer's worker.rollout.threads (1 here)
    runRolloutWorker({ url: nats.url, workerName: `test-worker-${i}`, signal: stop.signal, say: (l) => said.push(l) }).then(
      (r) => r,
      (err: Error) => err,
    ),
  );
  let result: Awaited<ReturnType<typeof runTrain>>;
  try {
    result = await runTrain(config(run, staleness, workers ? 'nats' : 'local'), { quiet: true });
  } finally {
    stop.abort();
  }
  const done = await Promise.all(running);
  for (const d of done) if (d instanceof Error) throw d;
  assert.ok(!said.some((l) => l.includes('threads')), said.join('\n'));
  // 2 steps of 2 shards each (papo_g: no extra rounds)
  if (workers)
    assert.equal(
      done.reduce((n, d) => n + (d as { jobs: number }).jobs, 0),
      4,
      'the workers ran every shard once',
    );
  return result;
}

/** The run with its shards in process, once per max_staleness. */
const locals = new Map<number, Promise<string>>();
function localRun(staleness: number): Promise<string> {
  let p = locals.get(staleness);
  if (!p) {
    const run = path.join(tmp, `local-${staleness}`);
    p = trainWith(run, staleness, 0).then(() => run);
    locals.set(staleness, p);
  }
  return p;
}

for (const [staleness, workers] of [
  [0, 1],
  [0, 2],
  [1, 2],
] as const) {
  test(`max_staleness ${staleness}: rollouts on ${workers} NATS worker(s) end as the run with its shards in process, to the bit`, async () => {
    const local = await localRun(staleness);
    const remote = path.join(tmp, `nats-${staleness}-${workers}`);
    const r = await trainWith(remote, staleness, workers);
    assert.equal(r.steps.length, 2);
    await assertSameRun(local, remote);
  });
}

test('a worker drops the jobs a replaced trainer process of the run left behind, without running them', async () => {
  const nc = await connectNats({ url: nats.url });
  try {
    const broker = await openBroker(nc);
    await setCurrentLaunch(broker, 'rstale', 'newlaunch');
    const batch = promptBatch({ records: makeRecords(1, { height: 28, width: 56 }) });
    const segment = { sample: { n: 1 }, reward: {}, reference: false };
    const job = encodeJob({
      run: 'rstale',
      launch: 'oldlaunch',
      step: 1,
      round: 1,
      shard: 0,
      version: 0,
      segment,
      reward: 'composite',
      rewardId: 'builtin:composite',
      policy: TINY_POLICY,
      batch,
    });
    await broker.js.publish(jobSubject('rstale', 1, 1, 0), job, { msgID: 'rstale.oldlaunch.1.1.0' });
    const said: string[] = [];
    const r = await runRolloutWorker({ url: nats.url, threads: 1, workerName: 'test-worker-s', maxJobs: 1, say: (l) => said.push(l) });
    assert.equal(r.jobs, 1);
    assert.ok(
      said.some((l) => l.includes("dropped job rstale.1.1.0 of launch oldlaunch (the run's trainer is now launch newlaunch)")),
      said.join('; '),
    );
    const results = await (await jetstreamManager(nc)).streams.info(RESULTS_STREAM, { subjects_filter: 'papo.result.rstale.>' });
    assert.equal(Object.keys(results.state.subjects ?? {}).length, 0, 'no result was published');
  } finally {
    await nc.close();
  }
});

test("a worker without the run's reward refuses its jobs, and the trainer stops with an error naming the worker and the job", async () => {
  const stop = new AbortController();
  const worker = runRolloutWorker({ url: nats.url, threads: 1, workerName: 'test-worker-r', signal: stop.signal }).catch((err: Error) => err);
  try {
    const reward = defineReward('reward-only-the-trainer-has', () => ({ overall: 0, accuracy: 0, format: 0 }));
    await assert.rejects(
      runTrain(config(path.join(tmp, 'unknown-reward'), 0, 'nats'), { quiet: true, noSave: true, reward }),
      /the result of job r[0-9a-f]+\.1\.1\.\d \(launch [0-9a-f]+\) from worker test-worker-r: the worker could not run it: reward 'reward-only-the-trainer-has' is not registered in this worker/,
    );
  } finally {
    stop.abort();
    assert.ok(!((await worker) instanceof Error), 'the worker goes on after refusing a job');
  }
});

test("a worker told other threads than the trainer's runs with them and says once that the log-probs' last bits may differ", async () => {
  const stop = new AbortController();
  const said: string[] = [];
  const worker = runRolloutWorker({ url: nats.url, threads: 2, workerName: 'test-worker-t', signal: stop.signal, say: (l) => said.push(l) }).catch(
    (err: Error) => err,
  );
  try {
    await runTrain(config(path.join(tmp, 'other-threads'), 0, 'nats'), { quiet: true, noSave: true });
  } finally {
    stop.abort();
  }
  assert.ok(!((await worker) instanceof Error));
  const lines = said.filter((l) => l.includes('threads'));
  assert.equal(lines.length, 1, said.join('\n'));
  assert.match(
    lines[0],
    /^papo worker test-worker-t: runs its engine with 2 threads \(--threads\), the trainer of run r[0-9a-f]+ with 1 \(worker\.rollout\.threads\): its log-probs may differ/,
  );
});

test('with no worker, the round fails after result_timeout_s naming the shards pending', async () => {
  const cfg = config(path.join(tmp, 'no-worker'), 0, 'nats');
  (cfg.worker!.rollout!.nats as { result_timeout_s: number }).result_timeout_s = 1;
  await assert.rejects(runTrain(cfg, { quiet: true, noSave: true }), /no rollout worker returned a result for 1 s .*2 of 2 shards of step 1 round 1 pending/);
});

test('credentials never go in the NATS url', async () => {
  await assert.rejects(connectNats({ url: 'nats://me:secret@127.0.0.1:4222' }), /credentials do not go in the URL; set PAPO_NATS_TOKEN/);
});
