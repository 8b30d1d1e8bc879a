import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RewardFailureWatch } from '../../pipelines/reward-failures.ts';
import type { RewardFailure, RewardFailureKind } from '../../tasks/rewards/runner.ts';

/** A watch whose terminal lines and log records are kept, with a clock the test moves. */
function watch(opts: { maxRate?: number; window?: number; level?: string } = {}) {
  const said: string[] = [];
  const logged: Record<string, unknown>[] = [];
  const clock = { t: 0 };
  const logger = pino({ level: opts.level ?? 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const w = new RewardFailureWatch(
    { say: (l) => said.push(l.trim()), logger },
    { maxRate: opts.maxRate ?? 1, window: opts.window ?? 5, sayEveryMs: 10_000, now: () => clock.t },
  );
  return { w, said, logged, clock };
}

const fail = (kind: RewardFailureKind, ...ids: number[]): RewardFailure[] =>
  ids.map((i) => ({ id: `digits/train/${i}`, index: i, reward: 'score', kind, reason: `${kind} on ${i}` }));

test('the first failure of each kind is said in full; then one count line per 10 s, summing the steps in between', () => {
  const { w, said, clock } = watch();
  w.note(1, [], 8);
  assert.deepEqual(said, []);
  w.note(2, fail('threw', 3, 5), 8);
  assert.deepEqual(said, [
    "reward score: step 2: 2 of 8 calls failed (threw; first: record digits/train/3: threw on 3); each scores 0 and counts in reward/failures (every step's in log.jsonl)",
  ]);
  clock.t = 4_000;
  w.note(3, fail('threw', 1), 8); // within 10 s: not said
  clock.t = 8_000;
  w.note(4, [...fail('threw', 2), ...fail('timeout', 6)], 8); // a new kind: said at once
  assert.equal(said.length, 2);
  assert.match(said[1], /^reward score: step 4: 1 of 8 calls failed \(timeout; first: record digits\/train\/6: timeout on 6\)/);
  clock.t = 12_000;
  w.note(5, fail('threw', 4), 8);
  clock.t = 18_500;
  w.note(6, fail('threw', 7, 8, 9), 8);
  assert.deepEqual(said.slice(2), ['reward score: step 6: 3 of 8 calls failed (threw 3); 4 of 16 over the 2 steps with failures since the last such line']);
});

test('log.jsonl gets every step with failures, the first of each kind with its record id and reason; debug gets each failure', () => {
  const { w, logged } = watch({ level: 'debug' });
  w.note(1, [...fail('threw', 3, 5), ...fail('invalid', 2)], 8);
  w.note(2, [], 8);
  const steps = logged.filter((l) => l.event === 'reward_failures');
  assert.equal(steps.length, 1);
  assert.equal(steps[0].level, 40);
  assert.deepEqual(
    { step: steps[0].step, calls: steps[0].calls, failures: steps[0].failures, kinds: steps[0].kinds, first_by_kind: steps[0].first_by_kind },
    {
      step: 1,
      calls: 8,
      failures: 3,
      kinds: { threw: 2, invalid: 1 },
      first_by_kind: { threw: { id: 'digits/train/3', reason: 'threw on 3' }, invalid: { id: 'digits/train/2', reason: 'invalid on 2' } },
    },
  );
  assert.deepEqual(
    logged.filter((l) => l.event === 'reward_failure').map((l) => l.id),
    ['digits/train/3', 'digits/train/5', 'digits/train/2'],
  );
  // at the default level the per-failure records are not written
  const quiet = watch();
  quiet.w.note(1, fail('threw', 3), 8);
  assert.equal(quiet.logged.filter((l) => l.event === 'reward_failure').length, 0);
});

test('more than max_reward_failure_rate of the window failing stops the run, naming the figures and the first failure of each kind', () => {
  const { w, logged } = watch({ maxRate: 0.5, window: 3 });
  w.note(1, fail('threw', 1), 10);
  w.note(2, fail('threw', 2, 3), 10);
  w.note(3, fail('timeout', 4, 5, 6, 7, 8, 9, 10, 11, 12), 10); // 12 of 30 = 40%
  // step 1 leaves the window: 2 + 9 + 6 = 17 of 30
  assert.throws(
    () => w.note(4, fail('timeout', 13, 14, 15, 16, 17, 18), 10),
    (err: Error) => {
      assert.equal(
        err.message,
        'stopping: 17 of 30 reward calls failed over steps 2..4 (56.7%), above trainer.max_reward_failure_rate=0.5 (taken over the last trainer.reward_failure_window=3 steps): ' +
          'threw 2 (first: record digits/train/2: threw on 2), timeout 15 (first: record digits/train/4: timeout on 4). ' +
          'Each failed call scores 0, so the run would train on zeros; the last checkpoint stands: fix the reward and continue with --resume (trainer.max_reward_failure_rate=1 never stops)',
      );
      return true;
    },
  );
  assert.equal(logged.at(-1)!.event, 'reward_failure_rate');
});

test('the first step alone can stop a run; max_reward_failure_rate=1 never stops; bad options are errors', () => {
  assert.throws(() => watch({ maxRate: 0.5 }).w.note(1, fail('crashed', 1, 2, 3), 4), /^Error: stopping: 3 of 4 reward calls failed over step 1 \(75\.0%\)/);
  const never = watch({ maxRate: 1 }).w;
  for (let s = 1; s <= 10; s++) never.note(s, fail('threw', 1, 2, 3, 4), 4);
  assert.throws(() => watch({ maxRate: 1.5 }), /max reward failure rate must be in \[0, 1\], got 1\.5/);
  assert.throws(() => watch({ window: 0 }), /reward failure window must be an integer >= 1, got 0/);
});
