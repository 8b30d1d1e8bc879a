/**
 * `papo rollouts RUN --step N`: a contact sheet of a logged step (tasks/preview/rollout-sheet.ts). The
 * prompts are rebuilt from the task by their logged split indices and the masked views redrawn from the
 * logged mask seed (batchFromLog, as replay does); per token, kl_prcp is k3 between the logged original
 * and masked-view log-probs (algorithms/kl.ts, the estimator the objective uses), so a response's mean is
 * the figure behind the step's `actor/kl_prcp/*` metrics.
 *
 * @example
 * const { out, prompts } = await writeRolloutSheet('runs/train', { step: 40, out: 'sheet.png' });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../util/tf-backend.ts';
import { tokenKlPrcp } from '../algorithms/kl.ts';
import { decode } from '../models/tokenizer.ts';
import { RolloutLog } from '../storage/rollout-log.ts';
import { encodePng } from '../tasks/preview/contact-sheet.ts';
import { renderRolloutSheet, type SheetPrompt } from '../tasks/preview/rollout-sheet.ts';
import { batchFromLog } from '../operators/index.ts';
import { stepDirName } from '../storage/step-dirs.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { confinedTaskData, type ImageReadingOptions, readRunConfig, taskOf } from './train-config.ts';

export interface RolloutSheetRequest {
  step: number;
  /**
   * the PNG (default `<run>/rollouts-step_000080.png` for step 80, the step padded as the run's step directories; created fresh: a link planted there is replaced, never
   * followed); a path given here is written as named, through a link the caller made
   */
  out?: string;
  /** what the run's manifest may read (default: confined to its directory, default limits; never what the run's config says) */
  images?: ImageReadingOptions;
  /** draw the first n prompts only (default all) */
  prompts?: number;
  /** image upscale factor (default 3) */
  scale?: number;
}

export async function writeRolloutSheet(
  runDir: string,
  req: RolloutSheetRequest,
): Promise<{ out: string; prompts: SheetPrompt[]; width: number; height: number }> {
  const cfg = readRunConfig(runDir, 'rollouts', true);
  const log = new RolloutLog(runDir);
  const logged = await log.steps();
  if (!logged.includes(req.step)) {
    const shown = logged.length > 12 ? `${logged.slice(0, 5).join(', ')}, ..., ${logged.slice(-5).join(', ')}` : logged.join(', ');
    throw new Error(`rollouts: step ${req.step} is not in the rollout log of ${runDir} (logged: ${shown || 'none; trainer.rollout_log must be on'})`);
  }
  const { data, algorithm } = cfg;
  const task = taskOf(confinedTaskData(data, req.images));
  const rec = await log.read(req.step);
  const batch = batchFromLog(rec, task, { type: algorithm.mask_type, ratio: algorithm.mask_ratio, patchSize: algorithm.mask_patch_size });

  await initTf();
  const kl = rec.maskedLogprobs ? tokenKlPrcp(rec.oldLogprobs, rec.maskedLogprobs) : undefined;
  const G = rec.groupSize;
  const P = Math.min(batch.records.length, req.prompts ?? Infinity);
  const prompts: SheetPrompt[] = batch.records.slice(0, P).map((r, p) => ({
    image: r.image,
    masked: 'maskedImages' in batch ? batch.maskedImages?.[p] : undefined,
    title: `${r.family} (${r.visionDependency === 'high' ? 'vision-dependent' : 'general'})`,
    question: r.question,
    answer: r.answer,
    responses: Array.from({ length: G }, (_, g) => {
      const i = p * G + g;
      const tokenKl = kl?.[i];
      return {
        tokens: Array.from(rec.responses[i], (id) => decode([id])),
        tokenKl,
        reward: rec.rewards[i],
        correct: rec.accuracy[i] > 0,
        advantage: rec.advantages[i],
        klPrcp: tokenKl ? tokenKl.reduce((a, b) => a + b, 0) / Math.max(1, tokenKl.length) : undefined,
      };
    }),
  }));
  const header = [
    `${path.basename(path.resolve(runDir))}, step ${rec.step}: ${batch.records.length} prompts x ${G} responses${P < batch.records.length ? ` (first ${P} shown)` : ''}, sampled by policy version ${Math.min(...rec.versions)}, ${algorithm.preset}`,
    rec.maskedLogprobs
      ? `masked view: ${algorithm.mask_type}, ratio ${algorithm.mask_ratio}, patch ${algorithm.mask_patch_size} px; kl_prcp = k3(log p(original), log p(masked)) per token`
      : 'no masked view in this run (perception_loss_weight and entropy_coef_masked are 0 and no token weighting reads it)',
  ];
  const sheet = renderRolloutSheet(prompts, { header, scale: req.scale });
  const out = path.resolve(req.out ?? path.join(runDir, `rollouts-${stepDirName(req.step)}.png`));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  if (req.out !== undefined) fs.writeFileSync(out, encodePng(sheet));
  else await writeFileAtomic(out, encodePng(sheet));
  return { out, prompts, width: sheet.width, height: sheet.height };
}
