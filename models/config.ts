/**
 * The policy's architecture configuration, shared by the tfjs trainer, the ONNX export and the
 * onnxruntime engine (see models/README.md for the function it defines).
 */
import { z } from 'zod';
import { parseConfig } from '../util/schema.ts';
import { VOCAB_SIZE } from './tokenizer.ts';

const posInt = z.number().int().positive();

export const PolicyConfigSchema = z
  .object({
    imageHeight: posInt.default(28),
    imageWidth: posInt.default(56),
    channels: posInt.default(3),
    patchSize: posInt.default(7),
    dModel: posInt.default(128),
    nHeads: posInt.default(4),
    /** decoder layers */
    nLayers: posInt.default(2),
    /** image encoder layers; 0 = patches are only linearly embedded */
    nEncoderLayers: z.number().int().nonnegative().default(0),
    mlpRatio: posInt.default(4),
    /** prompt tokens including BOS */
    maxPromptLen: posInt.default(64),
    maxResponseLen: posInt.default(48),
    tieEmbeddings: z.boolean().default(true),
    vocabSize: posInt.default(VOCAB_SIZE),
    initStd: z.number().positive().default(0.02),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const k of ['imageHeight', 'imageWidth'] as const) {
      if (c[k] % c.patchSize !== 0) {
        ctx.addIssue({ code: 'custom', path: [k], message: `${k} (${c[k]}) must be a multiple of patchSize (${c.patchSize})` });
      }
    }
    if (c.dModel % c.nHeads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['nHeads'], message: `dModel (${c.dModel}) must be divisible by nHeads (${c.nHeads})` });
    }
    if (c.vocabSize < VOCAB_SIZE) {
      ctx.addIssue({ code: 'custom', path: ['vocabSize'], message: `vocabSize (${c.vocabSize}) is smaller than the tokenizer's ${VOCAB_SIZE}` });
    }
  });

export type PolicyConfig = z.infer<typeof PolicyConfigSchema>;
export type PolicyConfigInput = z.input<typeof PolicyConfigSchema>;

/** Parses (and fills defaults of) a policy config; throws an Error naming each invalid field. */
export function policyConfig(input: PolicyConfigInput = {}): PolicyConfig {
  return parseConfig(PolicyConfigSchema, input, 'policy config');
}

/**
 * Named policy sizes (`papo sft --size`, the study in bench/sft-size-study.ts, the widths of
 * bench/scaling.ts); `base` is the default. Parameters: small 125k, base 447k, large 1.4M, xl 3.3M, xxl 25.4M.
 */
export const POLICY_SIZES: Record<string, PolicyConfigInput> = {
  small: { dModel: 64, nHeads: 4, nLayers: 2 },
  base: { dModel: 128, nHeads: 4, nLayers: 2 },
  large: { dModel: 192, nHeads: 6, nLayers: 3 },
  xl: { dModel: 256, nHeads: 8, nLayers: 4 },
  xxl: { dModel: 512, nHeads: 16, nLayers: 8 },
};

/** Sizes derived from a config, used by every implementation of the architecture. */
export interface PolicyDims {
  /** image tokens: (imageHeight / patchSize) * (imageWidth / patchSize) */
  nPatch: number;
  gridH: number;
  gridW: number;
  /** length of one flattened patch: patchSize^2 * channels */
  patchDim: number;
  headDim: number;
  mlpDim: number;
  /** rows of `txt_pos`: maxPromptLen + maxResponseLen */
  maxTextLen: number;
}

export function policyDims(c: PolicyConfig): PolicyDims {
  const gridH = c.imageHeight / c.patchSize;
  const gridW = c.imageWidth / c.patchSize;
  return {
    nPatch: gridH * gridW,
    gridH,
    gridW,
    patchDim: c.patchSize * c.patchSize * c.channels,
    headDim: c.dModel / c.nHeads,
    mlpDim: c.mlpRatio * c.dModel,
    maxTextLen: c.maxPromptLen + c.maxResponseLen,
  };
}

/** LayerNorm epsilon (biased variance), fixed by the architecture. */
export const LN_EPS = 1e-5;
/** Additive attention-score mask for keys a query must not see. */
export const MASK_VALUE = -1e9;
