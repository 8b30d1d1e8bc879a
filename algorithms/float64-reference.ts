/**
 * An independent float64 plain-JS implementation of the PAPO objective, written directly from
 * docs/objective.md with loops over tokens, to check the tfjs implementation against: the oracle of the test
 * suite and of `papo selfcheck`. Nothing trains with it.
 */
import type { ObjectiveConfig } from './config.ts';
import { Rng } from '../util/rng.ts';

export type Mat = number[][];

export interface RefInputs {
  logprobs: Mat;
  oldLogprobs: Mat;
  refLogprobs?: Mat;
  maskedLogprobs?: Mat;
  /** per response [B] or per token [B][T] */
  advantages: number[] | Mat;
  responseMask: Mat;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** What this file implements: the built-in names of the registries, written out again on purpose. */
export const FLOAT64_REFERENCE = {
  advEstimators: ['grpo', 'dr_grpo', 'rloo'],
  policyLosses: ['ppo_clip'],
  klEstimators: ['k1', 'k2', 'k3', 'abs'],
  lossAggModes: ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'],
  tokenWeightings: ['none', 'vppo'],
} as const;

export function refKl(lp: number, lq: number, est: string): number {
  if (est === 'k1') return lp - lq;
  if (est === 'k2') return 0.5 * (lp - lq) ** 2;
  if (est === 'abs') return Math.abs(lp - lq);
  if (est !== 'k3') throw new Error(`no float64 reference of KL estimator "${est}"`);
  const d = clamp(lq - lp, -20, 20);
  return clamp(Math.exp(d) - d - 1, -10, 10);
}

export function refPg(lp: number, old: number, a: number, c: ObjectiveConfig) {
  const lr = lp - old;
  const ratio = Math.exp(clamp(lr, -20, 20));
  const clipped = Math.exp(clamp(lr, Math.log(1 - c.clip_ratio_low), Math.log(1 + c.clip_ratio_high)));
  const l1 = -a * ratio;
  const l2 = -a * clipped;
  let pg = Math.max(l1, l2);
  let dual = 0;
  if (a < 0) {
    const cap = -c.clip_ratio_dual * a;
    if (pg > cap) dual = 1;
    pg = Math.min(pg, cap);
  }
  return { pg, clip: l2 > l1 ? 1 : 0, dual, negKl: clamp(lr, -20, 20) };
}

export function refAgg(x: Mat, mask: Mat, mode: string, scale?: number): number {
  const B = x.length;
  const T = x[0]?.length ?? 0;
  let total = 0;
  let count = 0;
  const seqSums: number[] = [];
  const seqCounts: number[] = [];
  for (let b = 0; b < B; b++) {
    let s = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      if (mask[b][t]) {
        s += x[b][t] * mask[b][t];
        n += mask[b][t];
      }
    }
    seqSums.push(s);
    seqCounts.push(n);
    total += s;
    count += n;
  }
  switch (mode) {
    case 'token-mean':
      return count > 0 ? total / count : 0;
    case 'seq-mean-token-mean': {
      let s = 0;
      let n = 0;
      for (let b = 0; b < B; b++) {
        if (seqCounts[b] > 0) {
          s += seqSums[b] / seqCounts[b];
          n++;
        }
      }
      return n > 0 ? s / n : 0;
    }
    case 'seq-mean-token-sum':
      return seqSums.reduce((a, v) => a + v, 0) / B;
    case 'seq-mean-token-sum-norm':
      return total / (scale ?? T);
    default:
      throw new Error(`no float64 reference of loss_agg_mode "${mode}"`);
  }
}

/**
 * VPPO's visual dependency of each valid token (PAPO's k3 between the sampling policy's log-probs on the
 * original and the masked image, clamped to [0, 10]) and each response's mean of it; undefined for padding
 * and empty responses.
 */
export function refVppoDependency(inp: RefInputs): { dep: Mat; score: (number | undefined)[] } {
  const m = inp.maskedLogprobs;
  if (!m) throw new Error('VPPO needs maskedLogprobs');
  const dep = inp.responseMask.map((row, b) => row.map((v, t) => (v ? Math.max(0, refKl(inp.oldLogprobs[b][t], m[b][t], 'k3')) : Number.NaN)));
  const score = dep.map((row, b) => {
    const xs = row.filter((_, t) => inp.responseMask[b][t]);
    return xs.length ? xs.reduce((a, v) => a + v, 0) / xs.length : undefined;
  });
  return { dep, score };
}

/** VPPO's mini-batch statistics: the lowest and highest response mean dependency, with 2 non-empty responses or more. */
export function refVppoStats(inp: RefInputs): Record<string, number> {
  const scores = refVppoDependency(inp).score.filter((s): s is number => s !== undefined);
  return scores.length < 2 ? {} : { dependency_min: Math.min(...scores), dependency_max: Math.max(...scores) };
}

/**
 * VPPO written out with loops (see algorithms/token-weighting.ts for the definition and its source):
 * per response, the ceil(n * ratio) valid tokens of highest dependency keep their policy-gradient loss
 * (ties to the earlier token; n * ratio in float32), and every advantage is scaled by
 * floor + u * ((1 - floor) / (mean u + 1e-8)), u the response's mean dependency min-max normalised with the
 * mini-batch's `stats` (this batch's own by default), the mean over this batch's non-empty responses.
 */
export function refVppo(inp: RefInputs, c: ObjectiveConfig, stats: Record<string, number> = refVppoStats(inp)) {
  const { dep, score } = refVppoDependency(inp);
  const B = dep.length;
  const T = dep[0]?.length ?? 0;
  const weights: Mat = dep.map((row) => row.map(() => 0));
  const thresholds: number[] = [];
  let selectedCount = 0;
  let validCount = 0;
  for (let b = 0; b < B; b++) {
    const order = Array.from({ length: T }, (_, t) => t)
      .filter((t) => inp.responseMask[b][t])
      .sort((s, t) => dep[b][t] - dep[b][s] || s - t);
    const k = Math.ceil(Math.fround(order.length * Math.fround(c.vppo_top_token_ratio)));
    for (const t of order.slice(0, k)) weights[b][t] = 1;
    if (k > 0) thresholds.push(dep[b][order[k - 1]]);
    selectedCount += k;
    validCount += order.length;
  }
  const scale = score.map(() => 1);
  const lo = stats.dependency_min;
  const hi = stats.dependency_max;
  const rows = score.flatMap((s, b) => (s === undefined ? [] : [b]));
  if (lo !== undefined && hi !== undefined && hi - lo > 1e-6) {
    const u = score.map((s) => (s === undefined ? 0 : clamp((s - lo) / (hi - lo), 0, 1)));
    const mu = rows.reduce((a, b) => a + u[b], 0) / Math.max(rows.length, 1);
    const top = c.vppo_adv_floor + (1 - c.vppo_adv_floor) / (mu + 1e-8);
    for (const b of rows) scale[b] = c.vppo_adv_floor + u[b] * (top - c.vppo_adv_floor);
  }
  const metrics = {
    'actor/vppo_token_fraction': validCount ? selectedCount / validCount : 0,
    'actor/vppo_adv_scale_mean': rows.length ? rows.reduce((a, b) => a + scale[b], 0) / rows.length : 0,
    'actor/vppo_adv_scale_max': Math.max(0, ...rows.map((b) => scale[b])),
    'actor/vppo_dependency_threshold': thresholds.length ? thresholds.reduce((a, v) => a + v, 0) / thresholds.length : 0,
  };
  return { weights, scale, metrics };
}

export interface RefLossOptions {
  /** the token weighting's mini-batch statistics (default: those of these inputs) */
  tokenWeightingStats?: Record<string, number>;
}

/** Returns the loss (before gradient-accumulation scaling) and the metrics, in float64. */
export function refPapoLoss(inp: RefInputs, c: ObjectiveConfig, opts: RefLossOptions = {}): { loss: number; metrics: Record<string, number> } {
  if (c.policy_loss !== 'ppo_clip') throw new Error(`no float64 reference of policy loss "${c.policy_loss}"`);
  if (!(FLOAT64_REFERENCE.tokenWeightings as readonly string[]).includes(c.token_weighting))
    throw new Error(`no float64 reference of token weighting "${c.token_weighting}"`);
  const B = inp.logprobs.length;
  const T = inp.logprobs[0].length;
  const mat = (f: (b: number, t: number) => number): Mat => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => f(b, t)));
  const vppo = c.token_weighting === 'vppo' ? refVppo(inp, c, opts.tokenWeightingStats) : undefined;
  const adv = (b: number, t: number) => {
    const a = inp.advantages[b];
    return (Array.isArray(a) ? a[t] : (a as number) * inp.responseMask[b][t]) * (vppo ? vppo.scale[b] : 1);
  };
  const terms = mat((_b, _t) => 0).map((row, b) => row.map((_, t) => refPg(inp.logprobs[b][t], inp.oldLogprobs[b][t], adv(b, t), c)));
  const agg = (x: Mat) => refAgg(x, inp.responseMask, c.loss_agg_mode, c.loss_scale_factor);
  const tokMean = (x: Mat) => refAgg(x, inp.responseMask, 'token-mean');
  const metrics: Record<string, number> = {};
  metrics['actor/pg_loss'] = agg(terms.map((r, b) => r.map((v, t) => v.pg * (vppo ? vppo.weights[b][t] : 1))));
  metrics['actor/pg_clipfrac'] = tokMean(terms.map((r) => r.map((v) => v.clip)));
  metrics['actor/pg_clipfrac_lower'] = tokMean(terms.map((r) => r.map((v) => v.dual)));
  metrics['actor/ppo_kl'] = -tokMean(terms.map((r) => r.map((v) => v.negKl)));
  if (vppo) Object.assign(metrics, vppo.metrics);
  let loss = metrics['actor/pg_loss'];
  if (inp.refLogprobs) {
    const ref = inp.refLogprobs;
    metrics['actor/kl_loss'] = agg(mat((b, t) => refKl(inp.logprobs[b][t], ref[b][t], c.kl_estimator)));
    loss += c.kl_coef * metrics['actor/kl_loss'];
  }
  metrics['actor/entropy_loss'] = agg(mat((b, t) => -inp.logprobs[b][t]));
  loss += c.entropy_coef_original * metrics['actor/entropy_loss'];
  if (inp.maskedLogprobs) {
    const m = inp.maskedLogprobs;
    const klPrcp = agg(mat((b, t) => refKl(inp.logprobs[b][t], m[b][t], 'k3')));
    metrics['actor/kl_prcp_loss'] = -klPrcp;
    loss -= c.perception_loss_weight * klPrcp;
    metrics['actor/aug_entropy_loss'] = agg(mat((b, t) => -m[b][t]));
    loss += c.entropy_coef_masked * metrics['actor/aug_entropy_loss'];
  }
  metrics['actor/loss'] = loss;
  return { loss, metrics };
}

/** GRPO / Dr.GRPO / RLOO advantages in float64, straight from the definitions. */
export function refAdvantages(rewards: number[], G: number, est: string, eps = 1e-6): number[] {
  if (!(FLOAT64_REFERENCE.advEstimators as readonly string[]).includes(est)) throw new Error(`no float64 reference of advantage estimator "${est}"`);
  const out: number[] = [];
  for (let g = 0; g < rewards.length / G; g++) {
    const r = rewards.slice(g * G, g * G + G);
    if (G === 1) {
      out.push(r[0]);
      continue;
    }
    const mean = r.reduce((a, v) => a + v, 0) / G;
    const std = Math.sqrt(r.reduce((a, v) => a + (v - mean) ** 2, 0) / (G - 1));
    for (let i = 0; i < G; i++) {
      if (r.every((v) => v === r[0])) out.push(0);
      else if (est === 'grpo') out.push((r[i] - mean) / (std + eps));
      else if (est === 'dr_grpo') out.push(r[i] - mean);
      else {
        const others = r.filter((_, j) => j !== i);
        out.push(r[i] - others.reduce((a, v) => a + v, 0) / (G - 1));
      }
    }
  }
  return out;
}

/** Random rollout-like inputs: varied response lengths (one empty row), log-ratios near 1 and some far. */
export function randomInputs(seed: number, B = 6, T = 9, perToken = false): RefInputs {
  const rng = Rng.seeded(seed);
  const lens = Array.from({ length: B }, (_, b) => (b === 0 ? 0 : 1 + rng.int(T)));
  const mat = (f: () => number): Mat => Array.from({ length: B }, () => Array.from({ length: T }, f));
  const lp = mat(() => -5 * rng.float());
  const near0 = (s: number) => (b: number, t: number) => lp[b][t] + s * rng.normal();
  const fromLp = (f: (b: number, t: number) => number): Mat => lp.map((row, b) => row.map((_, t) => f(b, t)));
  return {
    logprobs: lp,
    oldLogprobs: fromLp(near0(0.4)),
    refLogprobs: fromLp(near0(0.5)),
    maskedLogprobs: fromLp(near0(1.5)),
    advantages: perToken ? mat(() => rng.normal()) : Array.from({ length: B }, () => rng.normal()),
    responseMask: lens.map((n) => Array.from({ length: T }, (_, t) => (t < n ? 1 : 0))),
  };
}
