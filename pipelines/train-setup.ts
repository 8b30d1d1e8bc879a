/**
 * What a `papo train` run is made of, built from its config and the checkpoint it continues from: the
 * starting weights and their fingerprint, the task, the reward, the trainer, the engine, and the policy
 * versions (installed in the engine).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { PolicyConfig } from '../models/config.ts';
import { PolicyEngine } from '../models/engine/engine.ts';
import { engineThreads } from '../models/engine/parts.ts';
import { createTrainer } from '../models/trainer/create.ts';
import type { Trainer } from '../models/trainer/types.ts';
import { needsMaskedLogprobs } from '../algorithms/config.ts';
import { localShards, PolicyVersions, rolloutSegment, type RolloutSegmentOptions, type ShardRunner } from '../operators/index.ts';
import { loadPolicyWeights, paramsFingerprint } from '../storage/policy-weights.ts';
import { inThreadScorer, type RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import type { Task } from '../tasks/types.ts';
import { initTf } from '../util/tf-backend.ts';
import { describeBackends } from './backend-note.ts';
import { openReward, rewardIdentity } from './reward-function.ts';
import type { Run } from './run-harness.ts';
import { actorOptimizer, taskOf, type TrainConfig } from './train-config.ts';
import { checkResumedProgress, parseTrainState, type TrainState } from './train-state.ts';
import { stepDirName } from '../storage/step-dirs.ts';
import { trainingSteps } from './training-steps.ts';

export interface TrainParts {
  backend: string;
  policy: PolicyConfig;
  /** identifies the starting (and reference) weights */
  reference: TrainState['reference'];
  task: Task;
  /** the reward: user reward code in the reward workers (tasks/rewards/pool.ts), a built-in one in this thread */
  reward: RewardScorer;
  maxResponseLength: number;
  /** rollout steps of the run (trainer.max_steps, or from trainer.total_epochs) */
  maxSteps: number;
  trainer: Trainer;
  engine: PolicyEngine;
  versions: PolicyVersions;
  /** what the rollout segment computes (sampling, reward, masked view, reference) */
  segment: RolloutSegmentOptions;
  /** where shards run, when the rounds are sharded (`worker.rollout.shard_size` or `backend: nats`) */
  shards?: ShardRunner;
  /** the `dist/` metrics of a step whose shards ran on rollout workers (backend nats) */
  distMetrics?: (step: number) => Record<string, number>;
  /** the state of the checkpoint the run continues from */
  resumed?: TrainState;
  close(): Promise<void>;
}

export async function trainParts(run: Run<TrainConfig>, reward?: RewardFunction): Promise<TrainParts> {
  const cfg = run.config;
  const { data, trainer: t } = cfg;
  const { actor, rollout } = cfg.worker;
  const checkpoint = run.resumed;
  const ckptWhere = checkpoint ? (run.startedFrom ?? path.join(run.dir, 'checkpoints', stepDirName(checkpoint.step))) : '';
  const resumed = checkpoint ? parseTrainState(checkpoint.state, ckptWhere, checkpoint.step) : undefined;
  const backend = await initTf();
  const start = await loadPolicyWeights(actor.model.model_path);
  // a run or checkpoint directory resolves to one checkpoint's weights: say which
  if (start.dir !== path.resolve(actor.model.model_path)) run.say(`train: starting from the weights in ${start.dir}`);
  const policy = start.config;
  const reference = { model_path: actor.model.model_path, fingerprint: paramsFingerprint(start.params) };
  if (checkpoint && run.startedFrom && JSON.stringify(checkpoint.policy.config) !== JSON.stringify(start.config))
    throw new Error(
      `trainer.load_checkpoint_path: the policy of ${run.startedFrom} is not shaped as the one at ${actor.model.model_path} (the reference policy): start from a checkpoint of a run of that policy`,
    );
  // a checkpoint of another run (trainer.load_checkpoint_path) keeps model_path's weights as the reference, as EasyR1 does
  if (resumed && run.startedFrom && resumed.reference.fingerprint !== reference.fingerprint)
    run.say(
      `train: the reference policy is the weights at ${actor.model.model_path}, not those the run of ${run.startedFrom} started from (${resumed.reference.model_path})`,
    );
  if (resumed && !run.startedFrom && resumed.reference.fingerprint !== reference.fingerprint) {
    throw new Error(
      `cannot resume ${run.dir}: the starting weights at ${actor.model.model_path} changed since the run began (fingerprint ${resumed.reference.fingerprint}, now ${reference.fingerprint}); they are the run's reference policy`,
    );
  }
  const task = taskOf(data);
  // a run started from another run's checkpoint (trainer.load_checkpoint_path) may batch differently: its counts are not bounded by this config
  if (checkpoint && resumed && cfg.trainer.load_checkpoint_path === undefined)
    checkResumedProgress(resumed, ckptWhere, checkpoint.step, checkpoint.optimizer.step, cfg, task.size('train'));
  if (task.imageHeight !== policy.imageHeight || task.imageWidth !== policy.imageWidth) {
    throw new Error(
      `task ${task.name} makes ${task.imageHeight}x${task.imageWidth} images but the policy at ${actor.model.model_path} expects ${policy.imageHeight}x${policy.imageWidth}`,
    );
  }
  const maxSteps = trainingSteps(t, task.size('train'), data.rollout_batch_size);
  const maxResponseLength = data.max_response_length ?? policy.maxResponseLen;
  if (maxResponseLength > policy.maxResponseLen) {
    throw new Error(`data.max_response_length ${maxResponseLength} exceeds the policy's maxResponseLen ${policy.maxResponseLen}`);
  }
  // A reward of the user's runs in the reward workers (tasks/rewards/pool.ts); a built-in one, or an object given, here.
  let strays = 0;
  const onStray = (line: string) => {
    strays++;
    run.logger.warn({ event: 'reward_stray', message: line }, line);
    if (strays <= 3) run.say(`\nwarning: ${line}${strays === 3 ? ' (further ones in log.jsonl only)' : ''}`);
  };
  const { num_workers: workers, max_memory_mb: maxMemoryMb, reward_type: rewardType } = cfg.worker.reward;
  const rewardFn = reward ? inThreadScorer(reward) : await openReward(cfg.worker.reward.score_function, { workers, maxMemoryMb, onStray, rewardType });
  const S = t.max_staleness;
  const current = checkpoint ? checkpoint.policy.params : start.params;
  let trainer: Trainer | undefined;
  let engine: PolicyEngine | undefined;
  let nc: NatsConnection | undefined;
  let distMetrics: ((step: number) => Record<string, number>) | undefined;
  try {
    trainer = await createTrainer({
      engine: actor.engine,
      config: policy,
      params: current,
      optimizer: actorOptimizer(actor),
      ort: { sharePrefix: actor.share_prefix },
    });
    if (checkpoint) await trainer.importOptimizerState(checkpoint.optimizer);
    const backends = describeBackends('train', actor.engine, trainer.engine, backend);
    run.say(backends);
    run.logger.info({ event: 'backend', message: backends }, backends);
    engine = await PolicyEngine.create(policy, { ...engineThreads(rollout.threads, rollout.data_parallel_size), retainVersions: S + 2 });
    const e = engine;
    const t = trainer;
    // The engine holds the current weights and the older versions the next steps still sample with.
    const from = checkpoint && resumed ? { version: resumed.version, params: current, versions: resumed.versions, samplers: checkpoint.samplers } : undefined;
    const versions = PolicyVersions.restore({ maxStaleness: S, start: start.params, from });
    await versions.subscribe((v, params) => e.setWeights(params, v));
    if (cfg.algorithm.kl_coef > 0) await e.setReferenceWeights(start.params);
    const segment = rolloutSegmentOptions(cfg, maxResponseLength);
    let shards = rollout.shard_size !== undefined ? localShards(rolloutSegment(e, rewardFn, segment, versions.versionOf)) : undefined;
    if (rollout.backend === 'nats') {
      // shards on rollout workers: the weights go to the object store as they are published
      const n = rollout.nats ?? { url: 'nats://127.0.0.1:4222', result_timeout_s: 600, retry_timeout_s: 600, ack_wait_s: 60 };
      // the NATS clients load only for this backend
      const [{ connectNats }, { openBroker }, { publishWeights, remoteRollouts }] = await Promise.all([
        import('../storage/nats-connection.ts'),
        import('../storage/rollout-broker.ts'),
        import('../operators/remote-rollouts.ts'),
      ]);
      nc = await connectNats({
        url: n.url,
        credsFile: n.creds_file,
        nkeyFile: n.nkey_file,
        tlsCaFile: n.tls_ca_file,
        tlsCertFile: n.tls_cert_file,
        tlsKeyFile: n.tls_key_file,
        name: `papo train ${run.dir}`,
      });
      const sayNats = (line: string) => {
        run.say(line);
        run.logger.info({ event: 'nats', message: line }, line);
      };
      const broker = await openBroker(nc, { ackWaitS: n.ack_wait_s, retryTimeoutS: n.retry_timeout_s, say: sayNats });
      const runId = brokerRunId(run.dir);
      const launch = randomBytes(6).toString('hex');
      const remote = remoteRollouts({
        broker,
        run: runId,
        launch,
        segment,
        reward: reward ? reward.name : cfg.worker.reward.score_function,
        rewardId: reward ? `code:${reward.name}` : rewardIdentity(cfg.worker.reward.score_function),
        policy,
        threads: rollout.threads,
        dataParallelSize: rollout.data_parallel_size,
        versionOf: versions.versionOf,
        maxNewTokens: maxResponseLength,
        resultTimeoutS: n.result_timeout_s,
        say: sayNats,
        note: (line) => run.logger.info({ event: 'nats', message: line }, line),
      });
      await publishWeights(broker, runId, launch, policy, versions, cfg.algorithm.kl_coef > 0 ? start.params : undefined, (sec, bytes) =>
        remote.notePut(sec, bytes),
      );
      shards = remote;
      distMetrics = (step) => remote.stepMetrics(step);
      run.say(
        `train: rollouts on workers over NATS at ${n.url} (run ${runId}, launch ${launch}, ${rollout.shard_size ?? data.rollout_batch_size} prompts per shard)`,
      );
    }
    // From here the engine is the one holder of each version's weights outside the trainer (it keeps the
    // S + 2 latest); checkpoints read them back from it, and the run forgets the checkpoint it loaded.
    versions.heldBy((v) => e.getWeights(v));
    run.releaseResumed();
    const conn = nc;
    return {
      backend,
      policy,
      reference,
      task,
      reward: rewardFn,
      maxResponseLength,
      maxSteps,
      trainer: t,
      engine: e,
      versions,
      segment,
      shards,
      distMetrics,
      resumed,
      async close() {
        await rewardFn.close();
        await e.close();
        await t.close();
        await conn?.drain().catch(() => undefined);
      },
    };
  } catch (err) {
    await nc?.close().catch(() => undefined);
    await rewardFn.close();
    await engine?.close();
    await trainer?.close();
    throw err;
  }
}

/** What the rollout segment of a run computes, from its config (plain data: a shard job carries it). */
export function rolloutSegmentOptions(cfg: TrainConfig, maxResponseLength: number): RolloutSegmentOptions {
  const { rollout, reward } = cfg.worker;
  const a = cfg.algorithm;
  return {
    sample: { n: rollout.n, temperature: rollout.temperature, topP: rollout.top_p, topK: Math.max(0, rollout.top_k), maxNewTokens: maxResponseLength },
    reward: { timeoutMs: reward.timeout_ms, concurrency: reward.concurrency },
    ...(needsMaskedLogprobs(a) ? { mask: { type: a.mask_type, ratio: a.mask_ratio, patchSize: a.mask_patch_size } } : {}),
    reference: a.kl_coef > 0,
    logprobs: { fused: rollout.fused_logprobs, sharePrefix: rollout.share_prefix },
  };
}

/** A run's id on the NATS broker: stable for its directory on this host, so `--resume` continues it. */
export function brokerRunId(dir: string): string {
  return `r${createHash('sha256')
    .update(`${os.hostname()}:${path.resolve(dir)}`)
    .digest('hex')
    .slice(0, 16)}`;
}
