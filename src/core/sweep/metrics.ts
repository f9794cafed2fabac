// Retrieval metrics of query → target pairs: query i's right answer is target i, every other target is
// a distractor. Exact search (every target scored), so the numbers measure the embedding, not an index.
import { LexicalIndex } from '../search/lexical';

export interface RetrievalMetrics {
  /** Share of queries whose target ranks first. */
  recallAt1: number;
  /** Share of queries whose target is in the top 10. */
  recallAt10: number;
  /** Mean of 1/rank over queries, counting 0 when the target is below rank 10. */
  mrrAt10: number;
  /** Queries measured. */
  count: number;
}

/** The cutoff of recall@10 and MRR@10. */
export const TOP_K = 10;

/**
 * 1-based rank of target i for query i, by inner product (cosine on L2-normalized rows). Ties count
 * against the pair: a target scoring the same as the right one ranks above it when its row is lower,
 * as exactSearch breaks ties, so a model that gives every text the same vector scores near 0, not 1.
 * `queries` and `targets` are n × dims, row-major.
 */
export function ranksByInnerProduct(queries: Float32Array, targets: Float32Array, dims: number): Int32Array {
  const n = Math.floor(queries.length / dims);
  if (targets.length !== n * dims) throw new Error(`ranksByInnerProduct: ${n} queries but ${targets.length / dims} targets`);
  const ranks = new Int32Array(n);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const q = i * dims;
    for (let j = 0; j < n; j++) {
      const t = j * dims;
      let s = 0;
      for (let d = 0; d < dims; d++) s += queries[q + d]! * targets[t + d]!;
      scores[j] = s;
    }
    const own = scores[i]!;
    let rank = 1;
    for (let j = 0; j < n; j++) {
      if (scores[j]! > own || (j < i && scores[j] === own)) rank++;
    }
    ranks[i] = rank;
  }
  return ranks;
}

/**
 * Ranks by BM25 (the lexical index search uses): 0 when the target shares no term with the query or
 * falls outside the top `depth`.
 */
export function ranksByBm25(queries: string[], targets: string[], depth = TOP_K): Int32Array {
  const index = LexicalIndex.empty();
  // Paths stay out: the vectors never see them either, so both sides rank on the same text.
  targets.forEach((t, j) => index.add(String(j), '', t));
  return Int32Array.from(queries, (q, i) => {
    const at = index.search(q, depth).findIndex((h) => h.id === String(i));
    return at < 0 ? 0 : at + 1;
  });
}

/** Reciprocal rank with the @10 cutoff (0 for rank 0 = not found, or below 10). */
export function reciprocalRankAt10(rank: number): number {
  return rank >= 1 && rank <= TOP_K ? 1 / rank : 0;
}

/** Metrics of ranks (0 = not found), over all queries or the listed ones. */
export function metricsFromRanks(ranks: ArrayLike<number>, subset?: readonly number[]): RetrievalMetrics {
  const idx = subset ?? Array.from({ length: ranks.length }, (_, i) => i);
  let r1 = 0;
  let r10 = 0;
  let rr = 0;
  for (const i of idx) {
    const r = ranks[i]!;
    if (r === 1) r1++;
    if (r >= 1 && r <= TOP_K) r10++;
    rr += reciprocalRankAt10(r);
  }
  const n = idx.length;
  return n ? { recallAt1: r1 / n, recallAt10: r10 / n, mrrAt10: rr / n, count: n } : { recallAt1: 0, recallAt10: 0, mrrAt10: 0, count: 0 };
}

/**
 * Standard error of the mean difference in reciprocal rank@10 between two rankings of the same queries
 * (paired): how much of a margin in MRR@10 could be the sample rather than the recipe.
 */
export function pairedStandardError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n < 2) return Infinity;
  let sum = 0;
  const diffs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    diffs[i] = reciprocalRankAt10(a[i]!) - reciprocalRankAt10(b[i]!);
    sum += diffs[i]!;
  }
  const mean = sum / n;
  let sq = 0;
  for (const d of diffs) sq += (d - mean) ** 2;
  return Math.sqrt(sq / (n - 1) / n);
}
