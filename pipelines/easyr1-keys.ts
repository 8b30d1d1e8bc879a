/**
 * EasyR1's run-config keys that have no key of their own here, translated onto this trainer's keys before
 * the run config is validated (train-config.ts), so an EasyR1 `examples/config.yaml`-style document runs
 * as it means there or is refused with the reason:
 *
 * - `algorithm.disable_kl` true -> `kl_coef` 0 (no reference model); `algorithm.use_kl_loss` false with a
 *   KL weight is refused (EasyR1 then subtracts the KL from the reward, which is not implemented here: the
 *   KL is a loss term); `algorithm.kl_penalty` -> `kl_estimator` (`kl`, `mse`, `low_var_kl`, `abs`; `full`
 *   refused); `kl_type` `fixed` only.
 * - `algorithm.online_filtering` / `filter_low` / `filter_high` -> `dynamic_sampling` /
 *   `dynamic_sampling_min_acc` / `dynamic_sampling_max_acc`; `filter_key` must name the accuracy while
 *   filtering is on; `trainer.max_try_make_batch` -> `dynamic_sampling_max_tries`.
 * - `worker.reward.reward_function` -> `worker.reward.score_function` (`path:function`, `main` when the
 *   function is not named, as EasyR1 reads it).
 * - `trainer.find_last_checkpoint` true -> `trainer.resume_mode` auto; `trainer.val_freq`, `save_freq` and
 *   `save_limit` at -1 (never, at the end only, no limit) -> 0, which means that here; a `null` is a key
 *   left unset (EasyR1's Optional keys: `max_steps: null`, `save_checkpoint_path: null`).
 * - keys of GPUs and of other engines (FSDP, offloading, vLLM, Ray, nodes) are accepted and said once
 *   not to apply; keys whose value would ask for what is not built here are refused unless at the value
 *   that asks for nothing (`critic_warmup` 0, `val_only` false, LoRA rank 0, ...).
 *
 * The result is the input with these keys replaced, the notes to say at start, the problems (merged into
 * the run config's one error), and the EasyR1 switches that need the resolved objective to be judged.
 */
import { klEstimators } from '../algorithms/kl.ts';

export interface EasyR1Translation {
  input: unknown;
  /** said once at start (terminal and log.jsonl) */
  notes: string[];
  /** `key.path: message`, reported with every other problem of the config in one error */
  problems: string[];
  /** `algorithm.use_kl_loss` as given (false is judged against the resolved kl_coef) */
  useKlLoss?: boolean;
  /** `algorithm.filter_key` as given (a key other than accuracy is judged against the resolved dynamic_sampling) */
  filterKey?: string;
  /** objective keys the EasyR1 keys set -> the EasyR1 key (`kl_coef` -> `algorithm.disable_kl`) */
  mapped: Record<string, string>;
}

/** Keys of GPUs and other engines: accepted, and said once not to apply (a key names itself and everything under it). */
export const NOT_APPLYING_KEYS: readonly string[] = [
  'trainer.nnodes',
  'trainer.n_gpus_per_node',
  'trainer.ray_timeline',
  'worker.hybrid_engine',
  'worker.actor.fsdp',
  'worker.actor.offload',
  'worker.actor.padding_free',
  'worker.actor.dynamic_batching',
  'worker.actor.ulysses_size',
  'worker.actor.ulysses_sequence_parallel_size',
  'worker.actor.micro_batch_size_per_device_for_experience',
  'worker.actor.model.enable_gradient_checkpointing',
  'worker.actor.model.trust_remote_code',
  'worker.ref',
  'worker.rollout.gpu_memory_utilization',
  'worker.rollout.tensor_parallel_size',
  'worker.rollout.enforce_eager',
  'worker.rollout.enable_chunked_prefill',
  'worker.rollout.max_num_batched_tokens',
  'worker.rollout.disable_tqdm',
  'worker.reward.num_cpus',
];

/** Why they do not apply, in the note. */
export const NOT_APPLYING_REASON = 'one process on the CPU, onnxruntime engine: no GPUs, nodes, FSDP, offloading, vLLM or Ray';

/**
 * Keys accepted at the one value that asks for nothing beyond what runs here (EasyR1's defaults), refused
 * with the reason otherwise.
 */
const ONLY_AT: readonly { key: string; ok: (v: unknown) => boolean; expected: string; reason: string }[] = [
  {
    key: 'algorithm.kl_type',
    ok: (v) => v === 'fixed',
    expected: 'fixed',
    reason: 'the adaptive controller steers the KL penalty in the reward (use_kl_loss false), which is not implemented here',
  },
  { key: 'algorithm.kl_horizon', ok: () => true, expected: 'any', reason: '' },
  { key: 'algorithm.kl_target', ok: () => true, expected: 'any', reason: '' },
  {
    key: 'algorithm.gamma',
    ok: (v) => v === 1,
    expected: '1',
    reason:
      "EasyR1's gamma is the GAE discount, which the group estimators here do not read; PAPO's gamma (the perception loss weight) is algorithm.perception_loss_weight",
  },
  { key: 'algorithm.lam', ok: (v) => v === 1, expected: '1', reason: 'the GAE lambda, which the group estimators here do not read' },
  { key: 'trainer.critic_warmup', ok: (v) => v === 0, expected: '0', reason: 'there is no critic (group advantage estimators only)' },
  { key: 'trainer.val_only', ok: (v) => v === false, expected: 'false', reason: 'to evaluate a policy without training, use papo eval' },
  {
    key: 'trainer.save_model_only',
    ok: (v) => v === false,
    expected: 'false',
    reason: 'a checkpoint here always holds the optimizer state and data position a resume needs',
  },
  { key: 'worker.actor.model.freeze_vision_tower', ok: (v) => v === false, expected: 'false', reason: 'all parameters are trained' },
  { key: 'worker.actor.model.lora', ok: (v) => isMap(v) && (v.rank === undefined || v.rank === 0), expected: 'rank 0', reason: 'LoRA is not implemented' },
  { key: 'worker.actor.optim.strategy', ok: (v) => v === 'adamw', expected: 'adamw', reason: 'the optimizer is AdamW in float32' },
  {
    key: 'worker.actor.optim.lr_warmup_ratio',
    ok: (v) => v === 0,
    expected: '0',
    reason: 'the warm-up is set in optimizer steps: worker.actor.optim.lr_warmup_steps',
  },
  {
    key: 'worker.reward.reward_function_kwargs',
    ok: (v) => isMap(v) && Object.keys(v).length === 0,
    expected: '{}',
    reason: 'bind the arguments in the reward file (export a function that calls yours with them)',
  },
  { key: 'worker.reward.skip_special_tokens', ok: (v) => v === true, expected: 'true', reason: 'responses reach the reward without special tokens' },
];

/** Keys whose -1 means what 0 means here: never validate, save at the end only, keep every checkpoint. */
const MINUS_ONE_IS_ZERO = ['trainer.val_freq', 'trainer.save_freq', 'trainer.save_limit'];

/** EasyR1's `null` of an Optional key is the key left unset (`max_steps: null`, `save_checkpoint_path: null`). */
function dropNulls(node: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(node)) {
    if (v === null) delete node[k];
    else if (isMap(v)) dropNulls(v);
  }
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The mapping at `path` (created when `create`), or undefined when a step is missing or not a mapping. */
function mapAt(root: Record<string, unknown>, keys: readonly string[], create = false): Record<string, unknown> | undefined {
  let node: Record<string, unknown> = root;
  for (const k of keys) {
    if (node[k] === undefined && create) node[k] = {};
    const next = node[k];
    if (!isMap(next)) return undefined;
    node = next;
  }
  return node;
}

/** Removes `dotted` from `root` and returns its value (undefined when absent). */
function take(root: Record<string, unknown>, dotted: string): unknown {
  const keys = dotted.split('.');
  const parent = mapAt(root, keys.slice(0, -1));
  const last = keys[keys.length - 1];
  if (!parent || !Object.hasOwn(parent, last)) return undefined;
  const v = parent[last];
  delete parent[last];
  return v;
}

/** Sets `dotted` in `root`, unless it holds another value already (then a problem naming both keys). */
function put(root: Record<string, unknown>, dotted: string, value: unknown, from: string, problems: string[], same = (a: unknown, b: unknown) => a === b) {
  const keys = dotted.split('.');
  const parent = mapAt(root, keys.slice(0, -1), true);
  if (!parent) return; // a path through a non-mapping: the schema names it
  const last = keys[keys.length - 1];
  if (parent[last] !== undefined && !same(parent[last], value)) {
    problems.push(`${from}: ${JSON.stringify(value)} and ${dotted}: ${JSON.stringify(parent[last])} disagree (${from} sets ${dotted}); give one of them`);
    return;
  }
  parent[last] = value;
}

/** Translates the EasyR1 keys of a run config document (see the header). The input is not modified. */
export function translateEasyR1(input: unknown): EasyR1Translation {
  const out: EasyR1Translation = { input, notes: [], problems: [], mapped: {} };
  if (!isMap(input)) return out;
  const doc = structuredClone(input);
  dropNulls(doc);
  out.input = doc;
  const { problems } = out;
  // EasyR1's -1 = never / no limit, 0 here; its save_freq -1 still saves at the end, as 0 does here.
  for (const key of MINUS_ONE_IS_ZERO) {
    const parent = mapAt(doc, key.split('.').slice(0, -1));
    const last = key.split('.').at(-1) as string;
    if (parent?.[last] === -1) parent[last] = 0;
  }
  const typed = <T>(key: string, v: unknown, kind: 'boolean' | 'string' | 'number'): T | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === kind && (kind !== 'number' || Number.isFinite(v))) return v as T;
    problems.push(`${key}: expected a ${kind}, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const mapTo = (from: string, to: string, value: unknown, same?: (a: unknown, b: unknown) => boolean) => {
    const before = problems.length;
    put(doc, to, value, from, problems, same);
    if (problems.length === before && to.startsWith('algorithm.')) out.mapped[to.slice('algorithm.'.length)] = from;
  };

  // Keys of GPUs and other engines.
  const ignored: string[] = [];
  for (const key of NOT_APPLYING_KEYS) {
    const v = take(doc, key);
    if (v !== undefined) ignored.push(isMap(v) ? `${key}.*` : key);
  }
  if (ignored.length) out.notes.push(`config: not applying on this backend (${NOT_APPLYING_REASON}), ignored: ${ignored.join(', ')}`);
  for (const { key, ok, expected, reason } of ONLY_AT) {
    const v = take(doc, key);
    if (v !== undefined && !ok(v)) problems.push(`${key}: ${JSON.stringify(v)} is not supported (only ${expected}): ${reason}`);
  }

  // The KL.
  const disableKl = typed<boolean>('algorithm.disable_kl', take(doc, 'algorithm.disable_kl'), 'boolean');
  out.useKlLoss = typed<boolean>('algorithm.use_kl_loss', take(doc, 'algorithm.use_kl_loss'), 'boolean');
  const klPenalty = typed<string>('algorithm.kl_penalty', take(doc, 'algorithm.kl_penalty'), 'string');
  if (klPenalty === 'full')
    problems.push(
      `algorithm.kl_penalty: 'full' (the KL over the whole vocabulary) is not implemented; use kl (k1), mse (k2), low_var_kl (k3) or abs, or algorithm.kl_estimator`,
    );
  else if (klPenalty !== undefined) {
    const same = (a: unknown, b: unknown) => typeof a === 'string' && typeof b === 'string' && klEstimators.resolve(a) === klEstimators.resolve(b);
    mapTo('algorithm.kl_penalty', 'algorithm.kl_estimator', klPenalty, same);
  }
  if (disableKl) {
    const kl = mapAt(doc, ['algorithm'])?.kl_coef;
    if (typeof kl === 'number' && kl > 0) {
      out.notes.push(`algorithm.kl_coef ${kl} is ignored: algorithm.disable_kl is true (no reference model, no KL)`);
      delete mapAt(doc, ['algorithm'])?.kl_coef;
    }
    mapTo('algorithm.disable_kl', 'algorithm.kl_coef', 0);
  }

  // Online filtering (DAPO's dynamic sampling).
  const filtering = typed<boolean>('algorithm.online_filtering', take(doc, 'algorithm.online_filtering'), 'boolean');
  if (filtering !== undefined) mapTo('algorithm.online_filtering', 'algorithm.dynamic_sampling', filtering);
  const low = typed<number>('algorithm.filter_low', take(doc, 'algorithm.filter_low'), 'number');
  if (low !== undefined) mapTo('algorithm.filter_low', 'algorithm.dynamic_sampling_min_acc', low);
  const high = typed<number>('algorithm.filter_high', take(doc, 'algorithm.filter_high'), 'number');
  if (high !== undefined) mapTo('algorithm.filter_high', 'algorithm.dynamic_sampling_max_acc', high);
  out.filterKey = typed<string>('algorithm.filter_key', take(doc, 'algorithm.filter_key'), 'string');
  const tries = typed<number>('trainer.max_try_make_batch', take(doc, 'trainer.max_try_make_batch'), 'number');
  if (tries !== undefined && !(Number.isInteger(tries) && tries > 0))
    problems.push(`trainer.max_try_make_batch: ${tries} is not supported: the sampling rounds of a step must be bounded; give a positive number`);
  else if (tries !== undefined) mapTo('trainer.max_try_make_batch', 'algorithm.dynamic_sampling_max_tries', tries);

  // The reward.
  const fn = typed<string>('worker.reward.reward_function', take(doc, 'worker.reward.reward_function'), 'string');
  if (fn !== undefined) {
    if (/\.py(:|$)/.test(fn))
      problems.push(
        `worker.reward.reward_function: ${fn} is Python, which cannot run here; write the reward in TypeScript or JavaScript (a function (input) => ({ overall, accuracy, format })) and name it as file.ts:function`,
      );
    else mapTo('worker.reward.reward_function', 'worker.reward.score_function', rewardFunctionSpec(fn));
  }

  // Resuming.
  const findLast = typed<boolean>('trainer.find_last_checkpoint', take(doc, 'trainer.find_last_checkpoint'), 'boolean');
  if (findLast) put(doc, 'trainer.resume_mode', 'auto', 'trainer.find_last_checkpoint', problems);
  return out;
}

/** EasyR1's `path:function`, the function `main` when not named; a registered reward's name is kept. */
export function rewardFunctionSpec(fn: string): string {
  return /\.[cm]?[jt]s$/.test(fn) ? `${fn}:main` : fn;
}

/** The problems the EasyR1 switches raise against the resolved objective (see `EasyR1Translation`). */
export function objectiveProblems(
  t: Pick<EasyR1Translation, 'useKlLoss' | 'filterKey'>,
  objective: { kl_coef: number; dynamic_sampling: boolean },
  preset: string,
): string[] {
  const problems: string[] = [];
  if (t.useKlLoss === false && objective.kl_coef > 0)
    problems.push(
      `algorithm.use_kl_loss: false puts the KL penalty into the reward (EasyR1's apply_kl_penalty), which is not implemented here; the KL is a loss term weighted by algorithm.kl_coef (${objective.kl_coef}, with preset ${preset}): set use_kl_loss true, or disable_kl true (or kl_coef 0) for no KL`,
    );
  if (t.filterKey !== undefined && t.filterKey !== 'accuracy' && objective.dynamic_sampling)
    problems.push(
      `algorithm.filter_key: '${t.filterKey}' is not supported: online filtering (dynamic sampling) here keeps groups by the mean of the reward's accuracy; set filter_key: accuracy`,
    );
  return problems;
}
