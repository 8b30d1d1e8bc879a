/**
 * Command-line mistakes that used to pass silently: each is now an error or a warning before any work.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { PNG } from 'pngjs';
import { registerDataCommands } from '../../cli/data.ts';

const papo = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '', PAPO_LOG_LEVEL: '', ...env } });

let dir = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-bad-input-'));
  const png = new PNG({ width: 8, height: 8 });
  png.data.fill(255);
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'data/a.png'), PNG.sync.write(png));
  fs.writeFileSync(path.join(dir, 'outside.png'), PNG.sync.write(png));
  const rec = (i: number, demo: boolean, image = 'a.png') =>
    JSON.stringify({
      image,
      question: `What is ${i}?`,
      answer: String(i),
      id: `r${i}`,
      ...(demo ? { demonstration: `<think>${i}</think><answer>${i}</answer>` } : {}),
    });
  fs.writeFileSync(path.join(dir, 'data/demos.jsonl'), [rec(1, true), rec(2, false), rec(3, true), rec(4, false)].join('\n'));
  fs.writeFileSync(path.join(dir, 'data/out.jsonl'), rec(1, true, '../outside.png'));
  fs.writeFileSync(path.join(dir, 'data/empty.jsonl'), '\n  \n');
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `papo data ...` in this process: its printed lines and exit code. */
async function data(args: string[]): Promise<{ out: string; code: number }> {
  const program = new Command('papo').exitOverride();
  registerDataCommands(program);
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.configureOutput({ writeErr: () => {} });
  const lines: string[] = [];
  const log = console.log;
  const saved = process.exitCode;
  process.exitCode = 0;
  console.log = (s: string) => void lines.push(s);
  try {
    await program.parseAsync(['data', ...args], { from: 'user' });
    return { out: lines.join('\n'), code: Number(process.exitCode ?? 0) };
  } finally {
    console.log = log;
    process.exitCode = saved;
  }
}

test('check-manifest: an empty manifest exits 1; missing demonstrations are reported (exit 1 with --require-demonstrations)', async () => {
  const empty = await data(['check-manifest', path.join(dir, 'data/empty.jsonl')]);
  assert.equal(empty.code, 1);
  assert.match(empty.out, /0 lines, 0 records loaded, 0 skipped\nno records: .*empty\.jsonl is empty/);
  const demos = await data(['check-manifest', path.join(dir, 'data/demos.jsonl')]);
  assert.equal(demos.code, 0);
  assert.match(demos.out, /^2 of 4 records have no demonstration \(lines 2, 4\): papo sft needs one per record; papo train and eval do not$/m);
  assert.equal((await data(['check-manifest', path.join(dir, 'data/demos.jsonl'), '--require-demonstrations'])).code, 1);
});

test('check-manifest: paths out of the directory need --allow-outside-manifest-dir; limits are flags', async () => {
  const out = await data(['check-manifest', path.join(dir, 'data/out.jsonl')]);
  assert.equal(out.code, 1);
  assert.match(out.out, /outside\.png:1: image path "\.\.\/outside\.png" leaves the manifest's directory/);
  assert.match(out.out, /no records: every line of .* has a problem/);
  assert.equal((await data(['check-manifest', path.join(dir, 'data/out.jsonl'), '--allow-outside-manifest-dir'])).code, 0);
  const px = await data(['check-manifest', path.join(dir, 'data/demos.jsonl'), '--max-image-pixels', '63']);
  assert.equal(px.code, 1);
  assert.match(px.out, /image is 8 x 8 = 64 pixels, over the limit of 63/);
  const bytes = await data(['check-manifest', path.join(dir, 'data/demos.jsonl'), '--max-image-bytes', '10']);
  assert.match(bytes.out, /file is \d+ bytes, over the limit of 10/);
  await assert.rejects(data(['check-manifest', 'x.jsonl', '--max-image-bytes', '-5']), /--max-image-bytes must be at least 1, got '-5'/);
});

test('data commands: --manifest implies the manifest task; with another task it is an error, as are image flags', async () => {
  const manifest = path.join(dir, 'data/demos.jsonl');
  const stats = await data(['stats', '--manifest', manifest, '--json', '--height', '8', '--width', '8']);
  assert.equal(JSON.parse(stats.out).task, `manifest:${manifest}`);
  await assert.rejects(
    data(['stats', '--task', 'digits', '--manifest', manifest]),
    /a manifest \(.*demos\.jsonl\) is only read by task manifest, but the task is digits/,
  );
  await assert.rejects(data(['stats', '--task', 'scenes', '--max-image-pixels', '100']), /maxImagePixels only apply to task manifest, but the task is scenes/);
});

test('papo eval: bad --k, --limit, --json and --task/--manifest are refused before the weights load', () => {
  const none = path.join(dir, 'no-weights');
  const cases: [string[], RegExp][] = [
    [['--k', '-1'], /error: option '--k <n>' argument '-1' is invalid\. --k must be at least 0, got '-1'/],
    [['--limit', '0'], /--limit must be at least 1, got '0'/],
    [['--temperature', '-2'], /papo: --temperature must be >= 0, got -2/],
    [['--json', '/no/such/dir/x.json'], /^papo: --json \/no\/such\/dir\/x\.json: directory \/no\/such\/dir does not exist$/m],
    [['--json', dir], /--json .* is a directory, not a file/],
    [['--task', 'digits', '--manifest', 'x.jsonl'], /^papo: --manifest is only read by --task manifest, not --task digits$/m],
    [['--split', 'dev'], /split must be train, validation or test, got "dev"/],
    [[], /^papo: policy weights: .*no-weights does not exist \(papo sft and papo train write weights to <run dir>\/weights, e\.g\. .*no-weights\/weights\)$/m],
  ];
  for (const [args, want] of cases) {
    const r = papo(['eval', '--weights', none, ...args]);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
});

test('papo eval --split train warns that it is not held out, then evaluates', () => {
  const r = papo(['eval', '--weights', 'assets/warm-start', '--split', 'train', '--limit', '2', '--k', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^papo eval: warning: --split train evaluates records the policy may have been trained on; its accuracy is not held-out$/m);
  assert.match(r.stdout, /digits \/ train: 2 prompts/);
});

test('papo sft: a manifest without demonstrations, or with another task, is refused before training', () => {
  const manifest = path.join(dir, 'data/demos.jsonl');
  const r = papo(['sft', '--manifest', manifest, '--out', path.join(dir, 'sft'), '--steps', '1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^papo: \d of \d training records have no demonstration \(r[24](, r[24])?\): supervised warm start needs one per record$/m);
  assert.ok(!fs.existsSync(path.join(dir, 'sft')), 'nothing written');
  const t = papo(['sft', '--task', 'scenes', '--manifest', manifest]);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /^papo: invalid sft config: data\.manifest is only read by data\.task manifest, but data\.task is scenes$/m);
});

test('an invalid PAPO_LOG_LEVEL is an error naming the variable, before the command runs', () => {
  const r = papo(['data', 'check-manifest', path.join(dir, 'data/demos.jsonl')], { PAPO_LOG_LEVEL: 'loud' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'papo: PAPO_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "loud"\n');
  assert.equal(r.stdout, '');
  assert.equal(papo(['data', 'check-manifest', path.join(dir, 'data/demos.jsonl')], { PAPO_LOG_LEVEL: 'DEBUG' }).status, 0);
});

test("papo eval: a checkpoint's task cannot opt its manifest out of the directory; only the flag can", async () => {
  const { policyConfig } = await import('../../models/config.ts');
  const { initParams } = await import('../../models/params.ts');
  const { savePolicyWeights } = await import('../../storage/policy-weights.ts');
  const config = policyConfig({ dModel: 16, nHeads: 2, nLayers: 1, seed: 1 });
  const weights = path.join(dir, 'ckpt', 'weights');
  const task = { task: 'manifest', manifest: path.join(dir, 'data/out.jsonl'), allowOutsideManifestDir: true };
  await savePolicyWeights(weights, { config, params: initParams(config), meta: { task } });
  const r = papo(['eval', '--weights', weights, '--k', '0']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /image path "\.\.\/outside\.png" leaves the manifest's directory/);
  const allowed = papo(['eval', '--weights', weights, '--k', '0', '--split', 'validation', '--allow-outside-manifest-dir']);
  assert.doesNotMatch(allowed.stderr, /leaves the manifest's directory/);
});
