/**
 * `papo train` with a hostile or careless reward file, each as a user would write it: a call that never
 * returns, a heap or buffers that grow without end, `process.exit`, stray rejections and exceptions, rewards
 * of +-1e308, and SIGINT while a reward hangs. The run goes on (or stops with a clear error), its exit code
 * says what happened, and the process's memory stays bounded. Tiny runs: 4 prompts x 2 responses a step.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tinyPolicyInTmp, tinyRunOverrides } from '../pipelines/tiny-run.ts';

const ROOT = process.cwd();
let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-reward-isolation-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const lines = (file: string) =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
/** The run's reward_failures events, flattened to the first failure of each. */
const failureEvents = (run: string) => lines(path.join(run, 'log.jsonl')).filter((l) => l.event === 'reward_failures');
const metrics = (run: string) => lines(path.join(run, 'metrics.jsonl')) as Record<string, number>[];
const sum = (run: string, key: string) => metrics(run).reduce((a, m) => a + (m[key] ?? 0), 0);
const latestStep = (run: string) => {
  const name = fs.readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8').trim();
  return (JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', name, 'zarr.json'), 'utf8')).attributes as { step: number }).step;
};
/** Record ids end with their index: the reward files below pick records by it. */
const INDEX = "Number(x.id.split('/').pop())";

interface Train {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  run: string;
  /** the highest resident memory of the papo process seen (kB; 0 where /proc is not readable) */
  peakRssKb: number;
  seconds: number;
}

/**
 * `papo train` of a tiny run with the reward file `lines` (its export `score`); `during` runs once the
 * process started, with it.
 */
async function train(
  name: string,
  rewardLines: string[],
  overrides: string[],
  during?: (child: ReturnType<typeof spawn>, run: string) => Promise<void>,
): Promise<Train> {
  const reward = path.join(tmp, `${name}.mts`);
  fs.writeFileSync(reward, `${rewardLines.join('\n')}\n`);
  const run = path.join(tmp, `run-${name}`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      'bin/papo.js',
      'train',
      ...tinyRunOverrides(weights, run, 2),
      `worker.reward.score_function=${JSON.stringify(`${reward}:score`)}`,
      'trainer.save_freq=1',
      ...overrides,
    ],
    { cwd: ROOT, env: { ...process.env, PAPO_DEBUG: '', PAPO_TEST_DIR: tmp }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  let peakRssKb = 0;
  const poll = setInterval(() => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peakRssKb = Math.max(peakRssKb, kb);
    } catch {
      // gone, or no /proc here
    }
  }, 50);
  try {
    await during?.(child, run);
    const { code, signal } = await exited;
    return { code, signal, stderr, run, peakRssKb, seconds: (performance.now() - t0) / 1000 };
  } finally {
    clearInterval(poll);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

test('a reward that never returns on some records: those are timeouts, the run goes on and completes', { timeout: 180_000 }, async () => {
  const r = await train(
    'spin',
    [
      'export const score = (x: { id: string; response: string }) => {',
      `  if (${INDEX} % 2 === 0) while (true) {}`,
      '  return { overall: x.response.length / 10, accuracy: 0, format: 1 };',
      '};',
    ],
    ['worker.reward.timeout_ms=300', 'trainer.max_reward_failure_rate=1'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /train: completed, 2 steps in /);
  assert.equal(metrics(r.run).length, 2);
  const events = failureEvents(r.run);
  assert.ok(events.length > 0, 'some records spun');
  for (const e of events) {
    assert.deepEqual(Object.keys(e.kinds as object), ['timeout']);
    assert.match(
      (e.first as { reason: string }).reason,
      /^no result within 300 ms: the call blocked its reward worker, which was stopped; a fresh worker replaced it$/,
    );
  }
  assert.equal(
    sum(r.run, 'reward/failures'),
    events.reduce((a, e) => a + (e.failures as number), 0),
  );
  assert.match(r.stderr, /reward score: step \d: \d+ of 8 calls failed \(timeout; first: record \S+: no result within 300 ms/);
});

test('a reward whose heap or buffers grow without end: its workers are replaced, failures counted, the process stays bounded', {
  timeout: 180_000,
}, async () => {
  const r = await train(
    'hungry',
    [
      'const kept: unknown[] = [];',
      'export const score = (x: { id: string }) => {',
      // many separate arrays, a leak's usual shape: Node stops the worker at its heap cap (one array grown past
      // the cap can abort the whole process instead, Node issue 47224: the README says so)
      `  if (${INDEX} % 2 === 0) for (let i = 0; i < 400; i++) kept.push(Array.from({ length: 1000 }, (_, j) => ({ i, j })));`,
      '  else kept.push(Buffer.alloc(128 * 2 ** 20, 1));',
      '  return { overall: 0.5, accuracy: 0, format: 1 };',
      '};',
    ],
    ['worker.reward.max_memory_mb=64', 'trainer.max_steps=3', 'trainer.max_reward_failure_rate=1'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /train: completed, 3 steps in /);
  assert.ok(sum(r.run, 'reward/failures') > 0);
  const reasons = failureEvents(r.run).map((e) => (e.first as { reason: string }).reason);
  for (const why of reasons) assert.match(why, /V8 heap reached worker\.reward\.max_memory_mb|held more than 64 MB of buffers/);
  // kept, 24 calls would hold ~1.5 GB of buffers on top of the run's own memory
  if (r.peakRssKb > 0) assert.ok(r.peakRssKb < 1.4 * 2 ** 20, `peak RSS ${(r.peakRssKb / 2 ** 10).toFixed(0)} MB`);
});

test('a reward that calls process.exit: failures counted, the run is not ended, its exit code and checkpoint say it completed', {
  timeout: 180_000,
}, async () => {
  const r = await train(
    'exit',
    [
      'let calls = 0;',
      'export const score = () => {',
      '  if (++calls === 3) process.exit(0);',
      '  return { overall: calls / 10, accuracy: 0, format: 1 };',
      '};',
    ],
    // the failures are the point here: the failure-rate stop is tested on its own
    ['trainer.max_reward_failure_rate=1'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /train: completed, 2 steps in /);
  assert.equal(metrics(r.run).length, 2, 'both steps ran');
  assert.equal(latestStep(r.run), 2, 'the final checkpoint is written');
  assert.ok(sum(r.run, 'reward/failures') >= 2, 'each worker exits at its third call');
  for (const e of failureEvents(r.run)) assert.match((e.first as { reason: string }).reason, /it exited \(code 0; process\.exit in a reward ends its worker\)/);
});

test('stray rejections and exceptions of a reward are one line each, naming the reward, the record and the user file', { timeout: 180_000 }, async () => {
  const r = await train(
    'stray',
    [
      'export const score = (x: { id: string }) => {',
      `  if (${INDEX} % 2 === 0) Promise.reject(new Error('nobody awaits this'));`,
      "  else setTimeout(() => { throw new RangeError('thrown later'); }, 1);",
      '  return { overall: 0.25, accuracy: 0, format: 1 };',
      '};',
    ],
    [],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /train: completed, 2 steps in /);
  const file = path.join(tmp, 'stray.mts').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const said = r.stderr.split('\n').filter((l) => l.includes('a stray'));
  assert.ok(said.length >= 3, r.stderr);
  for (const l of said)
    assert.match(
      l,
      new RegExp(
        `^warning: reward score: record digits/train/\\d+: a stray (unhandled rejection|uncaught exception) in the reward's code \\(its call's result stands\\): (Error: nobody awaits this|RangeError: thrown later) \\(at (file://)?${file}:\\d+:\\d+\\)( \\(further ones in log\\.jsonl only\\))?$`,
      ),
    );
  // (the start-up line naming the TensorFlow.js backend aside)
  const rest = r.stderr
    .split('\n')
    .filter((l) => !l.includes('TensorFlow.js backend'))
    .join('\n');
  assert.doesNotMatch(rest, /node_modules|tfjs|backend-wasm/, 'nothing of the library or its dependencies is blamed');
  const logged = lines(path.join(r.run, 'log.jsonl')).filter((l) => l.event === 'reward_stray');
  assert.equal(logged.length, 16, 'every call strayed once, each in log.jsonl');
  assert.equal(sum(r.run, 'reward/failures'), 0, 'the calls themselves succeeded');
});

test('rewards of +-1e308 are failures; steps whose every update is skipped stop the run with a clear error', { timeout: 180_000 }, async () => {
  const r = await train(
    'huge',
    ['export const score = (x: { id: string }) => ({', `  overall: ${INDEX} % 2 === 0 ? 1e308 : -1e308,`, '  accuracy: 0,', '  format: 1,', '});'],
    ['trainer.max_steps=6', 'trainer.max_consecutive_skipped_steps=2', 'trainer.max_reward_failure_rate=1'],
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^papo: stopping: the last 2 steps \(to step 2\) trained nothing, every optimizer step skipped: every reward call failed \(step 2: all 8; first: record digits\/train\/\d+: overall is -?1e\+308, beyond the bound of \+-1000000 \(rewards are float32; rescale it\)\)\. trainer\.max_consecutive_skipped_steps=2 allows that many in a row/m,
  );
  const m = metrics(r.run);
  assert.equal(m.length, 2, 'stopped after the second such step');
  for (const s of m) {
    assert.equal(s['reward/failures'], 8);
    assert.equal(s['actor/optimizer_steps'], 0);
    assert.ok(s['actor/skipped_steps'] > 0);
    assert.equal(s['critic/score/max'], 0, 'failed rewards score 0');
  }
});

test("a reward that throws: said within one step with the record and reason, the run stopped by max_reward_failure_rate; the test before is the verifier's", {
  timeout: 180_000,
}, async () => {
  const r = await train(
    'throws',
    ['export const score = (x: { id: string }) => {', "  throw new TypeError('cannot parse the answer of ' + x.id);", '};'],
    ['trainer.max_steps=4', 'trainer.test_before_and_after=true', 'trainer.test_limit=4'],
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^the held-out test and validation are scored by the task's verifier, composite\S+, not by the training reward score \(trainer\.test_reward=score_function/m,
  );
  assert.match(r.stderr, /^before: held-out test greedy accuracy \S+ overall, .* \(4 prompts; no reward call failed \(4 calls\)\)$/m);
  assert.match(r.stderr, /^reward score: step 1: 8 of 8 calls failed \(threw; first: record (digits\/train\/\d+): threw: cannot parse the answer of \1/m);
  assert.match(
    r.stderr,
    /^papo: stopping: 8 of 8 reward calls failed over step 1 \(100\.0%\), above trainer\.max_reward_failure_rate=0\.5 \(taken over the last trainer\.reward_failure_window=5 steps\): threw 8 \(first: record digits\/train\/\d+: threw: cannot parse/m,
  );
  assert.equal(metrics(r.run).length, 1, 'stopped after the first step');
  assert.equal(latestStep(r.run), 1, "the step's checkpoint stands");
  const log = lines(path.join(r.run, 'log.jsonl'));
  const step = log.find((l) => l.event === 'reward_failures')!;
  assert.deepEqual(step.kinds, { threw: 8 });
  assert.match((step.first_by_kind as { threw: { id: string; reason: string } }).threw.reason, /^threw: cannot parse the answer of digits\/train\/\d+/);
  assert.ok(log.some((l) => l.event === 'reward_failure_rate'));
  assert.match(String(log.find((l) => l.event === 'run_failed')?.message), /^stopping: 8 of 8 reward calls failed/);
  assert.equal(log.find((l) => l.event === 'test_before')?.reward_failures, 0);
});

test('SIGINT while a reward hangs: the step finishes when the call times out, a checkpoint is written, exit 130', { timeout: 180_000 }, async () => {
  const go = path.join(tmp, 'hang-go');
  const hanging = path.join(tmp, 'hang-started');
  const r = await train(
    'hang',
    [
      "import * as fs from 'node:fs';",
      'export const score = () => {',
      `  if (fs.existsSync(${JSON.stringify(go)}) && !fs.existsSync(${JSON.stringify(hanging)})) {`,
      `    fs.writeFileSync(${JSON.stringify(hanging)}, '');`,
      '    while (true) {}',
      '  }',
      '  return { overall: 0.5, accuracy: 0, format: 1 };',
      '};',
    ],
    ['trainer.max_steps=100', 'worker.reward.timeout_ms=3000'],
    async (child, run) => {
      const metricsFile = path.join(run, 'metrics.jsonl');
      while (child.exitCode === null && metrics(run).length < 1) await new Promise((res) => setTimeout(res, 100));
      assert.ok(fs.existsSync(metricsFile), 'the run trained a step');
      fs.writeFileSync(go, '');
      while (child.exitCode === null && !fs.existsSync(hanging)) await new Promise((res) => setTimeout(res, 20));
      await new Promise((res) => setTimeout(res, 300));
      child.kill('SIGINT');
    },
  );
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /SIGINT: finishing the \d+ step\(s\) in flight, then saving a checkpoint and stopping/);
  assert.match(r.stderr, /train: interrupted, \d+ steps? in /);
  const n = metrics(r.run).length;
  assert.ok(n >= 2 && n < 100, `${n} steps`);
  assert.equal(latestStep(r.run), n, 'the checkpoint is that of the last logged step');
  const timedOut = failureEvents(r.run).filter((e) => (e.kinds as Record<string, number>).timeout);
  assert.equal(timedOut.length, 1, 'the hung call is the one timeout');
});
