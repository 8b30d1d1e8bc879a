/**
 * papo-stream: PAPO (Perception-Aware Policy Optimization) on GRPO / DAPO for vision-language policies, as
 * RxJS dataflow pipelines. This entry holds the ready compositions (`runTrain`, `runSft`, `evaluate`, ...,
 * as `papo-stream/pipelines`) and the shipped warm start; each layer has an entry of its own:
 * `papo-stream/operators` (the stages of the graph), `/algorithms` (the objective and its registries),
 * `/models` (the policy, its engine and trainers), `/tasks` (datasets, streams, rewards), `/storage`
 * (weights, checkpoints, rollout logs, TensorBoard) and `/pipelines`.
 */
export * from './pipelines/index.ts';
export { warmStartPath, loadWarmStart } from './storage/warm-start.ts';
