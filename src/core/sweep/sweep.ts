// The layer sweep: which hidden state and which pooling retrieve best on the user's own code?
//
// Queries and targets of the mined pairs are embedded ONCE, in one extractMany call that asks for
// every layer 0..L × every pooling (plus the mean of the last four layers): each batch runs the model
// one time with all hidden states exposed, so the sweep costs one model pass per text, not one per
// layer. Then every cell is scored by exact search (recall@1, recall@10, MRR@10), beside a BM25
// baseline on the same pairs, and the best cell is compared with the usual default, last-layer mean.
import type { Extractor } from '../extract/extractor';
import { prefixesForModel, VECTOR_POOLINGS, type TextPrefixes, type VectorPooling } from '../recipe';
import { UserError, type ExtractStats, type ProgressEvent, type Recipe } from '../types';
import { metricsFromRanks, pairedStandardError, ranksByBm25, ranksByInnerProduct, type RetrievalMetrics } from './metrics';
import { PAIR_KINDS, type KindCounts, type Pair, type PairKind } from './pairs';

/** Every pooling that gives one vector per text (the recipe's VECTOR_POOLINGS). */
export const SWEEP_POOLINGS = VECTOR_POOLINGS;
export type SweepPooling = VectorPooling;

/** What the sweep needs of the engine (an Extractor; an interface so the host's worker can stand in). */
export type SweepExtractor = Pick<Extractor, 'info' | 'extractMany'>;

export type SweepProgress =
  | ({ phase: 'embed' } & ProgressEvent)
  | { phase: 'score'; cellsDone: number; cellsTotal: number };

export interface SweepOptions {
  extractor: SweepExtractor;
  pairs: Pair[];
  signal?: AbortSignal;
  onProgress?: (event: SweepProgress) => void;
  /** Query / passage prefixes (default: the model's, as search uses them). */
  prefixes?: TextPrefixes;
}

/** One row of the table: a hidden state, or the mean of the last few. */
export interface SweepRow {
  /** Layer spec as the settings and `--layer` take it: `0`…`L-1`, `last`, `mean(-4..-1)`. */
  layer: string;
  /** For display: `0 (embeddings)`, `3`, `6 (last)`, `mean(-4..-1)`. */
  label: string;
  /** Hidden-state index, or null for the mean row. */
  index: number | null;
}

export interface SweepCell {
  /** Row index into `rows`, column index into `poolings`. */
  row: number;
  col: number;
  layer: string;
  pool: SweepPooling;
  metrics: RetrievalMetrics;
  byKind: Partial<Record<PairKind, RetrievalMetrics>>;
}

export interface SweepRecommendation {
  layer: string;
  pool: SweepPooling;
  /** True when the recommendation differs from last-layer mean (then a settings change is worth it). */
  change: boolean;
  /** MRR@10 of the best cell minus that of last-layer mean. */
  margin: number;
  /** Paired standard error of that margin. */
  standardError: number;
  /** The margin is more than twice its standard error. */
  confident: boolean;
  /** BM25 beats every cell on these pairs. */
  lexicalWins: boolean;
  /** One sentence for the user. */
  text: string;
}

export interface SweepResult {
  model: string;
  modelHash: string;
  numLayers: number;
  hiddenSize: number;
  pairs: number;
  pairsByKind: KindCounts;
  poolings: readonly SweepPooling[];
  rows: SweepRow[];
  /** cells[row][col]. */
  cells: SweepCell[][];
  lexical: { metrics: RetrievalMetrics; byKind: Partial<Record<PairKind, RetrievalMetrics>> };
  best: SweepCell;
  /** Last layer, mean pooling: what most tools use without asking. */
  baseline: SweepCell;
  recommendation: SweepRecommendation;
  stats: {
    texts: number;
    /** Model runs (batches): one pass over the texts, whatever the number of cells. */
    batches: number;
    tokens: number;
    /** Embedding, all of it: tokenizing, the model, pooling every cell. */
    embedMs: number;
    /** Of which inside ONNX Runtime. */
    modelMs: number;
    scoreMs: number;
    totalMs: number;
  };
}

/** Rows of the table for a model with `numLayers` layers: every hidden state, then the mean of the last ≤4. */
export function sweepRows(numLayers: number): SweepRow[] {
  const rows: SweepRow[] = [];
  for (let l = 0; l <= numLayers; l++) {
    rows.push({
      layer: l === numLayers ? 'last' : String(l),
      label: l === 0 ? '0 (embeddings)' : l === numLayers ? `${l} (last)` : String(l),
      index: l,
    });
  }
  const k = Math.min(4, numLayers);
  if (k >= 2) rows.push({ layer: `mean(-${k}..-1)`, label: `mean(-${k}..-1)`, index: null });
  return rows;
}

/** Higher MRR@10 wins; then recall@1, then recall@10; exact ties keep the earlier cell. */
function better(a: RetrievalMetrics, b: RetrievalMetrics): boolean {
  if (a.mrrAt10 !== b.mrrAt10) return a.mrrAt10 > b.mrrAt10;
  if (a.recallAt1 !== b.recallAt1) return a.recallAt1 > b.recallAt1;
  return a.recallAt10 > b.recallAt10;
}

const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

function byKind(ranks: ArrayLike<number>, kinds: PairKind[]): Partial<Record<PairKind, RetrievalMetrics>> {
  const out: Partial<Record<PairKind, RetrievalMetrics>> = {};
  for (const kind of PAIR_KINDS) {
    const subset = kinds.flatMap((k, i) => (k === kind ? [i] : []));
    if (subset.length) out[kind] = metricsFromRanks(ranks, subset);
  }
  return out;
}

export function describeCell(c: { layer: string; pool: string }): string {
  return `layer ${c.layer} · ${c.pool}`;
}

function recommend(best: SweepCell, baseline: SweepCell, se: number, lexical: RetrievalMetrics, pairs: number): SweepRecommendation {
  const margin = best.metrics.mrrAt10 - baseline.metrics.mrrAt10;
  const isBaseline = best.row === baseline.row && best.col === baseline.col;
  const confident = !isBaseline && margin > 2 * se;
  const lexicalWins = lexical.mrrAt10 > best.metrics.mrrAt10;
  const f = (x: number) => x.toFixed(3);
  let text: string;
  if (isBaseline) {
    text = `Keep the default (last layer, mean pooling): it retrieves best here (MRR@10 ${f(best.metrics.mrrAt10)}).`;
  } else if (confident) {
    text = `Use ${describeCell(best)}: MRR@10 ${f(best.metrics.mrrAt10)}, +${f(margin)} over last-layer mean (standard error ±${f(se)}).`;
  } else {
    text = `${describeCell(best)} scores highest (MRR@10 ${f(best.metrics.mrrAt10)}, +${f(margin)} over last-layer mean), but that is within noise (standard error ±${f(se)}): keep the default.`;
  }
  if (lexicalWins) text += ` Keyword search (BM25, MRR@10 ${f(lexical.mrrAt10)}) beats every layer on these pairs: prefer hybrid or lexical search.`;
  if (pairs < 50) text += ` Only ${pairs} pairs: the numbers are rough.`;
  const pick = confident ? best : baseline;
  return { layer: pick.layer, pool: pick.pool, change: confident, margin, standardError: se, confident, lexicalWins, text };
}

/** Scores every layer × pooling on the pairs; see the file comment. */
export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { extractor, pairs, signal, onProgress } = options;
  if (pairs.length < 2) {
    throw new UserError(`A sweep needs at least 2 pairs to rank targets against each other (got ${pairs.length}).`);
  }
  const started = performance.now();
  const { numLayers, hiddenSize } = extractor.info;
  const rows = sweepRows(numLayers);
  const recipes: Recipe[] = rows.flatMap((r) => SWEEP_POOLINGS.map((pool) => ({ layer: r.layer, pool, normalize: true })));
  const prefixes = options.prefixes ?? prefixesForModel(extractor.info.model);
  const n = pairs.length;
  // Queries and targets in one list, prefixes applied here, so there is one call and one pass.
  const texts = [...pairs.map((p) => prefixes.query + p.query), ...pairs.map((p) => prefixes.passage + p.target)];
  const results = await extractor.extractMany(texts, recipes, {
    signal,
    onProgress: onProgress ? (e) => onProgress({ phase: 'embed', ...e }) : undefined,
  });
  const extractStats: ExtractStats = results[0]!.stats;
  const embedMs = performance.now() - started;

  const kinds = pairs.map((p) => p.kind);
  const scoreStart = performance.now();
  const cells: SweepCell[][] = rows.map(() => []);
  const allRanks: Int32Array[][] = rows.map(() => []);
  const cellsTotal = recipes.length;
  for (const [r, row] of rows.entries()) {
    for (const [c, pool] of SWEEP_POOLINGS.entries()) {
      signal?.throwIfAborted();
      const res = results[r * SWEEP_POOLINGS.length + c]!;
      const dims = res.dims;
      const ranks = ranksByInnerProduct(res.data.subarray(0, n * dims), res.data.subarray(n * dims, 2 * n * dims), dims);
      allRanks[r]![c] = ranks;
      cells[r]![c] = { row: r, col: c, layer: row.layer, pool, metrics: metricsFromRanks(ranks), byKind: byKind(ranks, kinds) };
      onProgress?.({ phase: 'score', cellsDone: r * SWEEP_POOLINGS.length + c + 1, cellsTotal });
      await yieldToEvents(); // lets a cancel (Ctrl+C, the host's token) reach the signal between cells
    }
  }
  const lexicalRanks = ranksByBm25(pairs.map((p) => p.query), pairs.map((p) => p.target));
  const lexical = { metrics: metricsFromRanks(lexicalRanks), byKind: byKind(lexicalRanks, kinds) };

  const lastRow = rows.findIndex((r) => r.index === numLayers);
  const baseline = cells[lastRow]![SWEEP_POOLINGS.indexOf('mean')]!;
  let best = baseline;
  for (const row of cells) for (const cell of row) if (better(cell.metrics, best.metrics)) best = cell;
  const se = pairedStandardError(allRanks[best.row]![best.col]!, allRanks[baseline.row]![baseline.col]!);

  const pairsByKind: KindCounts = { doc: 0, name: 0, heading: 0, test: 0 };
  for (const k of kinds) pairsByKind[k]++;
  const scoreMs = performance.now() - scoreStart;
  return {
    model: extractor.info.model,
    modelHash: extractor.info.modelHash,
    numLayers,
    hiddenSize,
    pairs: n,
    pairsByKind,
    poolings: SWEEP_POOLINGS,
    rows,
    cells,
    lexical,
    best,
    baseline,
    recommendation: recommend(best, baseline, se, lexical.metrics, n),
    stats: {
      texts: texts.length,
      batches: extractStats.batches,
      tokens: extractStats.realTokens,
      embedMs,
      modelMs: extractStats.modelMs,
      scoreMs,
      totalMs: performance.now() - started,
    },
  };
}
