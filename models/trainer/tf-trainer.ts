/**
 * The TensorFlow.js trainer: TfPolicy's variables, the tfjs AdamW, gradients by tfjs's tape through the
 * whole forward and the loss. The reference for the onnxruntime trainer, and the GPU path (tfjs-node-gpu).
 * Runs on the calling thread; gradients accumulate as tensors between `step`s.
 *
 * @example
 * const t = new TfTrainer(config, params, { lr: 1e-3 });
 * await t.minimize(rows, loss);
 */
import { tf } from '../../util/tf-backend.ts';
import type { PolicyConfig } from '../config.ts';
import type { Params } from '../params.ts';
import { TfPolicy } from '../policy-tf.ts';
import { AdamW, lossGradients } from '../optimizer.ts';
import type { AdamWConfig, AdamWConfigInput, AdamWState, StepInfo } from '../adamw.ts';
import { checkTrainRows, type LossFn, type MicroBatchResult, type Trainer, type TrainRows } from './types.ts';

export class TfTrainer implements Trainer {
  readonly engine = 'tfjs' as const;
  readonly config: PolicyConfig;
  readonly policy: TfPolicy;
  private readonly optimizer: AdamW;
  private readonly owned: boolean;
  private sums: Record<string, tf.Tensor> | undefined;

  constructor(config: PolicyConfig, params: Params, optimizer?: AdamWConfigInput);
  /** A trainer over an existing policy and its optimizer (not released by `close`). */
  constructor(policy: TfPolicy, optimizer: AdamW);
  constructor(a: PolicyConfig | TfPolicy, b: Params | AdamW, c: AdamWConfigInput = {}) {
    if (a instanceof TfPolicy) {
      this.policy = a;
      this.optimizer = b as AdamW;
      this.owned = false;
    } else {
      this.policy = new TfPolicy(a, b as Params);
      this.optimizer = new AdamW(this.policy.vars, c);
      this.owned = true;
    }
    this.config = this.policy.config;
  }

  get optimizerConfig(): AdamWConfig {
    return this.optimizer.config;
  }

  async accumulate<M>(rows: TrainRows, loss: LossFn<M>): Promise<MicroBatchResult<M>> {
    checkTrainRows(rows);
    let metrics: M | undefined;
    const r = lossGradients(this.policy.vars, () => {
      const { logprobs, mask } = this.policy.logProbs({ images: rows.images, promptIds: rows.prompts, responseIds: rows.responses });
      const maskedLogprobs = rows.maskedImages
        ? this.policy.logProbs({ images: rows.maskedImages, promptIds: rows.prompts, responseIds: rows.responses }).logprobs
        : undefined;
      const out = loss({ logprobs, mask, maskedLogprobs });
      metrics = out.metrics;
      return out.loss;
    });
    if (!this.sums) this.sums = r.grads;
    else {
      for (const [n, g] of Object.entries(r.grads)) {
        const s = tf.add(this.sums[n], g);
        tf.dispose([this.sums[n], g]);
        this.sums[n] = s;
      }
    }
    return { loss: r.loss, metrics };
  }

  async step(): Promise<StepInfo> {
    const sums = this.sums;
    this.sums = undefined;
    if (!sums) throw new Error('trainer step: no gradients accumulated since the last step');
    try {
      return this.optimizer.applyGradients(sums);
    } finally {
      tf.dispose(Object.values(sums));
    }
  }

  async zeroGrad(): Promise<void> {
    if (this.sums) tf.dispose(Object.values(this.sums));
    this.sums = undefined;
  }

  async minimize<M>(rows: TrainRows, loss: LossFn<M>): Promise<StepInfo & MicroBatchResult<M>> {
    try {
      const r = await this.accumulate(rows, loss);
      return { ...(await this.step()), ...r };
    } catch (err) {
      await this.zeroGrad();
      throw err;
    }
  }

  get stepCount(): number {
    return this.optimizer.step;
  }

  /** The accumulated gradients (zeros if none), for tests and diagnostics. */
  async gradients(): Promise<Params> {
    const out: Params = {};
    for (const [n, v] of Object.entries(this.policy.vars))
      out[n] = this.sums ? Float32Array.from(this.sums[n].dataSync() as Float32Array) : new Float32Array(v.size);
    return out;
  }

  async getParams(): Promise<Params> {
    return this.policy.getParams();
  }

  async setParams(params: Params): Promise<void> {
    this.policy.setParams(params);
    await this.zeroGrad();
  }

  async exportOptimizerState(): Promise<AdamWState> {
    return this.optimizer.exportState();
  }

  async importOptimizerState(state: AdamWState): Promise<void> {
    this.optimizer.importState(state);
  }

  async close(): Promise<void> {
    await this.zeroGrad();
    if (!this.owned) return;
    this.optimizer.dispose();
    this.policy.dispose();
  }
}
