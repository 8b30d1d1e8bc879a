import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../../util/tf-backend.ts';
import { meanKlPrcp, tokenKlPrcp } from '../../algorithms/kl.ts';
import { Rng } from '../../util/rng.ts';
import { assertClose } from '../asserts.ts';

await initTf();

/** k3 of PAPO-SPEC in float64: d = clamp(masked - original, -20, 20); exp(d) - d - 1, clamped to [-10, 10]. */
const k3 = (original: number, masked: number) => {
  const d = Math.min(20, Math.max(-20, masked - original));
  return Math.min(10, Math.max(-10, Math.exp(d) - d - 1));
};

const rows = (rng: Rng, lengths: number[], spread: number) => lengths.map((n) => Float32Array.from({ length: n }, () => -spread * rng.float()));

test('per-token and per-response kl_prcp match a float64 reference, rows of different lengths', () => {
  const rng = Rng.seeded(11);
  const lengths = [3, 1, 5, 4];
  const original = rows(rng, lengths, 4);
  const masked = rows(rng, lengths, 4);
  masked[2][4] = original[2][4] - 30; // beyond the clamp
  const perToken = tokenKlPrcp(original, masked);
  perToken.forEach((r, i) => {
    assert.equal(r.length, lengths[i]);
    assertClose(
      r,
      Array.from(original[i], (o, t) => k3(o, masked[i][t])),
      1e-5,
    );
  });
  const means = meanKlPrcp(original, masked, lengths);
  assertClose(
    means,
    perToken.map((r) => r.reduce((a, x) => a + x, 0) / r.length),
    1e-5,
  );
  // only the first lengths[i] tokens count
  assertClose(
    meanKlPrcp(original, masked, [1, 1, 1, 1]),
    perToken.map((r) => r[0]),
    1e-6,
  );
  // identical views: nothing to tell apart
  assert.deepEqual([...meanKlPrcp(original, original, lengths)], [0, 0, 0, 0]);
});
