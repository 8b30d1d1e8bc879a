/**
 * Property-based tests (fast-check) of the manifest loader: for arbitrary lines (random text, random
 * JSON, records with arbitrary field values and image paths that are valid, missing, outside the
 * directory, special files or secrets), loading never crashes, and every non-blank line ends as exactly
 * one of: a record, or at least one issue naming that line. Nothing is lost silently, no record gets a
 * strange prototype, and no message shows the content of a file that is not an image.
 *
 * The seed is fixed so CI is deterministic; PAPO_FC_SEED=<n> explores other inputs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { loadManifest, ManifestError } from '../../tasks/loader/manifest.ts';

const params = { seed: Number(process.env.PAPO_FC_SEED ?? 12), numRuns: 150 };
const SECRET = 'TOPSECRET-7f3a9c';

let top = '';
let dir = '';
let file = 0;

before(() => {
  top = fs.mkdtempSync(join(tmpdir(), 'papo-manifest-prop-'));
  dir = join(top, 'data');
  fs.mkdirSync(join(dir, 'sub'), { recursive: true });
  const png = new PNG({ width: 6, height: 4 });
  png.data.fill(255);
  fs.writeFileSync(join(dir, 'ok.png'), PNG.sync.write(png));
  fs.writeFileSync(join(dir, 'sub/ok.png'), PNG.sync.write(png));
  fs.writeFileSync(join(dir, 'secret.png'), `${SECRET}\n`);
  fs.writeFileSync(join(top, 'outside.png'), PNG.sync.write(png));
  fs.writeFileSync(join(top, 'outside-secret.txt'), SECRET);
  fs.symlinkSync(join(top, 'outside.png'), join(dir, 'link.png'));
  spawnSync('mkfifo', [join(dir, 'fifo.png')]); // where mkfifo exists: a FIFO must never be opened
});

after(() => fs.rmSync(top, { recursive: true, force: true }));

const IMAGES = [
  'ok.png',
  './ok.png',
  'sub/ok.png',
  'sub/../ok.png',
  'missing.png',
  'secret.png',
  'link.png',
  'fifo.png',
  'sub',
  '.',
  '',
  '../outside.png',
  '../outside-secret.txt',
  '/etc/passwd',
  '/dev/zero',
  '/dev/null',
  'ok.png\u0000x',
  '%2e%2e/outside.png',
  '..\\outside.png',
];

const text = fc.string({ unit: 'binary', maxLength: 40 });
const scalar = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(null));
/** A field value: usually plausible, sometimes anything JSON can hold. */
const field = (plausible: fc.Arbitrary<unknown>) => fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
const record = fc.oneof(
  // plausible: mostly loadable, so the records side of the property is exercised too
  {
    weight: 2,
    arbitrary: fc
      .record(
        {
          image: fc.constantFrom('ok.png', './ok.png', 'sub/ok.png', 'sub/../ok.png', 'link.png', '../outside.png'),
          question: fc.constantFrom('What is it?', 'How many?'),
          answer: fc.constantFrom('1', 'red', 7, 0),
          id: fc.string({ minLength: 1, maxLength: 3, unit: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
          split: fc.constantFrom('train', 'validation', 'test'),
          demonstration: fc.constantFrom('<think>x</think><answer>1</answer>', '<think></think><answer>red</answer>'),
          extra: fc.jsonValue({ maxDepth: 3 }),
        },
        { requiredKeys: ['image', 'question', 'answer'] },
      )
      .map((r) => ('demonstration' in r ? { ...r, demonstration: `<think>t</think><answer>${r.answer}</answer>` } : r)),
  },
  // wild: anything in any field
  {
    weight: 1,
    arbitrary: fc.record(
      {
        image: field(fc.constantFrom(...IMAGES)),
        question: field(fc.oneof(fc.constantFrom('What is it?', 'How many?'), text)),
        answer: field(fc.oneof(fc.constantFrom('1', 'red', 7, 0), scalar)),
        id: field(fc.constantFrom('a', 'b', 'c', 'r:1')),
        family: field(fc.constantFrom('f', 'g')),
        visionDependency: field(fc.constantFrom('high', 'low', 'medium')),
        split: field(fc.constantFrom('train', 'validation', 'test', 'dev')),
        demonstration: field(fc.constantFrom('<think>x</think><answer>1</answer>', '<think></think><answer>red</answer>', 'no tags')),
        extra: fc.jsonValue({ maxDepth: 3 }),
      },
      { requiredKeys: [] },
    ),
  },
);
/** A record's JSON text, with raw members JSON.stringify cannot write: a "__proto__" key, a number like 1e400. */
const recordText = fc
  .tuple(record, fc.option(fc.jsonValue({ maxDepth: 2 })), fc.constantFrom('', '', '', '"answer": 1e400', '"answer": -1e400', '"question": "\uFEFFq"'))
  .map(([r, proto, raw]) => {
    const members = [JSON.stringify(r).slice(1, -1), proto === null ? '' : `"__proto__": ${JSON.stringify(proto)}`, raw];
    return `{${members.filter(Boolean).join(', ')}}`;
  });
const line = fc.oneof(
  { weight: 7, arbitrary: recordText },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: text },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '   ', '{', '[]', 'null', '"x"', '{"image": "ok.png"}', '['.repeat(5000) + ']'.repeat(5000), '{"a":'.repeat(3000)),
  },
);

test('property: arbitrary manifests never crash the loader, and every non-blank line is a record or an issue', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), fc.boolean(), (lines, eol, bom, allowOutside) => {
      const path = join(dir, `m${file++}.jsonl`);
      const content = (bom ? '\uFEFF' : '') + lines.join(eol);
      fs.writeFileSync(path, content);
      const opts = { height: 4, width: 6, allowOutsideManifestDir: allowOutside };
      const m = loadManifest(path, { ...opts, onError: 'skip' });

      // the oracle's own reading of the lines: split on newlines, a leading BOM dropped, blank lines ignored
      const raw = (bom ? content.slice(1) : content).split(/\r?\n/);
      const nonBlank = raw.flatMap((l, i) => (l.trim() === '' ? [] : [i + 1]));
      const recordLines = m.records.map((r) => r.line);
      const issueLines = new Set(m.issues.map((i) => i.line));
      assert.equal(m.lines, nonBlank.length);
      assert.deepEqual(
        [...new Set([...recordLines, ...issueLines])].sort((a, b) => a - b),
        nonBlank,
        'every non-blank line is accounted for',
      );
      assert.ok(
        recordLines.every((l) => !issueLines.has(l)),
        'a line is a record or an issue, not both',
      );
      assert.equal(m.records.length + m.skipped, m.lines);
      assert.equal(new Set(m.records.map((r) => r.id)).size, m.records.length, 'ids are unique');
      for (const r of m.records) {
        assert.equal(Object.getPrototypeOf(r.meta), Object.prototype);
        assert.deepEqual([r.image.height, r.image.width, r.image.data.length], [4, 6, 72]);
        assert.ok(typeof r.answer === 'string' && r.answer !== '' && typeof r.question === 'string');
      }
      for (const i of m.issues) {
        assert.ok(i.reason.length > 0 && !i.reason.includes(SECRET), `no file content in: ${i.reason}`);
        assert.ok(!i.reason.includes('\uFEFF'), 'no byte-order mark in messages');
      }

      // fail mode: the same records, or a ManifestError listing the same issues
      try {
        assert.deepEqual(
          loadManifest(path, opts).records.map((r) => r.line),
          recordLines,
        );
        assert.equal(m.issues.length, 0);
      } catch (e) {
        assert.ok(e instanceof ManifestError, String(e));
        assert.deepEqual(e.issues, m.issues);
      }
      fs.rmSync(path);
    }),
    params,
  );
});
