/**
 * `papo generate` on a tiny policy: the greedy response, seeded samples (the same seed, the same samples),
 * JSON output, and one-line errors for what a user can get wrong before anything runs.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { policyConfig } from '../../models/config.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { encodeQuestion, generateAnswers, readQuestionImage } from '../../pipelines/generate.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';
import { loadImage } from '../../tasks/loader/load-image.ts';
import { tinyPolicyInTmp } from '../pipelines/tiny-run.ts';

const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });

let tmp: string;
let weights: string;
let image: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-generate-'));
  // 40 x 20, not the policy's 56 x 28: resized as a manifest image is
  const png = new PNG({ width: 40, height: 20 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) % 256;
  image = path.join(tmp, 'x.png');
  fs.writeFileSync(image, PNG.sync.write(png));
});

const ask = (extra: string[]) => papo(['generate', '--weights', weights, '--image', image, '--question', 'What is 3+5?', ...extra]);

test('papo generate prints the greedy response: the one the engine gives on the image read as a manifest image', async () => {
  const r = ask([]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 2, `one line of response: ${JSON.stringify(r.stdout)}`);
  // the tiny policy is untrained: its response runs into the limit, which is said on stderr
  assert.match(r.stderr, /papo generate: the response stopped at the token limit \(8\) before its end token/);
  const saved = await loadPolicyWeights(weights);
  const engine = await PolicyEngine.create(saved.config, { intraOpThreads: 1 });
  try {
    await engine.setWeights(saved.params, 0);
    const picture = loadImage(image, { height: saved.config.imageHeight, width: saved.config.imageWidth });
    const [greedy] = await generateAnswers(engine, picture, encodeQuestion('What is 3+5?'), { samples: 0, seed: 9 });
    assert.equal(lines[0], greedy.text);
    assert.equal(greedy.tokens.length, 8);
    assert.equal(greedy.finished, false);
    assert.equal(greedy.answer, null);
  } finally {
    await engine.close();
  }
});

test('encodeQuestion and readQuestionImage name what is wrong', () => {
  const cfg = policyConfig({ maxPromptLen: 8 });
  assert.deepEqual(encodeQuestion('Hi', cfg), [2, ...'Hi'.split('').map((ch) => ch.charCodeAt(0) - 25)]);
  assert.throws(
    () => encodeQuestion('x'.repeat(8), { ...cfg, what: '--question' }),
    /^Error: --question is 8 tokens long; this policy's prompts hold at most 7 \(maxPromptLen 8, BOS included\)$/,
  );
  assert.throws(() => encodeQuestion('caf\u00e9'), /^Error: question cannot be encoded: unsupported character "\u00e9" \(U\+00E9\) at position 3/);
  assert.throws(() => readQuestionImage(path.join(weights, 'zarr.json'), cfg, {}, '--image'), /^Error: --image .*zarr\.json: not a PNG or JPEG/);
  assert.throws(() => readQuestionImage(image, cfg, { maxBytes: 10 }), /^Error: image .*x\.png: file is \d+ bytes, over the limit of 10 \(max_image_bytes\)/);
  assert.throws(() => readQuestionImage(image, cfg, { maxPixels: 100 }), /^Error: image .*x\.png: image is 40 x 20 = 800 pixels, over the limit of 100/);
  assert.equal(readQuestionImage(image, cfg).width, 56);
});

test('papo generate --samples k: k responses, the same for the same seed', () => {
  const a = ask(['--samples', '3', '--seed', '4', '--temperature', '1.5', '--json']);
  const b = ask(['--samples', '3', '--seed', '4', '--temperature', '1.5', '--json']);
  const c = ask(['--samples', '3', '--seed', '5', '--temperature', '1.5', '--max-tokens', '5']);
  for (const r of [a, b, c]) assert.equal(r.status, 0, r.stderr);
  const ra = JSON.parse(a.stdout);
  assert.equal(ra.mode, 'sample');
  assert.equal(ra.seed, 4);
  assert.equal(ra.responses.length, 3);
  assert.deepEqual(JSON.parse(b.stdout).responses, ra.responses);
  assert.notDeepEqual(
    ra.responses.map((x: { text: string }) => x.text),
    ra.responses.map(() => ra.responses[0].text),
    'samples differ from each other',
  );
  const lines = c.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  lines.forEach((l, i) => assert.match(l, new RegExp(`^ {2}${i + 1} {2}`)));
  assert.match(c.stderr, /stopped at the token limit \(5\)/);
});

test('papo generate: a missing image, an unencodable question, a directory without a policy', () => {
  const missing = papo(['generate', '--weights', weights, '--image', path.join(tmp, 'none.png'), '--question', 'What is 3+5?']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, `papo: --image ${path.join(tmp, 'none.png')}: image file not found\n`);
  const question = papo(['generate', '--weights', weights, '--image', image, '--question', 'What is 3×5?']);
  assert.equal(question.status, 1);
  assert.equal(
    question.stderr,
    'papo: --question cannot be encoded: unsupported character "×" (U+00D7) at position 9; only printable ASCII (32..126) is allowed\n',
  );
  const noPolicy = papo(['generate', '--weights', tmp, '--image', image, '--question', 'What is 3+5?']);
  assert.equal(noPolicy.status, 1);
  assert.match(noPolicy.stderr, /^papo: policy weights: .* holds neither weights, a checkpoint, nor a run's checkpoints/);
});
