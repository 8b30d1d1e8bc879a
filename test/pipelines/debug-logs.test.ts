/**
 * What `PAPO_LOG_LEVEL=debug` / `trace` add to a run's log: the decisions worth seeing (admission by the
 * credit gate, the staleness guard, dynamic-sampling rounds, checkpoint retention, reward calls), none of
 * them at the default level; and a run that fails while it starts says so in its log.jsonl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pino } from 'pino';
import { runTrain } from '../../pipelines/train.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { digitShare, tinyPolicyInTmp } from './tiny-run.ts';

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-debug-logs-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const config = (run: string, modelPath = weights): TrainConfigInput => ({
  data: { task: 'digits', families: ['max'], rollout_batch_size: 4, max_response_length: 4, seed: 3 },
  algorithm: { preset: 'dapo', dynamic_sampling_max_tries: 2 },
  worker: { actor: { model: { model_path: modelPath }, global_batch_size: 0, engine: 'tfjs' }, rollout: { n: 2, threads: 1 } },
  trainer: { max_steps: 3, max_staleness: 1, save_freq: 1, save_limit: 1, test_before_and_after: false, save_checkpoint_path: run },
});

async function logOf(level: string, name: string): Promise<Record<string, unknown>[]> {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (l: string) => records.push(JSON.parse(l)) });
  const r = await runTrain(config(path.join(tmp, name)), { quiet: true, logger, reward: digitShare });
  assert.equal(r.outcome, 'completed');
  return records;
}

test('debug and trace: admission, staleness, dynamic-sampling rounds, checkpoint retention, reward calls', { timeout: 120_000 }, async () => {
  const trace = await logOf('trace', 'trace');
  const events = (e: string) => trace.filter((l) => l.event === e);
  assert.deepEqual(
    events('gate_admit').map((l) => l.step),
    [1, 2, 3],
  );
  assert.ok(events('gate_admit').every((l) => l.limit === 2));
  assert.deepEqual(
    events('gate_credit').map((l) => l.step),
    [1, 2, 3],
  );
  assert.ok(
    events('gate_wait').some((l) => /steps in flight|may still ask for sampling rounds/.test(String(l.why))),
    'admission waited for the limit or for the step before it',
  );
  const rounds = events('dynamic_sampling_round');
  assert.ok(rounds.length >= 3);
  for (const l of rounds) assert.equal((l.kept as number) + (l.dropped as number), 4, 'each round scores the 4 prompts of a batch');
  assert.equal(events('staleness_checked').length + events('stale_groups_dropped').length, 3, 'the guard runs once a step');
  const retention = events('checkpoint_retention');
  assert.deepEqual(
    retention.map((l) => l.step),
    [1, 2, 3],
  );
  assert.deepEqual(retention[1].removed, ['step_000001'], 'save_limit 1 keeps the newest');
  assert.deepEqual(
    events('reward_calls').map((l) => [l.step, l.failures]),
    [
      [1, 0],
      [2, 0],
      [3, 0],
    ],
  );
  assert.match(String(events('backend')[0].message), /^train: update on tfjs \(worker\.actor\.engine=tfjs\); TensorFlow\.js backend \w+/);
  assert.equal(trace[0].event, 'run_start');
  assert.ok(
    events('reward_calls').every((l) => l.workers === undefined),
    'a reward in this thread has no workers to count',
  );
});

test('at the default level none of the debug decisions are logged', { timeout: 120_000 }, async () => {
  const info = await logOf('info', 'info');
  const debugOnly = ['gate_admit', 'gate_credit', 'gate_wait', 'dynamic_sampling_round', 'staleness_checked', 'checkpoint_retention', 'reward_calls'];
  assert.deepEqual(
    info.filter((l) => debugOnly.includes(String(l.event))),
    [],
  );
});

test('a run that fails while it starts leaves its reason in log.jsonl, not an empty file', { timeout: 60_000 }, async () => {
  const run = path.join(tmp, 'fails');
  const missing = path.join(tmp, 'no-such-weights');
  await assert.rejects(runTrain(config(run, missing), { quiet: true, reward: digitShare }), /no-such-weights/);
  const log = fs
    .readFileSync(path.join(run, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(log[0].event, 'run_start');
  assert.equal(log[0].command, 'papo train');
  const failed = log.find((l) => l.event === 'run_failed');
  assert.ok(failed, JSON.stringify(log));
  assert.match(String(failed.message), /no-such-weights/);
});
