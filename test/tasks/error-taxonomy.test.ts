import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { DIGIT_FAMILIES } from '../../tasks/digits/families.ts';
import { DIGIT_GRAMMARS } from '../../tasks/digits/error-grammar.ts';
import { ScenesTask } from '../../tasks/scenes/task.ts';
import { SCENE_FAMILIES } from '../../tasks/scenes/families.ts';
import { SCENE_GRAMMARS } from '../../tasks/scenes/error-grammar.ts';
import { MixtureTask } from '../../tasks/mixture.ts';
import { classifyFailure, type ErrorClass, errorTable, responseParts } from '../../tasks/error-taxonomy.ts';
import { accuracyReward } from '../../tasks/rewards/accuracy.ts';
import type { Task, TaskRecord } from '../../tasks/types.ts';
import { Rng } from '../../util/rng.ts';

const say = (trace: string, answer: string) => `<think>${trace}</think><answer>${answer}</answer>`;

/** [response, expected class (null: not a failure), detail pattern] */
type Case = [string, ErrorClass | null, RegExp?];

/** Pins the record (so a generator change shows here, not as a puzzling class), then checks each case. */
function check(task: Task, index: number, pinned: { question: string; meta: Record<string, unknown> }, cases: Case[]): void {
  const r = task.recordAt('test', index);
  assert.equal(r.question, pinned.question, `${r.id} question`);
  for (const [k, v] of Object.entries(pinned.meta)) assert.deepEqual(r.meta[k], v, `${r.id} meta.${k}`);
  assert.equal(classifyFailure(task, r, r.demonstration!), null, `${r.id}: the demonstration is not a failure`);
  for (const [response, expected, detail] of cases) {
    const c = classifyFailure(task, r, response);
    assert.equal(c?.class ?? null, expected, `${r.family} ${r.id} ${JSON.stringify(response)}: ${c?.detail}`);
    if (detail) assert.match(c!.detail!, detail, `${r.family} ${JSON.stringify(response)}`);
  }
}

test('error taxonomy, digits: hand-checked responses for every family and class', () => {
  const task = new DigitsTask();
  check(task, 0, { question: 'What is the 1st digit from the left?', meta: { digits: [0, 6], position: 1 } }, [
    [say('0,6 #1=0', '0'), null],
    [say('8,6 #1=8', '8'), 'perception', /read 8,6, the image shows 0,6/],
    [say('0,6 #2=6', '6'), 'reasoning', /took the 2nd digit, the question asks for the 1st/],
    [say('0,6 #1=6', '6'), 'calculation', /the 1st digit of 0,6 is 0, the trace says 6/],
    [say('0,6 #1=0', '6'), 'inconsistency', /the trace gives 0, the answer is 6/],
    [say('0,6', '6'), 'format', /not in the read grammar/],
    [say('zero six', '6'), 'format'],
    ['<answer>6</answer>', 'format', /no <think>/],
    [say('0,6 #1=0', ''), 'format', /empty answer/],
    [say('0,6 #1=0', 'zero point six'), 'format', /not an integer/],
    ['<think>0,6 #1=0</think><answer>0', 'format', /no <answer>/],
    // a misread digit the question does not ask about is not what failed
    [say('0,5 #1=0', '5'), 'inconsistency'],
  ]);
  check(task, 1, { question: 'What is the sum of the digits?', meta: { digits: [7, 6] } }, [
    [say('7+8=15', '15'), 'perception', /read 7,8, the image shows 7,6/],
    [say('7+6+1=14', '14'), 'perception'],
    [say('7*6=42', '42'), 'reasoning', /computes 7\*6/],
    [say('7+6=14', '14'), 'calculation', /7\+6 is 13, the trace says 14/],
    [say('7+6=13', '14'), 'inconsistency'],
    // the earliest broken step wins, the later ones are in the detail
    [say('7+8=14', '12'), 'perception', /also calculation: .*also inconsistency/],
    // a trace of another family: reasoning, unless it lists the image wrongly
    [say('max 7,6=7', '7'), 'reasoning', /a max trace .* answered as a max question/],
    [say('max 7,8=8', '8'), 'perception', /read 7,8, the image shows 7,6; a max trace/],
    [say('7>6', 'yes'), 'format', /not an integer/],
    [say('7+6=', '13x'), 'format'],
  ]);
  check(task, 2, { question: 'What is the largest digit?', meta: { digits: [7, 0] } }, [
    [say('max 7,9=9', '9'), 'perception', /largest 7/],
    [say('min 7,0=0', '0'), 'reasoning', /takes the min/],
    [say('max 7,0=0', '0'), 'calculation', /max 7,0 is 7, the trace says 0/],
    [say('max 7,0=7', '0'), 'inconsistency'],
    // 0 misread as 1 does not change the largest digit: the failure is the calculation
    [say('max 7,1=1', '1'), 'calculation'],
  ]);
  check(task, 3, { question: 'How many digits are greater than 3?', meta: { digits: [8, 6], threshold: 3 } }, [
    [say('8,2>3:1', '1'), 'perception'],
    [say('8,6>7:1', '1'), 'reasoning', /counts digits > 7, the question asks for > 3/],
    [say('8,6<3:0', '0'), 'reasoning', /counts digits < 3/],
    [say('8,6>3:1', '1'), 'calculation', /2 of 8,6 are > 3, the trace says 1/],
    [say('8,6>3:2', '1'), 'inconsistency'],
    [say('8,6>3', '2x'), 'format'],
  ]);
  // "Is the 2nd digit (1) larger than the 1st (3)?": the trace writes 2nd REL 1st
  check(task, 4, { question: 'Is the 2nd digit larger than the 1st?', meta: { digits: [3, 1], first: 2, second: 1 } }, [
    [say('5>3', 'yes'), 'perception', /read 5 and 3, the image's 2nd and 1st digits are 1 and 3/],
    [say('3>1', 'yes'), 'reasoning', /compared the 1st and 2nd digits \(3, 1\), the question asks for the 2nd and 1st/],
    [say('1>3', 'yes'), 'calculation', /1>3 is false/],
    [say('1<3', 'yes'), 'inconsistency', /the trace gives no, the answer is yes/],
    [say('1<3', '1'), 'format', /not yes or no/],
  ]);
  // text controls: no perception step; misquoting the question is reasoning
  check(task, 5, { question: 'Ignore the image. What is 8+5?', meta: { terms: [8, 5] } }, [
    [say('8+6=14', '14'), 'reasoning', /misquoted the question: 8\+6 for 8\+5/],
    [say('8*5=40', '40'), 'reasoning', /computes 8\*5/],
    [say('8+5=12', '12'), 'calculation'],
    [say('8+5=13', '12'), 'inconsistency'],
    [say('8+5=13', 'yes'), 'format'],
    [say('13', '12'), 'format'],
  ]);
  check(task, 6, { question: 'Ignore the image. Is 9 larger than 9?', meta: { a: 9, b: 9 } }, [
    [say('9>8', 'yes'), 'reasoning', /misquoted the question: compared 9 and 8, the question has 9 and 9/],
    [say('9>9', 'yes'), 'calculation'],
    [say('9=9', 'yes'), 'inconsistency'],
    [say('nine is nine', 'yes'), 'format'],
  ]);
});

test('error taxonomy, scenes: hand-checked responses for every family and class', () => {
  const task = new ScenesTask();
  const objects = (r: TaskRecord) => (r.meta.objects as { color: string; shape: string }[]).map((o) => o.color[0] + o.shape[0]).join(' ');
  const pin = (i: number, question: string, scene: string, meta: Record<string, unknown> = {}) => {
    assert.equal(objects(task.recordAt('test', i)), scene, `scenes/test/${i} objects`);
    return { question, meta };
  };
  check(task, 0, pin(0, 'How many green shapes are there?', 'bc gt bt bc', { color: 'green' }), [
    [say('bc bt bt bc', '0'), 'perception', /listed bc bt bt bc \(0 green shapes\), the image has bc gt bt bc \(1\)/],
    [say('bc gt bt bc', '3'), 'reasoning', /the answer 3 is the number of blue shapes/],
    [say('bc gt bt bc', '2'), 'calculation', /has 1 green shapes, the answer is 2/],
    // order and the other objects do not matter to the count
    [say('gt bc bc bs', '2'), 'calculation'],
    [say('bc gt bt bc', 'green'), 'format'],
    [say('four shapes', '4'), 'format'],
  ]);
  check(task, 11, pin(11, 'How many circles are there?', 'rc ys gs', { shape: 'circle' }), [
    [say('rs ys gs', '0'), 'perception'],
    [say('rc ys gs', '2'), 'reasoning', /number of squares/],
    [say('rc ys gs', '3'), 'calculation'],
  ]);
  check(task, 2, pin(2, 'How many shapes are there?', 'bt gc'), [
    [say('bt', '1'), 'perception'],
    [say('bt gc rs', '3'), 'perception'],
    [say('bt gc', '3'), 'calculation'],
    [say('bt gc', '1'), 'calculation'],
  ]);
  check(task, 3, pin(3, 'What color is the triangle?', 'rc gc yt rc', { shape: 'triangle' }), [
    [say('rt', 'red'), 'perception', /the triangle is yellow triangle, the trace reads red triangle/],
    [say('bs', 'blue'), 'perception', /names a blue square, the image has rc gc yt rc/],
    [say('rc', 'red'), 'reasoning', /described the red circle, the question asks about the triangle/],
    [say('yt', 'triangle'), 'reasoning', /answered the shape/],
    [say('yt', 'green'), 'inconsistency'],
    [say('yt', '3'), 'format', /not one word/],
    // a whole listing: right, so reasoning; wrong, so perception
    [say('rc gc yt rc', 'red'), 'reasoning', /scene listing trace/],
    [say('rc gc rt rc', 'red'), 'perception', /listed rc gc rt rc/],
    [say('yellow triangle', 'red'), 'format'],
  ]);
  check(task, 4, pin(4, 'What shape is the yellow one?', 'ys bt', { color: 'yellow' }), [
    [say('yc', 'circle'), 'perception'],
    [say('bt', 'triangle'), 'reasoning', /described the blue triangle/],
    [say('ys', 'yellow'), 'reasoning', /answered the color/],
    [say('ys', 'circle'), 'inconsistency'],
    [say('ys', 'big square'), 'format'],
  ]);
  // "Is the green shape left of the yellow shape?": yellow is in column 2, green in 3
  check(task, 5, pin(5, 'Is the green shape left of the yellow shape?', 'ys gt', { first: 'green', second: 'yellow' }), [
    [say('g left y', 'yes'), 'perception', /the green shape is in column 3 and the yellow in column 2/],
    [say('r left g', 'yes'), 'perception', /names red/],
    [say('y left g', 'yes'), 'inconsistency'],
    [say('g above y', 'yes'), 'reasoning', /an above trace/],
    [say('yt', 'yes'), 'reasoning', /an object trace/],
    [say('y left g', 'maybe'), 'format'],
  ]);
  check(task, 35, pin(35, 'Is the blue shape left of the yellow shape?', 'yc bc rt', { first: 'blue', second: 'yellow' }), [
    [say('b left r', 'yes'), 'reasoning', /relates blue and red/],
    [say('b left y', 'yes'), 'perception'],
  ]);
  check(task, 6, pin(6, 'Is the red shape above the blue shape?', 'rc ys bt yt', { first: 'red', second: 'blue' }), [
    [say('b above r', 'no'), 'perception', /row 2 and the red in row 1/],
    [say('y above b', 'no'), 'reasoning'],
    [say('g above b', 'no'), 'perception'],
    [say('r above b', 'no'), 'inconsistency'],
  ]);
  check(task, 7, pin(7, 'Ignore the image. Count yellow in: green,red,red', 'rc gc', { target: 'yellow' }), [
    [say('red x2', '2'), 'reasoning', /counted red, the question asks for yellow/],
    [say('yellow x1', '1'), 'calculation'],
    [say('yellow x0', '1'), 'inconsistency'],
    [say('yellow', '1'), 'reasoning', /a text-color trace/],
    [say('x0', '1'), 'format'],
  ]);
  check(task, 8, pin(8, 'Ignore the image. The ball is red. What color is it?', 'bt yt gc', { color: 'red' }), [
    [say('blue', 'blue'), 'reasoning', /misquoted the question: blue for red/],
    [say('red', 'blue'), 'inconsistency'],
    [say('red', '2'), 'format'],
    [say('red', 'ball'), 'inconsistency'],
    [say('red!!', 'blue'), 'format'],
  ]);
  check(task, 9, pin(9, 'Ignore the image. Y is left of Z. Is Z left of Y?', 'yc bs rs', { left: 'Y', right: 'Z' }), [
    [say('Z left Y', 'yes'), 'reasoning', /misquoted the question: Z left Y for Y left Z/],
    [say('Y left Z', 'yes'), 'inconsistency'],
    [say('Y left Z', 'true'), 'format'],
  ]);
});

test('error taxonomy: every family has a grammar; tasks without a classifier, mixtures and a throwing classifier', () => {
  assert.deepEqual(Object.keys(DIGIT_GRAMMARS).sort(), DIGIT_FAMILIES.map((f) => f.name).sort());
  assert.deepEqual(Object.keys(SCENE_GRAMMARS).sort(), SCENE_FAMILIES.map((f) => f.name).sort());
  const digits = new DigitsTask();
  const r = digits.recordAt('test', 1);
  const bare: Task = {
    name: 'bare',
    imageHeight: 28,
    imageWidth: 56,
    families: digits.families,
    fingerprint: 'bare',
    size: () => 1,
    recordAt: () => r,
  };
  assert.deepEqual(classifyFailure(bare, r, say('7+6=14', '14')), { class: 'unclassified', detail: 'task bare declares no error classifier' });
  assert.equal(classifyFailure(bare, r, say('7+6=13', '13')), null);
  // the caller's accuracy decides what a failure is (here a reward that says 0.5)
  assert.equal(classifyFailure(digits, r, say('7+6=13', '13'), 0.5)?.class, 'unclassified');
  assert.equal(classifyFailure(digits, r, say('7+6=14', '14'), 1), null);
  const throwing: Task = {
    ...bare,
    classifyError: () => {
      throw new Error('boom');
    },
  };
  assert.deepEqual(classifyFailure(throwing, r, say('7+6=14', '14')), { class: 'unclassified', detail: 'the classifier failed: boom' });

  const mix = new MixtureTask([new DigitsTask(), new ScenesTask()]);
  const [d, s] = [mix.recordAt('test', 2), mix.recordAt('test', 3)];
  assert.equal(d.family, 'sum');
  assert.equal(s.family, 'count-shape');
  assert.equal(classifyFailure(mix, d, say('7+6=14', '14'))?.class, 'calculation');
  assert.equal(classifyFailure(mix, s, say('ys', '0'))?.class, 'perception');
  assert.equal(classifyFailure(mix, { ...d, family: 'mystery' }, say('1', '2'))?.class, 'unclassified');

  // the trace read is the last think block before the answer the accuracy reward reads
  assert.deepEqual(responseParts(' <think> 1 + 2 =3 </think> junk <answer> 3 </answer><answer>4</answer>'), { trace: '1 + 2 =3', answer: '4' });
  assert.equal(classifyFailure(digits, r, '<think>7+6=13</think><answer>13</answer><answer>14</answer>')?.class, 'inconsistency');
  assert.equal(classifyFailure(digits, r, '<think> 7 + 6 = 14 </think>\n<answer> 14 </answer>')?.class, 'calculation');
});

/** The digits a family's trace reads, and its trace and answer from any row (hand-written, independent of families.ts). */
function digitsTrace(r: TaskRecord, d: readonly number[]): { trace: string; answer: string; read: number[] } {
  const m = r.meta as { position: number; threshold: number; first: number; second: number };
  const rel = (a: number, b: number) => `${a}${a > b ? '>' : a < b ? '<' : '='}${b}`;
  switch (r.family) {
    case 'read':
      return { trace: `${d.join(',')} #${m.position}=${d[m.position - 1]}`, answer: String(d[m.position - 1]), read: [...d] };
    case 'sum': {
      const s = d.reduce((a, b) => a + b, 0);
      return { trace: `${d.join('+')}=${s}`, answer: String(s), read: [...d] };
    }
    case 'max':
      return { trace: `max ${d.join(',')}=${Math.max(...d)}`, answer: String(Math.max(...d)), read: [...d] };
    case 'count': {
      const c = d.filter((x) => x > m.threshold).length;
      return { trace: `${d.join(',')}>${m.threshold}:${c}`, answer: String(c), read: [...d] };
    }
    case 'compare': {
      const [a, b] = [d[m.first - 1], d[m.second - 1]];
      return { trace: rel(a, b), answer: a > b ? 'yes' : 'no', read: [a, b] };
    }
  }
  throw new Error(r.family);
}

test('error taxonomy, digits property: demonstrations are not failures; one perturbed digit, recomputed consistently, is perception', () => {
  const rng = Rng.seeded(7);
  let perception = 0;
  let total = 0;
  for (const n of [2, 3, 4]) {
    const task = new DigitsTask({ digits: n, seed: n });
    for (let i = 0; i < 350; i++) {
      const r = task.recordAt('test', i);
      assert.equal(classifyFailure(task, r, r.demonstration!), null, `${r.id} demonstration`);
      assert.equal(task.classifyError(r, r.demonstration!).class, 'unclassified', 'nothing broken');
      if (r.visionDependency === 'low') continue;
      const d = r.meta.digits as number[];
      assert.equal(say(digitsTrace(r, d).trace, r.answer), r.demonstration, `${r.id}: the test's trace builder`);
      // perturb one digit the trace reads (compare reads only the two asked ones)
      const m = r.meta as { first: number; second: number };
      const slots = r.family === 'compare' ? [m.first - 1, m.second - 1] : d.map((_, k) => k);
      const p = slots[rng.int(slots.length)];
      const misread = [...d];
      misread[p] = (d[p] + 1 + rng.int(9)) % 10;
      const { trace, answer } = digitsTrace(r, misread);
      const response = say(trace, answer);
      const c = classifyFailure(task, r, response);
      total++;
      if (answer === r.answer) {
        assert.equal(c, null, `${r.id} ${response}: the misread does not change the answer`);
        continue;
      }
      // compare traces name no positions: a pair that is the image's digits at other positions reads as reasoning
      const [a, b] = digitsTrace(r, misread).read;
      const elsewhere = r.family === 'compare' && d.some((x, i) => x === a && d.some((y, j) => j !== i && y === b));
      assert.equal(c?.class, elsewhere ? 'reasoning' : 'perception', `${r.id} ${r.question} ${response} (image ${d}): ${c?.detail}`);
      if (!elsewhere) perception++;
    }
  }
  assert.ok(perception > total / 2, `${perception} of ${total} perturbations changed the answer`);
});

test('error taxonomy, scenes property: demonstrations are not failures; one perturbed object, recomputed consistently, is perception', () => {
  const rng = Rng.seeded(11);
  const task = new ScenesTask({ seed: 3 });
  const colors = ['r', 'g', 'b', 'y'];
  const shapes = ['s', 'c', 't'];
  const other = (xs: string[], x: string) => xs.filter((y) => y !== x)[rng.int(xs.length - 1)];
  let perception = 0;
  for (let i = 0; i < 700; i++) {
    const r = task.recordAt('test', i);
    assert.equal(classifyFailure(task, r, r.demonstration!), null, `${r.id} demonstration`);
    const codes = (r.meta.objects as { color: string; shape: string }[]).map((o) => o.color[0] + o.shape[0]);
    const m = r.meta as { color: string; shape: string };
    let response: string;
    switch (r.family) {
      case 'count-color':
      case 'count-shape':
      case 'count-all': {
        const p = rng.int(codes.length);
        const changed = [...codes];
        changed[p] = rng.int(2) ? other(colors, codes[p][0]) + codes[p][1] : codes[p][0] + other(shapes, codes[p][1]);
        if (r.family === 'count-all' && rng.int(2)) changed.splice(p, 1); // or a missed object
        if (r.family === 'count-all' && !changed.length) changed.push('rs', 'gs');
        const n =
          r.family === 'count-all' ? changed.length : changed.filter((c) => (r.family === 'count-color' ? c[0] === m.color[0] : c[1] === m.shape[0])).length;
        response = say(changed.join(' '), String(n));
        break;
      }
      case 'color-of': {
        const c = other(colors, (r.answer as string)[0]) + m.shape[0];
        response = say(c, { r: 'red', g: 'green', b: 'blue', y: 'yellow' }[c[0]]!);
        break;
      }
      case 'shape-of': {
        const c = m.color[0] + other(shapes, (r.answer as string)[0]);
        response = say(c, { s: 'square', c: 'circle', t: 'triangle' }[c[1]]!);
        break;
      }
      case 'left-of':
      case 'above': {
        // the positions misjudged: the relation the other way round, and the answer with it
        const [x, word, y] = /<think>(\w) (\w+) (\w)<\/think>/.exec(r.demonstration!)!.slice(1);
        response = say(`${y} ${word} ${x}`, r.answer === 'yes' ? 'no' : 'yes');
        break;
      }
      default:
        continue;
    }
    const c = classifyFailure(task, r, response);
    if (accuracyReward(response, r.answer) === 1) {
      assert.equal(c, null);
      continue;
    }
    assert.equal(c?.class, 'perception', `${r.id} ${r.question} ${response} (image ${codes.join(' ')}): ${c?.detail}`);
    perception++;
  }
  assert.ok(perception > 300, `${perception} perception failures`);
});

test('error taxonomy, both tasks: a failure always gets a class other than unclassified (random edits of demonstrations)', () => {
  const rng = Rng.seeded(5);
  const alphabet = '0123456789+-*x,#=<>: abcdefgrstyABCPQZ';
  const answers: Record<string, string[]> = { integer: ['0', '1', '2', '3', '9', '17'], 'yes/no': ['yes', 'no'], word: ['red', 'blue', 'circle', 'square'] };
  const seen = new Set<string>();
  for (const task of [new DigitsTask({ digits: 3 }), new ScenesTask()]) {
    const types = new Map(task.families.map((f) => [f.name, f.answerType]));
    for (let i = 0; i < 600; i++) {
      const r = task.recordAt('validation', i % 500);
      const [, trace] = /<think>(.*)<\/think>/.exec(r.demonstration!)!;
      const chars = [...trace];
      for (let e = rng.int(3); e >= 0; e--) chars[rng.int(chars.length)] = alphabet[rng.int(alphabet.length)];
      const pool = answers[types.get(r.family)!];
      const response = say(chars.join(''), rng.int(4) ? pool[rng.int(pool.length)] : r.answer);
      const c = classifyFailure(task, r, response);
      if (c) {
        assert.notEqual(c.class, 'unclassified', `${r.id} ${r.question} ${response}: ${c.detail}`);
        seen.add(c.class);
      }
    }
  }
  assert.deepEqual([...seen].sort(), ['calculation', 'format', 'inconsistency', 'perception', 'reasoning']);
});

test('errorTable: counts and shares of failures per group', () => {
  const t = errorTable([
    { family: 'sum', visionDependency: 'high', errorClass: 'perception' },
    { family: 'sum', visionDependency: 'high', errorClass: null },
    { family: 'read', visionDependency: 'high', errorClass: 'calculation' },
    { family: 'text-sum', visionDependency: 'low', errorClass: null },
  ]);
  assert.equal(t.overall.n, 4);
  assert.equal(t.overall.failures, 2);
  assert.deepEqual(t.overall.counts, { format: 0, perception: 1, reasoning: 0, calculation: 1, inconsistency: 0, unclassified: 0 });
  assert.equal(t.visionDependent.shares.perception, 0.5);
  assert.deepEqual(t.general, {
    n: 1,
    failures: 0,
    counts: { format: 0, perception: 0, reasoning: 0, calculation: 0, inconsistency: 0, unclassified: 0 },
    shares: { format: null, perception: null, reasoning: null, calculation: null, inconsistency: null, unclassified: null },
  });
  assert.deepEqual(Object.keys(t.byFamily), ['sum', 'read', 'text-sum']);
  assert.equal(t.byFamily.sum.shares.perception, 1);
});
