import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReward, parseResponse } from '../../tasks/rewards/format.ts';
import { accuracyReward, extractAnswer, normalizeAnswer } from '../../tasks/rewards/accuracy.ts';
import { compositeReward, scoreResponse } from '../../tasks/rewards/composite.ts';
import { runReward } from '../../tasks/rewards/runner.ts';
import { defineBatchReward, defineReward, type RewardInput } from '../../tasks/rewards/types.ts';

test('format: exact think-then-answer, optional surrounding whitespace, nothing after', () => {
  const ok = [
    '<think>3+5=8</think><answer>8</answer>',
    '  <think>3+5=8</think>\n<answer>8</answer>\n',
    '<think></think><answer>yes</answer>',
    '<think>a\nb</think> <answer> 8 </answer>',
  ];
  for (const s of ok) assert.equal(formatReward(s), 1, s);
  const bad = [
    '<answer>8</answer>', // missing think
    '<think>3+5=8</think>', // missing answer
    '<think>3+5=8</think><answer>8</answer> so 8', // text after
    'so <think>3+5=8</think><answer>8</answer>', // text before
    '<think>3+5=8<answer>8</answer>', // unclosed think
    '<think>x</think><answer>8', // unclosed answer
    '<think>x</think><answer></answer>', // empty answer
    '<think>x</think><answer>  </answer>',
    '<answer>8</answer><think>x</think>', // wrong order
    '<think>x</think><answer>8</answer><answer>9</answer>', // two answers
    '<think>x<think>y</think><answer>8</answer>', // nested tag
    '<think>x</think>junk<answer>8</answer>', // text between
    '',
  ];
  for (const s of bad) assert.equal(formatReward(s), 0, s);
  for (const s of [undefined, null, 42, { response: 'x' }]) assert.equal(formatReward(s), 0);
  assert.deepEqual(parseResponse('<think>r</think><answer> 8 </answer>'), { reasoning: 'r', answer: '8' });
});

test('accuracy: last answer block, normalised numbers, words and yes/no', () => {
  assert.equal(accuracyReward('<think>3+5=8</think><answer>8</answer>', '8'), 1);
  assert.equal(accuracyReward('<think>3+5=8</think><answer>9</answer>', '8'), 0);
  assert.equal(accuracyReward('<answer>8</answer> trailing', '8'), 1, 'format is scored separately');
  assert.equal(accuracyReward('<answer>3</answer><answer>8</answer>', '8'), 1, 'the last answer counts');
  assert.equal(accuracyReward('the answer is 8', '8'), 0, 'no tags: no extraction');
  assert.equal(accuracyReward('<think>8</think>', '8'), 0);
  assert.equal(accuracyReward('<answer></answer>', ''), 0, 'empty never matches');
  for (const a of ['+8', '08', ' 8 ', '8.', '8.0', 'eight', '"8"']) assert.equal(accuracyReward(`<answer>${a}</answer>`, '8'), 1, a);
  for (const a of ['-8', '88', '8 apples', 'eighty', '0x8']) assert.equal(accuracyReward(`<answer>${a}</answer>`, '8'), 0, a);
  assert.equal(accuracyReward('<answer>1,000</answer>', '1000'), 1);
  assert.equal(accuracyReward('<answer>-0</answer>', '0'), 1);
  assert.equal(accuracyReward('<answer>Yes</answer>', 'yes'), 1);
  assert.equal(accuracyReward('<answer> YES. </answer>', 'yes'), 1);
  assert.equal(accuracyReward('<answer>no</answer>', 'yes'), 0);
  assert.equal(accuracyReward('<answer>true</answer>', 'yes'), 0);
  assert.equal(accuracyReward('<answer>Red</answer>', 'red'), 1);
  assert.equal(accuracyReward('<answer>dark  red</answer>', 'Dark red'), 1);
  assert.equal(accuracyReward('<answer>reddish</answer>', 'red'), 0);
  assert.equal(accuracyReward(undefined, '8'), 0, 'non-string response');
  assert.equal(accuracyReward(8 as unknown, '8'), 0);
  assert.equal(accuracyReward('<answer>12</answer>', 12 as unknown as string), 1, 'numeric ground truth');
  assert.equal(normalizeAnswer('  Twelve '), '12');
  assert.equal(extractAnswer('<think>x</think>'), null);
});

test('composite: 0.9 * accuracy + 0.1 * format', () => {
  assert.deepEqual(scoreResponse({ response: '<think>3+5=8</think><answer>8</answer>', answer: '8' }), { overall: 1, accuracy: 1, format: 1 });
  const wrong = scoreResponse({ response: '<think>3+5=9</think><answer>9</answer>', answer: '8' });
  assert.deepEqual(wrong, { overall: 0.1, accuracy: 0, format: 1 });
  const sloppy = scoreResponse({ response: '<answer>8</answer> yes 8', answer: '8' });
  assert.equal(sloppy.accuracy, 1);
  assert.equal(sloppy.format, 0);
  assert.ok(Math.abs(sloppy.overall - 0.9) < 1e-12);
  const custom = scoreResponse({ response: '<answer>8</answer>', answer: '8' }, { accuracy: 1, format: 0.5 });
  assert.equal(custom.overall, 1);
  assert.throws(() => compositeReward({ accuracy: NaN, format: 0.1 }), /finite/);
});

const inputs = (n: number): RewardInput[] =>
  Array.from({ length: n }, (_, i) => ({ id: `rec-${i}`, response: `<think>x</think><answer>${i}</answer>`, answer: String(i % 2) }));

test('runner: sync and async single-mode functions score every response', async () => {
  const run = await runReward(compositeReward(), inputs(4));
  assert.deepEqual(run.failures, []);
  assert.deepEqual(
    run.results.map((r) => r.overall),
    [1, 1, 0.1, 0.1],
  );
  const asyncFn = defineReward('async', async (x) => ({ overall: 2, accuracy: 1, format: 1, length: x.response.length }));
  const r2 = await runReward(asyncFn, inputs(2));
  assert.deepEqual(r2.results[0], { overall: 2, accuracy: 1, format: 1, length: 34 });
});

test('runner: throw, NaN, Infinity, wrong type, missing key, hang become recorded failures with reward 0', async () => {
  const fn = defineReward('flaky', (x) => {
    switch (x.id) {
      case 'rec-0':
        throw new Error('boom');
      case 'rec-1':
        return { overall: NaN, accuracy: 0, format: 1 };
      case 'rec-2':
        return { overall: 1, accuracy: Infinity, format: 1 };
      case 'rec-3':
        return 'yes' as unknown as { overall: number; accuracy: number; format: number };
      case 'rec-4':
        return { overall: 1, accuracy: 1 } as unknown as { overall: number; accuracy: number; format: number };
      case 'rec-5':
        return new Promise(() => {}) as never; // never settles
      case 'rec-6':
        return Promise.reject(new Error('async boom')) as never;
      case 'rec-7':
        return { overall: 1, accuracy: 1, format: 1, note: 'text' } as unknown as { overall: number; accuracy: number; format: number };
      default:
        return { overall: 0.5, accuracy: 0.5, format: 1 };
    }
  });
  const run = await runReward(fn, inputs(9), { timeoutMs: 50 });
  assert.equal(run.results.length, 9);
  assert.deepEqual(
    run.results.slice(0, 8).map((r) => r.overall),
    [0, 0, 0, 0, 0, 0, 0, 0],
  );
  assert.deepEqual(run.results[8], { overall: 0.5, accuracy: 0.5, format: 1 });
  const by = Object.fromEntries(run.failures.map((f) => [f.id, f]));
  assert.deepEqual(
    run.failures.map((f) => f.index),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(by['rec-0'].kind, 'threw');
  assert.match(by['rec-0'].reason, /boom/);
  assert.match(by['rec-1'].reason, /overall is NaN/);
  assert.match(by['rec-2'].reason, /accuracy is Infinity/);
  assert.match(by['rec-3'].reason, /got string "yes"/);
  assert.match(by['rec-4'].reason, /no format/);
  assert.equal(by['rec-5'].kind, 'timeout');
  assert.match(by['rec-6'].reason, /async boom/);
  assert.match(by['rec-7'].reason, /note is string/);
  assert.ok(run.failures.every((f) => f.reward === 'flaky'));
});

test('runner: concurrency bounds the calls in flight', async () => {
  let inFlight = 0;
  let peak = 0;
  const fn = defineReward('judge', async (x) => {
    peak = Math.max(peak, ++inFlight);
    await new Promise((r) => setTimeout(r, 2));
    inFlight--;
    return { overall: Number(x.answer), accuracy: 0, format: 0 };
  });
  const run = await runReward(fn, inputs(7), { concurrency: 2 });
  assert.equal(peak, 2);
  assert.deepEqual(
    run.results.map((r) => r.overall),
    [0, 1, 0, 1, 0, 1, 0],
  );
  await assert.rejects(runReward(fn, inputs(1), { concurrency: 0 }), /concurrency/);
});

test('runner: a synchronous function that returns after its timeout is a timeout failure', async () => {
  const slow = defineReward('slow', () => {
    const t = performance.now();
    while (performance.now() - t < 30);
    return { overall: 1, accuracy: 1, format: 1 };
  });
  const run = await runReward(slow, inputs(1), { timeoutMs: 5 });
  assert.equal(run.failures[0].kind, 'timeout');
  assert.equal(run.results[0].overall, 0);
});

test('runner: batch mode, including throwing, hanging and wrong-length batches', async () => {
  const good = defineBatchReward('batch', async (xs) => xs.map((x) => ({ overall: x.answer === '1' ? 1 : 0, accuracy: 0, format: 0 })));
  const run = await runReward(good, inputs(3));
  assert.deepEqual(
    run.results.map((r) => r.overall),
    [0, 1, 0],
  );
  assert.deepEqual(run.failures, []);
  const partial = defineBatchReward('partial', (xs) => xs.map((_, i) => ({ overall: i === 1 ? NaN : 1, accuracy: 1, format: 1 })));
  const p = await runReward(partial, inputs(3));
  assert.deepEqual(
    p.results.map((r) => r.overall),
    [1, 0, 1],
  );
  assert.deepEqual(
    p.failures.map((f) => f.id),
    ['rec-1'],
  );
  for (const [fn, pattern] of [
    [
      defineBatchReward('throws', () => {
        throw new Error('batch boom');
      }),
      /batch boom/,
    ],
    [defineBatchReward('short', (xs) => xs.slice(1).map(() => ({ overall: 1, accuracy: 1, format: 1 }))), /batch of 3 returned 2 results/],
    [defineBatchReward('hangs', () => new Promise(() => {}) as never), /no result within 20 ms/],
    [defineBatchReward('object', () => ({}) as never), /returned object/],
  ] as const) {
    const r = await runReward(fn, inputs(3), { timeoutMs: 20 });
    assert.deepEqual(
      r.results.map((x) => x.overall),
      [0, 0, 0],
      fn.name,
    );
    assert.deepEqual(
      r.failures.map((f) => f.id),
      ['rec-0', 'rec-1', 'rec-2'],
      fn.name,
    );
    assert.match(r.failures[0].reason, pattern, fn.name);
  }
  assert.deepEqual(await runReward(good, []), { results: [], failures: [] });
});

test('accuracy report: overall, vision-dependent, general and per family', async () => {
  const { accuracyReport } = await import('../../tasks/accuracy-report.ts');
  const r = accuracyReport([
    { family: 'sum', visionDependency: 'high', accuracy: 1 },
    { family: 'sum', visionDependency: 'high', accuracy: 0 },
    { family: 'read', visionDependency: 'high', accuracy: 1 },
    { family: 'text-sum', visionDependency: 'low', accuracy: 1 },
  ]);
  assert.deepEqual(r.overall, { n: 4, accuracy: 0.75 });
  assert.deepEqual(r.visionDependent, { n: 3, accuracy: 2 / 3 });
  assert.deepEqual(r.general, { n: 1, accuracy: 1 });
  assert.deepEqual(r.byFamily.sum, { n: 2, accuracy: 0.5 });
  assert.deepEqual(accuracyReport([]).general, { n: 0, accuracy: null });
});
