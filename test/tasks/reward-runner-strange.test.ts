/**
 * The reward runner against values no reasonable function returns: each becomes a recorded failure with
 * the record id, and runReward itself never throws or rejects because of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runReward, MAX_TIMEOUT_MS } from '../../tasks/rewards/runner.ts';
import { defineBatchReward, defineReward, type RewardInput, type RewardResult } from '../../tasks/rewards/types.ts';

const inputs = (n: number): RewardInput[] => Array.from({ length: n }, (_, i) => ({ id: `rec-${i}`, response: 'r', answer: '1' }));
const ok = (): RewardResult => ({ overall: 1, accuracy: 1, format: 1 });

/** A reward returning values[i] for input i (a function value is called: it may throw). */
const returning = (values: unknown[]) =>
  defineReward('odd', (x) => {
    const v = values[Number(x.id.slice(4))];
    return (typeof v === 'function' ? v() : v) as RewardResult;
  });

test('results whose getters or Proxy traps throw, or that are revoked Proxies, are invalid failures', async () => {
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  const values = [
    {
      get overall(): number {
        throw new Error('getter boom');
      },
      accuracy: 1,
      format: 1,
    },
    new Proxy(ok(), {
      get() {
        throw new Error('get trap');
      },
    }),
    new Proxy(ok(), {
      has() {
        throw new Error('has trap');
      },
    }),
    new Proxy(ok(), {
      ownKeys() {
        throw new Error('ownKeys trap');
      },
    }),
    revoked,
    new Proxy(ok(), {
      getPrototypeOf() {
        throw new Error('proto trap');
      },
    }), // harmless: read as a plain result
  ];
  const run = await runReward(returning(values), inputs(values.length));
  assert.deepEqual(
    run.failures.map((f) => [f.id, f.kind]),
    [0, 1, 2, 3, 4].map((i) => [`rec-${i}`, 'invalid']),
  );
  assert.deepEqual(
    run.failures.map((f) => f.reason),
    [
      'reading the result threw: getter boom',
      'reading the returned value\'s "then" threw: get trap', // the runner first asks whether it is a promise
      'reading the result threw: has trap',
      'reading the result threw: ownKeys trap',
      "reading the returned value's \"then\" threw: Cannot perform 'get' on a proxy that has been revoked",
    ],
  );
  assert.deepEqual(run.results[5], ok());
});

test('a result is copied when checked: a getter cannot pass the check and then hand the trainer NaN', async () => {
  let reads = 0;
  const flipping = {
    get overall() {
      return reads++ === 0 ? 0.5 : NaN;
    },
    accuracy: 1,
    format: 0,
  };
  class Scored {
    get overall() {
      return 0.25;
    }
    get accuracy() {
      return 0;
    }
    get format() {
      return 1;
    }
  }
  const withProto = JSON.parse('{"overall": 1, "accuracy": 1, "format": 1, "__proto__": 7}');
  const run = await runReward(returning([flipping, new Scored(), withProto]), inputs(3));
  assert.deepEqual(run.failures, []);
  assert.deepEqual(run.results[0], { overall: 0.5, accuracy: 1, format: 0 });
  assert.equal(Object.getPrototypeOf(run.results[0]), Object.prototype);
  assert.deepEqual(run.results[1], { overall: 0.25, accuracy: 0, format: 1 }, 'getters on a prototype are read, not lost');
  assert.equal(Object.getPrototypeOf(run.results[2]), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(run.results[2], '__proto__')?.value, 7);
});

test('anything thrown becomes a threw failure whose reason can be printed', async () => {
  const unprintable = {
    toString() {
      throw new Error('no');
    },
  };
  const badMessage = Object.defineProperty(new Error('x'), 'message', {
    get() {
      throw new Error('no');
    },
  });
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke(); // even `instanceof` throws on it
  const thrown: unknown[] = [
    Symbol('s'),
    null,
    undefined,
    unprintable,
    Object.create(null),
    new Proxy(
      {},
      {
        get() {
          throw new Error('no');
        },
      },
    ),
    badMessage,
    'plain string',
    'x'.repeat(10_000),
    revoked,
  ];
  const run = await runReward(
    returning(
      thrown.map((t) => () => {
        throw t;
      }),
    ),
    inputs(thrown.length),
  );
  assert.equal(run.failures.length, thrown.length);
  assert.ok(run.failures.every((f, i) => f.kind === 'threw' && f.id === `rec-${i}` && f.reason.startsWith('threw: ')));
  assert.equal(run.failures[7].reason, 'threw: plain string');
  assert.ok(run.failures[8].reason.length < 320, 'long messages are cut');
  assert.equal(run.failures[6].reason, 'threw: a value that cannot be printed');
  assert.equal(run.failures[9].reason, 'threw: a value that cannot be printed');
});

test('thenables: a throwing then getter, a then that throws, and one settling twice', async () => {
  const values = [
    {
      get then() {
        throw new Error('then getter');
      },
    },
    {
      then() {
        throw new Error('then throws');
      },
    },
    {
      then(resolve: (v: unknown) => void, reject: (e: unknown) => void) {
        resolve(ok());
        reject(new Error('late'));
        resolve(NaN);
      },
    },
    Promise.resolve(
      new Proxy(
        {},
        {
          has() {
            throw new Error('async trap');
          },
        },
      ),
    ),
  ];
  const run = await runReward(returning(values), inputs(values.length));
  assert.deepEqual(
    run.failures.map((f) => [f.index, f.kind, f.reason]),
    [
      [0, 'invalid', 'reading the returned value\'s "then" threw: then getter'],
      [1, 'threw', 'threw: then throws'],
      [3, 'invalid', 'reading the result threw: async trap'],
    ],
  );
  assert.deepEqual(run.results[2], ok());
});

test('batch: holes in a sparse array, unreadable entries and an unreadable length are failures per index', async () => {
  const sparse: RewardResult[] = new Array(4);
  sparse[1] = ok();
  sparse[3] = ok();
  const r1 = await runReward(
    defineBatchReward('sparse', () => sparse),
    inputs(4),
  );
  assert.deepEqual(
    r1.failures.map((f) => [f.id, f.reason]),
    [
      ['rec-0', 'batch result has no entry at index 0 (a sparse array)'],
      ['rec-2', 'batch result has no entry at index 2 (a sparse array)'],
    ],
  );
  assert.deepEqual(
    r1.results.map((r) => r.overall),
    [0, 1, 0, 1],
  );
  const getterEntry = [ok(), ok()];
  Object.defineProperty(getterEntry, 1, {
    get() {
      throw new Error('index getter');
    },
  });
  const r2 = await runReward(
    defineBatchReward('getter', () => getterEntry),
    inputs(2),
  );
  assert.deepEqual(
    r2.failures.map((f) => [f.index, f.reason]),
    [[1, 'reading batch entry 1 threw: index getter']],
  );
  const badLength = new Proxy([ok()], {
    get(t, k) {
      if (k === 'length') throw new Error('length trap');
      return Reflect.get(t, k);
    },
  });
  const r3 = await runReward(
    defineBatchReward('length', () => badLength),
    inputs(1),
  );
  assert.deepEqual(
    r3.failures.map((f) => f.reason),
    ['reading the batch result threw: length trap'],
  );
  const long = await runReward(
    defineBatchReward('long', () => [ok(), ok(), ok()]),
    inputs(2),
  );
  assert.deepEqual(
    long.failures.map((f) => f.reason),
    Array(2).fill('batch of 2 returned 3 results'),
  );
  const none = await runReward(
    defineBatchReward('none', () => undefined as never),
    inputs(2),
  );
  assert.deepEqual(
    none.failures.map((f) => f.reason),
    Array(2).fill('batch of 2 returned undefined undefined, not an array'),
  );
});

test('timeoutMs must be finite, positive and within the timer range; concurrency a positive integer', async () => {
  const fn = defineReward('ok', ok);
  for (const t of [Infinity, 2 ** 31, NaN, -1, 0, '100' as never]) {
    await assert.rejects(
      runReward(fn, inputs(1), { timeoutMs: t }),
      /^Error: reward timeoutMs must be a finite number of milliseconds above 0 and at most 2147483647 \(the timer range\), got /,
    );
  }
  assert.deepEqual((await runReward(fn, inputs(1), { timeoutMs: MAX_TIMEOUT_MS })).failures, []);
  const slowAsync = defineReward('async', async () => ok());
  assert.deepEqual((await runReward(slowAsync, inputs(3), { timeoutMs: MAX_TIMEOUT_MS })).failures, [], 'no overflow: async calls do not time out at once');
  for (const c of [0, -1, 1.5, NaN]) await assert.rejects(runReward(fn, inputs(1), { concurrency: c }), /reward concurrency must be an integer of at least 1/);
});
