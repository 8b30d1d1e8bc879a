/**
 * Question families over a synthetic scene. `make` returns null when the scene cannot pose the question
 * unambiguously (e.g. "the circle" when there are two); the task then draws another scene. Answers are
 * computed from the scene description the image is rendered from, so they are correct by construction.
 *
 * Reasoning traces name objects by a colour letter and a shape letter (`rs` = red square); counting
 * traces list the whole scene in reading order, then the answer counts from that list.
 */
import type { Rng } from '../../util/rng.ts';
import type { AnswerType, VisionDependency } from '../types.ts';
import { COLORS, SHAPES, code, type Color, type SceneObject, type Shape } from './render.ts';

export interface SceneQuestion {
  question: string;
  answer: string;
  reasoning: string;
  params: Record<string, unknown>;
}

export interface SceneFamily {
  readonly name: string;
  readonly visionDependency: VisionDependency;
  readonly answerType: AnswerType;
  readonly template: string;
  /** Needs at least this many cell rows (spatial "above" needs two). */
  readonly minRows?: number;
  make(scene: readonly SceneObject[], rng: Rng): SceneQuestion | null;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const listing = (scene: readonly SceneObject[]): string => scene.map(code).join(' ');
const PLURAL: Record<Shape, string> = { square: 'squares', circle: 'circles', triangle: 'triangles' };
const pick = <T>(xs: readonly T[], rng: Rng): T => xs[rng.int(xs.length)];

/** Half the time a value present in the scene, else any value, so counts of 0 occur but do not dominate. */
function pickAttribute<T>(present: readonly T[], all: readonly T[], rng: Rng): T {
  return present.length > 0 && rng.int(2) === 0 ? pick(present, rng) : pick(all, rng);
}

/** Objects whose colour occurs once in the scene. */
const uniqueByColor = (scene: readonly SceneObject[]): SceneObject[] => scene.filter((o) => scene.filter((p) => p.color === o.color).length === 1);

/** Two objects with distinct unique colours satisfying `ok`, in random order, or null. */
function pickPair(scene: readonly SceneObject[], rng: Rng, ok: (a: SceneObject, b: SceneObject) => boolean): [SceneObject, SceneObject] | null {
  const u = uniqueByColor(scene);
  const pairs: [SceneObject, SceneObject][] = [];
  for (const a of u) for (const b of u) if (a !== b && ok(a, b)) pairs.push([a, b]);
  return pairs.length ? pick(pairs, rng) : null;
}

export const SCENE_FAMILIES: readonly SceneFamily[] = [
  {
    name: 'count-color',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'How many red shapes are there?',
    make(scene, rng) {
      const color = pickAttribute(
        scene.map((o) => o.color),
        COLORS,
        rng,
      );
      const n = scene.filter((o) => o.color === color).length;
      return { question: `How many ${color} shapes are there?`, answer: String(n), reasoning: listing(scene), params: { color } };
    },
  },
  {
    name: 'count-shape',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'How many circles are there?',
    make(scene, rng) {
      const shape = pickAttribute(
        scene.map((o) => o.shape),
        SHAPES,
        rng,
      );
      const n = scene.filter((o) => o.shape === shape).length;
      return { question: `How many ${PLURAL[shape]} are there?`, answer: String(n), reasoning: listing(scene), params: { shape } };
    },
  },
  {
    name: 'count-all',
    visionDependency: 'high',
    answerType: 'integer',
    template: 'How many shapes are there?',
    make(scene) {
      return { question: 'How many shapes are there?', answer: String(scene.length), reasoning: listing(scene), params: {} };
    },
  },
  {
    name: 'color-of',
    visionDependency: 'high',
    answerType: 'word',
    template: 'What color is the circle?',
    make(scene, rng) {
      const unique = scene.filter((o) => scene.filter((p) => p.shape === o.shape).length === 1);
      if (!unique.length) return null;
      const o = pick(unique, rng);
      return { question: `What color is the ${o.shape}?`, answer: o.color, reasoning: code(o), params: { shape: o.shape } };
    },
  },
  {
    name: 'shape-of',
    visionDependency: 'high',
    answerType: 'word',
    template: 'What shape is the red one?',
    make(scene, rng) {
      const unique = uniqueByColor(scene);
      if (!unique.length) return null;
      const o = pick(unique, rng);
      return { question: `What shape is the ${o.color} one?`, answer: o.shape, reasoning: code(o), params: { color: o.color } };
    },
  },
  {
    name: 'left-of',
    visionDependency: 'high',
    answerType: 'yes/no',
    template: 'Is the red shape left of the blue shape?',
    make(scene, rng) {
      const pair = pickPair(scene, rng, (a, b) => a.col !== b.col);
      if (!pair) return null;
      const [a, b] = pair;
      const yes = a.col < b.col;
      const [l, r] = yes ? [a, b] : [b, a];
      return {
        question: `Is the ${a.color} shape left of the ${b.color} shape?`,
        answer: yesNo(yes),
        reasoning: `${l.color[0]} left ${r.color[0]}`,
        params: { first: a.color, second: b.color },
      };
    },
  },
  {
    name: 'above',
    visionDependency: 'high',
    answerType: 'yes/no',
    template: 'Is the red shape above the blue shape?',
    minRows: 2,
    make(scene, rng) {
      const pair = pickPair(scene, rng, (a, b) => a.row !== b.row);
      if (!pair) return null;
      const [a, b] = pair;
      const yes = a.row < b.row;
      const [t, u] = yes ? [a, b] : [b, a];
      return {
        question: `Is the ${a.color} shape above the ${b.color} shape?`,
        answer: yesNo(yes),
        reasoning: `${t.color[0]} above ${u.color[0]}`,
        params: { first: a.color, second: b.color },
      };
    },
  },
  // Controls: everything needed is in the question; the scene is present but irrelevant.
  {
    name: 'text-count',
    visionDependency: 'low',
    answerType: 'integer',
    template: 'Ignore the image. Count red in: red,blue,red',
    make(_scene, rng) {
      const words: Color[] = Array.from({ length: 1 + rng.int(3) }, () => pick(COLORS, rng));
      const target = pickAttribute(words, COLORS, rng);
      const n = words.filter((w) => w === target).length;
      return {
        question: `Ignore the image. Count ${target} in: ${words.join(',')}`,
        answer: String(n),
        reasoning: `${target} x${n}`,
        params: { words, target },
      };
    },
  },
  {
    name: 'text-color',
    visionDependency: 'low',
    answerType: 'word',
    template: 'Ignore the image. The ball is blue. What color is it?',
    make(_scene, rng) {
      const thing = pick(['ball', 'box', 'cup', 'kite', 'hat'], rng);
      const color = pick(COLORS, rng);
      return {
        question: `Ignore the image. The ${thing} is ${color}. What color is it?`,
        answer: color,
        reasoning: color,
        params: { thing, color },
      };
    },
  },
  {
    name: 'text-left',
    visionDependency: 'low',
    answerType: 'yes/no',
    template: 'Ignore the image. P is left of Q. Is Q left of P?',
    make(_scene, rng) {
      const letters = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
      const p = letters[rng.int(letters.length)];
      const q = letters[(letters.indexOf(p) + 1 + rng.int(letters.length - 1)) % letters.length];
      const same = rng.int(2) === 0;
      const [x, y] = same ? [p, q] : [q, p];
      return {
        question: `Ignore the image. ${p} is left of ${q}. Is ${x} left of ${y}?`,
        answer: yesNo(same),
        reasoning: `${p} left ${q}`,
        params: { left: p, right: q, asked: [x, y] },
      };
    },
  },
];
