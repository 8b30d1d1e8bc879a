/**
 * Differentiable building blocks that are fast and supported on every trainer backend (wasm included).
 *
 * Two wasm facts shape them (see DESIGN.md):
 * - there is no wasm kernel for `UnsortedSegmentSum`, the gradient of `tf.gather`, so lookups
 *   (embeddings, picking the log-prob of a target token) use one-hot products instead;
 * - the wasm BatchMatMul is fast only without transpose flags, and the gradients tfjs derives for a
 *   matmul use them, so `matMul` has a custom gradient that transposes explicitly.
 */
import { tf } from '../util/tf-backend.ts';

type Tensor = tf.Tensor;

/** `a @ b` for rank >= 2 tensors (batch dims broadcast as in tf.matMul), without transpose flags anywhere. */
export function matMul(a: Tensor, b: Tensor): Tensor {
  return matMulGrad(a, b);
}

const swapLast = (x: Tensor): Tensor => {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(x, perm);
};

/** Sum `g` over leading batch dims so its shape matches `shape` (undoes batch broadcasting). */
function reduceTo(g: Tensor, shape: number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  let out = lead > 0 ? tf.sum(g, [...Array(lead).keys()]) : g;
  const axes: number[] = [];
  for (let i = 0; i < shape.length - 2; i++) if (shape[i] === 1 && out.shape[i] !== 1) axes.push(i);
  if (axes.length) out = tf.sum(out, axes, true);
  return out;
}

const matMulGrad = tf.customGrad((a, b, save) => {
  const A = a as Tensor;
  const B = b as Tensor;
  (save as (ts: Tensor[]) => void)([A, B]);
  return {
    value: tf.matMul(A, B),
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [sa, sb] = saved;
      // dA = dy @ B^T, dB = A^T @ dy, with explicit transposes so the kernel runs untransposed.
      const da = reduceTo(tf.matMul(dy, swapLast(sb)), sa.shape);
      const db = reduceTo(tf.matMul(swapLast(sa), dy), sb.shape);
      return [da, db];
    },
  };
}) as (a: Tensor, b: Tensor) => Tensor;

/** `x @ w` for x of shape [..., k] and a weight matrix w of shape [k, n]: flattens leading dims. */
export function dense(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const lead = x.shape.slice(0, -1);
  const k = x.shape[x.rank - 1] as number;
  const y = matMul(tf.reshape(x, [-1, k]), w);
  const out = tf.reshape(y, [...lead, w.shape[1] as number]);
  return bias ? tf.add(out, bias) : out;
}

/** Embedding lookup as one-hot @ table (differentiable w.r.t. the table without gather gradients). */
export function embed(ids: Tensor, table: Tensor): Tensor {
  const vocab = table.shape[0] as number;
  const oh = tf.oneHot(tf.cast(tf.reshape(ids, [-1]), 'int32'), vocab);
  const flat = matMul(oh, table);
  return tf.reshape(flat, [...ids.shape, table.shape[1] as number]);
}

/** `logp[..., targets[...]]` for logp of shape [..., V] and int targets of shape [...]: one-hot multiply-sum. */
export function pickTargets(logp: Tensor, targets: Tensor): Tensor {
  const vocab = logp.shape[logp.rank - 1] as number;
  const oh = tf.oneHot(tf.cast(targets, 'int32'), vocab);
  return tf.sum(tf.mul(logp, oh), -1);
}

/** Exact per-position entropy of a categorical given its log-probabilities: -sum p log p. */
export function entropyFromLogProbs(logp: Tensor): Tensor {
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
}
