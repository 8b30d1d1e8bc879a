/**
 * A dataset row's image value, in the layouts EasyR1 reads (`process_image`):
 *
 * - the HF datasets Image feature: a struct `{bytes, path}` (bytes embedded; `path` used when `bytes` is null);
 * - raw binary (a parquet BYTE_ARRAY column);
 * - a path string, resolved against `data.image_dir` (default: the data file's directory) and confined to
 *   it exactly as a manifest's image paths are (image-file.ts);
 * - a list of one of the above (the `images` column of EasyR1's datasets is a list: the policy reads one
 *   image per prompt, so the list must have exactly one).
 *
 * Embedded bytes are capped by `maxBytes` as files are; the pixel limit applies when decoding.
 */
import { confineImagePath, readImageFile } from './image-file.ts';
import { describeValue } from './record-fields.ts';

export interface ImageSource {
  /** Where relative paths resolve, and what they may not leave. */
  root: string;
  realRoot: string;
  allowOutside: boolean;
  maxBytes: number;
}

/** The image's bytes and how it was given (`embedded`, or its path), or an Error whose message names the problem. */
export function imageBytes(value: unknown, key: string, source: ImageSource): { bytes: Uint8Array; image: string; file?: string } {
  let v = value;
  if (Array.isArray(v)) {
    if (v.length !== 1) {
      throw new Error(
        v.length === 0
          ? `field "${key}" is an empty list: the policy reads exactly one image per prompt`
          : `field "${key}" has ${v.length} images: the policy reads exactly one image per prompt`,
      );
    }
    v = v[0];
  }
  if (v instanceof Uint8Array) return { bytes: embedded(v, key, source.maxBytes), image: 'embedded' };
  if (typeof v === 'string') return fromPath(v, key, source);
  if (v !== null && typeof v === 'object') {
    const s = v as Record<string, unknown>;
    const b = Object.hasOwn(s, 'bytes') ? s.bytes : undefined;
    const p = Object.hasOwn(s, 'path') ? s.path : undefined;
    if (b instanceof Uint8Array && b.length > 0) return { bytes: embedded(b, key, source.maxBytes), image: 'embedded' };
    if (b !== undefined && b !== null && !(b instanceof Uint8Array)) throw new Error(`field "${key}": "bytes" must be binary data, got ${describeValue(b)}`);
    if (typeof p === 'string' && p.trim() !== '') return fromPath(p, key, source);
    throw new Error(`field "${key}" is a struct with neither "bytes" nor a "path"`);
  }
  throw new Error(
    value === undefined
      ? `missing field "${key}" (the image; data.image_key names it)`
      : `field "${key}" must be an image (a {bytes, path} struct, binary data or a path), got ${describeValue(value)}`,
  );
}

function embedded(bytes: Uint8Array, key: string, maxBytes: number): Uint8Array {
  if (bytes.length > maxBytes) throw new Error(`field "${key}": the image is ${bytes.length} bytes, over the limit of ${maxBytes} (max_image_bytes)`);
  return bytes;
}

function fromPath(p: string, key: string, source: ImageSource): { bytes: Uint8Array; image: string; file: string } {
  const file = confineImagePath(source.root, source.realRoot, p, source.allowOutside);
  try {
    return { bytes: readImageFile(file, { maxBytes: source.maxBytes }), image: p, file };
  } catch (e) {
    throw Object.assign(new Error(`field "${key}": ${file}: ${(e as Error).message}`), { cause: e });
  }
}
