/**
 * AdamW on plain Float32Arrays, with exactly the semantics of the tfjs optimizer in models/optimizer.ts
 * (which imports its config, schedules and state format from here): decoupled weight decay on
 * parameters of rank >= 2 only, global gradient-norm clipping, a learning-rate schedule, and a state
 * (step count and both moments, keyed by parameter name) that exports and restores exactly.
 *
 * Update at step t (1-based), for each parameter p with gradient g (after clipping):
 *   p <- p - lr_t * wd * p                       (decoupled decay; only parameters of rank >= 2)
 *   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * Arithmetic runs in float64 and is stored in float32 (the tfjs optimizer rounds after every op; the two
 * agree to float32 rounding, see test/models/adamw.test.ts). No tfjs here: the onnxruntime trainer runs
 * this in its worker thread.
 *
 * @example
 * const opt = new ArrayAdamW(params, shapes, { lr: 1e-3, schedule: { kind: 'cosine', warmupSteps: 20, totalSteps: 400 } });
 * const info = opt.applyGradients(grads); // params updated in place; { step, lr, gradNorm }
 * const state = opt.exportState();        // { step, m, v } as Float32Arrays
 */
import { z } from 'zod';
import { parseConfig } from '../util/schema.ts';

/** The `code` of a `NonFiniteGradientError` (kept when the error crosses a worker thread). */
export const NON_FINITE_GRADIENT = 'ERR_NONFINITE_GRADIENT';

/** AdamW refused a step whose gradient norm is not finite; no parameter or moment changed. */
export class NonFiniteGradientError extends Error {
  readonly code = NON_FINITE_GRADIENT;
  constructor(
    readonly norm: number,
    readonly step: number,
  ) {
    super(`AdamW: gradient norm is ${norm} at step ${step}; parameters left unchanged`);
    this.name = 'NonFiniteGradientError';
  }
}

/** True for a `NonFiniteGradientError`, also one rethrown from a worker thread (by its code). */
export const isNonFiniteGradient = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === NON_FINITE_GRADIENT;

export const LrScheduleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('constant') }).strict(),
  /** linear ramp from 0 to lr over warmupSteps, then constant */
  z.object({ kind: z.literal('linear-warmup'), warmupSteps: z.number().int().nonnegative() }).strict(),
  /** linear warm-up, then cosine decay from lr to minLrRatio * lr at totalSteps (held after) */
  z
    .object({
      kind: z.literal('cosine'),
      warmupSteps: z.number().int().nonnegative().default(0),
      totalSteps: z.number().int().positive(),
      minLrRatio: z.number().min(0).max(1).default(0),
    })
    .strict(),
]);
export type LrSchedule = z.infer<typeof LrScheduleSchema>;

export const AdamWConfigSchema = z
  .object({
    lr: z.number().positive().default(1e-3),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().min(0).default(0.01),
    /** clip the global L2 norm of all gradients to this; 0 = no clipping */
    maxGradNorm: z.number().min(0).default(1),
    schedule: LrScheduleSchema.default({ kind: 'constant' }),
  })
  .strict();
export type AdamWConfig = z.infer<typeof AdamWConfigSchema>;
export type AdamWConfigInput = z.input<typeof AdamWConfigSchema>;

/** Validates an optimizer config (errors name the key). */
export function adamWConfig(input: AdamWConfigInput = {}): AdamWConfig {
  return parseConfig(AdamWConfigSchema, input, 'AdamW config');
}

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

/** Exported optimizer state: checkpointable as plain arrays. */
export interface AdamWState {
  step: number;
  /** first moments, keyed by parameter name */
  m: Record<string, Float32Array>;
  /** second moments, keyed by parameter name */
  v: Record<string, Float32Array>;
}

export interface StepInfo {
  step: number;
  lr: number;
  /** global gradient norm before clipping */
  gradNorm: number;
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

/**
 * Checks a state against the optimised parameters (name -> element count): a non-negative integer
 * step, and for every parameter, both moments with the right length, and no moments of unknown names.
 */
export function checkAdamWState(state: AdamWState, sizes: Record<string, number>): void {
  if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW state: step must be a non-negative integer, got ${state.step}`);
  for (const which of ['m', 'v'] as const) {
    for (const n of Object.keys(state[which] ?? {})) {
      if (!(n in sizes)) throw new Error(`AdamW state: ${which}['${n}'] is not a parameter of this optimizer`);
    }
  }
  for (const [n, size] of Object.entries(sizes)) {
    for (const which of ['m', 'v'] as const) {
      const a = state[which]?.[n];
      if (!(a instanceof Float32Array)) throw new Error(`AdamW state: missing ${which}['${n}']`);
      if (a.length !== size) throw new Error(`AdamW state: ${which}['${n}'] has ${a.length} values, expected ${size}`);
    }
  }
}

/** sum of squares of every gradient, in float64 */
function sumOfSquares(gs: readonly Float32Array[]): number {
  let s = 0;
  for (const g of gs) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return s;
}

/** One parameter's update (a small function so that V8 optimises the loop). */
function adamWUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, k: AdamWCoefficients): void {
  const { scale, b1, b2, stepSize, bc2, eps, keep } = k;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * scale;
    const mi = b1 * m[i] + c1 * gi;
    const vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * keep - (mi * stepSize) / (Math.sqrt(vi / bc2) + eps);
  }
}

interface AdamWCoefficients {
  /** clipping factor of the gradient */
  scale: number;
  b1: number;
  b2: number;
  /** lr / (1 - b1^t) */
  stepSize: number;
  /** 1 - b2^t */
  bc2: number;
  eps: number;
  /** 1 - lr * wd for decayed parameters, else 1 */
  keep: number;
}

export class ArrayAdamW {
  readonly config: AdamWConfig;
  private readonly m: Record<string, Float32Array> = {};
  private readonly v: Record<string, Float32Array> = {};
  private t = 0;

  /**
   * `params`: the parameters, updated in place by `applyGradients`; `shapes`: their shapes (rank >= 2 is
   * decayed), e.g. from `paramSpecs`.
   */
  constructor(
    private readonly params: Record<string, Float32Array>,
    private readonly shapes: Record<string, readonly number[]>,
    config: AdamWConfigInput = {},
  ) {
    this.config = adamWConfig(config);
    for (const [n, p] of Object.entries(params)) {
      const shape = shapes[n];
      if (!shape) throw new Error(`AdamW: no shape for parameter '${n}'`);
      if (shape.reduce((a, b) => a * b, 1) !== p.length)
        throw new Error(`AdamW: parameter '${n}' has ${p.length} values, its shape [${shape}] needs ${shape.reduce((a, b) => a * b, 1)}`);
      this.m[n] = new Float32Array(p.length);
      this.v[n] = new Float32Array(p.length);
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
   * One update from gradients keyed by parameter name (every optimised parameter must have one); the
   * gradients are not modified. Throws on a non-finite gradient norm without touching any state.
   */
  applyGradients(grads: Record<string, Float32Array>): StepInfo {
    const names = Object.keys(this.params);
    for (const n of names) {
      const g = grads[n];
      if (!(g instanceof Float32Array)) throw new Error(`AdamW: no gradient for parameter '${n}'`);
      if (g.length !== this.params[n].length) throw new Error(`AdamW: gradient for '${n}' has ${g.length} values, parameter has ${this.params[n].length}`);
    }
    const norm = Math.sqrt(sumOfSquares(names.map((n) => grads[n])));
    if (!Number.isFinite(norm)) throw new NonFiniteGradientError(norm, this.t + 1);
    const { maxGradNorm, beta1: b1, beta2: b2, eps, weightDecay: wd } = this.config;
    const t = this.t + 1;
    const lr = learningRate(this.config.lr, this.config.schedule, t);
    const scale = maxGradNorm > 0 && norm > maxGradNorm ? maxGradNorm / norm : 1;
    const base = { scale, b1, b2, stepSize: lr / (1 - b1 ** t), bc2: 1 - b2 ** t, eps };
    for (const n of names) {
      const keep = wd > 0 && this.shapes[n].length >= 2 ? 1 - lr * wd : 1;
      adamWUpdate(this.params[n], grads[n], this.m[n], this.v[n], { ...base, keep });
    }
    this.t = t;
    return { step: t, lr, gradNorm: norm };
  }

  /** Copies of the step count and moments. */
  exportState(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const n of Object.keys(this.params)) {
      m[n] = this.m[n].slice();
      v[n] = this.v[n].slice();
    }
    return { step: this.t, m, v };
  }

  /** Restores a state from `exportState` (same parameter names and sizes); the arrays are copied. */
  importState(state: AdamWState): void {
    checkAdamWState(state, Object.fromEntries(Object.entries(this.params).map(([n, p]) => [n, p.length])));
    for (const n of Object.keys(this.params)) {
      this.m[n].set(state.m[n]);
      this.v[n].set(state.v[n]);
    }
    this.t = state.step;
  }
}
