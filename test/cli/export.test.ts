/**
 * `papo export`: a run directory's latest complete checkpoint to one ONNX file that plain onnxruntime
 * loads; an existing file is kept unless --force; a truncated or missing checkpoint is a clear error and
 * leaves nothing behind.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { initParams } from '../../models/params.ts';
import { CheckpointStore } from '../../storage/checkpoints.ts';
import { exportPolicyOnnx } from '../../storage/policy-export.ts';
import { saveTinyPolicy, TINY_POLICY } from '../pipelines/tiny-run.ts';

const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });

let dir: string;
let run: string;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-export-'));
  run = path.join(dir, 'run');
  const store = new CheckpointStore(run);
  for (const step of [1, 2]) {
    const params = initParams(TINY_POLICY, step);
    await store.save({ kind: 'sft', step, policy: { config: TINY_POLICY, params }, optimizer: { step, m: params, v: params }, samplers: [], state: {} });
  }
});

const metadataOf = (file: string) =>
  Object.fromEntries((onnxProto.onnx.ModelProto.decode(fs.readFileSync(file)).metadataProps ?? []).map((m) => [m.key, JSON.parse(m.value ?? '')]));
const tmpLeft = (d: string) => fs.readdirSync(d).filter((n) => n.includes('.tmp-'));

test('papo export RUN writes its latest checkpoint as one ONNX model; refuses to overwrite unless --force; --kv-cache', async () => {
  const out = path.join(dir, 'policy.onnx');
  const r = papo(['export', run, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const checkpoint = path.join(run, 'checkpoints', 'step_000002', 'policy');
  assert.match(r.stdout, new RegExp(`^papo export: wrote ${out} \\(\\d+\\.\\d\\d MiB\\) from the weights in ${checkpoint}, step 2\n$`));
  const meta = metadataOf(out);
  assert.equal(meta['papo.source'].weights, checkpoint);
  assert.deepEqual(meta['papo.policy_config'], TINY_POLICY);
  const session = await ort.InferenceSession.create(out);
  const L = 3;
  const logits = await session.run({
    pixels: new ort.Tensor('uint8', new Uint8Array(28 * 56 * 3).fill(200), [1, 28, 56, 3]),
    input_ids: new ort.Tensor('int64', BigInt64Array.from([2n, 40n, 41n]), [1, L]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n]), [1, L]),
  });
  assert.deepEqual(logits.logits.dims, [1, L, TINY_POLICY.vocabSize]);

  const before = fs.readFileSync(out);
  // refused before the weights are even looked for
  await assert.rejects(exportPolicyOnnx(path.join(dir, 'no-weights'), out), {
    message: `${out} already exists (nothing was changed); pass --force to replace it`,
  });
  assert.deepEqual(fs.readFileSync(out), before);
  await saveTinyPolicy(path.join(dir, 'weights'));
  const forced = papo(['export', path.join(dir, 'weights'), '--out', out, '--force', '--kv-cache']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.notDeepEqual(fs.readFileSync(out), before, 'replaced by the other weights');
  assert.equal(metadataOf(out)['papo.source'].weights, path.join(dir, 'weights'));
  assert.equal(metadataOf(out)['papo.format'].kv_cache, true);
  const cached = await ort.InferenceSession.create(out);
  assert.deepEqual(cached.inputNames, ['pixels', 'input_ids', 'attention_mask', 'past_key.0', 'past_value.0']);
  assert.deepEqual(tmpLeft(dir), []);
});

test('exportPolicyOnnx: a truncated or missing checkpoint and a bad --out are clear errors that write nothing', async () => {
  const bad = path.join(dir, 'truncated');
  await saveTinyPolicy(bad);
  const chunk = path.join(bad, 'tok_emb', 'c', '0', '0');
  fs.truncateSync(chunk, fs.statSync(chunk).size - 100);
  const out = path.join(dir, 'bad.onnx');
  await assert.rejects(exportPolicyOnnx(bad, out), /parameter 'tok_emb'/);
  assert.equal(fs.existsSync(out), false);
  // a run whose only checkpoint lost its COMPLETE marker has no checkpoint to export
  const partial = path.join(dir, 'partial');
  const store = new CheckpointStore(partial);
  const params = initParams(TINY_POLICY, 1);
  await store.save({ kind: 'sft', step: 1, policy: { config: TINY_POLICY, params }, optimizer: { step: 1, m: params, v: params }, samplers: [], state: {} });
  fs.rmSync(path.join(store.dir, 'step_000001', 'COMPLETE'));
  await assert.rejects(exportPolicyOnnx(partial, out), /policy weights: run directory .*partial has no complete checkpoint/);
  await assert.rejects(exportPolicyOnnx(run, path.join(dir, 'no', 'such', 'dir.onnx')), /directory .*no\/such does not exist/);
  await assert.rejects(exportPolicyOnnx(run, dir), /it is a directory/);
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(tmpLeft(dir), []);
});
