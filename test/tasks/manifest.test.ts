import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { loadManifest, ManifestError } from '../../tasks/loader/manifest.ts';
import { ManifestTask } from '../../tasks/loader/manifest-task.ts';
import { RecordStream } from '../../tasks/stream.ts';

let dir = '';

function writePng(path: string, w: number, h: number, rgba: (x: number, y: number) => [number, number, number, number]): void {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) png.data.set(rgba(x, y), (y * w + x) * 4);
  writeFileSync(path, PNG.sync.write(png));
}

function writeGreyPng(path: string, w: number, h: number, v: number): void {
  const png = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, bitDepth: 8 } as never);
  (png as unknown as { data: Buffer }).data = Buffer.alloc(w * h, v);
  writeFileSync(path, PNG.sync.write(png, { colorType: 0, inputColorType: 0 } as never));
}

const lines = (...xs: (object | string)[]): string => `${xs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n')}\n`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'papo-manifest-'));
  mkdirSync(join(dir, 'img'));
  writePng(join(dir, 'img/red.png'), 14, 28, () => [255, 0, 0, 255]); // 28 tall x 14 wide
  writePng(join(dir, 'img/half.png'), 4, 4, () => [200, 100, 0, 128]); // half transparent
  writeGreyPng(join(dir, 'img/grey.png'), 56, 28, 90);
  writeFileSync(
    join(dir, 'img/blue.jpg'),
    jpeg.encode({ width: 56, height: 28, data: Buffer.alloc(56 * 28 * 4).map((_, i) => [0, 0, 255, 255][i % 4]) }, 95).data,
  );
  writeFileSync(join(dir, 'img/broken.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(20, 7)]));
  writeFileSync(join(dir, 'img/notes.txt.png'), 'hello');
});

after(() => rmSync(dir, { recursive: true, force: true }));

const opts = { height: 28, width: 56 };

test('manifest: PNG, grey PNG, RGBA PNG and JPEG load, resized to the model size, extra fields in meta', () => {
  writeFileSync(
    join(dir, 'good.jsonl'),
    lines(
      { image: 'img/red.png', question: 'What color?', answer: 'red', source: 'fixture', difficulty: 2 },
      '',
      { image: 'img/grey.png', question: 'How bright?', answer: 90, id: 'g1', family: 'bright', visionDependency: 'low', split: 'test' },
      { image: 'img/half.png', question: 'Tint?', answer: 'orange', demonstration: '<think>o</think><answer>Orange</answer>' },
      { image: './img/blue.jpg', question: 'What color?', answer: 'blue' },
    ),
  );
  const m = loadManifest(join(dir, 'good.jsonl'), opts);
  assert.equal(m.lines, 4);
  assert.equal(m.skipped, 0);
  assert.deepEqual(m.issues, []);
  const [red, g, half, blue] = m.records;
  for (const r of m.records) assert.deepEqual([r.image.height, r.image.width, r.image.data.length], [28, 56, 28 * 56 * 3]);
  assert.equal(red.id, 'good.jsonl:1');
  assert.equal(red.line, 1);
  assert.deepEqual(red.meta, { image: 'img/red.png', source: 'fixture', difficulty: 2 });
  assert.deepEqual([...red.image.data.subarray(0, 3)], [255, 0, 0]);
  assert.equal(g.id, 'g1');
  assert.equal(g.answer, '90');
  assert.equal(g.family, 'bright');
  assert.equal(g.visionDependency, 'low');
  assert.equal(g.split, 'test');
  assert.ok(
    g.image.data.every((v) => v === 90),
    'grey expanded to RGB',
  );
  assert.deepEqual([...half.image.data.subarray(0, 3)], [100, 50, 0], 'alpha over black');
  assert.equal(half.demonstration, '<think>o</think><answer>Orange</answer>');
  const b = blue.image.data;
  assert.ok(b[2] > 240 && b[0] < 15 && b[1] < 15, `JPEG blue decoded, got ${b[0]},${b[1]},${b[2]}`);
  // pad keeps the 1:2 red image's aspect ratio: a 14-wide red band centred on black.
  const padded = loadManifest(join(dir, 'good.jsonl'), { ...opts, fit: 'pad', background: [0, 0, 0] }).records[0].image;
  assert.deepEqual([padded.data[(10 * 56 + 28) * 3], padded.data[(10 * 56 + 5) * 3]], [255, 0]);
});

test('manifest: every kind of bad line is reported with its line number and file; fail mode throws them all', () => {
  const path = join(dir, 'bad.jsonl');
  writeFileSync(
    path,
    lines(
      { image: 'img/red.png', question: 'ok?', answer: 'yes' }, // 1 fine
      '{"image": "img/red.png", "question": ', // 2 malformed JSON
      { question: 'no image', answer: '1' }, // 3 missing image
      { image: 'img/red.png', answer: '1' }, // 4 missing question
      { image: 'img/red.png', question: 'q', answer: ['1'] }, // 5 wrong answer type
      { image: 'img/missing.png', question: 'q', answer: '1' }, // 6 missing file
      { image: 'img/broken.png', question: 'q', answer: '1' }, // 7 undecodable PNG
      { image: 'img/notes.txt.png', question: 'q', answer: '1' }, // 8 not an image
      { image: 'img/red.png', question: 'caf\u00e9?', answer: '1' }, // 9 non-ASCII
      { image: 'img/red.png', question: 'x'.repeat(61), answer: '1' }, // 10 too long
      { image: 'img/red.png', question: 'q', answer: '1', id: 'bad.jsonl:1' }, // 11 duplicate id
      { image: 'img/red.png', question: 'q', answer: '1', demonstration: '<think>x</think><answer>2</answer>' }, // 12 wrong demo
      { image: 'img/red.png', question: 'q', answer: '1', visionDependency: 'medium', split: 'dev' }, // 13 two bad fields
      '[1, 2]', // 14 not an object
      { image: 'img/red.png', question: 'fine too', answer: 3 }, // 15 fine
    ),
  );
  assert.throws(
    () => loadManifest(path, opts),
    (e: unknown) => e instanceof ManifestError && /14 problems/.test(e.message) && /bad\.jsonl:2: malformed JSON/.test(e.message),
  );
  const m = loadManifest(path, { ...opts, onError: 'skip' });
  assert.deepEqual(
    m.records.map((r) => r.line),
    [1, 15],
  );
  assert.equal(m.lines, 15);
  assert.equal(m.skipped, 13);
  const byLine = (n: number): string =>
    m.issues
      .filter((i) => i.line === n)
      .map((i) => i.reason)
      .join(' | ');
  assert.match(byLine(2), /malformed JSON/);
  assert.match(byLine(3), /missing field "image"/);
  assert.match(byLine(4), /missing field "question"/);
  assert.match(byLine(5), /"answer" must be a non-empty string or a finite number/);
  assert.match(byLine(6), /image file not found/);
  assert.match(byLine(7), /undecodable PNG/);
  assert.match(byLine(8), /not a PNG or JPEG \(the file does not start with either signature\)/);
  assert.match(byLine(9), /outside printable ASCII at position 3/);
  assert.match(byLine(10), /61 characters, over the limit of 60/);
  assert.match(byLine(11), /duplicate id "bad.jsonl:1" \(first on line 1\)/);
  assert.match(byLine(12), /answers "2", not the ground truth "1"/);
  assert.match(byLine(13), /visionDependency.*\|.*split/);
  assert.match(byLine(14), /not a JSON object/);
  assert.equal(m.issues.find((i) => i.line === 6)!.file, join(dir, 'img/missing.png'), 'image problems name the image');
  assert.equal(m.issues.find((i) => i.line === 2)!.file, path, 'line problems name the manifest');
  assert.throws(() => loadManifest(join(dir, 'nope.jsonl'), opts), /cannot read manifest/);
});

test('manifest task: split field honoured, the rest hashed by id, stable; streams and cursors work', () => {
  const rows = Array.from({ length: 200 }, (_, i) => ({ image: 'img/grey.png', question: `q${i}`, answer: String(i % 7), id: `r${i}` }));
  rows[0] = { ...rows[0], split: 'test' } as never;
  writeFileSync(join(dir, 'many.jsonl'), lines(...rows));
  const t = ManifestTask.load(join(dir, 'many.jsonl'), opts);
  const c = t.counts();
  assert.equal(c.train + c.validation + c.test, 200);
  assert.ok(c.validation > 5 && c.test > 5 && c.train > 140, JSON.stringify(c));
  const testIds = Array.from({ length: c.test }, (_, i) => t.recordAt('test', i).id);
  assert.ok(testIds.includes('r0'));
  // Reversing the file keeps the assignment (hash of id) and changes nothing but order within splits.
  writeFileSync(join(dir, 'rev.jsonl'), lines(...[...rows].reverse()));
  const t2 = ManifestTask.load(join(dir, 'rev.jsonl'), opts);
  assert.deepEqual(Array.from({ length: c.test }, (_, i) => t2.recordAt('test', i).id).sort(), [...testIds].sort());
  const s = RecordStream.open(t, { split: 'train', seed: 1 });
  s.take(150);
  const cur = JSON.parse(JSON.stringify(s.cursor()));
  const next = s.take(5).map((r) => r.id);
  assert.deepEqual(
    RecordStream.resume(ManifestTask.load(join(dir, 'many.jsonl'), opts), cur)
      .take(5)
      .map((r) => r.id),
    next,
  );
  assert.throws(() => RecordStream.resume(t2, cur), /data configuration changed/);
});

test("manifest task: the fingerprint covers the images' pixels, so a resume after they were replaced is refused", () => {
  mkdirSync(join(dir, 'px'));
  writePng(join(dir, 'px/a.png'), 56, 28, () => [10, 20, 30, 255]);
  writeFileSync(join(dir, 'px.jsonl'), lines({ image: 'px/a.png', question: 'q', answer: '1', id: 'p1', split: 'train' }));
  const before = ManifestTask.load(join(dir, 'px.jsonl'), opts);
  assert.equal(ManifestTask.load(join(dir, 'px.jsonl'), opts).fingerprint, before.fingerprint, 'same files, same fingerprint');
  const cur = RecordStream.open(before, { split: 'train', seed: 1 }).cursor();
  writePng(join(dir, 'px/a.png'), 56, 28, (x) => [10, 20, x === 3 ? 31 : 30, 255]); // one pixel, same path
  const after = ManifestTask.load(join(dir, 'px.jsonl'), opts);
  assert.notEqual(after.fingerprint, before.fingerprint);
  assert.throws(() => RecordStream.resume(after, cur), /data configuration changed/);
});
