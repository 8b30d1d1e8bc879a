/**
 * The image type that flows through papo-stream: raw RGB pixels, row-major, channels last (H x W x 3),
 * one byte per channel. Masking, the policy's patch embedding and the data loaders all speak this type.
 */
export interface RgbImage {
  readonly height: number;
  readonly width: number;
  /** length height * width * 3; pixel (y, x) channel c is at (y * width + x) * 3 + c */
  readonly data: Uint8Array;
}

export function makeImage(height: number, width: number, data?: Uint8Array): RgbImage {
  if (!(Number.isInteger(height) && height > 0 && Number.isInteger(width) && width > 0)) {
    throw new Error(`image size must be positive integers, got ${height}x${width}`);
  }
  const n = height * width * 3;
  if (data && data.length !== n) throw new Error(`image ${height}x${width}x3 needs ${n} bytes, got ${data.length}`);
  return { height, width, data: data ?? new Uint8Array(n) };
}
