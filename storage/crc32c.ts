/**
 * The Zarr v3 `crc32c` codec (bytes -> bytes): appends the CRC32C of a chunk's bytes as 4 little-endian
 * bytes, and on read verifies it. zarrita ships this codec without an encoder, and its decoder strips the
 * checksum without checking it; `registerCrc32c()` replaces it in zarrita's registry with one that does both,
 * so a truncated or flipped chunk is an error instead of silently different numbers. CRC32C from
 * `@node-rs/crc32` (SIMD, native).
 *
 * @example
 * registerCrc32c();
 * await zarr.create(root.resolve('w'), { shape: [4], chunkShape: [4], dtype: 'float32',
 *   codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'crc32c' }] });
 */
import { crc32c } from '@node-rs/crc32';
import * as zarr from 'zarrita';

/** CRC32C of some bytes, as an unsigned 32-bit integer; `initial` continues the CRC of earlier bytes. */
export function crc32cOf(bytes: ArrayBufferView, initial = 0): number {
  return crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), initial) >>> 0;
}

export class ChecksumError extends Error {
  override readonly name = 'ChecksumError';
}

export class VerifiedCrc32cCodec {
  readonly kind = 'bytes_to_bytes';

  static fromConfig(): VerifiedCrc32cCodec {
    return new VerifiedCrc32cCodec();
  }

  encode(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.byteLength + 4);
    out.set(bytes);
    new DataView(out.buffer).setUint32(bytes.byteLength, crc32cOf(bytes), true);
    return out;
  }

  decode(bytes: Uint8Array): Uint8Array {
    if (bytes.byteLength < 4) throw new ChecksumError(`chunk of ${bytes.byteLength} bytes is too short to hold its crc32c checksum (truncated)`);
    const body = bytes.subarray(0, bytes.byteLength - 4);
    const stored = new DataView(bytes.buffer, bytes.byteOffset + body.byteLength, 4).getUint32(0, true);
    const actual = crc32cOf(body);
    if (stored !== actual) {
      throw new ChecksumError(
        `crc32c mismatch: stored ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')} over ${body.byteLength} bytes (corrupt or truncated chunk)`,
      );
    }
    return body;
  }

  computeEncodedSize(decodedSize: number): number {
    return decodedSize + 4;
  }
}

let registered = false;

/** Installs the verifying codec under the standard name `crc32c` (idempotent). */
export function registerCrc32c(): void {
  if (registered) return;
  zarr.registry.set('crc32c', () => VerifiedCrc32cCodec as never);
  registered = true;
}
