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
import { defineReward } from '../../tasks/rewards/types.ts';

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
      Object.fromEntries(
        Object.entries(JSON.parse(l) as Record<string, number>).filter(
          ([k]) => !k.startsWith('timing_s/') && !k.startsWith('dist/') && k !== 'perf/throughput',
        ),
      ),
    );
}

/** Share of digit characters in the response: ~10% for a uniform policy, learnable from the output head alone. */
export const digitShare = defineReward('digit-share', ({ response }) => {
  const share = response.length ? (response.match(/[0-9]/g)?.length ?? 0) / response.length : 0;
  return { overall: share, accuracy: share, format: 0 };
});

/** `papo train` overrides of a tiny run from `weights` into `run`: 4 prompts x 2 responses of up to 6 tokens. */
export const tinyRunOverrides = (weights: string, run: string, steps: number): string[] => [
  'data.task=digits',
  'data.families=[max, count]',
  'data.rollout_batch_size=4',
  'data.max_response_length=6',
  `worker.actor.model.model_path=${JSON.stringify(weights)}`,
  'worker.actor.global_batch_size=2',
  'worker.rollout.n=2',
  'worker.rollout.threads=1',
  'trainer.test_before_and_after=false',
  `trainer.max_steps=${steps}`,
  `trainer.save_checkpoint_path=${JSON.stringify(run)}`,
];
