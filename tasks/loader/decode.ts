/**
 * PNG (pngjs) and JPEG (jpeg-js) decoding to RGB. The format is recognised from the file's first bytes,
 * not its name. Greyscale and palette images come out as RGB; alpha is composited over a background
 * colour (black by default, the colour masked patches have).
 *
 * Cost is bounded before decoding: the header's declared size must be within `maxPixels`, and the
 * compressed data of an interlaced PNG (which pngjs inflates without a bound) may not inflate past what
 * that size needs. Error messages name what is wrong, never bytes of the file: the decoders' own
 * messages can carry a chunk name, a marker or a checksum from the file, so they are reduced to a fixed
 * description.
 *
 *   decodeImage(readFileSync('a.png'), [0, 0, 0], { maxPixels: 4096 * 4096 })   // RgbImage
 */
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { makeImage, type RgbImage } from '../../util/image.ts';
import { imageHeader, type ImageHeader } from './image-header.ts';
import { checkLimit, DEFAULT_MAX_IMAGE_PIXELS } from './limits.ts';

export { sniffFormat } from './image-header.ts';

export type Rgb = readonly [number, number, number];

/** A reason written here (not by a decoder): shown as is. */
class OwnReason extends Error {}

export interface DecodeLimits {
  /** Pixels the decoded image may have (width x height from the header). Default 2^24. */
  maxPixels?: number;
}

/** Throws with a short reason when the bytes are not a decodable PNG or JPEG within the limits. */
export function decodeImage(bytes: Uint8Array, background: Rgb = [0, 0, 0], limits: DecodeLimits = {}): RgbImage {
  const maxPixels = checkLimit('maxImagePixels', limits.maxPixels, DEFAULT_MAX_IMAGE_PIXELS);
  const header = imageHeader(bytes);
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new Error(
      `image is ${header.width} x ${header.height} = ${pixels} pixels, over the limit of ${maxPixels} (max_image_pixels); downscale it or raise the limit`,
    );
  }
  if (header.format === 'png') {
    let png: PNG;
    try {
      if (header.interlaced) checkInterlacedInflate(bytes, header);
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new Error(`undecodable PNG: ${decoderReason(e)}`);
    }
    return fromRgba(png.height, png.width, png.data, background);
  }
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: maxPixels / 1e6,
      // components, coefficients and the RGBA output: ~12 bytes a pixel at most
      maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * 12) / 2 ** 20)),
    });
  } catch (e) {
    throw new Error(`undecodable JPEG: ${decoderReason(e)}`);
  }
  if (img.width !== header.width || img.height !== header.height) throw new Error('undecodable JPEG: decoded size differs from its frame header');
  return fromRgba(img.height, img.width, img.data, background);
}

/** Channels per PNG colour type: grey, -, RGB, palette, grey+alpha, -, RGBA. */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/**
 * pngjs inflates an interlaced PNG's data with no output bound (a few MB of zeros inflate to gigabytes),
 * so that data is inflated here first, bounded by the size the seven passes' scanlines need.
 */
function checkInterlacedInflate(b: Uint8Array, h: ImageHeader): void {
  const channels = PNG_CHANNELS[h.colorType ?? -1];
  if (!channels) throw new OwnReason('unsupported colour type');
  const bits = channels * (h.bitDepth ?? 8);
  let need = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = h.width > x0 ? Math.ceil((h.width - x0) / dx) : 0;
    const rows = h.height > y0 ? Math.ceil((h.height - y0) / dy) : 0;
    if (w > 0 && rows > 0) need += rows * (Math.ceil((w * bits) / 8) + 1);
  }
  const view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const idat: Buffer[] = [];
  for (let i = 8; i + 8 <= view.length; ) {
    const length = view.readUInt32BE(i);
    const type = view.toString('latin1', i + 4, i + 8);
    if (i + 12 + length > view.length) break; // truncated: pngjs reports it
    if (type === 'IDAT') idat.push(view.subarray(i + 8, i + 8 + length));
    if (type === 'IEND') break;
    i += 12 + length;
  }
  try {
    inflateSync(Buffer.concat(idat), { maxOutputLength: Math.max(1, need) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new OwnReason(`image data inflates past the ${need} bytes its declared size needs`);
    // other inflate errors are pngjs's to report
  }
}

/** Decoder messages that quote the file (chunk names, markers, checksums, palette indices) cut to their fixed part. */
const QUOTING: [RegExp, string][] = [
  [/^Unsupported critical chunk type/i, 'unsupported critical chunk'],
  [/^Crc error/i, 'checksum (CRC) mismatch'],
  [/^Unsupported bit depth/i, 'unsupported bit depth'],
  [/not in palette/i, 'palette index out of range'],
  [/^Unrecognised filter type/i, 'unrecognised filter type'],
  [/unexpected marker|unknown JPEG marker/i, 'unexpected JPEG marker'],
  [/maxResolutionInMP|maxMemoryUsageInMB|Could not allocate/i, 'over the decoder memory limit'],
];

function decoderReason(e: unknown): string {
  if (e instanceof OwnReason) return e.message;
  const message = e instanceof Error ? e.message : String(e);
  for (const [pattern, reason] of QUOTING) if (pattern.test(message)) return reason;
  // Messages not listed are fixed texts; anything from a digit on is dropped in case a new one quotes data.
  const fixed = message
    .split(/[0-9]/)[0]
    .replace(/[\s:,-]+$/, '')
    .slice(0, 80);
  return fixed || 'rejected by the decoder';
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
