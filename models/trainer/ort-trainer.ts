/**
 * The onnxruntime trainer: parameters, AdamW state and gradient sessions live in worker threads
 * (ort-train-worker.ts), so the main thread stays free for the stream graph while an update computes; the
 * loss (a tfjs `LossFn`, small [B, T] tensors) is evaluated here, between the workers' forward and
 * backward, and its gradient w.r.t. the log-probs goes back as the cotangent.
 *
 * Replicas (data parallel, default 2 of one onnxruntime thread each): every worker holds the same
 * parameters and optimizer state; a micro-batch's rows are split among them in order, each adds the
 * gradients of its share, and before a step the shares are summed here in replica order (so the result
 * does not depend on timing) and every replica applies the same AdamW step to the same sum. Two
 * one-thread replicas beat one two-thread session here: onnxruntime's elementwise ops barely use a second
 * thread (bench/trainer-replicas.ts).
 *
 * Failures (util/worker-client.ts): an error in a worker rejects that call with the worker's message,
 * prefixed with the call (`trainer step: ...`); a worker that dies rejects every pending and later call
 * (no hangs).
 *
 * @example
 * const t = await OrtTrainer.create(config, params, { lr: 1e-3 }); // 2 replicas x 1 thread
 * await t.minimize(rows, loss); // { step, lr, gradNorm, loss, metrics }
 * await t.close();
 */
import { WorkerClient } from '../../util/worker-client.ts';
import type { PolicyConfig } from '../config.ts';
import { type Params, validateParams } from '../params.ts';
import { buildPromptBatch, buildResponseBatch } from '../batch.ts';
import { PAD_ID } from '../tokenizer.ts';
import { type AdamWConfig, type AdamWConfigInput, type AdamWState, type StepInfo, adamWConfig } from '../adamw.ts';
import type { OrtTrainOptions } from './ort-train-runner.ts';
import type { TrainerCalls, TrainerInit } from './ort-train-protocol.ts';
import { addInto, copyBlock, responseWidth } from './row-blocks.ts';
import { affineMismatch, lossCotangent, lossValue } from './loss-gradient.ts';
import { checkTrainRows, type LossFn, type MicroBatchResult, type RowsPayload, type Trainer, type TrainRows } from './types.ts';

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

/** Contiguous shares of `n` rows among at most `k` replicas: [start, end) each, none empty. */
export function shares(n: number, k: number): [number, number][] {
  const parts = Math.min(n, k);
  return Array.from({ length: parts }, (_, r) => [Math.floor((r * n) / parts), Math.floor(((r + 1) * n) / parts)]);
}

/** Rows [start, end) of a payload. */
const rowsOf = (p: RowsPayload, [start, end]: [number, number]): RowsPayload => ({
  images: p.images.slice(start, end),
  prompts: p.prompts.slice(start, end),
  responses: p.responses.slice(start, end),
});

/** The [rows, Ts] block of rows [start, end) of a [*, T] matrix (Ts <= T: a share's longest response). */
function block(m: Float32Array, T: number, [start, end]: [number, number], Ts: number): Float32Array {
  const out = new Float32Array((end - start) * Ts);
  copyBlock(out, m, start, end - start, Ts, T, true);
  return out;
}

/** The replicas' gradients summed in replica order (into the first one's arrays). */
function sumInOrder(parts: Params[]): Params {
  for (const g of parts.slice(1)) for (const [name, a] of Object.entries(parts[0])) addInto(a, g[name]);
  return parts[0];
}

/** The results of calls on every replica, once all have settled; the first failure is thrown. */
async function all<R>(calls: Promise<R>[]): Promise<R[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((x) => x.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((x) => (x as PromiseFulfilledResult<R>).value);
}

/**
 * Starts one replica's worker. Its own function, and `what` a module-level one, so that nothing the
 * client keeps (its `what`) holds the context of `workerData`: the starting weights are not kept on
 * this thread for the run.
 */
function startReplica(replica: number | undefined, workerData: TrainerInit): Promise<WorkerClient<TrainerCalls>> {
  return WorkerClient.start<TrainerCalls>(new URL('./ort-train-worker.ts', import.meta.url), {
    name: replica === undefined ? 'onnxruntime trainer' : `onnxruntime trainer (replica ${replica})`,
    workerData,
    what: trainerCall,
  });
}

const trainerCall = (method: string) => `trainer ${method}`;

export class OrtTrainer implements Trainer {
  readonly engine = 'ort' as const;
  readonly optimizerConfig: AdamWConfig;
  private steps: number;

  private constructor(
    readonly config: PolicyConfig,
    optimizer: AdamWConfigInput,
    private readonly replicas: WorkerClient<TrainerCalls>[],
  ) {
    this.optimizerConfig = adamWConfig(optimizer);
    this.steps = 0;
  }

  /** Starts the workers (each builds and compiles the training graphs); resolves when they take calls. */
  static async create(config: PolicyConfig, params: Params, optimizer: AdamWConfigInput = {}, options: OrtTrainOptions = {}): Promise<OrtTrainer> {
    validateParams(config, params, 'trainer params');
    adamWConfig(optimizer); // a bad config fails here, before a worker starts
    const k = options.replicas ?? 2;
    if (!(Number.isInteger(k) && k >= 1)) throw new Error(`trainer: replicas must be a positive integer, got ${k}`);
    const started = await Promise.allSettled(Array.from({ length: k }, (_, r) => startReplica(k > 1 ? r : undefined, { config, params, optimizer, options })));
    const replicas = started.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
    const failed = started.find((x) => x.status === 'rejected');
    if (failed) {
      await Promise.all(replicas.map((c) => c.close().catch(() => undefined)));
      throw (failed as PromiseRejectedResult).reason;
    }
    return new OrtTrainer(config, optimizer, replicas);
  }

  /** Number of worker replicas. */
  get replicaCount(): number {
    return this.replicas.length;
  }

  async accumulate<M>(rows: TrainRows, loss: LossFn<M>): Promise<MicroBatchResult<M>> {
    const B = checkTrainRows(rows);
    const { rows: responses, mask, T } = responseRows(this.config, rows.responses);
    const prompts = rows.prompts.map((p) => (typeof p === 'string' ? p : Array.from(p)));
    buildPromptBatch(prompts, this.config); // checked here, where errors can name the row of the whole batch
    // The masked view is scored as extra rows of the same batch: one forward and one backward for both.
    const payload: RowsPayload = rows.maskedImages
      ? { images: [...rows.images, ...rows.maskedImages], prompts: [...prompts, ...prompts], responses: [...responses, ...responses] }
      : { images: [...rows.images], prompts, responses };
    const n = B * T;
    const parts = shares(payload.responses.length, this.replicas.length);
    if (loss.linear) return this.accumulateLinear(payload, parts, mask, B, T, !!rows.maskedImages, loss);
    const forwards = await all(parts.map((part, r) => this.replicas[r].call('forward', rowsOf(payload, part))));
    const logprobs = new Float32Array(payload.responses.length * T);
    parts.forEach(([start, end], r) => copyBlock(forwards[r].logprobs, logprobs, start, end - start, forwards[r].T, T, false));
    const masked = rows.maskedImages ? logprobs.subarray(n, 2 * n) : undefined;
    const r = lossCotangent(logprobs.subarray(0, n), masked, mask, B, T, loss);
    const cotangent = joined(r.cotangent, r.maskedCotangent);
    await all(
      parts.map((part, k) => {
        const cot = block(cotangent, T, part, forwards[k].T);
        return this.replicas[k].call('backward', cot, { transfer: [cot.buffer as ArrayBuffer] });
      }),
    );
    return { loss: r.loss, metrics: r.metrics };
  }

  /**
   * A loss declared linear in the log-probs: its gradient, taken at zero log-probs, is the cotangent of
   * one gradient run that also gives the log-probs; the loss and metrics are then evaluated on those, and
   * the declaration is checked (a false one throws, and the accumulated gradients are dropped).
   */
  private async accumulateLinear<M>(
    payload: RowsPayload,
    parts: [number, number][],
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
    const runs = await all(
      parts.map((part, k) => {
        const cot = block(cotangent, T, part, responseWidth(payload.responses.slice(...part)));
        return this.replicas[k].call('forwardBackward', { rows: rowsOf(payload, part), cotangent: cot }, { transfer: [cot.buffer as ArrayBuffer] });
      }),
    );
    const logprobs = new Float32Array(payload.responses.length * T);
    parts.forEach(([start, end], k) => copyBlock(runs[k].logprobs, logprobs, start, end - start, runs[k].T, T, false));
    const r = lossValue(logprobs.subarray(0, n), withMasked ? logprobs.subarray(n, 2 * n) : undefined, mask, B, T, loss);
    const wrong = affineMismatch(r.loss, atZero.loss, cotangent, logprobs);
    if (wrong) {
      await this.zeroGrad();
      throw new Error(`trainer: ${wrong}; the accumulated gradients were dropped`);
    }
    return r;
  }

  /** Sums the replicas' gradients in replica order and applies the same AdamW step on every replica. */
  async step(): Promise<StepInfo> {
    const parts = (await all(this.replicas.map((c) => c.call('takeGradients')))).filter((g): g is Params => g !== null);
    if (parts.length === 0) throw new Error('trainer step: no gradients accumulated since the last step');
    const sum = sumInOrder(parts);
    const infos = await all(this.replicas.map((c) => c.call('applyGradients', sum)));
    this.steps = infos[0].step;
    return infos[0];
  }

  async zeroGrad(): Promise<void> {
    await all(this.replicas.map((c) => c.call('zeroGrad')));
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

  /** The accumulated gradients summed over the replicas (zeros if none), for tests and diagnostics. */
  async gradients(): Promise<Params> {
    return sumInOrder(await all(this.replicas.map((c) => c.call('gradients'))));
  }

  /** Arrays the workers hold between calls (flat across steps). */
  async heldArrays(): Promise<number> {
    return (await all(this.replicas.map((c) => c.call('heldArrays')))).reduce((a, b) => a + b, 0);
  }

  /** Every replica's parameters (identical unless something is wrong), for tests. */
  replicaParams(): Promise<Params[]> {
    return all(this.replicas.map((c) => c.call('getParams')));
  }

  getParams(): Promise<Params> {
    return this.replicas[0].call('getParams');
  }

  async setParams(params: Params): Promise<void> {
    validateParams(this.config, params, 'trainer setParams');
    await all(this.replicas.map((c) => c.call('setParams', params)));
  }

  exportOptimizerState(): Promise<AdamWState> {
    return this.replicas[0].call('exportState');
  }

  async importOptimizerState(state: AdamWState): Promise<void> {
    await all(this.replicas.map((c) => c.call('importState', state)));
    this.steps = state.step;
  }

  /** Releases the sessions and stops the workers; calls already made finish first, later calls reject. */
  async close(): Promise<void> {
    await all(this.replicas.map((c) => c.close()));
  }
}
