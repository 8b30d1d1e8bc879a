/**
 * One image file to the model's input, exactly as a manifest's images are read: the untrusted-file rules
 * of image-file.ts (regular files only, at most `maxBytes`), decoding within `maxPixels` (decode.ts), then
 * resizing to the model's size (resize.ts). Used by the manifest loader and by `papo generate`.
 *
 *   const img = loadImage('cat.png', { height: 28, width: 56 });   // RgbImage, 28 x 56
 *
 * Errors say what is wrong (missing file, too large, not a PNG/JPEG...), never the file's contents; the
 * caller names the file.
 */
import type { RgbImage } from '../../util/image.ts';
import { decodeImage, type Rgb } from './decode.ts';
import { readImageFile } from './image-file.ts';
import { checkLimit, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from './limits.ts';
import { resizeImage, resizeToFit, type ResizeMethod } from './resize.ts';

export interface LoadImageOptions {
  /** the size the image is resized to (the model's image size) */
  height: number;
  width: number;
  /** default 'auto': area when shrinking, bilinear when growing */
  resize?: ResizeMethod;
  /** 'stretch' (default) or 'pad' (keep the aspect ratio, letterbox on `background`) */
  fit?: 'stretch' | 'pad';
  /** composited under transparent pixels and used for padding; default black */
  background?: Rgb;
  /** bytes the file may have; default 64 MiB */
  maxBytes?: number;
  /** pixels the decoded image may have, from its header; default 2^24 */
  maxPixels?: number;
}

export function loadImage(file: string, opts: LoadImageOptions): RgbImage {
  const bytes = readImageFile(file, { maxBytes: checkLimit('maxImageBytes', opts.maxBytes, DEFAULT_MAX_IMAGE_BYTES) });
  const decoded = decodeImage(bytes, opts.background, { maxPixels: checkLimit('maxImagePixels', opts.maxPixels, DEFAULT_MAX_IMAGE_PIXELS) });
  return opts.fit === 'pad'
    ? resizeToFit(decoded, opts.height, opts.width, opts.resize, opts.background)
    : resizeImage(decoded, opts.height, opts.width, opts.resize);
}
