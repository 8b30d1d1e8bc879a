import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';

const ROOT = process.cwd();
const env = { ...process.env, PAPO_DEBUG: '' };
const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { cwd: ROOT, encoding: 'utf8', env });

/** A study a user would try first, shrunk: 2 arms x 2 seeds, 1 step of 4 prompts x 2 responses, 30 test prompts. */
function tinyStudy(dir: string, over: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(
    file,
    stringify({
      title: 'tiny',
      base: { 'trainer.max_steps': 1, data: { rollout_batch_size: 4 }, 'worker.rollout.n': 2, trainer: { save_freq: 1 } },
      arms: { grpo: { algorithm: { preset: 'grpo' } }, papo_g: { algorithm: { preset: 'papo_g' } } },
      seeds: [1, 2],
      eval: { limit: 30, k: 2, errors: true },
      stats: { reps: 500 },
      ...over,
    }),
  );
  return file;
}

test('papo study trains every arm x seed, evaluates them alike, compares; a second call trains nothing; a lost result is re-made', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-'));
  const out = path.join(dir, 'out');
  const file = tinyStudy(dir);
  const r = papo(['study', file, '--out', out, '--no-png']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /4 runs \(2 arms x 2 seeds\), 0 already done, 4 to go/);
  assert.match(r.stdout, /papo_g - grpo \(points, paired over seeds\)/);
  for (const arm of ['grpo', 'papo_g'])
    for (const seed of [1, 2]) {
      const run = path.join(out, 'runs', arm, `seed_${seed}`);
      // a normal run directory: its config says its seed and preset
      const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
      assert.equal(cfg.data.seed, seed);
      assert.equal(cfg.algorithm.preset, arm);
      const res = JSON.parse(fs.readFileSync(path.join(out, 'results', arm, `seed_${seed}.json`), 'utf8'));
      assert.equal(res.report.records, 30);
      assert.equal(res.report.sampled.k, 2);
      assert.ok(res.report.errors, 'the greedy failures are classified');
    }
  const a = JSON.parse(fs.readFileSync(path.join(out, 'study.json'), 'utf8'));
  assert.deepEqual(a.missing, []);
  assert.deepEqual(a.comparisons[0].metrics.greedy.overall.seeds, [1, 2]);
  assert.ok(fs.existsSync(path.join(out, 'study.html')));
  // published without checkpoints, the copy remakes the same figures
  const pub = path.join(dir, 'published');
  const published = papo(['study', file, '--out', out, '--analyze', '--no-png', '--publish', pub]);
  assert.equal(published.status, 0, published.stderr);
  assert.ok(!fs.existsSync(path.join(pub, 'runs', 'grpo', 'seed_1', 'checkpoints')));
  const remade = papo(['study', path.join(pub, 'study.yaml'), '--out', pub, '--analyze', '--no-png']);
  assert.equal(remade.status, 0, remade.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(pub, 'study.json'), 'utf8')).comparisons, a.comparisons);
  const metricsBefore = fs.readFileSync(path.join(out, 'runs', 'grpo', 'seed_1', 'metrics.jsonl'), 'utf8');

  const again = papo(['study', file, '--out', out, '--no-png']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /4 already done, 0 to go/);

  fs.rmSync(path.join(out, 'results', 'grpo', 'seed_1.json'));
  const redo = papo(['study', file, '--out', out, '--no-png']);
  assert.equal(redo.status, 0, redo.stderr);
  assert.match(redo.stdout, /3 already done, 1 to go/);
  assert.match(redo.stdout, /grpo seed 1: resuming/);
  // the finished run is not trained again: its metrics are as they were
  assert.equal(fs.readFileSync(path.join(out, 'runs', 'grpo', 'seed_1', 'metrics.jsonl'), 'utf8'), metricsBefore);
  assert.ok(fs.existsSync(path.join(out, 'results', 'grpo', 'seed_1.json')));

  // another study file in the same directory whose arm of the same name is another config: its runs are not reused
  const other = tinyStudy(fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-other-')), { arms: { grpo: { algorithm: { preset: 'grpo', kl_coef: 0 } } } });
  const clash = papo(['study', other, '--out', out, '--no-png']);
  assert.equal(clash.status, 3, clash.stdout + clash.stderr);
  assert.match(clash.stdout, /grpo seed 1 skipped: .*holds a run of another config \(algorithm\.kl_coef: 0\.01 -> 0/);
  assert.match(clash.stdout, /missing runs: 2/);
  assert.equal(fs.readFileSync(path.join(out, 'runs', 'grpo', 'seed_1', 'metrics.jsonl'), 'utf8'), metricsBefore);
});

test('papo study: a bad study file is refused before anything runs, naming the arm and key', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-bad-'));
  const file = tinyStudy(dir, { arms: { grpo: { 'worker.rollout.n': 0 } } });
  const r = papo(['study', file, '--out', path.join(dir, 'out')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /arms\.grpo: .*worker\.rollout\.n/);
  assert.ok(!fs.existsSync(path.join(dir, 'out')));
  const missing = papo(['study', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read config file .*nope\.yaml/);
});

/** `dir/ext.ts`: the test fixture of extensions, its imports pointed at this checkout, in an ES-module package. */
function extensionModule(dir: string): void {
  // the fixture imports the library by relative paths: point them at this checkout
  const src = fs.readFileSync(path.join(ROOT, 'test/fixtures/my-extensions.ts'), 'utf8').replaceAll("'../../", `'${ROOT}/`);
  fs.writeFileSync(path.join(dir, 'ext.ts'), src);
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}');
}

test('papo study stopped by SIGINT stops its run with a checkpoint; the same command finishes it; the modules it imports register the names its arm uses, in every run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-int-'));
  extensionModule(dir);
  const out = path.join(dir, 'out');
  const STEPS = 24;
  const file = tinyStudy(dir, {
    base: { 'trainer.max_steps': STEPS, data: { rollout_batch_size: 4 }, 'worker.rollout.n': 2, trainer: { save_freq: 2 } },
    arms: { max_baseline: { algorithm: { preset: 'grpo', adv_estimator: 'max_baseline' } } },
    seeds: [1],
    compare: [],
    eval: { limit: 10, k: 0, errors: false },
    import: ['./ext.ts'],
  });
  const child = spawn(process.execPath, ['bin/papo.js', 'study', file, '--out', out, '--no-png'], { cwd: ROOT, env });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stdout += d));
  const run = path.join(out, 'runs', 'max_baseline', 'seed_1');
  const log = path.join(out, 'logs', 'max_baseline-seed_1.log');
  // wait until the run has trained a few steps
  for (let i = 0; i < 600; i++) {
    const metrics = path.join(run, 'metrics.jsonl');
    if (fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').split('\n').length > 4) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // a second papo study on the same directory is refused at once, naming the first
  const second = papo(['study', file, '--out', out, '--no-png']);
  assert.equal(second.status, 1, second.stdout + second.stderr);
  assert.match(second.stderr, /is in use by papo study \(pid \d+ on host /);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 130, stdout);
  assert.match(stdout, /stopping the runs in flight/);
  assert.match(stdout, /continue with: papo study/);
  assert.match(fs.readFileSync(log, 'utf8'), /interrupted/);
  assert.ok(!fs.existsSync(path.join(out, 'results', 'max_baseline', 'seed_1.json')));
  const r = papo(['study', file, '--out', out, '--no-png']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /max_baseline seed 1: resuming/);
  const steps = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(
    steps,
    Array.from({ length: STEPS }, (_, i) => i + 1),
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8')).algorithm.adv_estimator, 'max_baseline');
  assert.ok(fs.existsSync(path.join(out, 'results', 'max_baseline', 'seed_1.json')));
});

test('papo study: an arm naming what only a module registers is refused before anything runs when the study does not import it', () => {
  const bare = tinyStudy(fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-noimport-')), {
    arms: { max_baseline: { algorithm: { preset: 'grpo', adv_estimator: 'max_baseline' } } },
    seeds: [1],
  });
  const out = path.join(path.dirname(bare), 'out');
  const refused = papo(['study', bare, '--out', out]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /arms\.max_baseline: .*unknown advantage estimator "max_baseline"/);
  assert.ok(!fs.existsSync(out));
});
