/**
 * The paper's reward: overall = 0.9 * accuracy + 0.1 * format (weights configurable).
 */
import { accuracyReward } from './accuracy.ts';
import { formatReward } from './format.ts';
import { defineReward, type RewardInput, type RewardResult, type SingleRewardFunction } from './types.ts';

export interface CompositeWeights {
  accuracy: number;
  format: number;
}

export const PAPER_WEIGHTS: CompositeWeights = { accuracy: 0.9, format: 0.1 };

export function scoreResponse(input: Pick<RewardInput, 'response' | 'answer'>, w: CompositeWeights = PAPER_WEIGHTS): RewardResult {
  const accuracy = accuracyReward(input.response, input.answer);
  const format = formatReward(input.response);
  return { overall: w.accuracy * accuracy + w.format * format, accuracy, format };
}

/** The default reward function: accuracy and format against the record's ground truth. */
export function compositeReward(w: CompositeWeights = PAPER_WEIGHTS): SingleRewardFunction {
  for (const [k, v] of Object.entries(w)) {
    if (!Number.isFinite(v)) throw new Error(`reward weight ${k} must be finite, got ${v}`);
  }
  return defineReward(`composite(${w.accuracy}*accuracy+${w.format}*format)`, (x) => scoreResponse(x, w));
}
