/**
 * Every command that takes weights takes a run directory too, and each picks the checkpoint a resume
 * would: `papo eval --weights RUN`, `papo sft --init RUN` and `papo train worker.actor.model.model_path=RUN`
 * load the newest complete checkpoint even when the `latest` pointer names one that is incomplete.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { CheckpointStore } from '../../storage/checkpoints.ts';
import { paramsFingerprint } from '../../storage/policy-weights.ts';
import { TINY_POLICY } from '../pipelines/tiny-run.ts';

const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });
// long enough responses for the demonstrations papo sft trains on ("<think>8>5</think><answer>yes</answer>")
const POLICY = policyConfig({ ...TINY_POLICY, maxResponseLen: 16 });
const paramsOf = (step: number) => initParams(POLICY, 10 + step);

let dir: string;
let source: string;
let expected: string;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-weights-run-'));
  source = path.join(dir, 'source');
  const store = new CheckpointStore(source);
  for (const step of [1, 2, 3]) {
    await store.save({
      kind: 'sft',
      step,
      policy: { config: POLICY, params: paramsOf(step) },
      optimizer: { step, m: paramsOf(step), v: paramsOf(step) },
      samplers: [],
      state: {},
    });
  }
  // `latest` names step 3, which has lost its marker and its weights: only step 2 is loadable
  fs.rmSync(path.join(store.dir, 'step_000003', 'COMPLETE'));
  fs.rmSync(path.join(store.dir, 'step_000003', 'policy'), { recursive: true });
  assert.equal(fs.readFileSync(path.join(store.dir, 'latest'), 'utf8').trim(), 'step_000003');
  expected = path.join(store.dir, 'step_000002', 'policy');
});

test('papo eval --weights RUN evaluates its newest complete checkpoint and says which', () => {
  const r = papo(['eval', '--weights', source, '--families', 'text-compare', '--limit', '2', '--k', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^digits \/ test: 2 prompts, policy version 2,/m);
  assert.ok(r.stderr.includes(`papo eval: evaluating the weights in ${expected}\n`), r.stderr);
});

test('papo sft --init RUN starts from its newest complete checkpoint and says which', () => {
  const out = path.join(dir, 'sft');
  const r = papo(['sft', '--init', source, '--families', 'text-compare', '--steps', '1', '--batch-size', '2', '--engine', 'tfjs', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes(`sft: starting from the weights in ${expected}\n`), r.stderr);
  assert.ok(fs.existsSync(path.join(out, 'weights', 'zarr.json')));
});

test('papo train with model_path=RUN starts from (and keeps as its reference) its newest complete checkpoint', async () => {
  const run = path.join(dir, 'train');
  const cfg = path.join(dir, 'train.yaml');
  fs.writeFileSync(
    cfg,
    [
      'data: { task: digits, families: [text-compare], rollout_batch_size: 2, max_response_length: 4 }',
      `worker: { actor: { model: { model_path: ${JSON.stringify(source)} } }, rollout: { n: 2, threads: 1 } }`,
      `trainer: { max_steps: 1, test_before_and_after: false, save_checkpoint_path: ${JSON.stringify(run)} }`,
      '',
    ].join('\n'),
  );
  const r = papo(['train', '--config', cfg]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes(`train: starting from the weights in ${expected}\n`), r.stderr);
  const store = new CheckpointStore(run);
  const name = await store.latest();
  assert.ok(name, `a checkpoint in ${store.dir}`);
  const attrs = JSON.parse(fs.readFileSync(path.join(store.dir, name, 'zarr.json'), 'utf8')).attributes;
  assert.deepEqual(attrs.state.reference, { model_path: source, fingerprint: paramsFingerprint(paramsOf(2)) });
});
