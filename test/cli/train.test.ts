import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = process.cwd();
const env = { ...process.env, PAPO_DEBUG: '' };
const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { cwd: ROOT, encoding: 'utf8', env });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'papo-train-cli-'));
/** The run a user would try first, shrunk: 4 prompts x 2 responses per step, no before/after test. */
const TINY = ['data.rollout_batch_size=4', 'worker.rollout.n=2', 'trainer.test_before_and_after=false'];
const lines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
/** The attributes of the run's latest checkpoint: { step, state: { version, cursor, config, ... } }. */
const latestCheckpoint = (runDir: string) => {
  const name = fs.readFileSync(path.join(runDir, 'checkpoints', 'latest'), 'utf8').trim();
  return JSON.parse(fs.readFileSync(path.join(runDir, 'checkpoints', name, 'zarr.json'), 'utf8')).attributes as {
    step: number;
    kind: string;
    state: { version: number };
  };
};

test('--print-config prints the merged YAML: defaults, --preset, overrides', () => {
  const r = papo(['train', '--print-config', '--preset', 'dapo', 'worker.rollout.n=4', 'worker.actor.optim.lr=1e-5']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^worker:\n {2}actor:/m);
  assert.match(r.stdout, /^ {4}n: 4$/m);
  assert.match(r.stdout, /^ {2}preset: dapo$/m);
  const cfg = parse(r.stdout);
  assert.equal(cfg.worker.rollout.n, 4);
  assert.equal(cfg.worker.actor.optim.lr, 1e-5);
  assert.equal(cfg.algorithm.preset, 'dapo');
  assert.equal(cfg.algorithm.kl_coef, 0);
  assert.equal(cfg.algorithm.dynamic_sampling, true);
  assert.equal(cfg.trainer.max_steps, 80);
  assert.equal(cfg.worker.actor.model.model_path, path.resolve('assets/warm-start'));
  assert.equal(r.stderr, '');
});

test('a bad override is a one-line error before any work; nothing is written', () => {
  const dir = tmp();
  const run = path.join(dir, 'run');
  const r = papo(['train', 'worker.rollout.n=0', `trainer.save_checkpoint_path=${run}`]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^papo: invalid run config: worker\.rollout\.n: Too small.*\n$/);
  assert.equal(r.stdout, '');
  assert.ok(!fs.existsSync(run), 'the run directory is not created');
  // the other config errors are covered in-process by test/pipelines/train-config.test.ts
  const r4 = papo(['train', 'worker.rollout.n']);
  assert.equal(r4.status, 1);
  assert.equal(r4.stderr, "papo: override 'worker.rollout.n' must look like key.path=value\n");
});

test('a missing --config file is an error naming it', () => {
  const dir = tmp();
  const missing = path.join(dir, 'nope.yaml');
  const r = papo(['train', '--config', missing, '--print-config']);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.startsWith(`papo: cannot read config file ${missing}: `), r.stderr);
  assert.match(r.stderr, /ENOENT/);
});

test('--config file plus overrides: the override wins; the printed config reads back as a config file', () => {
  const dir = tmp();
  const cfgFile = path.join(dir, 'run.yaml');
  fs.writeFileSync(
    cfgFile,
    ['algorithm:', '  preset: grpo', '  kl_coef: 0.02', 'worker:', '  rollout:', '    n: 3', '    temperature: 0.7', 'trainer:', '  max_steps: 7', ''].join(
      '\n',
    ),
  );
  const r = papo(['train', '--config', cfgFile, '--print-config', 'worker.rollout.n=5']);
  assert.equal(r.status, 0, r.stderr);
  const cfg = parse(r.stdout);
  assert.equal(cfg.worker.rollout.n, 5, 'the override wins over the file');
  assert.equal(cfg.worker.rollout.temperature, 0.7);
  assert.equal(cfg.trainer.max_steps, 7);
  assert.equal(cfg.algorithm.preset, 'grpo');
  assert.equal(cfg.algorithm.kl_coef, 0.02);
  assert.equal(cfg.algorithm.perception_loss_weight, 0);
  const printed = path.join(dir, 'printed.yaml');
  fs.writeFileSync(printed, r.stdout);
  const again = papo(['train', '--config', printed, '--print-config']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, r.stdout);
});

test('a real run: 2 steps, metrics and weights on disk; the same directory again is refused', () => {
  const dir = tmp();
  const run = path.join(dir, 'run');
  const r = papo(['train', 'trainer.max_steps=2', ...TINY, `trainer.save_checkpoint_path=${run}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /train: completed, 2 steps in /);
  const metrics = lines(path.join(run, 'metrics.jsonl'));
  assert.equal(metrics.length, 2);
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1, 2],
  );
  for (const m of metrics) {
    assert.equal(typeof m['critic/score/mean'], 'number');
    assert.ok(Number.isFinite(m['actor/kl_prcp_loss']), 'PAPO-G by default: the perception loss is logged');
    assert.equal(m['data/groups'], 4);
  }
  const ckpt = latestCheckpoint(run);
  assert.equal(ckpt.kind, 'train');
  assert.equal(ckpt.step, 2);
  assert.equal(ckpt.state.version, 2);
  assert.ok(fs.existsSync(path.join(run, 'rollouts', 'step_000002', 'zarr.json')), 'the rollout log has both steps');
  const saved = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  assert.equal(saved.worker.rollout.n, 2);

  const again = papo(['train', 'trainer.max_steps=2', ...TINY, `trainer.save_checkpoint_path=${run}`]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, new RegExp(`^papo: ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} already holds a run .*--resume.*--force`));
  assert.equal(lines(path.join(run, 'metrics.jsonl')).length, 2, 'the first run is left as it was');
});

test('a real run with a config file whose reward file sits next to it', () => {
  const dir = tmp();
  // .mts: outside a "type": "module" package a .ts file with `export` is not loadable as ESM
  fs.writeFileSync(path.join(dir, 'reward.mts'), 'export const score = () => ({ overall: 0.25, accuracy: 0, format: 1 });\n');
  const cfgFile = path.join(dir, 'run.yaml');
  fs.writeFileSync(
    cfgFile,
    ['worker:', '  reward:', '    score_function: ./reward.mts:score', 'trainer:', `  save_checkpoint_path: ${JSON.stringify(path.join(dir, 'run'))}`, ''].join(
      '\n',
    ),
  );
  const r = papo(['train', '--config', cfgFile, 'trainer.max_steps=1', ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  const [m] = lines(path.join(dir, 'run', 'metrics.jsonl'));
  assert.equal(m['critic/score/mean'], 0.25);
  assert.equal(m['data/zero_variance_groups'], 4, 'a constant reward gives every group zero variance');
  const start = lines(path.join(dir, 'run', 'log.jsonl')).find((l) => l.event === 'train_start');
  assert.equal(start?.reward, 'score');
});

test('SIGINT finishes the steps in flight, saves the weights and exits with 130', { timeout: 120_000 }, async () => {
  const dir = tmp();
  const run = path.join(dir, 'run');
  const metricsFile = path.join(run, 'metrics.jsonl');
  const child = spawn(process.execPath, ['bin/papo.js', 'train', 'trainer.max_steps=200', ...TINY, `trainer.save_checkpoint_path=${run}`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  try {
    // the first step is on disk: training is running and the signal handlers are installed
    const stepsOnDisk = () => (fs.existsSync(metricsFile) ? fs.readFileSync(metricsFile, 'utf8').split('\n').length - 1 : 0);
    while (!done && stepsOnDisk() < 1) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!done, `the run ended before its first step: ${stderr}`);
    child.kill('SIGINT');
    const { code, signal } = await exited;
    assert.equal(signal, null, stderr);
    assert.equal(code, 130, stderr);
  } finally {
    if (!done) child.kill('SIGKILL');
  }
  assert.match(stderr, /SIGINT: finishing the \d+ step\(s\) in flight, then saving a checkpoint and stopping/);
  assert.match(stderr, /train: interrupted, \d+ steps? in /);
  const n = lines(metricsFile).length;
  assert.ok(n >= 1 && n < 200, `${n} steps`);
  assert.match(stderr, /checkpoint of step \d+ \(policy version \d+\) in /);
  assert.equal(latestCheckpoint(run).step, n, 'the checkpoint is that of the last logged step');
});

test('SIGINT during the held-out test after training: the run is complete, exit 0, no advice to resume', { timeout: 180_000 }, async () => {
  const dir = tmp();
  const run = path.join(dir, 'run');
  const args = ['bin/papo.js', 'train', 'trainer.max_steps=1', ...TINY, 'trainer.test_before_and_after=true', 'trainer.test_limit=0', 'trainer.test_k=4'];
  const child = spawn(process.execPath, [...args, `trainer.save_checkpoint_path=${run}`], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  try {
    // the final checkpoint is saved: the test after training (the whole split, with avg@4) is running
    while (!done && !/checkpoint of step 1 /.test(stderr)) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!done, `the run ended before its test: ${stderr}`);
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
  } finally {
    if (!done) child.kill('SIGKILL');
  }
  assert.match(stderr, /SIGINT: training is done and its checkpoint saved; the held-out test after it goes on/);
  assert.match(stderr, /train: completed, 1 step in /);
  assert.doesNotMatch(stderr, /continue with: papo train --resume/);
  assert.equal(latestCheckpoint(run).step, 1);
});
