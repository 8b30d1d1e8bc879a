/**
 * The scale-out over NATS JetStream, side by side in one run, bounded in time (a NATS server of its own):
 *
 * 1. Overhead: the default `papo train` config for a few steps in process (unsharded, and with
 *    `shard_size`), then through NATS with 1 and 2 `papo worker` processes on this machine: median seconds
 *    per step over steps 2..N and the medians of the `dist/` figures.
 * 2. Weight broadcast: MB/s of an object-store put and get (encode + SHA-256 + store, read + check +
 *    decode) for the default policy and for single arrays of the given sizes (MB).
 * 3. Scale on paper: `--sim-workers` simulated workers (bench/nats-sim-worker.ts: `--sim-procs` processes
 *    on loopback) that sleep for the per-shard time measured in 1 and answer with a real result, fed by the
 *    trainer's own runner (operators/remote-rollouts.ts: real jobs, every result decoded and checked), in
 *    rounds of one shard per worker: shards/s with no sleep (the trainer-side limit) and with the
 *    measured sleep, and the CPU the NATS server used.
 *
 *   node --import tsx bench/nats-scaleout.ts [--steps 6] [--rounds 1] [--shard 16] [--sizes 50,500] [--sim-workers 64]
 *     [--sim-procs 8] [--sim-seconds 15] [--parts 1,2,3]
 *
 * `--rounds R` runs the four configurations of 1 R times, alternating, and prints the median over rounds of
 * each run's median step (and the spread); `--parts` picks the parts to run.
 *
 * Prints the load average beside the figures: the machine is shared and timings are noisy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastValueFrom, of } from 'rxjs';
import { PolicyEngine } from '../models/engine/engine.ts';
import { remoteRollouts } from '../operators/remote-rollouts.ts';
import { rolloutSegment } from '../operators/rollout-segment.ts';
import { encodeResult } from '../operators/shard-messages.ts';
import { splitShards } from '../operators/shards.ts';
import { openReward } from '../pipelines/reward-function.ts';
import { runTrain } from '../pipelines/train.ts';
import { trainConfig } from '../pipelines/train-config.ts';
import { rolloutSegmentOptions } from '../pipelines/train-setup.ts';
import { connectNats } from '../storage/nats-connection.ts';
import { getWeights, putWeights } from '../storage/nats-weights.ts';
import { loadPolicyWeights } from '../storage/policy-weights.ts';
import { openBroker } from '../storage/rollout-broker.ts';
import { warmStartPath } from '../storage/warm-start.ts';
import { makeRecords, promptBatch } from '../test/operators/fakes.ts';
import { startNatsServer } from '../test/nats-server.ts';
import { initTf } from '../util/tf-backend.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: a } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '1' },
    parts: { type: 'string', default: '1,2,3' },
    shard: { type: 'string', default: '16' },
    sizes: { type: 'string', default: '50,500' },
    'sim-workers': { type: 'string', default: '64' },
    'sim-procs': { type: 'string', default: '8' },
    'sim-seconds': { type: 'string', default: '15' },
  },
});
const steps = Number(a.steps);
const rounds = Number(a.rounds);
const parts = new Set((a.parts ?? '').split(',').map(Number));
if (!(Number.isInteger(steps) && steps >= 2)) throw new Error(`--steps: ${a.steps}, expected an integer of at least 2`);
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds: ${a.rounds}, expected a positive integer`);
const shardSize = Number(a.shard);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : Number.NaN;
};
const say = (line: string) => process.stdout.write(`${line}\n`);

await initTf();
const nats = await startNatsServer();
const children: ChildProcess[] = [];
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
function spawnChild(args: string[]): { child: ChildProcess; out: Promise<string> } {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PAPO_NATS_TOKEN: '', PAPO_NATS_USER: '' },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  return { child, out: new Promise((resolve) => child.once('exit', (code) => resolve(code === 0 || code === 130 || code === null ? out : `${out}${err}`))) };
}
async function stopChildren(list: { child: ChildProcess; out: Promise<string> }[]): Promise<string[]> {
  for (const c of list) c.child.kill('SIGTERM');
  return Promise.all(list.map((c) => c.out));
}
/** CPU seconds the process has used (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

try {
  // ---- 1. overhead
  say(`# 1. overhead: default config, ${steps} steps, median over steps 2..${steps} (load average ${load()})`);
  const DIST = [
    'dist/workers',
    'dist/queue_wait_s',
    'dist/result_wait_s',
    'dist/worker_busy_s',
    'dist/weight_fetch_s',
    'dist/weight_fetch_mb_per_s',
    'dist/weight_put_s',
  ];
  const configs = [
    ['in process (default)', 0, {}],
    [`in process, shard_size ${shardSize}`, 0, { shard_size: shardSize }],
    ['NATS, 1 worker', 1, { shard_size: shardSize, backend: 'nats', nats: { url: nats.url } }],
    ['NATS, 2 workers', 2, { shard_size: shardSize, backend: 'nats', nats: { url: nats.url } }],
  ] as const;
  // per configuration, one row per round
  const perRound: [string, Record<string, number>][][] = configs.map(() => []);
  const busyPerShard: number[] = [];
  for (let round = 0; round < (parts.has(1) ? rounds : 0); round++)
    for (const [ci, [label, workers, overrides]] of configs.entries()) {
      const ws = Array.from({ length: workers }, (_, i) => spawnChild(['bin/papo.js', 'worker', '--nats', nats.url, '--name', `bench-w${i}`]));
      const loadAt = load();
      const r = await runTrain(
        { worker: { rollout: overrides }, trainer: { max_steps: steps, test_before_and_after: false, save_freq: 0, save_limit: 0 } },
        { quiet: true, noSave: true },
      );
      await stopChildren(ws);
      const measured = r.steps.slice(1);
      const row: Record<string, number> = { 'timing_s/step': median(measured.map((s) => s.metrics['timing_s/step'])) };
      for (const k of ['timing_s/gen', 'timing_s/update_actor', ...DIST]) row[k] = median(measured.map((s) => s.metrics[k]));
      if (workers === 1)
        busyPerShard.push(median(measured.map((s) => (s.metrics['dist/worker_busy_s'] - s.metrics['dist/weight_fetch_s']) / s.metrics['dist/shards'])));
      row['load (1 min)'] = Number(loadAt.split(' ')[0]);
      perRound[ci].push([label, row]);
      if (rounds > 1) say(`round ${round + 1}, ${label}: ${row['timing_s/step'].toFixed(3)} s / step (load ${loadAt})`);
    }
  const shardBusyS = median(busyPerShard);
  if (parts.has(1)) {
    const rows: [string, Record<string, number>][] = perRound.map((runs) => {
      const row: Record<string, number> = {};
      for (const k of Object.keys(runs[0][1])) row[k] = median(runs.map(([, r]) => r[k]));
      const st = runs.map(([, r]) => r['timing_s/step']);
      row['timing_s/step min'] = Math.min(...st);
      row['timing_s/step max'] = Math.max(...st);
      return [runs[0][0], row];
    });
    const keys = Object.keys(rows[2][1]);
    say(`${'figure'.padEnd(28)}${rows.map(([l]) => l.padStart(26)).join('')}`);
    for (const k of keys)
      say(`${k.padEnd(28)}${rows.map(([, r]) => (r[k] === undefined || Number.isNaN(r[k]) ? '-' : r[k].toFixed(3)).padStart(26)).join('')}`);
    const base = rows[1][1]['timing_s/step'];
    say(`overhead of 1 NATS worker vs the same shards in process: ${((rows[2][1]['timing_s/step'] / base - 1) * 100).toFixed(1)}%`);
    say(`overhead of 1 NATS worker vs the default run: ${((rows[2][1]['timing_s/step'] / rows[0][1]['timing_s/step'] - 1) * 100).toFixed(1)}%`);
    say(`worker-seconds per shard of ${shardSize} prompts (busy minus weight fetch): ${shardBusyS.toFixed(3)}`);
  }

  const nc = await connectNats({ url: nats.url, env: {} });
  const broker = await openBroker(nc);
  const warm = await loadPolicyWeights(warmStartPath);
  // ---- 2. weight broadcast
  const putRate: Record<string, number> = {};
  if (parts.has(2)) {
    say(`\n# 2. weight broadcast through the object store (load average ${load()})`);
    const cases: [string, Record<string, Float32Array>][] = [['default policy', warm.params]];
    for (const mb of (a.sizes ?? '').split(',').filter(Boolean).map(Number))
      cases.push([`${mb} MB array`, { w: new Float32Array(Math.round((mb * 1e6) / 4)).fill(0.5) }]);
    say(`${'weights'.padEnd(18)}${'MB'.padStart(10)}${'put s'.padStart(10)}${'put MB/s'.padStart(10)}${'get s'.padStart(10)}${'get MB/s'.padStart(10)}`);
    for (const [label, params] of cases) {
      const name = `bench/${label.replace(/ /g, '_')}`;
      const reps = label === 'default policy' ? 5 : 1;
      let put = 0;
      let get = 0;
      let bytes = 0;
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await putWeights(broker, name, warm.config, i, params);
        const t1 = performance.now();
        const w = await getWeights(broker, name, 3600);
        const t2 = performance.now();
        bytes = w?.bytes ?? 0;
        put += (t1 - t0) / 1000 / reps;
        get += (t2 - t1) / 1000 / reps;
      }
      await broker.weights.delete(name);
      const mb = bytes / 1e6;
      putRate[label] = mb / put;
      say(
        `${label.padEnd(18)}${mb.toFixed(1).padStart(10)}${put.toFixed(3).padStart(10)}${(mb / put).toFixed(0).padStart(10)}${get.toFixed(3).padStart(10)}${(mb / get).toFixed(0).padStart(10)}`,
      );
    }
  }

  // ---- 3. scale on paper
  if (parts.has(3)) {
    const W = Number(a['sim-workers']);
    const procs = Number(a['sim-procs']);
    const seconds = Number(a['sim-seconds']);
    const cfg = trainConfig({});
    const maxNewTokens = warm.config.maxResponseLen;
    const segment = rolloutSegmentOptions(cfg, maxNewTokens);
    // a real result of one shard, re-addressed by the simulated workers
    const round = promptBatch({ records: makeRecords(shardSize * W, { height: warm.config.imageHeight, width: warm.config.imageWidth }) });
    const shards = splitShards(round, shardSize);
    const engine = await PolicyEngine.create(warm.config, { intraOpThreads: 2 });
    await engine.setWeights(warm.params, 0);
    if (segment.reference) await engine.setReferenceWeights(warm.params);
    const reward = await openReward('composite');
    const one = await lastValueFrom(of(shards[0]).pipe(rolloutSegment(engine, reward, segment, () => 0)));
    await engine.close();
    await reward.close();
    const cannedFile = path.join(os.tmpdir(), `papo-sim-result-${process.pid}.bin`);
    const canned = encodeResult({ run: 'x', launch: 'x', step: 0, round: 0, shard: 0 }, 'canned', { shard: { ...one, promptOffset: 0 } });
    fs.writeFileSync(cannedFile, canned);
    say(
      `\n# 3. scale on paper: ${W} simulated workers in ${procs} processes, rounds of ${W} shards of ${shardSize} prompts (a result ~${(canned.length / 1e3).toFixed(0)} KB)`,
    );
    const sim = async (sleepMs: number) => {
      const ws = Array.from({ length: procs }, (_, i) =>
        spawnChild([
          '--import',
          'tsx',
          'bench/nats-sim-worker.ts',
          '--nats',
          nats.url,
          '--connections',
          String(Math.ceil(W / procs)),
          '--sample-ms',
          String(Math.round(sleepMs)),
          '--result',
          cannedFile,
          '--seconds',
          String(seconds * 4 + 60),
          '--name',
          `sim${i}`,
        ]),
      );
      const runner = remoteRollouts({
        broker,
        run: `rsim${Math.round(sleepMs)}`,
        launch: `l${process.pid}`,
        segment,
        reward: 'composite',
        rewardId: 'builtin:composite',
        policy: warm.config,
        versionOf: () => 0,
        maxNewTokens,
        resultTimeoutS: 120,
      });
      // the first round waits for the workers to start: not measured
      let step = 1;
      await runner(shards.map((s) => ({ ...s, step })));
      const cpu0 = cpuSeconds(nats.pid as number);
      const t0 = performance.now();
      let done = 0;
      const queue: number[] = [];
      while (performance.now() - t0 < seconds * 1000) {
        step++;
        await runner(shards.map((s) => ({ ...s, step })));
        done += shards.length;
        const d = runner.stepMetrics(step);
        queue.push(d['dist/queue_wait_s']);
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(nats.pid as number) - cpu0;
      await stopChildren(ws);
      return { rate: done / wall, brokerCores: cpu / wall, queue: median(queue), rounds: step - 1 };
    };
    const sleeps = [0, shardBusyS * 1000].filter(Number.isFinite);
    say(`${'simulated sampling'.padEnd(22)}${'shards/s'.padStart(10)}${'rounds'.padStart(8)}${'queue s'.padStart(10)}${'broker cores'.padStart(14)}  load`);
    for (const ms of sleeps) {
      const r = await sim(ms);
      say(
        `${`${(ms / 1000).toFixed(3)} s / shard`.padEnd(22)}${r.rate.toFixed(1).padStart(10)}${String(r.rounds).padStart(8)}${r.queue.toFixed(3).padStart(10)}${r.brokerCores.toFixed(2).padStart(14)}  ${load()}`,
      );
    }
    fs.rmSync(cannedFile, { force: true });
  }
  await nc.close();
  if (parts.has(2))
    say(
      `\nput MB/s of the largest array: ${Object.values(putRate).at(-1)?.toFixed(0)} (a 14 GB version at that rate: ${(14e3 / (Object.values(putRate).at(-1) ?? 1)).toFixed(0)} s)`,
    );
} finally {
  for (const c of children) c.kill('SIGTERM');
  await nats.stop();
}
