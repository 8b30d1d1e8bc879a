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
import { buildPromptBatch, buildResponseBatch, buildTextBatch, patchify } from '../batch.ts';
import { EOS_ID, PAD_ID } from '../tokenizer.ts';
import { buildPolicyGraphs, cacheNames, type PolicyGraph } from '../onnx/policy-graphs.ts';
import { chooseToken, checkSamplingOptions, type SamplingOptions } from './sampler.ts';
import { unpackWeights, type WeightSnapshot } from './weights.ts';
import type { EngineOptions, LogProbRequest, LogProbResult, SampleRequest, SampleResult, SampledResponse, WeightSlot } from './types.ts';

type Feeds = Record<string, ort.Tensor>;

interface LoadedWeights {
  version: number;
  tensors: Map<string, ort.Tensor>;
}

const i64 = (a: ArrayLike<number>): BigInt64Array => {
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = BigInt(a[i]);
  return out;
};

/**
 * Copies per-prompt cache rows into per-response rows: `src` is [Bp, groups, srcLen] and `dst` is
 * [Bp * G, groups, dstLen] (dstLen >= srcLen); response r takes prompt floor(r / G). Hot loops live in
 * small functions so that V8 optimises them.
 */
function expandRows(src: Float32Array, dst: Float32Array, N: number, G: number, groups: number, srcLen: number, dstLen: number): void {
  for (let r = 0; r < N; r++) {
    const b = Math.floor(r / G);
    for (let q = 0; q < groups; q++) {
      const s = (b * groups + q) * srcLen;
      const d = (r * groups + q) * dstLen;
      for (let j = 0; j < srcLen; j++) dst[d + j] = src[s + j];
      dst.fill(0, d + srcLen, d + dstLen);
    }
  }
}

/**
 * Writes one time slot of a cache: `src` is [rows, width] (the new token's keys or values) and `dst` is
 * [rows, T, width]; row i's vector lands at time `slot`.
 */
function writeSlot(src: Float32Array, dst: Float32Array, rows: number, width: number, T: number, slot: number): void {
  for (let i = 0; i < rows; i++) {
    const d = (i * T + slot) * width;
    const s = i * width;
    for (let c = 0; c < width; c++) dst[d + c] = src[s + c];
  }
}

function checkImages(what: string, images: readonly unknown[], rows: number): void {
  if (!Array.isArray(images) || images.length !== rows) throw new Error(`${what}: ${rows} prompts need ${rows} images, got ${Array.isArray(images) ? images.length : typeof images}`);
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
    private readonly sessions: Record<'logprobs' | 'prefill' | 'step', { session: ort.InferenceSession; graph: PolicyGraph }>,
    private readonly opts: Required<EngineOptions>,
  ) {}

  static async create(cfg: PolicyConfig, options: EngineOptions = {}): Promise<OrtPolicyRunner> {
    const opts: Required<EngineOptions> = {
      intraOpThreads: options.intraOpThreads ?? 2,
      interOpThreads: options.interOpThreads ?? 1,
      allowSpinning: options.allowSpinning ?? false,
      logprobBatchRows: options.logprobBatchRows ?? 64,
      retainVersions: options.retainVersions ?? 2,
    };
    if (!(Number.isInteger(opts.retainVersions) && opts.retainVersions >= 1)) throw new Error(`engine: retainVersions must be a positive integer, got ${opts.retainVersions}`);
    const spin = opts.allowSpinning ? '1' : '0';
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.intraOpThreads,
      interOpNumThreads: opts.interOpThreads,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
    };
    const graphs = buildPolicyGraphs(cfg);
    const open = async (g: PolicyGraph) => ({ session: await ort.InferenceSession.create(g.bytes, sessionOptions), graph: g });
    return new OrtPolicyRunner(cfg, { logprobs: await open(graphs.logprobs), prefill: await open(graphs.prefill), step: await open(graphs.step) }, opts);
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
  async logProbs(req: LogProbRequest): Promise<LogProbResult> {
    const w = this.select(req.weights);
    const rows = req.prompts.length;
    checkImages('logProbs', req.images, rows);
    if (!Array.isArray(req.responses) || req.responses.length !== rows) throw new Error(`logProbs: ${rows} prompts need ${rows} responses, got ${req.responses?.length}`);
    const logprobs: Float32Array[] = [];
    const entropy: Float32Array[] = [];
    const step = this.opts.logprobBatchRows;
    for (let s = 0; s < rows; s += step) {
      const e = Math.min(rows, s + step);
      const r = await this.logProbChunk(w, req.images.slice(s, e), req.prompts.slice(s, e), req.responses.slice(s, e), s);
      logprobs.push(...r.logprobs);
      entropy.push(...r.entropy);
    }
    return req.withEntropy ? { logprobs, entropy, version: w.version } : { logprobs, version: w.version };
  }

  private async logProbChunk(w: LoadedWeights, images: LogProbRequest['images'], prompts: LogProbRequest['prompts'], responses: LogProbRequest['responses'], offset: number) {
    const cfg = this.cfg;
    const { nPatch, patchDim } = policyDims(cfg);
    const B = prompts.length;
    let pb, rb;
    try {
      pb = buildPromptBatch(prompts, cfg);
      rb = buildResponseBatch(responses, cfg);
    } catch (err) {
      throw new Error(`logProbs (rows from ${offset}): ${(err as Error).message}`);
    }
    const text = buildTextBatch(pb, rb);
    const Lp = text.promptLen;
    const Lr = text.responseLen;
    const feeds: Feeds = {
      patches: new ort.Tensor('float32', patchify(images, cfg), [B, nPatch, patchDim]),
      prompt: new ort.Tensor('int64', i64(pb.ids), [B, Lp]),
      response: new ort.Tensor('int64', i64(rb.ids), [B, Lr]),
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

  /** Samples `n` responses per prompt with a key/value cache. */
  async sample(req: SampleRequest): Promise<SampleResult> {
    const w = this.select(req.weights, 'sample');
    const cfg = this.cfg;
    const { nPatch, patchDim, headDim, maxTextLen } = policyDims(cfg);
    const H = cfg.nHeads;
    const G = req.n ?? 1;
    const so: SamplingOptions = { temperature: req.temperature ?? 1, topK: req.topK ?? 0, topP: req.topP ?? 1 };
    checkSamplingOptions(so);
    if (!(Number.isInteger(G) && G >= 1)) throw new Error(`sample: n must be a positive integer, got ${G}`);
    if (!Number.isSafeInteger(req.seed)) throw new Error(`sample: seed must be an integer, got ${req.seed}`);
    const Bp = req.prompts.length;
    checkImages('sample', req.images, Bp);
    let pb;
    try {
      pb = buildPromptBatch(req.prompts, cfg);
    } catch (err) {
      throw new Error(`sample: ${(err as Error).message}`);
    }
    const Lp = pb.length;
    const longest = Lp - Math.min(...pb.pads);
    const maxNew = req.maxNewTokens ?? cfg.maxResponseLen;
    if (!(Number.isInteger(maxNew) && maxNew >= 1 && maxNew <= cfg.maxResponseLen)) {
      throw new Error(`sample: maxNewTokens must be an integer in [1, maxResponseLen ${cfg.maxResponseLen}], got ${maxNew}`);
    }
    if (longest + maxNew > maxTextLen) throw new Error(`sample: prompt of ${longest} tokens + ${maxNew} new tokens exceed the ${maxTextLen} text positions`);

    // Prefill the Bp distinct prompts once.
    const positions = new Int32Array(Bp * Lp);
    const keyValid = new Float32Array(Bp * Lp);
    for (let b = 0; b < Bp; b++) {
      for (let j = 0; j < Lp; j++) {
        positions[b * Lp + j] = Math.max(0, j - pb.pads[b]);
        keyValid[b * Lp + j] = pb.ids[b * Lp + j] === PAD_ID ? 0 : 1;
      }
    }
    const pre = this.sessions.prefill;
    const preOut = await pre.session.run(
      this.withParams(w, pre.graph, {
        patches: new ort.Tensor('float32', patchify(req.images, cfg), [Bp, nPatch, patchDim]),
        prompt: new ort.Tensor('int64', i64(pb.ids), [Bp, Lp]),
        positions: new ort.Tensor('int64', i64(positions), [Bp, Lp]),
        key_valid: new ort.Tensor('float32', keyValid, [Bp, Lp]),
      }),
    );

    // Expand to N = Bp * G rows and copy the prompt's cache into preallocated buffers.
    const N = Bp * G;
    const S0 = nPatch + Lp;
    const T = S0 + maxNew - 1; // the last token is never fed back
    const kCache: Float32Array[] = [];
    const vCache: Float32Array[] = [];
    const held: Float32Array[] = [];
    const cacheBuffer = (size: number): Float32Array => {
      const k = this.spare.findIndex((b) => b.length >= size);
      const buf = k >= 0 ? this.spare.splice(k, 1)[0] : new Float32Array(size);
      held.push(buf);
      return buf.length === size ? buf : buf.subarray(0, size);
    };
    try {
      for (let i = 0; i < cfg.nLayers; i++) {
        const n = cacheNames(i);
        const K = cacheBuffer(N * H * headDim * T);
        const Vb = cacheBuffer(N * H * T * headDim);
        // Slots past the prompt start at zero (they are masked until written; zero keeps reused buffers clean).
        expandRows(preOut[n.kT].data as Float32Array, K, N, G, H * headDim, S0, T); // [Bp, H, k, S0] -> [N, H, k, T]
        expandRows(preOut[n.v].data as Float32Array, Vb, N, G, H, S0 * headDim, T * headDim); // [Bp, H, S0, k] -> [N, H, T, k]
        kCache.push(K);
        vCache.push(Vb);
      }
      return await this.decode(w, req, so, pb, preOut.logits.data as Float32Array, kCache, vCache, keyValid);
    } finally {
      this.spare.push(...held);
      this.spare.splice(0, Math.max(0, this.spare.length - 4 * cfg.nLayers));
    }
  }

  private async decode(
    w: LoadedWeights,
    req: SampleRequest,
    so: SamplingOptions,
    pb: { length: number; pads: Int32Array },
    prefillLogits: Float32Array,
    kCache: Float32Array[],
    vCache: Float32Array[],
    keyValid: Float32Array,
  ): Promise<SampleResult> {
    const cfg = this.cfg;
    const { nPatch, headDim } = policyDims(cfg);
    const H = cfg.nHeads;
    const V = cfg.vocabSize;
    const G = req.n ?? 1;
    const Lp = pb.length;
    const N = pb.pads.length * G;
    const S0 = nPatch + Lp;
    const maxNew = req.maxNewTokens ?? cfg.maxResponseLen;
    const T = S0 + maxNew - 1;
    const cacheValid = new Float32Array(N * T);
    for (let r = 0; r < N; r++) {
      const b = Math.floor(r / G);
      cacheValid.fill(1, r * T, r * T + nPatch);
      cacheValid.set(keyValid.subarray(b * Lp, (b + 1) * Lp), r * T + nPatch);
    }

    const rngs = Array.from({ length: N }, (_, r) => Rng.derive(req.seed, 'sample', Math.floor(r / G), r % G));
    const realLen = Array.from({ length: N }, (_, r) => Lp - pb.pads[Math.floor(r / G)]);
    const toks = Array.from({ length: N }, () => new Int32Array(maxNew));
    const lps = Array.from({ length: N }, () => new Float32Array(maxNew));
    const slps = Array.from({ length: N }, () => new Float32Array(maxNew));
    const len = new Int32Array(N);
    const done = new Uint8Array(N);
    // Batch rows of the step graph: `act[i]` is the response in row i. Rows of finished responses are
    // dropped (compacted in place) once they are a quarter of the batch, so late steps compute only for
    // responses still being written. Rows are independent, so this changes no result.
    let act = Int32Array.from({ length: N }, (_, r) => r);
    let stepRows = 0;
    let logits = prefillLogits; // [Bp, V] at t = 0 (row of response r: floor(r / G)), then [rows, V]
    const kRow = H * headDim * T; // floats per row of a key (or value) cache
    const step = this.sessions.step;
    for (let t = 0; t < maxNew; t++) {
      let active = 0;
      for (let i = 0; i < act.length; i++) {
        const r = act[i];
        if (done[r]) continue;
        const row = t === 0 ? Math.floor(r / G) : i;
        const c = chooseToken(logits.subarray(row * V, (row + 1) * V), so, rngs[r]);
        toks[r][t] = c.token;
        lps[r][t] = c.logprob;
        slps[r][t] = c.samplingLogprob;
        len[r] = t + 1;
        if (c.token === EOS_ID) done[r] = 1;
        else active++;
      }
      if (active === 0 || t === maxNew - 1) break;
      if (active <= act.length * 0.75) {
        const keep = Int32Array.from(act.filter((r) => !done[r]));
        for (let i = 0, j = 0; j < act.length; j++) {
          if (done[act[j]]) continue;
          if (i !== j) {
            for (let l = 0; l < cfg.nLayers; l++) {
              kCache[l].copyWithin(i * kRow, j * kRow, (j + 1) * kRow);
              vCache[l].copyWithin(i * kRow, j * kRow, (j + 1) * kRow);
            }
            cacheValid.copyWithin(i * T, j * T, (j + 1) * T);
          }
          i++;
        }
        act = keep;
      }
      const B = act.length;
      stepRows += B;
      const token = new BigInt64Array(B);
      const position = new BigInt64Array(B);
      for (let i = 0; i < B; i++) {
        const r = act[i];
        token[i] = BigInt(done[r] ? PAD_ID : toks[r][t]);
        position[i] = BigInt(realLen[r] + t);
      }
      const feeds: Feeds = {
        token: new ort.Tensor('int64', token, [B, 1]),
        position: new ort.Tensor('int64', position, [B, 1]),
        cache_valid: new ort.Tensor('float32', cacheValid.subarray(0, B * T), [B, T]),
      };
      for (let l = 0; l < cfg.nLayers; l++) {
        const n = cacheNames(l);
        feeds[n.pastKT] = new ort.Tensor('float32', kCache[l].subarray(0, B * kRow), [B, H, headDim, T]);
        feeds[n.pastV] = new ort.Tensor('float32', vCache[l].subarray(0, B * kRow), [B, H, T, headDim]);
      }
      const out = await step.session.run(this.withParams(w, step.graph, feeds));
      const slot = S0 + t;
      for (let l = 0; l < cfg.nLayers; l++) {
        const n = cacheNames(l);
        writeSlot(out[n.newKT].data as Float32Array, kCache[l], B * H * headDim, 1, T, slot); // [B, H, k, 1]
        writeSlot(out[n.newV].data as Float32Array, vCache[l], B * H, headDim, T, slot); // [B, H, 1, k]
      }
      for (let i = 0; i < B; i++) if (!done[act[i]]) cacheValid[i * T + slot] = 1;
      logits = out.logits.data as Float32Array;
    }

    const responses: SampledResponse[] = [];
    let total = 0;
    for (let r = 0; r < N; r++) {
      const L = len[r];
      total += L;
      responses.push({
        promptIndex: Math.floor(r / G),
        sampleIndex: r % G,
        tokens: toks[r].slice(0, L),
        logprobs: lps[r].slice(0, L),
        samplingLogprobs: slps[r].slice(0, L),
        length: L,
        finished: done[r] === 1,
        version: w.version,
      });
    }
    return { responses, version: w.version, tokens: total, stepRows };
  }

  async release(): Promise<void> {
    for (const s of Object.values(this.sessions)) await s.session.release();
  }
}
