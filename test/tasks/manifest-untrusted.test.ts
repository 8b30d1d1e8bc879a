/**
 * A manifest is untrusted input: where its image paths may lead, which files may be opened, what one
 * image may cost, and what an error message may show.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { loadManifest, type ManifestOptions } from '../../tasks/loader/manifest.ts';
import { decodeImage } from '../../tasks/loader/decode.ts';
import { imageHeader } from '../../tasks/loader/image-header.ts';

let top = ''; // holds the manifest directory `dir` and a sibling `outside`
let dir = '';
const opts = { height: 28, width: 56 };

function pngBytes(w: number, h: number, v = 100): Buffer {
  const png = new PNG({ width: w, height: h });
  png.data.fill(v);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  return PNG.sync.write(png);
}

/** A PNG chunk with its length and CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function ihdr(w: number, h: number, colorType: number, interlace: number): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = 8; // bit depth
  d[9] = colorType;
  d[12] = interlace;
  return chunk('IHDR', d);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const png = (...chunks: Buffer[]): Buffer => Buffer.concat([SIGNATURE, ...chunks, chunk('IEND', Buffer.alloc(0))]);

/** A valid Adam7-interlaced 8-bit grey PNG of one value (pngjs writes no interlaced files). */
function interlacedGrey(w: number, h: number, v: number): Buffer {
  const passes = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ];
  const rows: Buffer[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const pw = w > x0 ? Math.ceil((w - x0) / dx) : 0;
    const ph = h > y0 ? Math.ceil((h - y0) / dy) : 0;
    if (pw && ph) for (let r = 0; r < ph; r++) rows.push(Buffer.concat([Buffer.from([0]), Buffer.alloc(pw, v)]));
  }
  return png(ihdr(w, h, 0, 1), chunk('IDAT', deflateSync(Buffer.concat(rows))));
}

const lines = (...xs: object[]): string => `${xs.map((x) => JSON.stringify(x)).join('\n')}\n`;

/** Loads a one-or-more-line manifest written into `dir`, in skip mode. */
function load(name: string, records: object[], extra: Partial<ManifestOptions> = {}) {
  const file = join(dir, name);
  fs.writeFileSync(file, lines(...records));
  return loadManifest(file, { ...opts, onError: 'skip', ...extra });
}
const q = (image: string) => ({ image, question: 'What?', answer: '1' });

before(() => {
  top = fs.mkdtempSync(join(tmpdir(), 'papo-untrusted-'));
  dir = join(top, 'data');
  fs.mkdirSync(join(dir, 'img'), { recursive: true });
  fs.mkdirSync(join(top, 'outside'));
  fs.writeFileSync(join(dir, 'img/a.png'), pngBytes(8, 8));
  fs.writeFileSync(join(top, 'outside/b.png'), pngBytes(8, 8, 50));
  fs.symlinkSync(join(top, 'outside/b.png'), join(dir, 'img/link-out.png'));
  fs.symlinkSync(join(dir, 'img/a.png'), join(dir, 'img/link-in.png'));
  fs.symlinkSync(join(top, 'outside'), join(dir, 'outdir'));
});

after(() => fs.rmSync(top, { recursive: true, force: true }));

test('confinement: relative paths resolve inside the manifest directory; ../, absolute and linked-out paths are refused', () => {
  const m = load('paths.jsonl', [
    q('img/a.png'), // 1 fine
    q('img/../img/a.png'), // 2 fine: stays inside
    q(join(dir, 'img/a.png')), // 3 fine: absolute, but inside
    q('img/link-in.png'), // 4 fine: a link that stays inside
    q('../outside/b.png'), // 5 leaves
    q(join(top, 'outside/b.png')), // 6 absolute, outside
    q('/etc/passwd'), // 7 absolute, outside
    q('img/link-out.png'), // 8 a link out
    q('outdir/b.png'), // 9 through a linked directory
    q('../outside/missing.png'), // 10 leaves: refused before looking, so not "not found"
    q('img/a.png\u0000.txt'), // 11 a NUL character
  ]);
  assert.deepEqual(
    m.records.map((r) => r.line),
    [1, 2, 3, 4],
  );
  const reason = (n: number) => m.issues.find((i) => i.line === n)!.reason;
  assert.match(
    reason(5),
    /image path "\.\.\/outside\/b\.png" leaves the manifest's directory .*data; set --allow-outside-manifest-dir \(data\.allow_outside_manifest_dir: true\) to allow it/,
  );
  assert.match(reason(6), /leaves the manifest's directory/);
  assert.match(reason(7), /image path "\/etc\/passwd" leaves the manifest's directory/);
  assert.match(reason(8), /leads out of the manifest's directory .* through a symbolic link/);
  assert.match(reason(9), /through a symbolic link/);
  assert.match(reason(10), /leaves the manifest's directory/);
  assert.equal(reason(11), 'image path contains a NUL character');
  assert.equal(m.issues.find((i) => i.line === 5)!.file, join(top, 'outside/b.png'), 'the issue names the resolved path');
});

test('confinement: allowOutsideManifestDir opts in; the file checks still apply', () => {
  const m = load('outside.jsonl', [q('../outside/b.png'), q('img/link-out.png'), q('outdir/b.png'), q('/etc/passwd')], { allowOutsideManifestDir: true });
  assert.deepEqual(
    m.records.map((r) => r.line),
    [1, 2, 3],
  );
  assert.equal(m.records[0].image.data[0], 50);
  const passwd = m.issues.find((i) => i.line === 4)!;
  assert.equal(passwd.reason, 'not a PNG or JPEG (the file does not start with either signature)');
  assert.throws(() => load('x.jsonl', [], { allowOutsideManifestDir: 'yes' as never }), /allowOutsideManifestDir must be true or false, got "yes"/);
});

test('only regular files are opened: a directory, a FIFO and devices are refused without reading', { timeout: 20_000 }, () => {
  const fifo = join(dir, 'img/pipe.png');
  const made = spawnSync('mkfifo', [fifo]).status === 0;
  const records = [q('img'), q('/dev/zero'), q('/dev/null')];
  if (made) records.push(q('img/pipe.png')); // would block forever if opened for reading
  const m = load('special.jsonl', records, { allowOutsideManifestDir: true });
  assert.equal(m.records.length, 0);
  const reason = (n: number) => m.issues.find((i) => i.line === n)!.reason;
  assert.equal(reason(1), 'is a directory, not a regular file');
  assert.equal(reason(2), 'is a character device, not a regular file');
  assert.equal(reason(3), 'is a character device, not a regular file');
  if (made) assert.equal(reason(4), 'is a FIFO (named pipe), not a regular file');
  // the manifest itself too
  assert.throws(() => loadManifest(join(dir, 'img'), opts), /cannot read manifest .*img: not a regular file/);
  if (made) assert.throws(() => loadManifest(fifo, opts), /cannot read manifest .*pipe\.png: not a regular file/);
});

test('byte limit: a file over maxImageBytes (default 64 MiB) is refused from its size, before reading', () => {
  // a sparse 64 GiB file: reading it would take minutes and all memory
  const huge = join(dir, 'img/huge.png');
  fs.writeFileSync(huge, pngBytes(8, 8));
  fs.truncateSync(huge, 2 ** 36);
  const m = load('huge.jsonl', [q('img/huge.png')]);
  assert.equal(m.issues[0].reason, `file is ${2 ** 36} bytes, over the limit of ${64 * 2 ** 20} (max_image_bytes); shrink it or raise the limit`);
  fs.rmSync(huge);
  const size = fs.statSync(join(dir, 'img/a.png')).size;
  assert.equal(load('b1.jsonl', [q('img/a.png')], { maxImageBytes: size }).records.length, 1, 'a file of exactly the limit loads');
  assert.match(
    load('b2.jsonl', [q('img/a.png')], { maxImageBytes: size - 1 }).issues[0].reason,
    new RegExp(`file is ${size} bytes, over the limit of ${size - 1}`),
  );
  for (const bad of [0, -1, 1.5, NaN, Infinity]) assert.throws(() => load('b3.jsonl', [], { maxImageBytes: bad }), /maxImageBytes must be a positive integer/);
});

test('pixel limit: PNG and JPEG sizes are read from the header and checked before decoding', () => {
  // 8000 x 8000 declared, no pixel data: refused for its size, so nothing was decoded
  fs.writeFileSync(join(dir, 'img/big.png'), png(ihdr(8000, 8000, 6, 0), chunk('IDAT', deflateSync(Buffer.alloc(10)))));
  const big = load('big.jsonl', [q('img/big.png')]);
  assert.equal(
    big.issues[0].reason,
    `image is 8000 x 8000 = 64000000 pixels, over the limit of ${2 ** 24} (max_image_pixels); downscale it or raise the limit`,
  );
  // a real 300 x 200 PNG and JPEG, around a limit of 60000 pixels
  const rgba = Buffer.alloc(300 * 200 * 4, 200);
  fs.writeFileSync(join(dir, 'img/p.png'), pngBytes(300, 200));
  fs.writeFileSync(join(dir, 'img/j.jpg'), jpeg.encode({ width: 300, height: 200, data: rgba }, 90).data);
  assert.equal(load('p1.jsonl', [q('img/p.png'), q('img/j.jpg')], { maxImagePixels: 60_000 }).records.length, 2);
  const over = load('p2.jsonl', [q('img/p.png'), q('img/j.jpg')], { maxImagePixels: 59_999 });
  assert.deepEqual(
    over.issues.map((i) => i.reason),
    Array(2).fill('image is 300 x 200 = 60000 pixels, over the limit of 59999 (max_image_pixels); downscale it or raise the limit'),
  );
  assert.throws(() => load('p3.jsonl', [], { maxImagePixels: 0 }), /maxImagePixels must be a positive integer/);
});

test('image headers: PNG IHDR and the JPEG frame header after other segments; malformed headers are clear errors', () => {
  assert.deepEqual(imageHeader(pngBytes(7, 3)), { format: 'png', width: 7, height: 3, bitDepth: 8, colorType: 6, interlaced: false });
  // jpeg-js writes APP0 and DQT segments before the frame header
  const j = jpeg.encode({ width: 33, height: 17, data: Buffer.alloc(33 * 17 * 4) }, 80).data;
  assert.deepEqual(imageHeader(j), { format: 'jpeg', width: 33, height: 17, interlaced: false });
  assert.throws(() => imageHeader(j.subarray(0, 30)), /undecodable JPEG: truncated before its frame header/);
  assert.throws(() => imageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 4, 0, 0])), /no frame header before the image data/);
  assert.throws(() => imageHeader(png(chunk('IDAT', Buffer.alloc(20)))), /the first chunk is not a 13-byte IHDR/);
  assert.throws(() => imageHeader(SIGNATURE), /truncated before the end of its header/);
  assert.throws(() => imageHeader(png(ihdr(0, 5, 0, 0))), /declares 0 x 5 pixels/);
  assert.throws(() => imageHeader(Buffer.alloc(0)), /empty file/);
});

test('interlaced PNG: valid ones decode; data inflating past the declared size is refused before pngjs inflates it', () => {
  const ok = decodeImage(interlacedGrey(13, 9, 77));
  assert.deepEqual([ok.height, ok.width], [9, 13]);
  assert.ok(ok.data.every((v) => v === 77));
  // 16 x 16 declared (needs 16 * 17 + ... bytes), 8 MB of zeros deflated to ~8 KB
  const bomb = png(ihdr(16, 16, 0, 1), chunk('IDAT', deflateSync(Buffer.alloc(8 * 2 ** 20))));
  assert.ok(bomb.length < 20_000);
  assert.throws(() => decodeImage(bomb), /undecodable PNG: image data inflates past the \d+ bytes its declared size needs/);
});

test('error messages never show the file: not its first bytes, not a chunk name it declares', () => {
  fs.writeFileSync(join(dir, 'img/secret.png'), 'SECRET-TOKEN-42\n');
  const crafted = png(ihdr(4, 4, 0, 0), chunk('QZXW', Buffer.from('hidden')), chunk('IDAT', deflateSync(Buffer.alloc(20))));
  fs.writeFileSync(join(dir, 'img/crafted.png'), crafted);
  // a scanline filter byte of 83 ('S'): pngjs says "Unrecognised filter type - 83"
  fs.writeFileSync(join(dir, 'img/filter.png'), png(ihdr(4, 4, 0, 0), chunk('IDAT', deflateSync(Buffer.alloc(20, 83)))));
  const m = load('secret.jsonl', [q('img/secret.png'), q('img/crafted.png'), q('img/filter.png')]);
  const text = m.issues.map((i) => i.reason).join('\n');
  assert.deepEqual(
    m.issues.map((i) => i.reason),
    [
      'not a PNG or JPEG (the file does not start with either signature)',
      'undecodable PNG: unrecognised content at end of stream',
      'undecodable PNG: unrecognised filter type',
    ],
  );
  for (const leak of ['SECRET', '53 45', '5345', 'QZXW', 'hidden', '83']) assert.ok(!text.includes(leak), `message shows ${leak}: ${text}`);
});

test('a byte-order mark, 1e400 and __proto__ in a manifest', () => {
  const file = join(dir, 'bom.jsonl');
  fs.writeFileSync(file, `\uFEFF${lines(q('img/a.png'))}`);
  const bom = loadManifest(file, opts);
  assert.deepEqual(
    bom.records.map((r) => r.line),
    [1],
    'the BOM is not part of line 1',
  );
  fs.writeFileSync(file, '{"image": "img/a.png", "question": "q", "answer": 1e400}\n');
  const inf = loadManifest(file, { ...opts, onError: 'skip' });
  assert.equal(inf.issues[0].reason, 'field "answer" must be a non-empty string or a finite number, got Infinity');
  fs.writeFileSync(file, '{"image": "img/a.png", "question": "q", "answer": "1", "__proto__": {"polluted": true, "answer": "9"}}\n');
  const r = loadManifest(file, opts).records[0];
  assert.equal(Object.getPrototypeOf(r.meta), Object.prototype);
  assert.equal((r.meta as { polluted?: unknown }).polluted, undefined);
  assert.deepEqual(Object.getOwnPropertyDescriptor(r.meta, '__proto__')?.value, { polluted: true, answer: '9' }, 'kept as an ordinary field');
  assert.equal(r.answer, '1');
  assert.equal(JSON.parse(JSON.stringify(r.meta)).image, 'img/a.png');
});

test('record and byte bounds: a manifest past maxRows or maxBytes is refused before any image is read', () => {
  const file = join(dir, 'bounded.jsonl');
  const line = (i: number) => JSON.stringify({ image: 'missing.png', question: `q${i}`, answer: '1' });
  fs.writeFileSync(file, `${[1, 2, 3].map(line).join('\n')}\n\n`);
  assert.throws(
    () => loadManifest(file, { ...opts, maxRows: 2 }),
    /bounded\.jsonl has 3 records, over the limit of 2 \(data\.max_rows; records are held decoded in memory/,
  );
  assert.throws(
    () => loadManifest(file, { ...opts, maxBytes: 10 }),
    /cannot read manifest .*bounded\.jsonl: it has \d+ bytes, over the limit of 10 \(data\.max_dataset_bytes\)/,
  );
  // within the bounds, the lines are read (and here their missing images reported)
  assert.throws(() => loadManifest(file, { ...opts, maxRows: 3 }), /3 problems/);
});
