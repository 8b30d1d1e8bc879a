/** `papo generate`: one question about one image, answered by saved weights (pipelines/generate.ts). */
import * as path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from '../tasks/loader/limits.ts';
import { intAtLeastOption, intOption, numberOption } from './config-file.ts';

interface GenerateFlags {
  weights: string;
  image: string;
  question: string;
  samples: number;
  temperature: number;
  seed: number;
  maxTokens?: number;
  threads: number;
  json?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('answer a question about an image with a trained policy: the greedy response, or --samples k sampled ones')
    .requiredOption('--weights <dir>', 'policy weights: a papo sft weights directory, a checkpoint, or a run directory (its latest complete checkpoint)')
    .requiredOption('--image <file>', "a PNG or JPEG, resized to the policy's image size as manifest images are")
    .requiredOption('--question <text>', 'the question (printable ASCII)')
    .option('--samples <k>', 'k responses sampled at --temperature (0: the greedy response)', intAtLeastOption('--samples', 0), 0)
    .option('--temperature <t>', 'sampling temperature of the --samples responses', numberOption('--temperature'), 1)
    .option('--seed <n>', 'sampling seed (the same seed gives the same samples)', intOption('--seed'), 0)
    .option('--max-tokens <n>', "response tokens at most (default: the policy's maximum response length)", intAtLeastOption('--max-tokens', 1))
    .option('--threads <n>', 'onnxruntime intra-op threads', intAtLeastOption('--threads', 1), 2)
    .option('--json', 'print the responses as JSON')
    .option('--max-image-bytes <n>', `bytes the image file may have (default ${DEFAULT_MAX_IMAGE_BYTES})`, intAtLeastOption('--max-image-bytes', 1))
    .option('--max-image-pixels <n>', `pixels the decoded image may have (default ${DEFAULT_MAX_IMAGE_PIXELS})`, intAtLeastOption('--max-image-pixels', 1))
    .addHelpText(
      'after',
      `
Prints the response (<think>...</think><answer>...</answer>), one line per sample with --samples; --json prints
{ weights, step, image, question, mode, temperature, seed, responses: [{ text, answer, tokens, finished, logprob }] }.

Examples:
  papo generate --weights runs/train --image digits.png --question "What is the sum of the digits?"
  papo generate --weights runs/sft/weights --image x.png --question "Is 3 larger than 5?" --samples 8 --temperature 0.7 --seed 1 --json`,
    )
    .action(async (f: GenerateFlags) => {
      if (!(f.temperature > 0)) throw new Error(`--temperature must be > 0, got ${f.temperature} (--samples 0 gives the greedy response)`);
      // the question is refused before any weights load
      const { encodeQuestion, generateAnswers, readQuestionImage } = await import('../pipelines/generate.ts');
      encodeQuestion(f.question, { what: '--question' });
      // loaded here, not at start-up: `papo --help` and the other commands need none of it
      const [{ loadPolicyWeights }, { PolicyEngine }] = await Promise.all([import('../storage/policy-weights.ts'), import('../models/engine/engine.ts')]);
      const saved = await loadPolicyWeights(f.weights);
      if (saved.dir !== path.resolve(f.weights)) process.stderr.write(`papo generate: using the weights in ${saved.dir}\n`);
      const cfg = saved.config;
      const prompt = encodeQuestion(f.question, { maxPromptLen: cfg.maxPromptLen, what: '--question' });
      if (f.maxTokens !== undefined && f.maxTokens > cfg.maxResponseLen)
        throw new Error(`--max-tokens ${f.maxTokens} is more than this policy's responses hold (maxResponseLen ${cfg.maxResponseLen})`);
      const image = readQuestionImage(f.image, cfg, { maxBytes: f.maxImageBytes, maxPixels: f.maxImagePixels }, '--image');
      const engine = await PolicyEngine.create(cfg, { intraOpThreads: f.threads });
      try {
        await engine.setWeights(saved.params, Number(saved.meta.step ?? 0));
        const answers = await generateAnswers(engine, image, prompt, { samples: f.samples, temperature: f.temperature, seed: f.seed, maxTokens: f.maxTokens });
        const cut = answers.flatMap((a, i) => (a.finished ? [] : [f.samples === 0 ? 'the response' : `response ${i + 1}`]));
        if (cut.length)
          process.stderr.write(`papo generate: ${cut.join(', ')} stopped at the token limit (${f.maxTokens ?? cfg.maxResponseLen}) before its end token\n`);
        if (f.json) {
          const report = {
            weights: saved.dir,
            step: saved.meta.step ?? null,
            image: path.resolve(f.image),
            question: f.question,
            mode: f.samples === 0 ? 'greedy' : 'sample',
            temperature: f.samples === 0 ? 0 : f.temperature,
            seed: f.seed,
            responses: answers,
          };
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } else {
          if (f.samples === 0) process.stdout.write(`${answers[0].text}\n`);
          else process.stdout.write(answers.map((a, i) => `${String(i + 1).padStart(3)}  ${a.text}\n`).join(''));
        }
      } finally {
        await engine.close();
      }
    });
}
