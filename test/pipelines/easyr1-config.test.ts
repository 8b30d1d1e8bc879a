import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRewardFunction } from '../../pipelines/reward-function.ts';
import { generationsTable, ValGenerationsLog } from '../../pipelines/val-generations.ts';
import { eventFiles, readEventFile, rewindEventFiles, TensorBoardWriter } from '../../storage/tensorboard.ts';
import { resolveTrainConfig, trainConfig } from '../../pipelines/train-config.ts';
import { NOT_APPLYING_KEYS } from '../../pipelines/easyr1-keys.ts';
import { trainingSteps, stepsNote } from '../../pipelines/training-steps.ts';
import { errorOf } from '../asserts.ts';

const ROOT_FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const problem = (input: unknown) => errorOf(() => trainConfig(input)).message;

test('algorithm.disable_kl: no KL, no reference model; a kl_coef beside it is said to be ignored', () => {
  assert.equal(trainConfig({ algorithm: { disable_kl: true } }).algorithm.kl_coef, 0);
  const r = resolveTrainConfig({ algorithm: { disable_kl: true, kl_coef: 0.05 } });
  assert.equal(r.config.algorithm.kl_coef, 0);
  assert.ok(
    r.notes.some((n) => /algorithm\.kl_coef 0\.05 is ignored: algorithm\.disable_kl is true/.test(n)),
    r.notes.join('\n'),
  );
  assert.equal(trainConfig({ algorithm: { disable_kl: false } }).algorithm.kl_coef, 0.01, 'false leaves the KL as it is');
  assert.match(problem({ algorithm: { disable_kl: 'yes' } }), /algorithm\.disable_kl: expected a boolean, got "yes"/);
});

test('algorithm.use_kl_loss: true is the KL loss term; false with a KL weight is refused (KL in the reward is not implemented)', () => {
  const c = trainConfig({ algorithm: { use_kl_loss: true, kl_coef: 0.02 } });
  assert.equal(c.algorithm.kl_coef, 0.02);
  const msg = problem({ algorithm: { use_kl_loss: false } });
  assert.match(msg, /algorithm\.use_kl_loss: false puts the KL penalty into the reward .* not implemented here/);
  assert.match(msg, /kl_coef \(0\.01, with preset papo_g\)/, 'names the weight and where it came from');
  assert.equal(trainConfig({ algorithm: { use_kl_loss: false, disable_kl: true } }).algorithm.kl_coef, 0, 'no KL at all: nothing to refuse');
  assert.equal(trainConfig({ algorithm: { preset: 'dapo', use_kl_loss: false } }).algorithm.kl_coef, 0, "DAPO's preset has no KL");
});

test('algorithm.kl_penalty maps onto kl_estimator by its verl names; full is refused; a disagreeing kl_estimator is named', () => {
  for (const [penalty, estimator] of [
    ['kl', 'k1'],
    ['mse', 'k2'],
    ['low_var_kl', 'k3'],
    ['abs', 'abs'],
  ])
    assert.equal(trainConfig({ algorithm: { kl_penalty: penalty } }).algorithm.kl_estimator, estimator, penalty);
  assert.match(problem({ algorithm: { kl_penalty: 'full' } }), /algorithm\.kl_penalty: 'full' .* not implemented/);
  assert.match(problem({ algorithm: { kl_penalty: 'nope' } }), /algorithm\.kl_estimator: unknown KL estimator "nope"/);
  assert.equal(trainConfig({ algorithm: { kl_penalty: 'low_var_kl', kl_estimator: 'k3' } }).algorithm.kl_estimator, 'k3', 'the same estimator twice');
  assert.match(problem({ algorithm: { kl_penalty: 'kl', kl_estimator: 'k3' } }), /algorithm\.kl_penalty: "kl" and algorithm\.kl_estimator: "k3" disagree/);
  assert.match(problem({ algorithm: { kl_type: 'adaptive' } }), /algorithm\.kl_type: "adaptive" is not supported \(only fixed\)/);
  assert.equal(trainConfig({ algorithm: { kl_type: 'fixed', kl_horizon: 10000, kl_target: 0.1 } }).algorithm.kl_coef, 0.01);
});

test('algorithm.online_filtering / filter_low / filter_high / trainer.max_try_make_batch map onto dynamic sampling', () => {
  const a = trainConfig({
    algorithm: { preset: 'grpo', online_filtering: true, filter_low: 0.1, filter_high: 0.9, filter_key: 'accuracy' },
    trainer: { max_try_make_batch: 4 },
  }).algorithm;
  assert.equal(a.dynamic_sampling, true);
  assert.equal(a.dynamic_sampling_min_acc, 0.1);
  assert.equal(a.dynamic_sampling_max_acc, 0.9);
  assert.equal(a.dynamic_sampling_max_tries, 4);
  assert.equal(trainConfig({ algorithm: { preset: 'dapo', online_filtering: false } }).algorithm.dynamic_sampling, false, "false turns the preset's off");
  assert.match(
    problem({ algorithm: { online_filtering: true, filter_key: 'overall' } }),
    /algorithm\.filter_key: 'overall' is not supported: .*set filter_key: accuracy/,
  );
  assert.equal(trainConfig({ algorithm: { online_filtering: false, filter_key: 'overall' } }).algorithm.dynamic_sampling, false, 'no filtering: any key');
  assert.match(problem({ trainer: { max_try_make_batch: -1 } }), /trainer\.max_try_make_batch: -1 is not supported: .*bounded/);
  assert.match(problem({ algorithm: { filter_low: 0.9, filter_high: 0.5 } }), /algorithm\.dynamic_sampling_min_acc: must be below dynamic_sampling_max_acc/);
});

test("worker.reward.reward_function is score_function in EasyR1's path:function form; Python is refused; reward_type is kept", () => {
  assert.equal(trainConfig({ worker: { reward: { reward_function: './r.ts:compute_score' } } }).worker.reward.score_function, './r.ts:compute_score');
  assert.equal(trainConfig({ worker: { reward: { reward_function: './r.ts' } } }).worker.reward.score_function, './r.ts:main', 'main when not named');
  assert.equal(trainConfig({ worker: { reward: { reward_function: 'composite' } } }).worker.reward.score_function, 'composite');
  assert.match(problem({ worker: { reward: { reward_function: './examples/reward_function/math.py:compute_score' } } }), /math\.py:compute_score is Python/);
  assert.match(
    problem({ worker: { reward: { reward_function: './a.ts:f', score_function: './b.ts:g' } } }),
    /worker\.reward\.reward_function: "\.\/a\.ts:f" and worker\.reward\.score_function: "\.\/b\.ts:g" disagree/,
  );
  assert.equal(trainConfig({ worker: { reward: { reward_type: 'batch' } } }).worker.reward.reward_type, 'batch');
  assert.equal(trainConfig({ worker: { reward: { reward_type: 'sequential' } } }).worker.reward.reward_type, 'sequential');
  assert.match(problem({ worker: { reward: { reward_type: 'function' } } }), /worker\.reward\.reward_type: /);
  assert.match(problem({ worker: { reward: { reward_function_kwargs: { format_weight: 0.1 } } } }), /reward_function_kwargs: .*bind the arguments/);
});

test('keys of GPUs and other engines are accepted and named in one note; the config holds none of them', () => {
  const r = resolveTrainConfig({
    trainer: { nnodes: 1, n_gpus_per_node: 8 },
    worker: {
      actor: { fsdp: { enable_full_shard: true }, offload: { offload_params: true }, padding_free: true, micro_batch_size_per_device_for_experience: 16 },
      ref: { fsdp: { enable_cpu_offload: true } },
      rollout: { gpu_memory_utilization: 0.6, tensor_parallel_size: 2 },
    },
  });
  const notes = r.notes.filter((n) => n.includes('not applying'));
  assert.equal(notes.length, 1, 'one note');
  for (const k of [
    'trainer.nnodes',
    'trainer.n_gpus_per_node',
    'worker.actor.fsdp.*',
    'worker.actor.offload.*',
    'worker.ref.*',
    'worker.rollout.gpu_memory_utilization',
    'worker.rollout.tensor_parallel_size',
  ])
    assert.ok(notes[0].includes(k), `${k} in ${notes[0]}`);
  assert.equal((r.config.worker.actor as Record<string, unknown>).fsdp, undefined);
  assert.equal((r.config.trainer as Record<string, unknown>).n_gpus_per_node, undefined);
  assert.deepEqual(resolveTrainConfig({}).notes, [], 'none given, nothing said');
  assert.ok(NOT_APPLYING_KEYS.includes('worker.rollout.gpu_memory_utilization'));
});

test("keys accepted only at EasyR1's do-nothing value are refused otherwise, with the reason", () => {
  assert.match(problem({ algorithm: { gamma: 0.02 } }), /algorithm\.gamma: 0\.02 is not supported \(only 1\): .*algorithm\.perception_loss_weight/);
  assert.equal(trainConfig({ algorithm: { gamma: 1, lam: 1 } }).algorithm.perception_loss_weight, 0.02);
  assert.match(problem({ trainer: { critic_warmup: 3 } }), /trainer\.critic_warmup: 3 is not supported \(only 0\): there is no critic/);
  assert.match(problem({ trainer: { val_only: true } }), /trainer\.val_only: .*papo eval/);
  assert.match(problem({ worker: { actor: { model: { lora: { rank: 8 } } } } }), /worker\.actor\.model\.lora: .*LoRA is not implemented/);
  trainConfig({ trainer: { critic_warmup: 0, val_only: false, save_model_only: false }, worker: { actor: { model: { lora: { rank: 0, alpha: 64 } } } } });
});

test("EasyR1's -1 (never / no limit) and null (unset) read as they mean there", () => {
  const t = trainConfig({ trainer: { val_freq: -1, save_freq: -1, save_limit: -1, max_steps: null, save_checkpoint_path: null } }).trainer;
  assert.equal(t.val_freq, 0);
  assert.equal(t.save_freq, 0);
  assert.equal(t.save_limit, 0);
  assert.equal(t.max_steps, 80);
  assert.equal(t.save_checkpoint_path, 'runs/train');
  assert.equal(trainConfig({ trainer: { find_last_checkpoint: true } }).trainer.resume_mode, 'auto');
  assert.deepEqual(trainConfig({ trainer: { logger: ['file', 'console'] } }).trainer.logger, ['file', 'console'], "EasyR1's file logger: metrics.jsonl");
  assert.match(problem({ trainer: { logger: ['file', 'wandb'] } }), /trainer\.logger\.1: /);
  assert.equal(trainConfig({ trainer: { find_last_checkpoint: false } }).trainer.resume_mode, 'disable');
});

test('trainer.project_name / experiment_name name the run directory under runs/ unless save_checkpoint_path is given', () => {
  const dir = (trainer: object) => trainConfig({ trainer }).trainer.save_checkpoint_path;
  assert.equal(dir({ project_name: 'easy_r1', experiment_name: 'qwen2_5_7b_math_grpo' }), 'runs/easy_r1/qwen2_5_7b_math_grpo');
  assert.equal(dir({ experiment_name: 'grpo' }), 'runs/grpo');
  assert.equal(dir({ project_name: 'easy_r1' }), 'runs/easy_r1/train');
  assert.equal(dir({ project_name: 'easy_r1', save_checkpoint_path: 'elsewhere' }), 'elsewhere', 'an explicit directory wins');
  assert.equal(dir({}), 'runs/train');
  assert.match(problem({ trainer: { experiment_name: '../up' } }), /trainer\.experiment_name: must be one directory name/);
  assert.match(problem({ trainer: { project_name: '..' } }), /trainer\.project_name: must be a directory name/);
});

test('trainer.total_epochs counts steps as EasyR1 does; max_steps wins when both are set', () => {
  assert.equal(trainConfig({ trainer: { total_epochs: 2 } }).trainer.max_steps, undefined, 'resolved once the training split is known');
  assert.equal(trainingSteps({ total_epochs: 2 }, 10, 4), 4, 'floor(10 / 4) x 2');
  assert.equal(trainingSteps({ total_epochs: 2, max_steps: 3 }, 10, 4), 3);
  assert.equal(trainingSteps({}, 10, 4), 80);
  assert.match(
    errorOf(() => trainingSteps({ total_epochs: 1 }, 3, 4)).message,
    /training split has 3 records, fewer than one batch of data\.rollout_batch_size 4/,
  );
  assert.match(stepsNote({ total_epochs: 2 }, 4, 10, 4) ?? '', /trainer\.total_epochs 2: 4 rollout steps \(floor\(10 training records/);
  assert.match(stepsNote({ total_epochs: 2, max_steps: 3 }, 3, 10, 4) ?? '', /total_epochs 2 is ignored: trainer\.max_steps 3 is set and wins/);
  assert.equal(stepsNote({ max_steps: 3 }, 3, 10, 4), undefined);
});

test('every unknown key of every section, the objective included, is named in one error', () => {
  const msg = problem({
    trainer: { max_stepz: 3 },
    worker: { rollout: { nn: 4 }, actor: { optim: { lrr: 1 } } },
    algorithm: { kl_coeff: 0.1, adv_estimator: 'grpo' },
    data: { rollout_batch: 4 },
  });
  for (const k of ['trainer.max_stepz', 'worker.rollout.nn', 'worker.actor.optim.lrr', 'algorithm.kl_coeff', 'data.rollout_batch'])
    assert.match(msg, new RegExp(`${k.replaceAll('.', '\\.')}: unknown key`), k);
  assert.equal(msg.split('\n').length, 1);
  // a bad value elsewhere and an EasyR1 refusal come in the same error
  const mixed = problem({ worker: { rollout: { n: 0 } }, algorithm: { kl_penalty: 'full', bogus: 1 } });
  assert.match(mixed, /worker\.rollout\.n: Too small/);
  assert.match(mixed, /algorithm\.kl_penalty: 'full'/);
  assert.match(mixed, /algorithm\.bogus: unknown key/);
});

test('objective keys beside a preset: the effective objective is said at start', () => {
  const line = (input: unknown) => resolveTrainConfig(input).notes.find((n) => n.startsWith('algorithm: '));
  const grpo = line({ algorithm: { adv_estimator: 'grpo' } }) ?? '';
  assert.match(grpo, /^algorithm: preset papo_g \+ adv_estimator=grpo -> still on from the preset: /);
  assert.match(grpo, /perception_loss_weight 0\.02 \(gamma\)/);
  assert.match(grpo, /entropy_coef_masked 0\.03 \(eta2\)/);
  assert.match(grpo, /this trains PAPO \(perception loss on\): algorithm\.preset=grpo for the baseline/);
  const mapped = line({ algorithm: { preset: 'dapo', disable_kl: true, online_filtering: false } }) ?? '';
  assert.match(
    mapped,
    /^algorithm: preset dapo \+ kl_coef=0 \(algorithm\.disable_kl\), dynamic_sampling=false \(algorithm\.online_filtering\) -> still on from the preset: clip_ratio_high 0\.28$/,
  );
  assert.equal(line({}), undefined, 'the preset alone');
  assert.equal(line({ algorithm: { preset: 'grpo' } }), undefined);
  // a resumed run's saved config holds every key of its objective: the preset supplies nothing more
  assert.equal(line({ algorithm: trainConfig({ algorithm: { adv_estimator: 'grpo' } }).algorithm }), undefined);
});

test("worker.reward.reward_type: a plain function is called per response (sequential) or with a list (batch); the file's REWARD_TYPE decides when unset", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-reward-type-'));
  const score = (x: { response: string }) => ({ overall: x.response.length, accuracy: 0, format: 0 });
  fs.writeFileSync(path.join(dir, 'seq.js'), `export const main = ${score.toString()};\n`);
  fs.writeFileSync(path.join(dir, 'batch.js'), `export const REWARD_TYPE = 'batch';\nexport const main = (xs) => xs.map(${score.toString()});\n`);
  fs.writeFileSync(path.join(dir, 'bad.js'), `export const REWARD_TYPE = 'function';\nexport const main = () => 0;\n`);
  const input = { id: 'r1', response: 'abc', answer: '3' };
  const seq = await loadRewardFunction(path.join(dir, 'seq.js:main'));
  assert.equal(seq.mode, 'single');
  const batch = await loadRewardFunction(path.join(dir, 'batch.js:main'));
  assert.equal(batch.mode, 'batch', "the file's REWARD_TYPE");
  assert.deepEqual(batch.mode === 'batch' && (await batch.scoreBatch([input, { ...input, response: 'abcdef' }])).map((r) => r.overall), [3, 6]);
  const asked = await loadRewardFunction(path.join(dir, 'batch.js:main'), dir, 'sequential');
  assert.equal(asked.mode, 'single', 'the config wins over the file');
  await assert.rejects(loadRewardFunction(path.join(dir, 'bad.js:main')), /bad\.js exports REWARD_TYPE "function"; it must be sequential or batch/);
  await assert.rejects(
    loadRewardFunction(path.join(ROOT_FIXTURES, 'my-reward.ts:lengthPenalty'), process.cwd(), 'batch'),
    /worker\.reward\.reward_type: batch, but export 'lengthPenalty' of .* is a sequential reward \(from defineReward\)/,
  );
});

test('validation generations: a Markdown table as TensorBoard text, kept through a rewind up to its step', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-val-gen-'));
  const generations = [{ id: 'v1', prompt: 'What is 1|2?', output: 'a\nb', ground_truth: '3', score: 0.5 }];
  const table = generationsTable(generations);
  assert.equal(table.split('\n')[2], '| v1 | What is 1\\|2? | a b | 3 | 0.500 |', 'one line per generation, | escaped');
  const tb = TensorBoardWriter.open(path.join(dir, 'tensorboard'));
  tb.scalars(1, { 'critic/score/mean': 0.25 });
  const log = new ValGenerationsLog(dir, tb);
  log.write(1, generations);
  tb.scalars(2, { 'critic/score/mean': 0.5 });
  log.write(2, generations);
  tb.close();
  const events = eventFiles(path.join(dir, 'tensorboard')).flatMap((f) => readEventFile(f).events);
  assert.deepEqual(
    events.filter((e) => e.texts).map((e) => [e.step, e.texts?.['val/generations']]),
    [
      [1, table],
      [2, table],
    ],
  );
  assert.deepEqual(
    events.filter((e) => e.scalars).map((e) => e.scalars),
    [{ 'critic/score/mean': 0.25 }, { 'critic/score/mean': 0.5 }],
    'scalars read as before',
  );
  rewindEventFiles(path.join(dir, 'tensorboard'), 1);
  const after = eventFiles(path.join(dir, 'tensorboard')).flatMap((f) => readEventFile(f).events);
  assert.deepEqual(
    after.filter((e) => e.texts || e.scalars).map((e) => e.step),
    [1, 1],
    'the text of step 2 goes with its scalars',
  );
  return log.rewind(1).then(() => assert.deepEqual(log.read(), [{ step: 1, generations }]));
});
