/**
 * The promise of the storage layer: a real `papo train` SIGKILLed at random instants (mid-save included)
 * and resumed each time ends with the weights, optimizer state, metrics and rollout log of a run never
 * interrupted, bit for bit, with max_staleness 0 and 1. bench/kill-resume.ts runs the same with 100 kills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RolloutLog } from '../../storage/rollout-log.ts';
import { killAndResume } from './kill-driver.ts';
import { algorithmicMetrics } from './tiny-run.ts';
import { scalarsByStep } from '../storage/tfevents-reader.ts';

for (const staleness of [0, 1]) {
  test(`max_staleness ${staleness}: 5 SIGKILLs at random instants, each resumed; the end equals the uninterrupted run, to the bit`, {
    timeout: 600_000,
  }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `papo-kill-${staleness}-`));
    try {
      const r = await killAndResume({ root: process.cwd(), dir, staleness, kills: 5, steps: 8, seed: 11 + staleness });
      assert.equal(r.kills, 5);
      assert.equal(r.interrupted.step, 8);
      for (const k of Object.keys(r.uninterrupted.policy.params)) {
        assert.deepEqual(r.interrupted.policy.params[k], r.uninterrupted.policy.params[k], `parameter ${k}`);
        assert.deepEqual(r.interrupted.optimizer.m[k], r.uninterrupted.optimizer.m[k], `m ${k}`);
        assert.deepEqual(r.interrupted.optimizer.v[k], r.uninterrupted.optimizer.v[k], `v ${k}`);
      }
      assert.equal(r.interrupted.optimizer.step, r.uninterrupted.optimizer.step);
      assert.deepEqual(algorithmicMetrics(path.join(r.interruptedDir, 'metrics.jsonl')), algorithmicMetrics(path.join(r.uninterruptedDir, 'metrics.jsonl')));
      // TensorBoard: every step once (the rewinds dropped what the killed launches wrote after their checkpoint), the same values.
      const scalars = (run: string) =>
        [...scalarsByStep(path.join(run, 'tensorboard'))].map(([step, m]) => [
          step,
          Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('timing_s/') && k !== 'perf/throughput')),
        ]);
      assert.deepEqual(scalars(r.interruptedDir), scalars(r.uninterruptedDir));
      assert.deepEqual(
        scalars(r.uninterruptedDir).map(([step]) => step),
        [1, 2, 3, 4, 5, 6, 7, 8],
      );
      const [a, b] = [new RolloutLog(r.uninterruptedDir), new RolloutLog(r.interruptedDir)];
      assert.deepEqual(await b.steps(), await a.steps());
      for (const step of await a.steps()) assert.deepEqual(await b.read(step), await a.read(step), `rollout step ${step}`);
      assert.ok(!fs.readdirSync(path.join(r.interruptedDir, 'checkpoints')).some((n) => n.includes('.tmp-')), 'unfinished writes were swept');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
