import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { watchLossHacking, type LossHackingAlarm } from '../../operators/watch-loss-hacking.ts';
import { collect } from './fakes.ts';
import { assertClose } from '../asserts.ts';

const opts = { klPrcpThreshold: 0.5, accuracyDrop: 0.1, window: 3 };

type StepRecord = { step: number; metrics: Record<string, number> };

/** Step records as the sink emits them: the loss metric is minus kl_prcp. */
const steps = (kl: number[], acc: number[]): StepRecord[] =>
  kl.map((k, i) => ({ step: i + 1, metrics: { 'actor/kl_prcp_loss': -k, 'reward/accuracy/mean': acc[i] } }));

async function run(records: StepRecord[]) {
  const alarms: LossHackingAlarm[] = [];
  const out = await collect(from(records).pipe(watchLossHacking(opts, (a) => alarms.push(a))));
  return { alarms, out };
}

test('fires with the step and the window means when kl_prcp climbs past the threshold while accuracy falls', async () => {
  const records = steps([0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.0, 1.2], [0.6, 0.7, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4]);
  const { alarms, out } = await run(records);
  // Window means (3 steps): best accuracy 0.7667 at steps 4-5. Step 6: kl 0.467, under the threshold.
  // Step 7: kl 0.733, accuracy 0.6 < 0.7667 - 0.1. Step 8: kl 1.0, accuracy 0.5.
  assert.deepEqual(
    alarms.map((a) => a.step),
    [7, 8],
  );
  assertClose(alarms[0].klPrcp, (0.4 + 0.8 + 1.0) / 3, 1e-9);
  assertClose(alarms[0].accuracy, 0.6, 1e-9);
  assertClose(alarms[0].bestAccuracy, 2.3 / 3, 1e-9);
  assertClose(alarms[1].klPrcp, 1.0, 1e-9);
  assertClose(alarms[1].accuracy, 0.5, 1e-9);
  assertClose(alarms[1].bestAccuracy, 2.3 / 3, 1e-9);
  assert.match(alarms[0].message, /possible loss hacking at step 7: kl_prcp 0\.733 \(over 0\.5\) while accuracy 0\.600 fell from 0\.767/);
  // Records pass through unchanged.
  assert.equal(out.length, records.length);
  out.forEach((r, i) => assert.equal(r, records[i]));
});

test('silent on a healthy run: kl_prcp high while accuracy holds, or accuracy falling with a low kl_prcp', async () => {
  const rising = await run(steps([0.2, 0.6, 0.9, 1.2, 1.5, 1.8], [0.3, 0.4, 0.5, 0.6, 0.65, 0.7]));
  assert.deepEqual(rising.alarms, []);
  const plateau = await run(steps([0.8, 0.8, 0.8, 0.8, 0.8, 0.8], [0.7, 0.72, 0.69, 0.71, 0.68, 0.7]));
  assert.deepEqual(plateau.alarms, []);
  const lowKl = await run(steps([0.1, 0.1, 0.1, 0.2, 0.2, 0.3], [0.9, 0.9, 0.9, 0.5, 0.3, 0.1]));
  assert.deepEqual(lowKl.alarms, []);
});

test('waits for a full window, and skips steps without the figures', async () => {
  // A crash within the first window cannot fire: there is no window mean yet.
  const short = await run(steps([2, 2], [0.9, 0.1]));
  assert.deepEqual(short.alarms, []);
  // Steps without kl_prcp (e.g. plain GRPO) are ignored, not counted as zeros.
  const records: StepRecord[] = [
    ...steps([0.1, 0.1, 0.1], [0.8, 0.8, 0.8]),
    { step: 4, metrics: { 'reward/accuracy/mean': 0 } },
    { step: 5, metrics: {} },
    ...steps([1, 1, 1], [0.5, 0.5, 0.5]).map((r) => ({ ...r, step: r.step + 5 })),
  ];
  const { alarms, out } = await run(records);
  assert.equal(out.length, 8);
  // Window means at steps 6, 7, 8: kl 0.4, 0.7, 1.0; accuracy 0.7, 0.6, 0.5 against a best of 0.8.
  assert.deepEqual(
    alarms.map((a) => a.step),
    [7, 8],
  );
  assertClose(alarms[0].bestAccuracy, 0.8, 1e-9);
});

test('the second symptom: accuracy falls while the sampled tokens entropy rises, kl_prcp low (the collapse seen on digits)', async () => {
  // window 3, entropyRise 1.5. Accuracy window means: 0.8, 0.8, 0.8, 0.7, 0.5, 0.3; entropy means 0.2, 0.2, 0.2, 0.25, 0.35, 0.45
  const kl = [0.2, 0.2, 0.2, 0.2, 0.1, 0.05, 0.01, 0.01];
  const acc = [0.8, 0.8, 0.8, 0.8, 0.8, 0.5, 0.2, 0.2];
  const ent = [0.2, 0.2, 0.2, 0.2, 0.2, 0.35, 0.5, 0.5];
  const records = kl.map((k, i) => ({ step: i + 1, metrics: { 'actor/kl_prcp_loss': -k, 'reward/accuracy/mean': acc[i], 'actor/entropy_loss': ent[i] } }));
  const alarms: LossHackingAlarm[] = [];
  await collect(from(records).pipe(watchLossHacking({ ...opts, entropyRise: 1.5 }, (a) => alarms.push(a))));
  // step 6: accuracy 0.7 (not 0.1 below 0.8); step 7: accuracy 0.5, entropy 0.35 = 1.75x 0.2; step 8: 0.3, 0.45
  assert.deepEqual(
    alarms.map((a) => [a.step, a.symptom]),
    [
      [7, 'entropy'],
      [8, 'entropy'],
    ],
  );
  assertClose(alarms[0].entropy!, 0.35, 1e-9);
  assertClose(alarms[0].lowestEntropy!, 0.2, 1e-9);
  assert.match(
    alarms[0].message,
    /possible loss hacking at step 7: entropy 0\.350 is 1\.7x its lowest \(0\.200; kl_prcp 0\.053\) while accuracy 0\.500 fell from 0\.800/,
  );
  // off (0 or absent): the same run is silent, as kl_prcp never passes its threshold
  const silent: LossHackingAlarm[] = [];
  await collect(from(records).pipe(watchLossHacking(opts, (a) => silent.push(a))));
  await collect(from(records).pipe(watchLossHacking({ ...opts, entropyRise: 0 }, (a) => silent.push(a))));
  assert.deepEqual(silent, []);
  // entropy rising while accuracy holds is no alarm
  const holding = records.map((r) => ({ ...r, metrics: { ...r.metrics, 'reward/accuracy/mean': 0.8 } }));
  const none: LossHackingAlarm[] = [];
  await collect(from(holding).pipe(watchLossHacking({ ...opts, entropyRise: 1.5 }, (a) => none.push(a))));
  assert.deepEqual(none, []);
});

test('the early symptom: kl_prcp on the questions that need no image passes its threshold, accuracy intact', async () => {
  const general = [0.005, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05];
  const records = general.map((g, i) => ({
    step: i + 1,
    metrics: { 'actor/kl_prcp_loss': -0.2, 'reward/accuracy/mean': 0.6, 'actor/entropy_loss': 0.2, 'actor/kl_prcp/general': g },
  }));
  const alarms: LossHackingAlarm[] = [];
  await collect(from(records).pipe(watchLossHacking({ ...opts, generalKlPrcp: 0.02 }, (a) => alarms.push(a))));
  // window means (3 steps): 0.00667, 0.01167, 0.02 (not over), 0.03, 0.04
  assert.deepEqual(
    alarms.map((a) => [a.step, a.symptom]),
    [
      [6, 'kl_prcp_general'],
      [7, 'kl_prcp_general'],
    ],
  );
  assertClose(alarms[0].klPrcpGeneral!, 0.03, 1e-9);
  assert.match(alarms[0].message, /step 6: kl_prcp on the questions that need no image 0\.030 \(over 0\.02; mean of the last 3 steps\)/);
  // off, or no general questions logged: silent
  const silent: LossHackingAlarm[] = [];
  await collect(from(records).pipe(watchLossHacking(opts, (a) => silent.push(a))));
  const noGeneral = records.map((r) => ({ ...r, metrics: { ...r.metrics, 'actor/kl_prcp/general': Number.NaN } }));
  await collect(from(noGeneral).pipe(watchLossHacking({ ...opts, generalKlPrcp: 0.02 }, (a) => silent.push(a))));
  assert.deepEqual(silent, []);
});
