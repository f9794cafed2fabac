// Search over a workspace index: vector (the query embedded with the index's recipe), lexical (BM25)
// or hybrid (both lists fused, see DEFAULT_FUSION). Results are grouped so one file does not flood the list,
// and carry the file's current lines as a preview.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { hashText } from '../index/files';
import { isHeaderId, unitOfId } from '../index/chunk';
import { openIndexParts } from '../index/indexer';
import type { Catalog } from '../index/catalog';
import type { ChunkRecord, VectorStore } from '../store/vectorStore';
import { recipeDifferences, type RecipeIdentity } from '../recipe';
import { UserError, type TextEmbedder } from '../types';
import type { LexicalIndex } from './lexical';
import { kindOfPath, scoreFactorOfPath, type ChunkKind } from './kinds';
import { prefixesForModel, type TextPrefixes } from './prefixes';

export type SearchMode = 'vector' | 'lexical' | 'hybrid';
export const SEARCH_MODES: readonly SearchMode[] = ['vector', 'lexical', 'hybrid'];

export interface SearchOptions {
  /** Results wanted. Default 10. */
  k?: number;
  /** Default `hybrid`. */
  mode?: SearchMode;
  /** At most this many results from one file. Default DEFAULT_PER_FILE (4). */
  perFile?: number;
  /** Lines of preview per result. Default 6. */
  previewLines?: number;
  /** HNSW search breadth (default: the store's). */
  ef?: number;
  /** How hybrid merges its two lists (default DEFAULT_FUSION). */
  fusion?: Fusion;
  /** Only chunks of these kinds (by path: code, docs, tests). Default: all. */
  kinds?: readonly ChunkKind[];
  signal?: AbortSignal;
}

export interface SearchHit {
  /** Relative to the indexed folder, `/`-separated. */
  path: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
  /** vector: cosine similarity; lexical: BM25; hybrid: the fusion score (0…1 for `score` and `mix`; only the order means something). */
  score: number;
  preview: string;
  /** Cosine similarity when the chunk came up in the vector list. */
  vectorScore?: number;
  /** BM25 score when the chunk came up in the lexical list. */
  lexicalScore?: number;
  /** True when the file changed since it was indexed (the preview shows the current lines). */
  stale?: boolean;
  /**
   * When the result is a whole function or method: the lines of its chunk that matched, and their first
   * lines (as many as the preview's) for showing why it matched.
   */
  match?: { startLine: number; endLine: number; preview: string };
}

export type SimilarTarget = { text: string } | { path: string; startLine: number; endLine: number };

export interface IndexStatus {
  complete: boolean;
  files: number;
  skipped: number;
  chunks: number;
  updatedAt: string;
  storeDir: string;
}

/**
 * How hybrid search merges the vector and the keyword list.
 *  - `rrf`: reciprocal rank fusion (Cormack et al. 2009), Σ w / (k + rank), lexical list weighted by `lexicalWeight`.
 *  - `score`: each list's scores min–max scaled to [0, 1] over its candidates, then (1 − w)·vector + w·lexical.
 *  - `mix`: (1 − r)·`score` + r·(the mean over the two lists of (k + 1) / (k + rank), 0 where absent): the
 *    score blend rewards a clear winner of one list, the rank term a chunk both lists rank high.
 */
export type Fusion =
  | { method: 'rrf'; k: number; lexicalWeight: number }
  | { method: 'score'; lexicalWeight: number }
  | { method: 'mix'; lexicalWeight: number; rankWeight: number; k: number };

/**
 * Chosen on the quality benchmark (BENCHMARKS.md, "Search quality"). Round 1: a min–max blend with
 * keyword weight 0.3 beat reciprocal rank fusion (k 60) on all three code bases. Round 3: half that blend,
 * half the rank term of RRF k 60 (`mix`) is better again on all three (hand-written questions 0.582 /
 * 0.635 / 0.757 → 0.586 / 0.636 / 0.777), and is the only fusion tried that is at least the better of
 * vector and keyword search alone on every code base and kind of question: the blend alone lost
 * test-name questions to keyword search (Go) and to vector search (Python), RRF alone lost hand-written
 * ones on the repository.
 */
export const DEFAULT_FUSION: Fusion = { method: 'mix', lexicalWeight: 0.3, rankWeight: 0.5, k: 60 };

/**
 * Default results per file: 4 (was 2). With chunks at declaration boundaries a file has more, smaller
 * chunks, and a cap of 2 hid the right one behind two others of the same file (recall@10 on the
 * hand-written questions 0.67 → 0.80 at 4; BENCHMARKS.md).
 */
export const DEFAULT_PER_FILE = 4;

const FUSION_HINT = 'Write rrf:<k>:<lexical weight> (e.g. rrf:60:1), score:<lexical weight> (e.g. score:0.3) or mix:<lexical weight>:<rank weight>:<k> (e.g. mix:0.3:0.5:60).';

/** `rrf:60:0.5` / `score:0.3` / `mix:0.3:0.5:60` → a Fusion (bench and CLI spelling). */
export function parseFusion(spec: string): Fusion {
  const [method, a, b, c] = spec.split(':');
  const num = (v: string | undefined, what: string, max = Infinity) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0 || n > max) throw new UserError(`Fusion "${spec}": ${what} must be a number from 0${max < Infinity ? ` to ${max}` : ''}.`, FUSION_HINT);
    return n;
  };
  if (method === 'rrf') return { method, k: num(a, 'k'), lexicalWeight: b === undefined ? 1 : num(b, 'the lexical weight') };
  if (method === 'score') return { method, lexicalWeight: num(a, 'the lexical weight', 1) };
  if (method === 'mix') return { method, lexicalWeight: num(a, 'the lexical weight', 1), rankWeight: num(b, 'the rank weight', 1), k: num(c, 'k') };
  throw new UserError(`Unknown fusion "${spec}".`, FUSION_HINT);
}

export interface Candidate {
  rec: ChunkRecord;
  /** The chunk's own lines when `rec` was widened to the declaration it is a piece of (asDeclarations). */
  match?: { startLine: number; endLine: number };
  score: number;
  vectorScore?: number;
  lexicalScore?: number;
}

export class WorkspaceSearch {
  private readonly prefixes: TextPrefixes;

  private constructor(
    readonly root: string,
    /** Absent for a keyword-only search (no model loaded). */
    private readonly embedder: TextEmbedder | undefined,
    readonly identity: RecipeIdentity,
    private readonly store: VectorStore,
    private readonly catalog: Catalog,
    private readonly lexical: LexicalIndex,
    readonly storeDir: string,
    prefixes?: TextPrefixes,
  ) {
    this.prefixes = prefixes ?? embedder?.prefixes ?? prefixesForModel(identity.model);
  }

  /**
   * Opens the index of `root` for the embedder's recipe (it must exist: run the indexer first). Without
   * an embedder, `identity` names the index and only keyword search works (no model is loaded).
   */
  static async open(options: { root: string; storageDir: string; embedder?: TextEmbedder; identity?: RecipeIdentity; prefixes?: TextPrefixes }): Promise<WorkspaceSearch> {
    const root = path.resolve(options.root);
    const identity = options.embedder?.identity ?? options.identity;
    if (!identity) throw new Error('WorkspaceSearch.open needs an embedder or an identity');
    const parts = await openIndexParts(path.resolve(options.storageDir), identity, false, undefined, root);
    return new WorkspaceSearch(root, options.embedder, identity, parts.store, parts.catalog, parts.lexical, parts.storeDir, options.prefixes);
  }

  /**
   * A search over parts already open elsewhere (the engine's indexer of the same store, see
   * Workspace.openSearch): nothing is read from disk. The caller keeps them unchanged while searches run
   * (a refresh in progress does not share them).
   */
  static over(options: { root: string; embedder?: TextEmbedder; identity: RecipeIdentity; store: VectorStore; catalog: Catalog; lexical: LexicalIndex; storeDir: string }): WorkspaceSearch {
    if (options.embedder && recipeDifferences(options.embedder.identity, options.identity).length) throw new Error('WorkspaceSearch.over: the embedder has another recipe than the open index');
    const search = new WorkspaceSearch(path.resolve(options.root), options.embedder, options.identity, options.store, options.catalog, options.lexical, options.storeDir);
    search.shared = true;
    return search;
  }

  /** True when this search runs over parts open elsewhere (WorkspaceSearch.over), false when it opened the index itself. */
  shared = false;

  /**
   * This open index searched with a model as well: the store, catalog and keyword index are shared, not
   * opened again (a CLI search checks the index without the model, then loads the model).
   */
  withEmbedder(embedder: TextEmbedder): WorkspaceSearch {
    if (recipeDifferences(embedder.identity, this.identity).length) throw new Error('withEmbedder: the embedder has another recipe than the open index');
    const search = new WorkspaceSearch(this.root, embedder, this.identity, this.store, this.catalog, this.lexical, this.storeDir);
    search.shared = this.shared;
    return search;
  }

  status(): IndexStatus {
    const c = this.catalog.counts();
    return { complete: this.catalog.complete, files: c.files, skipped: c.skipped, chunks: c.chunks, updatedAt: this.catalog.updatedAt, storeDir: this.storeDir };
  }

  async search(query: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    const q = resolveSearchOptions(query, options);
    let ranked: Candidate[];
    if (q.mode === 'lexical') {
      ranked = this.lexicalCandidates(query, q.depth);
    } else {
      const vector = await this.embedQuery(query, this.prefixes.query, options.signal);
      const vec = this.vectorCandidates(vector, q.depth, options.ef);
      ranked = q.mode === 'vector' ? vec : fuse(vec, this.lexicalCandidates(query, q.depth), q.fusion);
    }
    return pickHits(this.root, ranked, q);
  }

  /** Chunks similar to a text or to a range of an indexed file (the range itself is left out). */
  async similar(target: SimilarTarget, options: Omit<SearchOptions, 'mode'> = {}): Promise<SearchHit[]> {
    const { text, self } = await similarText(this.root, target);
    // A few more candidates than a search: the selection itself comes back and is dropped.
    const q = resolveSearchOptions(text, { ...options, mode: 'vector' }, SIMILAR_EXTRA_DEPTH);
    // Passage-to-passage similarity: the text is embedded the way indexed chunks were.
    const vector = await this.embedQuery(text, this.prefixes.passage, options.signal);
    return pickHits(this.root, withoutSelf(this.vectorCandidates(vector, q.depth, options.ef), self), q);
  }

  private async embedQuery(text: string, prefix: string, signal?: AbortSignal): Promise<Float32Array> {
    if (!this.embedder) throw new Error('This search was opened without a model: only keyword (lexical) search is possible.');
    const v = await this.embedder.embed([text], { signal, prefix: prefix || undefined });
    return v.subarray(0, this.store.dims);
  }

  private vectorCandidates(vector: Float32Array, depth: number, ef?: number): Candidate[] {
    return this.store.query(vector, depth, { ef }).map((h) => ({ rec: h, score: h.score, vectorScore: h.score }));
  }

  private lexicalCandidates(query: string, depth: number): Candidate[] {
    const out: Candidate[] = [];
    for (const hit of this.lexical.search(query, depth)) {
      const rec = this.store.get(hit.id);
      if (rec) out.push({ rec, score: hit.score, lexicalScore: hit.score });
    }
    return out;
  }
}

/** A search's options checked, with their defaults filled in: the one reading of SearchOptions for every backend. */
export interface ResolvedSearchOptions {
  readonly mode: SearchMode;
  readonly k: number;
  readonly perFile: number;
  readonly previewLines: number;
  readonly fusion: Fusion;
  readonly kinds: readonly ChunkKind[] | undefined;
  /** How many candidates to fetch from each list: grouping per file, fusion and a kind filter all drop some. */
  readonly depth: number;
}

/**
 * Checks a query and its options (local and PostgreSQL search both call this, so they cannot drift apart).
 * `extraDepth` adds candidates before the kind multiplier (similar() drops the selection itself).
 */
export function resolveSearchOptions(query: string, options: SearchOptions = {}, extraDepth = 0): ResolvedSearchOptions {
  if (!query.trim()) throw new UserError('The search query is empty.', 'Give some words or code to search for.');
  const mode = options.mode ?? 'hybrid';
  if (!SEARCH_MODES.includes(mode)) throw new UserError(`Unknown search mode "${mode}" (vector, lexical or hybrid).`);
  const k = Math.max(1, Math.floor(options.k ?? 10));
  const perFile = Math.max(1, options.perFile ?? DEFAULT_PER_FILE);
  // A kind filter keeps only part of the candidates: fetch 4× deeper so k of the wanted kinds remain.
  const depth = (Math.max(50, k * perFile * 4) + extraDepth) * (options.kinds ? 4 : 1);
  return { mode, k, perFile, previewLines: options.previewLines ?? 6, fusion: options.fusion ?? DEFAULT_FUSION, kinds: options.kinds, depth };
}

/** The shared end of every search: the kind filter, at most `perFile` per file, k hits with previews. */
export function pickHits(root: string, ranked: Candidate[], q: ResolvedSearchOptions): Promise<SearchHit[]> {
  return hitsWithPreview(root, groupPerFile(asDeclarations(headersStandForFiles(rankByKind(ofKinds(ranked, q.kinds)))), q.k, q.perFile), q.previewLines);
}

/**
 * A file's header chunk (its leading comment, imports, package line or module docstring: isHeaderId)
 * says what the whole file is about, so a question about one of its functions often matches the header
 * best. A header hit therefore stands for its file: the file's best-ranked other candidate takes the
 * header's score when that is higher, and the header itself stays, at HEADER_SCORE_FACTOR of its score
 * (a search for an import still finds it). A header with no other candidate of its file keeps its score.
 * Hand-written questions, hybrid MRR@10 0.526 / 0.606 / 0.738 → 0.582 / 0.635 / 0.757; with a first chunk
 * that opens with the file's description counted as a header too, 0.587 / 0.643 / 0.777 → 0.651 / 0.643 /
 * 0.782 (BENCHMARKS.md).
 */
export function headersStandForFiles<T extends { rec: { id: string; path: string }; score: number }>(ranked: T[]): T[] {
  if (!ranked.some((c) => isHeaderId(c.rec.id))) return ranked;
  const best = new Map<string, T>();
  for (const c of ranked) if (!isHeaderId(c.rec.id) && !best.has(c.rec.path)) best.set(c.rec.path, c);
  const lifted = new Map<T, number>();
  const out: T[] = [];
  for (const c of ranked) {
    if (!isHeaderId(c.rec.id)) { out.push(c); continue; }
    const stand = best.get(c.rec.path);
    if (!stand) { out.push(c); continue; }
    lifted.set(stand, Math.max(lifted.get(stand) ?? -Infinity, c.score));
    out.push({ ...c, score: c.score >= 0 ? c.score * HEADER_SCORE_FACTOR : c.score / HEADER_SCORE_FACTOR });
  }
  return out
    .map((c) => { const s = lifted.get(c); return s !== undefined && s > c.score ? { ...c, score: s } : c; })
    .sort((x, y) => y.score - x.score);
}

/** What a header chunk's own score counts once it has lifted its file's best other candidate (headersStandForFiles). */
export const HEADER_SCORE_FACTOR = 0.5;

/**
 * A chunk that is a piece of one function or method (a long one cut under the token budget, or its doc
 * comment alone: unitOfId) stands for the whole declaration, so the result is the function and its
 * other pieces, ranked lower, are dropped by the overlap rule of groupPerFile (several vectors, one
 * result). The piece is kept as `match`. Hand-written questions, hybrid MRR@10: BENCHMARKS.md.
 */
export function asDeclarations(ranked: Candidate[]): Candidate[] {
  return ranked.map((c) => {
    const unit = unitOfId(c.rec.id);
    return unit ? { ...c, rec: { ...c.rec, startLine: unit.startLine, endLine: unit.endLine }, match: { startLine: c.rec.startLine, endLine: c.rec.endLine } } : c;
  });
}

/**
 * Data, configuration and test chunks scored × their factor (scoreFactorOfPath; ÷ when negative), then
 * re-sorted (stable: the rest keep their order).
 */
export function rankByKind<T extends { rec: { path: string }; score: number }>(ranked: T[], factorOf: (path: string) => number = scoreFactorOfPath): T[] {
  if (!ranked.some((c) => factorOf(c.rec.path) !== 1)) return ranked;
  return ranked
    .map((c) => {
      const f = factorOf(c.rec.path);
      return f === 1 ? c : { ...c, score: c.score >= 0 ? c.score * f : c.score / f };
    })
    .sort((a, b) => b.score - a.score);
}

/** Search hits with the files' current lines as previews (`stale` when the chunk's content changed since indexing). */
export async function hitsWithPreview(root: string, picked: Candidate[], previewLines: number): Promise<SearchHit[]> {
  const files = new Map<string, Promise<string[] | null>>();
  return Promise.all(picked.map(async (c) => {
    let lines = files.get(c.rec.path);
    if (!lines) files.set(c.rec.path, (lines = readLinesUnder(root, c.rec.path)));
    const all = await lines;
    const range = all ? all.slice(c.rec.startLine - 1, c.rec.endLine) : [];
    // contentHash is of the chunk's own lines (the piece, when the hit was widened to its declaration).
    const own = c.match && all ? all.slice(c.match.startLine - 1, c.match.endLine) : range;
    const stale = !all || hashText(own.join('\n')) !== c.rec.contentHash;
    const hit: SearchHit = {
      path: c.rec.path, startLine: c.rec.startLine, endLine: c.rec.endLine, score: c.score,
      preview: range.slice(0, previewLines).join('\n'),
    };
    if (c.match) hit.match = { ...c.match, preview: own.slice(0, previewLines).join('\n') };
    if (c.vectorScore !== undefined) hit.vectorScore = c.vectorScore;
    if (c.lexicalScore !== undefined) hit.lexicalScore = c.lexicalScore;
    if (stale) hit.stale = true;
    return hit;
  }));
}

/** Lines of a file under `root` (null when unreadable or outside it). */
/** Extra candidates a similar-search fetches: the range compared with comes back and is dropped. */
export const SIMILAR_EXTRA_DEPTH = 8;

/**
 * What "similar to" compares with: the text itself, or lines a-b of an indexed file (read from disk),
 * together with that range, whose own chunks are left out of the results (withoutSelf).
 */
export async function similarText(root: string, target: SimilarTarget): Promise<{ text: string; self: { path: string; startLine: number; endLine: number } | null }> {
  let text: string;
  let self: { path: string; startLine: number; endLine: number } | null = null;
  if ('text' in target) {
    text = target.text;
  } else {
    const lines = await readLinesUnder(root, target.path);
    if (!lines) throw new UserError(`Cannot read ${target.path} under ${root}.`);
    if (target.endLine < target.startLine) {
      throw new UserError(`The line range ${target.startLine}-${target.endLine} ends before it starts.`, `Give the first line, then the last (e.g. ${target.endLine}-${target.startLine}).`);
    }
    if (target.startLine < 1 || target.startLine > lines.length) {
      throw new UserError(`Lines ${target.startLine}-${target.endLine} are outside ${target.path} (${lines.length} lines).`);
    }
    text = lines.slice(target.startLine - 1, target.endLine).join('\n');
    self = { path: target.path, startLine: target.startLine, endLine: target.endLine };
  }
  if (!text.trim()) throw new UserError('The text to compare with is empty.');
  return { text, self };
}

/** Leaves out the chunks that overlap the range compared with. */
export function withoutSelf<T extends Candidate>(ranked: T[], self: { path: string; startLine: number; endLine: number } | null): T[] {
  if (!self) return ranked;
  // Left out: the range itself and what would be shown over it (a piece of the function it is in).
  return ranked.filter((c) => {
    const r = unitOfId(c.rec.id) ?? c.rec;
    return !(c.rec.path === self.path && r.startLine <= self.endLine && r.endLine >= self.startLine);
  });
}

async function readLinesUnder(root: string, rel: string): Promise<string[] | null> {
  const abs = path.resolve(root, rel);
  if (!abs.startsWith(root + path.sep) && abs !== root) return null;
  try {
    return (await fs.readFile(abs, 'utf8')).split(/\r?\n/);
  } catch {
    return null;
  }
}

function ofKinds(ranked: Candidate[], kinds: readonly ChunkKind[] | undefined): Candidate[] {
  if (!kinds) return ranked;
  const wanted = new Set(kinds);
  return ranked.filter((c) => wanted.has(kindOfPath(c.rec.path)));
}

/** Merges the vector and the lexical list (by chunk id) as `fusion` says; best first. */
export function fuse(vector: Candidate[], lexical: Candidate[], fusion: Fusion = DEFAULT_FUSION): Candidate[] {
  const merged = new Map<string, Candidate>();
  const add = (c: Candidate, score: number) => {
    const prev = merged.get(c.rec.id);
    if (prev) {
      prev.score += score;
      prev.vectorScore ??= c.vectorScore;
      prev.lexicalScore ??= c.lexicalScore;
    } else {
      merged.set(c.rec.id, { ...c, score });
    }
  };
  if (fusion.method === 'rrf') {
    vector.forEach((c, rank) => add(c, 1 / (fusion.k + rank + 1)));
    lexical.forEach((c, rank) => add(c, fusion.lexicalWeight / (fusion.k + rank + 1)));
    return [...merged.values()].sort((a, b) => b.score - a.score);
  }
  const rankWeight = fusion.method === 'mix' ? fusion.rankWeight : 0;
  const scaled = (list: Candidate[], weight: number) => {
    if (!list.length) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of list) { lo = Math.min(lo, c.score); hi = Math.max(hi, c.score); }
    list.forEach((c, rank) => {
      const byScore = hi > lo ? (c.score - lo) / (hi - lo) : 1;
      // Each list's rank term counts half (the mean of the two); (k + 1) / (k + rank) is 1 at the top.
      const byRank = fusion.method === 'mix' ? (fusion.k + 1) / (fusion.k + rank + 1) / 2 : 0;
      add(c, (1 - rankWeight) * weight * byScore + rankWeight * byRank);
    });
  };
  scaled(vector, 1 - fusion.lexicalWeight);
  scaled(lexical, fusion.lexicalWeight);
  return [...merged.values()].sort((a, b) => b.score - a.score);
}

/** Best-first, at most `perFile` per file, and no two overlapping ranges of one file. */
export function groupPerFile<T extends { rec: { path: string; startLine: number; endLine: number } }>(ranked: T[], k: number, perFile: number): T[] {
  const taken = new Map<string, T[]>();
  const out: T[] = [];
  for (const c of ranked) {
    if (out.length >= k) break;
    const same = taken.get(c.rec.path) ?? [];
    if (same.length >= perFile) continue;
    if (same.some((o) => o.rec.startLine <= c.rec.endLine && o.rec.endLine >= c.rec.startLine)) continue;
    same.push(c);
    taken.set(c.rec.path, same);
    out.push(c);
  }
  return out;
}

