import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encode,
  decode,
  encodePrompt,
  encodeResponse,
  describeTokens,
  PAD_ID,
  EOS_ID,
  BOS_ID,
  THINK_OPEN_ID,
  THINK_CLOSE_ID,
  ANSWER_OPEN_ID,
  ANSWER_CLOSE_ID,
  VOCAB_SIZE,
} from '../../models/tokenizer.ts';
import { Rng } from '../../util/rng.ts';

test('tokenizer: ids of special tokens and characters follow the contract', () => {
  assert.deepEqual([PAD_ID, EOS_ID, BOS_ID, THINK_OPEN_ID, THINK_CLOSE_ID, ANSWER_OPEN_ID, ANSWER_CLOSE_ID], [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(VOCAB_SIZE, 102);
  assert.deepEqual(encode(' ~'), [7, 101]);
  const ch = (c: string) => c.charCodeAt(0) - 25;
  assert.deepEqual(encode('<think>1+2=3</think><answer>3</answer>'), [3, ch('1'), ch('+'), ch('2'), ch('='), ch('3'), 4, 5, ch('3'), 6]);
  // A '<' that does not start markup is an ordinary character.
  assert.deepEqual(encode('<a'), [ch('<'), ch('a')]);
  assert.deepEqual(encode('<answer'), Array.from('<answer', ch));
});

test('tokenizer: decode(encode(s)) === s for random printable-ASCII strings with markup', () => {
  const rng = Rng.seeded(7);
  const pieces = ['<think>', '</think>', '<answer>', '</answer>', '<', '>', '/'];
  for (let n = 0; n < 300; n++) {
    let s = '';
    const len = rng.int(40);
    for (let i = 0; i < len; i++) s += rng.float() < 0.15 ? pieces[rng.int(pieces.length)] : String.fromCharCode(32 + rng.int(95));
    const ids = encode(s);
    assert.ok(ids.every((id) => id >= 3 && id < VOCAB_SIZE));
    assert.equal(decode(ids), s);
  }
  // Markup is one token each.
  assert.equal(encode('<think></think><answer></answer>').length, 4);
});

test('tokenizer: prompt/response helpers and decode of control tokens', () => {
  assert.deepEqual(encodePrompt('ab'), [BOS_ID, 'a'.charCodeAt(0) - 25, 'b'.charCodeAt(0) - 25]);
  assert.deepEqual(encodeResponse('7'), ['7'.charCodeAt(0) - 25, EOS_ID]);
  assert.equal(decode([PAD_ID, BOS_ID, ...encode('hi'), EOS_ID, ...encode('ignored')]), 'hi');
  assert.equal(describeTokens([BOS_ID, ...encode('x'), EOS_ID, PAD_ID]), '<bos>x<eos><pad>');
});

test('tokenizer: unknown characters and ids are clear errors', () => {
  assert.throws(() => encode('ab\ncd'), /unsupported character "\\n" \(U\+000A\) at position 2/);
  assert.throws(() => encode('x é'), /"é" \(U\+00E9\) at position 2/);
  assert.throws(() => encode('\t'), /at position 0/);
  assert.throws(() => decode([10, 102]), /token id 102 at position 1/);
  assert.throws(() => decode([-1]), /token id -1 at position 0/);
  assert.throws(() => decode([2.5]), /token id 2.5/);
});
