import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { mnistPool, readDigitFile, scanDecimals } from '../../tasks/digits/mnist-pool.ts';
import { RecordStream } from '../../tasks/stream.ts';
import { scoreResponse } from '../../tasks/rewards/composite.ts';
import { MAX_DEMONSTRATION_CHARS, MAX_QUESTION_CHARS, isPrintableAscii, responseTokenCount } from '../../tasks/text.ts';
import type { TaskRecord } from '../../tasks/types.ts';

// The package's raw files, read here independently of the task's loader.
const dir = join(dirname(createRequire(import.meta.url).resolve('mnist')), 'digits');
const raw = Array.from({ length: 10 }, (_, d) => (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data);

test("the package's files read straight from their bytes give JSON.parse's doubles exactly; any other text is left to JSON.parse", () => {
  for (let d = 0; d < 10; d++) {
    const fast = readDigitFile(join(dir, `${d}.json`));
    assert.ok(fast instanceof Float64Array, `digits/${d}.json is read by the scanner`);
    assert.equal(fast.length, raw[d].length);
    for (let i = 0; i < fast.length; i++) if (fast[i] !== raw[d][i]) assert.fail(`digits/${d}.json value ${i}: ${fast[i]} vs ${raw[d][i]}`);
  }
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual([...(scanDecimals(enc('{ "data": [0,0.5, 1,\n0.123456789012345]}\n')) ?? [])], [0, 0.5, 1, 0.123456789012345]);
  for (const other of [
    '{ "data": [1e-5]}',
    '{ "data": [-0.5]}',
    '{ "data": [0.]}',
    '{ "data": [0,]}',
    '{ "data": [0]',
    '{ "data": [0]} x',
    '{"data": [0]}',
    '{ "data": [0.12345678901234567]}',
    '{ "data": [0.0000000000000000000000001]}',
  ])
    assert.equal(scanDecimals(enc(other)), undefined, other);
});

/** The answer recomputed from the question text and the digit labels. */
function expectedAnswer(r: TaskRecord, digits: number[]): string {
  const q = r.question;
  const ord = (s: string): number => Number(s[0]) - 1;
  let m: RegExpMatchArray | null;
  if ((m = q.match(/^What is the (\d)\w\w digit from the left\?$/))) return String(digits[ord(m[1])]);
  if (q === 'What is the sum of the digits?') return String(digits.reduce((a, b) => a + b));
  if (q === 'What is the largest digit?') return String(Math.max(...digits));
  if ((m = q.match(/^How many digits are greater than (\d)\?$/))) return String(digits.filter((d) => d > Number(m![1])).length);
  if ((m = q.match(/^Is the (\d)\w\w digit larger than the (\d)\w\w\?$/))) return digits[ord(m[1])] > digits[ord(m[2])] ? 'yes' : 'no';
  if ((m = q.match(/^Ignore the image\. What is ([\d+]+)\?$/)))
    return String(
      m[1]
        .split('+')
        .map(Number)
        .reduce((a, b) => a + b),
    );
  if ((m = q.match(/^Ignore the image\. Is (\d) larger than (\d)\?$/))) return Number(m[1]) > Number(m[2]) ? 'yes' : 'no';
  throw new Error(`unrecognised question ${q}`);
}

test('digits: images hold the labelled MNIST digits and answers are correct, for 2 and 3 digits', () => {
  for (const n of [2, 3]) {
    const task = new DigitsTask({ digits: n, seed: 5 });
    assert.equal(task.imageHeight, 28);
    assert.equal(task.imageWidth, 28 * n);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const r = task.recordAt(i % 3 ? 'train' : 'test', i);
      seen.add(r.family);
      assert.equal(r.image.height, 28);
      assert.equal(r.image.width, 28 * n);
      const digits = r.meta.digits as number[];
      const sources = r.meta.mnistImages as string[];
      assert.equal(digits.length, n);
      for (let k = 0; k < n; k++) {
        const [file, index] = sources[k].split(':').map(Number);
        assert.equal(file, digits[k], `${r.id}: slot ${k} image comes from the file of its label`);
        let ink = 0;
        for (let y = 0; y < 28; y++) {
          for (let x = 0; x < 28; x++) {
            const v = r.image.data[(y * 28 * n + 28 * k + x) * 3];
            assert.equal(v, Math.round(raw[file][index * 784 + y * 28 + x] * 255));
            assert.equal(r.image.data[(y * 28 * n + 28 * k + x) * 3 + 2], v, 'grey: all channels equal');
            if (v > 128) ink++;
          }
        }
        assert.ok(ink >= 10, `${r.id}: slot ${k} has ink (${ink} px)`);
      }
      assert.equal(r.answer, expectedAnswer(r, digits), `${r.id}: ${r.question}`);
      assert.equal(r.visionDependency, r.family.startsWith('text-') ? 'low' : 'high');
    }
    assert.deepEqual([...seen].sort(), ['compare', 'count', 'max', 'read', 'sum', 'text-compare', 'text-sum']);
  }
});

test('digits: text fits the tokenizer and demonstrations earn full reward (4 digits, the longest)', () => {
  const task = new DigitsTask({ digits: 4 });
  for (let i = 0; i < 700; i++) {
    const r = task.recordAt('validation', i % 500);
    assert.ok(isPrintableAscii(r.question) && r.question.length <= MAX_QUESTION_CHARS, r.question);
    assert.ok(r.demonstration!.length <= MAX_DEMONSTRATION_CHARS && responseTokenCount(r.demonstration!) <= 47, r.demonstration);
    assert.deepEqual(scoreResponse({ response: r.demonstration!, answer: r.answer }), { overall: 1, accuracy: 1, format: 1 });
  }
});

test('digits: image pools are disjoint and no test or validation image appears in training records', () => {
  const pool = mnistPool();
  const sets = (['train', 'validation', 'test'] as const).map((s) => new Set(pool.byPool[s].flatMap((a) => [...a])));
  assert.equal(sets[0].size + sets[1].size + sets[2].size, pool.labels.length);
  for (const id of sets[2]) assert.ok(!sets[0].has(id) && !sets[1].has(id));
  for (const id of sets[1]) assert.ok(!sets[0].has(id));
  assert.ok(sets[2].size > 900 && sets[1].size > 900, 'about 10% each');
  const task = new DigitsTask({ sizes: { train: 4000 } });
  const imagesOf = (split: 'train' | 'validation' | 'test'): Set<string> => {
    const out = new Set<string>();
    for (let i = 0; i < task.size(split); i++) for (const s of task.recordAt(split, i).meta.mnistImages as string[]) out.add(s);
    return out;
  };
  const train = imagesOf('train');
  for (const s of [...imagesOf('test'), ...imagesOf('validation')]) assert.ok(!train.has(s), `held-out image ${s} in training`);
});

test('digits: deterministic by seed; family balance; config errors are named', () => {
  const a = new DigitsTask({ seed: 1 }).recordAt('train', 123);
  const b = new DigitsTask({ seed: 1 }).recordAt('train', 123);
  assert.deepEqual(a, b);
  const c = new DigitsTask({ seed: 2 }).recordAt('train', 123);
  assert.notDeepEqual(c.image.data, a.image.data);
  const only = new DigitsTask({ families: ['sum', 'read'], sizes: { train: 10 } });
  const fam = RecordStream.open(only, { split: 'train' })
    .take(10)
    .map((r) => r.family);
  assert.equal(fam.filter((f) => f === 'sum').length, 5);
  assert.notEqual(only.fingerprint, new DigitsTask().fingerprint);
  const stream = RecordStream.open(new DigitsTask({ seed: 3, sizes: { train: 20 } }), { split: 'train', seed: 8 });
  stream.take(33);
  const cursor = JSON.parse(JSON.stringify(stream.cursor()));
  assert.deepEqual(RecordStream.resume(new DigitsTask({ seed: 3, sizes: { train: 20 } }), cursor).take(12), stream.take(12));
  assert.throws(() => RecordStream.resume(new DigitsTask({ seed: 4, sizes: { train: 20 } }), cursor), /configuration changed/);
  assert.throws(() => new DigitsTask({ families: ['sum', 'nope'] }), /unknown family "nope"; known: read, sum/);
  assert.throws(() => new DigitsTask({ digits: 5 }), /2, 3 or 4/);
  assert.throws(() => new DigitsTask().recordAt('test', 1000), /out of range for split test/);
});
