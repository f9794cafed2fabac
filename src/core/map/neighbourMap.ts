// A 2-D map of index vectors that keeps neighbours (UMAP, via umap-js), and how well a map keeps them.
//
// Two numbers, both for the k nearest neighbours (cosine in the full space, Euclidean on the map):
//   * kept    — the share of each point's k nearest in the full space that are also among its k
//               nearest on the map, averaged over points (k-NN preservation; 1 = every neighbour kept);
//   * trust   — trustworthiness T(k) of Venna & Kaski (2001): penalises points that look near on the map
//               but are far in the full space, by how far down their full-space rank they are
//               (1 = none; a random map scores about 0.5).
import { UMAP } from 'umap-js';
import { seededRandom } from '../random';
import { pca2 } from './pca';

export interface MapQuality {
  k: number;
  kept: number;
  trust: number;
}

function cosineDistances(x: Float32Array, n: number, dims: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dims; d++) s += x[i * dims + d] ** 2;
    norms[i] = Math.sqrt(s) || 1;
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let d = 0; d < dims; d++) s += x[i * dims + d] * x[j * dims + d];
      const dist = 1 - s / (norms[i] * norms[j]);
      out[i * n + j] = dist;
      out[j * n + i] = dist;
    }
  }
  return out;
}

function mapDistances(coords: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = Math.hypot(coords[2 * i] - coords[2 * j], coords[2 * i + 1] - coords[2 * j + 1]);
      out[i * n + j] = d;
      out[j * n + i] = d;
    }
  }
  return out;
}

/** Every other point of row i, nearest first (ties by index, so the order is deterministic). */
function ranking(dist: Float64Array, n: number, i: number): number[] {
  const others = Array.from({ length: n - 1 }, (_, j) => (j < i ? j : j + 1));
  const row = dist.subarray(i * n, (i + 1) * n);
  return others.sort((a, b) => row[a] - row[b] || a - b);
}

/** How well a map (n × 2 coordinates) keeps the k nearest neighbours of the n × dims vectors. */
export function mapQuality(vectors: Float32Array, dims: number, coords: ArrayLike<number>, k = 10): MapQuality {
  const n = vectors.length / dims;
  if (!Number.isInteger(n) || coords.length !== 2 * n) throw new Error(`mapQuality: ${vectors.length} values and ${coords.length} coordinates do not match`);
  if (n < k + 2) throw new Error(`mapQuality: ${n} points are too few for k = ${k}`);
  const high = cosineDistances(vectors, n, dims);
  const low = mapDistances(coords, n);
  let kept = 0;
  let penalty = 0;
  for (let i = 0; i < n; i++) {
    const highOrder = ranking(high, n, i);
    const rank = new Int32Array(n);
    highOrder.forEach((j, r) => (rank[j] = r + 1));
    const highK = new Set(highOrder.slice(0, k));
    const lowK = ranking(low, n, i).slice(0, k);
    for (const j of lowK) {
      if (highK.has(j)) kept++;
      else penalty += rank[j] - k;
    }
  }
  return {
    k,
    kept: kept / (n * k),
    trust: 1 - (2 / (n * k * (2 * n - 3 * k - 1))) * penalty,
  };
}

export interface UmapOptions {
  /** Neighbours UMAP builds its graph from (default 15, as umap-learn). */
  neighbours?: number;
  minDist?: number;
  seed?: number;
  /** Optimisation epochs (default: umap-js's choice, 500 below 10,000 points). */
  epochs?: number;
}

/**
 * UMAP to 2-D with cosine distance, seeded (the same vectors give the same map). Returns n × 2.
 * The k-NN graph is computed exactly here (n² cosines, well under a second for a few thousand points)
 * and handed to umap-js, whose approximate NN-descent over plain number arrays is far slower.
 */
export function umap2(vectors: Float32Array, dims: number, options: UmapOptions = {}): Float64Array {
  const n = vectors.length / dims;
  const nNeighbors = Math.max(2, Math.min(options.neighbours ?? 15, n - 1));
  const dist = cosineDistances(vectors, n, dims);
  const indices: number[][] = [];
  const distances: number[][] = [];
  for (let i = 0; i < n; i++) {
    // UMAP's graph includes the point itself as its own nearest neighbour (distance 0).
    const near = [i, ...ranking(dist, n, i).slice(0, nNeighbors - 1)];
    indices.push(near);
    distances.push(near.map((j) => (j === i ? 0 : Math.max(0, dist[i * n + j]))));
  }
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors,
    minDist: options.minDist ?? 0.1,
    nEpochs: options.epochs,
    random: seededRandom(options.seed ?? 42),
  });
  umap.setPrecomputedKNN(indices, distances);
  const rows = Array.from({ length: n }, (_, i) => Array.from(vectors.subarray(i * dims, (i + 1) * dims)));
  const embedding = umap.fit(rows);
  const out = new Float64Array(n * 2);
  embedding.forEach((p, i) => {
    out[2 * i] = p[0];
    out[2 * i + 1] = p[1];
  });
  return out;
}

/** A UMAP of the vectors and how well it and the 2-D PCA keep each point's k nearest neighbours. */
export interface NeighbourMap {
  /** n × 2 UMAP coordinates. */
  umap: Float32Array;
  quality: { pca: MapQuality; umap: MapQuality };
  umapMs: number;
}

export function projectMap(vectors: Float32Array, dims: number, k = 10, options: UmapOptions = {}): NeighbourMap {
  const n = vectors.length / dims;
  const started = performance.now();
  const umap = umap2(vectors, dims, options);
  const umapMs = performance.now() - started;
  const pca = pca2(vectors, n, dims);
  return { umap: Float32Array.from(umap), quality: { pca: mapQuality(vectors, dims, pca.coords, k), umap: mapQuality(vectors, dims, umap, k) }, umapMs };
}

/** Distinct colours of the map (the theme's six chart colours); every further group is "other". */
export const MAP_COLOURS = 6;

/** Group of each point and the legend: the largest groups first, ties by name; the rest are "other". */
export function groupPoints(names: string[]): { index: number[]; legend: { name: string; count: number; colour: number }[] } {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const colourOf = new Map<string, number>();
  const distinct = ranked.length <= MAP_COLOURS + 1 ? ranked.length : MAP_COLOURS;
  ranked.forEach(([name], i) => colourOf.set(name, i < distinct ? i : MAP_COLOURS));
  const legend = ranked.slice(0, distinct).map(([name, c], i) => ({ name, count: c, colour: i }));
  const rest = ranked.slice(distinct);
  if (rest.length) legend.push({ name: `other (${rest.length} groups)`, count: rest.reduce((a, [, c]) => a + c, 0), colour: MAP_COLOURS });
  return { index: names.map((n) => colourOf.get(n)!), legend };
}

