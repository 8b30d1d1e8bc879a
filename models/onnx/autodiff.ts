/**
 * Reverse-mode differentiation of ONNX graphs built with GraphBuilder: from a forward graph (parameters
 * and data in, some float output out), generate the nodes that take the cotangent dL/d(output) and
 * return dL/d(input) for chosen inputs, by applying one vector-Jacobian rule per op (grad-rules.ts)
 * along the ops between those inputs and the output, in reverse order. Only standard ONNX ops are
 * emitted, so the result runs in an inference build of onnxruntime.
 *
 * Two ways to run a gradient (both measured by bench/ort-gradients.ts):
 * - `gradientGraph`: one graph that recomputes the forward and then runs the backward;
 * - `splitSaved`: the same nodes split in two graphs, a forward that also outputs every value the backward
 *   reads ("saved activations") and a backward that takes them as inputs.
 *
 * @example
 * const fwd = new GraphBuilder('f');
 * const x = fwd.input('x', 'float32', ['B', 3]);
 * const w = fwd.input('w', 'float32', [3, 2]);
 * fwd.output(fwd.op('Tanh', [fwd.op('MatMul', [x, w])]), 'y', 'float32', ['B', 2]);
 * const { builder } = gradientGraph(fwd, { output: 'y', wrt: ['w'] });
 * // inputs x, w, grad.y [B, 2]; output grad.w [3, 2]
 */
import { type Dim, GraphBuilder, type ElemType } from './builder.ts';
import { CUSTOM_VJP_RULES, GRAD_RULES, ZERO_GRAD_OPS, type RuleContext } from './grad-rules.ts';
import { inferShapes, type ValueInfo } from './shapes.ts';

export interface GradientSpec {
  /** the value differentiated (usually a graph output), e.g. 'logprobs' */
  output: string;
  /** graph inputs to differentiate w.r.t. (float tensors), e.g. the parameter names */
  wrt: readonly string[];
  /** name of the new graph input carrying dL/d(output); default `grad.<output>` */
  cotangent?: string;
  /** name of the value holding dL/d(input); default `grad.<input>` */
  gradName?: (input: string) => string;
  /** apply the graph's custom VJPs (`GraphBuilder.customVjp`; default true) or the per-op rules only */
  customVjps?: boolean;
}

export interface AppendedGradients {
  /** the cotangent input's name */
  cotangent: string;
  /** graph input -> the value holding its gradient (an output once declared) */
  grads: Record<string, string>;
  /** number of nodes before the gradient nodes */
  forwardNodes: number;
}

const FLOAT = new Set<ElemType | undefined>(['float32', 'float64']);

const defaultGradName = (n: string) => `grad.${n}`;

function declaredDims(g: GraphBuilder, info: Map<string, ValueInfo>, name: string): Dim[] {
  const decl = g.outputs.find((o) => o.name === name) ?? g.inputs.find((i) => i.name === name);
  if (decl) return [...decl.dims];
  const dims = info.get(name)?.dims;
  if (!dims) throw new Error(`the rank of '${name}' is not known statically`);
  return dims.map((d, i) => d ?? `${name}_dim${i}`);
}

/**
 * Appends to `g` the gradient of `spec.output` w.r.t. `spec.wrt`: a new float input (the cotangent) and
 * the nodes computing each gradient. Values of `g` the output does not depend on get zero gradients.
 * Throws naming the op and node when a differentiated op has no rule.
 */
export function appendGradients(g: GraphBuilder, spec: GradientSpec): AppendedGradients {
  const info = inferShapes(g);
  const cotName = spec.cotangent ?? `grad.${spec.output}`;
  const gradName = spec.gradName ?? defaultGradName;
  if (!g.has(spec.output)) throw new Error(`gradient: '${spec.output}' is not a value of graph '${g.graphName}'`);
  const outType = info.get(spec.output)?.type;
  if (!FLOAT.has(outType)) throw new Error(`gradient: output '${spec.output}' has element type ${outType ?? 'unknown'}; only float outputs are differentiable`);
  const inputNames = new Set(g.inputs.map((i) => i.name));
  for (const w of spec.wrt) {
    if (!inputNames.has(w)) throw new Error(`gradient: '${w}' is not an input of graph '${g.graphName}'`);
    if (!FLOAT.has(info.get(w)?.type)) throw new Error(`gradient: input '${w}' is not a float tensor`);
  }

  const forward = g.nodes.slice();
  // Values that depend on a differentiated input through float values ...
  const active = new Set<string>(spec.wrt);
  for (const n of forward) {
    if (!n.inputs.some((i) => active.has(i))) continue;
    for (const o of n.outputs) {
      const t = info.get(o)?.type;
      if (o !== '' && (t === undefined || FLOAT.has(t))) active.add(o);
    }
  }
  // ... and that the output depends on.
  const needed = new Set<string>([spec.output]);
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k];
    if (n.outputs.some((o) => needed.has(o) && active.has(o))) for (const i of n.inputs) if (active.has(i)) needed.add(i);
  }

  g.input(cotName, outType!, declaredDims(g, info, spec.output));
  info.set(cotName, { ...info.get(spec.output) });
  const contributions = new Map<string, string[]>([[spec.output, [cotName]]]);
  const total = (v: string): string => {
    const parts = contributions.get(v);
    if (!parts || parts.length === 0) return '';
    // A chain of Adds rather than one variadic Sum: onnxruntime's CPU Sum of 3-4 inputs measured slower.
    const sum = parts.slice(1).reduce((a, b) => g.op('Add', [a, b], {}, 'grad_add'), parts[0]);
    info.set(sum, { ...info.get(v) });
    contributions.set(v, [sum]);
    return sum;
  };
  /** Records the gradients `dx` a rule gave for the `inputs` that need one. */
  const contribute = (inputs: readonly string[], needs: readonly boolean[], dx: readonly (string | undefined)[]) =>
    inputs.forEach((input, i) => {
      const d = dx[i];
      if (!needs[i] || !d) return;
      info.set(d, { ...info.get(input) });
      contributions.set(input, [...(contributions.get(input) ?? []), d]);
    });

  // Subgraphs with their own VJP (e.g. Layers.gelu): the gradient reaching their output goes straight to
  // their inputs; their inner nodes then only carry gradient reaching them from outside the subgraph.
  const custom = new Map((spec.customVjps === false ? [] : g.customVjps).filter((v) => CUSTOM_VJP_RULES[v.op]).map((v) => [v.output, v]));

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k];
    const dy = node.outputs.map((o) => (active.has(o) && needed.has(o) ? total(o) : ''));
    if (dy.every((d) => d === '') || ZERO_GRAD_OPS.has(node.opType)) continue;
    const vjp = node.outputs.length === 1 ? custom.get(node.outputs[0]) : undefined;
    if (vjp) {
      const needsIn = vjp.inputs.map((i) => active.has(i) && needed.has(i));
      const where = `gradient of graph '${g.graphName}', custom VJP ${vjp.op} of '${vjp.output}'`;
      contribute(vjp.inputs, needsIn, CUSTOM_VJP_RULES[vjp.op]({ g, node, dy, needs: needsIn, info: (name) => info.get(name) ?? {}, where }, vjp));
      continue;
    }
    const needs = node.inputs.map((i) => i !== '' && active.has(i) && needed.has(i));
    if (!needs.some(Boolean)) continue;
    const where = `gradient of graph '${g.graphName}', node '${node.name}' (${node.opType})`;
    const rule = GRAD_RULES[node.opType];
    if (!rule)
      throw new Error(
        `${where}: no gradient rule for op ${node.opType} (it lies between ${spec.wrt
          .filter((w) => needed.has(w))
          .slice(0, 3)
          .join(', ')}... and '${spec.output}')`,
      );
    const ctx: RuleContext = { g, node, dy, needs, info: (name) => info.get(name) ?? {}, where };
    contribute(node.inputs, needs, rule(ctx));
  }

  const grads: Record<string, string> = {};
  for (const w of spec.wrt) {
    const d = total(w);
    const name = gradName(w);
    if (d) {
      g.output(d, name, info.get(w)!.type!, declaredDims(g, info, w));
    } else {
      // The output does not depend on w: its gradient is zero.
      const t = info.get(w)!.type as 'float32' | 'float64';
      const zeros = g.op('ConstantOfShape', [g.op('Shape', [w])], { value: { tensor: { type: t, dims: [1], values: [0] } } });
      g.output(zeros, name, t, declaredDims(g, info, w));
    }
    grads[w] = name;
  }
  return { cotangent: cotName, grads, forwardNodes: forward.length };
}

const copyOf = (f: GraphBuilder | Uint8Array, name?: string) => GraphBuilder.fromBytes(f instanceof Uint8Array ? f : f.toBytes(), name);

/**
 * One graph computing the gradients: the forward's inputs plus the cotangent in, `grad.<input>` for every
 * `wrt` input out (and the forward's own outputs too with `keepOutputs`). The forward is recomputed inside.
 */
export function gradientGraph(
  forward: GraphBuilder | Uint8Array,
  spec: GradientSpec & { keepOutputs?: boolean },
): { builder: GraphBuilder } & AppendedGradients {
  const g = copyOf(forward, undefined);
  const kept = spec.keepOutputs ? [...g.outputs] : [];
  g.clearOutputs();
  for (const o of kept) g.output(o.name, o.name, o.type, o.dims);
  const r = appendGradients(g, spec);
  return { builder: g, ...r };
}

export interface SplitGraphs {
  /** the forward's inputs in; its outputs and then every saved value out */
  forward: GraphBuilder;
  /** the inputs the backward reads, the saved values and the cotangent in; the gradients out */
  backward: GraphBuilder;
  /** names of the saved values (outputs of `forward`, inputs of `backward`) */
  saved: string[];
}

/**
 * Splits a graph from `gradientGraph` (with the forward's outputs kept) into a forward graph that also
 * outputs the values the backward needs and a backward graph that takes them instead of recomputing.
 * Every node that does not depend on the cotangent runs in the forward graph.
 */
export function splitSaved(combined: GraphBuilder, cotangent: string, forwardOutputs: readonly string[]): SplitGraphs {
  const info = inferShapes(combined);
  const late = new Set<string>([cotangent]);
  const backNodes = combined.nodes.filter((n) => {
    const dep = n.inputs.some((i) => late.has(i));
    if (dep) for (const o of n.outputs) late.add(o);
    return dep;
  });
  const gradOutputs = combined.outputs.filter((o) => !forwardOutputs.includes(o.name));
  const inputs = new Map(combined.inputs.map((i) => [i.name, i]));
  const consts = new Set(combined.constantNames());
  // Saved: values computed by forward nodes that the backward reads (gradient outputs included: a zero gradient).
  const saved: string[] = [];
  const seen = new Set<string>();
  const read = [...backNodes.flatMap((n) => n.inputs), ...gradOutputs.map((o) => o.name)];
  for (const v of read) {
    if (v === '' || late.has(v) || inputs.has(v) || consts.has(v) || seen.has(v)) continue;
    seen.add(v);
    saved.push(v);
  }

  const dimsOf = (v: string): Dim[] => {
    const d = info.get(v)?.dims;
    if (!d) throw new Error(`splitSaved: the rank of saved value '${v}' is not known statically`);
    return d.map((x, i) => x ?? `${v}_dim${i}`);
  };
  const typeOf = (v: string): ElemType => {
    const t = info.get(v)?.type;
    if (!t) throw new Error(`splitSaved: the element type of saved value '${v}' is not known`);
    return t;
  };

  // Forward: the nodes the forward outputs and saved values need.
  const fwd = new GraphBuilder(`${combined.graphName}_forward`);
  const want = new Set<string>([...forwardOutputs, ...saved]);
  const fwdNodes = combined.nodes.filter((n) => !n.outputs.some((o) => late.has(o)));
  const keep: typeof fwdNodes = [];
  for (let k = fwdNodes.length - 1; k >= 0; k--) {
    const n = fwdNodes[k];
    if (!n.outputs.some((o) => want.has(o))) continue;
    keep.push(n);
    for (const i of n.inputs) want.add(i);
  }
  keep.reverse();
  const addUsed = (b: GraphBuilder, used: Set<string>) => {
    for (const i of combined.inputs) if (used.has(i.name) && i.name !== cotangent) b.input(i.name, i.type, i.dims);
    for (const c of consts) if (used.has(c)) b.addConstant(c, combined.constantValue(c)!);
  };
  addUsed(fwd, want);
  for (const n of keep) fwd.addNode(n);
  for (const o of forwardOutputs) {
    const decl = combined.outputs.find((x) => x.name === o);
    if (!decl) throw new Error(`splitSaved: '${o}' is not an output of the combined graph`);
    fwd.output(o, o, decl.type, decl.dims);
  }
  for (const s of saved) if (!forwardOutputs.includes(s)) fwd.output(s, s, typeOf(s), dimsOf(s));

  // Backward: the saved values and the inputs it reads, then its nodes.
  const bwd = new GraphBuilder(`${combined.graphName}_backward`);
  const used = new Set<string>(backNodes.flatMap((n) => n.inputs));
  addUsed(bwd, used);
  bwd.input(cotangent, inputs.get(cotangent)!.type, inputs.get(cotangent)!.dims);
  for (const s of saved) bwd.input(s, typeOf(s), dimsOf(s));
  for (const n of backNodes) bwd.addNode(n);
  for (const o of gradOutputs) bwd.output(o.name, o.name, o.type, o.dims);
  return { forward: fwd, backward: bwd, saved };
}
