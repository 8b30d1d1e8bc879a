/**
 * AdamW for the policy's tf.Variables: decoupled weight decay, global gradient-norm clipping and a
 * learning-rate schedule. Its state (step count and both moments) exports to Float32Arrays for
 * checkpoints and restores exactly.
 *
 * Update at step t (1-based), for each parameter p with gradient g (after clipping):
 *   p <- p - lr_t * wd * p                       (decoupled decay; only parameters of rank >= 2)
 *   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 */
import { z } from 'zod';
import { parseConfig } from '../util/schema.ts';
import { tf } from '../util/tf-backend.ts';

export const LrScheduleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('constant') }).strict(),
  /** linear ramp from 0 to lr over warmupSteps, then constant */
  z.object({ kind: z.literal('linear-warmup'), warmupSteps: z.number().int().nonnegative() }).strict(),
  /** linear warm-up, then cosine decay from lr to minLrRatio * lr at totalSteps (held after) */
  z.object({
    kind: z.literal('cosine'),
    warmupSteps: z.number().int().nonnegative().default(0),
    totalSteps: z.number().int().positive(),
    minLrRatio: z.number().min(0).max(1).default(0),
  }).strict(),
]);
export type LrSchedule = z.infer<typeof LrScheduleSchema>;

export const AdamWConfigSchema = z.object({
  lr: z.number().positive().default(1e-3),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(0.01),
  /** clip the global L2 norm of all gradients to this; 0 = no clipping */
  maxGradNorm: z.number().min(0).default(1),
  schedule: LrScheduleSchema.default({ kind: 'constant' }),
}).strict();
export type AdamWConfig = z.infer<typeof AdamWConfigSchema>;
export type AdamWConfigInput = z.input<typeof AdamWConfigSchema>;

/** Learning rate for 1-based step `step` under a schedule. */
export function learningRate(lr: number, schedule: LrSchedule, step: number): number {
  if (schedule.kind === 'constant') return lr;
  const warm = schedule.warmupSteps;
  if (warm > 0 && step <= warm) return (lr * step) / warm;
  if (schedule.kind === 'linear-warmup') return lr;
  const span = Math.max(1, schedule.totalSteps - warm);
  const frac = Math.min(1, (step - warm) / span);
  const min = lr * schedule.minLrRatio;
  return min + 0.5 * (lr - min) * (1 + Math.cos(Math.PI * frac));
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (0 = unchanged). Returns new tensors
 * (the caller disposes them and the inputs) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const normT = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
  const norm = (normT.dataSync() as Float32Array)[0];
  normT.dispose();
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return { grads: grads.map((g) => tf.clone(g)), norm };
  const scale = maxNorm / norm;
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}

/** Exported optimizer state: checkpointable as plain arrays. */
export interface AdamWState {
  step: number;
  /** first moments, keyed by parameter name */
  m: Record<string, Float32Array>;
  /** second moments, keyed by parameter name */
  v: Record<string, Float32Array>;
}

/**
 * The state as one flat record of Float32Arrays (for array stores): `step` (one value; exact up to
 * 2^24 steps), `m.<param>` and `v.<param>`.
 */
export function adamWStateToRecord(state: AdamWState): Record<string, Float32Array> {
  if (state.step > 2 ** 24) throw new Error(`AdamW state: step ${state.step} is not exact in float32`);
  const out: Record<string, Float32Array> = { step: Float32Array.of(state.step) };
  for (const [n, a] of Object.entries(state.m)) out[`m.${n}`] = a;
  for (const [n, a] of Object.entries(state.v)) out[`v.${n}`] = a;
  return out;
}

/** Inverse of `adamWStateToRecord`. */
export function adamWStateFromRecord(record: Record<string, Float32Array>): AdamWState {
  const step = record.step;
  if (!(step instanceof Float32Array) || step.length !== 1) throw new Error(`AdamW state record: 'step' must be a Float32Array of length 1`);
  const state: AdamWState = { step: step[0], m: {}, v: {} };
  for (const [k, a] of Object.entries(record)) {
    if (k === 'step') continue;
    if (k.startsWith('m.')) state.m[k.slice(2)] = a;
    else if (k.startsWith('v.')) state.v[k.slice(2)] = a;
    else throw new Error(`AdamW state record: unexpected entry '${k}'`);
  }
  return state;
}

export interface StepInfo {
  step: number;
  lr: number;
  /** global gradient norm before clipping */
  gradNorm: number;
}

/**
 * The value of `loss` (a scalar built from `vars`) and its gradient for every variable, keyed by
 * parameter name (zeros where the loss does not depend on one). The caller owns the gradients.
 */
export function lossGradients(vars: Record<string, tf.Variable>, loss: () => tf.Scalar): { loss: number; grads: Record<string, tf.Tensor> } {
  const { value, grads } = tf.variableGrads(loss, Object.values(vars));
  const byName: Record<string, tf.Tensor> = {};
  // variableGrads keys gradients by the variables' tfjs names.
  for (const [n, p] of Object.entries(vars)) byName[n] = grads[p.name] ?? tf.zerosLike(p);
  const lossValue = (value.dataSync() as Float32Array)[0];
  value.dispose();
  return { loss: lossValue, grads: byName };
}

export class AdamW {
  readonly config: AdamWConfig;
  private readonly vars: Record<string, tf.Variable>;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private t = 0;

  /** `vars`: the parameters to optimise, keyed by name (e.g. `TfPolicy.vars`). */
  constructor(vars: Record<string, tf.Variable>, config: AdamWConfigInput = {}) {
    this.config = parseConfig(AdamWConfigSchema, config, 'AdamW config');
    this.vars = vars;
    for (const [name, p] of Object.entries(vars)) {
      // Variables outlive tidy; the zero initialisers do not.
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Steps taken so far. */
  get step(): number {
    return this.t;
  }

  /** Learning rate the next step will use. */
  nextLr(): number {
    return learningRate(this.config.lr, this.config.schedule, this.t + 1);
  }

  /**
   * One update from gradients keyed by parameter name (every optimised parameter must have one). The
   * gradients are not disposed. Throws on a non-finite gradient norm without touching any state.
   */
  applyGradients(grads: Record<string, tf.Tensor>): StepInfo {
    const names = Object.keys(this.vars);
    for (const n of names) {
      const g = grads[n];
      if (!g) throw new Error(`AdamW: no gradient for parameter '${n}'`);
      if (g.size !== this.vars[n].size) throw new Error(`AdamW: gradient for '${n}' has shape [${g.shape}], parameter has [${this.vars[n].shape}]`);
    }
    const clipped = clipByGlobalNorm(names.map((n) => grads[n]), this.config.maxGradNorm);
    if (!Number.isFinite(clipped.norm)) {
      tf.dispose(clipped.grads);
      throw new Error(`AdamW: gradient norm is ${clipped.norm} at step ${this.t + 1}; parameters left unchanged`);
    }
    const t = this.t + 1;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.config;
    const lr = learningRate(this.config.lr, this.config.schedule, t);
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    tf.tidy(() => {
      names.forEach((n, i) => {
        const p = this.vars[n];
        const g = clipped.grads[i];
        const m = tf.add(tf.mul(this.m[n], b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[n], b2), tf.mul(tf.square(g), 1 - b2));
        const stepDir = tf.div(tf.mul(m, lr / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        const decayed = wd > 0 && p.rank >= 2 ? tf.mul(p, 1 - lr * wd) : p;
        p.assign(tf.sub(decayed, stepDir));
        this.m[n].assign(m);
        this.v[n].assign(v);
      });
    });
    tf.dispose(clipped.grads);
    this.t = t;
    return { step: t, lr, gradNorm: clipped.norm };
  }

  /**
   * Computes the gradients of `loss` (a scalar built from the optimised variables) and applies one step.
   * Returns the loss value with the step info; all intermediate tensors are released.
   */
  minimize(loss: () => tf.Scalar): StepInfo & { loss: number } {
    const { loss: lossValue, grads } = lossGradients(this.vars, loss);
    try {
      return { ...this.applyGradients(grads), loss: lossValue };
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /** Copies of the step count and moments. */
  exportState(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const n of Object.keys(this.vars)) {
      m[n] = (this.m[n].dataSync() as Float32Array).slice();
      v[n] = (this.v[n].dataSync() as Float32Array).slice();
    }
    return { step: this.t, m, v };
  }

  /** Restores a state from `exportState` (same parameter names and sizes). */
  importState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW state: step must be a non-negative integer, got ${state.step}`);
    for (const which of ['m', 'v'] as const) {
      for (const n of Object.keys(state[which] ?? {})) {
        if (!(n in this.vars)) throw new Error(`AdamW state: ${which}['${n}'] is not a parameter of this optimizer`);
      }
    }
    for (const n of Object.keys(this.vars)) {
      for (const which of ['m', 'v'] as const) {
        const a = state[which]?.[n];
        if (!(a instanceof Float32Array)) throw new Error(`AdamW state: missing ${which}['${n}']`);
        if (a.length !== this.vars[n].size) throw new Error(`AdamW state: ${which}['${n}'] has ${a.length} values, expected ${this.vars[n].size}`);
      }
    }
    for (const n of Object.keys(this.vars)) {
      for (const which of ['m', 'v'] as const) {
        const t = tf.tensor(state[which][n], this.vars[n].shape, 'float32');
        this[which][n].assign(t);
        t.dispose();
      }
    }
    this.t = state.step;
  }

  dispose(): void {
    tf.dispose([...Object.values(this.m), ...Object.values(this.v)]);
  }
}
