// Finds every layer's hidden state inside an exported encoder graph and rewrites the graph so that
// ONNX Runtime returns them: Hugging Face exports output only `last_hidden_state`, and ORT refuses
// to fetch a tensor that is not a graph output.
//
// The tensors are found from the graph's *structure*, not from node names, so the same code works
// for `/encoder/layer.N/...` (BERT, RoBERTa, XLM-R), `/transformer/layer.N/...` (DistilBERT), other
// naming styles, LayerNorm fused into one op or decomposed into primitives, and quantized graphs
// (which add DynamicQuantizeLinear/MatMulInteger but keep the LayerNorm boundaries):
//
//   * every LayerNorm output in the encoder is a candidate (post-LN encoders: the residual stream
//     leaves each sub-block through a LayerNorm);
//   * a candidate's "attention depth" is the number of attention blocks (Softmax or a fused attention
//     op) on the longest path from the inputs to it: 0 for the embeddings, i inside layer i;
//   * hidden state i is the deepest candidate (longest LayerNorm chain) at attention depth i, i.e. the
//     tensor that leaves layer i and feeds layer i+1. The last one is the model's own output.
//
// ONNX protobuf is decoded and encoded with `onnx-buf` (compiled ONNX 1.20 schema on @bufbuild/protobuf,
// which keeps unknown fields), so nothing in the model is dropped on the way through.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  GraphProtoSchema,
  ModelProtoSchema,
  ValueInfoProtoSchema,
  type GraphProto,
  type ModelProto,
  type NodeProto,
} from 'onnx-buf';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { UserError } from '../types';

const LAYER_NORM_OPS = new Set([
  'LayerNormalization',
  'SimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'SkipSimplifiedLayerNormalization',
]);
const ATTENTION_OPS = new Set(['Softmax', 'Attention', 'MultiHeadAttention', 'PackedAttention', 'GroupQueryAttention']);

/** Where each hidden state lives in the graph. `tensors[i]` is hidden state i (0 = embeddings output). */
export interface HiddenStateMap {
  tensors: string[];
  /** How they were found: the model already outputs them, or found from the structure. */
  source: 'graph-outputs' | 'structure';
  numLayers: number;
}

export interface GraphSummary {
  inputs: string[];
  outputs: string[];
  nodeCount: number;
}

/** A model as decoded, plus where its graph's fields sit in the original bytes (see buildVariant). */
export interface OnnxModel {
  proto: ModelProto;
  bytes: Uint8Array;
  layout?: GraphLayout;
}

interface FieldRange { field: number; start: number; end: number }
interface GraphLayout {
  /** The whole `graph` field of ModelProto (tag + length + content). */
  start: number;
  end: number;
  /** Each field inside GraphProto, in file order, as absolute byte ranges (tag included). */
  fields: FieldRange[];
}

const MODEL_GRAPH_FIELD = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;

/** Wire-level scan of ModelProto.graph; undefined when the file has an unusual shape (then we re-encode). */
function scanGraphLayout(bytes: Uint8Array): GraphLayout | undefined {
  const top = new BinaryReader(bytes);
  let layout: GraphLayout | undefined;
  while (top.pos < top.len) {
    const start = top.pos;
    const [field, wire] = top.tag();
    if (field !== MODEL_GRAPH_FIELD || wire !== WireType.LengthDelimited) {
      top.skip(wire, field);
      continue;
    }
    if (layout) return undefined; // two graph fields (merged messages): not worth special-casing
    const length = top.uint32();
    const contentStart = top.pos;
    const inner = new BinaryReader(bytes.subarray(contentStart, contentStart + length));
    const fields: FieldRange[] = [];
    while (inner.pos < inner.len) {
      const fieldStart = inner.pos;
      const [f, w] = inner.tag();
      inner.skip(w, f);
      fields.push({ field: f, start: contentStart + fieldStart, end: contentStart + inner.pos });
    }
    top.pos = contentStart + length;
    layout = { start, end: top.pos, fields };
  }
  return layout;
}

export function loadOnnxModel(bytes: Uint8Array): OnnxModel {
  const proto = decodeModel(bytes);
  let layout: GraphLayout | undefined;
  try {
    layout = scanGraphLayout(bytes);
  } catch {
    layout = undefined;
  }
  const initializerFields = layout?.fields.filter((f) => f.field === GRAPH_INITIALIZER).length;
  if (initializerFields !== proto.graph?.initializer.length) layout = undefined;
  return { proto, bytes, layout };
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  try {
    return fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    throw new UserError(
      `The ONNX file could not be read (${(err as Error).message}).`,
      'The file is corrupt or not an ONNX model: download or export it again.',
    );
  }
}

export function summarize(model: ModelProto): GraphSummary {
  const graph = requireGraph(model);
  const initializers = new Set(graph.initializer.map((t) => t.name));
  return {
    inputs: graph.input.map((i) => i.name).filter((n) => !initializers.has(n)),
    outputs: graph.output.map((o) => o.name),
    nodeCount: graph.node.length,
  };
}

export function requireGraph(model: ModelProto): GraphProto {
  if (!model.graph) throw new UserError('The ONNX file has no graph.', 'Export the model again.');
  return model.graph;
}

/** True if any initializer keeps its bytes in a separate file (models over 2 GB). */
export function usesExternalData(model: ModelProto): boolean {
  return requireGraph(model).initializer.some((t) => t.externalData.length > 0);
}

export interface GraphIndex {
  nodes: NodeProto[];
  /** tensor name → index of the node that produces it */
  producer: Map<string, number>;
  /** node indices in topological order */
  order: number[];
}

export function indexGraph(graph: GraphProto): GraphIndex {
  const nodes = graph.node;
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  // Exporters write nodes in topological order, as the ONNX spec requires; sort anyway
  // (Kahn's algorithm) so a hand-edited graph cannot mislead the depth computations.
  const indegree = new Int32Array(nodes.length);
  const consumers: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    for (const input of new Set(n.input)) {
      const p = producer.get(input);
      if (p !== undefined && p !== i) {
        consumers[p].push(i);
        indegree[i]++;
      }
    }
  });
  const order: number[] = [];
  const ready: number[] = [];
  indegree.forEach((d, i) => d === 0 && ready.push(i));
  while (ready.length) {
    const i = ready.shift()!;
    order.push(i);
    for (const c of consumers[i]) if (--indegree[c] === 0) ready.push(c);
  }
  if (order.length !== nodes.length) {
    throw new UserError('The ONNX graph has a cycle.', 'The file is not a valid ONNX model: export it again.');
  }
  return { nodes, producer, order };
}

/** The tensor names reachable backwards from `targets` (node indices). */
export function ancestorNodes(index: GraphIndex, targets: string[]): Set<number> {
  const seen = new Set<number>();
  const stack = targets.map((t) => index.producer.get(t)).filter((i): i is number => i !== undefined);
  while (stack.length) {
    const i = stack.pop()!;
    if (seen.has(i)) continue;
    seen.add(i);
    for (const input of index.nodes[i].input) {
      const p = index.producer.get(input);
      if (p !== undefined && !seen.has(p)) stack.push(p);
    }
  }
  return seen;
}

/**
 * Output tensor of each LayerNorm in the graph (fused op, or the decomposed pattern
 * `(x - mean(x)) / sqrt(var + eps) * gamma + beta` that older exports write).
 */
function findLayerNormOutputs(index: GraphIndex, initializers: Set<string>): Set<string> {
  const out = new Set<string>();
  const consumersOf = new Map<string, number[]>();
  index.nodes.forEach((n, i) => n.input.forEach((t) => {
    const list = consumersOf.get(t);
    if (list) list.push(i); else consumersOf.set(t, [i]);
  }));
  const producerOp = (tensor: string) => {
    const p = index.producer.get(tensor);
    return p === undefined ? undefined : index.nodes[p];
  };
  const isConstant = (tensor: string) => initializers.has(tensor) || producerOp(tensor)?.opType === 'Constant';

  index.nodes.forEach((node) => {
    if (LAYER_NORM_OPS.has(node.opType)) {
      out.add(node.output[0]);
      return;
    }
    // Decomposed LayerNorm: Div(Sub(x, ReduceMean(x)), Sqrt(...)) — the normalization core.
    if (node.opType !== 'Div') return;
    const numerator = producerOp(node.input[0]);
    const denominator = producerOp(node.input[1]);
    if (numerator?.opType !== 'Sub' || denominator?.opType !== 'Sqrt') return;
    if (producerOp(numerator.input[1])?.opType !== 'ReduceMean') return;
    // Follow the affine part (Mul by gamma, Add beta) while it is a single elementwise op with a constant.
    let tensor = node.output[0];
    for (let step = 0; step < 2; step++) {
      const consumers = consumersOf.get(tensor) ?? [];
      if (consumers.length !== 1) break;
      const next = index.nodes[consumers[0]];
      if ((next.opType !== 'Mul' && next.opType !== 'Add') || !next.input.some(isConstant)) break;
      tensor = next.output[0];
    }
    out.add(tensor);
  });
  return out;
}

/** Reads the number of layers from an HF config (names differ across families). */
export function configuredLayerCount(config: Record<string, unknown>): number | undefined {
  for (const key of ['num_hidden_layers', 'n_layers', 'num_layers', 'n_layer']) {
    const v = config[key];
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  }
  return undefined;
}

const HIDDEN_STATE_OUTPUT = /^(?:all_)?hidden_states?[._/-]?(\d+)$/;

/**
 * Locates hidden states 0..L. `outputName` is the model's final output (normally `last_hidden_state`).
 * `expectedLayers` comes from config.json; the structure must agree with it.
 */
export function findHiddenStates(model: ModelProto, outputName: string, expectedLayers?: number): HiddenStateMap {
  const graph = requireGraph(model);

  // A model exported with output_hidden_states already has them as outputs: use those.
  const existing = new Map<number, string>();
  for (const o of graph.output) {
    const m = HIDDEN_STATE_OUTPUT.exec(o.name);
    if (m) existing.set(Number(m[1]), o.name);
  }
  if (existing.size >= 2) {
    const count = Math.max(...existing.keys()) + 1;
    const tensors = Array.from({ length: count }, (_, i) => existing.get(i));
    if (tensors.every((t): t is string => t !== undefined)) {
      return { tensors, source: 'graph-outputs', numLayers: count - 1 };
    }
  }

  const index = indexGraph(graph);
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const relevant = ancestorNodes(index, [outputName]);
  const layerNorms = findLayerNormOutputs(index, initializers);

  // Longest-path depths in topological order: attention blocks passed, and LayerNorms passed.
  const attentionDepth = new Map<string, number>();
  const normDepth = new Map<string, number>();
  for (const i of index.order) {
    if (!relevant.has(i)) continue;
    const node = index.nodes[i];
    let attention = 0;
    let norms = 0;
    for (const input of node.input) {
      attention = Math.max(attention, attentionDepth.get(input) ?? 0);
      norms = Math.max(norms, normDepth.get(input) ?? 0);
    }
    if (ATTENTION_OPS.has(node.opType)) attention += 1;
    for (const output of node.output) {
      attentionDepth.set(output, attention);
      normDepth.set(output, norms + (layerNorms.has(output) ? 1 : 0));
    }
  }

  const numLayers = attentionDepth.get(outputName);
  if (numLayers === undefined || numLayers === 0) {
    throw new UserError(
      `The ONNX graph has no attention blocks before "${outputName}", so it does not look like a transformer encoder.`,
      'Embedding Lens needs an encoder model (BERT, RoBERTa, DistilBERT, MPNet, XLM-R, ...) exported to ONNX.',
    );
  }
  if (expectedLayers !== undefined && expectedLayers !== numLayers) {
    throw new UserError(
      `config.json says the model has ${expectedLayers} layers but its ONNX graph has ${numLayers} attention blocks.`,
      'The config and the ONNX file belong to different models: export the model again.',
    );
  }

  // For each attention depth below L: the deepest LayerNorm output at that depth.
  const best: { tensor: string; depth: number }[] = [];
  for (const tensor of layerNorms) {
    const attention = attentionDepth.get(tensor);
    if (attention === undefined || attention >= numLayers) continue;
    const depth = normDepth.get(tensor)!;
    if (!best[attention] || depth > best[attention].depth) best[attention] = { tensor, depth };
  }
  const tensors: string[] = [];
  for (let i = 0; i < numLayers; i++) {
    if (!best[i]) {
      throw new UserError(
        `Could not find the output of ${i === 0 ? 'the embeddings' : `layer ${i}`} in the ONNX graph (no LayerNorm between attention blocks ${i} and ${i + 1}).`,
        'Embedding Lens supports post-LayerNorm encoders of the BERT family. Please report this model so its layout can be supported.',
      );
    }
    tensors.push(best[i].tensor);
  }
  tensors.push(outputName);
  return { tensors, source: 'structure', numLayers };
}

/**
 * A copy of the model whose graph outputs are exactly `outputs` and which contains only the nodes
 * needed to compute them: asking only for layers ≤ k cuts layers k+1..L out of the computation.
 *
 * Re-encoding a whole model with protobuf costs over a second for a 90 MB model (every weight's bytes
 * go through the encoder). The weights do not change, so instead the kept initializers and the other
 * graph fields are copied from the original bytes as they are, and only the small parts that change
 * (nodes, outputs, value_info) are encoded and appended: protobuf concatenates repeated fields of a
 * message written in several pieces, so the result decodes to exactly the edited graph.
 */
export function buildVariant(model: OnnxModel | ModelProto, outputs: string[]): Uint8Array {
  const onnx: OnnxModel = '$typeName' in model ? { proto: model, bytes: new Uint8Array() } : model;
  const proto = onnx.proto;
  const graph = requireGraph(proto);
  const index = indexGraph(graph);
  const keep = ancestorNodes(index, outputs);
  const nodes = graph.node.filter((_, i) => keep.has(i));
  const used = new Set<string>(outputs);
  for (const n of nodes) for (const t of n.input) used.add(t);
  for (const n of nodes) for (const t of n.output) used.add(t);
  const existingOutputs = new Map(graph.output.map((o) => [o.name, o]));
  // Name-only ValueInfo is enough for a new output: ORT infers the type and shape.
  const newOutputs = outputs.map((name) => existingOutputs.get(name) ?? create(ValueInfoProtoSchema, { name }));
  const valueInfo = graph.valueInfo.filter((v) => used.has(v.name) && !outputs.includes(v.name));

  if (!onnx.layout) {
    const newGraph = create(GraphProtoSchema, {
      ...graph,
      node: nodes,
      initializer: graph.initializer.filter((t) => used.has(t.name)),
      // Keep every declared input: the session declares them and we feed what it declares.
      input: graph.input,
      output: newOutputs,
      valueInfo,
    });
    return toBinary(ModelProtoSchema, create(ModelProtoSchema, { ...proto, graph: newGraph }));
  }

  const { bytes, layout } = onnx;
  const pieces: Uint8Array[] = [];
  let initializerIndex = 0;
  for (const f of layout.fields) {
    if (f.field === GRAPH_NODE || f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO) continue;
    if (f.field === GRAPH_INITIALIZER && !used.has(graph.initializer[initializerIndex++].name)) continue;
    pieces.push(bytes.subarray(f.start, f.end));
  }
  pieces.push(toBinary(GraphProtoSchema, create(GraphProtoSchema, { node: nodes, output: newOutputs, valueInfo })));
  const contentLength = pieces.reduce((n, p) => n + p.length, 0);
  const header = new BinaryWriter().tag(MODEL_GRAPH_FIELD, WireType.LengthDelimited).uint32(contentLength).finish();
  const out = new Uint8Array(layout.start + header.length + contentLength + (bytes.length - layout.end));
  let offset = 0;
  const put = (p: Uint8Array) => { out.set(p, offset); offset += p.length; };
  put(bytes.subarray(0, layout.start));
  put(header);
  for (const p of pieces) put(p);
  put(bytes.subarray(layout.end));
  return out;
}
