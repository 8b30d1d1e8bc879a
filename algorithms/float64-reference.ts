/**
 * An independent float64 plain-JS implementation of the PAPO objective, written directly from
 * PAPO-SPEC.md with loops over tokens, to check the tfjs implementation against: the oracle of the test
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

/** Returns the loss (before gradient-accumulation scaling) and the metrics, in float64. */
export function refPapoLoss(inp: RefInputs, c: ObjectiveConfig): { loss: number; metrics: Record<string, number> } {
  if (c.policy_loss !== 'ppo_clip') throw new Error(`no float64 reference of policy loss "${c.policy_loss}"`);
  const B = inp.logprobs.length;
  const T = inp.logprobs[0].length;
  const mat = (f: (b: number, t: number) => number): Mat => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => f(b, t)));
  const adv = (b: number, t: number) => {
    const a = inp.advantages[b];
    return Array.isArray(a) ? a[t] : (a as number) * inp.responseMask[b][t];
  };
  const terms = mat((_b, _t) => 0).map((row, b) => row.map((_, t) => refPg(inp.logprobs[b][t], inp.oldLogprobs[b][t], adv(b, t), c)));
  const agg = (x: Mat) => refAgg(x, inp.responseMask, c.loss_agg_mode, c.loss_scale_factor);
  const tokMean = (x: Mat) => refAgg(x, inp.responseMask, 'token-mean');
  const metrics: Record<string, number> = {};
  metrics['actor/pg_loss'] = agg(terms.map((r) => r.map((v) => v.pg)));
  metrics['actor/pg_clipfrac'] = tokMean(terms.map((r) => r.map((v) => v.clip)));
  metrics['actor/pg_clipfrac_lower'] = tokMean(terms.map((r) => r.map((v) => v.dual)));
  metrics['actor/ppo_kl'] = -tokMean(terms.map((r) => r.map((v) => v.negKl)));
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
