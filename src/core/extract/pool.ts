// Pooling: pure math on token matrices stored row-major in Float32Arrays.
// A "token matrix" is `data` with token t of the sequence at data[base + t*dims ... + dims].
// `include` (optional) marks the positions that take part (mask-aware pooling); positions at or
// beyond `length` are padding and never read, so padding can never win a max or shift a mean.
import type { WordPooling } from '../recipe';

export interface TokenMatrix {
  data: Float32Array;
  base: number;
  dims: number;
  /** Real (unpadded) tokens of the sequence. */
  length: number;
}

/** Sum of the included token vectors into `sum` (Float64 for accuracy); returns how many were included. */
export function accumulateSum(m: TokenMatrix, sum: Float64Array, include?: Uint8Array): number {
  const { data, base, dims, length } = m;
  let count = 0;
  for (let t = 0; t < length; t++) {
    if (include && !include[t]) continue;
    const row = base + t * dims;
    for (let d = 0; d < dims; d++) sum[d] += data[row + d];
    count++;
  }
  return count;
}

/** Element-wise max of the included token vectors into `max` (initialise it with -Infinity). */
export function accumulateMax(m: TokenMatrix, max: Float32Array, include?: Uint8Array): number {
  const { data, base, dims, length } = m;
  let count = 0;
  for (let t = 0; t < length; t++) {
    if (include && !include[t]) continue;
    const row = base + t * dims;
    for (let d = 0; d < dims; d++) {
      const v = data[row + d];
      if (v > max[d]) max[d] = v;
    }
    count++;
  }
  return count;
}

export function poolMean(m: TokenMatrix, include?: Uint8Array): Float32Array {
  const sum = new Float64Array(m.dims);
  const n = accumulateSum(m, sum, include);
  return Float32Array.from(sum, (v) => (n ? v / n : 0));
}

export function tokenRow(m: TokenMatrix, position: number): Float32Array {
  const start = m.base + position * m.dims;
  return m.data.slice(start, start + m.dims);
}

/** Element-wise mean of several token matrices of the same sequence (for `mean(a..b)` layer specs). */
export function meanOfMatrices(matrices: TokenMatrix[]): TokenMatrix {
  const { dims, length } = matrices[0];
  const out = new Float32Array(length * dims);
  const scale = 1 / matrices.length;
  for (const m of matrices) {
    for (let t = 0; t < length; t++) {
      const src = m.base + t * dims;
      const dst = t * dims;
      for (let d = 0; d < dims; d++) out[dst + d] += m.data[src + d] * scale;
    }
  }
  return { data: out, base: 0, dims, length };
}

/** L2-normalizes each row in place; an all-zero row stays zero. */
export function l2NormalizeRows(data: Float32Array, rows: number, dims: number): void {
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    const base = r * dims;
    for (let d = 0; d < dims; d++) sq += data[base + d] * data[base + d];
    const norm = Math.sqrt(sq);
    if (norm === 0) continue;
    for (let d = 0; d < dims; d++) data[base + d] /= norm;
  }
}

/** How subword pieces make a word (the recipe's word pooling). */
export type WordPiecePooling = WordPooling;

/**
 * Subword → word vectors. `tokens` is the token matrix of the whole text; `words[i]` the inclusive
 * token range [first, last] of word i. `first_last` concatenates the first and last piece (2 × dims).
 */
export function poolWords(tokens: TokenMatrix, words: { firstToken: number; lastToken: number }[], mode: WordPiecePooling): Float32Array {
  const dims = tokens.dims;
  const width = mode === 'first_last' ? 2 * dims : dims;
  const out = new Float32Array(words.length * width);
  words.forEach((w, i) => {
    const dst = i * width;
    if (mode === 'first' || mode === 'first_last') out.set(tokenRow(tokens, w.firstToken), dst);
    if (mode === 'last') out.set(tokenRow(tokens, w.lastToken), dst);
    if (mode === 'first_last') out.set(tokenRow(tokens, w.lastToken), dst + dims);
    if (mode === 'mean') {
      const span: TokenMatrix = { data: tokens.data, base: tokens.base + w.firstToken * dims, dims, length: w.lastToken - w.firstToken + 1 };
      out.set(poolMean(span), dst);
    }
  });
  return out;
}
