/**
 * Vector-Jacobian rules, one per ONNX op: given the gradients flowing into a node's outputs, each rule
 * appends standard ONNX ops (onnxruntime-node is an inference build: no training ops) that compute the
 * gradients of the node's inputs. autodiff.ts walks a graph backwards and applies them.
 *
 * Conventions: `c.dy[k]` is the gradient of output k ('' when none flows); a rule returns one entry per
 * input, the gradient's value name or undefined where `c.needs[i]` is false (or the input is not
 * differentiable, like indices). Gradients have exactly their input's shape: broadcast inputs are summed
 * back (`c.unbroadcast`). Every rule is tested alone by finite differences (test/models/onnx-grad-rules.test.ts).
 */
import type { AttrValue, ConstType, CustomVjp, GraphBuilder, GraphNode } from './builder.ts';
import { onnxDataType } from './builder.ts';
import { constInts, type SDim, type ValueInfo } from './shapes.ts';

export interface RuleContext {
  g: GraphBuilder;
  node: GraphNode;
  /** gradient of each output ('' where none flows) */
  dy: string[];
  /** which inputs need a gradient */
  needs: boolean[];
  info(name: string): ValueInfo;
  /** where this node is, for error messages */
  where: string;
}

export type Rule = (c: RuleContext) => (string | undefined)[];

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

function floatType(c: RuleContext, name: string): ConstType {
  const t = c.info(name).type;
  if (t !== 'float32' && t !== 'float64') throw new Error(`${c.where}: '${name}' has element type ${t ?? 'unknown'}, not a float type`);
  return t;
}
/** A scalar constant with the element type of `like`. */
const scalar = (c: RuleContext, v: number, like: string) => c.g.scalar(floatType(c, like), v);
const rank = (c: RuleContext, name: string): number => {
  const d = c.info(name).dims;
  if (!d) throw new Error(`${c.where}: the rank of '${name}' is not known statically`);
  return d.length;
};
const op = (c: RuleContext, type: string, inputs: string[], attrs: Record<string, AttrValue> = {}) => c.g.op(type, inputs, attrs, `grad_${type.toLowerCase()}`);
const isStatic = (d: SDim[] | undefined): d is number[] => !!d && d.every((x) => typeof x === 'number');

/** Shape of `x` as an int64 1-D value: a constant when static, else a Shape node. */
export function shapeOf(c: RuleContext, x: string): string {
  const d = c.info(x).dims;
  return isStatic(d) ? c.g.ints(d) : c.g.op('Shape', [x]);
}

/** dims[axis] of x as an int64 [1] value. */
function dimOf(c: RuleContext, x: string, axis: number): string {
  const d = c.info(x).dims?.[axis];
  return typeof d === 'number' ? c.g.ints([d]) : c.g.op('Shape', [x], { start: axis, end: axis + 1 });
}

/** Zeros shaped like x (materialised). */
export function zerosLike(c: RuleContext, x: string): string {
  const type = floatType(c, x);
  return c.g.op('ConstantOfShape', [shapeOf(c, x)], { value: { tensor: { type, dims: [1], values: [0] } } });
}

const sameDim = (a: SDim, b: SDim) => a !== undefined && a === b;

/**
 * Sums `grad` (shaped `gradDims`, the broadcast result) back to the shape of `target`. Uses the static
 * shapes when they settle which axes were broadcast; otherwise computes the axes at run time.
 */
export function unbroadcast(c: RuleContext, grad: string, gradDims: SDim[] | undefined, target: string): string {
  const t = c.info(target).dims;
  if (gradDims && t && gradDims.length >= t.length) {
    const lead = gradDims.length - t.length;
    const axes = range(0, lead);
    let certain = true;
    t.forEach((d, i) => {
      const gd = gradDims[lead + i];
      if (d === 1) {
        if (gd !== 1) axes.push(lead + i);
      } else if (!(sameDim(d, gd) || (typeof d === 'number' && gd === undefined))) certain = false;
    });
    if (certain) {
      if (axes.length === 0) return grad;
      if (axes.length === lead) return op(c, 'ReduceSum', [grad, c.g.ints(axes)], { keepdims: 0 });
      const summed = op(c, 'ReduceSum', [grad, c.g.ints(axes)], { keepdims: 1 });
      return lead ? op(c, 'Squeeze', [summed, c.g.ints(range(0, lead))]) : summed;
    }
  }
  // Run-time axes: those where the target's shape (left-padded with 1s) differs from the gradient's.
  const g = c.g;
  const sg = g.op('Shape', [grad]);
  const st = g.op('Shape', [target]);
  const lead = g.op('Sub', [g.op('Size', [sg]), g.op('Size', [st])]);
  const ones = g.op('ConstantOfShape', [g.op('Reshape', [lead, g.ints([1])])], { value: { tensor: { type: 'int64', dims: [1], values: [1] } } });
  const padded = g.op('Concat', [ones, st], { axis: 0 });
  const axes = g.op('Reshape', [g.op('NonZero', [g.op('Not', [g.op('Equal', [padded, sg])])]), g.ints([-1])]);
  const summed = op(c, 'ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
  return op(c, 'Reshape', [summed, st]);
}

/** Gradient of an elementwise op's input `x` given the full-shape gradient `d` (same shape as the output). */
const toInput = (c: RuleContext, d: string, x: string) => unbroadcast(c, d, c.info(c.node.outputs[0]).dims, x);

const swapLast = (c: RuleContext, x: string) => {
  const r = rank(c, x);
  return op(c, 'Transpose', [x], { perm: [...range(0, r - 2), r - 1, r - 2] });
};

const reshapeLike = (c: RuleContext, d: string, x: string) => op(c, 'Reshape', [d, shapeOf(c, x)]);

function matMul(c: RuleContext): (string | undefined)[] {
  const [a, b] = c.node.inputs;
  const [dy] = c.dy;
  const ra = rank(c, a);
  const rb = rank(c, b);
  if (ra < 2 || rb < 2) throw new Error(`${c.where}: MatMul gradients need operands of rank >= 2 (got ${ra} and ${rb})`);
  const yd = c.info(c.node.outputs[0]).dims;
  const ad = c.info(a).dims!;
  const bd = c.info(b).dims!;
  const batch = yd?.slice(0, -2);
  const out: (string | undefined)[] = [undefined, undefined];
  if (c.needs[0]) {
    const bT = rb === 2 ? op(c, 'Transpose', [b], { perm: [1, 0] }) : swapLast(c, b);
    out[0] = unbroadcast(c, op(c, 'MatMul', [dy, bT]), batch && [...batch, ...ad.slice(-2)], a);
  }
  if (c.needs[1]) {
    if (rb === 2 && ra > 2) {
      // Weight of a batched product: one 2-D product over all rows, x^T dy.
      const K = bd[0];
      const N = bd[1];
      const flat = (v: string, n: SDim, like: string, axis: number) =>
        op(c, 'Reshape', [v, typeof n === 'number' ? c.g.ints([-1, n]) : c.g.op('Concat', [c.g.ints([-1]), dimOf(c, like, axis)], { axis: 0 })]);
      out[1] = op(c, 'MatMul', [op(c, 'Transpose', [flat(a, K, b, 0)], { perm: [1, 0] }), flat(dy, N, b, 1)]);
    } else {
      out[1] = unbroadcast(c, op(c, 'MatMul', [swapLast(c, a), dy]), batch && [...batch, ...bd.slice(-2)], b);
    }
  }
  return out;
}

function gemm(c: RuleContext): (string | undefined)[] {
  const [a, b, cIn] = c.node.inputs;
  const [dy] = c.dy;
  const alpha = (c.node.attrs.alpha as { float: number } | undefined)?.float ?? 1;
  const beta = (c.node.attrs.beta as { float: number } | undefined)?.float ?? 1;
  const tA = c.node.attrs.transA ? 1 : 0;
  const tB = c.node.attrs.transB ? 1 : 0;
  const attrs = (transA: number, transB: number) => ({ alpha: { float: alpha }, transA, transB });
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.needs[0]) out[0] = tA ? op(c, 'Gemm', [b, dy], attrs(tB, 1)) : op(c, 'Gemm', [dy, b], attrs(0, tB ? 0 : 1));
  if (c.needs[1]) out[1] = tB ? op(c, 'Gemm', [dy, a], attrs(1, tA)) : op(c, 'Gemm', [a, dy], attrs(tA ? 0 : 1, 0));
  if (cIn && c.needs[2]) out[2] = toInput(c, beta === 1 ? dy : op(c, 'Mul', [dy, scalar(c, beta, dy)]), cIn);
  return out;
}

/** Axes of a Reduce* node (input since opset 13 for ReduceSum, attribute for the others at opset 17). */
function reduceAxes(c: RuleContext): number[] | undefined {
  const n = c.node;
  if (n.inputs[1]) {
    const v = constInts(c.g, n.inputs[1]);
    if (!v) throw new Error(`${c.where}: reduction axes must be a constant to differentiate`);
    return v;
  }
  return Array.isArray(n.attrs.axes) ? (n.attrs.axes as number[]) : undefined;
}

function reduce(c: RuleContext, mean: boolean): (string | undefined)[] {
  const [x] = c.node.inputs;
  const y = c.node.outputs[0];
  let d = c.dy[0];
  const axes = reduceAxes(c);
  const all = !axes || axes.length === 0;
  if (all && c.node.attrs.noop_with_empty_axes) return [d];
  const keep = (c.node.attrs.keepdims as number | undefined) ?? 1;
  if (!keep && !all) d = op(c, 'Unsqueeze', [d, c.g.ints(axes!.map((a) => norm(a, rank(c, x))))]);
  if (mean) {
    const xd = c.info(x).dims;
    const yd = c.info(y).dims;
    let scale: string;
    if (isStatic(xd) && isStatic(yd)) scale = scalar(c, yd.reduce((p, v) => p * v, 1) / xd.reduce((p, v) => p * v, 1), x);
    else {
      const to = onnxDataType(floatType(c, x));
      scale = c.g.op('Div', [c.g.op('Cast', [c.g.op('Size', [y])], { to }), c.g.op('Cast', [c.g.op('Size', [x])], { to })]);
    }
    d = op(c, 'Mul', [d, scale]);
  }
  return [op(c, 'Expand', [d, shapeOf(c, x)])];
}

function softmax(c: RuleContext, log: boolean): (string | undefined)[] {
  const y = c.node.outputs[0];
  const [dy] = c.dy;
  const axis = (c.node.attrs.axis as number | undefined) ?? -1;
  const axes = c.g.ints([axis]);
  if (log) {
    const s = op(c, 'ReduceSum', [dy, axes], { keepdims: 1 });
    return [op(c, 'Sub', [dy, op(c, 'Mul', [op(c, 'Exp', [y]), s])])];
  }
  const s = op(c, 'ReduceSum', [op(c, 'Mul', [dy, y]), axes], { keepdims: 1 });
  return [op(c, 'Mul', [y, op(c, 'Sub', [dy, s])])];
}

/**
 * LayerNormalization: y = xhat * gain + bias, xhat = (x - mean) / sqrt(var + eps) over the axes from
 * `axis` on. The statistics are recomputed from x (the op's optional Mean/InvStdDev outputs exist only
 * in float32 in onnxruntime).
 */
function layerNorm(c: RuleContext): (string | undefined)[] {
  const [x, gain, bias] = c.node.inputs;
  const [dy] = c.dy;
  if (c.dy.slice(1).some((d) => d)) throw new Error(`${c.where}: gradients through LayerNormalization's Mean/InvStdDev outputs are not supported`);
  const r = rank(c, x);
  const axis = norm((c.node.attrs.axis as number | undefined) ?? -1, r);
  const eps = (c.node.attrs.epsilon as { float: number } | undefined)?.float ?? 1e-5;
  const normAxes = range(axis, r);
  const lead = range(0, axis);
  const mean = (v: string) => op(c, 'ReduceMean', [v], { axes: normAxes, keepdims: 1 });
  const xc = op(c, 'Sub', [x, mean(x)]);
  const inv = op(c, 'Reciprocal', [op(c, 'Sqrt', [op(c, 'Add', [mean(op(c, 'Mul', [xc, xc])), scalar(c, eps, x)])])]);
  const xhat = op(c, 'Mul', [xc, inv]);
  const yd = c.info(x).dims!;
  const sumLead = (v: string, target: string) =>
    unbroadcast(c, lead.length ? op(c, 'ReduceSum', [v, c.g.ints(lead)], { keepdims: 0 }) : v, yd.slice(axis), target);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.needs[1]) out[1] = sumLead(op(c, 'Mul', [dy, xhat]), gain);
  if (bias && c.needs[2]) out[2] = sumLead(dy, bias);
  if (c.needs[0]) {
    const dxhat = op(c, 'Mul', [dy, gain]);
    const centred = op(c, 'Sub', [op(c, 'Sub', [dxhat, mean(dxhat)]), op(c, 'Mul', [xhat, mean(op(c, 'Mul', [dxhat, xhat]))])]);
    out[0] = op(c, 'Mul', [inv, centred]);
  }
  return out;
}

function concat(c: RuleContext): (string | undefined)[] {
  const xs = c.node.inputs;
  const axis = norm(c.node.attrs.axis as number, rank(c, xs[0]));
  const sizes = xs.map((x) => c.info(x).dims?.[axis]);
  const split = isStatic(sizes)
    ? c.g.ints(sizes)
    : c.g.op(
        'Concat',
        xs.map((x) => dimOf(c, x, axis)),
        { axis: 0 },
      );
  const parts = c.g.opN('Split', [c.dy[0], split], xs.length, { axis }, 'grad_split');
  return parts.map((p, i) => (c.needs[i] ? p : undefined));
}

function splitRule(c: RuleContext): (string | undefined)[] {
  const [x] = c.node.inputs;
  const axis = norm((c.node.attrs.axis as number | undefined) ?? 0, rank(c, x));
  const parts = c.node.outputs.map((o, k) => c.dy[k] || zerosLike(c, o));
  return [op(c, 'Concat', parts, { axis })];
}

/** Slice (unit steps): the gradient is dy padded with zeros back to the input's extent. */
function slice(c: RuleContext): (string | undefined)[] {
  const [x, starts, , axesIn, stepsIn] = c.node.inputs;
  const y = c.node.outputs[0];
  const r = rank(c, x);
  const steps = stepsIn ? constInts(c.g, stepsIn) : undefined;
  if (stepsIn && (!steps || steps.some((s) => s !== 1))) throw new Error(`${c.where}: Slice gradients support unit steps only`);
  const nAxes = c.info(starts).dims?.[0];
  const axesC = axesIn ? constInts(c.g, axesIn) : typeof nAxes === 'number' ? range(0, nAxes) : undefined;
  if (!axesC) throw new Error(`${c.where}: Slice axes must be constant to differentiate`);
  const axes = axesC.map((a) => norm(a, r));
  const g = c.g;
  const startC = constInts(g, starts);
  const zero = g.ints([0]);
  const before: string[] = new Array(r).fill(zero);
  const after: string[] = new Array(r).fill(zero);
  axes.forEach((a, k) => {
    const xd = c.info(x).dims![a];
    const yd = c.info(y).dims?.[a];
    const s = startC?.[k];
    let begin: string;
    if (s !== undefined && s >= 0 && typeof xd === 'number') begin = g.ints([Math.min(s, xd)]);
    else {
      const sv = startC ? g.ints([s!]) : g.op('Slice', [starts, g.ints([k]), g.ints([k + 1])]);
      const dim = dimOf(c, x, a);
      // Slice clamps: negative starts count from the end, then everything is clipped to [0, dim].
      begin = g.op('Where', [g.op('Less', [sv, zero]), g.op('Max', [g.op('Add', [sv, dim]), zero]), g.op('Min', [sv, dim])]);
    }
    before[a] = begin;
    after[a] =
      typeof xd === 'number' && typeof yd === 'number' && s !== undefined && s >= 0
        ? g.ints([xd - Math.min(s, xd) - yd])
        : g.op('Sub', [g.op('Sub', [dimOf(c, x, a), begin]), dimOf(c, y, a)]);
  });
  const pads = g.op('Concat', [...before, ...after], { axis: 0 });
  return [op(c, 'Pad', [c.dy[0], pads])];
}

function gather(c: RuleContext): (string | undefined)[] {
  const [data, idx] = c.node.inputs;
  const axis = norm((c.node.attrs.axis as number | undefined) ?? 0, rank(c, data));
  if (axis !== 0) throw new Error(`${c.where}: Gather gradients support axis 0 only (got ${axis})`);
  const g = c.g;
  // Negative indices count from the end (as Gather reads them); ScatterND sums duplicate rows.
  const rows = dimOf(c, data, 0);
  const fixed = g.op('Where', [g.op('Less', [idx, g.scalarI(0)]), g.op('Add', [idx, g.op('Squeeze', [rows, g.ints([0])])]), idx]);
  const at = g.op('Unsqueeze', [fixed, g.ints([-1])]);
  return [op(c, 'ScatterND', [zerosLike(c, data), at, c.dy[0]], { reduction: 'add' })];
}

function where(c: RuleContext): (string | undefined)[] {
  const [cond, a, b] = c.node.inputs;
  const [dy] = c.dy;
  const zero = scalar(c, 0, dy);
  return [
    undefined,
    c.needs[1] ? toInput(c, op(c, 'Where', [cond, dy, zero]), a) : undefined,
    c.needs[2] ? toInput(c, op(c, 'Where', [cond, zero, dy]), b) : undefined,
  ];
}

function minMax(c: RuleContext, isMin: boolean): (string | undefined)[] {
  const [a, b] = c.node.inputs;
  if (c.node.inputs.length !== 2) throw new Error(`${c.where}: ${c.node.opType} gradients support two inputs`);
  const [dy] = c.dy;
  const zero = scalar(c, 0, dy);
  // Ties send the gradient to the first input.
  const first = c.g.op(isMin ? 'LessOrEqual' : 'GreaterOrEqual', [a, b]);
  return [c.needs[0] ? toInput(c, op(c, 'Where', [first, dy, zero]), a) : undefined, c.needs[1] ? toInput(c, op(c, 'Where', [first, zero, dy]), b) : undefined];
}

const unary =
  (f: (c: RuleContext, x: string, y: string, dy: string) => string): Rule =>
  (c) => [f(c, c.node.inputs[0], c.node.outputs[0], c.dy[0])];

/** The rules, by op type. */
export const GRAD_RULES: Record<string, Rule> = {
  Identity: (c) => [c.dy[0]],
  Neg: unary((c, _x, _y, dy) => op(c, 'Neg', [dy])),
  Exp: unary((c, _x, y, dy) => op(c, 'Mul', [dy, y])),
  Log: unary((c, x, _y, dy) => op(c, 'Div', [dy, x])),
  Sqrt: unary((c, _x, y, dy) => op(c, 'Div', [op(c, 'Mul', [dy, scalar(c, 0.5, dy)]), y])),
  Reciprocal: unary((c, _x, y, dy) => op(c, 'Neg', [op(c, 'Mul', [dy, op(c, 'Mul', [y, y])])])),
  Tanh: unary((c, _x, y, dy) => op(c, 'Mul', [dy, op(c, 'Sub', [scalar(c, 1, dy), op(c, 'Mul', [y, y])])])),
  Sigmoid: unary((c, _x, y, dy) => op(c, 'Mul', [dy, op(c, 'Mul', [y, op(c, 'Sub', [scalar(c, 1, dy), y])])])),
  Erf: unary((c, x, _y, dy) => op(c, 'Mul', [dy, op(c, 'Mul', [scalar(c, 2 / Math.sqrt(Math.PI), dy), op(c, 'Exp', [op(c, 'Neg', [op(c, 'Mul', [x, x])])])])])),
  Relu: unary((c, x, _y, dy) => op(c, 'Where', [c.g.op('Greater', [x, scalar(c, 0, x)]), dy, scalar(c, 0, dy)])),
  Abs: unary((c, x, _y, dy) => op(c, 'Mul', [dy, c.g.op('Sign', [x])])),
  Cast: (c) => [op(c, 'Cast', [c.dy[0]], { to: onnxDataType(floatType(c, c.node.inputs[0])) })],
  Add: (c) => c.node.inputs.map((x, i) => (c.needs[i] ? toInput(c, c.dy[0], x) : undefined)),
  Sum: (c) => c.node.inputs.map((x, i) => (c.needs[i] ? toInput(c, c.dy[0], x) : undefined)),
  Sub: (c) => [c.needs[0] ? toInput(c, c.dy[0], c.node.inputs[0]) : undefined, c.needs[1] ? toInput(c, op(c, 'Neg', [c.dy[0]]), c.node.inputs[1]) : undefined],
  Mul: (c) => {
    const [a, b] = c.node.inputs;
    return [c.needs[0] ? toInput(c, op(c, 'Mul', [c.dy[0], b]), a) : undefined, c.needs[1] ? toInput(c, op(c, 'Mul', [c.dy[0], a]), b) : undefined];
  },
  Div: (c) => {
    const [a, b] = c.node.inputs;
    const y = c.node.outputs[0];
    return [
      c.needs[0] ? toInput(c, op(c, 'Div', [c.dy[0], b]), a) : undefined,
      c.needs[1] ? toInput(c, op(c, 'Neg', [op(c, 'Div', [op(c, 'Mul', [c.dy[0], y]), b])]), b) : undefined,
    ];
  },
  Pow: (c) => {
    const [x, e] = c.node.inputs;
    const y = c.node.outputs[0];
    const [dy] = c.dy;
    return [
      c.needs[0] ? toInput(c, op(c, 'Mul', [dy, op(c, 'Mul', [e, op(c, 'Pow', [x, op(c, 'Sub', [e, scalar(c, 1, e)])])])]), x) : undefined,
      c.needs[1] ? toInput(c, op(c, 'Mul', [dy, op(c, 'Mul', [y, op(c, 'Log', [x])])]), e) : undefined,
    ];
  },
  Min: (c) => minMax(c, true),
  Max: (c) => minMax(c, false),
  Where: where,
  MatMul: matMul,
  Gemm: gemm,
  ReduceSum: (c) => reduce(c, false),
  ReduceMean: (c) => reduce(c, true),
  Softmax: (c) => softmax(c, false),
  LogSoftmax: (c) => softmax(c, true),
  LayerNormalization: layerNorm,
  Transpose: (c) => {
    const x = c.node.inputs[0];
    const r = rank(c, x);
    const perm = (c.node.attrs.perm as number[] | undefined) ?? range(0, r).reverse();
    const inv = new Array<number>(r);
    perm.forEach((p, i) => (inv[p] = i));
    return [op(c, 'Transpose', [c.dy[0]], { perm: inv })];
  },
  Reshape: (c) => [reshapeLike(c, c.dy[0], c.node.inputs[0])],
  Flatten: (c) => [reshapeLike(c, c.dy[0], c.node.inputs[0])],
  Squeeze: (c) => [reshapeLike(c, c.dy[0], c.node.inputs[0])],
  Unsqueeze: (c) => [reshapeLike(c, c.dy[0], c.node.inputs[0])],
  Expand: (c) => [toInput(c, c.dy[0], c.node.inputs[0])],
  Concat: concat,
  Split: splitRule,
  Slice: slice,
  Gather: gather,
  GatherElements: (c) => {
    const [data, idx] = c.node.inputs;
    const axis = (c.node.attrs.axis as number | undefined) ?? 0;
    return [op(c, 'ScatterElements', [zerosLike(c, data), idx, c.dy[0]], { axis, reduction: 'add' })];
  },
};

/** Ops whose outputs are piecewise constant in their inputs: no gradient flows through them. */
export const ZERO_GRAD_OPS = new Set(['Floor', 'Ceil', 'Round', 'Sign']);

/**
 * Rules for subgraphs recorded with `GraphBuilder.customVjp`, by name: `c.node` is the node producing
 * the subgraph's output, `c.dy[0]` its gradient, `c.needs` which of `vjp.inputs` need a gradient.
 */
export const CUSTOM_VJP_RULES: Record<string, (c: RuleContext, vjp: CustomVjp) => (string | undefined)[]> = {
  /**
   * tanh GELU as Layers.gelu writes it, y = x * s with s = sigmoid(u), u = x (c1 + c2 x^2):
   * dy/dx = s + x s (1 - s) u' = s + y u' (1 - s), u' = c1 + 3 c2 x^2. Seven elementwise ops from the
   * forward's x^2, s and y, against thirteen from the per-op rules.
   */
  TanhGelu: (c, vjp) => {
    const [x] = vjp.inputs;
    const { s, xx } = vjp.uses;
    const y = vjp.output;
    const { c1, c2 } = vjp.attrs;
    const du = op(c, 'Add', [op(c, 'Mul', [xx, scalar(c, 3 * c2, x)]), scalar(c, c1, x)]);
    const slope = op(c, 'Add', [s, op(c, 'Mul', [op(c, 'Mul', [y, du]), op(c, 'Sub', [scalar(c, 1, x), s])])]);
    return [op(c, 'Mul', [c.dy[0], slope])];
  },
};
