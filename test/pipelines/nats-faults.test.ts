/**
 * Faults of a run with its rollouts on NATS workers (servers of the tests' own), each run ending bit for bit as
 * the same run with its shards computed in process (test/pipelines/same-run.ts):
 * - dynamic sampling (papo_d, several rounds per step) with a 3 s ack wait: a worker process SIGKILLed in the
 *   middle of its first shard (its job is redelivered and computed elsewhere), workers joining mid-run (three
 *   at once), a shard slower than the ack wait kept by heartbeats (not redelivered), a copy of a result
 *   injected under another Nats-Msg-Id (dropped);
 * - a `papo train` process going on through the NATS server restarting mid-run, then SIGKILLed waiting for
 *   its jobs and continued with `papo train --resume`: the jobs and a result of the dead launch are dropped,
 *   the workers' consumer, deleted meanwhile, is created again by the workers that join.
 * - a job waiting for weights that never come keeps its lease (heartbeats) past the ack wait, and is dropped
 *   when the run's trainer is replaced.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { initTf } from '../../util/tf-backend.ts';
import { importExtension } from '../../util/user-module.ts';
import { runTrain } from '../../pipelines/train.ts';
import { runRolloutWorker } from '../../pipelines/rollout-worker.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { connectNats } from '../../storage/nats-connection.ts';
import { encodeJob, encodeResult } from '../../operators/shard-messages.ts';
import { setCurrentLaunch } from '../../storage/nats-weights.ts';
import { JOBS_STREAM, jobSubject, openBroker, RESULTS_STREAM, resultSubject, WORKERS_CONSUMER } from '../../storage/rollout-broker.ts';
import { makeRecords, promptBatch } from '../operators/fakes.ts';
import { deleteConsumer, startNatsServer, type TestNatsServer } from '../nats-server.ts';
import { assertSameRun } from './same-run.ts';
import { TINY_POLICY, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// imported as papo --import does, so that the trainer's reward has the identity (sha256 of this module) the
// worker processes, which import it with --import, have too
const faultModule = (await importExtension('test/pipelines/nats-fault-reward.ts', ROOT)).exports as typeof import('./nats-fault-reward.ts');
const { FAULT_REWARD, slowNextCall, slowCalls } = faultModule;

let tmp: string;
let weights: string;
const servers: TestNatsServer[] = [];
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-nats-faults-'));
  // before any reward pool starts: its threads take the environment they start with
  process.env.PAPO_TEST_SLOW_REWARD = path.join(tmp, 'slow-reward');
});
after(async () => {
  for (const s of servers) await s.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function server(): Promise<TestNatsServer> {
  const s = await startNatsServer();
  servers.push(s);
  return s;
}

function config(
  run: string,
  url: string,
  o: { preset: string; reward?: string; steps: number; staleness: number; ackWaitS: number; backend: 'local' | 'nats' },
): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: o.preset },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } },
      rollout: { n: 2, threads: 1, shard_size: 2, backend: o.backend, nats: { url, result_timeout_s: 20, ack_wait_s: o.ackWaitS } },
      ...(o.reward ? { reward: { score_function: o.reward } } : {}),
    },
    trainer: {
      max_steps: o.steps,
      max_staleness: o.staleness,
      save_freq: 1,
      save_limit: 0,
      test_before_and_after: false,
      save_checkpoint_path: run,
    },
  } as TrainConfigInput;
}

/** The lines of the run's log.jsonl records, one per record. */
const logOf = (run: string) => {
  try {
    const lines = fs.readFileSync(path.join(run, 'log.jsonl'), 'utf8').split('\n').filter(Boolean);
    return lines.map((l) => String((JSON.parse(l) as { msg?: unknown }).msg ?? '')).join('\n');
  } catch {
    return '';
  }
};

const stepsLogged = (run: string) => {
  try {
    return fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

/** Each of these tests takes under a minute on two cores: a condition not met in 5 minutes is a failure, named. */
const UNTIL_MS = 300_000;

async function until(what: string, cond: () => boolean | Promise<boolean>, failed?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + UNTIL_MS;
  while (!(await cond())) {
    const why = failed?.();
    if (why) throw new Error(`while waiting for ${what}: ${why}`);
    if (Date.now() > deadline) throw new Error(`waited ${UNTIL_MS / 1000} s for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `papo [...args]` as a child process, its stderr kept. */
function papo(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/papo.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, PAPO_DEBUG: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const p = { child, stderr: '', exit: new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))) };
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderr += d));
  return p;
}

interface InProcessWorker {
  said: string[];
  done: Promise<{ jobs: number } | Error>;
}

function worker(url: string, name: string, signal: AbortSignal): InProcessWorker {
  const said: string[] = [];
  const done = runRolloutWorker({ url, threads: 1, workerName: name, signal, say: (l) => said.push(l), progressEveryS: 1 }).then(
    (r) => r,
    (err: Error) => err,
  );
  return { said, done };
}

async function localRun(name: string, o: { preset: string; reward?: string; steps: number; staleness: number; ackWaitS: number }) {
  const run = path.join(tmp, name);
  await runTrain(config(run, 'nats://127.0.0.1:1', { ...o, backend: 'local' }), { quiet: true });
  return run;
}

test('dynamic sampling over NATS: a worker SIGKILLed mid-shard, workers joining mid-run (W = 3), a shard slower than the ack wait, an injected duplicate result; ends as in process', async () => {
  const o = { preset: 'papo_d', reward: FAULT_REWARD, steps: 3, staleness: 1, ackWaitS: 3 };
  const local = await localRun('local-papo_d', o);
  const nats = await server();
  const remote = path.join(tmp, 'nats-papo_d');
  const died = path.join(tmp, 'worker-died');
  const stop = new AbortController();
  const workers: InProcessWorker[] = [];
  let killed: ReturnType<typeof papo> | undefined;
  const nc = await connectNats({ url: nats.url });
  try {
    // a worker process that SIGKILLs itself in the reward of its first shard, holding the job
    killed = papo(['--import', 'test/pipelines/nats-fault-reward.ts', 'worker', '--nats', nats.url, '--threads', '1', '--name', 'doomed'], {
      PAPO_TEST_DIE_ON_REWARD: died,
    });
    const k = killed;
    await until(
      'the doomed worker to start',
      () => k.stderr.includes('waiting for shard jobs'),
      () => (k.child.exitCode !== null ? k.stderr : undefined),
    );
    const training = runTrain(config(remote, nats.url, { ...o, backend: 'nats' }), { quiet: true }).then(
      (r) => r,
      (err: Error) => err,
    );
    // the run ending first (the worker refused the job, say) is a failure, not a wait for ever
    const first = await Promise.race([k.exit.then((code) => ({ code })), training.then((r) => ({ r }))]);
    if ('r' in first) throw first.r instanceof Error ? first.r : new Error(`the run ended before the doomed worker died: ${k.stderr}`);
    assert.equal(first.code, null, 'the doomed worker was killed by a signal');
    assert.ok(fs.existsSync(died), 'it died in the reward, in the middle of a shard');
    assert.equal(k.child.signalCode, 'SIGKILL');
    // no worker for a while: the trainer says so, once, with the shards pending (after result_timeout_s / 10)
    await until('the trainer to say it waits', () => logOf(remote).includes('waiting for rollout workers'));
    workers.push(worker(nats.url, 'w0', stop.signal));
    // a copy of the first result after step 1, under another Nats-Msg-Id
    let injected = 0;
    const js = jetstream(nc);
    const sub = nc.subscribe('papo.result.>', {
      callback: (_err, m) => {
        if (injected === 0 && stepsLogged(remote) >= 1) {
          injected++;
          void js.publish(m.subject, m.data, { msgID: 'injected-duplicate' });
        }
      },
    });
    await until('step 1', () => stepsLogged(remote) >= 1);
    // two more workers join; the next reward call in this process takes 4.5 s, past the 3 s ack wait
    workers.push(worker(nats.url, 'w1', stop.signal), worker(nats.url, 'w2', stop.signal));
    slowNextCall(4500);
    const r = await training;
    if (r instanceof Error) throw r;
    sub.unsubscribe();
    stop.abort();
    const done = await Promise.all(workers.map((w) => w.done));
    for (const d of done) if (d instanceof Error) throw d;
    await assertSameRun(local, remote);

    const said = workers.flatMap((w) => w.said);
    // progress: a run's first job is said, then a line at most every progressEveryS while jobs come in
    assert.ok(
      said.some((l) => /^papo worker w0: run r[0-9a-f]+ \(trainer launch [0-9a-f]+\): working from step \d+$/.test(l)),
      said.join('\n'),
    );
    assert.ok(
      said.some((l) => /^papo worker w\d: run r[0-9a-f]+ step \d+: \d+ jobs done, \d+ in the last \d+ s \(busy \d+%\)$/.test(l)),
      said.join('\n'),
    );
    const again = said.filter((l) => l.includes(' times (a worker stopped'));
    assert.equal(again.length, 1, `only the killed worker's job was delivered again: ${again.join('; ')}`);
    assert.match(again[0], /job r[0-9a-f]+\.1\.1\.0 delivered 2 times/);
    assert.equal(slowCalls(), 1, 'a shard was slower than the ack wait');
    const jsm = await jetstreamManager(nc);
    const jobs = (await jsm.streams.info(JOBS_STREAM)).state.last_seq;
    assert.ok(jobs > 2 * o.steps, `dynamic sampling took more than one round in some step (${jobs} jobs for ${o.steps} steps of 2 shards)`);
    assert.equal(
      done.reduce((n, d) => n + (d as { jobs: number }).jobs, 0),
      jobs,
      'the live workers computed every job once: the slow shard was not redelivered',
    );
    assert.equal(injected, 1);
    const log = logOf(remote);
    assert.equal(log.match(/waiting for rollout workers: 2 of 2 shards of step 1 round 1 pending/g)?.length, 1, 'said once');
    assert.match(log, /dropped a second result of job r[0-9a-f]+\.\d+\.\d+\.\d+/);
    assert.equal((await jsm.streams.info(RESULTS_STREAM)).state.last_seq, jobs + 1, 'the injected copy was stored beside the results');
  } finally {
    stop.abort();
    killed?.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.done));
    await nc.close();
  }
});

test('a NATS server restarted mid-run, the trainer SIGKILLed and resumed, the workers consumer deleted: ends as in process', async () => {
  const o = { preset: 'papo_g', steps: 4, staleness: 0, ackWaitS: 2 };
  const local = await localRun('local-papo_g', o);
  const nats = await server();
  const remote = path.join(tmp, 'nats-resumed');
  const cfgFile = path.join(tmp, 'nats-resumed.json');
  fs.writeFileSync(cfgFile, JSON.stringify(config(remote, nats.url, { ...o, backend: 'nats' })));
  const stop = new AbortController();
  const workers = [worker(nats.url, 'w0', stop.signal), worker(nats.url, 'w1', stop.signal)];
  const later = new AbortController();
  let trainer: ReturnType<typeof papo> | undefined;
  const nc = await connectNats({ url: nats.url });
  try {
    trainer = papo(['train', '--config', cfgFile]);
    const t = trainer;
    const gone = () => (t.child.exitCode !== null ? `papo train exited: ${t.stderr}` : undefined);
    await until('step 1', () => stepsLogged(remote) >= 1, gone);
    await nats.restart();
    await until('step 2', () => stepsLogged(remote) >= 2, gone);
    // the workers leave; the trainer's next jobs stay in the queue, and it is killed waiting for them
    stop.abort();
    for (const d of await Promise.all(workers.map((w) => w.done))) if (d instanceof Error) throw d;
    const jsm = await jetstreamManager(nc);
    await until("the next step's jobs", async () => (await jsm.streams.info(JOBS_STREAM)).state.messages >= 1, gone);
    t.child.kill('SIGKILL');
    assert.equal(await t.exit, null);
    assert.ok(stepsLogged(remote) < o.steps, 'killed before the end');
    const [, run, dead] = /\(run (r[0-9a-f]+), launch ([0-9a-f]+),/.exec(t.stderr) ?? [];
    assert.ok(run && dead, t.stderr);
    const left = Object.keys((await jsm.streams.info(JOBS_STREAM, { subjects_filter: '>' })).state.subjects ?? {});
    const step = Number(left[0]?.split('.')[3]);
    assert.ok(left.length >= 1 && step > 2 && step <= o.steps, left.join(', '));
    // a result of the dead launch that would stop the run if it were used
    const ghost = encodeResult({ run, launch: dead, step, round: 1, shard: 0 }, 'ghost', { error: 'a result of the dead launch' });
    await jetstream(nc).publish(resultSubject(run, step, 1, 0), ghost, { msgID: 'ghost-result' });

    trainer = papo(['train', '--config', cfgFile, '--resume']);
    const t2 = trainer;
    await until(
      'the resumed trainer to mark its launch',
      () => /\(run r[0-9a-f]+, launch [0-9a-f]+,/.test(t2.stderr),
      () => (t2.child.exitCode !== null ? t2.stderr : undefined),
    );
    workers.push(worker(nats.url, 'w2', later.signal), worker(nats.url, 'w3', later.signal));
    // the workers' consumer lost under the workers: they create it again
    await until('the workers to start', () => workers.slice(2).every((w) => w.said.length > 0));
    await deleteConsumer(jsm, JOBS_STREAM, WORKERS_CONSUMER);
    const code = await t2.exit;
    assert.equal(code, 0, t2.stderr);
    later.abort();
    for (const d of await Promise.all(workers.map((w) => w.done))) if (d instanceof Error) throw d;
    await assertSameRun(local, remote);

    const said = workers.flatMap((w) => w.said).join('\n');
    assert.match(said, /NATS: consumer workers of PAPO_JOBS was missing; created it again/);
    // every job the dead launch left is dropped (more than once if a drop's ack was lost with the consumer)
    const dropped = new Set([...said.matchAll(new RegExp(`dropped job ${run}\\.(${step}\\.1\\.\\d) of launch ${dead}`, 'g'))].map((m) => m[1]));
    assert.deepEqual([...dropped].sort(), left.map((s) => s.split('.').slice(3).join('.')).sort(), said);
    assert.match(logOf(remote), new RegExp(`dropped the result of job ${run}\\.${step}\\.1\\.0 of launch ${dead}`));
  } finally {
    stop.abort();
    later.abort();
    trainer?.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.done));
    await nc.close();
  }
});

test("a job waiting for its weights keeps its lease past the ack wait, and is dropped when the run's trainer is replaced", async () => {
  const nats = await server();
  const nc = await connectNats({ url: nats.url });
  try {
    const broker = await openBroker(nc, { ackWaitS: 1 });
    await setCurrentLaunch(broker, 'rwait', 'old');
    const batch = promptBatch({ records: makeRecords(1, { height: 28, width: 56 }) });
    const segment = { sample: { n: 1 }, reward: {}, reference: false };
    // version 7 of the run is never published
    const job = encodeJob({
      run: 'rwait',
      launch: 'old',
      step: 1,
      round: 1,
      shard: 0,
      version: 7,
      segment,
      reward: 'composite',
      rewardId: 'builtin:composite',
      policy: TINY_POLICY,
      batch,
    });
    await broker.js.publish(jobSubject('rwait', 1, 1, 0), job, { msgID: 'rwait.old.1.1.0' });
    const said: string[] = [];
    const stop = new AbortController();
    const running = runRolloutWorker({ url: nats.url, threads: 1, workerName: 'w-wait', maxJobs: 1, signal: stop.signal, say: (l) => said.push(l) }).then(
      (r) => r,
      (err: Error) => err,
    );
    // a failed check still lets the worker go: the launch changes and the signal aborts
    const release = async () => {
      await setCurrentLaunch(broker, 'rwait', 'new');
      stop.abort();
      return running;
    };
    try {
      const jsm = await jetstreamManager(nc);
      const info = () => jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER);
      await until('the worker to take the job', async () => (await info()).num_ack_pending === 1);
      // another puller of the workers' consumer gets nothing for 2.5 ack waits: the job is not redelivered
      const other = await jetstream(nc).consumers.get(JOBS_STREAM, WORKERS_CONSUMER);
      assert.equal(await other.next({ expires: 2500 }), null);
      const held = await info();
      assert.equal(held.num_ack_pending, 1);
      assert.equal(held.delivered.consumer_seq, 1, 'delivered once');
      assert.deepEqual(await release(), { jobs: 1 });
      assert.ok(
        said.some((l) => l.includes("dropped job rwait.1.1.0 of launch old (the run's trainer is now launch new)")),
        said.join('; '),
      );
      assert.equal((await info()).num_ack_pending, 0);
    } finally {
      await release();
    }
  } finally {
    await nc.close();
  }
});
