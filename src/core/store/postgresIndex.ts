// Indexing into and searching a shared PostgreSQL index (postgres.ts). The folder is discovered, read and
// chunked exactly as for the local index (files.ts, chunk.ts); a file is redone only when its content
// hash differs from the one the database holds (mtimes differ between team members' checkouts, content
// does not). Vectors of chunks whose content the database already holds are reused (renames, moves).
// Nothing is written on the local disk.
import * as path from 'node:path';
import * as fs from 'node:fs/promises';
import { CHUNKER_VERSION } from '../index/catalog';
import { calibrateTokenEstimator, Chunker, embedHashOfId, embedTextOf, lexicalTextOf, roughTokenCount, type Chunk } from '../index/chunk';
import { discoverFiles, readIndexableText, type DiscoverOptions, type SkippedFile, type TextCheckOptions } from '../index/files';
import { CALIBRATION_SAMPLES, type RefreshOptions, type RefreshSummary } from '../index/indexer';
import { prefixesForModel, type TextPrefixes } from '../search/prefixes';
import { fuse, pickHits, resolveSearchOptions, SIMILAR_EXTRA_DEPTH, similarText, withoutSelf, type Candidate, type SearchHit, type SearchOptions, type SimilarTarget } from '../search/search';
import { hasCode } from '../errors';
import { UserError, type Logger, type RecipeIdentity, type TextEmbedder } from '../types';
import { PostgresStore, type PgChunking, type PgFileUpdate } from './postgres';

export interface PgIndexerOptions {
  root: string;
  /** postgres://… connection string. */
  url: string;
  embedder: TextEmbedder;
  discovery?: Omit<DiscoverOptions, 'signal' | 'logger'>;
  textChecks?: TextCheckOptions;
  chunkTokens?: number;
  overlapLines?: number;
  treeSitterDir?: string;
  prefixes?: TextPrefixes;
  /** Chunks sent to the model in one call. Default 128. */
  embedBatch?: number;
  /** Create this recipe's tables even though the database holds another recipe. */
  allowNewRecipe?: boolean;
  /**
   * Embed every file again and replace all of this recipe's rows in the one update transaction
   * (readers see the old index until it commits). Also takes new chunking parameters.
   */
  rebuild?: boolean;
  hnsw?: { m?: number; efConstruction?: number };
  logger?: Logger;
}

export interface PgRefreshSummary extends RefreshSummary {
  /** Write-ahead log bytes of the update transaction. */
  walBytes: number;
}

/** Brings the shared index up to date with `root` in one transaction. */
export async function refreshPostgres(options: PgIndexerOptions, run: RefreshOptions = {}): Promise<PgRefreshSummary> {
  const started = performance.now();
  const root = path.resolve(options.root);
  if (!(await fs.stat(root).catch(() => null))?.isDirectory()) throw new UserError(`Folder "${options.root}" does not exist or is not a folder.`);
  const { signal, onProgress } = run;
  const log = options.logger;
  const { scale } = await calibrateTokenEstimator((t) => options.embedder.countTokens(t), CALIBRATION_SAMPLES);
  const chunking: PgChunking = {
    version: CHUNKER_VERSION,
    maxTokens: options.chunkTokens ?? 256,
    overlapLines: options.overlapLines ?? 0,
    scale: Math.round(scale * 1000) / 1000,
  };
  const store = await PostgresStore.open(options.url, options.embedder.identity, {
    create: true, chunking, allowNewRecipe: options.allowNewRecipe, applicationName: 'embedding-lens index', hnsw: options.hnsw, rechunk: options.rebuild,
  });
  try {
    const release = await store.lockWriter((holder) => log?.info(`waiting for another indexer of this index to finish: ${holder}`));
    try {
      const chunker = new Chunker({ maxTokens: chunking.maxTokens, overlapLines: chunking.overlapLines, treeSitterDir: options.treeSitterDir, logger: log });
      chunker.setTokenEstimator((text) => Math.ceil(roughTokenCount(text) * chunking.scale));
      const prefixes = options.prefixes ?? prefixesForModel(options.embedder.identity.model);
      onProgress?.({ phase: 'discover', filesDone: 0, filesTotal: 0, chunksEmbedded: 0 });
      const found = await discoverFiles(root, { ...options.discovery, signal, logger: log });
      // Read under the lock: what another writer committed before is seen here.
      const held = await store.fileHashes();
      // A rebuild treats every file as new and reuses no stored vector.
      const known = options.rebuild ? new Map<string, string>() : held;
      const summary: PgRefreshSummary = {
        filesSeen: found.files.length, filesIndexed: 0, filesUnchanged: 0, filesRemoved: 0, skipped: [...found.skipped],
        ignoredCount: found.ignoredCount, chunksEmbedded: 0, chunksReused: 0, chunksRemoved: 0, chunksTotal: 0, ms: 0, modelMs: 0,
        storeDir: store.location, walBytes: 0,
      };
      const keep = new Set<string>();
      const changed: { path: string; hash: string; chunks: Chunk[] }[] = [];
      let filesDone = 0;
      for (const f of found.files) {
        signal?.throwIfAborted();
        onProgress?.({ phase: 'index', filesDone, filesTotal: found.files.length, chunksEmbedded: 0, path: f.path });
        const read = await readIndexableText(f.absPath, options.textChecks);
        filesDone++;
        if (!read.ok) {
          summary.skipped.push({ path: f.path, reason: read.reason, detail: read.detail } satisfies SkippedFile);
          continue;
        }
        keep.add(f.path);
        if (known.get(f.path) === read.hash) {
          summary.filesUnchanged++;
          continue;
        }
        changed.push({ path: f.path, hash: read.hash, chunks: await chunker.chunk(f.path, read.text) });
      }
      const removed = [...held.keys()].filter((p) => !keep.has(p));

      // Vectors: reuse what the database holds for the same embedded text (context header + lines:
      // the hash part of the chunk id), embed the rest.
      const allChunks = changed.flatMap((f) => f.chunks);
      const key = (c: Chunk) => embedHashOfId(c.id);
      const reuse = options.rebuild ? new Map<string, Float32Array>() : await store.vectorsByEmbedHash([...new Set(allChunks.map(key))]);
      const fresh = new Map<string, Float32Array>();
      const toEmbed: Chunk[] = [];
      const queued = new Set<string>();
      for (const c of allChunks) {
        if (reuse.has(key(c))) summary.chunksReused++;
        else if (!queued.has(key(c))) { queued.add(key(c)); toEmbed.push(c); }
      }
      const batch = options.embedBatch ?? 128;
      for (let i = 0; i < toEmbed.length; i += batch) {
        signal?.throwIfAborted();
        const part = toEmbed.slice(i, i + batch);
        const t0 = performance.now();
        const data = await options.embedder.embed(part.map((c) => embedTextOf(c)), {
          signal,
          prefix: prefixes.passage || undefined,
          onProgress: (e) => onProgress?.({ phase: 'index', filesDone, filesTotal: found.files.length, chunksEmbedded: i + e.itemsDone }),
        });
        summary.modelMs += performance.now() - t0;
        part.forEach((c, j) => fresh.set(key(c), data.subarray(j * store.dims, (j + 1) * store.dims)));
        summary.chunksEmbedded += part.length;
      }
      // Chunks repeated within this update but embedded once count as reused.
      summary.chunksReused += allChunks.length - summary.chunksReused - summary.chunksEmbedded;
      const updates: PgFileUpdate[] = changed.map((f) => {
        const vectors = new Float32Array(f.chunks.length * store.dims);
        f.chunks.forEach((c, j) => vectors.set(reuse.get(key(c)) ?? fresh.get(key(c))!, j * store.dims));
        return {
          path: f.path, contentHash: f.hash, vectors,
          chunks: f.chunks.map((c) => ({ id: c.id, path: c.path, startLine: c.startLine, endLine: c.endLine, contentHash: c.contentHash, text: lexicalTextOf(c) })),
        };
      });
      signal?.throwIfAborted();
      onProgress?.({ phase: 'save', filesDone, filesTotal: found.files.length, chunksEmbedded: summary.chunksEmbedded });
      const applied = await store.apply(updates, removed, options.rebuild ? { chunking, all: true } : {});
      summary.filesIndexed = changed.length;
      summary.filesRemoved = removed.length;
      summary.chunksRemoved = applied.chunksRemoved;
      summary.walBytes = applied.walBytes;
      summary.chunksTotal = (await store.counts()).chunks;
      summary.ms = performance.now() - started;
      summary.skipped.sort((a, b) => (a.path < b.path ? -1 : 1));
      onProgress?.({ phase: 'done', filesDone, filesTotal: found.files.length, chunksEmbedded: summary.chunksEmbedded });
      return summary;
    } finally {
      await release();
    }
  } finally {
    await store.close();
  }
}

/**
 * Whether the shared index holds this recipe, and its size (the status a front end shows). A database
 * without it lists the recipes it does hold in `others`. Connection problems are thrown (STORE_* codes).
 */
export async function postgresIndexStatus(url: string, identity: RecipeIdentity): Promise<{ exists: boolean; files: number; chunks: number; updatedAt: string; others: string[] }> {
  let store: PostgresStore;
  try {
    store = await PostgresStore.open(url, identity, { create: false, applicationName: 'embedding-lens status' });
  } catch (err) {
    if (hasCode(err, 'INDEX_MISSING', 'RECIPE_MISMATCH')) return { exists: false, files: 0, chunks: 0, updatedAt: '', others: await PostgresStore.heldRecipes(url) };
    throw err;
  }
  try {
    return { exists: true, ...(await store.counts()), others: [] };
  } finally {
    await store.close();
  }
}

/** Search over a shared index: the same modes, fusion, grouping and previews as WorkspaceSearch. */
export class PostgresSearch {
  private constructor(
    readonly root: string,
    private readonly embedder: TextEmbedder,
    readonly store: PostgresStore,
    private readonly prefixes: TextPrefixes,
  ) {}

  static async open(options: { root: string; url: string; embedder: TextEmbedder; prefixes?: TextPrefixes }): Promise<PostgresSearch> {
    const store = await PostgresStore.open(options.url, options.embedder.identity, { create: false, applicationName: 'embedding-lens search' });
    return new PostgresSearch(path.resolve(options.root), options.embedder, store, options.prefixes ?? prefixesForModel(options.embedder.identity.model));
  }

  async search(query: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    const q = resolveSearchOptions(query, options);
    let ranked: Candidate[];
    if (q.mode === 'lexical') {
      ranked = await this.lexicalCandidates(query, q.depth);
    } else {
      const v = await this.embedder.embed([query], { signal: options.signal, prefix: this.prefixes.query || undefined });
      const vec = await this.vectorCandidates(v.subarray(0, this.store.dims), q.depth, options.ef);
      ranked = q.mode === 'vector' ? vec : fuse(vec, await this.lexicalCandidates(query, q.depth), q.fusion);
    }
    return pickHits(this.root, ranked, q);
  }

  /** Chunks similar to a text or to lines of a file of `root` (the range itself left out), as WorkspaceSearch.similar. */
  async similar(target: SimilarTarget, options: Omit<SearchOptions, 'mode'> = {}): Promise<SearchHit[]> {
    const { text, self } = await similarText(this.root, target);
    const q = resolveSearchOptions(text, { ...options, mode: 'vector' }, SIMILAR_EXTRA_DEPTH);
    const v = await this.embedder.embed([text], { signal: options.signal, prefix: this.prefixes.passage || undefined });
    return pickHits(this.root, withoutSelf(await this.vectorCandidates(v.subarray(0, this.store.dims), q.depth, options.ef), self), q);
  }

  async vectorCandidates(vector: Float32Array, depth: number, ef?: number): Promise<Candidate[]> {
    return (await this.store.queryVector(vector, depth, ef)).map((h) => ({ rec: h, score: h.score, vectorScore: h.score }));
  }

  async lexicalCandidates(query: string, depth: number): Promise<Candidate[]> {
    return (await this.store.queryLexical(query, depth)).map((h) => ({ rec: h, score: h.score, lexicalScore: h.score }));
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
