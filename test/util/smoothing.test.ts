import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SMOOTHING, checkSmoothing, emaSmooth } from '../../util/smoothing.ts';

const close = (actual: number[], expected: number[]) => {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < 1e-12, `point ${i}: ${a} vs ${expected[i]}`));
};

test("emaSmooth: TensorBoard's debiased EMA, by hand", () => {
  assert.equal(DEFAULT_SMOOTHING, 0.6);
  // w = 0.6: last = 0.4, 1.04, 1.824; debias 1 - 0.6^n = 0.4, 0.64, 0.784
  close(emaSmooth([1, 2, 3]), [1, 1.625, 1.824 / 0.784]);
  // w = 0.5 on [4, 0, 2]: last = 2, 1, 1.5; debias 0.5, 0.75, 0.875
  close(emaSmooth([4, 0, 2], 0.5), [4, 4 / 3, 1.5 / 0.875]);
  // the first point is always itself (debiased); weight 0 is no smoothing
  close(emaSmooth([7, -3, 5, 1], 0), [7, -3, 5, 1]);
  assert.deepEqual(emaSmooth([], 0.9), []);
});

test('emaSmooth: non-finite points pass through and do not count; a constant series is kept', () => {
  // w = 0.5 on [2, NaN, 4]: the NaN stays, the 4 is the second point: last = 1, 2.5; debias 0.5, 0.75
  const s = emaSmooth([2, Number.NaN, 4], 0.5);
  assert.ok(Number.isNaN(s[1]));
  close([s[0], s[2]], [2, 2.5 / 0.75]);
  assert.deepEqual(emaSmooth([0.1, 0.1, 0.1], 0.99), [0.1, 0.1, 0.1]);
});

test('smoothing weights outside [0, 1) are refused by name', () => {
  assert.throws(() => emaSmooth([1], 1), /smoothing must be at least 0 and below 1, got 1/);
  assert.throws(() => checkSmoothing(-0.1, '--smoothing'), /--smoothing must be at least 0 and below 1, got -0.1/);
  assert.throws(() => checkSmoothing(Number.NaN), /got NaN/);
  assert.equal(checkSmoothing(0.95), 0.95);
});
