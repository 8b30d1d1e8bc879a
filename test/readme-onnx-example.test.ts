/**
 * The README's program that runs an exported policy with onnxruntime-node and the model's metadata alone
 * (`<!-- example: onnx -->`, "Using a trained policy"), run as printed next to a `papo export`ed tiny
 * policy: it prints the greedy response `papo generate` computes with the engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PolicyEngine } from '../models/engine/engine.ts';
import { generateAnswers } from '../pipelines/generate.ts';
import { exportPolicyOnnx } from '../storage/policy-export.ts';
import { loadPolicyWeights } from '../storage/policy-weights.ts';
import { encodePng } from '../tasks/preview/contact-sheet.ts';
import { makeImage } from '../util/image.ts';
import { readmeBlocks, ROOT } from './readme-examples.ts';
import { saveTinyPolicy } from './pipelines/tiny-run.ts';

test("README's onnx example prints the greedy response of the exported policy", async () => {
  const [code] = readmeBlocks('onnx');
  // in the repository's (ignored) tmp/, so that the example's imports (onnxruntime-node, onnx-proto, pngjs) resolve
  fs.mkdirSync(path.join(ROOT, 'tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(ROOT, 'tmp', 'readme-onnx-'));
  try {
    await saveTinyPolicy(path.join(dir, 'weights'));
    await exportPolicyOnnx(path.join(dir, 'weights'), path.join(dir, 'policy.onnx'));
    const saved = await loadPolicyWeights(path.join(dir, 'weights'));
    const image = makeImage(saved.config.imageHeight, saved.config.imageWidth);
    for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 29) % 256;
    fs.writeFileSync(path.join(dir, 'digits.png'), encodePng(image));
    fs.writeFileSync(path.join(dir, 'run-policy.mjs'), code);
    const r = spawnSync(process.execPath, ['run-policy.mjs'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);

    const engine = await PolicyEngine.create(saved.config, { intraOpThreads: 1 });
    try {
      await engine.setWeights(saved.params, 0);
      const [greedy] = await generateAnswers(engine, image, 'What is the sum of the digits?', { samples: 0, seed: 0 });
      assert.ok(greedy.text.length > 0);
      assert.equal(r.stdout, `${greedy.text}\n`);
    } finally {
      await engine.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
