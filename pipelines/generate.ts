/**
 * Answering one question about one image with saved weights (`papo generate`): the question encoded as
 * the policy's prompts are, the image read as a manifest's images are (tasks/loader/load-image.ts), and
 * the greedy response or k samples from the engine.
 *
 *   const saved = await loadPolicyWeights('runs/train');          // weights, checkpoint or run directory
 *   const prompt = encodeQuestion('How many cats?', { maxPromptLen: saved.config.maxPromptLen });
 *   const image = readQuestionImage('cat.png', saved.config);
 *   const engine = await PolicyEngine.create(saved.config);
 *   await engine.setWeights(saved.params, 0);
 *   const [greedy] = await generateAnswers(engine, image, prompt, { samples: 0, seed: 0 });
 *   await engine.close();
 */
import type { PolicyConfig } from '../models/config.ts';
import type { PolicyEngine } from '../models/engine/engine.ts';
import { decode, encodePrompt } from '../models/tokenizer.ts';
import { loadImage } from '../tasks/loader/load-image.ts';
import { parseResponse } from '../tasks/rewards/format.ts';
import type { RgbImage } from '../util/image.ts';

export interface GenerateOptions {
  /** 0: the greedy response; k > 0: k samples at `temperature` */
  samples: number;
  /** sampling temperature for samples > 0 (default 1) */
  temperature?: number;
  seed: number;
  /** response tokens at most (default and maximum: the policy's maxResponseLen) */
  maxTokens?: number;
}

export interface GeneratedAnswer {
  /** the decoded response (up to EOS) */
  text: string;
  /** the answer inside <answer>...</answer> of a well-formed response, else null */
  answer: string | null;
  tokens: number[];
  /** ended with EOS (false: cut at maxTokens) */
  finished: boolean;
  /** sum of the tokens' log-probs under the policy (temperature 1) */
  logprob: number;
}

/**
 * The prompt tokens of `question` (BOS + its tokens), or an error naming `what` and the character the
 * tokenizer cannot encode, or the length over `maxPromptLen` (BOS included).
 */
export function encodeQuestion(question: string, opts: { maxPromptLen?: number; what?: string } = {}): number[] {
  const what = opts.what ?? 'question';
  let ids: number[];
  try {
    ids = encodePrompt(question);
  } catch (err) {
    throw new Error(`${what} cannot be encoded: ${(err as Error).message.replace(/^tokenizer: /, '')}`);
  }
  const max = opts.maxPromptLen ?? Number.POSITIVE_INFINITY;
  if (ids.length > max)
    throw new Error(`${what} is ${ids.length - 1} tokens long; this policy's prompts hold at most ${max - 1} (maxPromptLen ${max}, BOS included)`);
  return ids;
}

/** The image at `file`, decoded and resized to the policy's size, within a manifest's file limits. */
export function readQuestionImage(file: string, cfg: PolicyConfig, limits: { maxBytes?: number; maxPixels?: number } = {}, what = 'image'): RgbImage {
  try {
    return loadImage(file, { height: cfg.imageHeight, width: cfg.imageWidth, ...limits });
  } catch (err) {
    throw new Error(`${what} ${file}: ${(err as Error).message}`);
  }
}

/** The greedy response (samples 0) or `samples` responses at `temperature`, deterministic given the seed. */
export async function generateAnswers(
  engine: Pick<PolicyEngine, 'sample'>,
  image: RgbImage,
  prompt: string | readonly number[],
  opts: GenerateOptions,
): Promise<GeneratedAnswer[]> {
  if (!(Number.isInteger(opts.samples) && opts.samples >= 0)) throw new Error(`samples must be a non-negative integer, got ${opts.samples}`);
  const greedy = opts.samples === 0;
  const result = await engine.sample({
    images: [image],
    prompts: [prompt],
    n: greedy ? 1 : opts.samples,
    temperature: greedy ? 0 : (opts.temperature ?? 1),
    maxNewTokens: opts.maxTokens,
    seed: opts.seed,
  });
  return result.responses.map((r) => {
    const text = decode(r.tokens);
    return {
      text,
      answer: parseResponse(text)?.answer ?? null,
      tokens: Array.from(r.tokens),
      finished: r.finished,
      logprob: r.logprobs.reduce((a, b) => a + b, 0),
    };
  });
}
