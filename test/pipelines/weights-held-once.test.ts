/**
 * One copy of each policy version outside the trainer: the engine's. The trainer thread does not keep the
 * starting weights it handed to its replicas, a run's PolicyVersions keeps none (checkpoints read them back
 * from the engine, bit for bit), and a resumed run forgets the checkpoint it loaded once it is installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OrtTrainer } from '../../models/trainer/ort-trainer.ts';
import { initParams, type Params } from '../../models/params.ts';
import { loadTrainCheckpoint } from '../../pipelines/load-checkpoint.ts';
import { withRun } from '../../pipelines/run-harness.ts';
import { resolveTrainConfig } from '../../pipelines/train-config.ts';
import { trainParts } from '../../pipelines/train-setup.ts';
import { runTrain } from '../../pipelines/train.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { TINY_POLICY, tinyPolicyInTmp, tinyRunOverrides } from './tiny-run.ts';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether every object registered with `watch` was collected, after full collections. */
async function collected(registered: number, freed: () => number): Promise<boolean> {
  for (let i = 0; i < 20 && freed() < registered; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return freed() === registered;
}

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-held-once-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the onnxruntime trainer does not keep the starting weights on the calling thread', async () => {
  let freed = 0;
  const registry = new FinalizationRegistry(() => freed++);
  let names: string[] = [];
  const trainer = await (async () => {
    const params: Params = initParams(TINY_POLICY, 3);
    names = Object.keys(params);
    for (const a of Object.values(params)) registry.register(a, 0);
    return OrtTrainer.create(TINY_POLICY, params, {}, { replicas: 2 });
  })();
  try {
    assert.ok(await collected(names.length, () => freed), `${freed} of ${names.length} starting arrays collected while the trainer runs`);
    assert.deepEqual(Object.keys(await trainer.getParams()).sort(), names.sort(), 'the replicas still hold them');
  } finally {
    await trainer.close();
  }
});

test('a resumed run keeps no weights of its own: the engine holds each version and checkpoints read them back bit for bit', async () => {
  const run = `${tmp}/run`;
  const overrides = [...tinyRunOverrides(weights, run, 3), 'trainer.max_staleness=1', 'trainer.save_freq=1'];
  await runTrain(trainInputFromArgs({}, overrides), { quiet: true });
  const saved = (await loadTrainCheckpoint(run)).checkpoint;
  assert.equal(saved.step, 3);
  assert.equal(saved.samplers.length, 1, 'step 4 samples with the version after step 2');
  const { config } = resolveTrainConfig(trainInputFromArgs({}, [...overrides, 'trainer.max_steps=6', 'trainer.resume_mode=auto']));
  await withRun({ command: 'papo train', dir: run, resume: 'only', settle: () => ({ config }), metrics: true, rollouts: true, quiet: true }, async (r) => {
    assert.equal(r.resumed?.step, 3);
    const parts = await trainParts(r);
    try {
      assert.equal(r.resumed, undefined, 'the loaded checkpoint is released');
      assert.equal(r.resumedStep, 3);
      assert.deepEqual(parts.versions.kept, []);
      const c = await parts.versions.checkpoint(3);
      assert.equal(c.version, (saved.state as { version: number }).version);
      for (const [name, data] of Object.entries(saved.policy.params)) assert.deepEqual(c.params[name], data, name);
      assert.deepEqual(
        c.samplers.map((s) => s.version),
        saved.samplers.map((s) => s.version),
      );
      for (const [name, data] of Object.entries(saved.samplers[0].params)) assert.deepEqual(c.samplers[0].params[name], data, `sampler ${name}`);
    } finally {
      await parts.close();
    }
  });
});
