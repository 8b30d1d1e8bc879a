/**
 * The update sink on a tiny real TfPolicy and hand-built rollout batches (no engine: a fake records the
 * published weights): version publishing and verl metric names, mini-batch / micro-batch arithmetic,
 * the staleness guard, non-finite steps, credit return on failure, and no tensor leaks; and the same
 * batches through the onnxruntime trainer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { initTf, tf } from '../../util/tf-backend.ts';
import { policyConfig } from '../../models/config.ts';
import { initParams, type Params } from '../../models/params.ts';
import { TfPolicy } from '../../models/policy-tf.ts';
import { AdamW, type AdamWConfigInput } from '../../models/optimizer.ts';
import { TfTrainer } from '../../models/trainer/tf-trainer.ts';
import { OrtTrainer } from '../../models/trainer/ort-trainer.ts';
import { encodeResponse, decode } from '../../models/tokenizer.ts';
import { objectiveConfig, type ObjectiveConfigInput, type PresetName } from '../../algorithms/config.ts';
import { makeImage, type RgbImage } from '../../util/image.ts';
import { Rng } from '../../util/rng.ts';
import type { TaskRecord } from '../../tasks/types.ts';
import type { StreamCursor } from '../../tasks/stream.ts';
import { papoUpdate, type PapoUpdateOptions, type TrainedStep } from '../../operators/papo-update.ts';
import type { RolloutBatch } from '../../operators/types.ts';
import type { Logger } from '../../util/logger.ts';

await initTf();

const cfg = policyConfig({
  imageHeight: 8,
  imageWidth: 8,
  patchSize: 4,
  dModel: 16,
  nHeads: 2,
  nLayers: 1,
  mlpRatio: 2,
  maxPromptLen: 8,
  maxResponseLen: 8,
  seed: 3,
});
const START = initParams(cfg, 3);

function noiseImage(seed: number): RgbImage {
  const img = makeImage(cfg.imageHeight, cfg.imageWidth);
  const rng = Rng.seeded(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(256);
  return img;
}

const CURSOR: StreamCursor = { version: 1, task: 'toy', fingerprint: 'toy', split: 'train', seed: 0, shuffle: false, epochs: null, epoch: 0, position: 0 };

/** Per-row log-probs of `responses` under `policy`, cut to each response's length. */
function scoreRows(policy: TfPolicy, images: RgbImage[], prompts: string[], responses: Int32Array[]): Float32Array[] {
  const out = policy.logProbs({ images, promptIds: prompts, responseIds: responses });
  const rows = out.logprobs.arraySync() as number[][];
  tf.dispose([out.logprobs, out.mask]);
  return rows.map((r, i) => Float32Array.from(r.slice(0, responses[i].length)));
}

interface BatchSpec {
  step?: number;
  P?: number;
  G?: number;
  /** response texts per row (EOS appended); default equal-length texts */
  texts?: (i: number) => string;
  versions?: (i: number) => number;
  advantages?: (i: number) => number;
  withRef?: boolean;
  withMasked?: boolean;
}

/**
 * A rollout batch as the upstream stages would leave it, scored by `policy` (so the PPO ratio is 1):
 * reference log-probs slightly off the policy's, masked log-probs on a blank image.
 */
function makeBatch(policy: TfPolicy, s: BatchSpec = {}): RolloutBatch {
  const P = s.P ?? 4;
  const G = s.G ?? 2;
  const step = s.step ?? 1;
  const records: TaskRecord[] = Array.from({ length: P }, (_, p) => ({
    id: `toy/train/${step * 100 + p}`,
    image: noiseImage(step * 100 + p),
    question: `q${p}?`,
    answer: 'a',
    family: 'toy',
    visionDependency: p % 2 === 0 ? 'high' : 'low',
    meta: {},
  }));
  const N = P * G;
  const texts = Array.from({ length: N }, (_, i) => (s.texts ? s.texts(i) : `x${String.fromCharCode(97 + (i % 26))}${i % 10}`));
  const responses = texts.map((t) => Int32Array.from(encodeResponse(t)));
  const rowImages = responses.map((_, i) => records[Math.floor(i / G)].image);
  const rowPrompts = responses.map((_, i) => records[Math.floor(i / G)].question);
  const oldLogprobs = scoreRows(policy, rowImages, rowPrompts, responses);
  const rewards = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const batch: RolloutBatch = {
    step,
    rounds: 1,
    records,
    indices: Int32Array.from(records, (_, i) => i),
    cursor: CURSOR,
    seed: 1000 + step,
    timing: { gen: 0.5 },
    groupSize: G,
    responses,
    oldLogprobs,
    texts: responses.map((r) => decode(r)),
    finished: new Uint8Array(N).fill(1),
    versions: Int32Array.from({ length: N }, (_, i) => (s.versions ? s.versions(i) : 0)),
    rewards,
    accuracy: rewards.slice(),
    format: new Float32Array(N).fill(1),
    rewardFailures: [],
    advantages: Float32Array.from({ length: N }, (_, i) => (s.advantages ? s.advantages(i) : i % 2 === 0 ? 1 : -1)),
    zeroVarianceGroups: 0,
  };
  const extra: { refLogprobs?: Float32Array[]; maskSeed?: number; maskedImages?: RgbImage[]; maskedLogprobs?: Float32Array[] } = {};
  if (s.withRef ?? true) extra.refLogprobs = oldLogprobs.map((r) => r.map((v, t) => v - 0.05 * ((t % 3) - 1)));
  if (s.withMasked ?? true) {
    const blank = makeImage(cfg.imageHeight, cfg.imageWidth);
    extra.maskSeed = 7;
    extra.maskedImages = records.map(() => blank);
    extra.maskedLogprobs = scoreRows(
      policy,
      rowImages.map(() => blank),
      rowPrompts,
      responses,
    );
  }
  return { ...batch, ...extra };
}

interface FakeEngine {
  published: { params: Params; version: number }[];
  setWeights(params: Params, version: number): Promise<void>;
}
const fakeEngine = (): FakeEngine => {
  const published: FakeEngine['published'] = [];
  return { published, setWeights: async (params, version) => void published.push({ params, version }) };
};

interface Rig {
  policy: TfPolicy;
  optimizer: AdamW;
  engine: FakeEngine;
  done: number[];
  opts: PapoUpdateOptions;
  dispose(): void;
}

function rig(
  over: Omit<Partial<PapoUpdateOptions>, 'objective'> & { preset?: PresetName; objective?: ObjectiveConfigInput; adam?: AdamWConfigInput } = {},
): Rig {
  const policy = new TfPolicy(cfg, START);
  const { preset, objective, adam, ...rest } = over;
  const optimizer = new AdamW(policy.vars, adam ?? { lr: 1e-2 });
  const engine = fakeEngine();
  const done: number[] = [];
  const opts: PapoUpdateOptions = {
    trainer: new TfTrainer(policy, optimizer),
    engine,
    objective: objectiveConfig(objective ?? {}, preset ?? 'papo_g'),
    globalBatchSize: 0,
    microBatchSize: 64,
    ppoEpochs: 1,
    maxStaleness: 0,
    initialVersion: 0,
    seed: 5,
    onStepDone: (step) => done.push(step),
    ...rest,
  };
  return {
    policy,
    optimizer,
    engine,
    done,
    opts,
    dispose: () => {
      optimizer.dispose();
      policy.dispose();
    },
  };
}

const run = (r: Rig, batches: RolloutBatch[]): Promise<TrainedStep[]> => lastValueFrom(from(batches).pipe(papoUpdate(r.opts), toArray()));

function maxAbsDiff(a: Params, b: Params): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

test('one rollout step publishes version v + 1 with the policy weights and emits verl-named metrics', async () => {
  const r = rig({ initialVersion: 4 });
  try {
    const b = makeBatch(r.policy, { versions: () => 4 });
    const [out] = await run(r, [b]);
    assert.equal(out.step, 1);
    assert.equal(out.version, 5);
    assert.equal(r.engine.published.length, 1);
    assert.equal(r.engine.published[0].version, 5);
    assert.deepEqual(r.engine.published[0].params, r.policy.getParams());
    assert.ok(maxAbsDiff(r.engine.published[0].params, START) > 1e-3, 'the weights moved');
    assert.deepEqual(r.done, [1]);
    const m = out.metrics;
    for (const k of [
      'actor/pg_loss',
      'actor/kl_loss',
      'actor/kl_prcp_loss',
      'actor/entropy_loss',
      'actor/aug_entropy_loss',
      'actor/grad_norm',
      'actor/lr',
      'critic/score/mean',
      'critic/advantages/mean',
      'response_length/mean',
      'timing_s/update_actor',
      'timing_s/update_weights',
      'timing_s/gen',
      'version_stats/sample_staleness_max',
      'version_stats/sample_staleness_avg',
      'actor/kl_prcp/vision_dependent',
      'actor/kl_prcp/general',
    ]) {
      assert.equal(typeof m[k], 'number', `metric ${k}`);
      assert.ok(Number.isFinite(m[k]), `metric ${k} = ${m[k]}`);
    }
    assert.equal(m['actor/lr'], 1e-2);
    assert.ok(m['actor/grad_norm'] > 0);
    // ratio 1 everywhere: no clipping, and the surrogate is -mean(A) over tokens (equal lengths: -mean of A = 0)
    assert.equal(m['actor/pg_clipfrac'], 0);
    assert.ok(Math.abs(m['actor/pg_loss']) < 1e-6, `pg_loss ${m['actor/pg_loss']}`);
    assert.ok(Math.abs(m['actor/ppo_kl']) < 1e-6);
    assert.ok(m['actor/kl_loss'] > 0);
    assert.ok(m['actor/kl_prcp_loss'] <= 0, 'kl_prcp_loss is -k3 >= 0 negated');
    assert.ok(Math.abs(m['critic/score/mean'] - 3 / 8) < 1e-7);
    assert.equal(m['response_length/mean'], 4);
    assert.equal(m['version_stats/sample_staleness_max'], 0);
    assert.equal(m['version_stats/policy_version'], 5);
    assert.equal(m['version_stats/dropped_stale_groups'], 0);
    assert.equal(m['actor/optimizer_steps'], 1);
    assert.equal(m['actor/skipped_steps'], 0);
    assert.equal(m['data/groups'], 4);
    assert.equal(m['perf/total_num_tokens'], 32);
    assert.ok(m['timing_s/update_actor'] >= 0);
  } finally {
    r.dispose();
  }
});

test('GRPO without masked views and DAPO without a reference leave out the metrics of the missing terms', async () => {
  const g = rig({ preset: 'grpo' });
  const d = rig({ preset: 'dapo' });
  try {
    const [grpo] = await run(g, [makeBatch(g.policy, { withMasked: false })]);
    assert.equal(typeof grpo.metrics['actor/kl_loss'], 'number');
    assert.equal(grpo.metrics['actor/kl_prcp_loss'], undefined);
    assert.equal(grpo.metrics['actor/kl_prcp/general'], undefined);
    const [dapo] = await run(d, [makeBatch(d.policy, { withMasked: false, withRef: false })]);
    assert.equal(dapo.metrics['actor/kl_loss'], undefined);
    assert.equal(dapo.metrics['actor/optimizer_steps'], 1);
  } finally {
    g.dispose();
    d.dispose();
  }
});

test('optimizer steps = ppo_epochs * ceil(P / global batch size); one version per rollout step', async () => {
  const r = rig({ globalBatchSize: 3, ppoEpochs: 2 });
  try {
    const [out] = await run(r, [makeBatch(r.policy, { P: 4 })]);
    assert.equal(out.metrics['actor/optimizer_steps'], 2 * Math.ceil(4 / 3));
    assert.equal(r.optimizer.step, 4);
    assert.deepEqual(
      r.engine.published.map((p) => p.version),
      [1],
    );
  } finally {
    r.dispose();
  }
  const whole = rig({ globalBatchSize: 0, ppoEpochs: 3 });
  try {
    const [out] = await run(whole, [makeBatch(whole.policy, { P: 4 })]);
    assert.equal(out.metrics['actor/optimizer_steps'], 3);
  } finally {
    whole.dispose();
  }
});

test('micro-batches with accumulated gradients give the same weights as one micro-batch (equal token counts)', async () => {
  // eps 1 makes the first Adam step ~ lr * g / (|g| + 1), smooth in the gradient (eps ~0 would give
  // lr * sign(g), where float noise in tiny gradients flips whole steps); no decay, no clipping.
  const adam = { lr: 1, eps: 1, weightDecay: 0, maxGradNorm: 0 };
  const results: Params[] = [];
  for (const micro of [8, 4, 2, 1]) {
    const r = rig({ adam, microBatchSize: micro, globalBatchSize: 0 });
    try {
      await run(r, [makeBatch(r.policy, { P: 4, G: 2 })]);
      results.push(r.policy.getParams());
    } finally {
      r.dispose();
    }
  }
  const moved = maxAbsDiff(results[0], START);
  assert.ok(moved > 1e-2, `the step moved the weights by ${moved}`);
  for (let i = 1; i < results.length; i++) {
    const d = maxAbsDiff(results[0], results[i]);
    assert.ok(d < 1e-5, `micro-batch variant ${i}: max weight difference ${d}`);
  }
});

test('the staleness guard drops whole groups older than maxStaleness and trains on the rest as if alone', async () => {
  // Groups 0 and 2 hold a response of version 1 (one version behind 2): dropped with maxStaleness 0.
  const spec: BatchSpec = { P: 4, versions: (i) => (i === 0 || i === 1 || i === 5 ? 1 : 2), advantages: (i) => [3, -3, 1, -1, 2, -2, -1, 1][i] };
  const r = rig({ initialVersion: 2, maxStaleness: 0 });
  const alone = rig({ initialVersion: 2, maxStaleness: 0 });
  try {
    const full = makeBatch(r.policy, spec);
    const allStale = makeBatch(r.policy, { step: 2, versions: () => 1 });
    const [out, none] = await run(r, [full, allStale]);
    assert.equal(out.metrics['version_stats/dropped_stale_groups'], 2);
    assert.equal(out.metrics['data/groups'], 2);
    assert.deepEqual(
      out.batch.records.map((x) => x.id),
      [full.records[1].id, full.records[3].id],
    );
    assert.deepEqual(Array.from(out.batch.advantages), [1, -1, -1, 1]);
    assert.deepEqual(out.batch.refLogprobs, [full.refLogprobs![2], full.refLogprobs![3], full.refLogprobs![6], full.refLogprobs![7]]);
    assert.deepEqual(out.batch.maskedLogprobs, [full.maskedLogprobs![2], full.maskedLogprobs![3], full.maskedLogprobs![6], full.maskedLogprobs![7]]);
    assert.equal(out.batch.maskedImages!.length, 2);
    assert.equal(out.metrics['version_stats/sample_staleness_max'], 0);
    assert.equal(out.version, 3);

    // The same two groups given alone train to the same weights.
    const kept = makeBatch(alone.policy, spec);
    const only = {
      ...kept,
      records: [kept.records[1], kept.records[3]],
      responses: [2, 3, 6, 7].map((i) => kept.responses[i]),
      oldLogprobs: [2, 3, 6, 7].map((i) => kept.oldLogprobs[i]),
      refLogprobs: [2, 3, 6, 7].map((i) => kept.refLogprobs![i]),
      maskedLogprobs: [2, 3, 6, 7].map((i) => kept.maskedLogprobs![i]),
      maskedImages: [kept.maskedImages![1], kept.maskedImages![3]],
      texts: [2, 3, 6, 7].map((i) => kept.texts[i]),
      finished: new Uint8Array(4).fill(1),
      versions: new Int32Array(4).fill(2),
      rewards: Float32Array.from([2, 3, 6, 7], (i) => kept.rewards[i]),
      accuracy: Float32Array.from([2, 3, 6, 7], (i) => kept.accuracy[i]),
      format: new Float32Array(4).fill(1),
      advantages: Float32Array.from([1, -1, -1, 1]),
    };
    await run(alone, [only]);
    const d = maxAbsDiff(r.policy.getParams(), alone.policy.getParams());
    assert.ok(d < 1e-6, `max weight difference ${d}`);

    // Everything stale (two versions behind by then): nothing trained, no version published, the credit still returns.
    assert.equal(none.metrics['version_stats/dropped_stale_groups'], 4);
    assert.equal(none.metrics['actor/optimizer_steps'], 0);
    assert.equal(none.version, 3);
    assert.equal(r.engine.published.length, 1);
    assert.deepEqual(r.done, [1, 2]);
  } finally {
    r.dispose();
    alone.dispose();
  }
});

test('a NaN at a valid token (old, reference or masked log-prob, or an advantage) skips the optimizer step: weights unchanged, nothing published', async () => {
  for (const poison of ['oldLogprobs', 'advantages', 'refLogprobs', 'maskedLogprobs'] as const) {
    const warnings: { event: string; message?: string }[] = [];
    const logger = { warn: (o: { event: string; message?: string }) => void warnings.push(o), debug: () => undefined } as unknown as Logger;
    const r = rig({ initialVersion: 1, logger });
    try {
      const b = makeBatch(r.policy, { versions: () => 1 });
      if (poison === 'advantages') b.advantages[5] = NaN;
      else b[poison]![3][1] = NaN;
      const [out] = await run(r, [b]);
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].event, 'nonfinite_input');
      assert.equal(
        warnings[0].message,
        poison === 'advantages' ? 'advantage of toy/train/102 response 1 is NaN' : `${poison} of toy/train/101 response 1 is NaN at token 1`,
      );
      assert.equal(out.metrics['actor/skipped_steps'], 1, poison);
      assert.equal(out.metrics['actor/optimizer_steps'], 0);
      assert.equal(out.metrics['actor/grad_norm'], undefined);
      assert.equal(out.version, 1);
      assert.equal(r.engine.published.length, 0);
      assert.equal(r.optimizer.step, 0);
      assert.equal(maxAbsDiff(r.policy.getParams(), START), 0);
      assert.deepEqual(r.done, [1]);
    } finally {
      r.dispose();
    }
  }
  // Garbage past a response's end (padding) is never read: the step is applied.
  const r = rig();
  try {
    const b = makeBatch(r.policy, { texts: (i) => (i % 2 ? 'ab' : 'abcd') });
    const short = b.oldLogprobs[1];
    const padded = new Float32Array(short.length + 2).fill(NaN);
    padded.set(short);
    (b.oldLogprobs as Float32Array[])[1] = padded;
    const [out] = await run(r, [b]);
    assert.equal(out.metrics['actor/skipped_steps'], 0);
    assert.equal(out.metrics['actor/optimizer_steps'], 1);
    assert.ok(Number.isFinite(out.metrics['actor/pg_loss']));
  } finally {
    r.dispose();
  }
});

test('onStepDone runs once per step, also when the step fails; errors name the stage and the records', async () => {
  const r = rig();
  try {
    const ok = makeBatch(r.policy, { step: 1 });
    const noRef = { ...makeBatch(r.policy, { step: 2 }), refLogprobs: undefined };
    const steps: number[] = [];
    await assert.rejects(
      lastValueFrom(
        from([ok, noRef, makeBatch(r.policy, { step: 3 })]).pipe(
          papoUpdate(r.opts),
          tap((s) => steps.push(s.step)),
          toArray(),
        ),
      ),
      (err: Error) => {
        assert.match(err.message, /^papoUpdate: step 2 \(records toy\/train\/200 \.\. toy\/train\/203\): kl_coef > 0 but the batch has no refLogprobs/);
        return true;
      },
    );
    assert.deepEqual(steps, [1]);
    assert.deepEqual(r.done, [1, 2], 'step 3 never started; steps 1 and 2 returned their credit');
  } finally {
    r.dispose();
  }
  // The masked view missing while the objective uses it.
  const m = rig();
  try {
    await assert.rejects(
      run(m, [makeBatch(m.policy, { withMasked: false })]),
      /^Error: papoUpdate: step 1 \(records toy\/train\/100 \.\. toy\/train\/103\): the objective uses the masked view but the batch has no maskedLogprobs/,
    );
    assert.deepEqual(m.done, [1]);
  } finally {
    m.dispose();
  }
  // A failing weight publish fails the step, which still returns its credit.
  const f = rig();
  try {
    f.opts.engine = { setWeights: async () => Promise.reject(new Error('engine gone')) };
    await assert.rejects(run(f, [makeBatch(f.policy)]), /papoUpdate: step 1 .*: engine gone/);
    assert.deepEqual(f.done, [1]);
  } finally {
    f.dispose();
  }
});

test('tensor count is flat across steps (applied, skipped and fully stale)', async () => {
  const r = rig({ globalBatchSize: 2, microBatchSize: 3, ppoEpochs: 2, objective: { recompute_masked_logprobs: true } });
  try {
    const batches = [1, 2, 3, 4, 5].map((step) =>
      makeBatch(r.policy, { step, versions: () => step - 1, texts: (i) => 'abcdef'.slice(0, 1 + ((i + step) % 5)) }),
    );
    batches.push(makeBatch(r.policy, { step: 6, versions: () => 0 })); // all stale: dropped
    batches[2].advantages[0] = NaN; // one mini-batch of step 3 skipped
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const out = await lastValueFrom(
      from(batches).pipe(
        papoUpdate(r.opts),
        tap(() => counts.push(tf.memory().numTensors)),
        toArray(),
      ),
    );
    assert.deepEqual(
      counts,
      batches.map(() => before),
    );
    assert.equal(out[2].metrics['actor/skipped_steps'], 2, 'the poisoned mini-batch in both epochs');
    assert.equal(out[2].metrics['actor/optimizer_steps'], 2);
    assert.deepEqual(
      out.map((s) => s.version),
      [1, 2, 3, 4, 5, 5],
    );
    assert.equal(out[5].metrics['version_stats/dropped_stale_groups'], 4);
    // Every batch was scored by the initial policy, so later ones are off-policy: ratios move, clipping may start.
    assert.ok(out.slice(0, 5).every((s) => Number.isFinite(s.metrics['actor/ppo_kl'])));
  } finally {
    r.dispose();
  }
});

test('bad options are rejected when the operator is built', () => {
  const r = rig();
  try {
    assert.throws(() => papoUpdate({ ...r.opts, microBatchSize: 0 }), /microBatchSize must be a positive integer, got 0/);
    assert.throws(() => papoUpdate({ ...r.opts, ppoEpochs: 1.5 }), /ppoEpochs must be a positive integer, got 1.5/);
  } finally {
    r.dispose();
  }
});

test('the onnxruntime trainer and the tfjs trainer publish the same weights and metrics from the same batches', async () => {
  const over = { globalBatchSize: 2, microBatchSize: 3, objective: { recompute_masked_logprobs: true } };
  const r = rig(over);
  const ortTrainer = await OrtTrainer.create(cfg, START, { lr: 1e-2 }, { threads: 1 });
  try {
    const batches = [1, 2].map((step) => makeBatch(r.policy, { step, versions: () => step - 1, texts: (i) => 'abcdef'.slice(0, 1 + ((i + step) % 5)) }));
    const engine = fakeEngine();
    const viaOrt = await lastValueFrom(from(batches).pipe(papoUpdate({ ...r.opts, trainer: ortTrainer, engine, onStepDone: undefined }), toArray()));
    const viaTf = await run(r, batches);
    assert.equal(engine.published.length, 2);
    // Key biases left out: their true gradient is 0, so Adam turns float32 noise into steps of either sign.
    const noKeyBias = (p: Params) => Object.fromEntries(Object.entries(p).filter(([n]) => !n.endsWith('.bk')));
    for (let k = 0; k < 2; k++) {
      const d = maxAbsDiff(noKeyBias(engine.published[k].params), noKeyBias(r.engine.published[k].params));
      assert.ok(d < 1e-4, `version ${k + 1}: weights differ by ${d} (lr 1e-2)`);
      for (const m of ['actor/pg_loss', 'actor/kl_loss', 'actor/kl_prcp_loss', 'actor/entropy_loss', 'actor/grad_norm']) {
        const [a, b] = [viaOrt[k].metrics[m], viaTf[k].metrics[m]];
        assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `step ${k + 1} ${m}: ${a} vs ${b}`);
      }
    }
  } finally {
    await ortTrainer.close();
    r.dispose();
  }
});
