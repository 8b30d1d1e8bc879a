import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScenesTask, sceneSplit } from '../../tasks/scenes/task.ts';
import type { SceneObject } from '../../tasks/scenes/render.ts';
import { scoreResponse } from '../../tasks/rewards/composite.ts';
import { MAX_DEMONSTRATION_CHARS, MAX_QUESTION_CHARS, isPrintableAscii } from '../../tasks/text.ts';
import type { RgbImage } from '../../util/image.ts';
import type { TaskRecord } from '../../tasks/types.ts';

// Colours as a viewer would name them, by dominant channel; independent of the generator's palette table.
function colorName(r: number, g: number, b: number): string | null {
  if (r + g + b < 60) return null; // background
  if (r > 150 && g > 150 && b < 100) return 'yellow';
  if (r > 150 && g < 100 && b < 100) return 'red';
  if (g > 150 && r < 100 && b < 100) return 'green';
  if (b > 150 && r < 100) return 'blue';
  throw new Error(`unexpected colour ${r},${g},${b}`);
}

interface Blob {
  color: string;
  shape: string;
  cx: number;
  cy: number;
}

/** Connected single-colour blobs, each classified by the widths of its top and bottom rows. */
function decodeScene(img: RgbImage): Blob[] {
  const { height: H, width: W, data } = img;
  const names = Array.from({ length: H * W }, (_, p) => colorName(data[p * 3], data[p * 3 + 1], data[p * 3 + 2]));
  const seen = new Uint8Array(H * W);
  const blobs: Blob[] = [];
  for (let p0 = 0; p0 < H * W; p0++) {
    if (!names[p0] || seen[p0]) continue;
    const stack = [p0];
    const pixels: number[] = [];
    seen[p0] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      pixels.push(p);
      const x = p % W;
      for (const q of [p - W, p + W, x > 0 ? p - 1 : -1, x < W - 1 ? p + 1 : -1]) {
        if (q >= 0 && q < H * W && !seen[q] && names[q]) {
          assert.equal(names[q], names[p0], 'touching blobs of different colours');
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    const xs = pixels.map((p) => p % W);
    const ys = pixels.map((p) => Math.floor(p / W));
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const w = x1 - x0 + 1;
    const rowWidth = (y: number): number => ys.filter((v) => v === y).length;
    const top = rowWidth(y0);
    const bottom = rowWidth(y1);
    const shape = top === w && bottom === w ? 'square' : bottom === w && top < w / 2 ? 'triangle' : top < w && bottom < w ? 'circle' : '?';
    blobs.push({ color: names[p0]!, shape, cx: (x0 + x1) / 2, cy: (y0 + y1) / 2 });
  }
  return blobs;
}

const PLURAL: Record<string, string> = { squares: 'square', circles: 'circle', triangles: 'triangle' };

/** The answer recomputed from the pixels and the question text alone. */
function answerFromPixels(r: TaskRecord): string {
  const blobs = decodeScene(r.image);
  const q = r.question;
  const one = (pred: (b: Blob) => boolean): Blob => {
    const m = blobs.filter(pred);
    assert.equal(m.length, 1, `${r.id}: "${q}" refers to exactly one shape`);
    return m[0];
  };
  const cell = (v: number): number => Math.floor(v / 14);
  let m: RegExpMatchArray | null;
  if ((m = q.match(/^How many (\w+) shapes are there\?$/))) return String(blobs.filter((b) => b.color === m![1]).length);
  if ((m = q.match(/^How many (squares|circles|triangles) are there\?$/))) return String(blobs.filter((b) => b.shape === PLURAL[m![1]]).length);
  if (q === 'How many shapes are there?') return String(blobs.length);
  if ((m = q.match(/^What color is the (\w+)\?$/))) return one((b) => b.shape === m![1]).color;
  if ((m = q.match(/^What shape is the (\w+) one\?$/))) return one((b) => b.color === m![1]).shape;
  if ((m = q.match(/^Is the (\w+) shape left of the (\w+) shape\?$/))) {
    const [a, b] = [one((x) => x.color === m![1]), one((x) => x.color === m![2])];
    assert.notEqual(cell(a.cx), cell(b.cx), 'left-of pairs sit in different columns');
    return a.cx < b.cx ? 'yes' : 'no';
  }
  if ((m = q.match(/^Is the (\w+) shape above the (\w+) shape\?$/))) {
    const [a, b] = [one((x) => x.color === m![1]), one((x) => x.color === m![2])];
    assert.notEqual(cell(a.cy), cell(b.cy), 'above pairs sit in different rows');
    return a.cy < b.cy ? 'yes' : 'no';
  }
  if ((m = q.match(/^Ignore the image\. Count (\w+) in: ([\w,]+)$/))) return String(m[2].split(',').filter((w) => w === m![1]).length);
  if ((m = q.match(/^Ignore the image\. The \w+ is (\w+)\. What color is it\?$/))) return m[1];
  if ((m = q.match(/^Ignore the image\. (\w) is left of (\w)\. Is (\w) left of (\w)\?$/))) return m[1] === m[3] && m[2] === m[4] ? 'yes' : 'no';
  throw new Error(`unrecognised question ${q}`);
}

test('scenes: every answer is recomputed from the rendered pixels (default and 28x84 canvases)', () => {
  for (const opts of [{ seed: 0 }, { seed: 9, height: 28, width: 84 }, { seed: 3, height: 42, width: 42, maxObjects: 3 }]) {
    const task = new ScenesTask(opts);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 400; i++) {
      const r = task.recordAt(i % 2 ? 'train' : 'validation', i % 500);
      assert.equal(r.image.height, task.imageHeight);
      assert.equal(r.image.width, task.imageWidth);
      const blobs = decodeScene(r.image);
      assert.equal(blobs.length, (r.meta.objects as unknown[]).length, `${r.id}: one blob per object`);
      assert.ok(
        blobs.every((b) => b.shape !== '?'),
        `${r.id}: every blob is a recognisable shape`,
      );
      assert.equal(r.answer, answerFromPixels(r), `${r.id} ${r.family}: ${r.question}`);
      assert.equal(r.visionDependency, r.family.startsWith('text-') ? 'low' : 'high');
      counts[r.answer] = (counts[r.answer] ?? 0) + 1;
    }
    assert.ok(counts.yes > 20 && counts.no > 20, `yes/no balanced enough: ${counts.yes}/${counts.no}`);
  }
});

test('scenes: text fits the tokenizer, demonstrations earn full reward, deterministic by seed', () => {
  const task = new ScenesTask();
  assert.equal(task.families.length, 10);
  for (let i = 0; i < 1000; i++) {
    const r = task.recordAt('test', i);
    assert.ok(isPrintableAscii(r.question) && r.question.length <= MAX_QUESTION_CHARS, r.question);
    assert.ok(r.demonstration!.length <= MAX_DEMONSTRATION_CHARS, r.demonstration);
    assert.deepEqual(scoreResponse({ response: r.demonstration!, answer: r.answer }), { overall: 1, accuracy: 1, format: 1 });
  }
  assert.deepEqual(new ScenesTask({ seed: 4 }).recordAt('train', 77), new ScenesTask({ seed: 4 }).recordAt('train', 77));
  assert.notDeepEqual(new ScenesTask({ seed: 5 }).recordAt('train', 77).image.data, new ScenesTask({ seed: 4 }).recordAt('train', 77).image.data);
});

test('scenes: held-out scenes never appear in training (images disjoint by split)', () => {
  const task = new ScenesTask({ sizes: { train: 3000 } });
  const pixels = (split: 'train' | 'validation' | 'test'): Set<string> => {
    const out = new Set<string>();
    for (let i = 0; i < task.size(split); i++) {
      const r = task.recordAt(split, i);
      assert.equal(sceneSplit(r.meta.objects as SceneObject[]), split);
      out.add(Buffer.from(r.image.data).toString('base64'));
    }
    return out;
  };
  const train = pixels('train');
  let checked = 0;
  for (const split of ['validation', 'test'] as const) {
    for (const img of pixels(split)) {
      assert.ok(!train.has(img), `a ${split} image appears in training`);
      checked++;
    }
  }
  assert.ok(checked > 1000);
});

test('scenes: configuration errors are named', () => {
  assert.throws(() => new ScenesTask({ width: 50 }), /width must be a positive multiple of 14/);
  assert.throws(() => new ScenesTask({ maxObjects: 6 }), /maxObjects/);
  assert.throws(() => new ScenesTask({ height: 14, families: ['above'] }), /needs at least 2 rows/);
  assert.equal(
    new ScenesTask({ height: 14, maxObjects: 3 }).families.some((f) => f.name === 'above'),
    false,
  );
});

test('mixture: digits and scenes interleave as one 28x56 task; sizes must match', async () => {
  const { MixtureTask } = await import('../../tasks/mixture.ts');
  const { DigitsTask } = await import('../../tasks/digits/task.ts');
  const digits = new DigitsTask({ sizes: { validation: 40 } });
  const scenes = new ScenesTask();
  const mix = new MixtureTask([digits, scenes]);
  assert.equal(mix.size('validation'), 80);
  assert.deepEqual(mix.recordAt('validation', 5), scenes.recordAt('validation', 2));
  assert.deepEqual(mix.recordAt('validation', 6), digits.recordAt('validation', 3));
  assert.equal(mix.families.length, 17);
  assert.throws(() => new MixtureTask([digits, new ScenesTask({ width: 84 })]), /28x84 images/);
});
