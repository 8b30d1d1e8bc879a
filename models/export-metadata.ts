/**
 * What a program in any language needs to run an exported policy (models/onnx/export-graph.ts) besides
 * the graph: the tokenizer, the image preprocessing, the inputs and outputs, and how to generate. Stored
 * as JSON strings in the ONNX model's metadata_props under the keys of `EXPORT_METADATA_KEYS`.
 */
import { type PolicyConfig, policyDims } from './config.ts';
import { BOS_ID, decode, EOS_ID, MARKUP, PAD_ID, VOCAB_SIZE } from './tokenizer.ts';

export const EXPORT_FORMAT = 'papo-stream/policy-onnx';
export const EXPORT_FORMAT_VERSION = 1;

/** metadata_props keys; every value is a JSON document. */
export const EXPORT_METADATA_KEYS = {
  format: 'papo.format',
  tokenizer: 'papo.tokenizer',
  image: 'papo.image',
  io: 'papo.io',
  generation: 'papo.generation',
  policyConfig: 'papo.policy_config',
  source: 'papo.source',
} as const;

/** The tokenizer as data: `vocab[id]` is the text of token id (special tokens as their names). */
export function tokenizerDescription(cfg: PolicyConfig) {
  const vocab = Array.from({ length: cfg.vocabSize }, (_, id) =>
    id === PAD_ID ? '<pad>' : id === EOS_ID ? '<eos>' : id === BOS_ID ? '<bos>' : id < VOCAB_SIZE ? decode([id]) : `<unused_${id}>`,
  );
  return {
    type: 'character',
    vocab_size: cfg.vocabSize,
    vocab,
    special_tokens: { pad: PAD_ID, eos: EOS_ID, bos: BOS_ID },
    markup_tokens: Object.fromEntries(MARKUP.map((m) => [m.text, m.id])),
    characters: { first_code: 32, last_code: 126, id_of_code: 'code - 25' },
    encode:
      'scan left to right: at "<", if one of markup_tokens starts there, emit its id and skip it; otherwise emit (character code - 25). Only printable ASCII (codes 32..126) can be encoded.',
    decode: 'skip pad and bos, stop at the first eos; every other id maps to vocab[id]',
    prompt: 'input_ids of a question q: [bos] followed by encode(q); no eos',
  };
}

/** The image preprocessing the policy was trained with (tasks/loader and models/batch.ts). */
export function imageDescription(cfg: PolicyConfig) {
  return {
    height: cfg.imageHeight,
    width: cfg.imageWidth,
    channels: cfg.channels,
    channel_order: 'RGB',
    layout: 'NHWC (batch, height, width, channel), row-major',
    dtype: 'uint8',
    scaling: 'done inside the model: pixel / 255, no mean/std normalisation',
    decode: 'PNG or JPEG; greyscale and palette expanded to RGB; alpha composited over black (0, 0, 0)',
    resize:
      'to exactly height x width (stretched, aspect ratio not kept), per axis: area averaging when shrinking, bilinear with pixel centres aligned (src = (dst + 0.5) * scale - 0.5) when growing; rounded to the nearest integer',
    patches: `${cfg.patchSize} x ${cfg.patchSize} pixels, extracted inside the model`,
  };
}

export function ioDescription(cfg: PolicyConfig, kvCache = false) {
  if (kvCache) return cachedIoDescription(cfg);
  const maxLen = cfg.maxPromptLen + cfg.maxResponseLen;
  return {
    inputs: {
      pixels: { dtype: 'uint8', shape: ['batch', cfg.imageHeight, cfg.imageWidth, cfg.channels], meaning: 'one image per row, see papo.image' },
      input_ids: {
        dtype: 'int64',
        shape: ['batch', 'sequence'],
        meaning: `bos + question tokens + response tokens so far; rows left-padded with pad (${PAD_ID}); sequence <= ${maxLen}`,
      },
      attention_mask: { dtype: 'int64', shape: ['batch', 'sequence'], meaning: '1 on tokens, 0 on the left padding' },
    },
    outputs: {
      logits: {
        dtype: 'float32',
        shape: ['batch', 'sequence', cfg.vocabSize],
        meaning: 'at position j: unnormalised next-token scores after token j (log_softmax gives log-probabilities)',
      },
    },
  };
}

/** The inputs and outputs of the key/value-cache variant (models/onnx/export-graph.ts). */
function cachedIoDescription(cfg: PolicyConfig) {
  const { nPatch, headDim } = policyDims(cfg);
  const cache = (what: string) => ({ dtype: 'float32', shape: ['batch', cfg.nHeads, what, headDim] });
  const inputs: Record<string, unknown> = {
    pixels: {
      dtype: 'uint8',
      shape: ['batch', cfg.imageHeight, cfg.imageWidth, cfg.channels],
      meaning: 'one image per row, see papo.image; read on the first call only',
    },
    input_ids: {
      dtype: 'int64',
      shape: ['batch', 'new'],
      meaning: `first call: bos + question tokens, rows left-padded with pad (${PAD_ID}); later calls: the token chosen for each row`,
    },
    attention_mask: { dtype: 'int64', shape: ['batch', 'text'], meaning: "every text token so far, this call's included: 1 on tokens, 0 on the left padding" },
  };
  const outputs: Record<string, unknown> = {
    logits: { dtype: 'float32', shape: ['batch', 'new', cfg.vocabSize], meaning: 'at each new position: unnormalised next-token scores after it' },
  };
  for (let i = 0; i < cfg.nLayers; i++) {
    inputs[`past_key.${i}`] = {
      ...cache('past'),
      meaning: `decoder layer ${i}: empty (past = 0) on the first call, then the previous call's present_key.${i}`,
    };
    inputs[`past_value.${i}`] = { ...cache('past'), meaning: `decoder layer ${i}: as past_key.${i}, for present_value.${i}` };
    outputs[`present_key.${i}`] = {
      ...cache('present'),
      meaning: `past_key.${i} with this call's keys appended (the image's ${nPatch} first, on the first call)`,
    };
    outputs[`present_value.${i}`] = { ...cache('present'), meaning: `past_value.${i} with this call's values appended` };
  }
  return { inputs, outputs };
}

export function generationDescription(cfg: PolicyConfig, kvCache = false) {
  return {
    max_prompt_tokens: cfg.maxPromptLen,
    max_new_tokens: cfg.maxResponseLen,
    max_sequence_length: cfg.maxPromptLen + cfg.maxResponseLen,
    eos_token_id: EOS_ID,
    never_sample: [PAD_ID, BOS_ID],
    loop: kvCache
      ? 'first call: the prompt with empty past_key/past_value; then feed the chosen token as input_ids [batch, 1], attention_mask grown by a column of ones, and the previous present_key/present_value as past; read logits at the last position; stop after eos or max_new_tokens'
      : 'append the chosen token to input_ids (and 1 to attention_mask), run again, read logits at the last position; stop after eos or max_new_tokens',
    greedy: 'argmax of the last position over tokens other than never_sample (ties: lowest id)',
    response_format: '<think>reasoning</think><answer>answer</answer>',
  };
}

/** Every metadata entry of an exported model, as the strings metadata_props holds. */
export function exportMetadata(cfg: PolicyConfig, source: Record<string, unknown>, opts: { kvCache?: boolean } = {}): Record<string, string> {
  const K = EXPORT_METADATA_KEYS;
  const kvCache = opts.kvCache ?? false;
  return {
    [K.format]: JSON.stringify({ format: EXPORT_FORMAT, version: EXPORT_FORMAT_VERSION, kv_cache: kvCache }),
    [K.tokenizer]: JSON.stringify(tokenizerDescription(cfg)),
    [K.image]: JSON.stringify(imageDescription(cfg)),
    [K.io]: JSON.stringify(ioDescription(cfg, kvCache)),
    [K.generation]: JSON.stringify(generationDescription(cfg, kvCache)),
    [K.policyConfig]: JSON.stringify(cfg),
    [K.source]: JSON.stringify(source),
  };
}
