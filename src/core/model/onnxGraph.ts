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

const ATTENTION_OPS = new Set(['Softmax', 'Attention', 'MultiHeadAttention', 'PackedAttention', 'GroupQueryAttention']);
/** Fused norms: output 0 is the normalized tensor. Skip* variants add `input + skip` first (output 3 = that sum). */
const FUSED_NORMS: Record<string, 'layer' | 'rms'> = {
  LayerNormalization: 'layer',
  SkipLayerNormalization: 'layer',
  SimplifiedLayerNormalization: 'rms',
  SkipSimplifiedLayerNormalization: 'rms',
  RMSNormalization: 'rms',
};

/** Where each block's residual stream sits relative to its norms (decided from the graph, see findHiddenStates). */
export type BlockLayout = 'post-norm' | 'pre-norm';

/**
 * What the structure says about the residual stream: `residual[i]` leaves block i (0 = embeddings output).
 * Post-norm: residual[L] is the model's output. Pre-norm: residual[L] is the input of the final norm,
 * whose output is the model's output (`output`); which of the two HF calls hidden state L is a
 * per-family convention (see hfConventions.ts), not a structural fact.
 */
export interface ResidualStream {
  residual: string[];
  layout: BlockLayout;
  /** The model's own output (`last_hidden_state`). */
  output: string;
  /**
   * Pre-norm: the final norm's kind (`none` when the output is the residual stream itself; `fused` when
   * the last residual Add is fused into the final norm (Skip*Normalization) and its sum is not a tensor
   * of the graph, so residual[L] is the output and the stream before the final norm cannot be read).
   */
  finalNorm?: 'layer' | 'rms' | 'none' | 'fused';
  source: 'graph-outputs' | 'structure';
  numLayers: number;
}

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

interface NormInfo {
  /** The tensor being normalized (before any Cast). Undefined for a Skip* norm without its sum output. */
  input?: string;
  kind: 'layer' | 'rms';
}

/**
 * Every norm in the graph, by output tensor: fused ops, LayerNorm decomposed as
 * `(x - mean(x)) / sqrt(var + eps) [* gamma] [+ beta]`, and RMSNorm decomposed as
 * `x * 1/sqrt(mean(x²) + eps) [* w]` (rsqrt as Div(1, ·), Reciprocal or Pow(·, -0.5); also `x / sqrt(...)`),
 * often behind Casts, with a weight that may itself be computed from constants (Gemma's `1 + w`).
 */
function findNorms(index: GraphIndex, isConstant: (tensor: string) => boolean): Map<string, NormInfo> {
  const out = new Map<string, NormInfo>();
  const consumersOf = new Map<string, number[]>();
  index.nodes.forEach((n, i) => n.input.forEach((t) => {
    const list = consumersOf.get(t);
    if (list) list.push(i); else consumersOf.set(t, [i]);
  }));
  const producerOf = (tensor: string) => {
    const p = index.producer.get(tensor);
    return p === undefined ? undefined : index.nodes[p];
  };
  const throughCast = (tensor: string) => {
    let t = tensor;
    for (let p = producerOf(t); p?.opType === 'Cast'; p = producerOf(t)) t = p.input[0];
    return t;
  };
  /** Follows elementwise affine ops with a constant operand (and Casts) downstream while they are the only consumer. */
  const followAffine = (tensor: string, ops: string[]) => {
    let t = tensor;
    for (let step = 0; step < 4; step++) {
      const consumers = consumersOf.get(t) ?? [];
      if (consumers.length !== 1) break;
      const next = index.nodes[consumers[0]];
      if (next.opType === 'Cast' || (ops.includes(next.opType) && next.input.length === 2 && next.input.some((x) => x !== t && isConstant(x)))) {
        t = next.output[0];
      } else break;
    }
    return t;
  };
  /** mean(x²) (+ eps): the tensor squared, or undefined. */
  const meanSquareOf = (tensor: string): string | undefined => {
    let node = producerOf(tensor);
    if (node?.opType === 'Add' && node.input.some(isConstant)) node = producerOf(node.input.find((x) => !isConstant(x))!);
    if (node?.opType !== 'ReduceMean') return undefined;
    const sq = producerOf(node.input[0]);
    if (sq?.opType === 'Pow' && isConstant(sq.input[1])) return sq.input[0];
    if (sq?.opType === 'Mul' && sq.input[0] === sq.input[1]) return sq.input[0];
    return undefined;
  };
  /** 1/sqrt(mean(x²)+eps) in any of its exported spellings → x, or undefined. */
  const rsqrtOf = (tensor: string): string | undefined => {
    const node = producerOf(tensor);
    if (!node) return undefined;
    if (node.opType === 'Reciprocal' && producerOf(node.input[0])?.opType === 'Sqrt') return meanSquareOf(producerOf(node.input[0])!.input[0]);
    if (node.opType === 'Div' && isConstant(node.input[0]) && producerOf(node.input[1])?.opType === 'Sqrt') return meanSquareOf(producerOf(node.input[1])!.input[0]);
    if (node.opType === 'Pow' && isConstant(node.input[1])) return meanSquareOf(node.input[0]);
    return undefined;
  };

  index.nodes.forEach((node) => {
    const fused = FUSED_NORMS[node.opType];
    if (fused) {
      const skip = node.opType.startsWith('Skip');
      out.set(node.output[0], { input: skip ? node.output[3] || undefined : node.input[0], kind: fused });
      return;
    }
    if (node.opType === 'Div') {
      const numerator = producerOf(node.input[0]);
      const denominator = producerOf(node.input[1]);
      if (denominator?.opType !== 'Sqrt') return;
      // LayerNorm: Div(Sub(x, ReduceMean(x)), Sqrt(...)).
      if (numerator?.opType === 'Sub' && producerOf(numerator.input[1])?.opType === 'ReduceMean') {
        out.set(followAffine(node.output[0], ['Mul', 'Add']), { input: throughCast(numerator.input[0]), kind: 'layer' });
        return;
      }
      // RMSNorm: Div(x, Sqrt(mean(x²) + eps)).
      const x = meanSquareOf(denominator.input[0]);
      if (x !== undefined && x === node.input[0]) out.set(followAffine(node.output[0], ['Mul']), { input: throughCast(x), kind: 'rms' });
      return;
    }
    if (node.opType === 'Mul' && node.input.length === 2) {
      // RMSNorm: Mul(x, rsqrt(mean(x²) + eps)), either order.
      for (const [a, b] of [[0, 1], [1, 0]]) {
        const x = rsqrtOf(node.input[b]);
        if (x !== undefined && x === node.input[a]) {
          out.set(followAffine(node.output[0], ['Mul']), { input: throughCast(x), kind: 'rms' });
          return;
        }
      }
    }
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

function unsupportedLayout(what: string): UserError {
  return new UserError(
    `Could not verify where the residual stream runs in this ONNX graph: ${what}.`,
    'Embedding Lens reads post-norm encoders (BERT family) and pre-norm encoders and decoders (ModernBERT, Llama / Qwen / Mistral style) whose blocks add attention and MLP outputs to a residual stream. Please report this model so its layout can be supported.',
    { code: 'MODEL_INVALID' },
  );
}

/**
 * Finds the residual stream of every block from the graph's structure, for any block layout:
 *
 *   * attention depth of a tensor = attention blocks (Softmax or a fused attention op) on the longest path
 *     from the inputs to it; block k's attention is the one node that raises the depth to k;
 *   * block k's attention residual is the first Add (or Skip*Norm) that joins a tensor of depth k (the
 *     attention branch) with a tensor of depth k-1 that feeds block k's attention: that skip input is the
 *     residual stream entering block k, i.e. hidden state k-1 — post-norm (a LayerNorm output, BERT) or
 *     pre-norm (a residual Add whose norm sits at the start of block k, ModernBERT / Llama) alike;
 *   * the layout is decided by what those skip inputs are (norm outputs → post-norm; Adds that also feed
 *     the next block's norm → pre-norm), and every block must agree;
 *   * after the last block: post-norm, the model's output; pre-norm, the residual Add that the final norm
 *     reads (the output must be exactly that norm of it, or the stream itself).
 *
 * Names and model_type play no part. `outputName` is the model's final output (normally
 * `last_hidden_state`); `expectedLayers` comes from config.json and must agree with the structure.
 */
export function findResidualStream(model: ModelProto, outputName: string, expectedLayers?: number): ResidualStream {
  const graph = requireGraph(model);

  // A model exported with output_hidden_states already has them as outputs: those are HF's own.
  const existing = new Map<number, string>();
  for (const o of graph.output) {
    const m = HIDDEN_STATE_OUTPUT.exec(o.name);
    if (m) existing.set(Number(m[1]), o.name);
  }
  if (existing.size >= 2) {
    const count = Math.max(...existing.keys()) + 1;
    const residual = Array.from({ length: count }, (_, i) => existing.get(i));
    if (residual.every((t): t is string => t !== undefined)) {
      return { residual, layout: 'post-norm', output: outputName, source: 'graph-outputs', numLayers: count - 1 };
    }
  }

  const index = indexGraph(graph);
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const graphInputs = new Set(graph.input.map((i) => i.name).filter((n) => !initializers.has(n)));
  const relevant = ancestorNodes(index, [outputName]);

  // Depths in topological order; also whether a tensor depends on any graph input (else it is a constant).
  const attentionDepth = new Map<string, number>();
  const variable = new Set<string>(graphInputs);
  const attentionNodes: number[][] = [];
  for (const i of index.order) {
    const node = index.nodes[i];
    let depth = 0;
    let dependent = false;
    for (const input of node.input) {
      depth = Math.max(depth, attentionDepth.get(input) ?? 0);
      if (variable.has(input)) dependent = true;
    }
    if (relevant.has(i) && ATTENTION_OPS.has(node.opType)) {
      depth += 1;
      (attentionNodes[depth] ??= []).push(i);
    }
    for (const output of node.output) {
      if (!output) continue;
      attentionDepth.set(output, depth);
      if (dependent) variable.add(output);
    }
  }
  const isConstant = (tensor: string) => !variable.has(tensor);

  const numLayers = attentionDepth.get(outputName);
  if (numLayers === undefined || numLayers === 0) {
    throw new UserError(
      `The ONNX graph has no attention blocks before "${outputName}", so it does not look like a transformer.`,
      'Embedding Lens needs a transformer encoder or decoder embedding model exported to ONNX.',
    );
  }
  if (expectedLayers !== undefined && expectedLayers !== numLayers) {
    throw new UserError(
      `config.json says the model has ${expectedLayers} layers but its ONNX graph has ${numLayers} attention blocks.`,
      'The config and the ONNX file belong to different models: export the model again.',
    );
  }
  for (let k = 1; k <= numLayers; k++) {
    if (attentionNodes[k]?.length !== 1) throw unsupportedLayout(`${attentionNodes[k]?.length ?? 0} attention nodes at depth ${k} (expected one per block)`);
  }

  const norms = findNorms(index, isConstant);
  const tensorAncestors = (node: number) => {
    const nodes = ancestorNodes(index, index.nodes[node].input.filter(Boolean));
    const tensors = new Set<string>(index.nodes[node].input);
    for (const n of nodes) for (const t of index.nodes[n].input) tensors.add(t);
    for (const n of nodes) for (const t of index.nodes[n].output) tensors.add(t);
    return tensors;
  };
  const isJoin = (opType: string) => opType === 'Add' || opType === 'SkipLayerNormalization' || opType === 'SkipSimplifiedLayerNormalization';
  /** The output of a join node that carries the sum (Skip*Norm: output 3, when the graph names it). */
  const joinSum = (node: NodeProto) => (node.opType === 'Add' ? node.output[0] : node.output[3] || undefined);

  // Per block k: the skip input (hidden state k-1) and the attention residual's sum.
  const skips: string[] = [];
  const attentionSums: (string | undefined)[] = [];
  for (let k = 1; k <= numLayers; k++) {
    const feeds = tensorAncestors(attentionNodes[k][0]);
    let found: { skip: string; sum: string | undefined } | undefined;
    for (const i of index.order) {
      if (!relevant.has(i)) continue;
      const node = index.nodes[i];
      if (!isJoin(node.opType) || node.input.length < 2) continue;
      const [a, b] = node.input;
      const da = attentionDepth.get(a) ?? 0;
      const db = attentionDepth.get(b) ?? 0;
      const skip = da === k && db === k - 1 && feeds.has(b) ? b : db === k && da === k - 1 && feeds.has(a) ? a : undefined;
      if (skip === undefined || isConstant(skip)) continue;
      found = { skip, sum: joinSum(node) };
      break;
    }
    if (!found) throw unsupportedLayout(`no residual connection around the attention of block ${k}`);
    skips.push(found.skip);
    attentionSums.push(found.sum);
  }

  /** The MLP residual of a pre-norm block: an Add taking `sum` and a tensor computed from it. */
  const mlpResidual = (sum: string | undefined): string | undefined => {
    if (!sum) return undefined;
    const sumNode = index.producer.get(sum);
    for (const i of index.order) {
      if (!relevant.has(i)) continue;
      const node = index.nodes[i];
      if (!isJoin(node.opType) || !node.input.slice(0, 2).includes(sum)) continue;
      const other = node.input[0] === sum ? node.input[1] : node.input[0];
      const otherNode = index.producer.get(other);
      if (otherNode === undefined || sumNode === undefined) continue;
      if (ancestorNodes(index, [other]).has(sumNode) && !norms.has(joinSum(node) ?? '')) return joinSum(node);
    }
    return undefined;
  };

  // Layout: post-norm when the stream entering blocks 2..L is a norm output; pre-norm when it is the MLP
  // residual of the block before. With one block, the attention residual decides (feeds a norm vs. an Add).
  let layout: BlockLayout;
  if (numLayers >= 2) {
    const postNorm = skips.slice(1).map((s) => norms.has(s));
    if (postNorm.every(Boolean)) layout = 'post-norm';
    else if (postNorm.every((p) => !p)) layout = 'pre-norm';
    else throw unsupportedLayout('some blocks are post-norm and others are not');
  } else {
    layout = mlpResidual(attentionSums[0]) !== undefined ? 'pre-norm' : 'post-norm';
  }

  const residual = [...skips];
  if (layout === 'post-norm') {
    residual.push(outputName);
    return { residual, layout, output: outputName, source: 'structure', numLayers };
  }
  for (let k = 1; k < numLayers; k++) {
    const expected = mlpResidual(attentionSums[k - 1]);
    if (expected !== skips[k]) throw unsupportedLayout(`the stream leaving block ${k} is not the one entering block ${k + 1} (parallel attention and MLP, or another layout)`);
  }
  const last = mlpResidual(attentionSums[numLayers - 1]);
  if (last === undefined) {
    // ORT's fusion drops the sum output of the final Skip*Norm when nothing else reads it.
    const producer = index.producer.get(outputName);
    const node = producer === undefined ? undefined : index.nodes[producer];
    const lastSum = attentionSums[numLayers - 1];
    if (node && node.opType.startsWith('Skip') && FUSED_NORMS[node.opType] && lastSum !== undefined && node.input.slice(0, 2).includes(lastSum)) {
      residual.push(outputName);
      return { residual, layout, output: outputName, finalNorm: 'fused', source: 'structure', numLayers };
    }
    throw unsupportedLayout(`no residual connection around the MLP of block ${numLayers}`);
  }
  residual.push(last);
  if (last === outputName) return { residual, layout, output: outputName, finalNorm: 'none', source: 'structure', numLayers };
  const final = norms.get(outputName);
  if (!final || final.input !== last) {
    throw unsupportedLayout(`the model's output "${outputName}" is not the final norm of the residual stream`);
  }
  return { residual, layout, output: outputName, finalNorm: final.kind, source: 'structure', numLayers };
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
