import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { configChanges, defaultsLike, trainConfig, taskConfigOf, RESUME_SAFE_KEYS, SHIPPED_WARM_START } from '../../pipelines/train-config.ts';
import { sftConfig } from '../../pipelines/sft-config.ts';
import { applyOverrides } from '../../util/overrides.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { errorOf } from '../asserts.ts';

test('defaults: the EasyR1-shaped document with PAPO-G and the shipped warm start', () => {
  const c = trainConfig();
  assert.equal(c.data.task, 'digits');
  assert.equal(c.data.rollout_batch_size, 32);
  assert.equal(c.data.seed, 1);
  assert.equal(c.data.val_split, 'validation');
  assert.equal(c.worker.actor.model.model_path, SHIPPED_WARM_START);
  assert.ok(path.isAbsolute(SHIPPED_WARM_START) && fs.existsSync(path.join(SHIPPED_WARM_START, 'zarr.json')), "the package's warm start, from any directory");
  assert.equal(c.worker.actor.global_batch_size, 16);
  assert.equal(c.worker.actor.optim.lr, 2e-5);
  assert.deepEqual(c.worker.actor.optim.betas, [0.9, 0.999]);
  assert.equal(c.worker.rollout.n, 8);
  assert.equal(c.worker.rollout.temperature, 0.7);
  assert.equal(c.worker.reward.score_function, 'composite');
  assert.equal(c.trainer.max_steps, 80);
  assert.equal(c.trainer.save_checkpoint_path, 'runs/train');
  assert.equal(c.trainer.test_before_and_after, true);
  assert.equal(c.algorithm.preset, 'papo_g');
  assert.equal(c.algorithm.perception_loss_weight, 0.02);
  assert.equal(c.algorithm.kl_coef, 0.01);
  assert.equal(c.algorithm.mask_ratio, 0.6);
  assert.deepEqual(trainConfig(undefined), c);
  assert.deepEqual(trainConfig(null), c);
});

test('a partial section keeps the defaults of its siblings', () => {
  const c = trainConfig({ worker: { rollout: { n: 4 } }, trainer: { max_steps: 3 } });
  assert.equal(c.worker.rollout.n, 4);
  assert.equal(c.worker.rollout.top_p, 1);
  assert.equal(c.worker.actor.optim.lr, 2e-5);
  assert.equal(c.worker.reward.concurrency, 32);
  assert.equal(c.trainer.max_steps, 3);
  assert.equal(c.trainer.val_limit, 250);
});

test('configs do not share default objects: mutating one leaves the next at its defaults', () => {
  const a = trainConfig();
  a.worker.actor.optim.lr = 5;
  a.worker.actor.optim.betas[0] = 0.1;
  a.worker.actor.model.model_path = 'elsewhere';
  const b = trainConfig({ worker: {} });
  assert.equal(b.worker.actor.optim.lr, 2e-5);
  assert.deepEqual(b.worker.actor.optim.betas, [0.9, 0.999]);
  assert.equal(b.worker.actor.model.model_path, SHIPPED_WARM_START);
});

test('presets set the objective; explicit algorithm keys override the preset', () => {
  const g = trainConfig({ algorithm: { preset: 'papo_g' } }).algorithm;
  assert.equal(g.perception_loss_weight, 0.02);
  assert.equal(g.kl_coef, 0.01);
  assert.equal(g.entropy_coef_masked, 0.03);
  assert.equal(g.dynamic_sampling, false);
  const d = trainConfig({ algorithm: { preset: 'dapo' } }).algorithm;
  assert.equal(d.preset, 'dapo');
  assert.equal(d.kl_coef, 0);
  assert.equal(d.dynamic_sampling, true);
  assert.equal(d.perception_loss_weight, 0);
  assert.equal(d.clip_ratio_high, 0.28);
  const grpo = trainConfig({ algorithm: { preset: 'grpo' } }).algorithm;
  assert.equal(grpo.perception_loss_weight, 0);
  assert.equal(grpo.kl_coef, 0.01);
  const o = trainConfig({ algorithm: { preset: 'dapo', kl_coef: 0.05, dynamic_sampling: false, mask_ratio: 0.3 } }).algorithm;
  assert.equal(o.kl_coef, 0.05);
  assert.equal(o.dynamic_sampling, false);
  assert.equal(o.mask_ratio, 0.3);
  assert.equal(o.clip_ratio_high, 0.28, 'keys not given stay at the preset');
  assert.equal(trainConfig({ algorithm: { kl_estimator: 'low_var_kl' } }).algorithm.kl_estimator, 'k3', 'verl aliases are accepted');
});

test('errors name the full key path', () => {
  assert.match(errorOf(() => trainConfig({ worker: { rollout: { n: 0 } } })).message, /^invalid run config: worker\.rollout\.n: /);
  assert.match(errorOf(() => trainConfig({ worker: { actor: { optim: { lr: -1 } } } })).message, /^invalid run config: worker\.actor\.optim\.lr: /);
  assert.match(
    errorOf(() => trainConfig({ worker: { actor: { model: { model_path: 3 } } } })).message,
    /^invalid run config: worker\.actor\.model\.model_path: .*string/,
  );
  assert.equal(
    errorOf(() => trainConfig({ data: { task: 'chess' } })).message,
    'invalid run config: data.task: unknown task "chess"; known: digits, scenes, manifest, dataset (add one with registerTask)',
  );
  assert.match(
    errorOf(() => trainConfig({ worker: { reward: { score_function: 'accuracy' } } })).message,
    /^invalid run config: worker\.reward\.score_function: 'accuracy' is neither a registered reward function \(composite; /,
  );
  assert.match(
    errorOf(() => trainConfig({ algorithm: { adv_estimator: 'ppo' } })).message,
    /^invalid run config: algorithm\.adv_estimator: unknown advantage estimator "ppo"; known: grpo, dr_grpo, rloo /,
  );
  assert.match(errorOf(() => trainConfig({ trainer: { max_stepz: 3 } })).message, /^invalid run config: trainer\.max_stepz: unknown key$/);
  assert.match(errorOf(() => trainConfig({ worker: { rollouts: {} } })).message, /^invalid run config: worker\.rollouts: unknown key$/);
  assert.match(errorOf(() => trainConfig({ trainers: {} })).message, /^invalid run config: trainers: unknown key$/);
  assert.match(errorOf(() => trainConfig({ algorithm: { preset: 'ppo' } })).message, /^invalid run config: algorithm\.preset: .*"papo_g"/);
  assert.match(errorOf(() => trainConfig({ algorithm: 3 })).message, /^invalid run config: algorithm: /);
});

test('objective errors are named under algorithm., unknown objective keys too', () => {
  assert.match(errorOf(() => trainConfig({ algorithm: { clip_ratio_low: 2 } })).message, /^invalid run config: algorithm\.clip_ratio_low: Too big/);
  assert.match(errorOf(() => trainConfig({ algorithm: { kl_coef: 'x' } })).message, /^invalid run config: algorithm\.kl_coef: .*number/);
  assert.match(errorOf(() => trainConfig({ algorithm: { bogus: 1 } })).message, /^invalid run config: algorithm\.bogus: unknown key$/);
  assert.match(
    errorOf(() => trainConfig({ algorithm: { dynamic_sampling_min_acc: 0.9, dynamic_sampling_max_acc: 0.5 } })).message,
    /^invalid run config: algorithm\.dynamic_sampling_min_acc: must be below dynamic_sampling_max_acc$/,
  );
  const both = errorOf(() => trainConfig({ algorithm: { kl_coef: -1, bogus: 1 } })).message;
  assert.match(both, /algorithm\.kl_coef: /);
  assert.match(both, /; algorithm\.bogus: unknown key/);
  assert.doesNotMatch(both, /\(root\)|objective config/);
});

test('applyOverrides: nested creation, YAML-typed values, the base left alone', () => {
  const base = { trainer: { max_steps: 5 } };
  const out = applyOverrides(
    base,
    [
      'worker.actor.optim.lr=1e-4',
      'worker.rollout.n=4',
      'trainer.val_before_train=true',
      'data.families=[read, sum]',
      'worker.reward.score_function=./r.ts:score',
      'trainer.save_checkpoint_path=runs/a=b',
    ],
    parse,
  );
  assert.deepEqual(out, {
    trainer: { max_steps: 5, val_before_train: true, save_checkpoint_path: 'runs/a=b' },
    worker: { actor: { optim: { lr: 1e-4 } }, rollout: { n: 4 }, reward: { score_function: './r.ts:score' } },
    data: { families: ['read', 'sum'] },
  });
  assert.equal(typeof (out.worker as { actor: { optim: { lr: unknown } } }).actor.optim.lr, 'number');
  assert.deepEqual(base, { trainer: { max_steps: 5 } });
  assert.deepEqual(applyOverrides({}, ['a.b=1', 'a.b=2'], parse), { a: { b: 2 } }, 'the later override wins');
  const c = trainConfig(out);
  assert.equal(c.worker.actor.optim.lr, 1e-4);
  assert.deepEqual(c.data.families, ['read', 'sum']);
});

test('applyOverrides: a path through a scalar and malformed overrides are errors naming them', () => {
  assert.equal(
    errorOf(() => applyOverrides({ trainer: { max_steps: 5 } }, ['trainer.max_steps.x=1'], parse)).message,
    "override 'trainer.max_steps.x=1': trainer.max_steps is not a mapping",
  );
  assert.equal(
    errorOf(() => applyOverrides({ data: { families: ['sum'] } }, ['data.families.x=1'], parse)).message,
    "override 'data.families.x=1': data.families is not a mapping",
  );
  assert.equal(errorOf(() => applyOverrides({}, ['worker.rollout.n'], parse)).message, "override 'worker.rollout.n' must look like key.path=value");
  assert.equal(errorOf(() => applyOverrides({}, ['=4'], parse)).message, "override '=4' must look like key.path=value");
  assert.match(errorOf(() => applyOverrides({}, ['worker..n=4'], parse)).message, /^override 'worker\.\.n=4': 'worker\.\.n' is not a dotted key path$/);
});

test('the command line merge: file, then --preset, then overrides; values typed as YAML', () => {
  const input = trainInputFromArgs({ preset: 'dapo' }, ['worker.rollout.n=4', 'algorithm.kl_coef=1e-3', 'trainer.shuffle_typo=true']);
  assert.deepEqual(input, { algorithm: { preset: 'dapo', kl_coef: 1e-3 }, worker: { rollout: { n: 4 } }, trainer: { shuffle_typo: true } });
  assert.match(errorOf(() => trainConfig(input)).message, /^invalid run config: trainer\.shuffle_typo: unknown key$/);
  const c = trainConfig(trainInputFromArgs({ preset: 'dapo' }, ['algorithm.preset=papo_d', 'trainer.test_before_and_after=false']));
  assert.equal(c.algorithm.preset, 'papo_d', 'an override wins over --preset');
  assert.equal(c.trainer.test_before_and_after, false);
  assert.match(errorOf(() => trainConfig(trainInputFromArgs({}, ['worker.rollout.n=four']))).message, /^invalid run config: worker\.rollout\.n: .*number/);
});

test('--resume with a run directory that does not exist is refused, naming it', () => {
  const missing = path.join(os.tmpdir(), 'papo-no-such-run');
  assert.equal(
    errorOf(() => trainInputFromArgs({ resume: missing }, [])).message,
    `--resume ${missing}: no such run directory (a new run there: papo train trainer.save_checkpoint_path=${missing})`,
  );
});

test("a config file's reward path is relative to the config file; one on the command line stays relative to the cwd", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-train-config-'));
  const cfgFile = path.join(dir, 'run.yaml');
  fs.writeFileSync(cfgFile, 'worker:\n  reward:\n    score_function: ./reward.ts:score\n');
  const score = (input: Record<string, unknown>) => trainConfig(input).worker.reward.score_function;
  assert.equal(score(trainInputFromArgs({ config: cfgFile }, [])), `${path.join(dir, 'reward.ts')}:score`);
  assert.equal(
    score(trainInputFromArgs({ config: path.relative(process.cwd(), cfgFile) }, [])),
    `${path.join(dir, 'reward.ts')}:score`,
    'a relative --config path too',
  );
  assert.equal(
    score(trainInputFromArgs({ config: cfgFile }, ['worker.reward.score_function=./test/fixtures/my-reward.ts:score'])),
    './test/fixtures/my-reward.ts:score',
  );
  assert.equal(score(trainInputFromArgs({ config: cfgFile }, ['worker.reward.score_function=composite'])), 'composite');
  fs.writeFileSync(cfgFile, 'worker:\n  reward:\n    score_function: composite\n');
  assert.equal(score(trainInputFromArgs({ config: cfgFile }, [])), 'composite');
  fs.writeFileSync(cfgFile, 'worker:\n  reward:\n    score_function: 3\n');
  assert.match(
    errorOf(() => trainConfig(trainInputFromArgs({ config: cfgFile }, []))).message,
    /^invalid run config: worker\.reward\.score_function: .*string/,
  );
});

test('data: a manifest implies the manifest task; a manifest with another task, or the task without one, is refused; image limits', () => {
  const c = trainConfig({ data: { manifest: 'd/train.jsonl' } });
  assert.equal(c.data.task, 'manifest');
  assert.equal(c.data.allow_outside_manifest_dir, false);
  assert.equal(c.data.max_image_bytes, 64 * 2 ** 20);
  assert.equal(c.data.max_image_pixels, 2 ** 24);
  assert.equal(
    errorOf(() => trainConfig({ data: { task: 'digits', manifest: 'x.jsonl' } })).message,
    'invalid run config: data.manifest is only read by data.task manifest, but data.task is digits',
  );
  assert.equal(
    errorOf(() => trainConfig({ data: { task: 'manifest' } })).message,
    'invalid run config: data.manifest: data.task manifest needs a manifest path',
  );
  const o = trainConfig(
    trainInputFromArgs({}, ['data.manifest=x.jsonl', 'data.allow_outside_manifest_dir=true', 'data.max_image_pixels=1000', 'data.max_image_bytes=5000']),
  );
  assert.deepEqual([o.data.allow_outside_manifest_dir, o.data.max_image_pixels, o.data.max_image_bytes], [true, 1000, 5000]);
  assert.match(errorOf(() => trainConfig({ data: { max_image_pixels: 0 } })).message, /^invalid run config: data\.max_image_pixels: /);
  assert.match(errorOf(() => trainConfig({ data: { max_image_bytes: 1.5 } })).message, /^invalid run config: data\.max_image_bytes: /);
  assert.match(errorOf(() => trainConfig({ data: { allow_outside_manifest_dir: 'yes' } })).message, /^invalid run config: data\.allow_outside_manifest_dir: /);
  // 1e400 parses as Infinity and is named as such
  assert.equal(
    errorOf(() => trainConfig(trainInputFromArgs({}, ['trainer.max_steps=1e400']))).message,
    'invalid run config: trainer.max_steps: Invalid input: expected number, received Infinity',
  );
});

test('a key added since a run was saved is no change when it holds its default; any other value is', () => {
  const now = trainConfig({ algorithm: { preset: 'papo_g' } });
  const saved = structuredClone(now) as unknown as { algorithm: Record<string, unknown>; trainer: Record<string, unknown> };
  // a run saved by a version without these keys
  delete saved.algorithm.token_weighting;
  delete saved.trainer.test_k;
  assert.deepEqual(configChanges(saved, now, RESUME_SAFE_KEYS, defaultsLike(now)), { safe: [], unsafe: [] });
  // without defaults every missing key counts
  assert.ok(configChanges(saved, now).unsafe.some((c) => c.startsWith('algorithm.token_weighting: (unset) -> "none"')));
  // a non-default value of a new key changes what the run computes
  const vppo = trainConfig({ algorithm: { preset: 'papo_g', token_weighting: 'vppo' } });
  assert.deepEqual(configChanges(saved, vppo, RESUME_SAFE_KEYS, defaultsLike(vppo)).unsafe, ['algorithm.token_weighting: (unset) -> "vppo"']);
});

test("data: train_files implies the dataset task, with EasyR1's keys and defaults; dataset keys given to another task are refused", () => {
  const c = trainConfig({ data: { train_files: 'd/train.parquet', val_files: ['d/test.parquet'] } });
  assert.equal(c.data.task, 'dataset');
  assert.deepEqual(
    [c.data.prompt_key, c.data.answer_key, c.data.image_key, c.data.max_prompt_length, c.data.filter_overlong_prompts],
    ['problem', 'answer', 'images', 61, true],
  );
  assert.deepEqual(taskConfigOf(c.data).trainFiles, ['d/train.parquet']);
  assert.deepEqual(taskConfigOf(c.data).valFiles, ['d/test.parquet']);
  assert.equal(taskConfigOf(trainConfig({}).data).trainFiles, undefined, 'a digits run carries no dataset options');
  assert.equal(
    errorOf(() => trainConfig({ data: { task: 'digits', val_files: 'x.parquet' } })).message,
    'invalid run config: data.val_files is only read by data.task dataset, but data.task is digits',
  );
  assert.equal(errorOf(() => trainConfig({ data: { task: 'dataset' } })).message, 'invalid run config: data.train_files: data.task dataset needs train files');
  assert.match(
    errorOf(() => trainConfig({ data: { train_files: 'x', max_prompt_length: 62 } })).message,
    /^invalid run config: data\.max_prompt_length: Too big/,
  );
  assert.match(errorOf(() => trainConfig({ data: { train_files: [] } })).message, /^invalid run config: data\.train_files: /);
  assert.equal(sftConfig({ data: { train_files: 'x.jsonl' } }).data.task, 'dataset');
});
