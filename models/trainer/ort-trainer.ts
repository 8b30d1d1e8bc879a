/**
 * The onnxruntime trainer: parameters, AdamW state and gradient sessions live in a worker thread
 * (ort-train-worker.ts), so the main thread stays free for the stream graph while an update computes; the
 * loss (a tfjs `LossFn`, small [B, T] tensors) is evaluated here, between the worker's forward and
 * backward, and its gradient w.r.t. the log-probs goes back as the cotangent.
 *
 * Failures: an error in the worker rejects that call with the worker's message; a worker that dies
 * rejects every pending and later call (no hangs).
 *
 * @example
 * const t = await OrtTrainer.create(config, params, { lr: 1e-3 }, { threads: 2 });
 * await t.minimize(rows, loss); // { step, lr, gradNorm, loss, metrics }
 * await t.close();
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../util/ts-worker.ts';
import type { PolicyConfig } from '../config.ts';
import { type Params, validateParams } from '../params.ts';
import { buildResponseBatch } from '../batch.ts';
import { PAD_ID } from '../tokenizer.ts';
import { type AdamWConfig, type AdamWConfigInput, type AdamWState, type StepInfo, adamWConfig } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import type { TrainerCall, TrainerInit, TrainerReply } from './ort-train-protocol.ts';
import { affineMismatch, lossCotangent, lossValue } from './loss-gradient.ts';
import type { LossFn, MicroBatchResult, RowsPayload, Trainer, TrainRows } from './types.ts';

interface Forward {
  logprobs: Float32Array;
  rows: number;
  T: number;
}

/** dL/dlogprobs and, with the masked view, dL/dmaskedLogprobs as one [2B, T] cotangent (the masked rows follow). */
function joined(cotangent: Float32Array, maskedCotangent: Float32Array | undefined): Float32Array {
  if (!maskedCotangent) return cotangent;
  const out = new Float32Array(cotangent.length + maskedCotangent.length);
  out.set(cotangent);
  out.set(maskedCotangent, cotangent.length);
  return out;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  what: string;
}

type Call = TrainerCall extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

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
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  private steps: number;

  private constructor(
    readonly config: PolicyConfig,
    optimizer: AdamWConfigInput,
    private readonly worker: Worker,
  ) {
    this.optimizerConfig = adamWConfig(optimizer);
    this.steps = 0;
    worker.on('message', (m: TrainerReply) => this.onMessage(m));
    worker.on('error', (err) => this.fail(new Error(`onnxruntime trainer worker crashed: ${err.message}`)));
    worker.on('exit', (code) =>
      this.fail(new Error(this.closed ? 'onnxruntime trainer is closed' : `onnxruntime trainer worker exited unexpectedly (code ${code})`)),
    );
  }

  /** Starts the worker (which builds and compiles the training graphs); resolves when it takes calls. */
  static async create(config: PolicyConfig, params: Params, optimizer: AdamWConfigInput = {}, options: OrtTrainOptions = {}): Promise<OrtTrainer> {
    validateParams(config, params, 'trainer params');
    adamWConfig(optimizer); // a bad config fails here, before a worker starts
    const init: TrainerInit = { config, params, optimizer, options };
    const worker = startTsWorker(new URL('./ort-train-worker.ts', import.meta.url), init);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: TrainerReply) => {
        if (m.type === 'ready') done(undefined);
        else if (m.type === 'fatal') done(new Error(m.message));
      };
      const onError = (err: Error) => done(new Error(`onnxruntime trainer worker failed to start: ${err.message}`));
      const onExit = (code: number) => done(new Error(`onnxruntime trainer worker exited during start-up (code ${code})`));
      const done = (err: Error | undefined) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        if (err) {
          void worker.terminate();
          reject(err);
        } else resolve();
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
    return new OrtTrainer(config, optimizer, worker);
  }

  private onMessage(m: TrainerReply): void {
    if (m.type === 'ready') return;
    if (m.type === 'fatal') {
      this.fail(new Error(m.message));
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(new Error(`${p.what}: ${m.message}`));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(new Error(`${p.what}: ${err.message}`));
    this.pending.clear();
  }

  private call<R>(msg: Call, transfer: ArrayBuffer[] = []): Promise<R> {
    const what = `trainer ${msg.method}`;
    if (this.failure) return Promise.reject(new Error(`${what}: ${this.failure.message}`));
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, what });
      try {
        this.worker.postMessage({ ...msg, id }, transfer);
      } catch (err) {
        this.pending.delete(id);
        reject(new Error(`${what}: ${(err as Error).message}`));
      }
    });
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
    const fwd = await this.call<Forward>({ method: 'forward', rows: payload });
    if (fwd.T !== T) throw new Error(`trainer: the forward gave ${fwd.T} response positions, expected ${T}`);
    const masked = rows.maskedImages ? fwd.logprobs.subarray(n, 2 * n) : undefined;
    const r = lossCotangent(fwd.logprobs.subarray(0, n), masked, mask, B, T, loss);
    const cotangent = joined(r.cotangent, r.maskedCotangent);
    await this.call({ method: 'backward', cotangent }, [cotangent.buffer as ArrayBuffer]);
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
    const fwd = await this.call<Forward>({ method: 'forwardBackward', rows: payload, cotangent }, [cotangent.buffer as ArrayBuffer]);
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
    const info = await this.call<StepInfo>({ method: 'step' });
    this.steps = info.step;
    return info;
  }

  async zeroGrad(): Promise<void> {
    await this.call({ method: 'zeroGrad' });
  }

  async minimize<M>(rows: TrainRows, loss: LossFn<M>): Promise<StepInfo & MicroBatchResult<M>> {
    try {
      const r = await this.accumulate(rows, loss);
      return { ...(await this.step()), ...r };
    } catch (err) {
      if (!this.failure) await this.zeroGrad();
      throw err;
    }
  }

  get stepCount(): number {
    return this.steps;
  }

  /** The accumulated gradients (zeros if none), for tests and diagnostics. */
  gradients(): Promise<Params> {
    return this.call({ method: 'gradients' });
  }

  /** Arrays the worker holds between calls (flat across steps). */
  heldArrays(): Promise<number> {
    return this.call({ method: 'heldArrays' });
  }

  getParams(): Promise<Params> {
    return this.call({ method: 'getParams' });
  }

  async setParams(params: Params): Promise<void> {
    validateParams(this.config, params, 'trainer setParams');
    await this.call({ method: 'setParams', params });
  }

  exportOptimizerState(): Promise<AdamWState> {
    return this.call({ method: 'exportState' });
  }

  async importOptimizerState(state: AdamWState): Promise<void> {
    await this.call({ method: 'importState', state });
    this.steps = state.step;
  }

  /** Releases the sessions and stops the worker; calls already made finish first (messages are ordered). */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure) {
      this.closed = true;
      await this.worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    try {
      await this.call({ method: 'close' });
    } finally {
      this.closed = true;
    }
    await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    await this.worker.terminate();
  }
}
