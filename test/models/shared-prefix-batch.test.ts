/** The shared-prefix inputs: which rows share a prefix, the prefix and row tensors by hand, and errors naming the row. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyConfig } from '../../models/config.ts';
import { buildSharedPrefixBatch } from '../../models/shared-prefix-batch.ts';
import { EOS_ID, PAD_ID } from '../../models/tokenizer.ts';
import { randomImage } from './reference-forward.ts';

const cfg = policyConfig({ imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 8, maxResponseLen: 6 });
const a = randomImage(cfg, 1);
const b = randomImage(cfg, 2);
const aCopy = { ...a, data: a.data.slice() };

test('rows share a prefix when prompt ids and image content agree, in order of first appearance, wherever they are', () => {
  const prompts = [
    [2, 10, 11],
    [2, 10, 11],
    [2, 20],
    [2, 10, 11],
    [2, 10, 11],
  ];
  const images = [a, aCopy, a, b, a];
  const responses = [[30, EOS_ID], [31], [32, 33, 34], [35], [36]];
  const s = buildSharedPrefixBatch(images, prompts, responses, cfg);
  assert.ok(s);
  assert.deepEqual(Array.from(s.rowPrefix, Number), [0, 0, 1, 2, 0]);
  assert.equal(s.Bp, 3);
  assert.equal(s.B, 5);
  // prompt batch length 3: the prefix is the image (6 patches) and the first 2 prompt columns
  assert.equal(s.Lq, 2);
  assert.equal(s.S0, 6 + 2);
  assert.deepEqual(Array.from(s.prefixIds, Number), [2, 10, PAD_ID, 2, 2, 10]);
  assert.deepEqual(Array.from(s.prefixKeyValid), [1, 1, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(s.prefixPositions, Number), [0, 1, 0, 0, 0, 1]);
  assert.deepEqual(Array.from(s.prefixValid.subarray(8, 16)), [1, 1, 1, 1, 1, 1, 0, 1]);
  // row 2 (prompt [2, 20], left-padded by one): feeds 20 at position 1, then its response but the last token
  assert.equal(s.Lr, 3);
  assert.deepEqual(Array.from(s.tokens.subarray(6, 9), Number), [20, 32, 33]);
  assert.deepEqual(Array.from(s.positions.subarray(6, 9), Number), [1, 2, 3]);
  assert.deepEqual(Array.from(s.targets.subarray(6, 9), Number), [32, 33, 34]);
  // row 1: one response token; the rest is PAD
  assert.deepEqual(Array.from(s.tokens.subarray(3, 6), Number), [11, 31, PAD_ID]);
  assert.deepEqual(Array.from(s.tokenValid.subarray(3, 6)), [1, 1, 0]);
  assert.deepEqual(Array.from(s.targetValid.subarray(3, 6)), [1, 0, 0]);
});

test('single-token prompts have no prefix to share; a bad prompt is named by its row', () => {
  assert.equal(buildSharedPrefixBatch([a, b], [[2], [2]], [[30], [31]], cfg), undefined);
  assert.throws(
    () =>
      buildSharedPrefixBatch(
        [a, b, a],
        [
          [2, 10],
          [2, 10],
          [7, 10],
        ],
        [[30], [31], [32]],
        cfg,
      ),
    /^Error: prompt 2: must start with BOS/,
  );
});
