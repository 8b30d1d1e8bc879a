/**
 * Image bytes from a user's file (a manifest's image file, a dataset's embedded bytes) to the model's
 * image: decoded within the pixel limit (decode.ts), then resized or letterboxed to height x width.
 *
 *   const img = toModelImage(bytes, { height: 28, width: 56 }, 2 ** 24);
 */
import type { RgbImage } from '../../util/image.ts';
import { decodeImage, type Rgb } from './decode.ts';
import { resizeImage, resizeToFit, type ResizeMethod } from './resize.ts';

export interface ImageFitOptions {
  /** The size every image is resized to (the model's image size). */
  height: number;
  width: number;
  resize?: ResizeMethod;
  /** 'stretch' (default) or 'pad' (keep the aspect ratio, letterbox on `background`). */
  fit?: 'stretch' | 'pad';
  /** Composited under transparent pixels and used for padding. Default black. */
  background?: Rgb;
}

export function toModelImage(bytes: Uint8Array, opts: ImageFitOptions, maxPixels: number): RgbImage {
  const decoded = decodeImage(bytes, opts.background, { maxPixels });
  return opts.fit === 'pad'
    ? resizeToFit(decoded, opts.height, opts.width, opts.resize, opts.background)
    : resizeImage(decoded, opts.height, opts.width, opts.resize);
}
