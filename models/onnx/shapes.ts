/**
 * Static element types and shapes of every value of a GraphBuilder graph, as far as they can be known
 * before run time: a dimension is a number or a symbol. Symbols come from the inputs (`'B'`), from sums
 * of symbols (a Concat of `'Lp'` and `'Lr'` gives `'Lp+Lr'`), or name a size computed at run time
 * (`'<value>#<axis>'`); equal symbols are equal sizes. A whole shape is undefined when even the rank is
 * unknown.
 *
 * Covers the ops the project's graphs use. Gradient rules (grad-rules.ts) read these to decide which
 * axes a broadcast gradient sums over; where a shape is unknown they fall back to run-time shape ops.
 *
 * @example
 * const info = inferShapes(g);
 * info.get('h_12') // { type: 'float32', dims: ['B', '32+Lp+Lr', 128] }
 */
import type { ConstType, Dim, ElemType, GraphBuilder, GraphNode } from './builder.ts';
import { elemTypeOf } from './builder.ts';

/** A dimension known statically (number or symbol), or undefined. */
export type SDim = Dim | undefined;

export interface ValueInfo {
  type?: ElemType;
  /** undefined: rank unknown */
  dims?: SDim[];
}

type Get = (name: string) => ValueInfo;

const UNARY_SAME = new Set([
  'Identity',
  'Neg',
  'Exp',
  'Log',
  'Sqrt',
  'Tanh',
  'Sigmoid',
  'Erf',
  'Relu',
  'Abs',
  'Reciprocal',
  'Softmax',
  'LogSoftmax',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Sin',
  'Cos',
  'Softplus',
  'LeakyRelu',
  'Elu',
  'HardSigmoid',
  'Dropout',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Min', 'Max', 'Sum', 'Mean', 'PRelu']);
const COMPARE = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor']);

/** Broadcast of several static shapes (numpy rules). */
export function broadcastDims(shapes: (SDim[] | undefined)[]): SDim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const ss = shapes as SDim[][];
  const r = Math.max(...ss.map((s) => s.length));
  const out: SDim[] = [];
  for (let i = 0; i < r; i++) {
    const ds = ss.filter((s) => s.length - r + i >= 0).map((s) => s[s.length - r + i]);
    const notOne = ds.filter((d) => d !== 1);
    const known = notOne.filter((d) => d !== undefined);
    out.push(notOne.length === 0 ? 1 : known.length ? known[0] : undefined);
  }
  return out;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function ints(g: GraphBuilder, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const c = g.constantValue(name);
  return c && c.type === 'int64' ? c.values : undefined;
}

/** The value of an int64 value when it is a constant (initializer), else undefined. */
export function constInts(g: GraphBuilder, name: string | undefined): number[] | undefined {
  return ints(g, name);
}

function reduceAxes(g: GraphBuilder, n: GraphNode): number[] | undefined | 'dynamic' {
  // opset 13+ ReduceSum and opset 18+ others take axes as an input; opset 17 ReduceMean & co. as an attribute.
  if (n.inputs.length > 1 && n.inputs[1] !== '') return ints(g, n.inputs[1]) ?? 'dynamic';
  const a = n.attrs.axes;
  return Array.isArray(a) ? a : undefined;
}

function infer(g: GraphBuilder, n: GraphNode, get: Get): ValueInfo[] {
  const x = n.inputs[0] ? get(n.inputs[0]) : {};
  const op = n.opType;
  const same = (): ValueInfo[] => [{ type: x.type, dims: x.dims && [...x.dims] }];
  if (UNARY_SAME.has(op)) return same();
  if (op === 'Cast') return [{ type: elemTypeOf(n.attrs.to as number), dims: x.dims && [...x.dims] }];
  if (op === 'CastLike') return [{ type: get(n.inputs[1]).type, dims: x.dims && [...x.dims] }];
  if (BINARY.has(op)) return [{ type: x.type, dims: broadcastDims(n.inputs.map((i) => get(i).dims)) }];
  if (COMPARE.has(op)) return [{ type: 'bool', dims: broadcastDims(n.inputs.map((i) => get(i).dims)) }];
  if (op === 'Not') return [{ type: 'bool', dims: x.dims && [...x.dims] }];
  if (op === 'Where') return [{ type: get(n.inputs[1]).type, dims: broadcastDims(n.inputs.map((i) => get(i).dims)) }];
  switch (op) {
    case 'LayerNormalization': {
      const out: ValueInfo[] = [same()[0]];
      if (x.dims) {
        const axis = norm((n.attrs.axis as number | undefined) ?? -1, x.dims.length);
        const stat = x.dims.map((d, i) => (i < axis ? d : 1));
        out.push({ type: 'float32', dims: stat }, { type: 'float32', dims: [...stat] });
      } else out.push({ type: 'float32' }, { type: 'float32' });
      return out;
    }
    case 'MatMul': {
      const a = x.dims;
      const b = get(n.inputs[1]).dims;
      if (!a || !b || a.length < 2 || b.length < 2) return [{ type: x.type }];
      const batch = broadcastDims([a.slice(0, -2), b.slice(0, -2)]);
      return [{ type: x.type, dims: batch && [...batch, a[a.length - 2], b[b.length - 1]] }];
    }
    case 'Gemm': {
      const a = x.dims;
      const b = get(n.inputs[1]).dims;
      if (!a || !b) return [{ type: x.type }];
      const M = n.attrs.transA ? a[1] : a[0];
      const N = n.attrs.transB ? b[0] : b[1];
      return [{ type: x.type, dims: [M, N] }];
    }
    case 'Transpose': {
      if (!x.dims) return [{ type: x.type }];
      const perm = (n.attrs.perm as number[] | undefined) ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
      return [{ type: x.type, dims: perm.map((p) => x.dims![p]) }];
    }
    case 'Reshape': {
      const shape = ints(g, n.inputs[1]);
      if (!shape) {
        const s = get(n.inputs[1]).dims;
        const r = s && typeof s[0] === 'number' ? s[0] : undefined;
        return [{ type: x.type, dims: r === undefined ? undefined : new Array<SDim>(r).fill(undefined) }];
      }
      const dims: SDim[] = shape.map((d, i) => (d === 0 ? (n.attrs.allowzero ? 0 : x.dims?.[i]) : d === -1 ? undefined : d));
      const minus = shape.indexOf(-1);
      if (minus >= 0 && x.dims && x.dims.every((d) => typeof d === 'number') && dims.every((d, i) => i === minus || typeof d === 'number')) {
        const total = (x.dims as number[]).reduce((p, d) => p * d, 1);
        const rest = (dims.filter((_, i) => i !== minus) as number[]).reduce((p, d) => p * d, 1);
        dims[minus] = total / rest;
      }
      return [{ type: x.type, dims }];
    }
    case 'Flatten': {
      if (!x.dims) return [{ type: x.type }];
      const axis = norm((n.attrs.axis as number | undefined) ?? 1, x.dims.length);
      const prod = (ds: SDim[]) => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((p, d) => p * d, 1) : undefined);
      return [{ type: x.type, dims: [prod(x.dims.slice(0, axis)), prod(x.dims.slice(axis))] }];
    }
    case 'Squeeze': {
      if (!x.dims) return [{ type: x.type }];
      const axes = ints(g, n.inputs[1]);
      if (!axes) return [{ type: x.type, dims: n.inputs[1] ? undefined : x.dims.filter((d) => d !== 1) }];
      const drop = new Set(axes.map((a) => norm(a, x.dims!.length)));
      return [{ type: x.type, dims: x.dims.filter((_, i) => !drop.has(i)) }];
    }
    case 'Unsqueeze': {
      const axes = ints(g, n.inputs[1]);
      if (!x.dims || !axes) return [{ type: x.type }];
      const r = x.dims.length + axes.length;
      const ins = new Set(axes.map((a) => norm(a, r)));
      const out: SDim[] = [];
      let k = 0;
      for (let i = 0; i < r; i++) out.push(ins.has(i) ? 1 : x.dims[k++]);
      return [{ type: x.type, dims: out }];
    }
    case 'Concat': {
      const all = n.inputs.map((i) => get(i).dims);
      const first = all.find((d) => d !== undefined);
      if (!first) return [{ type: x.type }];
      const axis = norm(n.attrs.axis as number, first.length);
      const dims = first.map((d, i) => {
        if (i !== axis) return all.map((s) => s?.[i]).find((v) => v !== undefined) ?? d;
        const parts = all.map((s) => s?.[i]);
        if (parts.some((p) => p === undefined)) return undefined;
        // Symbolic sizes add up to a symbolic expression: equal expressions are equal sizes.
        return parts.every((p) => typeof p === 'number') ? (parts as number[]).reduce((a, b) => a + b, 0) : parts.join('+');
      });
      return [{ type: x.type, dims }];
    }
    case 'Split': {
      if (!x.dims) return n.outputs.map(() => ({ type: x.type }));
      const axis = norm((n.attrs.axis as number | undefined) ?? 0, x.dims.length);
      const sizes = ints(g, n.inputs[1]);
      return n.outputs.map((_, k) => ({ type: x.type, dims: x.dims!.map((d, i) => (i === axis ? sizes?.[k] : d)) }));
    }
    case 'Slice': {
      if (!x.dims) return [{ type: x.type }];
      const starts = ints(g, n.inputs[1]);
      const ends = ints(g, n.inputs[2]);
      const axes = ints(g, n.inputs[3]) ?? (n.inputs[3] ? undefined : starts?.map((_, i) => i));
      const steps = ints(g, n.inputs[4]);
      const dims = [...x.dims];
      if (!axes) return [{ type: x.type, dims: dims.map(() => undefined) }];
      axes.forEach((a, k) => {
        const i = norm(a, dims.length);
        const d = dims[i];
        if (typeof d === 'number' && starts && ends && (!steps || steps[k] === 1)) {
          const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
          dims[i] = Math.max(0, clamp(ends[k]) - clamp(starts[k]));
        } else dims[i] = undefined;
      });
      return [{ type: x.type, dims }];
    }
    case 'Gather': {
      const idx = get(n.inputs[1]).dims;
      if (!x.dims || !idx) return [{ type: x.type }];
      const axis = norm((n.attrs.axis as number | undefined) ?? 0, x.dims.length);
      return [{ type: x.type, dims: [...x.dims.slice(0, axis), ...idx, ...x.dims.slice(axis + 1)] }];
    }
    case 'GatherElements':
      return [{ type: x.type, dims: get(n.inputs[1]).dims && [...get(n.inputs[1]).dims!] }];
    case 'ScatterElements':
    case 'ScatterND':
    case 'Pad':
      return [{ type: x.type, dims: op === 'Pad' ? x.dims?.map(() => undefined) : x.dims && [...x.dims] }];
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceSumSquare':
    case 'ReduceL2':
    case 'ReduceLogSumExp': {
      const keep = (n.attrs.keepdims as number | undefined) ?? 1;
      const axes = reduceAxes(g, n);
      if (!x.dims) return [{ type: x.type }];
      if (axes === 'dynamic') return [{ type: x.type, dims: keep ? x.dims.map(() => undefined) : undefined }];
      const all = !axes || axes.length === 0;
      if (all && n.attrs.noop_with_empty_axes) return same();
      const set = new Set(all ? x.dims.map((_, i) => i) : axes.map((a) => norm(a, x.dims!.length)));
      const dims: SDim[] = [];
      x.dims.forEach((d, i) => {
        if (!set.has(i)) dims.push(d);
        else if (keep) dims.push(1);
      });
      return [{ type: x.type, dims }];
    }
    case 'Shape': {
      if (!x.dims) return [{ type: 'int64', dims: [undefined] }];
      const r = x.dims.length;
      const start = norm(Math.max(-r, Math.min(r, (n.attrs.start as number | undefined) ?? 0)), r);
      const end = norm(Math.max(-r, Math.min(r, (n.attrs.end as number | undefined) ?? r)), r);
      return [{ type: 'int64', dims: [Math.max(0, end - start)] }];
    }
    case 'Size':
      return [{ type: 'int64', dims: [] }];
    case 'Range':
      return [{ type: x.type, dims: [undefined] }];
    case 'NonZero':
      return [{ type: 'int64', dims: [x.dims?.length, undefined] }];
    case 'ArgMax':
    case 'ArgMin': {
      const keep = (n.attrs.keepdims as number | undefined) ?? 1;
      if (!x.dims) return [{ type: 'int64' }];
      const axis = norm((n.attrs.axis as number | undefined) ?? 0, x.dims.length);
      return [{ type: 'int64', dims: keep ? x.dims.map((d, i) => (i === axis ? 1 : d)) : x.dims.filter((_, i) => i !== axis) }];
    }
    case 'Expand':
    case 'ConstantOfShape': {
      const shapeIn = op === 'Expand' ? n.inputs[1] : n.inputs[0];
      const vals = ints(g, shapeIn);
      const s = get(shapeIn).dims;
      const rank = vals?.length ?? (s && typeof s[0] === 'number' ? s[0] : undefined);
      const type: ElemType | undefined =
        op === 'Expand' ? x.type : ((n.attrs.value as { tensor?: { type: ConstType } } | undefined)?.tensor?.type ?? 'float32');
      if (rank === undefined) return [{ type }];
      const target: SDim[] = vals ? [...vals] : new Array<SDim>(rank).fill(undefined);
      if (op === 'ConstantOfShape') return [{ type, dims: target }];
      if (!x.dims) return [{ type, dims: target.map(() => undefined) }];
      return [{ type, dims: broadcastDims([x.dims, target.map((d) => (d === undefined ? undefined : d))]) }];
    }
    case 'Constant': {
      const t = (n.attrs.value as { tensor?: { type: ConstType; dims: number[] } } | undefined)?.tensor;
      return [{ type: t?.type, dims: t ? [...t.dims] : undefined }];
    }
    case 'OneHot': {
      const idx = get(n.inputs[0]).dims;
      const depth = ints(g, n.inputs[1]);
      const type = get(n.inputs[2]).type;
      if (!idx) return [{ type }];
      const r = idx.length + 1;
      const axis = norm((n.attrs.axis as number | undefined) ?? -1, r);
      const dims = [...idx];
      dims.splice(axis, 0, depth?.[0]);
      return [{ type, dims }];
    }
    default:
      return n.outputs.map(() => ({}));
  }
}

/**
 * Element type and static shape of every value: graph inputs as declared, constants as stored, node
 * outputs by the rules above (unknown ops give unknown outputs).
 */
export function inferShapes(g: GraphBuilder, into = new Map<string, ValueInfo>()): Map<string, ValueInfo> {
  for (const i of g.inputs) if (!into.has(i.name)) into.set(i.name, { type: i.type, dims: [...i.dims] });
  for (const c of g.constantNames()) {
    if (into.has(c)) continue;
    const v = g.constantValue(c)!;
    into.set(c, { type: v.type, dims: [...v.dims] });
  }
  const get: Get = (name) => into.get(name) ?? {};
  for (const n of g.nodes) {
    if (n.outputs.every((o) => o === '' || into.has(o))) continue;
    const out = infer(g, n, get);
    n.outputs.forEach((o, k) => {
      if (o === '') return;
      const v = out[k] ?? {};
      // An unknown size gets a symbol of its own, so that values derived from it compare equal.
      into.set(o, { type: v.type, dims: v.dims?.map((d, i) => d ?? `${o}#${i}`) });
    });
  }
  return into;
}
