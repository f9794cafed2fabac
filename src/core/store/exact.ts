// Exact (brute-force) k-nearest-neighbour search: the reference for recall measurements and for the
// interop tests, and the search used on FAISS Flat files we write.

export type ExactMetric = 'ip' | 'l2' | 'cosine';

export interface ExactHits {
  /** Row indices, best first. */
  rows: Int32Array;
  /** Similarity (ip, cosine) or squared L2 distance (l2), matching `rows`. */
  values: Float32Array;
}

function norm(v: Float32Array, off: number, dims: number): number {
  let s = 0;
  for (let j = 0; j < dims; j++) s += v[off + j] * v[off + j];
  return Math.sqrt(s);
}

/**
 * Best `k` rows of `data` (n × dims, row-major) for `query`. Ties are broken by the lower row index,
 * so results are deterministic. Cosine treats a zero-norm row as similarity 0.
 */
export function exactSearch(data: Float32Array, dims: number, query: Float32Array, k: number, metric: ExactMetric): ExactHits {
  const n = Math.floor(data.length / dims);
  const kk = Math.min(k, n);
  const qn = metric === 'cosine' ? norm(query, 0, dims) || 1 : 1;
  const higherIsBetter = metric !== 'l2';
  // A small sorted insertion buffer: k is small (10..100) next to n.
  const rows = new Int32Array(kk).fill(-1);
  const vals = new Float64Array(kk).fill(higherIsBetter ? -Infinity : Infinity);
  for (let i = 0; i < n; i++) {
    const off = i * dims;
    let v = 0;
    if (metric === 'l2') {
      for (let j = 0; j < dims; j++) {
        const d = data[off + j] - query[j];
        v += d * d;
      }
    } else {
      for (let j = 0; j < dims; j++) v += data[off + j] * query[j];
      if (metric === 'cosine') {
        const rn = norm(data, off, dims);
        v = rn === 0 ? 0 : v / (rn * qn);
      }
    }
    const worse = higherIsBetter ? v <= vals[kk - 1] : v >= vals[kk - 1];
    if (kk === 0 || (worse && rows[kk - 1] !== -1)) continue;
    let p = kk - 1;
    while (p > 0 && (higherIsBetter ? v > vals[p - 1] : v < vals[p - 1])) {
      vals[p] = vals[p - 1];
      rows[p] = rows[p - 1];
      p--;
    }
    vals[p] = v;
    rows[p] = i;
  }
  return { rows, values: Float32Array.from(vals) };
}
