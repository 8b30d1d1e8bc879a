/**
 * Assertions the test suite shares: a tolerance check, and the error a call throws or a promise rejects with.
 */
import assert from 'node:assert/strict';

/** A number is an absolute tolerance. */
export type Tolerance = number | { abs?: number; rel?: number };

const DEFAULT = { abs: 1e-6, rel: 1e-5 };

/**
 * |got - want| <= abs + rel * |want| (numpy's `allclose` rule), for one number or element-wise for arrays,
 * with a message naming the value and the index.
 *
 * @example
 * assertClose(loss, 0.25);                                   // abs 1e-6 + rel 1e-5
 * assertClose(grads, want, 1e-4, 'grad');                    // abs 1e-4
 * assertClose(metric, want, { rel: 1e-5, abs: 1e-7 }, key);  // both
 */
export function assertClose(got: number | ArrayLike<number>, want: number | ArrayLike<number>, tolerance: Tolerance = DEFAULT, what = ''): void {
  const { abs = 0, rel = 0 } = typeof tolerance === 'number' ? { abs: tolerance } : tolerance;
  const label = what ? `${what}: ` : '';
  if (typeof got === 'number' || typeof want === 'number') {
    assert.ok(typeof got === 'number' && typeof want === 'number', `${label}compare a number with a number, not with an array`);
    assert.ok(Math.abs(got - want) <= abs + rel * Math.abs(want), `${label}got ${got}, want ${want} (abs ${abs}, rel ${rel})`);
    return;
  }
  assert.equal(got.length, want.length, `${label}length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= abs + rel * Math.abs(want[i]), `${label}[${i}] got ${got[i]}, want ${want[i]} (abs ${abs}, rel ${rel})`);
  }
}

/** The error `fn` throws (fails the test if it returns). */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
    return err;
  }
  assert.fail('expected an error');
}

/** The error `p` rejects with (fails the test if it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error, `rejected with a non-Error: ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}
