import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Params } from '../../models/params.ts';
import { PolicyVersions } from '../../operators/policy-versions.ts';
import { Rng } from '../../util/rng.ts';

const weights = (v: number): Params => ({ w: Float32Array.of(v) });
const weightOf = (p: Params) => p.w[0];

/**
 * Trains `steps` steps from `versions` as the sink does: step k samples with versionOf(k) (asked when the
 * gate admits it, S + 1 steps ahead), then its update publishes a new version unless `skipped(k)`.
 * Returns what each step sampled with and each step's checkpoint.
 */
async function drive(versions: PolicyVersions, from: number, steps: number, skipped: (k: number) => boolean) {
  const sampledWith: number[] = [];
  const checkpoints = [];
  for (let k = from; k < from + steps; k++) {
    sampledWith.push(versions.versionOf({ step: k }));
    if (!skipped(k)) {
      const v = versions.current + 1;
      assert.equal(await versions.publish(weights(v)), v);
    }
    versions.applied(k);
    checkpoints.push(await versions.checkpoint(k));
  }
  return { sampledWith, checkpoints };
}

test('step k samples with the version after step k - S - 1 (version 0 before the first steps)', async () => {
  for (const S of [0, 1, 2, 3]) {
    const v = PolicyVersions.restore({ maxStaleness: S, start: weights(0) });
    const { sampledWith } = await drive(v, 1, 8, () => false);
    assert.deepEqual(
      sampledWith,
      Array.from({ length: 8 }, (_, i) => Math.max(0, i + 1 - S - 1)),
      `S=${S}`,
    );
  }
});

test('asking for a step whose sampling version is not trained yet is an error', () => {
  const v = PolicyVersions.restore({ maxStaleness: 1, start: weights(0) });
  assert.equal(v.versionOf({ step: 2 }), 0);
  assert.throws(() => v.versionOf({ step: 3 }), /step 3 samples with the version after step 1, which is not trained yet/);
});

test('a checkpoint holds the weights the next S steps sample with, and the current ones', async () => {
  const v = PolicyVersions.restore({ maxStaleness: 2, start: weights(0) });
  const { checkpoints } = await drive(v, 1, 5, () => false);
  const c = checkpoints[4]; // after step 5: version 5; steps 6, 7 sample with the versions after 3 and 4
  assert.equal(c.version, 5);
  assert.equal(weightOf(c.params), 5);
  assert.deepEqual(
    c.samplers.map((s) => [s.version, weightOf(s.params)]),
    [
      [3, 3],
      [4, 4],
    ],
  );
  assert.deepEqual(c.versions, [
    [3, 3],
    [4, 4],
    [5, 5],
  ]);
  // early steps still need the starting weights
  const early = PolicyVersions.restore({ maxStaleness: 2, start: weights(0) });
  const first = (await drive(early, 1, 1, () => false)).checkpoints[0];
  assert.deepEqual(
    first.samplers.map((s) => s.version),
    [0],
  );
});

test('a run resumed from any checkpoint samples and checkpoints exactly as the run that went on (random skipped updates)', async () => {
  const rng = Rng.seeded(7);
  for (let trial = 0; trial < 40; trial++) {
    const S = rng.int(4);
    const total = 3 + rng.int(10);
    const skips = new Set(Array.from({ length: total }, (_, i) => i + 1).filter(() => rng.float() < 0.3));
    const whole = await drive(PolicyVersions.restore({ maxStaleness: S, start: weights(0) }), 1, total, (k) => skips.has(k));
    const at = 1 + rng.int(total - 1);
    const c = whole.checkpoints[at - 1];
    const resumed = PolicyVersions.restore({ maxStaleness: S, start: weights(0), from: c });
    const rest = await drive(resumed, at + 1, total - at, (k) => skips.has(k));
    const plain = (cs: typeof rest.checkpoints) =>
      cs.map((x) => ({ ...x, params: weightOf(x.params), samplers: x.samplers.map((s) => [s.version, weightOf(s.params)]) }));
    const where = `S=${S} total=${total} resumed after ${at}, skipped ${[...skips]}`;
    assert.deepEqual(rest.sampledWith, whole.sampledWith.slice(at), where);
    assert.deepEqual(plain(rest.checkpoints), plain(whole.checkpoints.slice(at)), where);
  }
});

test('subscribers receive every new version in order; a late one first gets the versions still needed', async () => {
  const v = PolicyVersions.restore({ maxStaleness: 1, start: weights(0) });
  const early: number[] = [];
  await v.subscribe((version, p) => {
    assert.equal(weightOf(p), version);
    early.push(version);
  });
  await drive(v, 1, 3, () => false);
  assert.deepEqual(early, [0, 1, 2, 3]);
  const late: number[] = [];
  await v.subscribe((version) => {
    late.push(version);
  });
  assert.deepEqual(late, [2, 3], 'step 4 samples with version 2; 3 is current');
  const unsubscribe = await v.subscribe(() => assert.fail('unsubscribed'), { replay: false });
  unsubscribe();
  await v.publish(weights(4));
  assert.deepEqual(late, [2, 3, 4]);
});

test('untracked versions (a sink given only an engine) know weights from the first publish on', async () => {
  const v = PolicyVersions.untracked({ maxStaleness: 0, version: 5 });
  assert.equal(v.current, 5);
  await assert.rejects(v.params(), /weights of version 5 are not known/);
  await v.publish(weights(6));
  assert.equal(weightOf(await v.params()), 6);
});

/**
 * A subscriber that holds what it is sent as the engine does (the latest `retain` versions, as copies)
 * and gives them back; asking for another version is an error, as it is in the engine.
 */
function holder(retain: number) {
  const held: { version: number; params: Params }[] = [];
  const reads: number[] = [];
  return {
    reads,
    listener: (version: number, p: Params) => {
      held.push({ version, params: { w: p.w.slice() } });
      while (held.length > retain) held.shift();
    },
    source: async (version: number) => {
      reads.push(version);
      const h = held.find((x) => x.version === version);
      if (!h) throw new Error(`getWeights: policy version ${version} is no longer held`);
      return { w: h.params.w.slice() };
    },
  };
}

test('weights held by the engine (heldBy): none kept here, checkpoints and resumptions the same as with them kept', async () => {
  const rng = Rng.seeded(11);
  const plain = (cs: Awaited<ReturnType<typeof drive>>['checkpoints']) =>
    cs.map((x) => ({ ...x, params: weightOf(x.params), samplers: x.samplers.map((s) => [s.version, weightOf(s.params)]) }));
  for (let trial = 0; trial < 40; trial++) {
    const S = rng.int(4);
    const total = 3 + rng.int(10);
    const skips = new Set(Array.from({ length: total }, (_, i) => i + 1).filter(() => rng.float() < 0.3));
    const kept = await drive(PolicyVersions.restore({ maxStaleness: S, start: weights(0) }), 1, total, (k) => skips.has(k));
    const v = PolicyVersions.restore({ maxStaleness: S, start: weights(0) });
    const h = holder(S + 2);
    await v.subscribe(h.listener);
    v.heldBy(h.source);
    assert.deepEqual(v.kept, []);
    const held = await drive(v, 1, total, (k) => skips.has(k));
    const where = `S=${S} total=${total}, skipped ${[...skips]}`;
    assert.deepEqual(v.kept, [], where);
    assert.deepEqual(held.sampledWith, kept.sampledWith, where);
    assert.deepEqual(plain(held.checkpoints), plain(kept.checkpoints), where);
    // resumed from a checkpoint, then held by a new engine: the same again
    const at = 1 + rng.int(total - 1);
    const resumed = PolicyVersions.restore({ maxStaleness: S, start: weights(0), from: held.checkpoints[at - 1] });
    const h2 = holder(S + 2);
    await resumed.subscribe(h2.listener);
    resumed.heldBy(h2.source);
    const rest = await drive(resumed, at + 1, total - at, (k) => skips.has(k));
    assert.deepEqual(plain(rest.checkpoints), plain(kept.checkpoints.slice(at)), `${where}, resumed after ${at}`);
  }
});

test('heldBy: a late subscriber gets the versions still needed from the holder; a version it lost is an error naming it', async () => {
  const v = PolicyVersions.restore({ maxStaleness: 1, start: weights(0) });
  const h = holder(3);
  await v.subscribe(h.listener);
  v.heldBy(h.source);
  for (let k = 1; k <= 3; k++) {
    await v.publish(weights(k));
    v.applied(k);
  }
  const late: [number, number][] = [];
  await v.subscribe((version, p) => {
    late.push([version, weightOf(p)]);
  });
  assert.deepEqual(late, [
    [2, 2],
    [3, 3],
  ]);
  assert.deepEqual(h.reads, [2, 3]);
  const forgetful = PolicyVersions.restore({ maxStaleness: 1, start: weights(0) });
  const h1 = holder(1);
  await forgetful.subscribe(h1.listener);
  forgetful.heldBy(h1.source);
  await forgetful.publish(weights(1));
  forgetful.applied(1);
  await forgetful.publish(weights(2));
  forgetful.applied(2);
  await assert.rejects(forgetful.checkpoint(2), /getWeights: policy version 1 is no longer held/);
});
