/**
 * PNG (pngjs) and JPEG (jpeg-js) decoding to RGB. The format is recognised from the file's first bytes,
 * not its name. Greyscale and palette images come out as RGB; alpha is composited over a background
 * colour (black by default, the colour masked patches have).
 */
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { makeImage, type RgbImage } from '../../util/image.ts';

export type Rgb = readonly [number, number, number];

export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Throws with a short reason when the bytes are not a decodable PNG or JPEG. */
export function decodeImage(bytes: Uint8Array, background: Rgb = [0, 0, 0]): RgbImage {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new Error(`undecodable PNG: ${(e as Error).message}`);
    }
    return fromRgba(png.height, png.width, png.data, background);
  }
  if (format === 'jpeg') {
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 64, maxMemoryUsageInMB: 512 });
    } catch (e) {
      throw new Error(`undecodable JPEG: ${(e as Error).message}`);
    }
    return fromRgba(img.height, img.width, img.data, background);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(`not a PNG or JPEG (first bytes: ${head || 'empty file'})`);
}

function fromRgba(height: number, width: number, rgba: Uint8Array, bg: Rgb): RgbImage {
  if (!(height > 0 && width > 0) || rgba.length < height * width * 4) throw new Error(`decoded image has bad size ${height}x${width}`);
  const out = makeImage(height, width);
  for (let p = 0; p < height * width; p++) {
    const a = rgba[p * 4 + 3] / 255;
    for (let c = 0; c < 3; c++) out.data[p * 3 + c] = Math.round(rgba[p * 4 + c] * a + bg[c] * (1 - a));
  }
  return out;
}
