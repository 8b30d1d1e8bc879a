/**
 * The onnxruntime side of the policy: three sessions (teacher-forced log-probs, prefill, decoding step)
 * over graphs whose weights are inputs, plus the decoding loop. Runs on whatever thread creates it: the
 * engine puts it in a worker_thread, because `session.run()` computes synchronously on the calling thread.
 *
 * Sampling: the Bp distinct prompts are prefilled once, their caches copied to the Bp * G response rows.
 * Decoding cache: per decoder layer, keys [rows, h, k, T] (transposed, as the graph consumes them) and
 * values [rows, h, T, k] in JS buffers sized for the whole response (T = image + prompt + maxNewTokens - 1)
 * and reused across calls. The step graph returns only the new token's key/value, written here into its
 * slot; unwritten slots are masked. So no step copies the cache (a growing Concat would copy it every
 * step). Rows of finished responses are dropped from the batch once they are a quarter of it.
 */
import * as ort from 'onnxruntime-node';
import { Rng } from '../../util/rng.ts';
import { type PolicyConfig, policyDims } from '../config.ts';
import { buildPromptBatch, buildResponseBatch, buildTextBatch, patchify, type PromptBatch } from '../batch.ts';
import type { Params } from '../params.ts';
import { PAD_ID } from '../tokenizer.ts';
import { buildSharedPrefixBatch, type SharedPrefixBatch, sharedRowInputs } from '../shared-prefix-batch.ts';
import { buildPolicyGraphs, cacheNames, type PolicyGraph } from '../onnx/policy-graphs.ts';
import { buildSharedPrefixGraph, prefixNames } from '../onnx/shared-prefix-graph.ts';
import { checkSamplingOptions, type SamplingOptions } from './sampler.ts';
import {
  collectResponses,
  chooseTokens,
  dropFinishedRows,
  expandRows,
  initialCacheValid,
  startDecoding,
  writeSlot,
  type Decoded,
  type ResponseCache,
  type SamplingShape,
} from './decoding.ts';
import { packWeights, unpackWeights, type WeightSnapshot } from './weights.ts';
import { LOGPROB_BATCH_ROWS } from './parts.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, WeightSlot } from './types.ts';

type Feeds = Record<string, ort.Tensor>;

/** Decoding steps with rows x dModel up to this run on one intra-op thread (16 rows at d 128, 4 at d 512). */
const SMALL_STEP_WIDTH = 2048;

interface LoadedWeights {
  version: number;
  tensors: Map<string, ort.Tensor>;
}

const i64 = (a: ArrayLike<number>): BigInt64Array => {
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = BigInt(a[i]);
  return out;
};

function checkImages(what: string, images: readonly unknown[], rows: number): void {
  if (!Array.isArray(images) || images.length !== rows)
    throw new Error(`${what}: ${rows} prompts need ${rows} images, got ${Array.isArray(images) ? images.length : typeof images}`);
}

export class OrtPolicyRunner {
  private weights: LoadedWeights | undefined;
  /** The latest `retainVersions` policy snapshots, oldest first, for log-probs pinned to a version. */
  private readonly retained: LoadedWeights[] = [];
  private reference: LoadedWeights | undefined;
  /** Cache buffers of finished calls, reused: fresh 10+ MB arrays cost page faults on every call. */
  private readonly spare: Float32Array[] = [];

  private constructor(
    readonly cfg: PolicyConfig,
    private readonly sessions: Record<'logprobs' | 'prefill' | 'step' | 'shared', { session: ort.InferenceSession; graph: PolicyGraph }> & {
      /** the step graph on 1 intra-op thread, for small decoding batches (when intraOpThreads > 1) */
      smallStep?: { session: ort.InferenceSession; graph: PolicyGraph };
    },
    private readonly opts: Required<Omit<EngineOptions, 'workers'>>,
  ) {}

  static async create(cfg: PolicyConfig, options: EngineOptions = {}): Promise<OrtPolicyRunner> {
    const opts: Required<Omit<EngineOptions, 'workers'>> = {
      intraOpThreads: options.intraOpThreads ?? 2,
      interOpThreads: options.interOpThreads ?? 1,
      allowSpinning: options.allowSpinning ?? false,
      logprobBatchRows: options.logprobBatchRows ?? LOGPROB_BATCH_ROWS,
      retainVersions: options.retainVersions ?? 2,
      profile: options.profile ?? '',
    };
    if (!(Number.isInteger(opts.retainVersions) && opts.retainVersions >= 1))
      throw new Error(`engine: retainVersions must be a positive integer, got ${opts.retainVersions}`);
    const spin = opts.allowSpinning ? '1' : '0';
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.intraOpThreads,
      interOpNumThreads: opts.interOpThreads,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
    };
    const graphs = buildPolicyGraphs(cfg);
    const profiled = (g: PolicyGraph) => (opts.profile ? { enableProfiling: true, profileFilePrefix: `${opts.profile}${g.kind}` } : {});
    const open = async (g: PolicyGraph) => ({ session: await ort.InferenceSession.create(g.bytes, { ...sessionOptions, ...profiled(g) }), graph: g });
    const sessions = {
      logprobs: await open(graphs.logprobs),
      prefill: await open(graphs.prefill),
      step: await open(graphs.step),
      shared: await open(buildSharedPrefixGraph(cfg)),
    };
    if (opts.intraOpThreads === 1 || opts.profile) return new OrtPolicyRunner(cfg, sessions, opts);
    const smallStep = { session: await ort.InferenceSession.create(graphs.step.bytes, { ...sessionOptions, intraOpNumThreads: 1 }), graph: graphs.step };
    return new OrtPolicyRunner(cfg, { ...sessions, smallStep }, opts);
  }

  /**
   * Installs a weight snapshot as the latest policy (or, with slot 'reference', as the frozen reference
   * policy); calls already running keep the snapshot they started with.
   */
  setWeights(snap: WeightSnapshot, slot: WeightSlot = 'policy'): void {
    const tensors = new Map<string, ort.Tensor>();
    for (const p of unpackWeights(this.cfg, snap.buffer)) tensors.set(p.name, new ort.Tensor('float32', p.data, p.shape));
    const loaded = { version: snap.version, tensors };
    if (slot === 'reference') {
      this.reference = loaded;
      return;
    }
    this.weights = loaded;
    const same = this.retained.findIndex((w) => w.version === snap.version);
    if (same >= 0) this.retained.splice(same, 1);
    this.retained.push(loaded);
    while (this.retained.length > this.opts.retainVersions) this.retained.shift();
  }

  get version(): number | undefined {
    return this.weights?.version;
  }

  /**
   * A copy of a retained version's weights, packed in `paramSpecs` order (see weights.ts): how the one
   * holder of each version's weights outside the trainer gives them back for a checkpoint.
   */
  getWeights(version: number): Float32Array {
    const w = this.select(version, 'getWeights');
    const params: Params = {};
    for (const [name, t] of w.tensors) params[name] = t.data as Float32Array;
    return new Float32Array(packWeights(this.cfg, params, w.version).buffer);
  }

  private current(what: string): LoadedWeights {
    if (!this.weights) throw new Error(`${what}: the engine has no weights yet (call setWeights first)`);
    return this.weights;
  }

  private withParams(w: LoadedWeights, graph: PolicyGraph, feeds: Feeds): Feeds {
    for (const n of graph.paramNames) feeds[n] = w.tensors.get(n) as ort.Tensor;
    return feeds;
  }

  /** The snapshot a log-prob request asks for: the latest, the reference, or a retained version. */
  private select(which: LogProbRequest['weights'], what = 'logProbs'): LoadedWeights {
    if (which === undefined || which === 'latest') return this.current(what);
    if (which === 'reference') {
      if (!this.reference) throw new Error(`${what}: no reference weights were set (setReferenceWeights)`);
      return this.reference;
    }
    const w = this.retained.find((r) => r.version === which);
    if (!w) {
      const held = this.retained.map((r) => r.version).join(', ');
      throw new Error(`${what}: policy version ${which} is no longer held (held: ${held || 'none'}; raise retainVersions)`);
    }
    return w;
  }

  /** Teacher-forced log-probs (and entropy) of given responses. */
  async logProbs(req: LogProbRequest, first = 0): Promise<LogProbResult> {
    const w = this.select(req.weights);
    const rows = req.prompts.length;
    checkImages('logProbs', req.images, rows);
    if (!Array.isArray(req.responses) || req.responses.length !== rows)
      throw new Error(`logProbs: ${rows} prompts need ${rows} responses, got ${req.responses?.length}`);
    const logprobs: Float32Array[] = [];
    const entropy: Float32Array[] = [];
    const step = this.opts.logprobBatchRows;
    for (let s = 0; s < rows; s += step) {
      const e = Math.min(rows, s + step);
      const chunk = [req.images.slice(s, e), req.prompts.slice(s, e), req.responses.slice(s, e)] as const;
      const r = req.sharePrefix ? await this.sharedPrefixChunk(w, ...chunk, first + s) : await this.logProbChunk(w, ...chunk, first + s);
      logprobs.push(...r.logprobs);
      entropy.push(...r.entropy);
    }
    return req.withEntropy ? { logprobs, entropy, version: w.version } : { logprobs, version: w.version };
  }

  private async logProbChunk(
    w: LoadedWeights,
    images: LogProbRequest['images'],
    prompts: LogProbRequest['prompts'],
    responses: LogProbRequest['responses'],
    offset: number,
  ) {
    const cfg = this.cfg;
    const { nPatch, patchDim } = policyDims(cfg);
    const B = prompts.length;
    let promptBatch: ReturnType<typeof buildPromptBatch>;
    let responseBatch: ReturnType<typeof buildResponseBatch>;
    try {
      promptBatch = buildPromptBatch(prompts, cfg);
      responseBatch = buildResponseBatch(responses, cfg);
    } catch (err) {
      throw new Error(`logProbs (rows from ${offset}): ${(err as Error).message}`);
    }
    const text = buildTextBatch(promptBatch, responseBatch);
    const Lp = text.promptLen;
    const Lr = text.responseLen;
    const feeds: Feeds = {
      patches: new ort.Tensor('float32', patchify(images, cfg), [B, nPatch, patchDim]),
      prompt: new ort.Tensor('int64', i64(promptBatch.ids), [B, Lp]),
      response: new ort.Tensor('int64', i64(responseBatch.ids), [B, Lr]),
      positions: new ort.Tensor('int64', i64(text.positions), [B, Lp + Lr]),
      key_valid: new ort.Tensor('float32', Float32Array.from(text.keyValid), [B, Lp + Lr]),
    };
    const { session, graph } = this.sessions.logprobs;
    const out = await session.run(this.withParams(w, graph, feeds));
    const lp = out.logprobs.data as Float32Array;
    const ent = out.entropy.data as Float32Array;
    const rowsOf = (a: Float32Array) => responses.map((r, b) => a.slice(b * Lr, b * Lr + r.length));
    return { logprobs: rowsOf(lp), entropy: rowsOf(ent) };
  }

  /**
   * Several log-prob requests in one call (e.g. a step's masked view and its reference), one after another:
   * each result is the one `logProbs` gives for that request.
   */
  async logProbViews(requests: readonly LogProbRequest[], first: readonly number[] = []): Promise<LogProbResult[]> {
    if (!Array.isArray(requests)) throw new Error('logProbViews: requests must be a list');
    const out: LogProbResult[] = [];
    for (const [i, r] of requests.entries()) {
      try {
        out.push(await this.logProbs(r, first[i] ?? 0));
      } catch (err) {
        throw new Error(`request ${i}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /**
   * The teacher-forced pass with the prefix shared (LogProbRequest.sharePrefix): consecutive rows with the
   * same image and prompt share one prefix, whose keys and values the prefill graph computes once over the
   * image and the prompt without its last token; each row then runs that token and its response against it
   * (models/onnx/shared-prefix-graph.ts). Prompts of a single token have no prefix: the full pass.
   */
  private async sharedPrefixChunk(
    w: LoadedWeights,
    images: LogProbRequest['images'],
    prompts: LogProbRequest['prompts'],
    responses: LogProbRequest['responses'],
    offset: number,
  ) {
    const cfg = this.cfg;
    const { nPatch, patchDim } = policyDims(cfg);
    let sb: SharedPrefixBatch | undefined;
    try {
      sb = buildSharedPrefixBatch(images, prompts, responses, cfg);
    } catch (err) {
      throw new Error(`logProbs (rows from ${offset}): ${(err as Error).message}`);
    }
    if (!sb) return this.logProbChunk(w, images, prompts, responses, offset);
    const { Bp, Lq, S0, Lr } = sb;
    const prefill = this.sessions.prefill;
    const pre = await prefill.session.run(
      this.withParams(w, prefill.graph, {
        patches: new ort.Tensor('float32', sb.patches, [Bp, nPatch, patchDim]),
        prompt: new ort.Tensor('int64', sb.prefixIds, [Bp, Lq]),
        positions: new ort.Tensor('int64', sb.prefixPositions, [Bp, Lq]),
        key_valid: new ort.Tensor('float32', sb.prefixKeyValid, [Bp, Lq]),
      }),
    );
    const feeds: Feeds = { prefix_valid: new ort.Tensor('float32', sb.prefixValid, [Bp, S0]) };
    for (const x of sharedRowInputs(sb)) feeds[x.name] = new ort.Tensor(x.type, x.data, x.dims);
    for (let i = 0; i < cfg.nLayers; i++) {
      feeds[prefixNames(i).kT] = pre[cacheNames(i).kT];
      feeds[prefixNames(i).v] = pre[cacheNames(i).v];
    }
    const { session, graph } = this.sessions.shared;
    const out = await session.run(this.withParams(w, graph, feeds));
    const lp = out.logprobs.data as Float32Array;
    const ent = out.entropy.data as Float32Array;
    const rowsOf = (a: Float32Array) => responses.map((r, b) => a.slice(b * Lr, b * Lr + r.length));
    return { logprobs: rowsOf(lp), entropy: rowsOf(ent) };
  }

  /**
   * Samples `n` responses per prompt with a key/value cache: check the request and size the call once,
   * prefill the distinct prompts, copy their caches to the response rows, then decode token by token.
   */
  async sample(req: SampleRequest, first = 0): Promise<SampleResult> {
    if (first === 0) return this.samplePart(req);
    // A part of a larger request (an engine worker's): errors name where its prompts start.
    return this.samplePart(req).catch((err: Error) => {
      throw new Error(err.message.replace(/^sample: /, `sample (prompts from ${first}): `));
    });
  }

  private async samplePart(req: SampleRequest): Promise<SampleResult> {
    const w = this.select(req.weights, 'sample');
    const sampling: SamplingOptions = { temperature: req.temperature ?? 1, topK: req.topK ?? 0, topP: req.topP ?? 1 };
    checkSamplingOptions(sampling);
    const { prompts, shape } = this.planSampling(req);
    const prefill = await this.prefill(w, req.images, prompts, shape);
    const held: Float32Array[] = [];
    try {
      const cache = this.responseCache(prefill.out, shape, held);
      const decoded = await this.decode(w, req.seed, req.promptOffset ?? 0, sampling, prompts, prefill, cache, shape);
      const responses = collectResponses(decoded, shape, w.version);
      const tokens = responses.reduce((sum, r) => sum + r.length, 0);
      return { responses, version: w.version, tokens, stepRows: decoded.stepRows };
    } finally {
      this.spare.push(...held);
      this.spare.splice(0, Math.max(0, this.spare.length - 4 * this.cfg.nLayers));
    }
  }

  /** Checks a sampling request and computes the sizes of the call. */
  private planSampling(req: SampleRequest): { prompts: PromptBatch; shape: SamplingShape } {
    const cfg = this.cfg;
    const { nPatch, headDim, maxTextLen } = policyDims(cfg);
    const n = req.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`sample: n must be a positive integer, got ${n}`);
    if (!Number.isSafeInteger(req.seed)) throw new Error(`sample: seed must be an integer, got ${req.seed}`);
    const offset = req.promptOffset ?? 0;
    if (!(Number.isSafeInteger(offset) && offset >= 0)) throw new Error(`sample: promptOffset must be a non-negative integer, got ${offset}`);
    checkImages('sample', req.images, req.prompts.length);
    let prompts: PromptBatch;
    try {
      prompts = buildPromptBatch(req.prompts, cfg);
    } catch (err) {
      throw new Error(`sample: ${(err as Error).message}`);
    }
    const longest = prompts.length - Math.min(...prompts.pads);
    const maxNew = req.maxNewTokens ?? cfg.maxResponseLen;
    if (!(Number.isInteger(maxNew) && maxNew >= 1 && maxNew <= cfg.maxResponseLen)) {
      throw new Error(`sample: maxNewTokens must be an integer in [1, maxResponseLen ${cfg.maxResponseLen}], got ${maxNew}`);
    }
    if (longest + maxNew > maxTextLen) throw new Error(`sample: prompt of ${longest} tokens + ${maxNew} new tokens exceed the ${maxTextLen} text positions`);
    const prefixLen = nPatch + prompts.length;
    const cacheLen = prefixLen + maxNew - 1; // the last token is never fed back
    return {
      prompts,
      shape: {
        prompts: req.prompts.length,
        n,
        rows: req.prompts.length * n,
        promptLen: prompts.length,
        prefixLen,
        cacheLen,
        maxNew,
        heads: cfg.nHeads,
        headDim,
        vocab: cfg.vocabSize,
        nPatch,
        rowFloats: cfg.nHeads * headDim * cacheLen,
      },
    };
  }

  /** Runs the prompt graph once per distinct prompt: the first logits and the prompt's keys and values. */
  private async prefill(w: LoadedWeights, images: SampleRequest['images'], prompts: PromptBatch, shape: SamplingShape) {
    const { prompts: count, promptLen } = shape;
    const positions = new Int32Array(count * promptLen);
    const keyValid = new Float32Array(count * promptLen);
    for (let b = 0; b < count; b++) {
      for (let j = 0; j < promptLen; j++) {
        positions[b * promptLen + j] = Math.max(0, j - prompts.pads[b]);
        keyValid[b * promptLen + j] = prompts.ids[b * promptLen + j] === PAD_ID ? 0 : 1;
      }
    }
    const { nPatch, patchDim } = policyDims(this.cfg);
    const { session, graph } = this.sessions.prefill;
    const out = await session.run(
      this.withParams(w, graph, {
        patches: new ort.Tensor('float32', patchify(images, this.cfg), [count, nPatch, patchDim]),
        prompt: new ort.Tensor('int64', i64(prompts.ids), [count, promptLen]),
        positions: new ort.Tensor('int64', i64(positions), [count, promptLen]),
        key_valid: new ort.Tensor('float32', keyValid, [count, promptLen]),
      }),
    );
    return { out, logits: out.logits.data as Float32Array, keyValid };
  }

  /**
   * Per decoder layer, the keys [rows, H, k, T] and values [rows, H, T, k] of every response row, in
   * reused buffers (listed in `held` until the call ends), the prompt's slots copied from the prefill.
   */
  private responseCache(prefill: ort.InferenceSession.OnnxValueMapType, shape: SamplingShape, held: Float32Array[]): ResponseCache {
    const { rows, n, heads, headDim, prefixLen, cacheLen } = shape;
    const buffer = (size: number): Float32Array => {
      const k = this.spare.findIndex((b) => b.length >= size);
      const buf = k >= 0 ? this.spare.splice(k, 1)[0] : new Float32Array(size);
      held.push(buf);
      return buf.length === size ? buf : buf.subarray(0, size);
    };
    const cache: ResponseCache = { keys: [], values: [] };
    for (let layer = 0; layer < this.cfg.nLayers; layer++) {
      const names = cacheNames(layer);
      const keys = buffer(rows * heads * headDim * cacheLen);
      const values = buffer(rows * heads * cacheLen * headDim);
      // Slots past the prompt start at zero (they are masked until written; zero keeps reused buffers clean).
      expandRows(prefill[names.kT].data as Float32Array, keys, rows, n, heads * headDim, prefixLen, cacheLen); // [Bp, H, k, S0] -> [N, H, k, T]
      expandRows(prefill[names.v].data as Float32Array, values, rows, n, heads, prefixLen * headDim, cacheLen * headDim); // [Bp, H, S0, k] -> [N, H, T, k]
      cache.keys.push(keys);
      cache.values.push(values);
    }
    return cache;
  }

  /**
   * The decoding loop: choose a token for every unfinished response; stop when all are finished or long
   * enough; drop finished rows from the batch once they are a quarter of it; run one step of the graph for
   * the next logits.
   */
  private async decode(
    w: LoadedWeights,
    seed: number,
    promptOffset: number,
    sampling: SamplingOptions,
    prompts: PromptBatch,
    prefill: { logits: Float32Array; keyValid: Float32Array },
    cache: ResponseCache,
    shape: SamplingShape,
  ): Promise<Decoded> {
    const decoded = startDecoding(shape, prompts.pads);
    const cacheValid = initialCacheValid(shape, prefill.keyValid);
    const rngs = Array.from({ length: shape.rows }, (_, r) => Rng.derive(seed, 'sample', promptOffset + Math.floor(r / shape.n), r % shape.n));
    // Rows of the step graph's batch: batchRows[i] is the response in row i.
    let batchRows: Int32Array = Int32Array.from({ length: shape.rows }, (_, r) => r);
    let logits = prefill.logits; // [Bp, V] at t = 0 (the row of response r is floor(r / G)), then [batch rows, V]
    for (let t = 0; t < shape.maxNew; t++) {
      const unfinished = chooseTokens(decoded, batchRows, logits, t, shape, sampling, rngs);
      if (unfinished === 0 || t === shape.maxNew - 1) break;
      if (unfinished <= batchRows.length * 0.75) batchRows = dropFinishedRows(batchRows, decoded.done, cache, cacheValid, shape);
      logits = await this.decodeStep(w, batchRows, decoded, t, cache, cacheValid, shape);
    }
    return decoded;
  }

  /**
   * One step of the graph over the batch rows: feeds each row's token t, writes the new keys and values
   * into their slot of the cache (the graph returns only those: no step copies the cache) and marks the
   * slot valid for unfinished rows. Returns the next logits, [batch rows, V].
   */
  private async decodeStep(
    w: LoadedWeights,
    batchRows: Int32Array,
    decoded: Decoded,
    t: number,
    cache: ResponseCache,
    cacheValid: Float32Array,
    shape: SamplingShape,
  ): Promise<Float32Array> {
    const { heads, headDim, cacheLen, rowFloats } = shape;
    const B = batchRows.length;
    decoded.stepRows += B;
    const token = new BigInt64Array(B);
    const position = new BigInt64Array(B);
    for (let i = 0; i < B; i++) {
      const r = batchRows[i];
      token[i] = BigInt(decoded.done[r] ? PAD_ID : decoded.tokens[r][t]);
      position[i] = BigInt(decoded.promptTokens[r] + t);
    }
    const feeds: Feeds = {
      token: new ort.Tensor('int64', token, [B, 1]),
      position: new ort.Tensor('int64', position, [B, 1]),
      cache_valid: new ort.Tensor('float32', cacheValid.subarray(0, B * cacheLen), [B, cacheLen]),
    };
    for (let layer = 0; layer < cache.keys.length; layer++) {
      const names = cacheNames(layer);
      feeds[names.pastKT] = new ort.Tensor('float32', cache.keys[layer].subarray(0, B * rowFloats), [B, heads, headDim, cacheLen]);
      feeds[names.pastV] = new ort.Tensor('float32', cache.values[layer].subarray(0, B * rowFloats), [B, heads, cacheLen, headDim]);
    }
    // A step over few rows is bound by per-node costs that a second thread only adds to (docs/benchmarks.md, "Scaling").
    const small = B * this.cfg.dModel <= SMALL_STEP_WIDTH && this.sessions.smallStep;
    const { session, graph } = small || this.sessions.step;
    const out = await session.run(this.withParams(w, graph, feeds));
    const slot = shape.prefixLen + t;
    for (let layer = 0; layer < cache.keys.length; layer++) {
      const names = cacheNames(layer);
      writeSlot(out[names.newKT].data as Float32Array, cache.keys[layer], B * heads * headDim, 1, cacheLen, slot); // [B, H, k, 1]
      writeSlot(out[names.newV].data as Float32Array, cache.values[layer], B * heads, headDim, cacheLen, slot); // [B, H, 1, k]
    }
    for (let i = 0; i < B; i++) if (!decoded.done[batchRows[i]]) cacheValid[i * cacheLen + slot] = 1;
    return out.logits.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const s of Object.values(this.sessions)) {
      if (this.opts.profile) s.session.endProfiling();
      await s.session.release();
    }
  }
}
