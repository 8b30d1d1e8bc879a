/**
 * A small typed builder for ONNX graphs over the `onnx-proto` (protobufjs) bindings.
 *
 * Values are referred to by name (plain strings). `op()` appends a node and returns fresh output names,
 * so graph code reads like straight-line tensor code. Models are emitted at IR version 8 / opset 17, which
 * onnxruntime-node 1.30 loads (LayerNormalization included).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const IR_VERSION = 8;
export const OPSET = 17;

/** A tensor dimension: a fixed size, or a symbolic name (dynamic at run time). */
export type Dim = number | string;
export type ElemType = 'float32' | 'int64' | 'bool';

/**
 * Attribute values: a plain number is an INT, a number[] is INTS, a string is a STRING;
 * wrap floats as `{ float: x }` / `{ floats: [...] }` (1.0 would otherwise be read as an int).
 */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

const DTYPE: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DTYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
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
  return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: v.floats });
}

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  constructor(readonly graphName: string) {}

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
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** Exposes `value` as a graph output called `name` (through an Identity node when the names differ). */
  output(value: string, name: string, type: ElemType, dims: readonly Dim[]): void {
    if (value !== name) {
      this.claim(name);
      this.nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [value], output: [name], name: `out_${name}` }));
    }
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A constant tensor stored as an initializer; identical small constants are shared. */
  constant(type: 'float32' | 'int64', values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `${type}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== values.length) throw new Error(`constant of shape [${dims}] needs ${n} values, got ${values.length}`);
    const name = this.fresh('const');
    const raw =
      type === 'float32'
        ? new Uint8Array(Float32Array.from(values).buffer)
        : new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    this.initializers.push(onnx.TensorProto.create({ name, dims: [...dims], dataType: DTYPE[type], rawData: raw }));
    this.constCache.set(key, name);
    return name;
  }

  /** Scalar (rank-0) constants. */
  scalarF(v: number): string {
    return this.constant('float32', [v], []);
  }
  scalarI(v: number): string {
    return this.constant('int64', [v], []);
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
    const output = Array.from({ length: nOut }, () => this.fresh(base));
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) throw new Error(`graph '${this.graphName}': ${opType} uses unknown value '${i}'`);
    }
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: [...inputs],
        output,
        name: output[0],
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return output;
  }

  /** Serialises the model (IR 8, default-domain opset 17). */
  toBytes(docString = ''): Uint8Array {
    const graph = onnx.GraphProto.create({
      name: this.graphName,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
    });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'papo-stream',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph,
    });
    return onnx.ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}
