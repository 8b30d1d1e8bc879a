/**
 * The reward pool (tasks/rewards/pool.ts) against hostile and careless rewards, each written to a file as a
 * user would: a call that never returns, one that ends its worker, a heap or buffers that grow without end,
 * stray rejections and exceptions. Each becomes a failure of the records concerned (or a one-line report),
 * the other records are scored, and the pool goes on with fresh workers. A well-behaved reward gives what it
 * gives in the calling thread, bit for bit, and never runs there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RewardPool } from '../../tasks/rewards/pool.ts';
import { runReward } from '../../tasks/rewards/runner.ts';
import { defineBatchReward, defineReward, type RewardInput } from '../../tasks/rewards/types.ts';
import { rejectionOf } from '../asserts.ts';

const ROOT = process.cwd();
const TASKS = pathToFileURL(path.join(ROOT, 'tasks/index.ts')).href;
let dir: string;
/** Writes a reward module into the test's directory and returns its path (.mts: an ES module wherever it sits). */
const file = (name: string, lines: string[]) => {
  const p = path.join(dir, `${name}.mts`);
  fs.writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
};
const inputs = (n: number): RewardInput[] => Array.from({ length: n }, (_, i) => ({ id: `rec-${i}`, response: 'x'.repeat(i), answer: String(i % 3) }));
const pools: RewardPool[] = [];
const start = async (spec: string, opts: Partial<Parameters<typeof RewardPool.start>[0]> = {}) => {
  const pool = await RewardPool.start({ spec, workers: 2, maxMemoryMb: 64, onStray: () => undefined, ...opts });
  pools.push(pool);
  return pool;
};

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-reward-pool-'));
});
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The well-behaved reward of these tests: the same function in the calling thread and, as its source, in the files. */
const f = (x: RewardInput) => ({ overall: x.response.length / 7 - (x.answer === '1' ? 0.1 : 0), accuracy: Number(x.answer === '1'), format: 1 / 3 });
const SCORE = String(f);

test('a well-behaved reward: the same results as in the calling thread, bit for bit; its code never runs in the calling thread', async () => {
  const single = file('fine', [
    "import { isMainThread } from 'node:worker_threads';",
    '(globalThis as Record<string, unknown>).papoRewardLoaded = true;',
    `const f = ${SCORE};`,
    'export const score = (x: { response: string; answer: string }) => ({ ...f(x), main: isMainThread ? 1 : 0 });',
    `export const batch = { name: 'batch', mode: 'batch', scoreBatch: (xs: { response: string; answer: string }[]) => xs.map(${SCORE}) };`,
  ]);
  const xs = inputs(37);
  const pool = await start(`${single}:score`);
  assert.equal(pool.name, 'score');
  const got = await pool.run(xs, { timeoutMs: 5000, concurrency: 32 });
  const want = await runReward(
    defineReward('score', (x) => ({ ...f(x), main: 0 })),
    xs,
  );
  assert.deepStrictEqual(got, want);
  assert.equal((globalThis as Record<string, unknown>).papoRewardLoaded, undefined, 'the reward module was not imported here');

  const batch = await start(`${single}:batch`, { workers: 1 });
  assert.equal(batch.mode, 'batch');
  assert.deepStrictEqual(
    await batch.run(xs),
    await runReward(
      defineBatchReward('batch', (ys) => ys.map(f)),
      xs,
    ),
  );
  assert.deepEqual(pool.stats, { timeouts: 0, deaths: 0, strays: 0, replaced: 0 });
});

test('a call that never returns is a timeout of its record; its worker is replaced and the rest are scored', { timeout: 60_000 }, async () => {
  const spin = file('spin', [
    'export const score = (x: { id: string }) => {',
    "  if (x.id === 'rec-2' || x.id === 'rec-5') while (true) {}",
    '  return { overall: 1, accuracy: 1, format: 1 };',
    '};',
    'export const later = async (x: { id: string }) => {',
    '  await new Promise((r) => setTimeout(r, 5));',
    "  if (x.id === 'rec-1') while (true) {}",
    '  return { overall: 1, accuracy: 1, format: 1 };',
    '};',
  ]);
  const pool = await start(`${spin}:score`);
  const t0 = performance.now();
  const run = await pool.run(inputs(8), { timeoutMs: 300, concurrency: 4 });
  assert.deepEqual(
    run.failures.map((f) => [f.id, f.kind]),
    [
      ['rec-2', 'timeout'],
      ['rec-5', 'timeout'],
    ],
  );
  assert.match(run.failures[0].reason, /^no result within 300 ms: the call blocked its reward worker, which was stopped; a fresh worker replaced it$/);
  assert.deepEqual(
    run.results.map((r) => r.overall),
    [1, 1, 0, 1, 1, 0, 1, 1],
  );
  assert.ok(performance.now() - t0 < 20_000, 'the blocked calls are stopped, not waited for');
  assert.equal(pool.stats.timeouts, 2);
  // the replacements take the next batch
  const next = await pool.run(inputs(2), { timeoutMs: 300 });
  assert.equal(next.failures.length, 0);

  // blocked after an await (not inside the call itself): the record whose call was running times out
  const late = await start(`${spin}:later`, { workers: 1 });
  const r2 = await late.run(inputs(3), { timeoutMs: 300, concurrency: 1 });
  assert.deepEqual(
    r2.failures.map((f) => [f.id, f.kind]),
    [['rec-1', 'timeout']],
  );
});

test('a batch reward that never returns: every record of the batch is a timeout', { timeout: 60_000 }, async () => {
  const spin = file('spin-batch', ['export const batch = { name: "b", mode: "batch", scoreBatch: () => { while (true) {} } };']);
  const pool = await start(`${spin}:batch`, { workers: 1 });
  const run = await pool.run(inputs(3), { timeoutMs: 200 });
  assert.deepEqual(
    run.failures.map((f) => f.kind),
    ['timeout', 'timeout', 'timeout'],
  );
});

test('process.exit in a reward ends only its worker: a crashed failure of that record, the others scored', { timeout: 60_000 }, async () => {
  const exit = file('exit', [
    'export const score = (x: { id: string }) => {',
    "  if (x.id === 'rec-3') process.exit(0);",
    '  return { overall: 0.5, accuracy: 1, format: 1 };',
    '};',
  ]);
  const pool = await start(`${exit}:score`);
  const run = await pool.run(inputs(6), { timeoutMs: 5000, concurrency: 2 });
  assert.deepEqual(
    run.failures.map((f) => [f.id, f.kind]),
    [['rec-3', 'crashed']],
  );
  assert.match(run.failures[0].reason, /its reward worker died: it exited \(code 0; process\.exit in a reward ends its worker\); a fresh worker replaced it/);
  assert.deepEqual(
    run.results.map((r) => r.overall),
    [0.5, 0.5, 0.5, 0, 0.5, 0.5],
  );
  assert.equal(pool.stats.deaths, 1);
});

test('a growing heap or growing buffers: the worker is stopped at its cap, the record fails, the process stays bounded', { timeout: 120_000 }, async () => {
  const hungry = file('hungry', [
    'const kept: unknown[] = [];',
    'export const heap = () => {',
    '  for (let i = 0; i < 200_000; i++) kept.push({ i, s: String(i) });',
    '  return { overall: 1, accuracy: 1, format: 1 };',
    '};',
    'export const buffers = () => {',
    '  kept.push(Buffer.alloc(48 * 2 ** 20, 1));',
    '  return { overall: 1, accuracy: 1, format: 1 };',
    '};',
    'export const runaway = () => {',
    '  for (;;) kept.push(Buffer.alloc(32 * 2 ** 20, 1));',
    '};',
  ]);
  const rssBefore = process.memoryUsage.rss();
  const heap = await start(`${hungry}:heap`, { workers: 1 });
  const r1 = await heap.run(inputs(12), { timeoutMs: 20_000, concurrency: 1 });
  assert.ok(r1.failures.length >= 1, 'the heap cap was reached');
  for (const f of r1.failures) {
    assert.equal(f.kind, 'crashed');
    assert.match(f.reason, /^its reward worker died: its V8 heap reached worker\.reward\.max_memory_mb; a fresh worker replaced it$/);
  }
  assert.ok(r1.results.filter((r) => r.overall === 1).length >= 6, 'the records before and after each death are scored');

  const buffers = await start(`${hungry}:buffers`, { workers: 1 });
  const r2 = await buffers.run(inputs(8), { timeoutMs: 20_000, concurrency: 1 });
  // 48 MB per call, 64 MB allowed: every second call goes over
  assert.deepEqual(
    r2.failures.map((f) => f.id),
    ['rec-1', 'rec-3', 'rec-5', 'rec-7'],
  );
  assert.match(r2.failures[0].reason, /held more than 64 MB of buffers after this call \(worker\.reward\.max_memory_mb\)/);

  // one call allocating without end: the process-memory guard stops it (2 x 64 MB + 512 MB above the idle level)
  const runaway = await start(`${hungry}:runaway`, { workers: 1 });
  const r3 = await runaway.run(inputs(1), { timeoutMs: 60_000 });
  assert.deepEqual(
    r3.failures.map((f) => f.kind),
    ['crashed'],
  );
  assert.match(r3.failures[0].reason, /the process's memory grew past 640 MB above its level between batches/);
  assert.ok(process.resourceUsage().maxRSS * 1024 < rssBefore + 1.5 * 2 ** 30, `peak RSS ${process.resourceUsage().maxRSS} kB`);
  const settled = process.memoryUsage.rss();
  assert.ok(settled < rssBefore + 512 * 2 ** 20, `the stopped workers' memory is freed (${((settled - rssBefore) / 2 ** 20).toFixed(0)} MB above the start)`);
});

test('a stray rejection or exception of the reward is one line naming the reward, the record and the user file', { timeout: 60_000 }, async () => {
  const stray = file('stray', [
    'export const score = (x: { id: string }) => {',
    "  if (x.id === 'rec-1') Promise.reject(new Error(`nobody awaits me\\n(second line)`));",
    "  if (x.id === 'rec-2') setTimeout(() => { throw new TypeError('thrown from a timer'); }, 1);",
    '  return { overall: 1, accuracy: 1, format: 1 };',
    '};',
  ]);
  const lines: string[] = [];
  const pool = await start(`${stray}:score`, { workers: 1, onStray: (l) => lines.push(l) });
  const run = await pool.run(inputs(4), { timeoutMs: 5000 });
  assert.equal(run.failures.length, 0, 'the calls themselves succeeded');
  for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  lines.sort();
  const at = stray.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(
    lines[0],
    new RegExp(
      `^reward score: record rec-1: a stray unhandled rejection in the reward's code \\(its call's result stands\\): Error: nobody awaits me \\(second line\\) \\(at (file://)?${at}:2:\\d+\\)$`,
    ),
  );
  assert.match(
    lines[1],
    new RegExp(`^reward score: record rec-2: a stray uncaught exception .*: TypeError: thrown from a timer \\(at (file://)?${at}:3:\\d+\\)$`),
  );
  assert.equal(pool.stats.deaths, 0, 'the worker goes on');
});

test('start-up: a reward file that cannot be loaded is an error naming the setting; a reward registered by an --import module is found in the workers', async () => {
  const fine = file('fine2', [`export const score = ${SCORE};`]);
  assert.match(
    (await rejectionOf(RewardPool.start({ spec: `${fine}:scroe`, workers: 1 }))).message,
    /^worker\.reward\.score_function: .*fine2\.mts has no export 'scroe' \(exports: score\)$/,
  );
  const ext = file('ext', [
    `import { defineReward, registerReward } from ${JSON.stringify(TASKS)};`,
    "import { isMainThread } from 'node:worker_threads';",
    "registerReward('pool_test_reward', defineReward('pool_test_reward', () => ({ overall: isMainThread ? -1 : 1, accuracy: 0, format: 0 })));",
  ]);
  const pool = await start('pool_test_reward', { modules: [ext], workers: 1 });
  assert.equal(pool.name, 'pool_test_reward');
  assert.deepEqual(
    (await pool.run(inputs(2))).results.map((r) => r.overall),
    [1, 1],
  );
  assert.match(
    (await rejectionOf(RewardPool.start({ spec: 'not_registered_anywhere', modules: [ext], workers: 1 }))).message,
    /reward 'not_registered_anywhere' is not registered in the reward workers: register it in a module given with --import \(imported: ext\.mts\)/,
  );
});
