// Synthetic vectors for the store benchmarks (bench/store.ts, bench/segments.ts, bench/scale.ts): points
// around Gaussian centres, the shape of real embeddings' clusters, deterministic from a seed. Each
// benchmark keeps its own seeding (its published numbers came from it); what they share is here once.
import { seededRandom } from '../src/core/random';

/** Standard normal draws from uniform ones (Box–Muller, cosine branch). */
export function gaussian(r: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Standard deviation of a point around its centre, per dimension: clusters overlap in rank but not in mass. */
export const SPREAD = 0.35;

/** `count` centres of `dims` standard normal coordinates, from `seed`. */
export function gaussianCentres(count: number, dims: number, seed: number): Float32Array {
  const g = gaussian(seededRandom(seed));
  return Float32Array.from({ length: count * dims }, () => g());
}

/**
 * Writes into `out` at `offset` one point near a centre: the centre drawn from `r`, then one Gaussian
 * draw of `g` per dimension (`g` is gaussian(r): the order of draws is part of the data set).
 */
export function pointNearCentre(centres: Float32Array, dims: number, r: () => number, g: () => number, out: Float32Array, offset: number): void {
  const c = Math.floor(r() * (centres.length / dims));
  for (let j = 0; j < dims; j++) out[offset + j] = centres[c * dims + j]! + SPREAD * g();
}

/** `n` points near `centres`, drawn one after another from `seed`. */
export function clusteredPoints(n: number, dims: number, centres: Float32Array, seed: number): Float32Array {
  const r = seededRandom(seed);
  const g = gaussian(r);
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) pointNearCentre(centres, dims, r, g, out, i * dims);
  return out;
}

/** The value at percentile `p` of ascending `sorted` (nearest rank, clamped to the last). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
