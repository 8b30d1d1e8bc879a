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

test('saving over an existing path is refused and changes nothing; no temporary directories remain', async () => {
  const parent = await tmpDir();
  const dir = path.join(parent, 'ckpt');
  const p1 = initParams(cfg, 1);
  await savePolicyWeights(dir, { config: cfg, params: p1 });
  await assert.rejects(savePolicyWeights(dir, { config: cfg, params: initParams(cfg, 2) }), /already exists \(nothing was changed\)/);
  assert.deepEqual((await loadPolicyWeights(dir)).params.tok_emb, p1.tok_emb);
  assert.deepEqual(await fs.readdir(parent), ['ckpt']);
  // a user's own directory is not a place for weights either
  const mine = path.join(parent, 'mine');
  await fs.mkdir(mine);
  await fs.writeFile(path.join(mine, 'notes.txt'), 'keep me');
  await assert.rejects(savePolicyWeights(mine, { config: cfg, params: p1 }), /already exists/);
  assert.equal(await fs.readFile(path.join(mine, 'notes.txt'), 'utf8'), 'keep me');
});

test('concurrent saves to one path: exactly one wins, the result loads, the others are refused', async () => {
  const parent = await tmpDir();
  const dir = path.join(parent, 'ckpt');
  const results = await Promise.allSettled([1, 2, 3, 4].map((seed) => savePolicyWeights(dir, { config: cfg, params: initParams(cfg, seed) })));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const back = await loadPolicyWeights(dir);
  assert.ok([1, 2, 3, 4].some((seed) => initParams(cfg, seed).tok_emb.every((x, i) => x === back.params.tok_emb[i])));
  assert.deepEqual(await fs.readdir(parent), ['ckpt']);
});

test('every parameter chunk carries the standard Zarr v3 crc32c codec', async () => {
  const dir = path.join(await tmpDir(), 'ckpt');
  await savePolicyWeights(dir, { config: cfg, params: initParams(cfg) });
  const meta = JSON.parse(await fs.readFile(path.join(dir, 'tok_emb', 'zarr.json'), 'utf8'));
  assert.deepEqual(
    meta.codecs.map((c: { name: string }) => c.name),
    ['bytes', 'crc32c'],
  );
  assert.equal(JSON.parse(await fs.readFile(path.join(dir, 'zarr.json'), 'utf8')).attributes.format_version, 2);
});

test('the shipped warm start (format version 1: CRC-32 in the attributes) still loads', async () => {
  const saved = await loadPolicyWeights('assets/warm-start');
  assert.ok(Object.keys(saved.params).length > 0);
});

test('a missing path says so; a run directory or a checkpoint directory resolves to its weights', async () => {
  const parent = await tmpDir();
  await assert.rejects(loadPolicyWeights(path.join(parent, 'nope')), /nope does not exist/);
  await fs.mkdir(path.join(parent, 'run', 'weights'), { recursive: true });
  await assert.rejects(loadPolicyWeights(path.join(parent, 'run')), /did you mean .*run\/weights/);
});

test('invalid weights are refused before anything is written', async () => {
  const parent = await tmpDir();
  const params = initParams(cfg);
  params.ln_f_g[0] = Number.NaN;
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
  await assert.rejects(loadPolicyWeights(dir), /parameter 'tok_emb' is unreadable: .*crc32c mismatch/);
  bytes[100] ^= 0xff;
  await fs.writeFile(emb, bytes.subarray(0, bytes.length - 7));
  await assert.rejects(loadPolicyWeights(dir), /parameter 'tok_emb'/);
  await fs.writeFile(emb, bytes);
  await fs.rm(path.join(dir, 'dec.0.w1'), { recursive: true });
  await assert.rejects(loadPolicyWeights(dir), /parameter 'dec.0.w1' is unreadable/);
  await assert.rejects(loadPolicyWeights(path.join(dir, 'nope')), /does not exist/);
});

test('a missing path that is not a weights directory suggests <dir>/weights', async () => {
  const missing = path.join(await tmpDir(), 'runs', 'sft');
  await assert.rejects(loadPolicyWeights(missing), {
    message: `policy weights: ${missing} does not exist (papo sft and papo train write weights to <run dir>/weights, e.g. ${path.join(missing, 'weights')})`,
  });
  await assert.rejects(loadPolicyWeights(path.join(missing, 'weights')), { message: `policy weights: ${path.join(missing, 'weights')} does not exist` });
});
