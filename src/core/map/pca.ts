// 2-D PCA of index vectors for the inspector's map (power iteration with deflation; no covariance matrix
// is formed, so rows × dims stays the only large array). Written by hand: ml-pca builds the dims × dims
// covariance and a full SVD, which is slower for two components and pulls in ml-matrix.
import { seededRandom } from '../random';

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
