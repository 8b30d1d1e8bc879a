/**
 * Property-based tests (fast-check) of the reward runner: for arbitrary values returned, resolved, thrown
 * or rejected by a reward function, single or batch, `runReward` resolves, and every input ends as exactly
 * one of: the value it was given (when valid, by an independent check written here), or a failure naming
 * its record id. Nothing is lost silently.
 *
 * The seed is fixed so CI is deterministic; PAPO_FC_SEED=<n> explores other inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { REWARD_BOUND, runReward, type RewardRun } from '../../tasks/rewards/runner.ts';
import { defineBatchReward, defineReward, type RewardInput, type RewardResult } from '../../tasks/rewards/types.ts';

const params = { seed: Number(process.env.PAPO_FC_SEED ?? 12), numRuns: 300 };
const REQUIRED = ['overall', 'accuracy', 'format'];

/** Exotic values, all invalid as results; made fresh for every use (a revoked Proxy stays revoked). */
const EXOTIC: Record<string, () => unknown> = {
  throwingGetter: () => ({
    accuracy: 1,
    format: 1,
    get overall(): number {
      throw new Error('getter');
    },
  }),
  proxyGet: () =>
    new Proxy(
      { overall: 1, accuracy: 1, format: 1 },
      {
        get() {
          throw new Error('get');
        },
      },
    ),
  proxyHas: () =>
    new Proxy(
      { overall: 1, accuracy: 1, format: 1 },
      {
        has() {
          throw new Error('has');
        },
      },
    ),
  proxyOwnKeys: () =>
    new Proxy(
      { overall: 1, accuracy: 1, format: 1 },
      {
        ownKeys() {
          throw new Error('ownKeys');
        },
      },
    ),
  revoked: () => {
    const p = Proxy.revocable({}, {});
    p.revoke();
    return p.proxy;
  },
  thenGetter: () => ({
    overall: 1,
    accuracy: 1,
    format: 1,
    get then(): unknown {
      throw new Error('then');
    },
  }),
  symbolField: () => ({ overall: 1, accuracy: 1, format: Symbol('f') }),
  bigintField: () => ({ overall: 1n, accuracy: 1, format: 1 }),
};

type Value = { exotic: string } | { plain: unknown };

/** Numbers a result may hold: finite and within the bound (+-1e6). */
const finite = fc.oneof(fc.double({ min: -REWARD_BOUND, max: REWARD_BOUND, noNaN: true }), fc.constantFrom(REWARD_BOUND, -REWARD_BOUND, 0, -0));
const validResult = fc
  .record({ overall: finite, accuracy: finite, format: finite, extra: fc.dictionary(fc.string({ maxLength: 6 }), finite, { maxKeys: 3 }) })
  .map(({ extra, ...r }) => ({ ...extra, ...r }));
/** A valid result with one field broken: removed, non-finite, out of range, or of another type. */
const nearlyValid = fc
  .tuple(
    validResult,
    fc.constantFrom(...REQUIRED, 'extra'),
    fc.constantFrom<unknown>(undefined, NaN, Infinity, -Infinity, 1e308, -1e308, REWARD_BOUND * (1 + 2 ** -40), '1', null, [1], { n: 1 }, true),
  )
  .map(([r, k, bad]) => {
    const out: Record<string, unknown> = { ...r };
    if (bad === undefined && k !== 'extra') delete out[k];
    else out[k] = bad;
    return out;
  });
const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: validResult.map((plain) => ({ plain })) },
  { weight: 3, arbitrary: nearlyValid.map((plain) => ({ plain })) },
  { weight: 3, arbitrary: fc.anything().map((plain) => ({ plain })) },
  { weight: 2, arbitrary: fc.constantFrom(...Object.keys(EXOTIC)).map((exotic) => ({ exotic })) },
);
const make = (v: Value): unknown => ('exotic' in v ? EXOTIC[v.exotic]() : v.plain);

/** Independent check: the plain copy a valid result must come back as, or null when invalid. */
function expected(v: Value): RewardResult | null {
  if ('exotic' in v) return null;
  const x = v.plain;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return null;
  const keys = Object.keys(x);
  if (!REQUIRED.every((k) => keys.includes(k))) return null;
  const out: Record<string, number> = {};
  for (const k of keys) {
    const n = (x as Record<string, unknown>)[k];
    if (typeof n !== 'number' || !Number.isFinite(n) || Math.abs(n) > REWARD_BOUND) return null;
    Object.defineProperty(out, k, { value: n, enumerable: true, writable: true, configurable: true });
  }
  return out as RewardResult;
}

type How = 'return' | 'resolve' | 'throw' | 'reject';
const how = fc.constantFrom<How>('return', 'resolve', 'throw', 'reject');

function deliver(h: How, v: unknown): unknown {
  if (h === 'return') return v;
  if (h === 'resolve') return (async () => v)();
  if (h === 'reject') return Promise.reject(v);
  throw v;
}

const inputsOf = (ids: string[]): RewardInput[] => ids.map((id) => ({ id, response: 'r', answer: 'a' }));

/** What every run must satisfy, given what each input should give (null: a failure). */
function checkRun(run: RewardRun, inputs: RewardInput[], want: (RewardResult | null)[]): void {
  assert.equal(run.results.length, inputs.length);
  const failed = new Set<number>();
  let last = -1;
  for (const f of run.failures) {
    assert.ok(f.index > last, 'one failure per input, in order');
    last = f.index;
    failed.add(f.index);
    assert.equal(f.id, inputs[f.index].id, 'the failure names its record');
    assert.ok(['threw', 'timeout', 'invalid'].includes(f.kind));
    assert.ok(typeof f.reason === 'string' && f.reason.length > 0);
  }
  for (let i = 0; i < inputs.length; i++) {
    const r = run.results[i];
    for (const [k, x] of Object.entries(r)) assert.ok(Number.isFinite(x), `result ${i}.${k} = ${x}`);
    if (want[i] === null) {
      assert.ok(failed.has(i), `input ${i} is invalid but no failure was recorded`);
      assert.deepEqual(r, { overall: 0, accuracy: 0, format: 0 });
    } else {
      assert.ok(!failed.has(i), `input ${i} is valid but failed: ${run.failures.find((f) => f.index === i)?.reason}`);
      assert.deepStrictEqual(r, want[i]);
    }
  }
}

test('property: single mode, arbitrary values returned, resolved, thrown or rejected', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(how, value, fc.string({ maxLength: 8 })), { maxLength: 8 }),
      fc.constantFrom(1, 2, 3, Infinity),
      async (calls, concurrency) => {
        const inputs = inputsOf(calls.map(([, , id]) => id));
        const fn = defineReward('p', (x) => {
          const i = inputs.indexOf(x);
          return deliver(calls[i][0], make(calls[i][1])) as RewardResult;
        });
        const run = await runReward(fn, inputs, { concurrency });
        checkRun(
          run,
          inputs,
          calls.map(([h, v]) => (h === 'return' || h === 'resolve' ? expected(v) : null)),
        );
      },
    ),
    params,
  );
});

test('property: batch mode, arbitrary (sparse, short, long, non-array) batches returned, resolved, thrown or rejected', async () => {
  const batch = fc.oneof(
    { weight: 3, arbitrary: fc.sparseArray(value, { maxLength: 7 }).map((entries) => ({ entries })) },
    { weight: 1, arbitrary: value.map((whole) => ({ whole })) },
  );
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 6 }), how, batch, async (n, h, b) => {
      const inputs = inputsOf(Array.from({ length: n }, (_, i) => `rec-${i}`));
      const made = 'entries' in b ? b.entries.map(make) : make(b.whole);
      if ('entries' in b) (made as unknown[]).length = b.entries.length; // keep the holes
      const fn = defineBatchReward('pb', () => deliver(h, made) as RewardResult[]);
      const run = await runReward(fn, inputs);
      if (n === 0) return assert.deepEqual(run, { results: [], failures: [] });
      // a plain array from fc.anything is a batch too
      const whole = 'whole' in b && 'plain' in b.whole && Array.isArray(b.whole.plain) ? (b.whole.plain as unknown[]).map((plain) => ({ plain })) : undefined;
      const entries = 'entries' in b ? b.entries : whole;
      const ok = (h === 'return' || h === 'resolve') && entries !== undefined && entries.length === n;
      const want = inputs.map((_, i) => (ok && i in entries! ? expected(entries![i]) : null));
      checkRun(run, inputs, want);
    }),
    params,
  );
});
