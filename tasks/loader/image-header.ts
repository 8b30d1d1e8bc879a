/**
 * The size an image declares in its header, read without decoding it, so a small file that would
 * decode to gigabytes (a PNG of 8000 x 8000 pixels compresses to 187 KB) is refused before any pixel
 * buffer exists. PNG: the IHDR chunk, which must come first. JPEG: the first frame header (SOFn).
 *
 *   imageHeader(readFileSync('a.png'))   // { format: 'png', width: 640, height: 480, interlaced: false }
 *
 * Throws with a short reason (never a piece of the file) when the header is missing or malformed.
 */

export type ImageFormat = 'png' | 'jpeg';

export interface ImageHeader {
  readonly format: ImageFormat;
  readonly width: number;
  readonly height: number;
  /** PNG only: Adam7 interlacing (pngjs inflates those without a size bound, see decode.ts). */
  readonly interlaced: boolean;
  /** PNG only: bit depth and colour type, for the size of the raw scanlines. */
  readonly bitDepth?: number;
  readonly colorType?: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format from the file's first bytes (not its name), or null. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

export function imageHeader(bytes: Uint8Array): ImageHeader {
  const format = sniffFormat(bytes);
  if (format === 'png') return pngHeader(bytes);
  if (format === 'jpeg') return jpegHeader(bytes);
  throw new Error(bytes.length === 0 ? 'empty file, not a PNG or JPEG' : 'not a PNG or JPEG (the file does not start with either signature)');
}

const u16 = (b: Uint8Array, i: number): number => (b[i] << 8) | b[i + 1];
const u32 = (b: Uint8Array, i: number): number => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];

function pngHeader(b: Uint8Array): ImageHeader {
  // signature (8) | length (4) = 13 | "IHDR" | width (4) height (4) depth colour compression filter interlace | crc
  if (b.length < 33) throw new Error('undecodable PNG: truncated before the end of its header');
  const isIhdr = b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 && b[15] === 0x52;
  if (!isIhdr || u32(b, 8) !== 13) throw new Error('undecodable PNG: the first chunk is not a 13-byte IHDR');
  const width = u32(b, 16);
  const height = u32(b, 20);
  if (width === 0 || height === 0) throw new Error(`undecodable PNG: its header declares ${width} x ${height} pixels`);
  return { format: 'png', width, height, bitDepth: b[24], colorType: b[25], interlaced: b[28] === 1 };
}

/** Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC). */
const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

function jpegHeader(b: Uint8Array): ImageHeader {
  let i = 2; // after SOI
  while (i < b.length) {
    if (b[i] !== 0xff) throw new Error('undecodable JPEG: a marker was expected before the frame header');
    while (i < b.length && b[i] === 0xff) i++; // fill bytes
    if (i >= b.length) break;
    const marker = b[i++];
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length field
    if (marker === 0xd9 || marker === 0xda) throw new Error('undecodable JPEG: no frame header before the image data');
    if (i + 2 > b.length) break;
    const length = u16(b, i);
    if (length < 2) throw new Error('undecodable JPEG: a segment declares a length below 2');
    if (isSof(marker)) {
      if (length < 8 || i + 7 > b.length) break;
      const height = u16(b, i + 3);
      const width = u16(b, i + 5);
      // height 0 means "given later by a DNL marker", which jpeg-js does not support
      if (width === 0 || height === 0) throw new Error(`undecodable JPEG: its frame header declares ${width} x ${height} pixels`);
      return { format: 'jpeg', width, height, interlaced: false };
    }
    i += length;
  }
  throw new Error('undecodable JPEG: truncated before its frame header');
}
