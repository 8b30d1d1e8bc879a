import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { drawText, glyphPixel, wrapText } from '../../tasks/preview/font.ts';
import { encodePng, renderContactSheet } from '../../tasks/preview/contact-sheet.ts';
import { decodeImage } from '../../tasks/loader/decode.ts';
import { ScenesTask } from '../../tasks/scenes/task.ts';
import { registerDataCommands } from '../../cli/data.ts';
import { sampleRecords, splitStats } from '../../tasks/inspect.ts';
import { makeImage } from '../../util/image.ts';

const glyphBits = (ch: string): string => {
  let s = '';
  for (let c = 0; c < 5; c++) for (let r = 0; r < 7; r++) s += glyphPixel(ch, c, r) ? '1' : '0';
  return s;
};

test('font: every printable ASCII character has its own glyph; text draws and wraps', () => {
  const seen = new Map<string, string>();
  for (let code = 33; code <= 126; code++) {
    const ch = String.fromCharCode(code);
    const bits = glyphBits(ch);
    assert.ok(bits.includes('1'), `${ch} has ink`);
    assert.ok(!seen.has(bits), `${ch} differs from ${seen.get(bits)}`);
    seen.set(bits, ch);
  }
  assert.ok(!glyphBits(' ').includes('1'));
  assert.equal(glyphBits('\u00e9'), glyphBits('?'), 'unknown characters draw as ?');
  const img = makeImage(7, 12);
  drawText(img, 'I', 0, 0, [255, 255, 255]);
  assert.equal(img.data[(3 * 12 + 2) * 3], 255, 'the stem of I is its middle column');
  assert.equal(img.data[(3 * 12 + 0) * 3], 0);
  assert.deepEqual(wrapText('What is the sum of the digits?', 12), ['What is the', 'sum of the', 'digits?']);
  assert.deepEqual(wrapText('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
});

test('contact sheet: images upscaled in a grid with labels under them; PNG round-trips', () => {
  const task = new ScenesTask({ seed: 2 });
  const recs = sampleRecords(task, 'validation', 5, 0, ['count-all']);
  assert.equal(recs.length, 5);
  assert.ok(recs.every((r) => r.family === 'count-all'));
  const sheet = renderContactSheet(recs, { scale: 3, columns: 2 });
  // Cell 0 image starts at (8, 8); each source pixel is a 3x3 block.
  for (const [y, x] of [
    [0, 0],
    [13, 20],
    [27, 55],
  ]) {
    const src = recs[0].image.data.subarray((y * 56 + x) * 3, (y * 56 + x) * 3 + 3);
    for (const [dy, dx] of [
      [0, 0],
      [2, 2],
    ]) {
      const p = ((8 + y * 3 + dy) * sheet.width + 8 + x * 3 + dx) * 3;
      assert.deepEqual([...sheet.data.subarray(p, p + 3)], [...src]);
    }
  }
  assert.equal(sheet.width, 8 + 2 * (56 * 3 + 8));
  // Text under the first image: some light pixels in the band below it.
  let ink = 0;
  for (let y = 8 + 84 + 4; y < 8 + 84 + 40; y++) for (let x = 8; x < 8 + 168; x++) if (sheet.data[(y * sheet.width + x) * 3 + 1] > 200) ink++;
  assert.ok(ink > 50, `label ink ${ink}`);
  const back = decodeImage(encodePng(sheet));
  assert.deepEqual([back.height, back.width], [sheet.height, sheet.width]);
  assert.deepEqual(back.data, sheet.data);
  assert.throws(() => renderContactSheet([]), /at least one record/);
});

test('cli: data preview writes a sheet; stats count families and answers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'papo-preview-'));
  try {
    const out = join(dir, 'sheet.png');
    const program = new Command('papo').exitOverride();
    registerDataCommands(program);
    const log = console.log;
    console.log = () => {};
    try {
      await program.parseAsync(['data', 'preview', '--task', 'scenes', '--family', 'above', '--n', '4', '--out', out], { from: 'user' });
    } finally {
      console.log = log;
    }
    const png = decodeImage(readFileSync(out));
    assert.ok(png.width > 4 * 56 && png.height > 4 * 28);
    await assert.rejects(
      program.parseAsync(['data', 'preview', '--task', 'scenes', '--family', 'nope', '--out', out], { from: 'user' }),
      /unknown family "nope"/,
    );
    const s = splitStats(new ScenesTask(), 'test', 100);
    assert.equal(s.scanned, 100);
    assert.equal(
      Object.values(s.families).reduce((a, f) => a + f.count, 0),
      100,
    );
    assert.equal(s.families['count-all'].count, 10);
    assert.ok(s.families['left-of'].maxResponseTokens <= 48);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
