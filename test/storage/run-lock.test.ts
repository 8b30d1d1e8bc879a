/**
 * The run directory's lock (storage/run-lock.ts): a second writer is refused at once, naming the holder; a
 * lock whose process is gone is taken over, by exactly one of many takers; a live holder's lock, another
 * host's, a link or a file papo did not write is never taken; the lock goes on every way out of a process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireRunLock, LOCK_FILE, runLockHolder, type LockInfo } from '../../storage/run-lock.ts';

const LOCK_MODULE = path.resolve(import.meta.dirname, '../../storage/run-lock.ts');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'papo-lock-'));
const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected an error');
};
/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
const plant = (dir: string, o: Partial<LockInfo>) =>
  fs.writeFileSync(
    path.join(dir, LOCK_FILE),
    JSON.stringify({ pid: deadPid(), host: os.hostname(), started: '2025-01-02T03:04:05.000Z', command: 'papo train', args: [], token: 'planted', ...o }),
  );

/** A node process running `body` with `acquireRunLock` in scope; its stdout lines as they come. */
function child(body: string) {
  const code = `import { acquireRunLock } from ${JSON.stringify(LOCK_MODULE)};\n${body}`;
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    p.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  const said = async (text: string) => {
    while (!out.includes(text)) {
      if (p.exitCode !== null || p.signalCode !== null) assert.fail(`the child ended before saying ${text}: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { p, exit, said };
}

test('one holder: a second taker is refused at once, naming the holder; release frees it; the lock holds pid, host, start and command', () => {
  const dir = path.join(tmp(), 'run');
  const lock = acquireRunLock(dir, { command: 'papo train', args: ['train', '--resume', dir] });
  const info = runLockHolder(dir)!;
  assert.equal(info.pid, process.pid);
  assert.equal(info.host, os.hostname());
  assert.equal(info.command, 'papo train');
  assert.deepEqual(info.args, ['train', '--resume', dir]);
  assert.ok(Math.abs(Date.parse(info.started) - Date.now()) < 60_000);
  const t0 = performance.now();
  assert.match(
    message(() => acquireRunLock(dir, { command: 'papo sft' })),
    new RegExp(
      `^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by papo train \\(pid ${process.pid} on host ${os.hostname()}, since \\d\\d:\\d\\d:\\d\\d\\); wait for it or stop it$`,
    ),
  );
  assert.ok(performance.now() - t0 < 1000, 'refused at once');
  lock.release();
  lock.release();
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)));
  acquireRunLock(dir, { command: 'papo sft' }).release();
  // the directory the lock created, empty again, is gone: a command refused before writing leaves nothing
  assert.ok(!fs.existsSync(dir), 'no temporary or takeover file is left, nor the directory the lock made');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'keep'), 'x');
  acquireRunLock(dir, { command: 'papo sft' }).release();
  assert.deepEqual(fs.readdirSync(dir), ['keep'], 'a directory that was there stays');
});

test('a stale lock (this host, the process gone) is taken over; another host, a link or a foreign file never is', () => {
  const dir = tmp();
  plant(dir, {});
  const lock = acquireRunLock(dir, { command: 'papo train' });
  assert.equal(runLockHolder(dir)?.pid, process.pid);
  lock.release();

  plant(dir, { host: 'elsewhere', pid: 1 });
  const m = message(() => acquireRunLock(dir, { command: 'papo train' }));
  assert.match(m, /is in use by papo train \(pid 1 on host elsewhere, since 2025-01-02 \d\d:\d\d:05\)/);
  assert.match(m, new RegExp(`never taken over: if that run is gone, remove ${path.join(dir, LOCK_FILE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.equal(runLockHolder(dir)?.host, 'elsewhere', 'left as it was');

  // a takeover of that stale lock already under way (its taker alive) is left to it; one whose taker died is not guessed at
  plant(dir, { host: os.hostname(), token: 'stale' });
  const claim = path.join(dir, `${LOCK_FILE}.takeover-stale`);
  fs.writeFileSync(claim, JSON.stringify({ pid: process.ppid, host: os.hostname(), started: new Date().toISOString(), command: 'papo sft', token: 'c' }));
  assert.match(
    message(() => acquireRunLock(dir, { command: 'papo train' })),
    new RegExp(`is being taken over by papo sft \\(pid ${process.ppid} `),
  );
  fs.writeFileSync(claim, JSON.stringify({ pid: deadPid(), host: os.hostname(), started: new Date().toISOString(), command: 'papo sft', token: 'c' }));
  assert.match(
    message(() => acquireRunLock(dir, { command: 'papo train' })),
    /a start that was taking over the stale lock of pid \d+ stopped midway; remove .*\.lock and .*\.lock\.takeover-stale once/,
  );
  fs.rmSync(claim);

  fs.rmSync(path.join(dir, LOCK_FILE));
  const target = path.join(tmp(), 'target');
  fs.writeFileSync(target, 'precious');
  fs.symlinkSync(target, path.join(dir, LOCK_FILE));
  assert.match(
    message(() => acquireRunLock(dir, { command: 'papo train' })),
    /\.lock is a symbolic link, not a lock papo wrote; remove .*\.lock once/,
  );
  assert.equal(fs.readFileSync(target, 'utf8'), 'precious');

  fs.rmSync(path.join(dir, LOCK_FILE));
  fs.writeFileSync(path.join(dir, LOCK_FILE), 'root:x:0:0:root:/root:/bin/bash\n');
  const foreign = message(() => acquireRunLock(dir, { command: 'papo train' }));
  assert.match(foreign, /\.lock is not a lock papo wrote \(unreadable contents\); remove/);
  assert.ok(!foreign.includes('root:x'), 'its contents are not echoed');
});

test('a live process holding the pid keeps the lock; a pid reused by a process started at another time does not', {
  skip: !fs.existsSync('/proc/self/stat'),
}, () => {
  const dir = tmp();
  // pid 1 is alive; a holder that started at another tick than pid 1 did is gone (its pid was reused)
  plant(dir, { pid: 1, proc_start: '1' });
  acquireRunLock(dir, { command: 'papo train' }).release();
  // this very process, but not one of its locks: a previous incarnation (a restarted container reuses pids)
  plant(dir, { pid: process.pid, token: 'an-earlier-life' });
  acquireRunLock(dir, { command: 'papo train' }).release();
  // a live process with no recorded start time: alive, refused
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    plant(dir, { pid: sleeper.pid });
    assert.match(
      message(() => acquireRunLock(dir, { command: 'papo train' })),
      new RegExp(`in use by papo train \\(pid ${sleeper.pid} `),
    );
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('eight processes race for one stale lock: exactly one wins, the others are refused naming it', { timeout: 60_000 }, async () => {
  const dir = tmp();
  plant(dir, {});
  const at = Date.now() + 2500;
  // a winner holds the lock until every taker has tried (on a loaded machine their starts spread over
  // seconds, and a taker starting after a release would rightly win)
  const go = `${dir}.release`;
  const takers = Array.from({ length: 8 }, () =>
    child(`
      const fs = await import('node:fs');
      await new Promise((r) => setTimeout(r, ${at} - Date.now()));
      try {
        acquireRunLock(${JSON.stringify(dir)}, { command: 'papo train' });
        console.log('won');
        while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 20));
      } catch (err) { console.log('refused: ' + err.message); }
    `),
  );
  await Promise.all(takers.map((t) => t.said('\n')));
  fs.writeFileSync(go, '');
  const results = await Promise.all(takers.map((t) => t.exit));
  fs.rmSync(go);
  for (const r of results) assert.equal(r.code, 0, r.err);
  const winners = results.filter((r) => r.out.startsWith('won'));
  assert.equal(winners.length, 1, results.map((r) => r.out).join(''));
  for (const r of results.filter((x) => !x.out.startsWith('won')))
    assert.match(r.out, /^refused: .* is (in use|being taken over) by papo train \(pid \d+ on host /, r.out);
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'the winner released it on exit');
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('released on an uncaught error and on SIGTERM before any handler of the command; a SIGKILLed holder leaves a lock the next start takes', {
  timeout: 60_000,
}, async () => {
  const dir = tmp();
  const hold = `acquireRunLock(${JSON.stringify(dir)}, { command: 'papo train' }); console.log('locked');`;
  const thrower = child(`${hold} setTimeout(() => { throw new Error('boom'); }, 100);`);
  const t = await thrower.exit;
  assert.equal(t.code, 1);
  assert.match(t.err, /boom/);
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'released on the uncaught error');

  const termed = child(`${hold} setTimeout(() => {}, 60000);`);
  await termed.said('locked');
  termed.p.kill('SIGTERM');
  const s = await termed.exit;
  assert.equal(s.signal, 'SIGTERM', 'still dies by the signal');
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'released on SIGTERM');

  const killed = child(`${hold} setTimeout(() => {}, 60000);`);
  await killed.said('locked');
  killed.p.kill('SIGKILL');
  await killed.exit;
  assert.equal(runLockHolder(dir)?.pid, killed.p.pid, 'a SIGKILL leaves the lock');
  acquireRunLock(dir, { command: 'papo train' }).release();
});
