/**
 * The onnxruntime side of training, on whatever thread creates it (OrtTrainer puts it in a worker_thread,
 * because `session.run()` computes synchronously on the calling thread): the parameters, their AdamW state
 * (ArrayAdamW, in place), the accumulated gradients, and two sessions over the graphs of
 * models/onnx/train-graphs.ts.
 *
 * A micro-batch is two calls: `forward(rows)` returns the log-probs [rows, T] (the caller evaluates the
 * loss and dL/dlogprobs), then `backward(cotangent)` runs the gradient graph on the same rows and adds
 * the parameter gradients to the accumulators. When the cotangent is known before the forward (a loss
 * linear in the log-probs, such as the supervised NLL), `forwardBackward(rows, cotangent)` does both in
 * one run of the gradient graph, which also outputs the log-probs. `step()` applies AdamW and clears them.
 *
 * Rows run in chunks of `chunkRows`, each trimmed to its own longest prompt and response (so padding to a
 * batch-wide or configured maximum is never computed); smaller tensors also stay in cache. With
 * `sharePrefix`, the rows of a chunk that share a prompt and an image (a group's G responses, and their
 * masked view) compute that prefix once (models/shared-prefix-batch.ts); chunks of single-token prompts take
 * the full pass, whose sessions are then opened.
 */
import * as ort from 'onnxruntime-node';
import { type PolicyConfig, policyDims } from '../config.ts';
import { type Params, paramSpecs, validateParams } from '../params.ts';
import { buildPromptBatch, buildResponseBatch, buildTextBatch, patchify } from '../batch.ts';
import { ArrayAdamW, type AdamWConfigInput, type AdamWState, type StepInfo } from '../adamw.ts';
import { buildTrainGraphs, COTANGENT, gradOutputName, type GradientMode, type PolicyTrainGraphs } from '../onnx/train-graphs.ts';
import type { RowsPayload } from './types.ts';
import { addInto, copyBlock, responseWidth } from './row-blocks.ts';
import { buildSharedPrefixBatch, type SharedPrefixBatch, sharedRowInputs } from '../shared-prefix-batch.ts';

export interface OrtTrainOptions {
  /**
   * OrtTrainer only: workers that each take a share of a micro-batch's rows, their gradients summed before
   * every step (default 2: one per core of this machine; see models/trainer/README.md)
   */
  replicas?: number;
  /** onnxruntime intra-op threads of each replica (default 1; spinning is off so a sampler can share the cores) */
  threads?: number;
  /** let onnxruntime's threads spin between ops (default false: the cores are shared) */
  allowSpinning?: boolean;
  /** 'recompute' (default) or 'saved' activations, see models/onnx/train-graphs.ts */
  mode?: GradientMode;
  /** rows per onnxruntime run (default 16) */
  chunkRows?: number;
  /** compute each chunk's shared prompt prefixes once (default false; 'recompute' mode only) */
  sharePrefix?: boolean;
  /** onnxruntime profiling (bench/scaling.ts --profile): JSON traces written on close to `<profile>{forward,gradient}_<time>.json` (per replica); default off */
  profile?: string;
}

type Feeds = Record<string, ort.Tensor>;

interface Sessions {
  forward: ort.InferenceSession;
  gradient: ort.InferenceSession;
}

interface Chunk {
  start: number;
  rows: number;
  /** response length of this chunk (its longest response) */
  Lr: number;
  feeds: Feeds;
  /** the feeds are the shared-prefix graphs' */
  shared: boolean;
  /** 'saved' mode: the forward's saved activations */
  saved?: Feeds;
}

const i64 = (a: ArrayLike<number>): BigInt64Array => {
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = BigInt(a[i]);
  return out;
};

export class OrtTrainRunner {
  private readonly params: Params = {};
  private readonly paramTensors: Feeds = {};
  private readonly optimizer: ArrayAdamW;
  private grads: Record<string, Float32Array> | undefined;
  private pending: { chunks: Chunk[]; rows: number; T: number } | undefined;

  /** the full pass's sessions, with `sharePrefix` opened on first need */
  private fullSessions: Promise<Sessions> | undefined;

  private constructor(
    readonly cfg: PolicyConfig,
    params: Params,
    optimizer: AdamWConfigInput,
    private readonly graphs: PolicyTrainGraphs,
    private readonly sessions: Sessions,
    private readonly chunkRows: number,
    private readonly openFull: () => Promise<Sessions>,
    private readonly profiling = false,
  ) {
    const shapes: Record<string, number[]> = {};
    for (const s of paramSpecs(cfg)) {
      this.params[s.name] = params[s.name].slice();
      shapes[s.name] = s.shape;
      // The tensors view the parameter arrays, which AdamW updates in place: no copy per run.
      this.paramTensors[s.name] = new ort.Tensor('float32', this.params[s.name], s.shape);
    }
    this.optimizer = new ArrayAdamW(this.params, shapes, optimizer);
  }

  static async create(cfg: PolicyConfig, params: Params, optimizer: AdamWConfigInput = {}, options: OrtTrainOptions = {}): Promise<OrtTrainRunner> {
    validateParams(cfg, params, 'trainer params');
    const threads = options.threads ?? 1;
    const chunkRows = options.chunkRows ?? 16;
    if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`trainer: threads must be a positive integer, got ${threads}`);
    if (!(Number.isInteger(chunkRows) && chunkRows >= 1)) throw new Error(`trainer: chunkRows must be a positive integer, got ${chunkRows}`);
    const spin = options.allowSpinning ? '1' : '0';
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
    };
    const mode = options.mode ?? 'recompute';
    const graphs = buildTrainGraphs(cfg, mode, { sharePrefix: options.sharePrefix });
    const profiled = (name: string) => (options.profile ? { ...so, enableProfiling: true, profileFilePrefix: `${options.profile}${name}` } : so);
    const open = async (g: PolicyTrainGraphs, tag: string): Promise<Sessions> => {
      const [forward, gradient] = await Promise.all([
        ort.InferenceSession.create(g.forward, profiled(`${tag}forward`)),
        ort.InferenceSession.create(g.gradient, profiled(`${tag}gradient`)),
      ]);
      return { forward, gradient };
    };
    const sessions = await open(graphs, graphs.sharePrefix ? 'shared_' : '');
    const openFull = () => open(buildTrainGraphs(cfg, mode), '');
    return new OrtTrainRunner(cfg, params, optimizer, graphs, sessions, chunkRows, openFull, options.profile !== undefined);
  }

  /** The sessions of a chunk's pass. */
  private sessionsOf(c: Chunk): Sessions | Promise<Sessions> {
    if (c.shared || !this.graphs.sharePrefix) return this.sessions;
    this.fullSessions ??= this.openFull();
    return this.fullSessions;
  }

  get mode(): GradientMode {
    return this.graphs.mode;
  }

  private chunkFeeds(rows: RowsPayload, start: number, end: number): { feeds: Feeds; Lr: number; shared: boolean } {
    const cfg = this.cfg;
    const { nPatch, patchDim } = policyDims(cfg);
    if (this.graphs.sharePrefix) {
      let sb: SharedPrefixBatch | undefined;
      try {
        sb = buildSharedPrefixBatch(rows.images.slice(start, end), rows.prompts.slice(start, end), rows.responses.slice(start, end), cfg);
      } catch (err) {
        throw new Error(`trainer forward (rows from ${start}): ${(err as Error).message}`);
      }
      if (sb) {
        const { Bp, Lq } = sb;
        const feeds: Feeds = {
          patches: new ort.Tensor('float32', sb.patches, [Bp, nPatch, patchDim]),
          prompt: new ort.Tensor('int64', sb.prefixIds, [Bp, Lq]),
          prompt_positions: new ort.Tensor('int64', sb.prefixPositions, [Bp, Lq]),
          prompt_valid: new ort.Tensor('float32', sb.prefixKeyValid, [Bp, Lq]),
          ...this.paramTensors,
        };
        for (const x of sharedRowInputs(sb)) feeds[x.name] = new ort.Tensor(x.type, x.data, x.dims);
        return { feeds, Lr: sb.Lr, shared: true };
      }
    }
    let pb: ReturnType<typeof buildPromptBatch>;
    let rb: ReturnType<typeof buildResponseBatch>;
    try {
      pb = buildPromptBatch(rows.prompts.slice(start, end), cfg);
      rb = buildResponseBatch(rows.responses.slice(start, end), cfg);
    } catch (err) {
      throw new Error(`trainer forward (rows from ${start}): ${(err as Error).message}`);
    }
    const text = buildTextBatch(pb, rb);
    const B = end - start;
    const L = text.promptLen + text.responseLen;
    const feeds: Feeds = {
      patches: new ort.Tensor('float32', patchify(rows.images.slice(start, end), cfg), [B, nPatch, patchDim]),
      prompt: new ort.Tensor('int64', i64(pb.ids), [B, pb.length]),
      response: new ort.Tensor('int64', i64(rb.ids), [B, rb.length]),
      positions: new ort.Tensor('int64', i64(text.positions), [B, L]),
      key_valid: new ort.Tensor('float32', Float32Array.from(text.keyValid), [B, L]),
      ...this.paramTensors,
    };
    return { feeds, Lr: rb.length, shared: false };
  }

  /** T of a batch (its longest response, at least 1) after checking that the rows agree. */
  private checkRows(rows: RowsPayload, what: string): { n: number; T: number } {
    const n = rows.responses.length;
    if (n === 0) throw new Error(`trainer ${what}: no rows`);
    if (rows.images.length !== n || rows.prompts.length !== n)
      throw new Error(`trainer ${what}: ${n} responses but ${rows.images.length} images and ${rows.prompts.length} prompts`);
    return { n, T: responseWidth(rows.responses) };
  }

  /** The rows' chunks, each with its feeds. */
  private chunks(rows: RowsPayload, n: number): Chunk[] {
    const chunks: Chunk[] = [];
    for (let s = 0; s < n; s += this.chunkRows) {
      const e = Math.min(n, s + this.chunkRows);
      chunks.push({ start: s, rows: e - s, ...this.chunkFeeds(rows, s, e) });
    }
    return chunks;
  }

  /**
   * Log-probs [rows, T] of the rows' response tokens (T = the longest response, at least 1; 0 at PAD).
   * The rows are held for the next `backward`.
   */
  async forward(rows: RowsPayload): Promise<{ logprobs: Float32Array; rows: number; T: number }> {
    const { n, T } = this.checkRows(rows, 'forward');
    const logprobs = new Float32Array(n * T);
    const chunks = this.chunks(rows, n);
    for (const c of chunks) {
      const out = await (await this.sessionsOf(c)).forward.run(c.feeds);
      copyBlock(out.logprobs.data as Float32Array, logprobs, c.start, c.rows, c.Lr, T, false);
      if (this.graphs.mode === 'saved') {
        c.saved = {};
        for (const name of this.graphs.saved) c.saved[name] = out[name];
      }
    }
    this.pending = { chunks, rows: n, T };
    return { logprobs, rows: n, T };
  }

  /** Adds the parameter gradients of the held rows for `cotangent` = dL/dlogprobs [rows, T]. */
  async backward(cotangent: Float32Array): Promise<void> {
    const p = this.pending;
    if (!p) throw new Error('trainer backward: no forward to differentiate (call forward first)');
    this.pending = undefined;
    this.checkCotangent(cotangent, p.rows, p.T, 'backward');
    for (const c of p.chunks)
      this.accumulate(await (await this.sessionsOf(c)).gradient.run({ ...c.feeds, ...c.saved, [COTANGENT]: this.cotangentOf(c, cotangent, p.T) }));
  }

  /**
   * `forward` and `backward` in one run of the gradient graph, for a cotangent dL/dlogprobs [rows, T]
   * known in advance (it must not depend on the log-probs, as for a loss linear in them). Returns the
   * log-probs, as `forward` does. In 'saved' mode it runs the two graphs.
   */
  async forwardBackward(rows: RowsPayload, cotangent: Float32Array): Promise<{ logprobs: Float32Array; rows: number; T: number }> {
    if (this.graphs.mode === 'saved') {
      const out = await this.forward(rows);
      await this.backward(cotangent);
      return out;
    }
    const { n, T } = this.checkRows(rows, 'forwardBackward');
    this.pending = undefined;
    this.checkCotangent(cotangent, n, T, 'forwardBackward');
    const logprobs = new Float32Array(n * T);
    for (const c of this.chunks(rows, n)) {
      const out = await (await this.sessionsOf(c)).gradient.run({ ...c.feeds, [COTANGENT]: this.cotangentOf(c, cotangent, T) });
      copyBlock(out.logprobs.data as Float32Array, logprobs, c.start, c.rows, c.Lr, T, false);
      this.accumulate(out);
    }
    return { logprobs, rows: n, T };
  }

  private checkCotangent(cotangent: Float32Array, rows: number, T: number, what: string): void {
    if (cotangent.length !== rows * T) throw new Error(`trainer ${what}: cotangent has ${cotangent.length} values, the rows give [${rows}, ${T}]`);
  }

  /** The chunk's block [rows, Lr] of a [*, T] cotangent, as the gradient graph's input. */
  private cotangentOf(c: Chunk, cotangent: Float32Array, T: number): ort.Tensor {
    const cot = new Float32Array(c.rows * c.Lr);
    copyBlock(cot, cotangent, c.start, c.rows, c.Lr, T, true);
    return new ort.Tensor('float32', cot, [c.rows, c.Lr]);
  }

  /** Adds a gradient run's `grad.<param>` outputs to the accumulators. */
  private accumulate(out: ort.InferenceSession.ReturnType): void {
    if (!this.grads) {
      this.grads = {};
      for (const n of this.graphs.paramNames) this.grads[n] = out[gradOutputName(n)].data as Float32Array;
    } else {
      for (const n of this.graphs.paramNames) addInto(this.grads[n], out[gradOutputName(n)].data as Float32Array);
    }
  }

  /** Copies of the accumulated gradients (zeros if none). */
  gradients(): Params {
    const out: Params = {};
    for (const n of this.graphs.paramNames) out[n] = this.grads?.[n]?.slice() ?? new Float32Array(this.params[n].length);
    return out;
  }

  /** AdamW on the accumulated gradients, which are cleared (also when the step is refused). */
  step(): StepInfo {
    const g = this.takeGradients();
    if (!g) throw new Error('trainer step: no gradients accumulated since the last step');
    return this.optimizer.applyGradients(g);
  }

  /** The accumulated gradients, handed over and cleared (null if none): for a step over several replicas. */
  takeGradients(): Params | null {
    const g = this.grads;
    this.grads = undefined;
    this.pending = undefined;
    return g ?? null;
  }

  /** AdamW on given gradients (e.g. summed over replicas); the accumulators are cleared. */
  applyGradients(grads: Params): StepInfo {
    this.grads = undefined;
    this.pending = undefined;
    return this.optimizer.applyGradients(grads);
  }

  zeroGrad(): void {
    this.grads = undefined;
    this.pending = undefined;
  }

  get stepCount(): number {
    return this.optimizer.step;
  }

  getParams(): Params {
    const out: Params = {};
    for (const [n, a] of Object.entries(this.params)) out[n] = a.slice();
    return out;
  }

  setParams(params: Params): void {
    validateParams(this.cfg, params, 'trainer setParams');
    for (const [n, a] of Object.entries(this.params)) a.set(params[n]);
    this.zeroGrad();
  }

  exportState(): AdamWState {
    return this.optimizer.exportState();
  }

  importState(state: AdamWState): void {
    this.optimizer.importState(state);
  }

  /** Arrays held between calls (the pending rows and the accumulators): flat across steps. */
  heldArrays(): number {
    return (this.grads ? Object.keys(this.grads).length : 0) + (this.pending ? this.pending.chunks.length : 0);
  }

  async release(): Promise<void> {
    const all = [this.sessions, ...(this.fullSessions ? [await this.fullSessions] : [])];
    for (const s of all) {
      if (this.profiling) for (const x of [s.forward, s.gradient]) x.endProfiling();
      await s.forward.release();
      await s.gradient.release();
    }
  }
}
