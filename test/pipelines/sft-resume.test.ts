/**
 * `papo sft` checkpoints: stopped after a step (as Ctrl-C does) and resumed, the warm start ends with the
 * weights of an uninterrupted one, bit for bit; an --out that holds a run or a user's files loses nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSft } from '../../pipelines/sft.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';
import { CheckpointStore } from '../../storage/checkpoints.ts';

const TINY = { dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 48, maxResponseLen: 16, seed: 1 };
const cfg = (out: string, steps = 6, lr = 5e-3) => ({
  data: { task: 'digits', families: ['text-compare'], train_batch_size: 8 },
  worker: { actor: { model: { override_config: TINY }, optim: { lr, lr_warmup_steps: 2 } } },
  trainer: { max_steps: steps, save_freq: 2, save_checkpoint_path: out },
});

test('stopped after step 3 and resumed, the warm start ends bit-identical to an uninterrupted one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-sft-resume-'));
  const whole = await runSft(cfg(path.join(dir, 'whole')), { quiet: true });
  assert.equal(whole.outcome, 'completed');
  const stop = new AbortController();
  const part = await runSft(cfg(path.join(dir, 'part')), { quiet: true, signal: stop.signal, onStep: (r) => r.step === 3 && stop.abort() });
  assert.equal(part.outcome, 'interrupted');
  assert.equal(part.history.length, 3);
  assert.equal(await new CheckpointStore(path.join(dir, 'part')).latest(), 'step_000003', 'a checkpoint of the last step on stopping');
  assert.ok(!fs.existsSync(path.join(dir, 'part', 'weights')), 'final weights only once finished');
  const rest = await runSft({ trainer: { save_checkpoint_path: path.join(dir, 'part') } }, { quiet: true, resume: true });
  assert.equal(rest.resumedFrom, 3);
  assert.deepEqual(
    rest.history.map((h) => h.step),
    [4, 5, 6],
  );
  assert.deepEqual(
    rest.history.map((h) => h.loss),
    whole.history.slice(3).map((h) => h.loss),
  );
  const [a, b] = [await loadPolicyWeights(path.join(dir, 'whole', 'weights')), await loadPolicyWeights(path.join(dir, 'part', 'weights'))];
  for (const k of Object.keys(a.params)) assert.deepEqual(b.params[k], a.params[k], k);
});

test("an --out holding a run is refused (nothing deleted) unless --force, which moves it aside; a user's files are never touched", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-sft-out-'));
  const out = path.join(dir, 'run');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  await runSft(cfg(out, 2), { quiet: true });
  const before = fs.readFileSync(path.join(out, 'weights', 'zarr.json'), 'utf8');
  await assert.rejects(runSft(cfg(out, 2), { quiet: true }), /already holds a run .*--resume.*--force/);
  assert.equal(fs.readFileSync(path.join(out, 'weights', 'zarr.json'), 'utf8'), before);
  await runSft(cfg(out, 2, 1e-3), { quiet: true, force: true });
  const aside = fs.readdirSync(out).find((n) => n.startsWith('previous-'))!;
  assert.equal(fs.readFileSync(path.join(out, aside, 'weights', 'zarr.json'), 'utf8'), before, 'the earlier run moved, intact');
  assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
  await assert.rejects(runSft(cfg(out, 4, 0.5), { quiet: true, resume: true }), /config differs .*worker\.actor\.optim\.lr: 0\.001 -> 0\.5/s);
});
