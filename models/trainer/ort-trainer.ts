/**
 * The onnxruntime trainer: parameters, AdamW state and gradient sessions live in a worker thread
 * (ort-train-worker.ts), so the main thread stays free for the stream graph while an update computes; the
 * loss (a tfjs `LossFn`, small [B, T] tensors) is evaluated here, between the worker's forward and
 * backward, and its gradient w.r.t. the log-probs goes back as the cotangent.
 *
 * Failures (util/worker-client.ts): an error in the worker rejects that call with the worker's message,
 * prefixed with the call (`trainer step: ...`); a worker that dies rejects every pending and later call
 * (no hangs).
 *
 * @example
 * const t = await OrtTrainer.create(config, params, { lr: 1e-3 }, { threads: 2 });
 * await t.minimize(rows, loss); // { step, lr, gradNorm, loss, metrics }
 * await t.close();
 */
import { WorkerClient } from '../../util/worker-client.ts';
import type { PolicyConfig } from '../config.ts';
import { type Params, validateParams } from '../params.ts';
import { buildResponseBatch } from '../batch.ts';
import { PAD_ID } from '../tokenizer.ts';
import { type AdamWConfig, type AdamWConfigInput, type AdamWState, type StepInfo, adamWConfig } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import type { TrainerCalls, TrainerInit } from './ort-train-protocol.ts';
import { affineMismatch, lossCotangent, lossValue } from './loss-gradient.ts';
import type { LossFn, MicroBatchResult, RowsPayload, Trainer, TrainRows } from './types.ts';

/** dL/dlogprobs and, with the masked view, dL/dmaskedLogprobs as one [2B, T] cotangent (the masked rows follow). */
function joined(cotangent: Float32Array, maskedCotangent: Float32Array | undefined): Float32Array {
  if (!maskedCotangent) return cotangent;
  const out = new Float32Array(cotangent.length + maskedCotangent.length);
  out.set(cotangent);
  out.set(maskedCotangent, cotangent.length);
  return out;
}

/** Response rows without trailing PAD, and the [B, T] mask of their real tokens (validated on this thread). */
export function responseRows(config: PolicyConfig, responses: TrainRows['responses']): { rows: number[][]; mask: Float32Array; T: number } {
  const rb = buildResponseBatch(responses, config);
  const T = rb.length;
  const mask = new Float32Array(rb.batch * T);
  const rows: number[][] = [];
  for (let b = 0; b < rb.batch; b++) {
    const row: number[] = [];
    for (let t = 0; t < T; t++) {
      const id = rb.ids[b * T + t];
      if (id === PAD_ID) break;
      row.push(id);
      mask[b * T + t] = 1;
    }
    rows.push(row);
  }
  return { rows, mask, T };
}

export class OrtTrainer implements Trainer {
  readonly engine = 'ort' as const;
  readonly optimizerConfig: AdamWConfig;
  private steps: number;

  private constructor(
    readonly config: PolicyConfig,
    optimizer: AdamWConfigInput,
    private readonly client: WorkerClient<TrainerCalls>,
  ) {
    this.optimizerConfig = adamWConfig(optimizer);
    this.steps = 0;
  }

  /** Starts the worker (which builds and compiles the training graphs); resolves when it takes calls. */
  static async create(config: PolicyConfig, params: Params, optimizer: AdamWConfigInput = {}, options: OrtTrainOptions = {}): Promise<OrtTrainer> {
    validateParams(config, params, 'trainer params');
    adamWConfig(optimizer); // a bad config fails here, before a worker starts
    const workerData: TrainerInit = { config, params, optimizer, options };
    const client = await WorkerClient.start<TrainerCalls>(new URL('./ort-train-worker.ts', import.meta.url), {
      name: 'onnxruntime trainer',
      workerData,
      what: (method) => `trainer ${method}`,
    });
    return new OrtTrainer(config, optimizer, client);
  }

  async accumulate<M>(rows: TrainRows, loss: LossFn<M>): Promise<MicroBatchResult<M>> {
    const B = rows.responses.length;
    if (rows.images.length !== B || rows.prompts.length !== B)
      throw new Error(`trainer: ${B} responses but ${rows.images.length} images and ${rows.prompts.length} prompts`);
    if (rows.maskedImages && rows.maskedImages.length !== B) throw new Error(`trainer: ${B} rows but ${rows.maskedImages.length} masked images`);
    const { rows: responses, mask, T } = responseRows(this.config, rows.responses);
    const prompts = rows.prompts.map((p) => (typeof p === 'string' ? p : Array.from(p)));
    // The masked view is scored as extra rows of the same batch: one forward and one backward for both.
    const payload: RowsPayload = rows.maskedImages
      ? { images: [...rows.images, ...rows.maskedImages], prompts: [...prompts, ...prompts], responses: [...responses, ...responses] }
      : { images: [...rows.images], prompts, responses };
    const n = B * T;
    if (loss.linear) return this.accumulateLinear(payload, mask, B, T, !!rows.maskedImages, loss);
    const fwd = await this.client.call('forward', payload);
    if (fwd.T !== T) throw new Error(`trainer: the forward gave ${fwd.T} response positions, expected ${T}`);
    const masked = rows.maskedImages ? fwd.logprobs.subarray(n, 2 * n) : undefined;
    const r = lossCotangent(fwd.logprobs.subarray(0, n), masked, mask, B, T, loss);
    const cotangent = joined(r.cotangent, r.maskedCotangent);
    await this.client.call('backward', cotangent, { transfer: [cotangent.buffer as ArrayBuffer] });
    return { loss: r.loss, metrics: r.metrics };
  }

  /**
   * A loss declared linear in the log-probs: its gradient, taken at zero log-probs, is the cotangent of
   * one gradient run that also gives the log-probs; the loss and metrics are then evaluated on those, and
   * the declaration is checked (a false one throws, and the accumulated gradients are dropped).
   */
  private async accumulateLinear<M>(
    payload: RowsPayload,
    mask: Float32Array,
    B: number,
    T: number,
    withMasked: boolean,
    loss: LossFn<M>,
  ): Promise<MicroBatchResult<M>> {
    const n = B * T;
    const zeros = new Float32Array(n);
    const atZero = lossCotangent(zeros, withMasked ? zeros : undefined, mask, B, T, loss);
    const cotangent = joined(atZero.cotangent, atZero.maskedCotangent);
    const kept = cotangent.slice();
    const fwd = await this.client.call('forwardBackward', { rows: payload, cotangent }, { transfer: [cotangent.buffer as ArrayBuffer] });
    if (fwd.T !== T) throw new Error(`trainer: the forward gave ${fwd.T} response positions, expected ${T}`);
    const r = lossValue(fwd.logprobs.subarray(0, n), withMasked ? fwd.logprobs.subarray(n, 2 * n) : undefined, mask, B, T, loss);
    const wrong = affineMismatch(r.loss, atZero.loss, kept, fwd.logprobs);
    if (wrong) {
      await this.zeroGrad();
      throw new Error(`trainer: ${wrong}; the accumulated gradients were dropped`);
    }
    return r;
  }

  async step(): Promise<StepInfo> {
    const info = await this.client.call('step');
    this.steps = info.step;
    return info;
  }

  async zeroGrad(): Promise<void> {
    await this.client.call('zeroGrad');
  }

  async minimize<M>(rows: TrainRows, loss: LossFn<M>): Promise<StepInfo & MicroBatchResult<M>> {
    try {
      const r = await this.accumulate(rows, loss);
      return { ...(await this.step()), ...r };
    } catch (err) {
      // Drop what was accumulated; a worker that died or was closed has nothing left to drop.
      await this.zeroGrad().catch(() => undefined);
      throw err;
    }
  }

  get stepCount(): number {
    return this.steps;
  }

  /** The accumulated gradients (zeros if none), for tests and diagnostics. */
  gradients(): Promise<Params> {
    return this.client.call('gradients');
  }

  /** Arrays the worker holds between calls (flat across steps). */
  heldArrays(): Promise<number> {
    return this.client.call('heldArrays');
  }

  getParams(): Promise<Params> {
    return this.client.call('getParams');
  }

  async setParams(params: Params): Promise<void> {
    validateParams(this.config, params, 'trainer setParams');
    await this.client.call('setParams', params);
  }

  exportOptimizerState(): Promise<AdamWState> {
    return this.client.call('exportState');
  }

  async importOptimizerState(state: AdamWState): Promise<void> {
    await this.client.call('importState', state);
    this.steps = state.step;
  }

  /** Releases the sessions and stops the worker; calls already made finish first, later calls reject. */
  close(): Promise<void> {
    return this.client.close();
  }
}
