/**
 * Two runs that computed the same, to the bit: the metrics (timings, throughput and `dist/*` aside), the
 * final weights and optimizer state, the rollout log and the TensorBoard scalars.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CheckpointStore } from '../../storage/checkpoints.ts';
import { RolloutLog } from '../../storage/rollout-log.ts';
import { scalarsByStep } from '../storage/tfevents-reader.ts';
import { algorithmicMetrics } from './tiny-run.ts';

const clockFree = (m: Record<string, number>) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('timing_s/') && !k.startsWith('dist/') && k !== 'perf/throughput'));

export async function assertSameRun(a: string, b: string): Promise<void> {
  assert.deepEqual(algorithmicMetrics(path.join(b, 'metrics.jsonl')).map(clockFree), algorithmicMetrics(path.join(a, 'metrics.jsonl')).map(clockFree));
  const [x, y] = await Promise.all([a, b].map(async (run) => new CheckpointStore(run).load((await new CheckpointStore(run).latest())!)));
  for (const k of Object.keys(x.policy.params)) {
    assert.deepEqual(y.policy.params[k], x.policy.params[k], `parameter ${k}`);
    assert.deepEqual(y.optimizer.m[k], x.optimizer.m[k], `m ${k}`);
    assert.deepEqual(y.optimizer.v[k], x.optimizer.v[k], `v ${k}`);
  }
  const [la, lb] = [new RolloutLog(a), new RolloutLog(b)];
  assert.deepEqual(await lb.steps(), await la.steps());
  for (const step of await la.steps()) assert.deepEqual(await lb.read(step), await la.read(step), `rollout step ${step}`);
  const scalars = (run: string) => [...scalarsByStep(path.join(run, 'tensorboard'))].map(([step, m]) => [step, clockFree(m)]);
  assert.deepEqual(scalars(b), scalars(a));
}
