// Pure math for the inspector (no DOM): hidden states are one Float32Array, layers × tokens × dims.
// Kept separate so it can be unit-tested in node. Pooled vectors are not computed here: they come
// from core with the inspection (WireInspectResult.pooled), the same numbers as extract.

import { cosine } from '../src/core/vectorMath';

export interface HiddenStatesView {
  layers: number;
  tokens: number;
  dims: number;
  data: Float32Array;
}

export function tokenVector(h: HiddenStatesView, layer: number, token: number): Float32Array {
  const o = (layer * h.tokens + token) * h.dims;
  return h.data.subarray(o, o + h.dims);
}

export function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** layers × tokens matrix of token-vector norms. */
export function normMatrix(h: HiddenStatesView): Float32Array {
  const m = new Float32Array(h.layers * h.tokens);
  for (let l = 0; l < h.layers; l++) for (let t = 0; t < h.tokens; t++) m[l * h.tokens + t] = norm(tokenVector(h, l, t));
  return m;
}

/** layers × tokens matrix: cosine of each token vector to its layer's pooled vector. */
export function cosineToPooledMatrix(h: HiddenStatesView, pooled: Float32Array[]): Float32Array {
  const m = new Float32Array(h.layers * h.tokens);
  for (let l = 0; l < h.layers; l++) for (let t = 0; t < h.tokens; t++) m[l * h.tokens + t] = cosine(tokenVector(h, l, t), pooled[l], 0);
  return m;
}

/** layers × layers cosine similarity of the pooled vectors. */
export function layerSimilarity(pooled: Float32Array[]): Float32Array {
  const n = pooled.length;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const c = i === j ? 1 : cosine(pooled[i], pooled[j], 0);
      m[i * n + j] = c;
      m[j * n + i] = c;
    }
  }
  return m;
}

export function range(values: Float32Array): { min: number; max: number } {
  let min = Infinity, max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

export function vectorAsJson(v: Float32Array): string {
  return `[${Array.from(v, (x) => Number(x.toPrecision(7))).join(', ')}]`;
}

export function vectorAsNumpy(v: Float32Array): string {
  return `np.array(${vectorAsJson(v)}, dtype=np.float32)`;
}

/**
 * Cosine similarity of two texts' pooled vectors at every layer (`a[l]` vs `b[l]`).
 * Both must come from the same model: a different layer count or width is an error, not a guess.
 */
export function cosinePerLayer(a: Float32Array[], b: Float32Array[]): Float32Array {
  if (a.length !== b.length) throw new Error(`the two texts have ${a.length} and ${b.length} hidden states (different models?)`);
  const out = new Float32Array(a.length);
  for (let l = 0; l < a.length; l++) {
    if (a[l].length !== b[l].length) throw new Error(`the two texts have ${a[l].length} and ${b[l].length} dims (different models?)`);
    out[l] = cosine(a[l], b[l], 0);
  }
  return out;
}

export { pca2, projectPca, type Pca2 } from '../src/core/map/pca';

/**
 * The compare chart's summary: the last layer's cosine, then the highest and lowest layers; the last
 * layer is named once, as "the highest" / "the lowest" when it is one of them.
 */
export function comparePoints(values: Float32Array, label: (layer: number) => string): string[] {
  const last = values.length - 1;
  let lo = 0;
  let hi = 0;
  for (let l = 1; l < values.length; l++) {
    if (values[l] < values[lo]) lo = l;
    if (values[l] > values[hi]) hi = l;
  }
  const at = (l: number) => `${label(l)} (${values[l].toFixed(4)})`;
  const extremes = [hi === last ? 'the highest' : '', lo === last ? 'the lowest' : ''].filter(Boolean).join(', ');
  return [
    `last layer ${values[last].toFixed(4)}${extremes ? ` (${extremes})` : ''}`,
    ...(hi !== last ? [`highest at ${at(hi)}`] : []),
    ...(lo !== last ? [`lowest at ${at(lo)}`] : []),
  ];
}
