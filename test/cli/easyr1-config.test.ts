import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { tinyPolicyInTmp } from '../pipelines/tiny-run.ts';
import { ValGenerationsLog } from '../../pipelines/val-generations.ts';
import { eventFiles, readEventFile } from '../../storage/tensorboard.ts';
import { exportDataset } from '../../tasks/loader/dataset-export.ts';
import { ManifestTask } from '../../tasks/loader/manifest-task.ts';

const ROOT = process.cwd();
const env = { ...process.env, PAPO_DEBUG: '' };
const papo = (args: string[], cwd: string) => spawnSync(process.execPath, [path.join(ROOT, 'bin/papo.js'), ...args], { cwd, encoding: 'utf8', env });

/** A JSONL manifest of 8 training and 4 validation prompts (`What is a+1?`) with their images. */
function writeManifest(dir: string): void {
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const png = new PNG({ width: 56, height: 28 });
    png.data.fill(20 * i);
    fs.writeFileSync(path.join(dir, `im${i}.png`), PNG.sync.write(png));
    lines.push(JSON.stringify({ image: `im${i}.png`, question: `What is ${i % 5}+1?`, answer: String((i % 5) + 1), split: i < 8 ? 'train' : 'validation' }));
  }
  fs.writeFileSync(path.join(dir, 'data.jsonl'), `${lines.join('\n')}\n`);
}

/** A reward in EasyR1's batch form: a list of inputs in, a list of { overall, format, accuracy } out. */
const BATCH_REWARD = `
export function compute_score(inputs) {
  if (!Array.isArray(inputs)) throw new Error('expected a list of inputs');
  return inputs.map((x) => {
    const accuracy = x.response.includes(x.answer) ? 1 : 0;
    const format = x.response.length > 0 ? 1 : 0;
    return { overall: 0.9 * accuracy + 0.1 * format, format, accuracy };
  });
}
`;

/** An EasyR1 examples/config.yaml-style run config, shrunk to a tiny run, on parquet files with embedded images. */
const easyR1Yaml = (weights: string) => `
data:
  train_files: parquet/train.parquet
  val_files: parquet/validation.parquet
  prompt_key: problem
  answer_key: answer
  image_key: images
  max_prompt_length: 40
  rollout_batch_size: 4
  max_response_length: 6
  shuffle: true
  seed: 1

algorithm:
  adv_estimator: grpo
  disable_kl: false
  use_kl_loss: true
  kl_penalty: low_var_kl
  kl_coef: 1.0e-2
  online_filtering: false  # dapo filter groups
  filter_key: overall
  filter_low: 0.01
  filter_high: 0.99

worker:
  actor:
    global_batch_size: 2
    micro_batch_size_per_device_for_update: 4
    micro_batch_size_per_device_for_experience: 16
    max_grad_norm: 1.0
    padding_free: true
    dynamic_batching: true
    ulysses_size: 1
    model:
      model_path: ${JSON.stringify(weights)}
      enable_gradient_checkpointing: true
      trust_remote_code: false
      freeze_vision_tower: false
    optim:
      lr: 1.0e-6
      weight_decay: 1.0e-2
      strategy: adamw
      lr_warmup_ratio: 0.0
    fsdp:
      enable_full_shard: true
      enable_cpu_offload: false
      enable_rank0_init: true
    offload:
      offload_params: true
      offload_optimizer: true
  rollout:
    n: 2
    temperature: 1.0
    top_p: 1.0
    gpu_memory_utilization: 0.6
    enforce_eager: false
    enable_chunked_prefill: false
    tensor_parallel_size: 2
    threads: 1
  ref:
    fsdp:
      enable_full_shard: true
      enable_cpu_offload: true
    offload:
      offload_params: false
  reward:
    reward_function: ./reward.js:compute_score
    reward_type: batch
    num_workers: 1

trainer:
  total_epochs: 1
  max_steps: null
  project_name: easy_r1
  experiment_name: tiny_grpo
  logger: ["console", "tensorboard"]
  nnodes: 1
  n_gpus_per_node: 8
  max_try_make_batch: 20
  val_freq: 1
  val_before_train: false
  val_generations_to_log: 2
  save_freq: 1
  save_limit: -1
  save_checkpoint_path: null
  find_last_checkpoint: true
  test_before_and_after: false
`;

test('an EasyR1-style config trains a tiny run end to end: mapped keys, GPU keys noted once, steps from total_epochs, the run named', async () => {
  const { tmp, weights } = await tinyPolicyInTmp('papo-easyr1-');
  writeManifest(tmp);
  // the dataset as verl / EasyR1 ship it: parquet, images embedded as HF {bytes, path} structs
  const files = exportDataset(ManifestTask.load(path.join(tmp, 'data.jsonl'), { height: 28, width: 56 }), {
    format: 'parquet',
    out: path.join(tmp, 'parquet'),
    splits: ['train', 'validation'],
  });
  assert.deepEqual(
    files.map((f) => [path.relative(tmp, f.file), f.records]),
    [
      ['parquet/train.parquet', 8],
      ['parquet/validation.parquet', 4],
    ],
  );
  fs.rmSync(path.join(tmp, 'data.jsonl'));
  for (let i = 0; i < 12; i++) fs.rmSync(path.join(tmp, `im${i}.png`));
  fs.writeFileSync(path.join(tmp, 'reward.js'), BATCH_REWARD);
  fs.writeFileSync(path.join(tmp, 'run.yaml'), easyR1Yaml(weights));
  const r = papo(['train', '--config', 'run.yaml'], tmp);
  assert.equal(r.status, 0, r.stderr);
  const run = path.join(tmp, 'runs', 'easy_r1', 'tiny_grpo');
  assert.ok(fs.existsSync(path.join(run, 'config.json')), `the run directory runs/<project_name>/<experiment_name>: ${r.stderr}`);

  // 8 training records / 4 per step x 1 epoch
  const metrics = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(metrics.length, 2);
  assert.match(r.stderr, /trainer\.total_epochs 1: 2 rollout steps \(floor\(8 training records \/ data\.rollout_batch_size 4\) x 1\)/);
  for (const m of metrics.map((l) => JSON.parse(l) as Record<string, number>)) assert.ok(Number.isFinite(m['critic/score/mean']));

  // the GPU keys: one line on the terminal, the same in log.jsonl
  const gpu = r.stderr.split('\n').filter((l) => l.includes('not applying on this backend'));
  assert.equal(gpu.length, 1, r.stderr);
  for (const k of ['trainer.n_gpus_per_node', 'worker.actor.fsdp.*', 'worker.ref.*', 'worker.rollout.tensor_parallel_size', 'worker.actor.padding_free'])
    assert.ok(gpu[0].includes(k), k);
  const log = fs.readFileSync(path.join(run, 'log.jsonl'), 'utf8');
  assert.equal(log.split('\n').filter((l) => l.includes('not applying on this backend')).length, 1);

  // the objective keys were given beside the default preset: what it still supplies is said
  assert.match(
    r.stderr,
    /algorithm: preset papo_g \+ adv_estimator=grpo, .*kl_estimator=k3 \(algorithm\.kl_penalty\).* -> still on from the preset: .*perception_loss_weight 0\.02 \(gamma\)/,
  );

  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  assert.equal(cfg.algorithm.kl_estimator, 'k3');
  assert.equal(cfg.algorithm.kl_coef, 0.01);
  assert.equal(cfg.algorithm.dynamic_sampling, false);
  assert.equal(cfg.algorithm.dynamic_sampling_max_tries, 20);
  assert.ok(path.isAbsolute(cfg.worker.reward.score_function), 'resolved against the config file');
  assert.ok(cfg.worker.reward.score_function.endsWith(`${path.sep}reward.js:compute_score`), cfg.worker.reward.score_function);
  assert.equal(cfg.worker.reward.reward_type, 'batch');
  assert.equal(cfg.trainer.resume_mode, 'auto');
  assert.equal(cfg.trainer.save_limit, 0);
  assert.equal(cfg.trainer.val_generations_to_log, 2);
  assert.equal(cfg.trainer.total_epochs, 1);
  assert.equal(cfg.worker.actor.fsdp, undefined);

  // validation generations: the first 2 validation records at each validation, in the file and as TensorBoard text
  const vals = new ValGenerationsLog(run).read();
  assert.deepEqual(
    vals.map((v) => v.step),
    [1, 2],
  );
  for (const v of vals) {
    assert.equal(v.generations.length, 2);
    assert.deepEqual(
      v.generations.map((g) => g.prompt),
      ['What is 3+1?', 'What is 4+1?'],
      'the same prompts each time: validation records 8 and 9',
    );
    for (const g of v.generations) assert.ok(typeof g.output === 'string' && Number.isFinite(g.score) && g.ground_truth === String(Number(g.prompt[8]) + 1));
  }
  const texts = eventFiles(path.join(run, 'tensorboard')).flatMap((f) => readEventFile(f).events.filter((e) => e.texts));
  assert.deepEqual(
    texts.map((e) => e.step),
    [1, 2],
  );
  assert.match(texts[0].texts?.['val/generations'] ?? '', /^\| id \| prompt \| output \| ground_truth \| score \|\n\|---/);
  assert.match(texts[0].texts?.['val/generations'] ?? '', /\| What is 3\+1\? \|/);
});

test('papo train --config with unknown keys in several sections says all of them at once, before any work', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-easyr1-bad-'));
  try {
    fs.writeFileSync(
      path.join(tmp, 'bad.yaml'),
      'algorithm:\n  kl_coeff: 0.1\n  kl_penalty: full\ntrainer:\n  max_stepz: 3\nworker:\n  rollout:\n    nn: 2\n  reward:\n    reward_function: ./math.py:compute_score\n',
    );
    const r = papo(['train', '--config', 'bad.yaml'], tmp);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    for (const k of [
      'algorithm.kl_coeff: unknown key',
      "algorithm.kl_penalty: 'full'",
      'trainer.max_stepz: unknown key',
      'worker.rollout.nn: unknown key',
      'math.py:compute_score is Python',
    ])
      assert.ok(lines[0].includes(k), k);
    assert.ok(!fs.existsSync(path.join(tmp, 'runs')), 'nothing written');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
