import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../util/tf-backend.ts';
import { runSft } from '../../pipelines/sft.ts';
import { evaluate } from '../../pipelines/evaluate.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';
import { TfPolicy } from '../../models/policy-tf.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { encodeResponse } from '../../models/tokenizer.ts';
import { createTask } from '../../tasks/registry.ts';

// A tiny policy on an easy family: "Ignore the image. Is 8 larger than 5?" (yes/no, chance 50%).
const TINY = { dModel: 32, nHeads: 4, nLayers: 2, maxPromptLen: 48, maxResponseLen: 16, seed: 1 };
const DATA = { task: 'digits', families: ['text-compare'] };

test('a few seconds of supervised warm start beat chance, and saved weights give the same log-probs in tfjs and onnxruntime', async () => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'papo-sft-'));
  const tensorsAt: number[] = [];
  const sft = await runSft(
    {
      data: { ...DATA, train_batch_size: 16 },
      worker: { actor: { model: { override_config: TINY }, optim: { lr: 5e-3, lr_warmup_steps: 10 } } },
      trainer: { max_steps: 300, save_checkpoint_path: out, save_freq: 0 },
    },
    { quiet: true, onStep: () => tensorsAt.push(tf.memory().numTensors) },
  );
  assert.equal(tensorsAt.at(-1), tensorsAt[1], 'tensor count is flat across training steps');
  const first = sft.history[0].loss;
  const last = sft.history.at(-1)!.loss;
  assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);

  const saved = await loadPolicyWeights(sft.weightsDir);
  assert.deepEqual(saved.config, sft.config);
  assert.equal(saved.meta.step, 300);
  const engine = await PolicyEngine.create(saved.config, { intraOpThreads: 1 });
  try {
    await engine.setWeights(saved.params, 300);
    // Round trip: the trained weights are the saved ones, and a tfjs policy rebuilt from the checkpoint
    // and onnxruntime agree.
    assert.deepEqual(saved.params, sft.params);
    const task = createTask(DATA);
    const recs = Array.from({ length: 8 }, (_, i) => task.recordAt('test', i));
    const inputs = { images: recs.map((r) => r.image), promptIds: recs.map((r) => r.question), responseIds: recs.map((r) => encodeResponse(r.demonstration!)) };
    const reloaded = new TfPolicy(saved.config, saved.params);
    const a = reloaded.logProbs(inputs);
    const ta = a.logprobs.arraySync() as number[][];
    const ort = await engine.logProbs({ images: inputs.images, prompts: inputs.promptIds, responses: inputs.responseIds });
    let maxDiff = 0;
    ort.logprobs.forEach((row, i) => row.forEach((v, t) => (maxDiff = Math.max(maxDiff, Math.abs(v - ta[i][t])))));
    assert.ok(maxDiff <= 1e-4, `ORT vs tfjs max abs diff ${maxDiff}`);
    tf.dispose([a.logprobs, a.mask]);
    reloaded.dispose();

    const report = await evaluate(engine, task, { split: 'test', limit: 96, k: 2, quiet: true });
    assert.ok(report.greedy.formatRate > 0.9, `format rate ${report.greedy.formatRate}`);
    const acc = report.greedy.accuracy.overall.accuracy!;
    assert.ok(acc > 0.6, `greedy accuracy ${acc} should beat chance (0.5)`);
    assert.equal(report.greedy.accuracy.general.n, 96);
    // Format rate and length are reported per group and family too ("<think>8>5</think><answer>yes</answer>" + EOS: 11 tokens).
    assert.equal(report.greedy.groups['text-compare'].n, 96);
    assert.ok(Math.abs(report.greedy.groups.general.meanLength - 11) < 1.5, `mean length ${report.greedy.groups.general.meanLength}`);
    assert.equal(report.sampled!.groups.overall.n, 192);
  } finally {
    await engine.close();
  }
});
