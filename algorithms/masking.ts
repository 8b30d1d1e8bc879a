/**
 * Masking of raw images for PAPO's masked view, by the name in config (`mask_type`); user code adds its
 * own with `registerMaskType`. One mask per prompt (its G responses share it), drawn from the caller's Rng.
 *
 * Built in: `random_patch` (docs/objective.md, "Masking"): a grid of square patches walks the raw pixel image
 * (before any resize or normalisation); each patch is set to black independently with probability
 * `ratio`. Edge patches are truncated, so the masked image keeps its size and the policy's image tokens
 * are unchanged.
 *
 * @example
 * // black out the left half, whatever the ratio
 * registerMaskType('left_half', (image) => {
 *   const data = new Uint8Array(image.data);
 *   for (let y = 0; y < image.height; y++) data.fill(0, y * image.width * 3, (y * image.width + Math.floor(image.width / 2)) * 3);
 *   return { ...image, data };
 * });
 */
import type { RgbImage } from '../util/image.ts';
import { Registry } from '../util/registry.ts';
import type { Rng } from '../util/rng.ts';

export interface PatchMaskOptions {
  ratio: number;
  patchSize: number;
}

/** Which patches are masked: a row-major [rows x cols] grid of booleans (rows = ceil(H / patchSize)). */
export interface PatchGrid {
  rows: number;
  cols: number;
  patchSize: number;
  masked: Uint8Array;
}

export function drawPatchGrid(height: number, width: number, opts: PatchMaskOptions, rng: Rng): PatchGrid {
  const { ratio, patchSize } = opts;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`mask ratio must be in [0, 1], got ${ratio}`);
  if (!(Number.isInteger(patchSize) && patchSize > 0)) throw new Error(`mask patch size must be a positive integer, got ${patchSize}`);
  const rows = Math.ceil(height / patchSize);
  const cols = Math.ceil(width / patchSize);
  const masked = new Uint8Array(rows * cols);
  // One draw per patch, always, so the stream position does not depend on the ratio.
  for (let i = 0; i < masked.length; i++) masked[i] = rng.float() < ratio ? 1 : 0;
  return { rows, cols, patchSize, masked };
}

/** A copy of `image` with the grid's masked patches set to 0 (black). */
export function applyPatchGrid(image: RgbImage, grid: PatchGrid): RgbImage {
  const { height, width } = image;
  if (grid.rows !== Math.ceil(height / grid.patchSize) || grid.cols !== Math.ceil(width / grid.patchSize)) {
    throw new Error(`patch grid ${grid.rows}x${grid.cols} does not fit a ${height}x${width} image`);
  }
  const data = new Uint8Array(image.data);
  const p = grid.patchSize;
  for (let gy = 0; gy < grid.rows; gy++) {
    for (let gx = 0; gx < grid.cols; gx++) {
      if (!grid.masked[gy * grid.cols + gx]) continue;
      const x0 = gx * p;
      const x1 = Math.min(x0 + p, width);
      for (let y = gy * p; y < Math.min(gy * p + p, height); y++) data.fill(0, (y * width + x0) * 3, (y * width + x1) * 3);
    }
  }
  return { height, width, data };
}

/** Masks one image: `applyPatchGrid(image, drawPatchGrid(...))`. */
export function randomPatchMask(image: RgbImage, opts: PatchMaskOptions, rng: Rng): RgbImage {
  return applyPatchGrid(image, drawPatchGrid(image.height, image.width, opts, rng));
}

/** A masking: the masked copy of a raw image (same size), random choices drawn from `rng` only. */
export type MaskFunction = (image: RgbImage, options: PatchMaskOptions, rng: Rng) => RgbImage;

export const maskTypes = new Registry<MaskFunction>('mask type', 'registerMaskType');

/** Makes `name` a value of `mask_type`; a name already registered is refused. */
export function registerMaskType(name: string, mask: MaskFunction): void {
  maskTypes.register(name, mask);
}

registerMaskType('random_patch', randomPatchMask);
