/**
 * AdamW for the policy's tf.Variables: decoupled weight decay, global gradient-norm clipping and a
 * learning-rate schedule. Its state (step count and both moments) exports to Float32Arrays for
 * checkpoints and restores exactly.
 *
 * Update at step t (1-based), for each parameter p with gradient g (after clipping):
 *   p <- p - lr_t * wd * p                       (decoupled decay; only parameters of rank >= 2)
 *   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * The same optimizer on plain Float32Arrays (for the onnxruntime trainer) is `ArrayAdamW` in adamw.ts;
 * test/models/adamw.test.ts proves the two equal step by step.
 */
import { tf } from '../util/tf-backend.ts';
import {
  type AdamWConfig,
  type AdamWConfigInput,
  type AdamWState,
  type StepInfo,
  adamWConfig,
  checkAdamWState,
  learningRate,
  NonFiniteGradientError,
} from './adamw.ts';

// The config, schedules and state format are shared with the plain-array AdamW (models/adamw.ts).
export {
  AdamWConfigSchema,
  LrScheduleSchema,
  adamWStateFromRecord,
  adamWStateToRecord,
  learningRate,
  type AdamWConfig,
  type AdamWConfigInput,
  type AdamWState,
  type LrSchedule,
  type StepInfo,
} from './adamw.ts';

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
    this.config = adamWConfig(config);
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
    const clipped = clipByGlobalNorm(
      names.map((n) => grads[n]),
      this.config.maxGradNorm,
    );
    if (!Number.isFinite(clipped.norm)) {
      tf.dispose(clipped.grads);
      throw new NonFiniteGradientError(clipped.norm, this.t + 1);
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
    checkAdamWState(state, Object.fromEntries(Object.entries(this.vars).map(([n, p]) => [n, p.size])));
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
