import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImage, type RgbImage } from '../../util/image.ts';
import { resizeImage, resizeToFit } from '../../tasks/loader/resize.ts';

function grey(h: number, w: number, f: (y: number, x: number) => number): RgbImage {
  const img = makeImage(h, w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data.fill(f(y, x), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return img;
}
const at = (img: RgbImage, y: number, x: number, c = 0): number => img.data[(y * img.width + x) * 3 + c];

test('resize: same size is the identity; a constant image stays constant for every method', () => {
  const img = grey(5, 7, (y, x) => y * 7 + x);
  assert.equal(resizeImage(img, 5, 7), img);
  const flat = grey(9, 13, () => 77);
  for (const m of ['bilinear', 'area', 'auto'] as const) {
    for (const [h, w] of [
      [4, 5],
      [20, 30],
      [9, 2],
    ]) {
      const r = resizeImage(flat, h, w, m);
      assert.equal(r.height, h);
      assert.equal(r.width, w);
      assert.ok(
        r.data.every((v) => v === 77),
        `${m} ${h}x${w}`,
      );
    }
  }
});

test('resize: area averages exact footprints, bilinear interpolates between pixel centres', () => {
  // 2x2 blocks of a 4x4 checkerboard of 0/200 average to 100 under area, 2x shrink.
  const checker = grey(4, 4, (y, x) => ((y + x) % 2 ? 200 : 0));
  const a = resizeImage(checker, 2, 2, 'area');
  assert.deepEqual([...a.data], new Array(12).fill(100));
  // 3 -> 2 area: output 0 covers source [0, 1.5): (1*s0 + 0.5*s1) / 1.5.
  const row = grey(1, 3, (_, x) => [0, 90, 180][x]);
  const a2 = resizeImage(row, 1, 2, 'area');
  assert.equal(at(a2, 0, 0), 30);
  assert.equal(at(a2, 0, 1), 150);
  // 2 -> 4 bilinear, half-pixel centres: src = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped.
  const b = resizeImage(
    grey(1, 2, (_, x) => [0, 100][x]),
    1,
    4,
    'bilinear',
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((x) => at(b, 0, x)),
    [0, 25, 75, 100],
  );
  // auto = area when shrinking
  assert.deepEqual([...resizeImage(checker, 2, 2).data], [...a.data]);
  // channels stay separate
  const rgb = makeImage(2, 2, Uint8Array.from([10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30]));
  assert.deepEqual([...resizeImage(rgb, 1, 1, 'area').data], [10, 20, 30]);
  assert.throws(() => resizeImage(rgb, 0, 3), /positive/);
  assert.throws(() => resizeImage(rgb, 3, 3, 'cubic' as never), /bilinear, area or auto/);
});

test('resize: pad keeps the aspect ratio and letterboxes on the background', () => {
  const square = grey(10, 10, () => 200);
  const r = resizeToFit(square, 28, 56, 'auto', [1, 2, 3]);
  assert.equal(r.width, 56);
  // 28x28 content centred: columns 14..41 are content, the rest background.
  assert.equal(at(r, 5, 20), 200);
  assert.deepEqual([at(r, 5, 3, 0), at(r, 5, 3, 1), at(r, 5, 3, 2)], [1, 2, 3]);
  assert.equal(at(r, 5, 13), 1);
  assert.equal(at(r, 5, 14), 200);
  assert.equal(at(r, 5, 41), 200);
  assert.equal(at(r, 5, 42), 1);
});
