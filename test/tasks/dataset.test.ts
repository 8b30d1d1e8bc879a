import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { ScenesTask } from '../../tasks/scenes/task.ts';
import { exportDataset } from '../../tasks/loader/dataset-export.ts';
import { DatasetTask } from '../../tasks/loader/dataset-task.ts';
import { DatasetError, loadDataset } from '../../tasks/loader/dataset.ts';
import { encodePng } from '../../tasks/preview/contact-sheet.ts';
import { scoreResponse } from '../../tasks/rewards/composite.ts';
import { createTask } from '../../tasks/registry.ts';
import type { Split, Task, TaskRecord } from '../../tasks/types.ts';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-dataset-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const sub = (name: string) => fs.mkdirSync(path.join(dir, name), { recursive: true }) ?? path.join(dir, name);
const digits = new DigitsTask({ seed: 3 });
const png = (r: TaskRecord) => new Uint8Array(encodePng(r.image));
const jsonl = (file: string, rows: unknown[]) => fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));

/** Every field the trainer reads, and the reward each record gives its demonstration and a wrong answer. */
function sameRecords(a: Task, b: Task, split: Split, n: number, bSplit: Split = split): void {
  assert.equal(a.size(split), n);
  for (let i = 0; i < n; i++) {
    const x = a.recordAt(split, i);
    const y = b.recordAt(bSplit, i);
    for (const k of ['id', 'question', 'answer', 'family', 'visionDependency', 'demonstration'] as const) assert.equal(x[k], y[k], `${split} ${i} ${k}`);
    assert.deepEqual([x.image.height, x.image.width], [y.image.height, y.image.width]);
    assert.ok(Buffer.from(x.image.data).equals(Buffer.from(y.image.data)), `${split} ${i}: same pixels`);
    for (const response of [y.demonstration ?? '', '<think>x</think><answer>no</answer>']) {
      assert.deepEqual(scoreResponse({ response, answer: x.answer }), scoreResponse({ response, answer: y.answer }));
    }
  }
}

test('parquet export and back: the same records (ids, text, families, pixels) and the same rewards; val files are validation and test', () => {
  const out = sub('pq');
  const written = exportDataset(digits, { format: 'parquet', out, splits: ['train', 'test'], limit: 30 });
  assert.deepEqual(
    written.map((w) => [path.basename(w.file), w.records]),
    [
      ['train.parquet', 30],
      ['test.parquet', 30],
    ],
  );
  assert.deepEqual(fs.readdirSync(out).sort(), ['test.parquet', 'train.parquet'], 'no partial files left');
  const task = createTask({ task: 'dataset', trainFiles: [path.join(out, 'train.parquet')], valFiles: [`${path.join(out, 'test.parquet')}@train`] });
  assert.ok(task instanceof DatasetTask);
  sameRecords(task, digits, 'train', 30);
  sameRecords(task, digits, 'test', 30);
  sameRecords(task, digits, 'validation', 30, 'test');
  assert.deepEqual(task.families.map((f) => f.name).sort(), digits.families.map((f) => f.name).sort());
  assert.match(task.fingerprint, /^dataset\/v1\/60\//);
});

test('jsonl export (PNG files beside it) and back: the same records; a scenes export too', () => {
  const out = sub('jl');
  exportDataset(digits, { format: 'jsonl', out, splits: ['test'], limit: 12 });
  const first = JSON.parse(fs.readFileSync(path.join(out, 'test.jsonl'), 'utf8').split('\n')[0]);
  assert.deepEqual(first.images, ['images/test/00.png']);
  assert.match(first.problem, /^<image>/);
  const task = DatasetTask.load({ trainFiles: [path.join(out, 'test.jsonl')], valFiles: [path.join(out, 'test.jsonl')], height: 28, width: 56 });
  sameRecords(task, digits, 'test', 12);
  const scenes = new ScenesTask({ seed: 1 });
  exportDataset(scenes, { format: 'parquet', out: path.join(out, 'scenes'), splits: ['validation'], limit: 8 });
  const back = DatasetTask.load({ trainFiles: [path.join(out, 'scenes')], valFiles: [path.join(out, 'scenes', 'validation.parquet')], height: 28, width: 56 });
  sameRecords(back, scenes, 'validation', 8);
});

test('EasyR1 keys: prompt/answer/image keys, <image> placeholder, format_prompt, max_prompt_length filtered or refused', () => {
  const d = sub('keys');
  const recs = [0, 1, 2].map((i) => digits.recordAt('train', i));
  fs.writeFileSync(path.join(d, 'a.png'), png(recs[0]));
  const rows = [
    { q: `${recs[0].question} <image>`, gt: Number(recs[0].answer), img: 'a.png', source: 'mine' },
    { q: recs[1].question, gt: recs[1].answer, img: { bytes: null, path: 'a.png' } },
    { q: 'x'.repeat(59), gt: '1', img: ['a.png'] },
  ];
  jsonl(path.join(d, 'rows.jsonl'), rows);
  fs.writeFileSync(path.join(d, 'fmt.jinja'), '  Q: {{ content | trim }}\n');
  const keys = { promptKey: 'q', answerKey: 'gt', imageKey: 'img', height: 28, width: 56 };
  const loaded = loadDataset({ ...keys, trainFiles: [path.join(d, 'rows.jsonl')], formatPrompt: path.join(d, 'fmt.jinja') });
  assert.equal(loaded.filtered, 1, 'Q: + 59 characters is over 61 tokens');
  assert.deepEqual(
    loaded.records.map((r) => r.question),
    [`Q: ${recs[0].question}`, `Q: ${recs[1].question}`],
  );
  assert.equal(loaded.records[0].answer, recs[0].answer);
  assert.deepEqual(loaded.records[0].meta, { image: 'a.png', file: path.join(d, 'rows.jsonl'), row: 1, source: 'mine' });
  assert.equal(loaded.records[0].family, 'dataset');
  assert.throws(
    () => loadDataset({ ...keys, trainFiles: [path.join(d, 'rows.jsonl')], formatPrompt: path.join(d, 'fmt.jinja'), filterOverlongPrompts: false }),
    (e: Error) => e instanceof DatasetError && /rows\.jsonl: row 3: field "q" has 62 characters, over the limit of 60/.test(e.message),
  );
  const tight = loadDataset({ ...keys, trainFiles: [path.join(d, 'rows.jsonl')], maxPromptLength: 40 });
  assert.equal(tight.records.length + tight.filtered, 3);
  fs.writeFileSync(path.join(d, 'if.jinja'), '{% if content %}{{ content }}{% endif %}');
  assert.throws(
    () => loadDataset({ ...keys, trainFiles: [path.join(d, 'rows.jsonl')], formatPrompt: path.join(d, 'if.jinja') }),
    /if\.jinja: uses a Jinja statement/,
  );
  fs.writeFileSync(path.join(d, 'sys.jinja'), '{{ content }} {{ system }}');
  assert.throws(
    () => loadDataset({ ...keys, trainFiles: [path.join(d, 'rows.jsonl')], formatPrompt: path.join(d, 'sys.jinja') }),
    /\{\{ system \}\} is not supported/,
  );
  // a JSON array, two placeholders, a missing answer
  fs.writeFileSync(
    path.join(d, 'rows.json'),
    JSON.stringify([
      { problem: '<image><image>Hi', answer: '1', images: ['a.png'] },
      { problem: 'Hi', images: ['a.png'] },
    ]),
  );
  const skipped = loadDataset({ trainFiles: [path.join(d, 'rows.json')], height: 28, width: 56, onError: 'skip' });
  assert.deepEqual(
    skipped.issues.map((i) => [i.row, i.reason]),
    [
      [1, 'field "problem": has 2 <image> placeholders: the policy reads exactly one image per prompt'],
      [2, 'missing field "answer"'],
    ],
  );
});

test('path@split, folders and hub names: local files hold split train; other splits and hub names are refused with the reason', () => {
  const d = sub('at');
  jsonl(path.join(d, 'x.jsonl'), [{ problem: 'Hi', answer: '1', images: [] }]);
  assert.throws(
    () => createTask({ task: 'dataset', trainFiles: [`${path.join(d, 'x.jsonl')}@test`] }),
    /x\.jsonl@test: a local file holds one split.*"@test" names a split of a hub dataset/,
  );
  assert.throws(
    () => createTask({ task: 'dataset', trainFiles: ['hiyouga/geometry3k@train'] }),
    /hiyouga\/geometry3k does not exist \(a hub dataset name\? datasets are not downloaded here/,
  );
  assert.throws(() => createTask({ task: 'dataset', trainFiles: [path.join(d, 'x.csv')] }), /does not exist/);
  fs.writeFileSync(path.join(d, 'x.csv'), 'a,b');
  assert.throws(() => createTask({ task: 'dataset', trainFiles: [path.join(d, 'x.csv')] }), /unknown dataset file type/);
  assert.throws(
    () => createTask({ task: 'dataset', trainFiles: [`${path.join(d, 'x.jsonl')}@train`] }),
    (e: Error) => /x\.jsonl: row 1: field "images" is an empty list: the policy reads exactly one image per prompt/.test(e.message),
  );
  assert.throws(() => createTask({ task: 'digits', trainFiles: ['x.parquet'] }), /trainFiles only apply to task dataset, but the task is digits/);
});

test('parquet: binary and path image columns; a codec hyparquet cannot decode is named with its column', () => {
  const d = sub('codec');
  const r = [...Array(20).keys()].map((i) => digits.recordAt('test', i)).find((x) => /^\d+$/.test(x.answer)) as TaskRecord;
  const write = (name: string, options: object) => fs.writeFileSync(path.join(d, name), Buffer.from(parquetWriteBuffer(options as never)));
  write('raw.parquet', {
    columnData: [
      { name: 'problem', data: [r.question, r.question], type: 'STRING' },
      { name: 'answer', data: [BigInt(r.answer), 7n], type: 'INT64' },
      { name: 'images', data: [png(r), new Uint8Array(0)], type: 'BYTE_ARRAY' },
    ],
  });
  const raw = loadDataset({ trainFiles: [path.join(d, 'raw.parquet')], height: 28, width: 56, onError: 'skip' });
  assert.equal(raw.records[0].answer, r.answer);
  assert.ok(Buffer.from(raw.records[0].image.data).equals(Buffer.from(r.image.data)));
  assert.equal(raw.issues.length, 1);
  assert.equal(raw.issues[0].row, 2);
  const tiny = loadDataset({ trainFiles: [path.join(d, 'raw.parquet')], height: 28, width: 56, onError: 'skip', maxRowBytes: 20 });
  assert.deepEqual([tiny.records.length, tiny.skipped, tiny.rows], [0, 2, 2]);
  assert.match(tiny.issues[0].reason, /^row group 0 \(rows 1-2\) declares \d+ uncompressed bytes, over 2 rows x max_row_bytes 20; not read$/);
  write('zstd.parquet', { columnData: [{ name: 'problem', data: ['x'], type: 'STRING' }], codec: 'ZSTD', compressors: { ZSTD: (b: Uint8Array) => b } });
  assert.throws(
    () => loadDataset({ trainFiles: [path.join(d, 'zstd.parquet')], height: 28, width: 56 }),
    /zstd\.parquet: column "problem" is compressed with ZSTD, which the parquet reader \(hyparquet, without hyparquet-compressors\) cannot decode/,
  );
  fs.writeFileSync(path.join(d, 'junk.parquet'), 'PAR1 not really');
  assert.throws(() => loadDataset({ trainFiles: [path.join(d, 'junk.parquet')], height: 28, width: 56 }), /junk\.parquet: not a parquet file/);
});

test('untrusted input: image paths are confined; row, image, row-count and total-byte limits name the file and row', () => {
  const d = sub('limits');
  const r = digits.recordAt('test', 0);
  fs.writeFileSync(path.join(dir, 'outside.png'), png(r));
  fs.writeFileSync(path.join(d, 'a.png'), png(r));
  const file = path.join(d, 'rows.jsonl');
  jsonl(file, [
    { problem: 'a', answer: '1', images: ['../outside.png'] },
    { problem: 'b', answer: '1', images: [{ path: '/etc/passwd' }] },
    { problem: 'c', answer: '1', images: ['a.png'], pad: 'x'.repeat(5000) },
    { problem: 'd', answer: '1', images: ['a.png'] },
  ]);
  const opts = { trainFiles: [file], height: 28, width: 56, onError: 'skip' as const };
  const got = loadDataset({ ...opts, maxRowBytes: 4000 });
  assert.deepEqual(
    got.issues.map((i) => [path.basename(i.file), i.row]),
    [
      ['rows.jsonl', 1],
      ['rows.jsonl', 2],
      ['rows.jsonl', 3],
    ],
  );
  assert.match(got.issues[0].reason, /leaves the manifest's directory/);
  assert.match(got.issues[2].reason, /line is \d+ bytes, over the limit of 4000 \(max_row_bytes\)/);
  assert.equal(got.records.length, 1);
  assert.equal(got.skipped, 3);
  assert.equal(loadDataset({ ...opts, imageDir: d, allowOutsideManifestDir: true }).issues.length, 1, 'image_dir and the opt-in');
  assert.throws(() => loadDataset({ ...opts, maxRows: 3 }), /rows\.jsonl: row 4: more than 3 rows in the dataset's files \(max_rows\)/);
  assert.throws(() => loadDataset({ ...opts, maxDatasetBytes: 100 }), /over the limit of 100 \(max_dataset_bytes\)/);
  assert.match(loadDataset({ ...opts, maxImageBytes: 10 }).issues[3].reason, /over the limit of 10 \(max_image_bytes\)/);
  assert.match(loadDataset({ ...opts, maxImagePixels: 100 }).issues[3].reason, /over the limit of 100 \(max_image_pixels\)/);
});
