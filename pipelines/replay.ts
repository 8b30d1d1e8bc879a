/**
 * `replayRun(run, step)`: reproduces a logged training step without sampling. From the newest checkpoint
 * before `step` (or the run's starting weights), the logged rollouts of the steps in between go through
 * the update sink again, on the same backend; the step's metrics are reported beside the logged ones and,
 * when the run has a checkpoint at `step`, the reconstructed weights and optimizer state are compared with
 * it. On the same update engine (`worker.actor.engine`, from the run's config) and backend everything
 * matches to the bit.
 */
import * as path from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { createTrainer } from '../models/trainer/create.ts';
import { loadPolicyWeights, paramsFingerprint } from '../storage/policy-weights.ts';
import { CheckpointStore, type Checkpoint } from '../storage/checkpoints.ts';
import { RolloutLog } from '../storage/rollout-log.ts';
import { loggedRollouts, papoUpdate, type Metrics } from '../operators/index.ts';
import { readMetrics } from './run-dir.ts';
import { actorOptimizer, confinedTaskData, type ImageReadingOptions, readRunConfig, taskOf, type TrainConfig } from './train-config.ts';

export interface ReplayReport {
  step: number;
  /** the checkpoint replay started from (undefined: the run's starting weights) */
  from?: string;
  replayedSteps: number[];
  /** metric -> [logged, replayed] for the step (timings and validation excluded) */
  metrics: Record<string, [number | undefined, number | undefined]>;
  /** metrics whose replayed value differs from the logged one */
  differing: string[];
  /** compared with the run's checkpoint at `step`, when it has one */
  weights?: { checkpoint: string; equal: boolean; differing: string[] };
}

/** Metrics that depend on the clock or on evaluation, not on the update. */
const untimed = (k: string) => !k.startsWith('timing_s/') && !k.startsWith('dist/') && k !== 'perf/throughput' && !k.startsWith('val-core/');

export async function replayRun(runDir: string, step: number, images: ImageReadingOptions = {}): Promise<ReplayReport> {
  if (!(Number.isInteger(step) && step >= 1)) throw new Error(`replay: --step must be a positive integer, got ${step}`);
  const cfg: TrainConfig = readRunConfig(runDir, 'replay', true);
  const log = new RolloutLog(runDir);
  const logged = new Set(await log.steps());
  if (!logged.has(step))
    throw new Error(
      `replay: step ${step} is not in the rollout log of ${runDir} (logged: ${[...logged].sort((a, b) => a - b).join(', ') || 'none'}; trainer.rollout_log must be on)`,
    );
  const store = new CheckpointStore(runDir);
  const fromName = await store.atOrBefore(step - 1);
  const from: Checkpoint | undefined = fromName ? await store.load(fromName) : undefined;
  const fromStep = from?.step ?? 0;
  const steps = Array.from({ length: step - fromStep }, (_, i) => fromStep + 1 + i);
  const missing = steps.filter((s) => !logged.has(s));
  if (missing.length) throw new Error(`replay: the rollout log lacks steps ${missing.join(', ')} between checkpoint ${fromName ?? '(start)'} and step ${step}`);

  const start = from ? undefined : await loadPolicyWeights(cfg.worker.actor.model.model_path);
  if (start) {
    // The run's checkpoints record the fingerprint of the weights it started from: replay from the same ones.
    const any = (await store.list()).at(-1);
    const recorded = any && (store.stateOf(any.name)?.reference as { fingerprint?: string } | undefined)?.fingerprint;
    const now = paramsFingerprint(start.params);
    if (recorded && recorded !== now)
      throw new Error(
        `replay: the starting weights at ${cfg.worker.actor.model.model_path} changed since ${runDir} began (fingerprint ${recorded}, now ${now}); replaying step ${step} starts from them`,
      );
  }
  const policyCfg = from?.policy.config ?? start!.config;
  const actorTrainer = await createTrainer({
    engine: cfg.worker.actor.engine,
    config: policyCfg,
    params: from?.policy.params ?? start!.params,
    optimizer: actorOptimizer(cfg.worker.actor),
    ort: { sharePrefix: cfg.worker.actor.share_prefix },
  });
  try {
    if (from) await actorTrainer.importOptimizerState(from.optimizer);
    const { data, algorithm: objective, trainer } = cfg;
    const task = taskOf(confinedTaskData(data, images));
    const trained = await lastValueFrom(
      loggedRollouts(log, task, steps, { ratio: objective.mask_ratio, patchSize: objective.mask_patch_size }).pipe(
        papoUpdate({
          trainer: actorTrainer,
          engine: { setWeights: async () => undefined },
          objective,
          globalBatchSize: cfg.worker.actor.global_batch_size,
          microBatchSize: cfg.worker.actor.micro_batch_size_per_device_for_update,
          ppoEpochs: cfg.worker.actor.ppo_epochs,
          maxStaleness: trainer.max_staleness,
          initialVersion: (from?.state.version as number | undefined) ?? 0,
          seed: data.seed,
          shuffle: cfg.worker.actor.shuffle,
        }),
        toArray(),
      ),
    );
    const replayed: Metrics = trained.at(-1)!.metrics;
    const loggedMetrics = readMetrics(path.join(runDir, 'metrics.jsonl')).find((r) => r.step === step) ?? {};
    const keys = [...new Set([...Object.keys(replayed), ...Object.keys(loggedMetrics)])].filter((k) => untimed(k) && k !== 'step' && k !== 'version').sort();
    const metrics: ReplayReport['metrics'] = {};
    for (const k of keys) metrics[k] = [(loggedMetrics as Record<string, number>)[k], replayed[k]];
    const differing = keys.filter((k) => !Object.is(metrics[k][0], metrics[k][1]));
    let weights: ReplayReport['weights'];
    const at = (await store.list()).find((c) => c.step === step);
    if (at) {
      const ck = await store.load(at.name);
      const params = await actorTrainer.getParams();
      const state = await actorTrainer.exportOptimizerState();
      const diff: string[] = [];
      for (const k of Object.keys(params)) {
        if (!bitEqual(params[k], ck.policy.params[k])) diff.push(`policy ${k}`);
        if (!bitEqual(state.m[k], ck.optimizer.m[k])) diff.push(`optimizer m ${k}`);
        if (!bitEqual(state.v[k], ck.optimizer.v[k])) diff.push(`optimizer v ${k}`);
      }
      if (state.step !== ck.optimizer.step) diff.push(`optimizer step ${state.step} vs ${ck.optimizer.step}`);
      weights = { checkpoint: at.name, equal: diff.length === 0, differing: diff };
    }
    return { step, from: fromName, replayedSteps: steps, metrics, differing, weights };
  } finally {
    await actorTrainer.close();
  }
}

function bitEqual(a: Float32Array, b: Float32Array | undefined): boolean {
  if (!b || a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
