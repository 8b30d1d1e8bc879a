/**
 * Property-based tests (fast-check) of the dataset loader on malformed rows: for JSONL and JSON-array files
 * of arbitrary lines (random text, random JSON, rows with arbitrary values under the prompt, answer and
 * image keys: embedded-looking structs, lists of 0-3 images, paths inside, outside and missing, overlong
 * prompts, placeholders), loading with onError 'skip' never throws, and every row ends as exactly one of: a
 * record, a filtered overlong prompt, or issues naming that file and row. With onError 'fail' it throws a
 * DatasetError exactly when there are issues; a record's text always passes the tokenizer's rules.
 *
 * The seed is fixed so CI is deterministic; PAPO_FC_SEED=<n> explores other inputs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { DatasetError, loadDataset } from '../../tasks/loader/dataset.ts';
import { isPrintableAscii } from '../../tasks/text.ts';

const params = { seed: Number(process.env.PAPO_FC_SEED ?? 23), numRuns: 120 };

let top = '';
let dir = '';
let n = 0;
before(() => {
  top = fs.mkdtempSync(join(tmpdir(), 'papo-dataset-prop-'));
  dir = join(top, 'data');
  fs.mkdirSync(dir);
  const png = new PNG({ width: 5, height: 3 });
  png.data.fill(200);
  fs.writeFileSync(join(dir, 'ok.png'), PNG.sync.write(png));
  fs.writeFileSync(join(dir, 'text.png'), 'not an image');
  fs.writeFileSync(join(top, 'outside.png'), PNG.sync.write(png));
});
after(() => fs.rmSync(top, { recursive: true, force: true }));

const scalar = fc.oneof(fc.string({ maxLength: 80 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null));
const path = fc.constantFrom('ok.png', './ok.png', 'missing.png', 'text.png', '../outside.png', '/etc/passwd', '', '.', 'ok.png\0x');
const image = fc.oneof(
  path,
  fc.record({ bytes: fc.constantFrom(null, 'abc', 3), path: fc.oneof(path, fc.constant(null)) }, { requiredKeys: [] }),
  fc.array(fc.oneof(path, fc.record({ path }), scalar), { maxLength: 3 }),
  scalar,
  fc.anything({ maxDepth: 2 }),
);
const prompt = fc.oneof(
  fc.string({ maxLength: 70 }),
  fc.constantFrom('<image>What is it?', 'What<image>is<image>it?', '<image>', `${'long '.repeat(14)}?`, 'Caf\u00e9?'),
  scalar,
);
const row = fc.record(
  {
    problem: prompt,
    answer: fc.oneof(scalar, fc.constantFrom('7', 'yes', ' ')),
    images: image,
    id: fc.oneof(fc.constantFrom('a', 'b'), scalar),
    family: scalar,
    visionDependency: fc.oneof(fc.constantFrom('high', 'low'), scalar),
    demonstration: fc.oneof(fc.constant('<think>x</think><answer>7</answer>'), scalar),
    __proto__: fc.anything({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);
const line = fc.oneof(
  { weight: 6, arbitrary: row.map((r) => JSON.stringify(r)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '  ', '{', '[]', 'null', '"x"', '{"problem": "Hi"}', '['.repeat(3000) + ']'.repeat(3000)) },
);

function check(file: string, rowsOf: number[]): void {
  const loaded = loadDataset({ trainFiles: [file], height: 4, width: 4, onError: 'skip' });
  const issueRows = new Set(loaded.issues.map((i) => i.row));
  for (const i of loaded.issues) {
    assert.equal(i.file, file);
    assert.ok(rowsOf.includes(i.row), `issue on row ${i.row}, which is not a row`);
    assert.ok(i.reason.length > 0 && i.reason.length < 600);
  }
  for (const r of loaded.records) {
    assert.ok(!issueRows.has(r.row), `row ${r.row} is both a record and a problem`);
    assert.ok(isPrintableAscii(r.question) && r.question.length <= 60 && isPrintableAscii(r.answer) && r.answer.length > 0);
    assert.equal(Object.getPrototypeOf(r.meta), Object.prototype);
  }
  assert.equal(loaded.rows, rowsOf.length);
  assert.equal(loaded.records.length + loaded.skipped + loaded.filtered, loaded.rows, 'every row is a record, a problem or filtered');
  assert.equal(issueRows.size, loaded.skipped);
  let failed: unknown;
  try {
    loadDataset({ trainFiles: [file], height: 4, width: 4 });
  } catch (e) {
    failed = e;
  }
  if (loaded.issues.length) assert.ok(failed instanceof DatasetError && failed.message.includes(file), String(failed));
  else assert.equal(failed, undefined);
}

test('JSONL: arbitrary lines never crash the loader; every row is a record, a filtered prompt or a problem naming its file and row', () => {
  fc.assert(
    fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), (lines) => {
      const file = join(dir, `p${n++}.jsonl`);
      fs.writeFileSync(file, lines.join('\n'));
      const rowsOf = lines.flatMap((l, i) => (l.trim() === '' ? [] : [i + 1]));
      check(file, rowsOf);
    }),
    params,
  );
});

test('JSON array: arbitrary elements never crash the loader; rows are numbered from 1', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(row, scalar), { maxLength: 8 }), (rows) => {
      const file = join(dir, `p${n++}.json`);
      fs.writeFileSync(file, JSON.stringify(rows));
      check(
        file,
        rows.map((_, i) => i + 1),
      );
    }),
    params,
  );
});
