import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { registerDataCommands } from '../../cli/data.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-data-export-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `papo data ...` in this process: its printed lines. */
async function data(args: string[]): Promise<string> {
  const program = new Command('papo').exitOverride();
  registerDataCommands(program);
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.configureOutput({ writeErr: () => {} });
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => void lines.push(s);
  try {
    await program.parseAsync(['data', ...args], { from: 'user' });
    return lines.join('\n');
  } finally {
    console.log = log;
  }
}

test('papo data export writes the splits asked for; stats and preview read them back with --train-files / --val-files', async () => {
  const out = path.join(dir, 'scenes');
  const said = await data(['export', '--task', 'scenes', '--format', 'jsonl', '--out', out, '--split', 'train', 'test', '--limit', '5']);
  assert.match(said, /wrote .*train\.jsonl: 5 scenes records \(train\)\nwrote .*test\.jsonl: 5 scenes records \(test\)/);
  assert.deepEqual(fs.readdirSync(out).sort(), ['images', 'test.jsonl', 'train.jsonl']);
  const stats = await data(['stats', '--train-files', path.join(out, 'train.jsonl'), '--val-files', path.join(out, 'test.jsonl'), '--split', 'test', '--json']);
  assert.equal(JSON.parse(stats).size, 5);
  await data(['preview', '--train-files', path.join(out, 'train.jsonl'), '--n', '4', '--out', path.join(dir, 'sheet.png')]);
  assert.ok(fs.statSync(path.join(dir, 'sheet.png')).size > 0);
  await assert.rejects(data(['export', '--format', 'csv', '--out', out]), /--format must be parquet or jsonl, got "csv"/);
  await assert.rejects(data(['export', '--out', out, '--split', 'dev']), /dev/);
});

test('papo eval --val-files evaluates exported records as the task itself', async () => {
  const out = path.join(dir, 'digits');
  await data(['export', '--out', out, '--split', 'test', '--limit', '6']);
  const evalOf = (args: string[]) => {
    const r = spawnSync(process.execPath, ['bin/papo.js', 'eval', '--weights', 'assets/warm-start', '--k', '0', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => /^(overall|vision-dependent|general) /.test(l));
  };
  const fromFiles = evalOf(['--val-files', path.join(out, 'test.parquet')]);
  assert.equal(fromFiles.length, 3);
  assert.match(fromFiles[0], /^overall\s+6\s/);
  assert.deepEqual(fromFiles, evalOf(['--task', 'digits', '--limit', '6']));
});

test('papo data check-dataset lists every problem with its file and row and exits 1; the key flags pick the columns', async () => {
  const out = path.join(dir, 'check');
  await data(['export', '--format', 'jsonl', '--out', out, '--split', 'test', '--limit', '3']);
  const file = path.join(out, 'test.jsonl');
  const rows = fs.readFileSync(file, 'utf8').trim().split('\n');
  const renamed = rows.map((l) => {
    const { problem, ...rest } = JSON.parse(l);
    return JSON.stringify({ question: problem, ...rest });
  });
  fs.writeFileSync(path.join(out, 'keys.jsonl'), `${renamed.join('\n')}\n{"question": "Hi", "answer": "1", "images": ["../../escape.png"]}\n`);
  const saved = process.exitCode;
  try {
    process.exitCode = 0;
    const said = await data(['check-dataset', '--train-files', path.join(out, 'keys.jsonl'), '--prompt-key', 'question']);
    assert.match(said, /keys\.jsonl: row 4: .*leaves the manifest's directory/);
    assert.match(said, /4 rows, 3 records loaded, 1 skipped, 0 filtered/);
    assert.equal(process.exitCode, 1);
    process.exitCode = 0;
    assert.match(await data(['check-dataset', '--train-files', file]), /3 rows, 3 records loaded, 0 skipped/);
    assert.equal(process.exitCode, 0);
  } finally {
    process.exitCode = saved;
  }
  await assert.rejects(data(['stats', '--task', 'digits', '--prompt-key', 'q']), /promptKey only apply to task dataset, but the task is digits/);
});
