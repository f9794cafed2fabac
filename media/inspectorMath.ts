// Pure math for the inspector (no DOM): hidden states are one Float32Array, layers × tokens × dims.
// Kept separate so it can be unit-tested in node.
import type { VectorPooling } from '../src/core/recipe';
import { seededRandom } from '../src/core/random';

export interface HiddenStatesView {
  layers: number;
  tokens: number;
  dims: number;
  data: Float32Array;
}

export type Pooling = VectorPooling;

export function tokenVector(h: HiddenStatesView, layer: number, token: number): Float32Array {
  const o = (layer * h.tokens + token) * h.dims;
  return h.data.subarray(o, o + h.dims);
}

export function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Pools one layer over the tokens where `include[t]` is true (all tokens if none are). */
export function poolLayer(h: HiddenStatesView, layer: number, pooling: Pooling, include: boolean[]): Float32Array {
  const idx: number[] = [];
  for (let t = 0; t < h.tokens; t++) if (include[t]) idx.push(t);
  if (idx.length === 0) for (let t = 0; t < h.tokens; t++) idx.push(t);
  const out = new Float32Array(h.dims);
  switch (pooling) {
    case 'cls':
      out.set(tokenVector(h, layer, 0));
      return out;
    case 'last':
      out.set(tokenVector(h, layer, h.tokens - 1));
      return out;
    case 'max':
      out.fill(-Infinity);
      for (const t of idx) {
        const v = tokenVector(h, layer, t);
        for (let d = 0; d < h.dims; d++) if (v[d] > out[d]) out[d] = v[d];
      }
      return out;
    case 'mean':
      for (const t of idx) {
        const v = tokenVector(h, layer, t);
        for (let d = 0; d < h.dims; d++) out[d] += v[d];
      }
      for (let d = 0; d < h.dims; d++) out[d] /= idx.length;
      return out;
    default: {
      const unknown: never = pooling;
      throw new Error(`unknown pooling ${unknown}`);
    }
  }
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
  for (let l = 0; l < h.layers; l++) for (let t = 0; t < h.tokens; t++) m[l * h.tokens + t] = cosine(tokenVector(h, l, t), pooled[l]);
  return m;
}

/** layers × layers cosine similarity of the pooled vectors. */
export function layerSimilarity(pooled: Float32Array[]): Float32Array {
  const n = pooled.length;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const c = i === j ? 1 : cosine(pooled[i], pooled[j]);
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
    out[l] = cosine(a[l], b[l]);
  }
  return out;
}

/** A 2-D principal component analysis of `rows` vectors of `dims` (population covariance). */
export interface Pca2 {
  dims: number;
  mean: Float64Array;
  /** Unit principal directions, first then second. */
  components: [Float64Array, Float64Array];
  /** Variance along each component (eigenvalues of the covariance). */
  variances: [number, number];
  /** Sum of all variances (trace of the covariance), for "explains x %". */
  totalVariance: number;
  /** rows × 2 coordinates of the input vectors. */
  coords: Float64Array;
}

/** y = Xc · v for the centred rows (one pass, no covariance matrix: rows × dims stays the only big array). */
function centredTimes(x: Float32Array, rows: number, dims: number, mean: Float64Array, v: Float64Array, out: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * dims;
    for (let d = 0; d < dims; d++) s += (x[o + d] - mean[d]) * v[d];
    out[r] = s;
  }
}

/** Cov · v = Xcᵀ (Xc v) / rows. */
function covTimes(x: Float32Array, rows: number, dims: number, mean: Float64Array, v: Float64Array, tmp: Float64Array): Float64Array {
  centredTimes(x, rows, dims, mean, v, tmp);
  const out = new Float64Array(dims);
  for (let r = 0; r < rows; r++) {
    const w = tmp[r] / rows;
    if (w === 0) continue;
    const o = r * dims;
    for (let d = 0; d < dims; d++) out[d] += (x[o + d] - mean[d]) * w;
  }
  return out;
}

function dot64(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function normalize64(v: Float64Array): number {
  const n = Math.sqrt(dot64(v, v));
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return n;
}

/** Removes from v its parts along the (unit) vectors in `basis`. */
function orthogonalize(v: Float64Array, basis: Float64Array[]): void {
  for (const b of basis) {
    const p = dot64(v, b);
    for (let i = 0; i < v.length; i++) v[i] -= p * b[i];
  }
}

/**
 * Top eigenvector of the covariance orthogonal to `basis`, by power iteration.
 * Deterministic: the start vector is the centred row farthest from the mean (off `basis`), which has
 * a large part along the leading direction; a fixed pseudo-random vector if every row is on `basis`.
 */
function leadingComponent(
  x: Float32Array, rows: number, dims: number, mean: Float64Array, basis: Float64Array[], tmp: Float64Array, totalVariance: number,
): { v: Float64Array; lambda: number } {
  // Below this, what is left is rounding noise: iterating on it would return an arbitrary direction.
  const negligible = 1e-10 * totalVariance;
  let v: Float64Array = new Float64Array(dims);
  let best = -1;
  const row = new Float64Array(dims);
  for (let r = 0; r < rows; r++) {
    for (let d = 0; d < dims; d++) row[d] = x[r * dims + d] - mean[d];
    orthogonalize(row, basis);
    const n = dot64(row, row);
    if (n > best) {
      best = n;
      v.set(row);
    }
  }
  if (!(best > negligible)) {
    const random = seededRandom(basis.length + 1);
    for (let d = 0; d < dims; d++) v[d] = random() - 0.5;
    orthogonalize(v, basis);
  }
  if (normalize64(v) === 0) return { v, lambda: 0 };
  let lambda = 0;
  for (let it = 0; it < 200; it++) {
    const w = covTimes(x, rows, dims, mean, v, tmp);
    orthogonalize(w, basis);
    const n = normalize64(w);
    if (!(n > negligible)) return { v, lambda: 0 };
    const change = 1 - Math.abs(dot64(w, v));
    v = w;
    lambda = n;
    if (change < 1e-10) break;
  }
  // Rayleigh quotient: the eigenvalue, more exactly than the last norm.
  lambda = dot64(v, covTimes(x, rows, dims, mean, v, tmp));
  // A fixed sign: the largest coordinate positive, so the picture does not flip between runs.
  let arg = 0;
  for (let d = 1; d < dims; d++) if (Math.abs(v[d]) > Math.abs(v[arg])) arg = d;
  if (v[arg] < 0) for (let d = 0; d < dims; d++) v[d] = -v[d];
  return { v, lambda: Math.max(0, lambda) };
}

/** 2-D PCA of `rows` vectors (`x` is rows × dims, row-major). */
export function pca2(x: Float32Array, rows: number, dims: number): Pca2 {
  if (rows < 1 || x.length !== rows * dims) throw new Error(`pca2: ${x.length} values are not ${rows} × ${dims}`);
  const mean = new Float64Array(dims);
  for (let r = 0; r < rows; r++) for (let d = 0; d < dims; d++) mean[d] += x[r * dims + d];
  for (let d = 0; d < dims; d++) mean[d] /= rows;
  let totalVariance = 0;
  for (let r = 0; r < rows; r++) {
    for (let d = 0; d < dims; d++) {
      const c = x[r * dims + d] - mean[d];
      totalVariance += c * c;
    }
  }
  totalVariance /= rows;
  const tmp = new Float64Array(rows);
  const first = leadingComponent(x, rows, dims, mean, [], tmp, totalVariance);
  const second = leadingComponent(x, rows, dims, mean, [first.v], tmp, totalVariance);
  const coords = new Float64Array(rows * 2);
  centredTimes(x, rows, dims, mean, first.v, tmp);
  for (let r = 0; r < rows; r++) coords[r * 2] = tmp[r];
  centredTimes(x, rows, dims, mean, second.v, tmp);
  for (let r = 0; r < rows; r++) coords[r * 2 + 1] = tmp[r];
  return { dims, mean, components: [first.v, second.v], variances: [first.lambda, second.lambda], totalVariance, coords };
}

/** Coordinates of a new vector in a PCA's plane. */
export function projectPca(p: Pca2, v: Float32Array): [number, number] {
  if (v.length !== p.dims) throw new Error(`cannot project a ${v.length}-dim vector into a PCA of ${p.dims} dims`);
  let a = 0, b = 0;
  for (let d = 0; d < p.dims; d++) {
    const c = v[d] - p.mean[d];
    a += c * p.components[0][d];
    b += c * p.components[1][d];
  }
  return [a, b];
}
