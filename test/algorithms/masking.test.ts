import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawPatchGrid, applyPatchGrid, randomPatchMask } from '../../algorithms/masking.ts';
import { makeImage } from '../../util/image.ts';
import { Rng } from '../../util/rng.ts';

/** An image with no black pixel, so every black pixel after masking was masked. */
function brightImage(h: number, w: number) {
  const img = makeImage(h, w);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 1 + (i % 250);
  return img;
}

test('masked patches are exactly black, others untouched; edge patches are truncated', () => {
  const img = brightImage(30, 45); // 14-px patches: 3 x 4 grid, last row 2 px, last column 3 px high/wide
  const grid = drawPatchGrid(30, 45, { ratio: 0.5, patchSize: 14 }, Rng.seeded(3));
  assert.equal(grid.rows, 3);
  assert.equal(grid.cols, 4);
  const out = applyPatchGrid(img, grid);
  assert.equal(out.height, 30);
  assert.equal(out.width, 45);
  assert.ok(grid.masked.some((m) => m) && grid.masked.some((m) => !m), 'seed 3 should mask some but not all patches');
  for (let y = 0; y < 30; y++) {
    for (let x = 0; x < 45; x++) {
      const m = grid.masked[Math.floor(y / 14) * 4 + Math.floor(x / 14)];
      for (let c = 0; c < 3; c++) {
        const i = (y * 45 + x) * 3 + c;
        assert.equal(out.data[i], m ? 0 : img.data[i], `pixel (${y},${x},${c})`);
      }
    }
  }
  assert.notEqual(out.data, img.data, 'the input image is not modified');
  assert.ok(img.data.every((v) => v > 0));
});

test('ratio 0 keeps the image, ratio 1 blackens it all', () => {
  const img = brightImage(28, 56);
  assert.deepEqual(randomPatchMask(img, { ratio: 0, patchSize: 14 }, Rng.seeded(1)).data, img.data);
  assert.ok(randomPatchMask(img, { ratio: 1, patchSize: 14 }, Rng.seeded(1)).data.every((v) => v === 0));
});

test('the masked fraction of patches follows mask_ratio over many seeds', () => {
  for (const ratio of [0.2, 0.6, 0.8]) {
    let masked = 0;
    let total = 0;
    for (let seed = 0; seed < 400; seed++) {
      const g = drawPatchGrid(56, 56, { ratio, patchSize: 14 }, Rng.seeded(seed));
      masked += g.masked.reduce((a, v) => a + v, 0);
      total += g.masked.length;
    }
    const p = masked / total; // 6400 Bernoulli draws: std ~0.006
    assert.ok(Math.abs(p - ratio) < 0.025, `ratio ${ratio}: observed ${p}`);
  }
});

test('masks are deterministic by seed and differ across seeds', () => {
  const img = brightImage(28, 56);
  const a = randomPatchMask(img, { ratio: 0.6, patchSize: 7 }, Rng.seeded(5));
  const b = randomPatchMask(img, { ratio: 0.6, patchSize: 7 }, Rng.seeded(5));
  const c = randomPatchMask(img, { ratio: 0.6, patchSize: 7 }, Rng.seeded(6));
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
});

test('bad options are clear errors', () => {
  assert.throws(() => drawPatchGrid(28, 28, { ratio: 1.5, patchSize: 14 }, Rng.seeded(0)), /mask ratio must be in \[0, 1\]/);
  assert.throws(() => drawPatchGrid(28, 28, { ratio: 0.5, patchSize: 0 }, Rng.seeded(0)), /patch size/);
  const g = drawPatchGrid(28, 28, { ratio: 0.5, patchSize: 14 }, Rng.seeded(0));
  assert.throws(() => applyPatchGrid(makeImage(28, 56), g), /does not fit/);
});
