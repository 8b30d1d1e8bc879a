import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, formatEvalReport } from '../../pipelines/evaluate.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import { encode, encodeResponse } from '../../models/tokenizer.ts';
import type { SampleRequest, SampleResult, SampledResponse } from '../../models/engine/types.ts';
import type { Task, TaskRecord } from '../../tasks/types.ts';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { ERROR_CLASSES } from '../../tasks/error-taxonomy.ts';
import { makeImage } from '../../util/image.ts';

// Seven test records; evaluation is limited to the first five, in batches of 2, 2 and 1.
const ROWS: { family: string; high: boolean; answer: string }[] = [
  { family: 'count', high: true, answer: '3' },
  { family: 'count', high: true, answer: '1' },
  { family: 'read', high: true, answer: '2' },
  { family: 'text', high: false, answer: '4' },
  { family: 'text', high: false, answer: '0' },
  { family: 'read', high: true, answer: '5' },
  { family: 'text', high: false, answer: '6' },
];

const task: Task = {
  name: 'toy',
  imageHeight: 2,
  imageWidth: 2,
  families: [
    { name: 'count', visionDependency: 'high', answerType: 'integer', template: 'Q' },
    { name: 'read', visionDependency: 'high', answerType: 'integer', template: 'Q' },
    { name: 'text', visionDependency: 'low', answerType: 'integer', template: 'Q' },
  ],
  fingerprint: 'toy-1',
  size: (split) => (split === 'test' ? ROWS.length : 0),
  recordAt: (split, i): TaskRecord => ({
    id: `toy/${split}/${i}`,
    image: makeImage(2, 2),
    question: `Q${i}?`,
    answer: ROWS[i].answer,
    family: ROWS[i].family,
    visionDependency: ROWS[i].high ? 'high' : 'low',
    meta: {},
  }),
};

// Greedy: records 0, 2, 3 right, 1 wrong, 4 cut off without format. Sampled: sample g of record i is right iff g < RIGHT[i].
const GREEDY_RIGHT = [true, false, true, true, false];
const RIGHT = [2, 0, 1, 1, 0];
const answerText = (a: string) => `<think>x</think><answer>${a}</answer>`;

function fakeEngine() {
  const calls: { request: SampleRequest; indices: number[] }[] = [];
  const response = (p: number, g: number, tokens: number[], finished: boolean): SampledResponse => ({
    promptIndex: p,
    sampleIndex: g,
    tokens: Int32Array.from(tokens),
    logprobs: new Float32Array(tokens.length),
    samplingLogprobs: new Float32Array(tokens.length),
    length: tokens.length,
    finished,
    version: 7,
  });
  const engine = {
    version: 7,
    async sample(request: SampleRequest): Promise<SampleResult> {
      const indices = request.prompts.map((q) => Number(/^Q(\d+)\?$/.exec(q as string)![1]));
      calls.push({ request, indices });
      const n = request.n ?? 1;
      const responses: SampledResponse[] = [];
      indices.forEach((i, p) => {
        for (let g = 0; g < n; g++) {
          const right = request.temperature === 0 ? GREEDY_RIGHT[i] : g < RIGHT[i];
          if (request.temperature === 0 && i === 4) responses.push(response(p, g, encode('no idea'), false));
          else responses.push(response(p, g, encodeResponse(answerText(right ? ROWS[i].answer : '9')), true));
        }
      });
      return { responses, version: 7, tokens: 0, stepRows: 0 };
    },
  };
  return { engine, calls };
}

test('evaluate: the first `limit` records in index order, greedy then k samples per batch with the documented seeds', async () => {
  const { engine, calls } = fakeEngine();
  const report = await evaluate(engine, task, { split: 'test', limit: 5, k: 2, batchSize: 2, seed: 10, temperature: 0.7, quiet: true });

  // Per batch: a greedy call then a sampled call (batches may overlap, so compare per pass).
  const greedy = calls.filter((c) => c.request.temperature === 0);
  const sampled = calls.filter((c) => c.request.temperature !== 0);
  assert.deepEqual(
    greedy.map((c) => c.indices),
    [[0, 1], [2, 3], [4]],
  );
  assert.deepEqual(
    sampled.map((c) => c.indices),
    [[0, 1], [2, 3], [4]],
  );
  for (const c of greedy) {
    assert.equal(c.request.n, 1);
    assert.equal(c.request.seed, 10);
  }
  assert.deepEqual(
    sampled.map((c) => [c.request.n, c.request.temperature, c.request.seed]),
    [
      [2, 0.7, 11],
      [2, 0.7, 13],
      [2, 0.7, 15],
    ],
  );

  assert.equal(report.records, 5);
  assert.equal(report.task, 'toy');
  assert.equal(report.policyVersion, 7);
  const g = report.greedy;
  assert.deepEqual(g.accuracy.overall, { n: 5, accuracy: 3 / 5 });
  assert.deepEqual(g.accuracy.visionDependent, { n: 3, accuracy: 2 / 3 });
  assert.deepEqual(g.accuracy.general, { n: 2, accuracy: 1 / 2 });
  assert.deepEqual(g.accuracy.byFamily, { count: { n: 2, accuracy: 1 / 2 }, read: { n: 1, accuracy: 1 }, text: { n: 2, accuracy: 1 / 2 } });
  assert.equal(g.formatRate, 4 / 5);
  assert.equal(g.truncatedRate, 1 / 5);
  const full = encodeResponse(answerText('3')).length;
  const cut = encode('no idea').length;
  assert.equal(g.meanLength, (4 * full + cut) / 5);
  assert.deepEqual(g.groups.general, { n: 2, formatRate: 1 / 2, meanLength: (full + cut) / 2 });
  assert.deepEqual(g.groups.count, { n: 2, formatRate: 1, meanLength: full });

  const s = report.sampled!;
  assert.equal(s.k, 2);
  assert.equal(s.temperature, 0.7);
  assert.deepEqual(s.accuracy.overall, { n: 10, accuracy: 4 / 10 });
  assert.deepEqual(s.accuracy.visionDependent, { n: 6, accuracy: 3 / 6 });
  assert.deepEqual(s.accuracy.general, { n: 4, accuracy: 1 / 4 });
  assert.deepEqual(s.accuracy.byFamily, { count: { n: 4, accuracy: 2 / 4 }, read: { n: 2, accuracy: 1 / 2 }, text: { n: 4, accuracy: 1 / 4 } });
  assert.equal(s.passAtK, 3 / 5);
  assert.equal(s.mixedFraction, 2 / 5);
  assert.equal(s.formatRate, 1);
  assert.equal(s.truncatedRate, 0);

  assert.deepEqual(
    report.examples.map((e) => [e.id, e.answer, e.response]),
    [
      ['toy/test/0', '3', answerText('3')],
      ['toy/test/1', '1', answerText('9')],
      ['toy/test/2', '2', answerText('2')],
    ],
  );
  assert.deepEqual(report.rewardFailures, []);
  assert.equal(report.rewardCalls, 5 + 10);
  assert.match(formatEvalReport(report), /^scored by composite\(0\.9\*accuracy\+0\.1\*format\): no reward call failed \(15 calls\)$/m);
});

test('evaluate: failed reward calls are counted beside the accuracy, with the first record and reason of each kind', async () => {
  const { engine } = fakeEngine();
  // throws on record 0 (one greedy and two sampled calls), returns NaN on record 2
  const reward = defineReward('flaky', ({ id }) => {
    if (id === 'toy/test/0') throw new Error('no parser for this answer');
    return { overall: id === 'toy/test/2' ? Number.NaN : 1, accuracy: 1, format: 1 };
  });
  const report = await evaluate(engine, task, { split: 'test', limit: 5, k: 2, batchSize: 2, seed: 10, reward, quiet: true });
  assert.equal(report.reward, 'flaky');
  assert.equal(report.rewardCalls, 15);
  assert.equal(report.rewardFailures.length, 6);
  // a failed call scores 0: the accuracy is that of the 3 greedy calls that succeeded out of 5
  assert.deepEqual(report.greedy.accuracy.overall, { n: 5, accuracy: 3 / 5 });
  const text = formatEvalReport(report);
  assert.match(
    text,
    /^scored by flaky: 6 of 15 reward calls failed, each scored 0 as a wrong response \(threw 3 \(first: record toy\/test\/0: threw: no parser for this answer\), invalid 3 \(first: record toy\/test\/2: [^)]*NaN[^)]*\)\)$/m,
  );
});

test('evaluate: k = 0 is greedy only, and a limit past the split is the whole split', async () => {
  const { engine, calls } = fakeEngine();
  const report = await evaluate(engine, task, { split: 'test', limit: 100, k: 0, batchSize: 4, seed: 3, quiet: true });
  assert.equal(report.sampled, undefined);
  assert.equal(report.records, ROWS.length);
  assert.deepEqual(
    calls.map((c) => [c.indices, c.request.n, c.request.temperature, c.request.seed]),
    [
      [[0, 1, 2, 3], 1, 0, 3],
      [[4, 5, 6], 1, 0, 3],
    ],
  );
  assert.equal(report.greedy.accuracy.overall.n, ROWS.length);
});

test('evaluate: a split with no records, a negative or fractional k and a limit below 1 are errors', async () => {
  const { engine, calls } = fakeEngine();
  await assert.rejects(evaluate(engine, task, { split: 'validation', quiet: true }), /split validation of toy has no records/);
  for (const k of [-1, 1.5, NaN]) await assert.rejects(evaluate(engine, task, { k, quiet: true }), /evaluate: k must be an integer >= 0 \(0: greedy only\)/);
  for (const limit of [0, -3, 2.5]) await assert.rejects(evaluate(engine, task, { limit, quiet: true }), /evaluate: limit must be a positive integer/);
  assert.equal(calls.length, 0, 'refused before sampling');
});

test('evaluate with errors: greedy failures by class; the other report fields unchanged; a task without a classifier is unclassified', async () => {
  const opts = { split: 'test' as const, limit: 5, k: 2, batchSize: 2, seed: 10, temperature: 0.7, quiet: true };
  const plain = await evaluate(fakeEngine().engine, task, opts);
  const report = await evaluate(fakeEngine().engine, task, { ...opts, errors: true });
  const { seconds: _a, errors, ...rest } = report;
  const { seconds: _b, ...plainRest } = plain;
  assert.deepEqual(rest, plainRest);
  assert.equal(plain.errors, undefined);
  const e = errors!;
  // greedy: records 1 (wrong answer) and 4 (cut off) failed
  assert.deepEqual(e.perRecord, [null, 'unclassified', null, null, 'unclassified']);
  assert.equal(e.overall.n, 5);
  assert.equal(e.overall.failures, 2);
  assert.equal(e.overall.counts.unclassified, 2);
  assert.equal(e.overall.shares.unclassified, 1);
  assert.deepEqual([e.visionDependent.failures, e.general.failures], [1, 1]);
  assert.deepEqual(
    e.examples.unclassified.map((x) => [x.id, x.detail]),
    [
      ['toy/test/1', 'task toy declares no error classifier'],
      ['toy/test/4', 'task toy declares no error classifier'],
    ],
  );
  assert.deepEqual(e.examples.perception, []);
});

test('evaluate with errors on digits: scripted greedy responses get their classes, and the counts add up to the failures', async () => {
  const digits = new DigitsTask({ seed: 2 });
  const n = 28;
  const records = Array.from({ length: n }, (_, i) => digits.recordAt('test', i));
  const say = (trace: string, answer: string) => `<think>${trace}</think><answer>${answer}</answer>`;
  const wrong = (r: TaskRecord) => (r.answer === 'yes' ? 'no' : r.answer === 'no' ? 'yes' : String(Number(r.answer) + 1));
  // record i: right (i % 4 = 0), its demonstration's trace with another answer (1: inconsistency), no think block (2: format),
  // and (3) a misread first digit for sum (perception), else right
  const script = (i: number): string => {
    const r = records[i];
    const trace = /<think>(.*)<\/think>/.exec(r.demonstration!)![1];
    if (i % 4 === 1) return say(trace, wrong(r));
    if (i % 4 === 2) return `<answer>${wrong(r)}</answer>`;
    if (i % 4 === 3 && r.family === 'sum') {
      const d = r.meta.digits as number[];
      const read = [(d[0] + 1) % 10, ...d.slice(1)];
      const s = read.reduce((a, b) => a + b, 0);
      return say(`${read.join('+')}=${s}`, String(s));
    }
    return r.demonstration!;
  };
  const engine = {
    version: 1,
    async sample(request: SampleRequest): Promise<SampleResult> {
      const responses: SampledResponse[] = [];
      request.images.forEach((img, p) => {
        const i = records.findIndex((r) => Buffer.compare(Buffer.from(r.image.data), Buffer.from(img.data)) === 0 && r.question === request.prompts[p]);
        assert.ok(i >= 0);
        const tokens = Int32Array.from(encodeResponse(script(i)));
        const z = new Float32Array(tokens.length);
        for (let g = 0; g < (request.n ?? 1); g++) {
          responses.push({ promptIndex: p, sampleIndex: g, tokens, logprobs: z, samplingLogprobs: z, length: tokens.length, finished: true, version: 1 });
        }
      });
      return { responses, version: 1, tokens: 0, stepRows: 0 };
    },
  };
  const report = await evaluate(engine, digits, { limit: n, k: 1, batchSize: 8, quiet: true, errors: true });
  const e = report.errors!;
  const expected = records.map((r, i) => (i % 4 === 1 ? 'inconsistency' : i % 4 === 2 ? 'format' : i % 4 === 3 && r.family === 'sum' ? 'perception' : null));
  assert.deepEqual(e.perRecord, expected);
  assert.ok(expected.includes('perception'));
  for (const [g, acc] of [
    [e.overall, report.greedy.accuracy.overall],
    [e.visionDependent, report.greedy.accuracy.visionDependent],
    [e.general, report.greedy.accuracy.general],
    ...Object.entries(e.byFamily).map(([f, c]) => [c, report.greedy.accuracy.byFamily[f]] as const),
  ] as const) {
    assert.equal(g.n, acc.n);
    assert.equal(g.failures, Math.round(acc.n * (1 - acc.accuracy!)), 'failures = accuracy < 1');
    assert.equal(
      ERROR_CLASSES.reduce((a, c) => a + g.counts[c], 0),
      g.failures,
    );
  }
  assert.equal(e.overall.failures, expected.filter((c) => c !== null).length);
  assert.deepEqual(
    e.examples.format.map((x) => x.id),
    ['digits/test/2', 'digits/test/6', 'digits/test/10'],
  );
  assert.match(e.examples.inconsistency[0].detail!, /the trace gives .*, the answer is/);
  assert.equal(e.overall.counts.unclassified, 0);
});

test("papo train's held-out test: the task's verifier unless trainer.test_reward=score_function; failed calls said beside the accuracy", async () => {
  const { trainConfig } = await import('../../pipelines/train-config.ts');
  const { trainEvals } = await import('../../pipelines/train-eval.ts');
  const { pino } = await import('pino');
  const broken = defineReward('broken', () => {
    throw new Error('no answer key');
  });
  const run = async (test_reward: string) => {
    const said: string[] = [];
    const logged: Record<string, unknown>[] = [];
    const cfg = trainConfig({ trainer: { test_reward, test_limit: 5, test_before_and_after: true } });
    const logger = pino({}, { write: (l: string) => logged.push(JSON.parse(l)) });
    const evals = trainEvals(fakeEngine().engine, task, broken, cfg, { say: (l) => said.push(l), logger, quiet: true });
    const report = await evals.test('before');
    return { said, report, event: logged.find((l) => l.event === 'test_before')! };
  };
  const own = await run('task');
  assert.match(own.said[0], /^the held-out test and validation are scored by the task's verifier, composite\S+, not by the training reward broken/);
  assert.match(own.said[1], /^before: held-out test greedy accuracy 60\.0% overall, .* \(5 prompts; no reward call failed \(5 calls\)\)$/);
  assert.equal(own.event.reward_failures, 0);
  const user = await run('score_function');
  assert.equal(user.said.length, 1, 'nothing to say about which reward scores it');
  assert.match(
    user.said[0],
    /^before: held-out test greedy accuracy 0\.0% overall, .* \(5 prompts; 5 of 5 reward calls failed, each scored 0 as a wrong response \(threw 5 \(first: record toy\/test\/0: threw: no answer key\)\)\)$/,
  );
  assert.deepEqual([user.event.reward, user.event.reward_calls, user.event.reward_failures, user.event.kinds], ['broken', 5, 5, { threw: 5 }]);
  assert.throws(() => trainConfig({ trainer: { test_reward: 'mine' } }), /trainer\.test_reward/);
});
