/**
 * Image resizing, written once for every loader: separable resampling with per-axis weight tables.
 *
 * - 'bilinear': two taps per output pixel, pixel centres aligned (src = (dst + 0.5) * scale - 0.5,
 *   clamped at the edges), as OpenCV INTER_LINEAR / PIL without antialiasing.
 * - 'area': each output pixel averages the input pixels its footprint covers, weighted by the covered
 *   fraction (exact box filter; no aliasing when shrinking).
 * - 'auto' (default): area along an axis that shrinks, bilinear along an axis that grows.
 */
import { makeImage, type RgbImage } from '../../util/image.ts';

export type ResizeMethod = 'bilinear' | 'area' | 'auto';

interface Taps {
  /** For output i: source indices and weights (summing to 1). */
  index: Int32Array[];
  weight: Float64Array[];
}

function bilinearTaps(src: number, dst: number): Taps {
  const scale = src / dst;
  const index: Int32Array[] = [];
  const weight: Float64Array[] = [];
  for (let i = 0; i < dst; i++) {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), src - 1);
    const i0 = Math.floor(s);
    const i1 = Math.min(i0 + 1, src - 1);
    const f = s - i0;
    index.push(Int32Array.of(i0, i1));
    weight.push(Float64Array.of(1 - f, f));
  }
  return { index, weight };
}

function areaTaps(src: number, dst: number): Taps {
  const scale = src / dst;
  const index: Int32Array[] = [];
  const weight: Float64Array[] = [];
  for (let i = 0; i < dst; i++) {
    const a = i * scale;
    const b = (i + 1) * scale;
    const ids: number[] = [];
    const ws: number[] = [];
    for (let k = Math.floor(a); k < Math.min(Math.ceil(b), src); k++) {
      const w = Math.min(b, k + 1) - Math.max(a, k);
      if (w > 1e-12) {
        ids.push(k);
        ws.push(w / scale);
      }
    }
    index.push(Int32Array.from(ids));
    weight.push(Float64Array.from(ws));
  }
  return { index, weight };
}

function taps(src: number, dst: number, method: ResizeMethod): Taps {
  const m = method === 'auto' ? (dst < src ? 'area' : 'bilinear') : method;
  if (m === 'area') return areaTaps(src, dst);
  if (m === 'bilinear') return bilinearTaps(src, dst);
  throw new Error(`resize method must be bilinear, area or auto, got ${JSON.stringify(method)}`);
}

/** A new image of the given size; the input is returned unchanged when already that size. */
export function resizeImage(img: RgbImage, height: number, width: number, method: ResizeMethod = 'auto'): RgbImage {
  if (img.height === height && img.width === width) return img;
  makeImage(height, width); // validates the size
  const rows = taps(img.height, height, method);
  const cols = taps(img.width, width, method);
  // Horizontal pass into floats, then vertical pass with rounding.
  const tmp = new Float64Array(img.height * width * 3);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < width; x++) {
      const ids = cols.index[x];
      const ws = cols.weight[x];
      let r = 0,
        g = 0,
        b = 0;
      for (let t = 0; t < ids.length; t++) {
        const p = (y * img.width + ids[t]) * 3;
        r += ws[t] * img.data[p];
        g += ws[t] * img.data[p + 1];
        b += ws[t] * img.data[p + 2];
      }
      const o = (y * width + x) * 3;
      tmp[o] = r;
      tmp[o + 1] = g;
      tmp[o + 2] = b;
    }
  }
  const out = makeImage(height, width);
  for (let y = 0; y < height; y++) {
    const ids = rows.index[y];
    const ws = rows.weight[y];
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let t = 0; t < ids.length; t++) v += ws[t] * tmp[(ids[t] * width + x) * 3 + c];
        out.data[(y * width + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return out;
}

/**
 * Fit inside height x width keeping the aspect ratio, centred on a background colour (letterboxing),
 * instead of stretching.
 */
export function resizeToFit(
  img: RgbImage,
  height: number,
  width: number,
  method: ResizeMethod = 'auto',
  background: readonly [number, number, number] = [0, 0, 0],
): RgbImage {
  const s = Math.min(height / img.height, width / img.width);
  const h = Math.max(1, Math.min(height, Math.round(img.height * s)));
  const w = Math.max(1, Math.min(width, Math.round(img.width * s)));
  const inner = resizeImage(img, h, w, method);
  const out = makeImage(height, width);
  for (let p = 0; p < height * width; p++) out.data.set(background, p * 3);
  const y0 = Math.floor((height - h) / 2);
  const x0 = Math.floor((width - w) / 2);
  for (let y = 0; y < h; y++) out.data.set(inner.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * width + x0) * 3);
  return out;
}
