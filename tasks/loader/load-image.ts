/**
 * One image file to the model's input, exactly as a manifest's images are read: the untrusted-file rules
 * of image-file.ts (regular files only, at most `maxBytes`), then model-image.ts (decoding within `maxPixels`,
 * resizing to the model's size). Used by `papo generate`; the manifest and dataset loaders call the same two
 * steps.
 *
 *   const img = loadImage('cat.png', { height: 28, width: 56 });   // RgbImage, 28 x 56
 *
 * Errors say what is wrong (missing file, too large, not a PNG/JPEG...), never the file's contents; the
 * caller names the file.
 */
import type { RgbImage } from '../../util/image.ts';
import { readImageFile } from './image-file.ts';
import { checkLimit, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from './limits.ts';
import { type ImageFitOptions, toModelImage } from './model-image.ts';

export interface LoadImageOptions extends ImageFitOptions {
  /** bytes the file may have; default 64 MiB */
  maxBytes?: number;
  /** pixels the decoded image may have, from its header; default 2^24 */
  maxPixels?: number;
}

export function loadImage(file: string, opts: LoadImageOptions): RgbImage {
  const bytes = readImageFile(file, { maxBytes: checkLimit('maxImageBytes', opts.maxBytes, DEFAULT_MAX_IMAGE_BYTES) });
  return toModelImage(bytes, opts, checkLimit('maxImagePixels', opts.maxPixels, DEFAULT_MAX_IMAGE_PIXELS));
}
