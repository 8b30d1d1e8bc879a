/**
 * Every vector-Jacobian rule of models/onnx/grad-rules.ts, alone, against central finite differences of
 * the forward op, both evaluated by onnxruntime. In float64 (h = 1e-6, tolerance 1e-6 relative to
 * max(1, |gradient|)) wherever onnxruntime's CPU kernels take doubles; Erf has only a float32 kernel
 * (h = 1e-2, tolerance 2e-3: float32 rounding over a step of h).
 *
 * The scalar checked is f = sum(y * w) for a fixed random cotangent w, so its gradient is exactly what the
 * gradient graph computes from the cotangent w.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { type Dim, GraphBuilder } from '../../models/onnx/builder.ts';
import { appendGradients, gradientGraph, splitSaved } from '../../models/onnx/autodiff.ts';
import { inferShapes } from '../../models/onnx/shapes.ts';
import { Layers } from '../../models/onnx/layers.ts';
import { policyConfig } from '../../models/config.ts';
import { Rng } from '../../util/rng.ts';

type FType = 'float32' | 'float64';

interface InputSpec {
  name: string;
  dims: number[];
  /** declared dims (default: dims); symbolic names exercise the run-time paths */
  decl?: Dim[];
  /** differentiate w.r.t. this input (default true for floats) */
  diff?: boolean;
  /** value range: 'positive' draws from [0.5, 1.5], 'spread' keeps values apart (Relu, Abs, Min/Max) */
  kind?: 'normal' | 'positive' | 'spread';
  /** int64 input with these values */
  ints?: number[];
}

interface Case {
  name: string;
  type?: FType;
  inputs: InputSpec[];
  build: (g: GraphBuilder, x: Record<string, string>, t: FType) => string;
  /** output dims when shape inference cannot give them */
  outDims?: Dim[];
  /** finite-difference step and tolerance (default by type, see the header) */
  h?: number;
  tol?: number;
}

const size = (d: number[]) => d.reduce((a, b) => a * b, 1);

function draw(rng: Rng, s: InputSpec): number[] {
  const n = size(s.dims);
  if (s.kind === 'positive') return Array.from({ length: n }, () => 0.5 + rng.float());
  if (s.kind === 'spread') {
    // Distinct values at least 0.1 apart and away from 0: no kinks within a finite-difference step.
    const vals = Array.from({ length: n }, (_, i) => (i - n / 2 + 0.5) * 0.37 + 0.05 + 0.2 * rng.float());
    return rng.shuffle(vals);
  }
  return Array.from({ length: n }, () => rng.normal());
}

function tensor(t: FType, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  return t === 'float64' ? new ort.Tensor('float64', Float64Array.from(values), dims) : new ort.Tensor('float32', Float32Array.from(values), dims);
}

async function checkCase(c: Case): Promise<void> {
  const t = c.type ?? 'float64';
  const rng = Rng.seeded(7);
  const g = new GraphBuilder(c.name);
  const names: Record<string, string> = {};
  for (const s of c.inputs) names[s.name] = g.input(s.name, s.ints ? 'int64' : t, s.decl ?? s.dims);
  const y = c.build(g, names, t);
  const info = inferShapes(g);
  const outDims = c.outDims ?? info.get(y)?.dims?.map((d, i) => d ?? `y${i}`);
  assert.ok(outDims, `${c.name}: output rank unknown`);
  g.output(y, 'y', t, outDims);

  const values: Record<string, number[]> = {};
  for (const s of c.inputs) values[s.name] = s.ints ?? draw(rng, s);
  const feedsOf = (vals: Record<string, number[]>) => {
    const f: Record<string, ort.Tensor> = {};
    for (const s of c.inputs) f[s.name] = s.ints ? new ort.Tensor('int64', BigInt64Array.from(s.ints.map(BigInt)), s.dims) : tensor(t, vals[s.name], s.dims);
    return f;
  };
  const fwd = await ort.InferenceSession.create(g.toBytes());
  const y0 = await fwd.run(feedsOf(values));
  const yDims = y0.y.dims as number[];
  const w = Array.from({ length: size(yDims) }, () => rng.normal());
  const f = async (vals: Record<string, number[]>) => {
    const out = (await fwd.run(feedsOf(vals))).y.data as Float64Array | Float32Array;
    let s = 0;
    for (let i = 0; i < w.length; i++) s += out[i] * w[i];
    return s;
  };

  const wrt = c.inputs.filter((s) => !s.ints && s.diff !== false).map((s) => s.name);
  const { builder } = gradientGraph(g, { output: 'y', wrt });
  const gs = await ort.InferenceSession.create(builder.toBytes());
  const grads = await gs.run({ ...feedsOf(values), 'grad.y': tensor(t, w, yDims) });

  const h = c.h ?? (t === 'float64' ? 1e-6 : 1e-2);
  const tol = c.tol ?? (t === 'float64' ? 1e-6 : 2e-3);
  for (const name of wrt) {
    const got = grads[`grad.${name}`];
    assert.deepEqual(got.dims, c.inputs.find((s) => s.name === name)!.dims, `${c.name}: grad.${name} shape`);
    const vals = values[name];
    for (let j = 0; j < vals.length; j++) {
      const keep = vals[j];
      vals[j] = keep + h;
      const up = await f(values);
      vals[j] = keep - h;
      const down = await f(values);
      vals[j] = keep;
      const fd = (up - down) / (2 * h);
      const ana = (got.data as Float64Array)[j];
      assert.ok(Math.abs(ana - fd) <= tol * Math.max(1, Math.abs(fd)), `${c.name}: d/d${name}[${j}] = ${ana}, finite differences ${fd}`);
    }
  }
  await fwd.release();
  await gs.release();
}

const un = (op: string, kind: InputSpec['kind'] = 'normal', type?: FType): Case => ({
  name: op,
  type,
  inputs: [{ name: 'x', dims: [2, 3], kind }],
  build: (g, x) => g.op(op, [x.x]),
});
const bin = (op: string, a: number[], b: number[], kindA: InputSpec['kind'] = 'normal', kindB: InputSpec['kind'] = 'normal'): Case => ({
  name: `${op} [${a}] [${b}]`,
  inputs: [
    { name: 'a', dims: a, kind: kindA },
    { name: 'b', dims: b, kind: kindB },
  ],
  build: (g, x) => g.op(op, [x.a, x.b]),
});

const CASES: Case[] = [
  un('Identity'),
  un('Neg'),
  un('Exp'),
  un('Log', 'positive'),
  un('Sqrt', 'positive'),
  un('Reciprocal', 'positive'),
  un('Tanh'),
  un('Sigmoid'),
  un('Relu', 'spread'),
  un('Abs', 'spread'),
  un('Erf', 'normal', 'float32'),
  bin('Add', [2, 3, 4], [4]),
  bin('Add', [2, 1, 4], [3, 1]),
  bin('Sub', [3, 1], [2, 3, 4]),
  bin('Mul', [2, 3, 4], [2, 1, 4]),
  bin('Div', [2, 3], [3], 'normal', 'positive'),
  bin('Pow', [2, 3], [3], 'positive', 'normal'),
  bin('Min', [2, 3], [2, 3], 'spread', 'spread'),
  bin('Max', [3, 2], [2], 'spread', 'spread'),
  bin('MatMul', [3, 4], [4, 2]),
  bin('MatMul', [2, 3, 4], [4, 5]),
  bin('MatMul', [2, 3, 4], [2, 4, 5]),
  bin('MatMul', [2, 1, 3, 4], [3, 4, 2]),
  bin('MatMul', [3, 4], [2, 4, 2]),
  {
    name: 'Sum of three, broadcast',
    inputs: [
      { name: 'a', dims: [2, 3] },
      { name: 'b', dims: [3] },
      { name: 'c', dims: [2, 1] },
    ],
    build: (g, x) => g.op('Sum', [x.a, x.b, x.c]),
  },
  {
    name: 'a value used twice (x * x * w)',
    inputs: [
      { name: 'x', dims: [2, 3] },
      { name: 'w', dims: [3] },
    ],
    build: (g, x) => g.op('Mul', [g.op('Mul', [x.x, x.x]), x.w]),
  },
  ...[
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ].map(
    ([tA, tB]): Case => ({
      name: `Gemm transA ${tA} transB ${tB}, alpha, beta, broadcast C`,
      inputs: [
        { name: 'a', dims: tA ? [4, 3] : [3, 4] },
        { name: 'b', dims: tB ? [2, 4] : [4, 2] },
        { name: 'c', dims: [2] },
      ],
      build: (g, x) => g.op('Gemm', [x.a, x.b, x.c], { transA: tA, transB: tB, alpha: { float: 0.7 }, beta: { float: 1.3 } }),
    }),
  ),
  {
    name: 'Where (condition from the data)',
    inputs: [
      { name: 'a', dims: [2, 3] },
      { name: 'b', dims: [3] },
      { name: 'cond', dims: [2, 3], ints: [1, 0, 1, 0, 0, 1] },
    ],
    build: (g, x) => g.op('Where', [g.op('Cast', [x.cond], { to: 9 }), x.a, x.b]),
  },
  {
    name: 'ReduceSum keepdims 0 and 1',
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    build: (g, x) =>
      g.op('Add', [
        g.op('ReduceSum', [x.x, g.ints([1])], { keepdims: 1 }),
        g.op('Unsqueeze', [g.op('ReduceSum', [x.x, g.ints([-2])], { keepdims: 0 }), g.ints([1])]),
      ]),
  },
  { name: 'ReduceSum over all axes', inputs: [{ name: 'x', dims: [2, 3] }], build: (g, x) => g.op('ReduceSum', [x.x], { keepdims: 0 }) },
  { name: 'ReduceMean', inputs: [{ name: 'x', dims: [2, 3, 4] }], build: (g, x) => g.op('ReduceMean', [x.x], { axes: [0, 2], keepdims: 0 }) },
  {
    name: 'ReduceMean with run-time sizes',
    inputs: [{ name: 'x', dims: [2, 3, 4], decl: ['a', 'b', 4] }],
    build: (g, x) => g.op('ReduceMean', [x.x], { axes: [1], keepdims: 1 }),
  },
  { name: 'Softmax last axis', inputs: [{ name: 'x', dims: [2, 5] }], build: (g, x) => g.op('Softmax', [x.x], { axis: -1 }) },
  { name: 'Softmax axis 1', inputs: [{ name: 'x', dims: [2, 3, 2] }], build: (g, x) => g.op('Softmax', [x.x], { axis: 1 }) },
  { name: 'LogSoftmax', inputs: [{ name: 'x', dims: [3, 4] }], build: (g, x) => g.op('LogSoftmax', [x.x], { axis: -1 }) },
  {
    name: 'LayerNormalization over the last axis',
    inputs: [
      { name: 'x', dims: [2, 3, 5] },
      { name: 'gain', dims: [5] },
      { name: 'bias', dims: [5] },
    ],
    build: (g, x) => g.op('LayerNormalization', [x.x, x.gain, x.bias], { axis: -1, epsilon: { float: 1e-5 } }),
  },
  {
    name: 'LayerNormalization over the last two axes',
    inputs: [
      { name: 'x', dims: [2, 3, 2] },
      { name: 'gain', dims: [3, 2] },
      { name: 'bias', dims: [3, 2] },
    ],
    build: (g, x) => g.op('LayerNormalization', [x.x, x.gain, x.bias], { axis: 1, epsilon: { float: 1e-3 } }),
  },
  { name: 'Transpose', inputs: [{ name: 'x', dims: [2, 3, 4] }], build: (g, x) => g.op('Transpose', [x.x], { perm: [2, 0, 1] }) },
  { name: 'Transpose (reversed)', inputs: [{ name: 'x', dims: [2, 3] }], build: (g, x) => g.op('Transpose', [x.x]) },
  { name: 'Reshape', inputs: [{ name: 'x', dims: [2, 3, 4] }], build: (g, x) => g.op('Reshape', [x.x, g.ints([0, 2, -1])]) },
  {
    name: 'Reshape (run-time shape)',
    inputs: [{ name: 'x', dims: [2, 6], decl: ['a', 'b'] }],
    build: (g, x) => g.op('Reshape', [x.x, g.ints([-1, 3])]),
    outDims: ['r', 3],
  },
  { name: 'Flatten', inputs: [{ name: 'x', dims: [2, 3, 2] }], build: (g, x) => g.op('Flatten', [x.x], { axis: 2 }) },
  { name: 'Squeeze', inputs: [{ name: 'x', dims: [2, 1, 3] }], build: (g, x) => g.op('Squeeze', [x.x, g.ints([1])]) },
  { name: 'Unsqueeze', inputs: [{ name: 'x', dims: [2, 3] }], build: (g, x) => g.op('Unsqueeze', [x.x, g.ints([0, 2])]) },
  { name: 'Expand', inputs: [{ name: 'x', dims: [3, 1] }], build: (g, x) => g.op('Expand', [x.x, g.ints([2, 3, 4])]) },
  {
    name: 'Concat of three',
    inputs: [
      { name: 'a', dims: [2, 1, 3] },
      { name: 'b', dims: [2, 2, 3] },
      { name: 'c', dims: [2, 3, 3] },
    ],
    build: (g, x) => g.op('Concat', [x.a, x.b, x.c], { axis: 1 }),
  },
  {
    name: 'Concat with run-time sizes',
    inputs: [
      { name: 'a', dims: [2, 1], decl: ['B', 'p'] },
      { name: 'b', dims: [2, 3], decl: ['B', 'q'] },
    ],
    build: (g, x) => g.op('Concat', [x.a, x.b], { axis: -1 }),
  },
  {
    name: 'Split (one output unused)',
    inputs: [{ name: 'x', dims: [2, 5] }],
    build: (g, x) => {
      const [a, , c] = g.opN('Split', [x.x, g.ints([1, 2, 2])], 3, { axis: 1 });
      return g.op('Concat', [c, a], { axis: 1 });
    },
  },
  {
    name: 'Slice, constant bounds',
    inputs: [{ name: 'x', dims: [3, 5] }],
    build: (g, x) => g.op('Slice', [x.x, g.ints([1, 1]), g.ints([3, -1]), g.ints([0, 1])]),
  },
  {
    name: 'Slice, negative start to the end',
    inputs: [{ name: 'x', dims: [2, 5] }],
    build: (g, x) => g.op('Slice', [x.x, g.ints([-2]), g.ints([2 ** 40]), g.ints([1])]),
  },
  {
    name: 'Slice, run-time start and sizes',
    inputs: [
      { name: 'x', dims: [2, 6], decl: ['B', 'L'] },
      { name: 'start', dims: [1], ints: [2] },
    ],
    build: (g, x) => g.op('Slice', [x.x, x.start, g.ints([-1]), g.ints([1])]),
    outDims: ['B', 'n'],
  },
  {
    name: 'Gather rows (repeated and negative indices)',
    inputs: [
      { name: 'table', dims: [4, 3] },
      { name: 'idx', dims: [2, 3], ints: [1, 3, 1, 0, -1, 1] },
    ],
    build: (g, x) => g.op('Gather', [x.table, x.idx], { axis: 0 }),
  },
  {
    name: 'GatherElements (repeated indices)',
    inputs: [
      { name: 'x', dims: [2, 4] },
      { name: 'idx', dims: [2, 3], ints: [0, 3, 0, 2, 2, 1] },
    ],
    build: (g, x) => g.op('GatherElements', [x.x, x.idx], { axis: 1 }),
  },
  {
    name: 'Cast to float32 and back',
    inputs: [{ name: 'x', dims: [2, 2] }],
    build: (g, x) => g.op('Cast', [g.op('Mul', [g.op('Cast', [x.x], { to: 1 }), g.scalarF(3)])], { to: 11 }),
    // float32 in the middle: float32 step and tolerance
    h: 1e-2,
    tol: 2e-3,
  },
  {
    name: 'broadcast decided at run time (a [p, 3] + b [q, 3] with q = 1)',
    inputs: [
      { name: 'a', dims: [2, 3], decl: ['p', 3] },
      { name: 'b', dims: [1, 3], decl: ['q', 3] },
    ],
    build: (g, x) => g.op('Add', [x.a, x.b]),
  },
];

for (const c of CASES) test(`gradient rule: ${c.name}`, () => checkCase(c));

test('a small transformer-like graph (layer norm, attention, tanh GELU, log-softmax, gather) matches finite differences', () =>
  checkCase({
    name: 'mini block',
    inputs: [
      { name: 'emb', dims: [5, 4] },
      { name: 'tok', dims: [2, 3], ints: [1, 4, 4, 0, 2, 3] },
      { name: 'g1', dims: [4] },
      { name: 'b1', dims: [4] },
      { name: 'wq', dims: [4, 4] },
      { name: 'wk', dims: [4, 4] },
      { name: 'w1', dims: [4, 6] },
      { name: 'w2', dims: [6, 5] },
    ],
    build: (g, x) => {
      const h = g.op('Gather', [x.emb, x.tok], { axis: 0 });
      const n = g.op('LayerNormalization', [h, x.g1, x.b1], { axis: -1, epsilon: { float: 1e-5 } });
      const q = g.op('MatMul', [n, x.wq]);
      const kT = g.op('Transpose', [g.op('MatMul', [n, x.wk])], { perm: [0, 2, 1] });
      const p = g.op('Softmax', [g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar('float64', 0.5)])], { axis: -1 });
      const a = g.op('Add', [h, g.op('MatMul', [p, n])]);
      const u = g.op('MatMul', [a, x.w1]);
      const gelu = g.op('Mul', [
        g.op('Mul', [u, g.scalar('float64', 0.5)]),
        g.op('Add', [
          g.op('Tanh', [
            g.op('Mul', [
              g.op('Add', [u, g.op('Mul', [g.op('Mul', [g.op('Mul', [u, u]), u]), g.scalar('float64', 0.044715)])]),
              g.scalar('float64', Math.sqrt(2 / Math.PI)),
            ]),
          ]),
          g.scalar('float64', 1),
        ]),
      ]);
      const logp = g.op('LogSoftmax', [g.op('MatMul', [gelu, x.w2])], { axis: -1 });
      return g.op('Squeeze', [g.op('GatherElements', [logp, g.op('Unsqueeze', [x.tok, g.ints([2])])], { axis: 2 }), g.ints([2])]);
    },
  }));

/** Layers.gelu's subgraph in float64, with its custom VJP recorded. */
function tanhGelu64(g: GraphBuilder, x: string): string {
  const c1 = 2 * Math.sqrt(2 / Math.PI);
  const c2 = 0.044715 * c1;
  const xx = g.op('Mul', [x, x]);
  const s = g.op('Sigmoid', [g.op('Mul', [x, g.op('Add', [g.op('Mul', [xx, g.scalar('float64', c2)]), g.scalar('float64', c1)])])]);
  const y = g.op('Mul', [x, s]);
  g.customVjp({ op: 'TanhGelu', inputs: [x], output: y, uses: { s, xx }, attrs: { c1, c2 } });
  return y;
}

test('custom VJP TanhGelu matches finite differences, also when an inner value is used outside the subgraph', async () => {
  await checkCase({ name: 'TanhGelu', inputs: [{ name: 'x', dims: [3, 4] }], build: (g, x) => tanhGelu64(g, x.x) });
  // The sigmoid inside is also read after the GELU: its gradient from there flows through the per-op rules.
  await checkCase({
    name: 'TanhGelu with a shared inner value',
    inputs: [{ name: 'x', dims: [3, 4] }],
    build: (g, x) => {
      const y = tanhGelu64(g, x.x);
      const s = g.customVjps[0].uses.s;
      return g.op('Add', [y, g.op('Mul', [s, s])]);
    },
  });
});

test("Layers.gelu records its custom VJP, which survives serialisation and gives the per-op rules' gradient in fewer ops", async () => {
  const cfg = policyConfig();
  const g = new GraphBuilder('gelu');
  const x = g.input('x', 'float32', [4, 8]);
  g.output(new Layers(g, cfg).gelu(x), 'y', 'float32', [4, 8]);
  const bytes = g.toBytes();
  assert.deepEqual(
    GraphBuilder.fromBytes(bytes).customVjps.map((v) => v.op),
    ['TanhGelu'],
  );
  const custom = gradientGraph(bytes, { output: 'y', wrt: ['x'] });
  const perOp = gradientGraph(bytes, { output: 'y', wrt: ['x'], customVjps: false });
  assert.ok(custom.builder.nodeCount < perOp.builder.nodeCount, `${custom.builder.nodeCount} nodes vs ${perOp.builder.nodeCount}`);
  const rng = Rng.seeded(3);
  const feeds = {
    x: new ort.Tensor(
      'float32',
      Float32Array.from({ length: 32 }, () => 3 * rng.normal()),
      [4, 8],
    ),
    'grad.y': new ort.Tensor(
      'float32',
      Float32Array.from({ length: 32 }, () => rng.normal()),
      [4, 8],
    ),
  };
  const [a, b] = await Promise.all(
    [custom, perOp].map(async (r) => (await (await ort.InferenceSession.create(r.builder.toBytes())).run(feeds))['grad.x'].data as Float32Array),
  );
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])), `grad.x[${i}]: ${v} vs ${b[i]}`));
});

test('inputs the output does not depend on get zero gradients; a missing rule is named', async () => {
  const g = new GraphBuilder('z');
  const x = g.input('x', 'float32', [2]);
  const unused = g.input('unused', 'float32', [3]);
  g.output(g.op('Mul', [x, x]), 'y', 'float32', [2]);
  const { builder } = gradientGraph(g, { output: 'y', wrt: ['x', unused] });
  const s = await ort.InferenceSession.create(builder.toBytes());
  const out = await s.run({
    x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]),
    unused: new ort.Tensor('float32', new Float32Array(3), [3]),
    'grad.y': new ort.Tensor('float32', Float32Array.of(1, 1), [2]),
  });
  assert.deepEqual(Array.from(out['grad.x'].data as Float32Array), [2, 4]);
  assert.deepEqual(Array.from(out['grad.unused'].data as Float32Array), [0, 0, 0]);

  const h = new GraphBuilder('h');
  h.output(h.op('Sin', [h.input('x', 'float32', [2])]), 'y', 'float32', [2]);
  assert.throws(() => appendGradients(h, { output: 'y', wrt: ['x'] }), /no gradient rule for op Sin/);
  assert.throws(() => appendGradients(new GraphBuilder('e'), { output: 'y', wrt: ['x'] }), /'y' is not a value/);
});

test('splitSaved: forward with saved values + backward give the same gradients as the one-graph form', async () => {
  const g = new GraphBuilder('s');
  const x = g.input('x', 'float32', ['B', 3]);
  const w = g.input('w', 'float32', [3, 4]);
  const gain = g.input('gain', 'float32', [4]);
  const y = g.op(
    'LogSoftmax',
    [g.op('LayerNormalization', [g.op('Tanh', [g.op('MatMul', [x, w])]), gain, g.scalarF(0)], { axis: -1, epsilon: { float: 1e-5 } })],
    { axis: -1 },
  );
  g.output(y, 'y', 'float32', ['B', 4]);
  const one = gradientGraph(g, { output: 'y', wrt: ['w', 'gain'], keepOutputs: true });
  const split = splitSaved(one.builder, one.cotangent, ['y']);
  assert.ok(split.saved.length > 0);
  const rng = Rng.seeded(3);
  const t = (n: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(n), dims);
  const feeds = {
    x: t(
      Array.from({ length: 6 }, () => rng.normal()),
      [2, 3],
    ),
    w: t(
      Array.from({ length: 12 }, () => rng.normal()),
      [3, 4],
    ),
    gain: t([1, 2, 3, 4], [4]),
  };
  const cot = t(
    Array.from({ length: 8 }, () => rng.normal()),
    [2, 4],
  );
  const s1 = await ort.InferenceSession.create(one.builder.toBytes());
  const ref = await s1.run({ ...feeds, 'grad.y': cot });
  const sf = await ort.InferenceSession.create(split.forward.toBytes());
  const sb = await ort.InferenceSession.create(split.backward.toBytes());
  const fo = await sf.run(feeds);
  assert.deepEqual(Array.from(fo.y.data as Float32Array), Array.from(ref.y.data as Float32Array));
  const bfeeds: Record<string, ort.Tensor> = { 'grad.y': cot };
  for (const n of sb.inputNames) if (!(n in bfeeds)) bfeeds[n] = n in feeds ? feeds[n as keyof typeof feeds] : fo[n];
  const got = await sb.run(bfeeds);
  for (const k of ['grad.w', 'grad.gain']) {
    const a = got[k].data as Float32Array;
    const b = ref[k].data as Float32Array;
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * Math.max(1, Math.abs(b[i])), `${k}[${i}]: ${v} vs ${b[i]}`));
  }
});
