/**
 * Synthetic scenes: flat-coloured shapes on a black canvas divided into 14 x 14 cells, at most one shape
 * per cell. Shapes are 9-11 px and keep a 1 px margin inside their cell, so two shapes never touch: each
 * shape is one connected blob of one colour, which is what lets tests recount scenes from the pixels.
 */
import { makeImage, type RgbImage } from '../../util/image.ts';
import type { Rng } from '../../util/rng.ts';

export const CELL = 14;
export const SHAPES = ['square', 'circle', 'triangle'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow'] as const;
export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];

export const PALETTE: Record<Color, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 190, 60],
  blue: [60, 100, 240],
  yellow: [235, 215, 40],
};

export interface SceneObject {
  shape: Shape;
  color: Color;
  /** Cell coordinates. */
  row: number;
  col: number;
  /** Top-left pixel of the shape's bounding box, and its side. */
  x: number;
  y: number;
  size: number;
}

/** One-letter codes used in reasoning traces: `rs` = red square. */
export const code = (o: Pick<SceneObject, 'color' | 'shape'>): string => o.color[0] + o.shape[0];

/** 1..maxObjects shapes in distinct cells, listed in reading order (row by row, left to right). */
export function randomScene(rows: number, cols: number, maxObjects: number, rng: Rng): SceneObject[] {
  const k = 1 + rng.int(maxObjects);
  const cells = rng
    .shuffle(Array.from({ length: rows * cols }, (_, i) => i))
    .slice(0, k)
    .sort((a, b) => a - b);
  return cells.map((cell) => {
    const row = Math.floor(cell / cols);
    const col = cell % cols;
    const size = 9 + rng.int(3);
    const slack = CELL - 2 - size; // 1 px margin each side
    return {
      shape: SHAPES[rng.int(SHAPES.length)],
      color: COLORS[rng.int(COLORS.length)],
      row,
      col,
      x: col * CELL + 1 + rng.int(slack + 1),
      y: row * CELL + 1 + rng.int(slack + 1),
      size,
    };
  });
}

export function renderScene(objects: readonly SceneObject[], height: number, width: number): RgbImage {
  const img = makeImage(height, width);
  for (const o of objects) {
    const [r, g, b] = PALETTE[o.color];
    const s = o.size;
    const c = (s - 1) / 2;
    for (let j = 0; j < s; j++) {
      for (let i = 0; i < s; i++) {
        if (!inside(o.shape, i, j, s, c)) continue;
        const p = ((o.y + j) * width + o.x + i) * 3;
        img.data[p] = r;
        img.data[p + 1] = g;
        img.data[p + 2] = b;
      }
    }
  }
  return img;
}

/** Whether pixel (i, j) of an s x s box belongs to the shape; c is the box centre. */
function inside(shape: Shape, i: number, j: number, s: number, c: number): boolean {
  switch (shape) {
    case 'square':
      return true;
    case 'circle':
      return (i - c) ** 2 + (j - c) ** 2 <= (s / 2) ** 2 - 0.5;
    case 'triangle': // apex up, base on the bottom row
      return Math.abs(i - c) <= ((j + 1) / s) * (s / 2);
  }
}
