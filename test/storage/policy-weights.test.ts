import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { savePolicyWeights, loadPolicyWeights } from '../../storage/policy-weights.ts';

const cfg = policyConfig({ dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 8, maxResponseLen: 8, seed: 3 });

async function tmpDir() {
  return fs.mkdtemp(path.join(os.tmpdir(), 'papo-weights-'));
}

test('save then load gives identical parameters, config and meta', async () => {
  const dir = path.join(await tmpDir(), 'ckpt');
  const params = initParams(cfg);
  await savePolicyWeights(dir, { config: cfg, params, meta: { step: 12 } });
  const back = await loadPolicyWeights(dir);
  assert.deepEqual(back.config, cfg);
  assert.deepEqual(back.meta, { step: 12 });
  assert.deepEqual(Object.keys(back.params).sort(), Object.keys(params).sort());
  for (const [k, v] of Object.entries(params)) assert.deepEqual(back.params[k], v, k);
  const group = JSON.parse(await fs.readFile(path.join(dir, 'zarr.json'), 'utf8'));
  assert.equal(group.zarr_format, 3);
  assert.equal(group.node_type, 'group');
});

test('overwriting replaces the checkpoint and leaves no temporary directories', async () => {
  const parent = await tmpDir();
  const dir = path.join(parent, 'ckpt');
  await savePolicyWeights(dir, { config: cfg, params: initParams(cfg, 1) });
  const p2 = initParams(cfg, 2);
  await savePolicyWeights(dir, { config: cfg, params: p2 });
  assert.deepEqual((await loadPolicyWeights(dir)).params['tok_emb'], p2['tok_emb']);
  assert.deepEqual(await fs.readdir(parent), ['ckpt']);
});

test('invalid weights are refused before anything is written', async () => {
  const parent = await tmpDir();
  const params = initParams(cfg);
  params['ln_f_g'][0] = Number.NaN;
  await assert.rejects(savePolicyWeights(path.join(parent, 'x'), { config: cfg, params }), /ln_f_g' has a non-finite value/);
  assert.deepEqual(await fs.readdir(parent), []);
});

test('a flipped byte, a truncated chunk and a missing array are clear errors naming the parameter', async () => {
  const dir = path.join(await tmpDir(), 'ckpt');
  await savePolicyWeights(dir, { config: cfg, params: initParams(cfg) });
  const chunk = async (name: string) => {
    const files = await fs.readdir(path.join(dir, name), { recursive: true, withFileTypes: true });
    const f = files.find((e) => e.isFile() && e.name !== 'zarr.json')!;
    return path.join(f.parentPath ?? (f as unknown as { path: string }).path, f.name);
  };
  const emb = await chunk('tok_emb');
  const bytes = await fs.readFile(emb);
  bytes[100] ^= 0xff;
  await fs.writeFile(emb, bytes);
  await assert.rejects(loadPolicyWeights(dir), /parameter 'tok_emb' fails its checksum/);
  bytes[100] ^= 0xff;
  await fs.writeFile(emb, bytes.subarray(0, bytes.length - 7));
  await assert.rejects(loadPolicyWeights(dir), /parameter 'tok_emb'/);
  await fs.writeFile(emb, bytes);
  await fs.rm(path.join(dir, 'dec.0.w1'), { recursive: true });
  await assert.rejects(loadPolicyWeights(dir), /parameter 'dec.0.w1' is unreadable/);
  await assert.rejects(loadPolicyWeights(path.join(dir, 'nope')), /cannot read policy weights/);
});
