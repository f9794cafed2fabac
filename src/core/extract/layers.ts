// Layer specs: the string form users write in settings and on the command line.
//
//   embeddings      hidden state 0 (the embeddings output)
//   first           1, the first transformer layer
//   middle          ⌈L/2⌉
//   last            L
//   3, -1, -2       an index; negative counts from the end (-1 = L)
//   -1,-2           several, concatenated (dims × count)
//   mean(-4..-1)    element-wise mean of a range (inclusive), also mean(1,3,5)
//   all             every hidden state 0..L (inspection; concatenated when pooled)
//   sentence        the graph's own `sentence_embedding` output (pooling etc. baked in), alone only
//   output          the model's own last_hidden_state (what sentence-transformers pools). Equal to L
//                   except where HF's hidden state L is not the output (ModernBERT: L is before
//                   final_norm); there it is an extra index L+1 that ranges and `all` never include.
import { UserError } from '../types';

export interface LayerSelection {
  /** Hidden-state indices 0..L, in output order. */
  layers: number[];
  combine: 'single' | 'concat' | 'mean';
  /** The deepest index needed: the graph is cut after it. */
  deepest: number;
}

function rangeMessage(numLayers: number): string {
  return `this model has layers 0 (embeddings) to ${numLayers}`;
}

/** Named hidden-state indices beyond 0..L (see EncoderInfo.outputIndex / sentenceIndex). */
export interface NamedLayers {
  output: number;
  sentence?: number;
}

function resolveOne(token: string, numLayers: number, spec: string, named: NamedLayers): number[] {
  const t = token.trim().toLowerCase();
  if (t === '') throw new UserError(`Layer spec "${spec}" has an empty entry.`, 'Write e.g. "last", "-2", "-1,-2" or "mean(-4..-1)".');
  if (t === 'embeddings' || t === 'embedding') return [0];
  if (t === 'first') return [1];
  if (t === 'middle') return [Math.ceil(numLayers / 2)];
  if (t === 'last') return [numLayers];
  if (t === 'output') return [named.output];
  if (t === 'sentence') {
    if (named.sentence === undefined) throw new UserError(`Layer "sentence" needs a graph with a sentence_embedding output; this model's graph has none.`, 'Use "output" (the model\'s last_hidden_state) with the model\'s pooling.');
    return [named.sentence];
  }
  if (t === 'all') return Array.from({ length: numLayers + 1 }, (_, i) => i);
  const range = /^(-?\d+)\s*\.\.\s*(-?\d+)$/.exec(t);
  if (range) {
    const a = resolveIndex(range[1], numLayers, spec);
    const b = resolveIndex(range[2], numLayers, spec);
    const step = a <= b ? 1 : -1;
    const out: number[] = [];
    for (let i = a; i !== b + step; i += step) out.push(i);
    return out;
  }
  return [resolveIndex(t, numLayers, spec)];
}

function resolveIndex(text: string, numLayers: number, spec: string): number {
  if (!/^-?\d+$/.test(text)) {
    throw new UserError(
      `Unknown layer "${text}" in layer spec "${spec}".`,
      `Use embeddings, first, middle, last, output, sentence, all, an index (negative counts from the end), a list "-1,-2" or "mean(-4..-1)"; ${rangeMessage(numLayers)}.`,
    );
  }
  const n = Number(text);
  const index = n < 0 ? numLayers + 1 + n : n;
  if (index < 0 || index > numLayers) {
    throw new UserError(`layer ${n} does not exist: ${rangeMessage(numLayers)} (or -1 to -${numLayers + 1} from the end).`);
  }
  return index;
}

/** Resolves a layer spec against a model with `numLayers` transformer layers (hidden states 0..numLayers). */
export function parseLayerSpec(spec: string, numLayers: number, named: NamedLayers = { output: numLayers }): LayerSelection {
  const text = spec.trim();
  if (!text) throw new UserError('The layer spec is empty.', 'Write e.g. "last", "-2", "-1,-2" or "mean(-4..-1)".');
  const mean = /^mean\s*\((.*)\)$/i.exec(text);
  const body = mean ? mean[1] : text;
  const layers = body.split(',').flatMap((part) => resolveOne(part, numLayers, spec, named));
  if (named.sentence !== undefined && layers.includes(named.sentence) && layers.length > 1) {
    throw new UserError(`Layer "sentence" is the model's finished embedding; it cannot be combined with other layers ("${spec}").`);
  }
  if (mean && layers.length === 0) throw new UserError(`"${spec}" names no layers to average.`);
  const combine = mean ? 'mean' : layers.length === 1 ? 'single' : 'concat';
  return { layers, combine, deepest: Math.max(...layers) };
}

/** Output width of a selection on a model of hidden size `hidden`. */
export function selectionDims(selection: LayerSelection, hidden: number): number {
  return selection.combine === 'concat' ? hidden * selection.layers.length : hidden;
}
