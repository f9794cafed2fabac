// Finds each layer's attention probabilities inside an exported encoder graph, from its structure.
//
// In a Hugging Face encoder the attention probabilities of layer i are the output of the Softmax of
// that layer's self-attention: softmax(Q·Kᵀ/√d + mask) over the keys, shaped [batch, heads, query,
// key]; the next op multiplies them with V. So:
//
//   * every Softmax on the way to the model's output is a candidate; its "attention depth" is the
//     number of Softmax nodes on the longest path from the inputs to it, itself included (1 in the
//     first layer, i in layer i) — the same depth the hidden-state finder (onnxGraph.ts) counts;
//   * the candidate must look like self-attention: something computed from a MatMul (the Q·Kᵀ scores)
//     goes in, and its output (possibly through Cast / Dropout / DynamicQuantizeLinear) is multiplied
//     by another tensor (MatMul / MatMulInteger with V);
//   * exactly one candidate per depth 1..L; Hugging Face's `output_attentions` index i is depth i + 1.
//
// An export that fuses attention into one operator (onnxruntime's Attention / MultiHeadAttention, …)
// never materialises the probabilities: we refuse and name the operator rather than guess. What the
// graph gives is checked again at run time (shape [batch, heads, T, T], rows summing to 1; see
// EncoderModel.runAttention).
import type { ModelProto, NodeProto } from 'onnx-buf';
import { UserError } from '../types';
import { ancestorNodes, indexGraph, requireGraph } from './onnxGraph';

/** Operators that compute attention internally without exposing the probabilities. */
const FUSED_ATTENTION_OPS = new Set([
  'Attention',
  'MultiHeadAttention',
  'PackedAttention',
  'PackedMultiHeadAttention',
  'GroupQueryAttention',
  'DecoderMaskedMultiHeadAttention',
  'DecoderMaskedSelfAttention',
  'SparseAttention',
  'LongformerAttention',
  'QAttention',
  'QOrderedAttention',
]);
/** Ops the probabilities may pass through on their way to the product with V. */
const PASS_THROUGH = new Set(['Cast', 'Dropout', 'Identity', 'DynamicQuantizeLinear', 'QuantizeLinear', 'DequantizeLinear']);
const PRODUCT_OPS = new Set(['MatMul', 'MatMulInteger', 'QLinearMatMul', 'Einsum', 'MatMulIntegerToFloat']);
/** Ops allowed between the Q·Kᵀ product and the Softmax (scale, mask, casts, quantisation). */
const SCORE_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Where', 'Cast', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QuantizeLinear']);

/** Where each layer's attention probabilities are. `tensors[i]` = Hugging Face `output_attentions[i]`. */
export interface AttentionMap {
  tensors: string[];
  /** The Softmax node behind each tensor (for messages). */
  nodes: string[];
  numLayers: number;
}

function describe(node: NodeProto): string {
  return `${node.domain ? `${node.domain}.` : ''}${node.opType}${node.name ? ` (node "${node.name}")` : ''}`;
}

/**
 * Locates the attention probabilities of layers 0..L-1 (HF numbering). `outputName` is the model's
 * final output; `expectedLayers` the layer count the hidden-state finder (and config.json) agreed on.
 */
export function findAttentionProbs(model: ModelProto, outputName: string, expectedLayers: number): AttentionMap {
  const graph = requireGraph(model);
  const index = indexGraph(graph);
  const relevant = ancestorNodes(index, [outputName]);

  const fused = [...relevant].map((i) => index.nodes[i]).find((n) => FUSED_ATTENTION_OPS.has(n.opType));
  if (fused) {
    throw new UserError(
      `This ONNX export computes attention inside one fused operator, ${describe(fused)}, so the attention probabilities never exist as a tensor and cannot be read out.`,
      'Use an export without attention fusion (e.g. the plain `optimum-cli export onnx` output, not an `--optimize`d or onnxruntime-transformers-optimised graph).',
    );
  }

  const consumers = new Map<string, number[]>();
  index.nodes.forEach((n, i) => n.input.forEach((t) => {
    const list = consumers.get(t);
    if (list) list.push(i); else consumers.set(t, [i]);
  }));
  const producer = (tensor: string) => {
    const p = index.producer.get(tensor);
    return p === undefined ? undefined : index.nodes[p];
  };

  // Longest-path Softmax depth, in topological order.
  const depth = new Map<string, number>();
  const candidates: { node: NodeProto; depth: number }[] = [];
  for (const i of index.order) {
    if (!relevant.has(i)) continue;
    const node = index.nodes[i];
    let d = 0;
    for (const input of node.input) d = Math.max(d, depth.get(input) ?? 0);
    if (node.opType === 'Softmax') {
      d += 1;
      candidates.push({ node, depth: d });
    }
    for (const output of node.output) depth.set(output, d);
  }

  const feedsProduct = (tensor: string, hops = 3): boolean =>
    (consumers.get(tensor) ?? []).some((c) => {
      const next = index.nodes[c];
      if (PRODUCT_OPS.has(next.opType)) return true;
      return hops > 0 && PASS_THROUGH.has(next.opType) && feedsProduct(next.output[0], hops - 1);
    });
  const fromProduct = (tensor: string, hops = 5): boolean => {
    const p = producer(tensor);
    if (!p) return false;
    if (PRODUCT_OPS.has(p.opType)) return true;
    return hops > 0 && SCORE_OPS.has(p.opType) && p.input.some((t) => fromProduct(t, hops - 1));
  };

  const byDepth = new Map<number, NodeProto[]>();
  for (const c of candidates) {
    const list = byDepth.get(c.depth);
    if (list) list.push(c.node); else byDepth.set(c.depth, [c.node]);
  }
  const tensors: string[] = [];
  const nodes: string[] = [];
  for (let layer = 0; layer < expectedLayers; layer++) {
    const found = byDepth.get(layer + 1) ?? [];
    if (found.length !== 1) {
      const ops = [...new Set([...relevant].map((i) => index.nodes[i].opType))].filter((op) => /softmax|attention/i.test(op));
      throw new UserError(
        found.length === 0
          ? `Could not find the attention probabilities of layer ${layer} (${candidates.length} Softmax operators for ${expectedLayers} layers; attention-like operators in the graph: ${ops.join(', ') || 'none'}).`
          : `Layer ${layer} has ${found.length} Softmax operators (${found.map(describe).join(', ')}), so which one holds its attention probabilities is ambiguous.`,
        'Embedding Lens reads attention from one Softmax per self-attention layer, as plain Hugging Face / Optimum exports have it. Please report this model.',
      );
    }
    const node = found[0];
    if (!fromProduct(node.input[0]) || !feedsProduct(node.output[0])) {
      throw new UserError(
        `The Softmax of layer ${layer}, ${describe(node)}, does not sit between the Q·Kᵀ product and the product with V, so it is not recognisably self-attention.`,
        'Embedding Lens reads attention from plain Hugging Face / Optimum encoder exports. Please report this model.',
      );
    }
    tensors.push(node.output[0]);
    nodes.push(node.name || node.output[0]);
  }
  const extra = candidates.filter((c) => c.depth > expectedLayers);
  if (extra.length) {
    throw new UserError(
      `The graph has Softmax operators beyond its ${expectedLayers} layers (${extra.map((c) => describe(c.node)).join(', ')}).`,
      'It does not look like a plain encoder export. Please report this model.',
    );
  }
  return { tensors, nodes, numLayers: expectedLayers };
}

/**
 * Attention layer spec, Hugging Face `output_attentions` numbering (0 = first encoder layer):
 * an index (negative from the end), `first`, `middle` (the layer whose output is hidden state
 * `middle`), `last`, or `all`. A spec naming several layers another way (lists, ranges, means) is
 * refused: attention maps of different layers are not combined.
 */
export function parseAttentionLayers(spec: string, numLayers: number): { layers: number[]; all: boolean } {
  const t = spec.trim().toLowerCase();
  const range = `this model has attention layers 0 to ${numLayers - 1} (Hugging Face output_attentions numbering; -1 = last)`;
  if (t === 'all') return { layers: Array.from({ length: numLayers }, (_, i) => i), all: true };
  if (t === 'first') return { layers: [0], all: false };
  if (t === 'last') return { layers: [numLayers - 1], all: false };
  if (t === 'middle') return { layers: [Math.ceil(numLayers / 2) - 1], all: false };
  if (t === 'embeddings' || t === 'embedding') {
    throw new UserError('The embeddings have no attention.', `Give --layer <index>, first, middle, last or all; ${range}.`);
  }
  if (/[,()]|\.\./.test(t)) {
    throw new UserError(
      `--attention takes one layer or all, not a layer spec that mixes layers ("${spec}").`,
      `Give --layer <index>, first, middle, last or all; ${range}.`,
    );
  }
  if (!/^-?\d+$/.test(t)) throw new UserError(`Unknown attention layer "${spec}".`, `Give --layer <index>, first, middle, last or all; ${range}.`);
  const n = Number(t);
  const i = n < 0 ? numLayers + n : n;
  if (i < 0 || i >= numLayers) throw new UserError(`Attention layer ${n} does not exist: ${range}.`);
  return { layers: [i], all: false };
}
