/**
 * Resume from any instant: a `papo train` killed as soon as its run directory appears (or as soon as its
 * log does) is continued by `--resume` with its own config, or refused with a clear message; never replaced
 * by a default run. `config.json` is written before anything else of a run. `papo sft --resume` of a run
 * killed during its first save starts it again; of a finished run, it says so.
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
const env = { ...process.env, PAPO_DEBUG: '' };
let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-start-window-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const overrides = (run: string) => tinyRunOverrides(weights, run, 2);
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
const plantStaleLock = (run: string) => {
  fs.mkdirSync(run, { recursive: true });
  fs.writeFileSync(
    path.join(run, '.lock'),
    JSON.stringify({ pid: deadPid(), host: os.hostname(), started: new Date().toISOString(), command: 'papo train', args: [], token: 'killed' }),
  );
};
const steps = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { step: number }).step);

/** Spawns `papo train`, SIGKILLs it as soon as `appeared()` holds. */
async function killWhen(run: string, appeared: () => boolean): Promise<void> {
  const child = spawn(process.execPath, ['bin/papo.js', 'train', ...overrides(run)], { cwd: ROOT, env, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('close', resolve));
  while (!appeared()) {
    if (child.exitCode !== null) assert.fail('papo train ended before the instant to kill it');
    await new Promise((r) => setImmediate(r));
  }
  child.kill('SIGKILL');
  await exited;
}

/** `papo train --resume run`: continues the killed run's own config, or refuses clearly; never a default run. */
function resumeAfterKill(run: string): 'continued' | 'refused' {
  const r = spawnSync(process.execPath, ['bin/papo.js', 'train', '--resume', run], { cwd: ROOT, env, encoding: 'utf8' });
  assert.doesNotMatch(r.stderr, /starting a new run/);
  if (r.status === 1) {
    assert.match(
      r.stderr,
      new RegExp(`^papo: cannot resume ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: it holds no complete checkpoint and no config.json.*without --resume`),
    );
    assert.ok(!fs.existsSync(path.join(run, 'metrics.jsonl')), 'nothing trained');
    return 'refused';
  }
  assert.equal(r.status, 0, r.stderr);
  const saved = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  assert.equal(saved.trainer.max_steps, 2, "the killed run's config, not the default (80 steps)");
  assert.equal(saved.worker.rollout.n, 2);
  assert.equal(saved.data.rollout_batch_size, 4);
  assert.deepEqual(steps(run), [1, 2]);
  return 'continued';
}

test('killed as its run directory appears, or as its log does, --resume continues its run or refuses; never a default run', { timeout: 180_000 }, async (t) => {
  const a = path.join(tmp, 'killed-at-dir');
  await killWhen(a, () => fs.existsSync(a));
  const outcome = resumeAfterKill(a);
  t.diagnostic(`killed as the directory appeared: --resume ${outcome}`);
  assert.ok(!fs.existsSync(path.join(a, '.lock')), 'the killed start left a stale lock, taken over and released');

  const b = path.join(tmp, 'killed-at-log');
  await killWhen(b, () => fs.existsSync(path.join(b, 'log.jsonl')));
  assert.ok(fs.existsSync(path.join(b, 'config.json')), 'config.json is written before the log');
  assert.equal(resumeAfterKill(b), 'continued');
});

test('the start-up window, deterministically: a stale lock alone is refused by --resume; a saved config alone is run again from step 0', async () => {
  const empty = path.join(tmp, 'lock-only');
  plantStaleLock(empty);
  await assert.rejects(
    runTrain(trainInputFromArgs({ resume: empty }, []), { quiet: true, resumeOnly: true }),
    /cannot resume .*: it holds no complete checkpoint and no config.json, so there is no run to continue/,
  );
  assert.deepEqual(fs.readdirSync(empty), [], 'nothing written, the stale lock taken over and released');
  // a configured directory that does not exist, without a config file: no run to continue, nothing created
  const missing = path.join(tmp, 'missing');
  assert.throws(() => trainInputFromArgs({ resume: true }, [`trainer.save_checkpoint_path=${missing}`]), /^Error: --resume: no run directory at /);
  assert.ok(!fs.existsSync(missing));
  // resume_mode=auto with a full config (papo study's launch) still starts a run in an empty directory
  const fresh = path.join(tmp, 'auto-fresh');
  plantStaleLock(fresh);
  const started = await runTrain(trainInputFromArgs({}, [...overrides(fresh), 'trainer.resume_mode=auto']), { quiet: true, force: true });
  assert.equal(started.steps.length, 2);

  const saved = path.join(tmp, 'config-only');
  plantStaleLock(saved);
  fs.writeFileSync(path.join(saved, 'config.json'), fs.readFileSync(path.join(fresh, 'config.json')));
  const r = await runTrain(trainInputFromArgs({ resume: saved }, []), { quiet: true, resumeOnly: true });
  assert.equal(r.resumedFrom, undefined);
  assert.deepEqual(
    r.steps.map((s) => s.step),
    [1, 2],
  );
  assert.equal(r.config.trainer.save_checkpoint_path, saved);
  assert.deepEqual(
    { ...r.config, trainer: { ...r.config.trainer, save_checkpoint_path: '', resume_mode: '' } },
    {
      ...started.config,
      trainer: { ...started.config.trainer, save_checkpoint_path: '', resume_mode: '' },
    },
  );
});

const sftCfg = (out: string) => ({
  data: { task: 'digits', families: ['text-compare'], train_batch_size: 8 },
  worker: { actor: { model: { override_config: { dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 48, maxResponseLen: 16, seed: 1 } } } },
  trainer: { max_steps: 2, save_freq: 2, save_checkpoint_path: out },
});

test('papo sft: killed during its first save, --resume runs it again (the same weights); finished, --resume says so', async () => {
  const whole = path.join(tmp, 'sft-whole');
  await runSft(sftCfg(whole), { quiet: true });
  const expected = await loadPolicyWeights(path.join(whole, 'weights'));

  // As a kill during the first save leaves it: config.json and log.jsonl, a checkpoint write without its marker.
  const killed = path.join(tmp, 'sft-killed');
  await runSft(sftCfg(killed), { quiet: true });
  fs.rmSync(path.join(killed, 'weights'), { recursive: true });
  fs.rmSync(path.join(killed, 'checkpoints'), { recursive: true });
  fs.mkdirSync(path.join(killed, 'checkpoints', 'step_000002.tmp-99999-abcdef12', 'policy'), { recursive: true });
  fs.writeFileSync(path.join(killed, 'checkpoints', 'step_000002.tmp-99999-abcdef12', 'zarr.json'), '{');
  await assert.rejects(runSft(sftCfg(killed), { quiet: true }), /already holds a run .*continue it with --resume/);
  const again = await runSft({ trainer: { save_checkpoint_path: killed } }, { quiet: true, resume: true });
  assert.equal(again.outcome, 'completed');
  assert.deepEqual(
    again.history.map((h) => h.step),
    [1, 2],
  );
  const got = await loadPolicyWeights(path.join(killed, 'weights'));
  for (const k of Object.keys(expected.params)) assert.deepEqual(got.params[k], expected.params[k], k);

  // finished: --resume says so and how to train longer; nothing changes
  const said: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => said.push(String(s)) > 0) as typeof process.stderr.write;
  let done: Awaited<ReturnType<typeof runSft>>;
  try {
    done = await runSft({ trainer: { save_checkpoint_path: killed } }, { resume: true });
  } finally {
    process.stderr.write = write;
  }
  assert.equal(done.outcome, 'completed');
  assert.deepEqual(done.history, []);
  assert.match(
    said.join(''),
    /is already finished \(2 of 2 steps; weights in .*\); to train longer, start a new warm start from its weights: papo sft --init /,
  );

  // neither a checkpoint nor a saved config: refused, naming what to do
  const bare = path.join(tmp, 'sft-bare');
  fs.mkdirSync(path.join(bare, 'checkpoints'), { recursive: true });
  await assert.rejects(
    runSft({ trainer: { save_checkpoint_path: bare } }, { quiet: true, resume: true }),
    /cannot resume .*: it holds no complete checkpoint and no config.json, so there is no run to continue.*; start the run anew with its config: the same command without --resume and with --force/,
  );
});
