import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { CheckpointStore, type Checkpoint } from '../../storage/checkpoints.ts';
import { loadPolicyWeights } from '../../storage/policy-weights.ts';

const cfg = policyConfig({ dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 8, maxResponseLen: 8, seed: 3 });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'papo-ckpt-'));

function checkpoint(step: number, seed = step): Checkpoint {
  return {
    kind: 'train',
    step,
    policy: { config: cfg, params: initParams(cfg, seed) },
    optimizer: { step: step * 2, m: initParams(cfg, seed + 100), v: initParams(cfg, seed + 200) },
    samplers: [{ version: step - 1, params: initParams(cfg, seed + 300) }],
    state: { version: step, cursor: { position: step * 4 }, metrics: { 'val-core/accuracy/overall': step / 10 } },
  };
}

function assertSameCheckpoint(a: Checkpoint, b: Checkpoint) {
  assert.equal(a.step, b.step);
  assert.deepEqual(a.state, b.state);
  assert.deepEqual(a.policy.config, b.policy.config);
  for (const k of Object.keys(a.policy.params)) {
    assert.deepEqual(a.policy.params[k], b.policy.params[k], k);
    assert.deepEqual(a.optimizer.m[k], b.optimizer.m[k], `m ${k}`);
    assert.deepEqual(a.optimizer.v[k], b.optimizer.v[k], `v ${k}`);
  }
  assert.equal(a.optimizer.step, b.optimizer.step);
  assert.deepEqual(
    a.samplers.map((s) => s.version),
    b.samplers.map((s) => s.version),
  );
  a.samplers.forEach((s, i) => assert.deepEqual(s.params, b.samplers[i].params));
}

test('save, then load: the same checkpoint; latest names it; its policy loads as weights', async () => {
  const run = tmp();
  const store = new CheckpointStore(run);
  const c = checkpoint(3);
  const saved = await store.save(c);
  assert.equal(saved.name, 'step_000003');
  assert.ok(saved.bytes > 0);
  assert.equal(await store.latest(), 'step_000003');
  assertSameCheckpoint(await store.load('step_000003'), c);
  assert.deepEqual((await loadPolicyWeights(saved.dir)).params.tok_emb, c.policy.params.tok_emb, 'a checkpoint directory is accepted as weights');
  assert.deepEqual((await loadPolicyWeights(run)).params.tok_emb, c.policy.params.tok_emb, 'a run directory resolves to its latest checkpoint');
  assert.deepEqual(fs.readdirSync(store.dir).sort(), ['latest', 'step_000003']);
});

test('concurrent saves into one run directory: every one is published whole under its own name, latest names a complete one', async () => {
  const store = new CheckpointStore(tmp());
  await store.save(checkpoint(1));
  const saves = await Promise.all([2, 2, 2, 3].map((step, i) => store.save(checkpoint(step, 10 + i))));
  assert.deepEqual(saves.map((s) => s.name).sort(), ['step_000002', 'step_000002-2', 'step_000002-3', 'step_000003']);
  assert.equal((await store.list()).length, 5);
  const latest = (await store.latest())!;
  assert.ok(saves.some((s) => s.name === latest));
  await store.load(latest);
  await store.load('step_000001');
  assert.ok(!fs.readdirSync(store.dir).some((n) => n.includes('.tmp-')), 'no temporaries left');
});

test('an interrupted save (no COMPLETE marker, temporary name) is ignored and swept; a torn latest falls back to the newest complete', async () => {
  const store = new CheckpointStore(tmp());
  await store.save(checkpoint(1));
  // what a kill mid-save leaves: a temporary directory, and a published directory without its marker
  fs.mkdirSync(path.join(store.dir, 'step_000002.tmp-999-abcdef12', 'policy'), { recursive: true });
  fs.mkdirSync(path.join(store.dir, 'step_000003'));
  fs.writeFileSync(path.join(store.dir, 'latest.tmp-999-abcdef12'), 'step_00');
  assert.equal(await store.latest(), 'step_000001');
  assert.deepEqual(
    (await store.list()).map((c) => c.name),
    ['step_000001'],
  );
  await assert.rejects(store.load('step_000003'), /incomplete \(no COMPLETE marker\)/);
  assert.deepEqual((await store.sweep()).sort(), ['latest.tmp-999-abcdef12', 'step_000002.tmp-999-abcdef12']);
  fs.writeFileSync(path.join(store.dir, 'latest'), 'step_000009\n');
  assert.equal(await store.latest(), 'step_000001', 'latest naming a missing checkpoint falls back');
  // a user's own file in the directory is never touched
  fs.writeFileSync(path.join(store.dir, 'notes.txt'), 'mine');
  await store.sweep();
  await store.retain({ keepLast: 1 });
  assert.equal(fs.readFileSync(path.join(store.dir, 'notes.txt'), 'utf8'), 'mine');
});

test('a run directory as weights loads the checkpoint a resume would: latest missing, torn, naming an incomplete or deleted directory', async () => {
  const run = tmp();
  const store = new CheckpointStore(run);
  for (const step of [1, 2, 3]) await store.save(checkpoint(step));
  const latestFile = path.join(store.dir, 'latest');
  /** loadPolicyWeights(run) gives `step`'s weights, says so, and agrees with CheckpointStore.latest(). */
  const loadsStep = async (step: number, why: string) => {
    const name = `step_00000${step}`;
    assert.equal(await store.latest(), name, why);
    const saved = await loadPolicyWeights(run);
    assert.equal(saved.dir, path.join(store.dir, name, 'policy'), why);
    assert.equal(saved.meta.step, step, why);
    assert.deepEqual(saved.params.tok_emb, checkpoint(step).policy.params.tok_emb, why);
  };
  await loadsStep(3, 'latest names the newest');
  fs.rmSync(latestFile);
  await loadsStep(3, 'no latest: the highest complete step');
  fs.writeFileSync(latestFile, 'step_00');
  await loadsStep(3, 'a torn latest');
  fs.writeFileSync(latestFile, 'step_000001\n');
  await loadsStep(1, 'latest naming an older complete checkpoint is followed, as a resume follows it');
  fs.writeFileSync(latestFile, '../../elsewhere\n');
  await loadsStep(3, 'latest naming something that is not a checkpoint');
  fs.writeFileSync(latestFile, 'step_000003\n');
  fs.rmSync(path.join(store.dir, 'step_000003', 'COMPLETE'));
  await loadsStep(2, 'latest naming a directory without COMPLETE');
  await assert.rejects(loadPolicyWeights(path.join(store.dir, 'step_000003')), {
    message: `policy weights: checkpoint ${path.join(store.dir, 'step_000003')} is incomplete (no COMPLETE marker): it was being written when the run stopped`,
  });
  fs.rmSync(path.join(store.dir, 'step_000003'), { recursive: true });
  await loadsStep(2, 'latest naming a deleted directory');
});

test('a run directory without a complete checkpoint is a clear error naming it', async () => {
  const run = tmp();
  const store = new CheckpointStore(run);
  await store.save(checkpoint(1));
  fs.rmSync(path.join(store.dir, 'step_000001', 'COMPLETE'));
  fs.mkdirSync(path.join(store.dir, 'step_000002.tmp-999-abcdef12'));
  assert.equal(await store.latest(), undefined);
  await assert.rejects(loadPolicyWeights(run), {
    message: `policy weights: run directory ${run} has no complete checkpoint in ${store.dir}`,
  });
  fs.mkdirSync(path.join(run, 'weights'));
  await assert.rejects(loadPolicyWeights(run), {
    message: `policy weights: run directory ${run} has no complete checkpoint in ${store.dir}; did you mean ${path.join(run, 'weights')}?`,
  });
});

test('retention keeps the newest n and the best by a metric', async () => {
  const store = new CheckpointStore(tmp());
  for (const step of [1, 2, 3, 4, 5]) await store.save(checkpoint(step));
  const accuracy: Record<string, number> = { step_000001: 0.5, step_000002: 0.9, step_000003: 0.4, step_000004: 0.3, step_000005: 0.2 };
  const removed = await store.retain({ keepLast: 2, best: { name: 'acc', higherIsBetter: true, value: (n) => accuracy[n] } });
  assert.deepEqual(removed.sort(), ['step_000001', 'step_000003']);
  assert.deepEqual(
    (await store.list()).map((c) => c.name),
    ['step_000002', 'step_000004', 'step_000005'],
  );
  assert.equal(await store.latest(), 'step_000005');
});

test('a flipped byte in any chunk of a checkpoint is detected and names the array', async () => {
  const store = new CheckpointStore(tmp());
  const { dir } = await store.save(checkpoint(2));
  const chunks = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => /(^|\/)c\/0(\/0)*$/.test(f) && fs.statSync(path.join(dir, f)).isFile());
  assert.ok(chunks.length > 20, `${chunks.length} chunks`);
  for (const rel of chunks) {
    const file = path.join(dir, rel);
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    fs.writeFileSync(file, bytes);
    const array = rel.split('/c/')[0].split('/').at(-1)!;
    await assert.rejects(store.load('step_000002'), (err: Error) => err.message.includes(`'${array}'`) && /crc32c mismatch/.test(err.message), rel);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    fs.writeFileSync(file, bytes);
  }
  await store.load('step_000002');
  const chunk = path.join(dir, chunks[0]);
  fs.truncateSync(chunk, 3);
  await assert.rejects(store.load('step_000002'), /too short to hold its crc32c|truncated|cut short/);
});

test('an unknown format version and a missing checkpoint are clear errors', async () => {
  const store = new CheckpointStore(tmp());
  const { dir } = await store.save(checkpoint(1));
  const meta = path.join(dir, 'zarr.json');
  const group = JSON.parse(fs.readFileSync(meta, 'utf8'));
  group.attributes.format_version = 99;
  fs.writeFileSync(meta, JSON.stringify(group));
  await assert.rejects(store.load('step_000001'), /unsupported checkpoint format version 99/);
  await assert.rejects(store.load('step_000007'), /step_000007 does not exist/);
});

test('disk full during a save: the error names the directory and step, the previous checkpoint and latest are intact, nothing is left behind', async () => {
  const store = new CheckpointStore(tmp());
  const first = checkpoint(1);
  await store.save(first);
  const real = fs.promises.writeFile;
  let calls = 0;
  fs.promises.writeFile = (async (...args: Parameters<typeof real>) => {
    if (++calls === 7) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return real(...args);
  }) as typeof real;
  try {
    await assert.rejects(store.save(checkpoint(2)), (err: Error) =>
      err.message.includes(`checkpoint of step 2 to ${store.dir} failed: disk full (ENOSPC); the previous checkpoint is intact`),
    );
  } finally {
    fs.promises.writeFile = real;
  }
  assert.equal(await store.latest(), 'step_000001');
  assertSameCheckpoint(await store.load('step_000001'), first);
  assert.deepEqual(fs.readdirSync(store.dir).sort(), ['latest', 'step_000001']);
});

test('a `latest` that is a directory is named, with what to do; nothing is removed', async () => {
  const run = tmp();
  const store = new CheckpointStore(run);
  await store.save(checkpoint(2));
  fs.rmSync(path.join(store.dir, 'latest'));
  fs.mkdirSync(path.join(store.dir, 'latest'));
  await assert.rejects(store.latest(), new RegExp(`${path.join(store.dir, 'latest').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a directory: .*remove it`));
  assert.ok(fs.existsSync(path.join(store.dir, 'step_000002', 'COMPLETE')));
});
