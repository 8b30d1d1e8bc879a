/**
 * A small typed builder for ONNX graphs over the `onnx-proto` (protobufjs) bindings.
 *
 * Values are referred to by name (plain strings). `op()` appends a node and returns fresh output names,
 * so graph code reads like straight-line tensor code. Models are emitted at IR version 8 / opset 17, which
 * onnxruntime-node 1.30 loads (LayerNormalization included).
 *
 * The graph is kept as plain objects (`nodes`, `inputs`, `outputs`, constants) until `toBytes()`, so that
 * graph transformations (models/onnx/autodiff.ts) can read it, extend it, or copy parts of it into another
 * builder; `GraphBuilder.fromBytes` reads a serialised model back.
 *
 * @example
 * const g = new GraphBuilder('affine');
 * const x = g.input('x', 'float32', ['B', 3]);
 * g.output(g.op('Add', [g.op('MatMul', [x, g.input('w', 'float32', [3, 2])]), g.scalarF(0.5)]), 'y', 'float32', ['B', 2]);
 * const bytes = g.toBytes();
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const IR_VERSION = 8;
export const OPSET = 17;

/** A tensor dimension: a fixed size, or a symbolic name (dynamic at run time). */
export type Dim = number | string;
export type ElemType = 'float32' | 'float64' | 'int64' | 'bool' | 'uint8';
/** Element types a constant can have. */
export type ConstType = 'float32' | 'float64' | 'int64';

/** A constant tensor's content (initializers and tensor attributes). */
export interface TensorValue {
  type: ConstType;
  dims: number[];
  values: number[];
}

/**
 * Attribute values: a plain number is an INT, a number[] is INTS, a string is a STRING;
 * wrap floats as `{ float: x }` / `{ floats: [...] }` (1.0 would otherwise be read as an int) and
 * tensors as `{ tensor: { type, dims, values } }`.
 */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: TensorValue };

/** A node of the graph, as the builder holds it. */
export interface GraphNode {
  opType: string;
  /** value names; '' marks an absent optional input */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  name: string;
}

/**
 * A custom vector-Jacobian product for a subgraph (models/onnx/autodiff.ts applies it instead of the
 * per-op rules between `inputs` and `output`): `op` names a rule in grad-rules.ts (CUSTOM_VJP_RULES),
 * `uses` the forward values it reads, `attrs` its numeric parameters. Stored in the model's metadata, so
 * it survives serialisation; onnxruntime ignores it.
 */
export interface CustomVjp {
  op: string;
  inputs: string[];
  output: string;
  uses: Record<string, string>;
  attrs: Record<string, number>;
}

/** Metadata key of the custom VJPs. */
const CUSTOM_VJP_KEY = 'papo.custom_vjp';

/** A declared graph input or output. */
export interface ValueDecl {
  name: string;
  type: ElemType;
  dims: Dim[];
}

const DTYPE: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
};
const FROM_DTYPE = new Map<number, ElemType>(Object.entries(DTYPE).map(([k, v]) => [v, k as ElemType]));

/** The ONNX TensorProto data type number of an element type (the `to` attribute of Cast). */
export const onnxDataType = (t: ElemType): number => DTYPE[t];
/** The element type of an ONNX data type number, if the builder knows it. */
export const elemTypeOf = (dataType: number): ElemType | undefined => FROM_DTYPE.get(dataType);

/** protobufjs decodes int64 fields as Long objects (when the `long` package is present) or numbers. */
function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

function valueInfo(d: ValueDecl): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name: d.name,
    type: {
      tensorType: {
        elemType: DTYPE[d.type],
        shape: { dim: d.dims.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) },
      },
    },
  });
}

function tensorProto(name: string, t: TensorValue): InstanceType<typeof onnx.TensorProto> {
  const raw =
    t.type === 'float32'
      ? new Uint8Array(Float32Array.from(t.values).buffer)
      : t.type === 'float64'
        ? new Uint8Array(Float64Array.from(t.values).buffer)
        : new Uint8Array(BigInt64Array.from(t.values.map((v) => BigInt(v))).buffer);
  return onnx.TensorProto.create({ name, dims: [...t.dims], dataType: DTYPE[t.type], rawData: raw });
}

function tensorValue(p: onnxProto.onnx.ITensorProto, where: string): TensorValue {
  const type = FROM_DTYPE.get(p.dataType ?? 0);
  if (type !== 'float32' && type !== 'float64' && type !== 'int64') throw new Error(`${where}: tensors of data type ${p.dataType} are not supported`);
  const dims = (p.dims ?? []).map(num);
  let values: number[];
  const raw = p.rawData;
  if (raw && raw.length > 0) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    values =
      type === 'float32'
        ? Array.from(new Float32Array(buf))
        : type === 'float64'
          ? Array.from(new Float64Array(buf))
          : Array.from(new BigInt64Array(buf), Number);
  } else {
    values = type === 'float32' ? [...(p.floatData ?? [])] : type === 'float64' ? [...(p.doubleData ?? [])] : (p.int64Data ?? []).map(num);
  }
  return { type, dims, values };
}

function attribute(name: string, v: AttrValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute '${name}': ${v} is not an integer; wrap floats as { float: x }`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: v });
  }
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: v.floats });
  return onnx.AttributeProto.create({ name, type: T.TENSOR, t: tensorProto('', v.tensor) });
}

function attrValue(a: onnxProto.onnx.IAttributeProto, where: string): AttrValue {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT:
      return num(a.i);
    case T.INTS:
      return (a.ints ?? []).map(num);
    case T.FLOAT:
      return { float: a.f ?? 0 };
    case T.FLOATS:
      return { floats: [...(a.floats ?? [])] };
    case T.STRING:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    case T.TENSOR:
      return { tensor: tensorValue(a.t ?? {}, `${where} attribute '${a.name}'`) };
    default:
      throw new Error(`${where}: attribute '${a.name}' has an unsupported type ${a.type}`);
  }
}

function declOf(v: onnxProto.onnx.IValueInfoProto, where: string): ValueDecl {
  const tt = v.type?.tensorType;
  const type = FROM_DTYPE.get(tt?.elemType ?? 0);
  if (!type) throw new Error(`${where} '${v.name}': element type ${tt?.elemType} is not supported`);
  const dims = (tt?.shape?.dim ?? []).map((d, i) =>
    d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue) : `${v.name}_${i}`,
  );
  return { name: v.name ?? '', type, dims };
}

export class GraphBuilder {
  private readonly nodeList: GraphNode[] = [];
  private readonly inputList: ValueDecl[] = [];
  private readonly outputList: ValueDecl[] = [];
  private readonly constants = new Map<string, TensorValue>();
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly vjps: CustomVjp[] = [];
  private counter = 0;

  constructor(readonly graphName: string) {}

  /** Reads a model serialised by `toBytes` (or any IR 8 / opset <= 17 model using the supported types). */
  static fromBytes(bytes: Uint8Array, graphName?: string): GraphBuilder {
    const model = onnx.ModelProto.decode(bytes);
    const graph = model.graph;
    if (!graph) throw new Error('model has no graph');
    const g = new GraphBuilder(graphName ?? graph.name ?? 'graph');
    for (const init of graph.initializer ?? []) g.addConstant(init.name ?? '', tensorValue(init, `initializer '${init.name}'`));
    for (const v of graph.input ?? []) {
      if (g.constants.has(v.name ?? '')) continue; // an initializer listed as input (older exporters)
      const d = declOf(v, 'input');
      g.input(d.name, d.type, d.dims);
    }
    for (const n of graph.node ?? []) {
      if (n.domain) throw new Error(`node '${n.name}' (${n.opType}) is in domain '${n.domain}'; only the default domain is supported`);
      const where = `node '${n.name}' (${n.opType})`;
      const attrs: Record<string, AttrValue> = {};
      for (const a of n.attribute ?? []) attrs[a.name ?? ''] = attrValue(a, where);
      g.addNode({ opType: n.opType ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs, name: n.name ?? '' });
    }
    for (const v of graph.output ?? []) g.outputList.push(declOf(v, 'output'));
    const vjps = (model.metadataProps ?? []).find((m) => m.key === CUSTOM_VJP_KEY)?.value;
    if (vjps) for (const v of JSON.parse(vjps) as CustomVjp[]) g.customVjp(v);
    return g;
  }

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph '${this.graphName}': value name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputList.push({ name: this.claim(name), type, dims: [...dims] });
    return name;
  }

  /** Exposes `value` as a graph output called `name` (through an Identity node when the names differ). */
  output(value: string, name: string, type: ElemType, dims: readonly Dim[]): void {
    if (value !== name) {
      this.claim(name);
      this.nodeList.push({ opType: 'Identity', inputs: [value], outputs: [name], attrs: {}, name: `out_${name}` });
    }
    this.outputList.push({ name, type, dims: [...dims] });
  }

  /** Drops every graph output declaration (the values and nodes stay). */
  clearOutputs(): void {
    this.outputList.length = 0;
  }

  /** A constant tensor stored as an initializer; identical small constants are shared. */
  constant(type: ConstType, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `${type}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== values.length) throw new Error(`constant of shape [${dims}] needs ${n} values, got ${values.length}`);
    const name = this.fresh('const');
    this.constants.set(name, { type, dims: [...dims], values: [...values] });
    this.constCache.set(key, name);
    return name;
  }

  /** Adds a named constant (an initializer) as is. */
  addConstant(name: string, value: TensorValue): string {
    this.constants.set(this.claim(name), { type: value.type, dims: [...value.dims], values: [...value.values] });
    return name;
  }

  /** Scalar (rank-0) constants. */
  scalarF(v: number): string {
    return this.constant('float32', [v], []);
  }
  scalarI(v: number): string {
    return this.constant('int64', [v], []);
  }
  /** A rank-0 constant of a float or int64 element type. */
  scalar(type: ConstType, v: number): string {
    return this.constant(type, [v], []);
  }
  ints(vs: readonly number[]): string {
    return this.constant('int64', vs);
  }

  /** Appends a node with one output; returns the output's name. An empty input name means "absent". */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.opN(opType, inputs, 1, attrs, hint)[0];
  }

  /** Appends a node with `nOut` outputs. */
  opN(opType: string, inputs: readonly string[], nOut: number, attrs: Record<string, AttrValue> = {}, hint?: string): string[] {
    const base = hint ?? opType.toLowerCase();
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) throw new Error(`graph '${this.graphName}': ${opType} uses unknown value '${i}'`);
    }
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === 'number' && !Number.isInteger(v)) throw new Error(`${opType} attribute '${k}': ${v} is not an integer; wrap floats as { float: x }`);
    }
    const output = Array.from({ length: nOut }, () => this.fresh(base));
    this.nodeList.push({ opType, inputs: [...inputs], outputs: output, attrs: { ...attrs }, name: output[0] });
    return output;
  }

  /** Appends a node whose output names are given (copied from another graph); '' outputs stay absent. */
  addNode(node: GraphNode): void {
    for (const i of node.inputs) {
      if (i !== '' && !this.names.has(i)) throw new Error(`graph '${this.graphName}': ${node.opType} '${node.name}' uses unknown value '${i}'`);
    }
    for (const o of node.outputs) if (o !== '') this.claim(o);
    this.nodeList.push({ ...node, inputs: [...node.inputs], outputs: [...node.outputs], attrs: { ...node.attrs } });
  }

  /** Records a custom VJP for the subgraph from `v.inputs` to `v.output` (all values of this graph). */
  customVjp(v: CustomVjp): void {
    for (const name of [...v.inputs, v.output, ...Object.values(v.uses)])
      if (!this.names.has(name)) throw new Error(`graph '${this.graphName}': custom VJP ${v.op} refers to unknown value '${name}'`);
    this.vjps.push({ ...v, inputs: [...v.inputs], uses: { ...v.uses }, attrs: { ...v.attrs } });
  }

  /** The custom VJPs recorded with `customVjp`. */
  get customVjps(): readonly CustomVjp[] {
    return this.vjps;
  }

  /** Whether `name` is a value of this graph (input, constant or node output). */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** The nodes in order (every node's inputs are produced before it). */
  get nodes(): readonly GraphNode[] {
    return this.nodeList;
  }
  get inputs(): readonly ValueDecl[] {
    return this.inputList;
  }
  get outputs(): readonly ValueDecl[] {
    return this.outputList;
  }
  /** The value of a constant (initializer), or undefined if `name` is not one. */
  constantValue(name: string): TensorValue | undefined {
    return this.constants.get(name);
  }
  /** Names of all constants (initializers). */
  constantNames(): string[] {
    return [...this.constants.keys()];
  }

  /**
   * Serialises the model (IR 8, default-domain opset 17). `metadata` becomes the model's metadata_props
   * (beside the custom VJPs, if any).
   */
  toBytes(docString = '', metadata: Record<string, string> = {}): Uint8Array {
    const graph = onnx.GraphProto.create({
      name: this.graphName,
      node: this.nodeList.map((n) =>
        onnx.NodeProto.create({
          opType: n.opType,
          input: n.inputs,
          output: n.outputs,
          name: n.name,
          attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
        }),
      ),
      input: this.inputList.map(valueInfo),
      output: this.outputList.map(valueInfo),
      initializer: [...this.constants].map(([name, t]) => tensorProto(name, t)),
    });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'papo-stream',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph,
      metadataProps: [
        ...(this.vjps.length ? [{ key: CUSTOM_VJP_KEY, value: JSON.stringify(this.vjps) }] : []),
        ...Object.entries(metadata).map(([key, value]) => ({ key, value })),
      ],
    });
    return onnx.ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.nodeList.length;
  }
}
