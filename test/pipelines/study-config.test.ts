import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { mergeFragment, parseStudy, toOverrides } from '../../pipelines/study-config.ts';
import { studyRuns, trainArgs } from '../../pipelines/study.ts';
import { trainConfig } from '../../pipelines/train-config.ts';
import { applyOverrides } from '../../util/overrides.ts';

const doc = (over: Record<string, unknown> = {}) => ({
  base: { 'trainer.max_steps': 3, data: { rollout_batch_size: 4 } },
  arms: { grpo: { algorithm: { preset: 'grpo' } }, papo_g: { 'algorithm.preset': 'papo_g', algorithm: { perception_loss_weight: 0.04 } } },
  seeds: { from: 101, count: 3 },
  ...over,
});

test('a study: base + arm configs (nested and dotted keys), seeds from/count, comparisons default to every arm against the first', () => {
  const s = parseStudy(doc());
  assert.deepEqual(s.seeds, [101, 102, 103]);
  assert.deepEqual(s.comparisons, [['papo_g', 'grpo']]);
  const [g, p] = s.arms;
  assert.equal(g.config.algorithm.preset, 'grpo');
  assert.equal(g.config.algorithm.perception_loss_weight, 0);
  assert.equal(p.config.algorithm.preset, 'papo_g');
  assert.equal(p.config.algorithm.perception_loss_weight, 0.04);
  assert.equal(p.config.algorithm.entropy_coef_original, 0.03);
  for (const a of s.arms) {
    assert.equal(a.config.trainer.max_steps, 3);
    assert.equal(a.config.data.rollout_batch_size, 4);
  }
  // study defaults: avg@8 at 1.0 with error classes, rliable's percentile bootstrap at 95%
  assert.deepEqual(s.config.eval, { split: 'test', limit: 0, k: 8, temperature: 1, seed: 0, errors: true });
  assert.equal(s.config.stats.method, 'percentile');
  assert.equal(s.config.stats.level, 0.95);
});

test('the overrides a run is launched with give exactly the arm config, its seed and its directory', () => {
  const s = parseStudy(doc({ base: { data: { families: ['sum', 'read'] }, worker: { actor: { optim: { betas: [0.9, 0.99] } } } } }));
  for (const run of studyRuns(s, '/tmp/some study')) {
    const args = trainArgs(run);
    assert.equal(args[0], 'train');
    const overrides = args.slice(1).filter((a) => !a.startsWith('--'));
    const cfg = trainConfig(applyOverrides({}, overrides, (t) => parse(t)));
    const expected = structuredClone(run.arm.config);
    expected.data.seed = run.seed;
    expected.trainer.save_checkpoint_path = run.dir;
    expected.trainer.resume_mode = 'auto';
    expected.trainer.test_before_and_after = false;
    assert.deepEqual(cfg, expected);
    assert.match(run.dir, new RegExp(`runs/${run.arm.name}/seed_${run.seed}$`));
  }
  // seed-major order: a study stopped early has paired seeds
  assert.deepEqual(
    studyRuns(s, 'x').map((r) => `${r.arm.name}:${r.seed}`),
    ['grpo:101', 'papo_g:101', 'grpo:102', 'papo_g:102', 'grpo:103', 'papo_g:103'],
  );
});

test('study file errors name the arm, key or comparison', () => {
  const bad = (over: Record<string, unknown>, re: RegExp) => assert.throws(() => parseStudy(doc(over), 's.yaml'), re);
  bad({ arms: { grpo: { algorithm: { preset: 'nope' } } } }, /s\.yaml: arms\.grpo: .*algorithm\.preset/);
  bad({ arms: { grpo: { 'worker.rollout.n': 0 } } }, /arms\.grpo: .*worker\.rollout\.n/);
  bad({ arms: { grpo: { 'data.seed': 3 } } }, /arms\.grpo: data\.seed is set by the study/);
  bad({ arms: { grpo: { trainer: { save_checkpoint_path: 'x' } } } }, /arms\.grpo: trainer\.save_checkpoint_path is set by the study/);
  bad({ compare: [['papo_g', 'dapo']] }, /compare\.0: unknown arm 'dapo'/);
  bad({ compare: [['grpo', 'grpo']] }, /compared with itself/);
  bad({ seeds: [1, 1] }, /a seed is listed twice/);
  bad({ seeds: [] }, /seeds/);
  bad({ arms: { '../x': {} } }, /arms/);
  bad({ arms: {} }, /at least one arm/);
  bad({ extra: 1 }, /extra|Unrecognized/);
  bad({ arms: { grpo: { 'worker.actor.model.model_path': '/elsewhere' }, papo_g: {} } }, /same weights/);
  assert.throws(() => mergeFragment({}, JSON.parse('{"__proto__": {"x": 1}}'), 'arms.a'), /not allowed/);
  assert.throws(() => mergeFragment({}, { 'a.constructor.b': 1 }, 'arms.a'), /not allowed/);
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('toOverrides flattens nested mappings and keeps arrays and strings as JSON values', () => {
  assert.deepEqual(toOverrides({ a: { b: 1, c: [1, 2] }, d: 'x y', e: true }), ['a.b=1', 'a.c=[1,2]', 'd="x y"', 'e=true']);
});

test("the repository's study files (studies/) parse; the published copies in docs/studies/ are parsed and analysed by published-studies.test.ts", () => {
  const dir = path.resolve(import.meta.dirname, '../../studies');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 8, files.join(', '));
  for (const f of files) assert.ok(parseStudy(parse(fs.readFileSync(path.join(dir, f), 'utf8')), f).arms.length >= 1, f);
});
