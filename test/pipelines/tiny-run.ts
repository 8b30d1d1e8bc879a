/**
 * What the tests of whole runs share: a tiny randomly initialised policy for the digits task (28x56 images,
 * 14-pixel patches: 8 image tokens), saved where a run can start from it, and the metrics of a run that do
 * not depend on the clock.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { savePolicyWeights } from '../../storage/policy-weights.ts';

export const TINY_POLICY = policyConfig({
  imageHeight: 28,
  imageWidth: 56,
  patchSize: 14,
  dModel: 16,
  nHeads: 2,
  nLayers: 1,
  mlpRatio: 2,
  maxPromptLen: 48,
  maxResponseLen: 8,
  seed: 1,
});

/** A new temporary directory with the tiny policy saved in its `init/`. */
export async function tinyPolicyInTmp(prefix: string): Promise<{ tmp: string; weights: string }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const weights = path.join(tmp, 'init');
  await saveTinyPolicy(weights);
  return { tmp, weights };
}

/** Saves the tiny policy's seed-1 weights to `dir` (a new path). */
export function saveTinyPolicy(dir: string): Promise<void> {
  return savePolicyWeights(dir, { config: TINY_POLICY, params: initParams(TINY_POLICY, 1) });
}

/** The records of a run's metrics.jsonl without timings and throughput: equal for runs that compute the same. */
export function algorithmicMetrics(file: string): Record<string, number>[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) =>
      Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, number>).filter(([k]) => !k.startsWith('timing_s/') && k !== 'perf/throughput')),
    );
}
