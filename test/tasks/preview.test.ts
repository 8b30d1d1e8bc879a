import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { GLYPH_DESCENT, GLYPH_HEIGHT, drawText, glyphPixel, wrapText } from '../../tasks/preview/font.ts';
import { encodePng, renderContactSheet } from '../../tasks/preview/contact-sheet.ts';
import { renderRolloutSheet } from '../../tasks/preview/rollout-sheet.ts';
import { decodeImage } from '../../tasks/loader/decode.ts';
import { ScenesTask } from '../../tasks/scenes/task.ts';
import { registerDataCommands } from '../../cli/data.ts';
import { sampleRecords, splitStats } from '../../tasks/inspect.ts';
import { makeImage } from '../../util/image.ts';

const glyphBits = (ch: string): string => {
  let s = '';
  for (let c = 0; c < 5; c++) for (let r = 0; r < 9; r++) s += glyphPixel(ch, c, r) ? '1' : '0';
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

test('font: g, j, p, q and y descend below the baseline; other lower-case letters do not', () => {
  const scale = 2;
  // Ink drawn in the rows under the baseline (font rows 7 and 8) when `ch` is drawn at the top-left.
  const below = (ch: string) => {
    const img = makeImage((GLYPH_HEIGHT + GLYPH_DESCENT + 1) * scale, 6 * scale);
    drawText(img, ch, 0, 0, [255, 255, 255], scale);
    let ink = 0;
    for (let y = GLYPH_HEIGHT * scale; y < img.height; y++) for (let x = 0; x < img.width; x++) if (img.data[(y * img.width + x) * 3] > 0) ink++;
    return ink;
  };
  for (const ch of 'gjpqy') assert.ok(below(ch) >= 2 * scale * scale, `${ch} has a descender (${below(ch)} px below the baseline)`);
  for (const ch of 'abcdefhiklmnorstuvwxzA0') assert.equal(below(ch), 0, `${ch} sits on the baseline`);
  // The bowls of g, p, q and y share the x-height of a, o and u (rows 2..6).
  const rowsOf = (ch: string) => [...Array(9).keys()].filter((r) => [...Array(5).keys()].some((c) => glyphPixel(ch, c, r)));
  assert.deepEqual(rowsOf('o'), [2, 3, 4, 5, 6]);
  for (const ch of 'gpqy') assert.deepEqual(rowsOf(ch), [2, 3, 4, 5, 6, 7, 8], ch);
});

test('rollout sheet: wide enough for its header, whose last character is drawn', () => {
  const prompt = {
    image: makeImage(4, 8),
    title: 'read',
    question: 'q?',
    answer: '1',
    responses: [{ tokens: ['1'], reward: 1, correct: true, advantage: 0 }],
  };
  const header = `run, step 3: ${'x'.repeat(150)}|`;
  const sheet = renderRolloutSheet([prompt], { header: [header], scale: 1, textScale: 1 });
  // '|' is the middle column of its 6-pixel cell, from x = 10 (the margin) + 6 per character before it.
  const x = 10 + 6 * (header.length - 1) + 2;
  assert.ok(sheet.width >= x + 10, `sheet ${sheet.width} px wide`);
  let ink = 0;
  for (let y = 10; y < 17; y++) if (sheet.data[(y * sheet.width + x) * 3] > 200) ink++;
  assert.equal(ink, 7, 'the whole stem of the last character');
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
