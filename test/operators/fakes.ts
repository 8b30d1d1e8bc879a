/**
 * Test doubles for the operator tests: a deterministic fake `RolloutEngine` that records what it was
 * asked, a tiny synthetic `Task`, and builders of records and batches at each stage of the graph.
 */
import { lastValueFrom, toArray, type Observable } from 'rxjs';
import { makeImage, type RgbImage } from '../../util/image.ts';
import { policyConfig, type PolicyConfig } from '../../models/config.ts';
import type { Params } from '../../models/params.ts';
import { encode, EOS_ID } from '../../models/tokenizer.ts';
import type { LogProbRequest, LogProbResult, SampleRequest, SampleResult, SampledResponse } from '../../models/engine/types.ts';
import type { StreamCursor } from '../../tasks/stream.ts';
import type { Split, Task, TaskRecord, VisionDependency } from '../../tasks/types.ts';
import type { PromptBatch, RolloutEngine, SampledBatch, ScoredBatch } from '../../operators/types.ts';

/** An image whose pixel bytes are `(seed * 31 + k) % 251 + 1` (never 0, so masking is visible). */
export function patternImage(height: number, width: number, seed = 0): RgbImage {
  const data = new Uint8Array(height * width * 3);
  for (let k = 0; k < data.length; k++) data[k] = ((seed * 31 + k) % 251) + 1;
  return makeImage(height, width, data);
}

export interface RecordOptions {
  prefix?: string;
  height?: number;
  width?: number;
  visionDependency?: VisionDependency;
  answer?: string;
}

/** Record `i`: id `${prefix}/${i}`, answer `i % 10`, a patterned image. */
export function makeRecord(i: number, o: RecordOptions = {}): TaskRecord {
  const answer = o.answer ?? String(i % 10);
  return {
    id: `${o.prefix ?? 'fake'}/${i}`,
    image: patternImage(o.height ?? 2, o.width ?? 2, i),
    question: `What is ${answer}?`,
    answer,
    family: 'read',
    visionDependency: o.visionDependency ?? 'high',
    meta: { i },
  };
}

export function makeRecords(n: number, o: RecordOptions = {}, first = 0): TaskRecord[] {
  return Array.from({ length: n }, (_, k) => makeRecord(first + k, o));
}

/** A minimal task: record i of a split is `makeRecord(i)` with 1x1 images unless told otherwise. */
export function syntheticTask(n = 50, o: { height?: number; width?: number; fingerprint?: string } = {}): Task {
  const height = o.height ?? 1;
  const width = o.width ?? 1;
  return {
    name: 'synthetic',
    imageHeight: height,
    imageWidth: width,
    families: [{ name: 'read', visionDependency: 'high', answerType: 'integer', template: 'What is 3?' }],
    fingerprint: o.fingerprint ?? `synthetic/v1/${n}/${height}x${width}`,
    size: () => n,
    recordAt: (split: Split, i: number) => makeRecord(i, { prefix: `synthetic/${split}`, height, width }),
  };
}

export function fakeCursor(position = 0): StreamCursor {
  return { version: 1, task: 'fake', fingerprint: 'fake/v1', split: 'train', seed: 0, shuffle: false, epochs: null, epoch: 0, position };
}

export function promptBatch(o: {
  step?: number;
  records: readonly TaskRecord[];
  seed?: number;
  rounds?: number;
  timing?: Record<string, number>;
}): PromptBatch {
  return {
    step: o.step ?? 1,
    rounds: o.rounds ?? 1,
    records: o.records,
    indices: Int32Array.from(o.records, (_, i) => i),
    cursor: fakeCursor(o.records.length),
    seed: o.seed ?? 7,
    timing: o.timing ?? {},
  };
}

/**
 * A sampled batch of `records` with G responses each: response i is `texts[i]` (default `r${i}`) encoded
 * and ended by EOS, with behaviour log-probs -0.1 (i + 1) - 0.01 k; versions default to 0.
 */
export function sampledBatch(o: {
  step?: number;
  G: number;
  records: readonly TaskRecord[];
  texts?: readonly string[];
  versions?: readonly number[];
  seed?: number;
  timing?: Record<string, number>;
}): SampledBatch {
  const n = o.records.length * o.G;
  const texts = o.texts ?? Array.from({ length: n }, (_, i) => `r${i}`);
  if (texts.length !== n) throw new Error(`sampledBatch: ${texts.length} texts for ${n} responses`);
  const responses = texts.map((t) => Int32Array.from([...encode(t), EOS_ID]));
  return {
    ...promptBatch({ step: o.step, records: o.records, seed: o.seed, timing: o.timing }),
    groupSize: o.G,
    responses,
    oldLogprobs: responses.map((r, i) => Float32Array.from(r, (_, k) => -0.1 * (i + 1) - 0.01 * k)),
    texts,
    finished: new Uint8Array(n).fill(1),
    versions: Int32Array.from(o.versions ?? new Array<number>(n).fill(0)),
  };
}

/** A scored batch with P = accuracy.length / G groups; rewards equal accuracy unless given, format is 1. */
export function scoredBatch(o: {
  step?: number;
  G: number;
  accuracy: readonly number[];
  rewards?: readonly number[];
  versions?: readonly number[];
  records?: readonly TaskRecord[];
  prefix?: string;
  seed?: number;
  failures?: ScoredBatch['rewardFailures'];
  timing?: Record<string, number>;
}): ScoredBatch {
  const n = o.accuracy.length;
  if (n % o.G !== 0) throw new Error(`scoredBatch: ${n} responses do not split into groups of ${o.G}`);
  const records = o.records ?? makeRecords(n / o.G, { prefix: o.prefix ?? `step${o.step ?? 1}` });
  return {
    ...sampledBatch({ step: o.step, G: o.G, records, versions: o.versions, seed: o.seed, timing: o.timing }),
    rewards: Float32Array.from(o.rewards ?? o.accuracy),
    accuracy: Float32Array.from(o.accuracy),
    format: new Float32Array(n).fill(1),
    rewardFailures: o.failures ?? [],
  };
}

/** Sum of an image's bytes: a fingerprint of its content. */
export function imageSum(img: RgbImage): number {
  let s = 0;
  for (let k = 0; k < img.data.length; k++) s += img.data[k];
  return s;
}

/** What the fake engine returns as the log-prob of token k of `response` for `image` under `weights`. */
export function fakeLogprob(image: RgbImage, response: ArrayLike<number>, k: number, weights: LogProbRequest['weights']): number {
  const w = weights === 'reference' ? 100 : weights === 'latest' || weights === undefined ? 200 : weights;
  return -(w + (imageSum(image) % 997) / 1000 + response[k] / 1e5);
}

export interface FakeResponse {
  text: string;
  finished?: boolean;
  version?: number;
}

export interface FakeEngineOptions {
  /**
   * response (p, g) of a request; default `<answer>${(seed + promptOffset + p + g) % 10}</answer>`, finished,
   * latest version (as the engine, a prompt's draws depend on its place in the round, promptOffset + p)
   */
  respond?: (req: SampleRequest, p: number, g: number) => FakeResponse;
  /** resolve each call after this many ms (setTimeout); default: on the next macrotask (setImmediate) */
  delayMs?: number;
  /** reject every `sample` call with this error */
  sampleError?: Error;
  /** reject every `logProbs` call with this error */
  logProbsError?: Error;
  version?: number;
  config?: PolicyConfig;
  /** keep every request (default true); off for long runs that measure memory */
  keepRequests?: boolean;
}

/** A deterministic `RolloutEngine` that records every request and tracks overlapping calls. */
export class FakeEngine implements RolloutEngine {
  readonly config: PolicyConfig;
  version: number | undefined;
  readonly sampleRequests: SampleRequest[] = [];
  readonly logProbRequests: LogProbRequest[] = [];
  readonly weightVersions: number[] = [];
  /** calls in progress now, and the most ever at once */
  active = 0;
  maxActive = 0;

  constructor(private readonly opts: FakeEngineOptions = {}) {
    this.config = opts.config ?? policyConfig();
    this.version = opts.version ?? 0;
  }

  private async pause(): Promise<void> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise<void>((resolve) => (this.opts.delayMs === undefined ? setImmediate(resolve) : setTimeout(resolve, this.opts.delayMs)));
    } finally {
      this.active--;
    }
  }

  async sample(request: SampleRequest): Promise<SampleResult> {
    if (this.opts.keepRequests ?? true) this.sampleRequests.push(request);
    await this.pause();
    if (this.opts.sampleError) throw this.opts.sampleError;
    const n = request.n ?? 1;
    const version = this.version ?? 0;
    const responses: SampledResponse[] = [];
    const offset = request.promptOffset ?? 0;
    for (let p = 0; p < request.prompts.length; p++) {
      for (let g = 0; g < n; g++) {
        const r = this.opts.respond?.(request, p, g) ?? { text: `<answer>${(request.seed + offset + p + g) % 10}</answer>` };
        const finished = r.finished ?? true;
        const tokens = Int32Array.from(finished ? [...encode(r.text), EOS_ID] : encode(r.text));
        const logprobs = Float32Array.from(tokens, (_, k) => -0.01 * (k + 1) - 0.001 * g - 0.1 * (offset + p));
        responses.push({
          promptIndex: p,
          sampleIndex: g,
          tokens,
          logprobs,
          samplingLogprobs: logprobs.slice(),
          length: tokens.length,
          finished,
          version: r.version ?? version,
        });
      }
    }
    return { responses, version, tokens: responses.reduce((a, r) => a + r.length, 0), stepRows: 0 };
  }

  async logProbs(request: LogProbRequest): Promise<LogProbResult> {
    if (this.opts.keepRequests ?? true) this.logProbRequests.push(request);
    await this.pause();
    if (this.opts.logProbsError) throw this.opts.logProbsError;
    const logprobs = request.responses.map((resp, j) =>
      Float32Array.from({ length: resp.length }, (_, k) => fakeLogprob(request.images[j], resp, k, request.weights)),
    );
    return { logprobs, version: this.version ?? 0 };
  }

  async setWeights(_params: Params, version: number): Promise<void> {
    this.weightVersions.push(version);
    this.version = version;
  }
}

/** All values of a finite observable. */
export function collect<T>(o: Observable<T>): Promise<T[]> {
  return lastValueFrom(o.pipe(toArray()));
}

/** Resolves after `n` macrotasks (lets setImmediate-scheduled work run). */
export async function ticks(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
