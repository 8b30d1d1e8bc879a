/**
 * Plain-array helpers shared by the onnxruntime trainer's main-thread side (ort-trainer.ts) and its
 * workers (ort-train-runner.ts): [rows, T] matrices of log-probs and cotangents, cut into and assembled
 * from blocks of rows each trimmed to its own longest response, and gradient sums. No onnxruntime here, so
 * the main thread does not load it.
 */

/** T of a batch of response rows: its longest response, at least 1. */
export const responseWidth = (responses: readonly ArrayLike<number>[]): number => Math.max(1, ...responses.map((r) => r.length));

/** dst += src (a small function so that V8 optimises the loop). */
export function addInto(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/** Copies a [rows, w] block into columns [0, w) of rows [r0, r0 + rows) of a [*, T] matrix (or back, with `toBlock`). */
export function copyBlock(block: Float32Array, matrix: Float32Array, r0: number, rows: number, w: number, T: number, toBlock: boolean): void {
  for (let r = 0; r < rows; r++) {
    const m = (r0 + r) * T;
    const b = r * w;
    for (let t = 0; t < w; t++) {
      if (toBlock) block[b + t] = matrix[m + t];
      else matrix[m + t] = block[b + t];
    }
  }
}
