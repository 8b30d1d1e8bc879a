/**
 * One writer per run directory: while a `papo train` (new or resumed) runs, a second `papo train` (new,
 * `--resume`, `--force`) or `papo sft` on its directory is refused at once, naming the holder, and the first
 * finishes unharmed (each step once in metrics.jsonl, its own config.json, its checkpoints). Two `papo sft`
 * likewise. The first run is held mid-step by a reward that waits for a gate file, so the test does not race
 * the clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTrain } from '../../pipelines/train.ts';
import { runSft } from '../../pipelines/sft.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';
import { tinyPolicyInTmp, tinyRunOverrides } from '../pipelines/tiny-run.ts';

const ROOT = process.cwd();
let tmp: string;
let weights: string;
let gate: string;
let reward: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-one-writer-'));
  gate = path.join(tmp, 'gate');
  reward = path.join(tmp, 'gated-reward.mts');
  // .mts: outside a "type": "module" package a .ts file with `export` is not loadable as ESM
  fs.writeFileSync(
    reward,
    [
      "import * as fs from 'node:fs';",
      'export const score = async (input: { response: string }) => {',
      '  while (!fs.existsSync(process.env.PAPO_TEST_GATE!)) await new Promise((r) => setTimeout(r, 20));',
      '  return { overall: input.response.length % 2, accuracy: 0, format: 1 };',
      '};',
      '',
    ].join('\n'),
  );
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const env = () => ({ ...process.env, PAPO_DEBUG: '', PAPO_TEST_GATE: gate });
const overrides = (run: string, steps: number) => [
  ...tinyRunOverrides(weights, run, steps),
  `worker.reward.score_function=${JSON.stringify(`${reward}:score`)}`,
  'worker.reward.timeout_ms=300000',
  'trainer.save_freq=1',
];
const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { cwd: ROOT, encoding: 'utf8', env: env() });
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const lines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Starts `papo train args` and resolves once its `n`-th train_start is logged: it holds the lock and waits at the gate. */
async function holder(args: string[], run: string, n: number) {
  fs.rmSync(gate, { force: true });
  const child = spawn(process.execPath, ['bin/papo.js', 'train', ...args], { cwd: ROOT, env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const log = path.join(run, 'log.jsonl');
  const starts = () => (fs.existsSync(log) ? lines(log).filter((l) => l.event === 'train_start').length : 0);
  while (starts() < n) {
    if (child.exitCode !== null) assert.fail(`papo train ended before it started training: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited, stderr: () => stderr };
}

/** The in-process attempt is refused, naming the holder (a wait for the lock would have ended in success, not this error). */
async function refused(attempt: () => Promise<unknown>, pid: number, command = 'papo train') {
  await assert.rejects(
    attempt(),
    new RegExp(`is in use by ${command} \\(pid ${pid} on host ${esc(os.hostname())}, since \\d\\d:\\d\\d:\\d\\d\\); wait for it or stop it$`),
  );
}

test('papo train new, then --resume: every second writer is refused naming the holder; the first finishes unharmed', { timeout: 180_000 }, async () => {
  const run = path.join(tmp, 'run');
  const first = await holder(overrides(run, 3), run, 1);
  const pid = first.child.pid!;
  try {
    const config = fs.readFileSync(path.join(run, 'config.json'), 'utf8');
    // new + new, new + resume (resume_mode auto and --resume), new + --force, train + sft
    await refused(() => runTrain(trainInputFromArgs({}, overrides(run, 3)), { quiet: true }), pid);
    await refused(() => runTrain(trainInputFromArgs({}, [...overrides(run, 3), 'trainer.resume_mode=auto']), { quiet: true }), pid);
    await refused(() => runTrain(trainInputFromArgs({ resume: run }, []), { quiet: true, resumeOnly: true }), pid);
    await refused(() => runTrain(trainInputFromArgs({}, overrides(run, 2)), { quiet: true, force: true }), pid);
    await refused(() => runSft({ trainer: { save_checkpoint_path: run, max_steps: 1 } }, { quiet: true }), pid);
    // ... and from the command line: a one-line error, exit 1
    const second = papo(['train', '--resume', run]);
    assert.equal(second.status, 1);
    assert.match(
      second.stderr,
      new RegExp(`^papo: ${esc(run)} is in use by papo train \\(pid ${pid} on host .*, since \\d\\d:\\d\\d:\\d\\d\\); wait for it or stop it\\n$`),
    );
    assert.equal(fs.readFileSync(path.join(run, 'config.json'), 'utf8'), config, 'nobody else wrote its config');
    assert.ok(!fs.readdirSync(run).some((n) => n.startsWith('previous-')), '--force moved nothing aside');
  } finally {
    fs.writeFileSync(gate, '');
  }
  assert.equal(await first.exited, 0, first.stderr());
  assert.deepEqual(
    lines(path.join(run, 'metrics.jsonl')).map((m) => m.step),
    [1, 2, 3],
  );
  assert.ok(!fs.existsSync(path.join(run, '.lock')), 'released at the end');

  // resume + resume, resume + new
  const resumed = await holder(['--resume', run, 'trainer.max_steps=5'], run, 2);
  try {
    await refused(() => runTrain(trainInputFromArgs({ resume: run }, ['trainer.max_steps=5']), { quiet: true, resumeOnly: true }), resumed.child.pid!);
    const second = papo(['train', ...overrides(run, 3)]);
    assert.equal(second.status, 1);
    assert.match(second.stderr, new RegExp(`^papo: ${esc(run)} is in use by papo train \\(pid ${resumed.child.pid} `));
  } finally {
    fs.writeFileSync(gate, '');
  }
  assert.equal(await resumed.exited, 0, resumed.stderr());
  assert.deepEqual(
    lines(path.join(run, 'metrics.jsonl')).map((m) => m.step),
    [1, 2, 3, 4, 5],
    'each step once',
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8')).trainer.max_steps, 5);
  assert.equal(fs.readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8').trim(), 'step_000005');
  assert.ok(!fs.existsSync(path.join(run, '.lock')));
});

test('papo sft + papo sft, new and resumed: the second is refused naming the first, which finishes unharmed', async () => {
  const out = path.join(tmp, 'sft');
  const cfg = {
    data: { task: 'digits', families: ['text-compare'], train_batch_size: 8 },
    worker: { actor: { model: { override_config: { dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 48, maxResponseLen: 16, seed: 1 } } } },
    trainer: { max_steps: 4, save_freq: 2, save_checkpoint_path: out },
  };
  const stop = new AbortController();
  const first = runSft(cfg, { quiet: true, signal: stop.signal, onStep: (r) => r.step === 2 && stop.abort() });
  await refused(() => runSft(cfg, { quiet: true }), process.pid, 'papo sft');
  await refused(() => runSft({ trainer: { save_checkpoint_path: out } }, { quiet: true, resume: true }), process.pid, 'papo sft');
  await refused(() => runTrain(trainInputFromArgs({}, overrides(out, 1)), { quiet: true }), process.pid, 'papo sft');
  assert.equal((await first).outcome, 'interrupted');
  const rest = runSft({ trainer: { save_checkpoint_path: out } }, { quiet: true, resume: true });
  await refused(() => runSft({ trainer: { save_checkpoint_path: out } }, { quiet: true, resume: true }), process.pid, 'papo sft');
  await refused(() => runSft(cfg, { quiet: true, force: true }), process.pid, 'papo sft');
  const r = await rest;
  assert.equal(r.outcome, 'completed');
  assert.equal(r.resumedFrom, 2);
  assert.equal((await loadPolicyWeights(path.join(out, 'weights'))).meta.step, 4);
  assert.ok(!fs.readdirSync(out).some((n) => n.startsWith('previous-')));
  assert.ok(!fs.existsSync(path.join(out, '.lock')));
});
