import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });

test('papo sft then papo eval: a config file, flags, weights on disk, a per-family report', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-cli-'));
  const cfg = path.join(dir, 'sft.yaml');
  fs.writeFileSync(
    cfg,
    'data:\n  train_batch_size: 4\nworker:\n  actor:\n    model:\n      override_config: { dModel: 16, nHeads: 2, nLayers: 1 }\n    optim:\n      lr: 0.002\n',
  );
  const out = path.join(dir, 'run');
  const sft = papo(['sft', '--config', cfg, '--steps', '3', '--out', out, '--families', 'sum,text-sum', '--engine', 'tfjs']);
  assert.equal(sft.status, 0, sft.stderr);
  assert.match(sft.stderr, /sft: 3 steps in .*, final loss \d/);
  assert.ok(fs.existsSync(path.join(out, 'weights', 'zarr.json')));
  const log = fs
    .readFileSync(path.join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(log.filter((r) => r.event === 'sft_step').length, 3);
  assert.equal(log.find((r) => r.event === 'sft_start').trainer, 'tfjs');
  const json = path.join(dir, 'report.json');
  const ev = papo(['eval', '--weights', path.join(out, 'weights'), '--limit', '6', '--k', '2', '--json', json]);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /^digits \/ test: 6 prompts, policy version 3/m);
  assert.match(ev.stdout, /^vision-dependent +\d+ /m);
  assert.match(ev.stdout, /^ {2}text-sum /m);
  assert.doesNotMatch(ev.stdout, /^ {2}read /m, 'eval defaults to the families the weights were trained on');
  const report = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.equal(report.records, 6);
  assert.equal(report.sampled.k, 2);
});

test('bad flags and bad files are one-line errors with exit code 1', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-cli-'));
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'trainer:\n  max_steps: -3\n');
  const r1 = papo(['sft', '--config', bad]);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /papo: invalid sft config: trainer\.max_steps: /);
  const r2 = papo(['sft', '--size', 'huge']);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /--size must be one of small, base, large/);
  const r4 = papo(['sft', '--engine', 'gpu']);
  assert.equal(r4.status, 1);
  assert.match(r4.stderr, /'--engine <name>' argument 'gpu' is invalid. Allowed choices are auto, ort, tfjs/);
  const r5 = spawnSync(process.execPath, [path.resolve('bin/papo.js'), 'eval'], { encoding: 'utf8', cwd: dir, env: { ...process.env, PAPO_DEBUG: '' } });
  assert.equal(r5.status, 1);
  assert.match(
    r5.stderr,
    /^papo: no weights at runs\/sft\/weights \(where papo sft writes them\) and no papo train run in runs\/train: train one, or pass --weights DIR/,
  );
  // after the main job: the papo train run is what a bare papo eval evaluates
  fs.mkdirSync(path.join(dir, 'runs', 'train', 'checkpoints'), { recursive: true });
  const r6 = spawnSync(process.execPath, [path.resolve('bin/papo.js'), 'eval'], { encoding: 'utf8', cwd: dir, env: { ...process.env, PAPO_DEBUG: '' } });
  assert.match(r6.stderr, /^papo eval: no runs\/sft\/weights \(papo sft's weights\); evaluating the papo train run in runs\/train\n/);
  assert.equal(r6.status, 1, 'a run directory without a complete checkpoint is still an error');
  const r3 = papo(['eval', '--weights', path.join(dir, 'none')]);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /papo: policy weights: .* does not exist/);
});

test('papo sft and eval on a user JSONL manifest', async () => {
  const { PNG } = await import('pngjs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-manifest-'));
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const png = new PNG({ width: 40, height: 20 });
    png.data.fill(20 * i);
    fs.writeFileSync(path.join(dir, `im${i}.png`), PNG.sync.write(png));
    const a = i % 5;
    lines.push(
      JSON.stringify({
        image: `im${i}.png`,
        question: `What is ${a}+1?`,
        answer: String(a + 1),
        demonstration: `<think>${a}+1=${a + 1}</think><answer>${a + 1}</answer>`,
        split: i < 8 ? 'train' : 'test',
      }),
    );
  }
  fs.writeFileSync(path.join(dir, 'data.jsonl'), lines.join('\n'));
  const out = path.join(dir, 'run');
  const sft = papo([
    'sft',
    '--task',
    'manifest',
    '--manifest',
    path.join(dir, 'data.jsonl'),
    '--size',
    'small',
    '--steps',
    '2',
    '--batch-size',
    '4',
    '--out',
    out,
  ]);
  assert.equal(sft.status, 0, sft.stderr);
  const ev = papo(['eval', '--weights', path.join(out, 'weights'), '--k', '1']);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /manifest.* \/ test: 4 prompts/);
});

test('papo --version prints the package version', () => {
  const r = papo(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
});
