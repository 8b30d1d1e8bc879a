/** The run harness alone, on plain directories: what it writes first, what it refuses, what it logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withRun, type RunOptions } from '../../pipelines/run-harness.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'papo-harness-'));
const logLines = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const options = (dir: string, over: Partial<RunOptions<{ n: number }>> = {}): RunOptions<{ n: number }> => ({
  command: 'test',
  dir,
  resume: 'auto',
  quiet: true,
  settle: () => ({ config: { n: 1 } }),
  ...over,
});

test('config.json is written before the body runs; a body that fails says why in log.jsonl', async () => {
  const dir = tmp();
  try {
    await assert.rejects(
      withRun(options(dir), async () => {
        assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), { n: 1 });
        throw new Error('no engine today');
      }),
      /no engine today/,
    );
    const failed = logLines(dir).find((l) => l.event === 'run_failed');
    assert.equal(failed?.message, 'no engine today');
    assert.ok(!fs.existsSync(path.join(dir, '.lock')), 'the lock is released');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('log.jsonl begins with run_start; a failure while the run opens, after its log, is run_failed there too', async () => {
  const dir = tmp();
  try {
    // a run stopped before its first checkpoint, whose event file holds a record that fails its checksum:
    // rewinding the event files fails after the log is open
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ n: 1 }));
    fs.mkdirSync(path.join(dir, 'tensorboard'));
    const record = Buffer.alloc(20);
    record.writeUInt32LE(4, 0); // length 4, then a wrong length checksum, 4 bytes of data, a wrong data checksum
    fs.writeFileSync(path.join(dir, 'tensorboard', 'events.out.tfevents.1.host.1'), record);
    let ran = false;
    await assert.rejects(
      withRun(options(dir, { metrics: true, tensorboard: true }), async () => {
        ran = true;
      }),
      /events\.out\.tfevents\.1\.host\.1/,
    );
    assert.equal(ran, false);
    const log = logLines(dir);
    assert.equal(log[0].event, 'run_start');
    assert.equal(log[0].command, 'test');
    assert.equal(log.at(-1)!.event, 'run_failed');
    assert.ok(!fs.existsSync(path.join(dir, '.lock')), 'the lock is released');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a saved config.json without a checkpoint restarts the run in place; settle sees it and its notes are logged', async () => {
  const dir = tmp();
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ n: 1 }));
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: 1, version: 1 })}\n`);
    let seen: unknown;
    const restarted = await withRun(
      options(dir, {
        metrics: true,
        settle: (saved) => {
          seen = saved;
          return { config: { n: 1 }, notes: ['a note of the caller'] };
        },
      }),
      async (run) => run.restarted,
    );
    assert.equal(restarted, true);
    assert.deepEqual(seen, { config: { n: 1 }, from: 'its config.json' });
    assert.equal(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'), '', 'metrics after step 0 are rewound');
    const notes = logLines(dir)
      .filter((l) => l.event === 'run_dir')
      .map((l) => l.message);
    assert.ok(notes.includes('a note of the caller'));
    assert.ok(notes.some((n) => /starting its run again from step 0/.test(String(n))));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("resume 'only' refuses a directory with no run; a truncated config.json is named", async () => {
  const dir = tmp();
  try {
    await assert.rejects(
      withRun(options(dir, { resume: 'only' }), async () => assert.fail('no body')),
      /cannot resume .*: it holds no complete checkpoint and no config.json, so there is no run to continue/,
    );
    assert.ok(!fs.existsSync(path.join(dir, 'config.json')), 'nothing written');
    fs.writeFileSync(path.join(dir, 'config.json'), '{"n": ');
    await assert.rejects(
      withRun(options(dir), async () => assert.fail('no body')),
      new RegExp(`${path.join(dir, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON .*restore it, or start over with --force`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stop and abort: listeners hear it once, at once when it already happened', async () => {
  const dir = tmp();
  try {
    const abort = new AbortController();
    await withRun(options(dir, { noSave: true, abort: abort.signal }), async (run) => {
      let heard = 0;
      run.onStop(() => heard++);
      assert.equal(run.stopping, false);
      abort.abort();
      run.stop();
      assert.equal(heard, 1);
      run.onStop(() => heard++);
      assert.equal(heard, 2, 'a late listener hears it at once');
    });
    assert.ok(!fs.existsSync(path.join(dir, 'config.json')), 'noSave writes nothing');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
