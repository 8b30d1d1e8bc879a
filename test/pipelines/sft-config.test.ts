/**
 * `papo sft`'s config speaks the run config's keys: a key of the first format is an error naming the key that
 * replaced it, and a run saved with those keys resumes, read in the new ones, to the same weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sftConfig, upgradeSftConfig } from '../../pipelines/sft-config.ts';
import { runSft } from '../../pipelines/sft.ts';
import { trainConfig } from '../../pipelines/train-config.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';
import { DEFAULT_MAX_IMAGE_BYTES } from '../../tasks/loader/limits.ts';

const TINY = { dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 48, maxResponseLen: 16, seed: 1 };

test('keys shared with papo train have its names, nesting and defaults where they mean the same', () => {
  const sft = sftConfig();
  const train = trainConfig();
  for (const k of ['task', 'task_seed', 'allow_outside_manifest_dir', 'max_image_bytes', 'max_image_pixels'] as const)
    assert.deepEqual(sft.data[k], train.data[k], k);
  assert.equal(sft.data.max_image_bytes, DEFAULT_MAX_IMAGE_BYTES);
  assert.deepEqual(Object.keys(sft.worker.actor.optim).slice(0, 4), Object.keys(train.worker.actor.optim));
  assert.equal(sft.worker.actor.max_grad_norm, train.worker.actor.max_grad_norm);
  assert.deepEqual(sft.trainer, { max_steps: 300, save_freq: 100, save_checkpoint_path: 'runs/sft' });
  assert.deepEqual(sft.worker.actor.optim, { lr: 1e-3, weight_decay: 0.01, betas: [0.9, 0.999], lr_warmup_steps: 20, min_lr_ratio: 0.1 });
  assert.equal(sftConfig({ data: { manifest: 'x.jsonl' } }).data.task, 'manifest', 'a manifest alone implies the manifest task');
  assert.throws(
    () => sftConfig({ data: { task: 'digits', manifest: 'x.jsonl' } }),
    /data\.manifest is only read by data\.task manifest, but data\.task is digits/,
  );
  assert.throws(() => sftConfig({ trainer: { steps: 3 } }), /invalid sft config: trainer\.steps: unknown key/);
});

test('a key of the first format is an error naming the key that replaced it', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ batchSize: 4 }, /invalid sft config: batchSize is now data\.train_batch_size$/],
    [{ warmupSteps: 4, weightDecay: 0 }, /warmupSteps is now worker\.actor\.optim\.lr_warmup_steps; weightDecay is now worker\.actor\.optim\.weight_decay/],
    [
      { task: { maxImageBytes: 10, allowOutsideManifestDir: true } },
      /task\.maxImageBytes is now data\.max_image_bytes; task\.allowOutsideManifestDir is now data\.allow_outside_manifest_dir/,
    ],
    [{ task: { task: 'digits', seed: 2 } }, /task\.task is now data\.task; task\.seed is now data\.task_seed/],
    [
      { out: 'runs/x', saveEvery: 5, steps: 9 },
      /out is now trainer\.save_checkpoint_path; saveEvery is now trainer\.save_freq; steps is now trainer\.max_steps/,
    ],
    [
      { policy: {}, init: 'w', maxGradNorm: 0, minLrRatio: 0, lr: 1, seed: 1, engine: 'ort' },
      /policy is now worker\.actor\.model\.override_config; init is now worker\.actor\.model\.model_path; maxGradNorm is now worker\.actor\.max_grad_norm; minLrRatio is now worker\.actor\.optim\.min_lr_ratio; lr is now worker\.actor\.optim\.lr; seed is now data\.seed; engine is now worker\.actor\.engine/,
    ],
  ];
  for (const [input, message] of cases) assert.throws(() => sftConfig(input), message);
});

// a config.json as the first format wrote it (every key, defaults filled)
const OLD = (out: string) => ({
  task: { task: 'digits', seed: 0, families: ['text-compare'] },
  policy: TINY,
  steps: 2,
  engine: 'auto',
  batchSize: 8,
  seed: 0,
  lr: 0.005,
  warmupSteps: 1,
  minLrRatio: 0.1,
  weightDecay: 0.01,
  maxGradNorm: 1,
  saveEvery: 2,
  out,
});
const NEW = (out: string) => ({
  data: { families: ['text-compare'], train_batch_size: 8 },
  worker: { actor: { model: { override_config: TINY }, optim: { lr: 0.005, lr_warmup_steps: 1 } } },
  trainer: { max_steps: 2, save_freq: 2, save_checkpoint_path: out },
});

test('upgradeSftConfig reads a config of the first format in the new keys; a new one passes as it is', () => {
  assert.deepEqual(sftConfig(upgradeSftConfig(OLD('runs/a'))), sftConfig(NEW('runs/a')));
  assert.deepEqual(upgradeSftConfig(NEW('runs/a')), NEW('runs/a'));
});

test('a run saved with the first format resumes to the weights of a run in the new one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-sft-config-'));
  const whole = await runSft(NEW(path.join(dir, 'whole')), { quiet: true });
  // stopped before its first checkpoint, its config.json written by the first format
  const old = path.join(dir, 'old');
  fs.mkdirSync(old);
  fs.writeFileSync(path.join(old, 'config.json'), JSON.stringify(OLD(old), null, 2));
  const resumed = await runSft({ trainer: { save_checkpoint_path: old } }, { quiet: true, resume: true });
  assert.equal(resumed.outcome, 'completed');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(old, 'config.json'), 'utf8')), sftConfig(NEW(old)), 'config.json now in the new keys');
  const [a, b] = [await loadPolicyWeights(whole.weightsDir), await loadPolicyWeights(resumed.weightsDir)];
  for (const k of Object.keys(a.params)) assert.deepEqual(b.params[k], a.params[k], k);
  assert.deepEqual(b.meta.task, { task: 'digits', seed: 0, families: ['text-compare'] }, "the weights' meta names the task as papo eval reads it");
});
