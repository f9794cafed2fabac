// What the attention view shows, computed from the probabilities of one text ([layers × heads × T × T],
// query rows, key columns): one layer and head or the mean over heads, tokens or whole words, and
// small overview thumbnails. Pure functions over typed arrays (no vscode, no DOM).
//
// Words: the usual convention for subword attention (Clark et al. 2019, "What does BERT look at?",
// also BertViz): attention *to* a word is the sum of the attention to its pieces, attention *from* a
// word is the mean of its pieces' rows. Each row still sums to 1. Special tokens stay units of their own.
import type { TokenInfo, WordInfo } from '../types';

export interface AttentionTensor {
  layers: number;
  heads: number;
  tokens: number;
  /** [layers × heads × tokens × tokens], row-major. */
  probs: Float32Array;
}

/** A row/column of the view: one token or one word (a run of tokens). */
export interface AttentionUnit {
  label: string;
  /** Token indices [first, last], inclusive. */
  first: number;
  last: number;
}

export function tokenUnits(tokens: TokenInfo[]): AttentionUnit[] {
  return tokens.map((t, i) => ({ label: t.token, first: i, last: i }));
}

/** Words from their pieces; tokens outside any word (special tokens) are units of their own. */
export function wordUnits(tokens: TokenInfo[], words: WordInfo[]): AttentionUnit[] {
  const units: AttentionUnit[] = [];
  const wordAt = new Map(words.map((w) => [w.firstToken, w]));
  for (let t = 0; t < tokens.length;) {
    const w = wordAt.get(t);
    if (w && w.lastToken >= t) {
      units.push({ label: w.text, first: w.firstToken, last: w.lastToken });
      t = w.lastToken + 1;
    } else {
      units.push({ label: tokens[t].token, first: t, last: t });
      t++;
    }
  }
  return units;
}

/** The T × T matrix of one layer and head, or (head = 'mean') the mean over heads. */
export function attentionMatrix(a: AttentionTensor, layer: number, head: number | 'mean'): Float32Array {
  const T = a.tokens;
  const size = T * T;
  if (!(layer >= 0 && layer < a.layers)) throw new RangeError(`layer ${layer} of ${a.layers}`);
  if (head !== 'mean') {
    if (!(head >= 0 && head < a.heads)) throw new RangeError(`head ${head} of ${a.heads}`);
    const start = (layer * a.heads + head) * size;
    return a.probs.slice(start, start + size);
  }
  const out = new Float32Array(size);
  for (let h = 0; h < a.heads; h++) {
    const start = (layer * a.heads + h) * size;
    for (let i = 0; i < size; i++) out[i] += a.probs[start + i];
  }
  for (let i = 0; i < size; i++) out[i] /= a.heads;
  return out;
}

/** A T × T matrix over tokens as a U × U matrix over units (rows: mean of pieces, columns: sum). */
export function aggregateUnits(matrix: Float32Array, T: number, units: AttentionUnit[]): Float32Array {
  const U = units.length;
  const out = new Float32Array(U * U);
  units.forEach((qu, r) => {
    const pieces = qu.last - qu.first + 1;
    units.forEach((ku, c) => {
      let s = 0;
      for (let q = qu.first; q <= qu.last; q++) for (let k = ku.first; k <= ku.last; k++) s += matrix[q * T + k];
      out[r * U + c] = s / pieces;
    });
  });
  return out;
}

/** An n × n matrix shrunk to size × size (block means; unchanged when n ≤ size). */
export function thumbnail(matrix: Float32Array, n: number, size: number): { size: number; values: Float32Array } {
  if (n <= size) return { size: n, values: matrix.slice() };
  const out = new Float32Array(size * size);
  const edge = (i: number) => Math.round((i * n) / size);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      let s = 0;
      let count = 0;
      for (let q = edge(r); q < edge(r + 1); q++) for (let k = edge(c); k < edge(c + 1); k++, count++) s += matrix[q * n + k];
      out[r * size + c] = count ? s / count : 0;
    }
  }
  return { size, values: out };
}

/** Overview thumbnails of every layer × head (and the head mean as head index `heads`), each size × size. */
export function attentionThumbnails(a: AttentionTensor, units: AttentionUnit[] | undefined, size: number): { size: number; values: Float32Array } {
  let cell = 0;
  let values = new Float32Array(0);
  for (let l = 0; l < a.layers; l++) {
    for (let h = 0; h <= a.heads; h++) {
      let m = attentionMatrix(a, l, h === a.heads ? 'mean' : h);
      let n = a.tokens;
      if (units) {
        m = aggregateUnits(m, a.tokens, units);
        n = units.length;
      }
      const t = thumbnail(m, n, size);
      if (!cell) {
        cell = t.size;
        values = new Float32Array(a.layers * (a.heads + 1) * cell * cell);
      }
      values.set(t.values, (l * (a.heads + 1) + h) * cell * cell);
    }
  }
  return { size: cell, values };
}
