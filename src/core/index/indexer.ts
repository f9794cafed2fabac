// The workspace indexer: discovery → read → chunk → embed only what is new → vector store + lexical
// index + catalog, in one store folder per recipe (the layout: core/workspace/layout.ts; the object a
// front end uses: core/workspace/workspace.ts).
//
// Consistency: vectors and the lexical index are saved before the catalog at every checkpoint, and
// removals happen last, as a sweep of whatever the catalog does not reference. So after a cancel or a
// crash the catalog claims only finished files; a restart redoes only unfinished files, and chunks whose
// vectors were saved before the crash (same id or same content hash) are not embedded again.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { VectorStore, type ChunkRecord } from '../store/vectorStore';
import { LexicalIndex } from '../search/lexical';
import { prefixesForModel, type TextPrefixes } from '../search/prefixes';
import { UserError, type Logger, type RecipeIdentity, type TextEmbedder } from '../types';
import { describeIdentity, sameRecipe } from '../recipe';
import { CATALOG_FILE, LEXICAL_FILE, prepareStorage, STORE_MANIFEST, storeDirFor, storeState } from '../workspace/layout';
import { Catalog, CHUNKER_VERSION, type CatalogEntry, type ChunkingParams } from './catalog';
import { calibrateTokenEstimator, Chunker, embedHashOfId, embedTextOf, lexicalTextOf, roughTokenCount, type Chunk, type ChunkContext } from './chunk';
import { discoverFiles, discoverPaths, readIndexableText, type DiscoveredFile, type DiscoverOptions, type SkippedFile, type TextCheckOptions } from './files';
import { acquireWriterLock } from './writerLock';
import { planRefresh } from './refreshPlan';


export interface IndexerOptions {
  /** The folder to index. */
  root: string;
  /** Folder holding the stores of every recipe (see core/workspace/layout.ts). */
  storageDir: string;
  /** The store folder, when not the layout's (a rebuild builds beside the old store, then swaps). */
  storeDir?: string;
  embedder: TextEmbedder;
  discovery?: Omit<DiscoverOptions, 'signal' | 'logger'>;
  textChecks?: TextCheckOptions;
  /** Token budget of one chunk. Default 256 (give min(256, model max length − 2)). */
  chunkTokens?: number;
  overlapLines?: number;
  /** Context header of each chunk (see ChunkOptions.context). Default `path`. */
  chunkContext?: ChunkContext;
  /** See ChunkOptions.fileSummary. */
  chunkFileSummary?: boolean;
  treeSitterDir?: string;
  /** Query / passage prefixes; default the embedder's (the model's own prompts), else from the model id (prefixesForModel). */
  prefixes?: TextPrefixes;
  /** Chunks sent to the model in one call. Default 128. */
  embedBatch?: number;
  /** Save a checkpoint after this many newly embedded chunks… Default 2048. */
  checkpointChunks?: number;
  /** …or after this many milliseconds. Default 30 s. */
  checkpointMs?: number;
  logger?: Logger;
}

export type IndexPhase = 'discover' | 'index' | 'save' | 'done';

export interface IndexProgress {
  phase: IndexPhase;
  filesDone: number;
  filesTotal: number;
  /** Chunks sent to the model so far in this refresh. */
  chunksEmbedded: number;
  path?: string;
}

export interface RefreshOptions {
  /**
   * Only these files changed (an editor's save: absolute, or relative to the root): they are checked
   * one by one instead of walking the folder. Honoured when this indexer has walked the folder before
   * (so its first refresh sees what changed while it was closed), the index lacks nothing, no folder
   * is reached through a symbolic link, and no path is a folder, a link or a .gitignore; otherwise the
   * folder is walked. Files changed elsewhere are found by the next refresh without paths.
   */
  paths?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (p: IndexProgress) => void;
}

export interface RefreshSummary {
  filesSeen: number;
  /** Files (re)chunked in this refresh: new or changed. */
  filesIndexed: number;
  filesUnchanged: number;
  filesRemoved: number;
  /** Every file currently skipped, with the reason (discovery and content checks). */
  skipped: SkippedFile[];
  ignoredCount: number;
  chunksEmbedded: number;
  /** Chunks whose vector came from the store (same content seen before: renames, moves, resume). */
  chunksReused: number;
  chunksRemoved: number;
  chunksTotal: number;
  /** Set when only named paths were looked at (RefreshOptions.paths): how many; filesSeen and skipped are theirs. */
  onlyPaths?: number;
  ms: number;
  /** Time inside embedder.embed. */
  modelMs: number;
  storeDir: string;
}

export { recipeKey, prepareStorage, STORAGE_FORMAT_VERSION } from '../workspace/layout';

/** Fixed samples to calibrate the chunker's token estimate against the model's tokenizer. */
export const CALIBRATION_SAMPLES = [
  'export async function loadConfig(path: string): Promise<Config> {\n  const raw = await fs.readFile(path, "utf8");\n  return JSON.parse(raw) as Config;\n}',
  'def parse_http_url(url):\n    """Split a URL into scheme, host and path."""\n    scheme, rest = url.split("://", 1)\n    host, _, path = rest.partition("/")\n    return scheme, host, "/" + path',
  'for (let i = 0; i < rows.length; i++) { sum += rows[i] * weights[i % dims]; }',
  'The indexer walks the workspace, respects .gitignore files and skips binary or minified files.',
  'class LRUCache<K, V> { private map = new Map<K, V>(); constructor(private capacity = 100) {} }',
  '#include <stdio.h>\nint main(int argc, char **argv) { printf("%d\\n", argc); return 0; }',
];

interface OpenState {
  storeDir: string;
  store: VectorStore;
  catalog: Catalog;
  lexical: LexicalIndex;
}

/**
 * Opens the parts of an index for a recipe. Read side (`create` false, used by search): any damage is
 * an INDEX_DAMAGED error. Writer side (`create` true, the indexer): what a refresh can rebuild cheaply
 * is repaired here — a damaged delta segment, catalog or keyword index is left out and its files are
 * redone — and damage only a rebuild can fix is an INDEX_DAMAGED error (Workspace.refresh rebuilds).
 * `storeDir` overrides the layout's folder (a rebuild builds beside the old store, then swaps).
 */
export async function openIndexParts(storageDir: string, identity: RecipeIdentity, create: boolean, chunking?: ChunkingParams, root?: string, logger?: Logger, storeDirOverride?: string): Promise<OpenState> {
  await prepareStorage(storageDir, create);
  const storeDir = storeDirOverride ?? (await storeDirFor(storageDir, identity));
  const state = await storeState(storeDir);
  if (state === 'damaged') await VectorStore.readManifest(storeDir); // throws the precise INDEX_DAMAGED error
  if (state === 'leftovers') {
    throw new UserError(`The index in ${storeDir} is damaged: its manifest is missing.`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', dir: storeDir, file: path.join(storeDir, STORE_MANIFEST) });
  }
  const exists = state === 'store';
  if (!exists && !create) {
    throw new UserError(`No index for ${describeIdentity(identity)} in ${storageDir}.`, 'Build the index with the same model, layer and pooling first.', { code: 'INDEX_MISSING', storageDir });
  }
  // The writer side opens with `repair`: a damaged delta segment is left out and its files, whose chunks
  // are then missing from the store, are re-embedded by the refresh (the catalog still lists them). It
  // also opens with `lazyGraph`: every file is checked now, but the HNSW graph is read only when a
  // refresh needs it (a moved chunk's stored vector, a compaction), not for an edit's delta.
  // The store, the catalog and the keyword index open at once (their large files are read and checked
  // off the main thread: checkedRead.ts); problems are reported in that order. A search opens the catalog
  // without its entries (it needs only its counts), so it never reads the catalog's segments.
  const lexicalFile = path.join(storeDir, LEXICAL_FILE);
  const opening = [
    exists ? VectorStore.open(storeDir, undefined, { repair: create, lazyGraph: create }) : VectorStore.create(storeDir, identity),
    // The writer side repairs a damaged catalog by starting it afresh: the refresh reads every file again
    // and finds their chunks' vectors in the store (nothing is re-embedded).
    Catalog.open(path.join(storeDir, CATALOG_FILE), { identity, chunking, root: root ?? '' }, { repair: create, ...(create ? {} : { entries: false }) }),
    LexicalIndex.load(lexicalFile, { repair: create }),
  ] as const;
  for (const p of opening) p.catch(() => undefined); // each is awaited below, in order
  await Promise.allSettled(opening);
  const store = await opening[0];
  for (const d of store.dropped) {
    logger?.warn(`${d.reason} Left it out; its files are re-indexed: ${d.paths.slice(0, 10).join(', ')}${d.paths.length > 10 ? ` and ${d.paths.length - 10} more` : ''}.`);
  }
  if (!sameRecipe(store.recipe, identity)) {
    throw new UserError(`The store in ${storeDir} holds vectors of ${describeIdentity(store.recipe)}, not ${describeIdentity(identity)}.`, 'Rebuild the index.', { code: 'RECIPE_MISMATCH', dir: storeDir });
  }
  const { catalog, damaged } = await opening[1];
  let lexical = await opening[2];
  if (damaged) logger?.warn(`${damaged} Started it afresh: every file is read again; vectors already stored are reused.`);
  if (!lexical) {
    if (!create && catalog.counts().chunks > 0) {
      throw new UserError(`The lexical index in ${storeDir} is missing or from an older version.`, 'Indexing the folder again rebuilds it from the files (no re-embedding).', { code: 'INDEX_DAMAGED', dir: storeDir, file: lexicalFile, repair: 'refresh' });
    }
    lexical = LexicalIndex.empty();
  }
  for (const d of lexical.dropped) logger?.warn(`Lexical index: ${d.reason}; left it out, its chunks are re-added from the files.`);
  return { storeDir, store, catalog, lexical };
}

/** Compactions in flight in this process, by store folder (a refresh waits for them instead of failing on the lock). */
const compactions = new Map<string, Promise<void>>();

export class WorkspaceIndexer {
  private readonly chunker: Chunker;
  private readonly prefixes: TextPrefixes;
  private modelMs = 0;
  /** What this indexer's last walk of the folder found (undefined: it has not walked it yet). */
  private walked: { linkedDirs: number } | undefined;

  private constructor(
    private readonly options: IndexerOptions,
    readonly root: string,
    private readonly state: OpenState,
    private readonly scale: number,
  ) {
    this.prefixes = options.prefixes ?? options.embedder.prefixes ?? prefixesForModel(options.embedder.identity.model);
    this.chunker = new Chunker({
      maxTokens: options.chunkTokens ?? 256,
      overlapLines: options.overlapLines ?? 0,
      treeSitterDir: options.treeSitterDir,
      context: options.chunkContext,
      fileSummary: options.chunkFileSummary,
      logger: options.logger,
    });
    this.chunker.setTokenEstimator((text) => Math.ceil(roughTokenCount(text) * scale));
  }

  /** Opens (or creates) the index of `options.root` for the embedder's recipe. */
  static async open(options: IndexerOptions): Promise<WorkspaceIndexer> {
    const root = path.resolve(options.root);
    const rootStat = await fs.stat(root).catch(() => null);
    if (!rootStat?.isDirectory()) throw new UserError(`Folder "${options.root}" does not exist or is not a folder.`);
    const { scale } = await calibrateTokenEstimator((t) => options.embedder.countTokens(t), CALIBRATION_SAMPLES);
    const chunking: ChunkingParams = {
      version: CHUNKER_VERSION,
      maxTokens: options.chunkTokens ?? 256,
      overlapLines: options.overlapLines ?? 0,
      scale: Math.round(scale * 1000) / 1000,
    };
    const state = await openIndexParts(path.resolve(options.storageDir), options.embedder.identity, true, chunking, root, options.logger, options.storeDir);
    return new WorkspaceIndexer(options, root, state, chunking.scale);
  }

  get storeDir(): string { return this.state.storeDir; }
  get store(): VectorStore { return this.state.store; }
  get catalog(): Catalog { return this.state.catalog; }
  get lexical(): LexicalIndex { return this.state.lexical; }

  private async checkpoint(): Promise<void> {
    const lexicalFile = path.join(this.state.storeDir, LEXICAL_FILE);
    // The store and the keyword index do not depend on each other: they commit side by side (their fsyncs
    // overlap); the catalog, which claims their chunks, commits only once both have. Both are waited
    // for even when one fails, so that nothing still writes when the error reaches the caller.
    const saved = await Promise.allSettled([this.state.store.save(), this.state.lexical.dirty ? this.state.lexical.save(lexicalFile) : undefined]);
    for (const r of saved) if (r.status === 'rejected') throw r.reason;
    await this.state.catalog.save();
    // A long first index writes a segment per checkpoint: merge when they get many (rare; the regular
    // compaction runs after a refresh, see compactIfNeeded).
    if (this.state.lexical.segmentCount > 32) await this.state.lexical.save(lexicalFile, { compact: true });
    if (this.state.catalog.segmentCount > 32) await this.state.catalog.save({ compact: true });
  }

  /**
   * Brings the index up to date with the folder: only new or changed files are read, chunked and embedded.
   * The store commits the change as a delta segment; a refresh that changed a large part of the index
   * (the first one, a branch switch) also compacts, small ones leave that to `compactIfNeeded`.
   */
  async refresh(options: RefreshOptions = {}): Promise<RefreshSummary> {
    await compactions.get(this.state.storeDir);
    const release = await acquireWriterLock(this.state.storeDir);
    try {
      const summary = await this.refreshLocked(options);
      // A refresh that embedded a large part of the index (the first one, a branch switch) compacts at
      // once: the model time dominates and searches get the graph; small ones leave it to compactIfNeeded.
      const store = this.state.store;
      if ((store.stats().baseRows === 0 && store.count > 0) || (summary.chunksEmbedded > 0 && summary.chunksEmbedded * 10 >= store.count)) await this.compactLocked(true);
      return summary;
    } finally {
      await release();
    }
  }

  /**
   * Folds the delta segments into a new base when they passed their share (see VectorStore.needsCompaction).
   * Off the edit path: call it after a refresh has reported. Holds the writer lock; a refresh in this
   * process waits for it. Returns true when it compacted.
   */
  async compactIfNeeded(): Promise<boolean> {
    const dir = this.state.storeDir;
    if (!this.state.store.needsCompaction() && !this.state.lexical.needsCompaction() && !this.state.catalog.needsCompaction()) return false;
    await compactions.get(dir);
    const run = (async () => {
      const release = await acquireWriterLock(dir);
      try {
        return await this.compactLocked();
      } finally {
        await release();
      }
    })();
    compactions.set(dir, run.then(() => undefined, () => undefined));
    try {
      return await run;
    } finally {
      compactions.delete(dir);
    }
  }

  /** Compacts the store, the lexical index and the catalog: each when due, or all of them with `force`. */
  private async compactLocked(force = false): Promise<boolean> {
    const { store, lexical, catalog } = this.state;
    const lexicalFile = path.join(this.state.storeDir, LEXICAL_FILE);
    if (force) {
      store.compact();
      await store.save();
      await lexical.save(lexicalFile, { compact: true });
      await catalog.save({ compact: true });
      return true;
    }
    const a = await store.compactIfNeeded();
    const b = await lexical.compactIfNeeded(lexicalFile);
    const c = await catalog.compactIfNeeded();
    return a || b || c;
  }

  private async refreshLocked(options: RefreshOptions): Promise<RefreshSummary> {
    const started = performance.now();
    this.modelMs = 0;
    const { signal, onProgress } = options;
    const { store, catalog, lexical } = this.state;
    const log = this.options.logger;
    onProgress?.({ phase: 'discover', filesDone: 0, filesTotal: 0, chunksEmbedded: 0 });
    const partsLost = store.dropped.length > 0 || lexical.dropped.length > 0 || lexical.size < store.count;
    // An editor's save names its files: only they are looked at (see RefreshOptions.paths), else the folder is walked.
    let found: { files: DiscoveredFile[]; skipped: SkippedFile[]; ignoredCount: number } | undefined;
    let scope: Set<string> | undefined;
    if (options.paths && this.walked?.linkedDirs === 0 && catalog.complete && !partsLost) {
      const rel = options.paths.map((p) => (path.isAbsolute(p) ? path.relative(this.root, p) : p));
      const named = discoverPaths(this.root, rel, this.options.discovery);
      // A named path that is gone but was a folder with indexed files (a deleted folder): walk.
      const goneFolder = named.absent.find((p) => !catalog.get(p) && [...catalog.paths()].some((q) => q.startsWith(`${p}/`)));
      if (!named.walkNeeded && !goneFolder) {
        found = { files: named.files, skipped: named.skipped, ignoredCount: 0 };
        scope = new Set([...named.files.map((f) => f.path), ...named.skipped.map((f) => f.path), ...named.absent]);
      }
    }
    if (!found) {
      const walk = await discoverFiles(this.root, { ...this.options.discovery, signal, logger: log });
      this.walked = { linkedDirs: walk.linkedDirs };
      found = walk;
    }

    // Plan (refreshPlan.ts, pure): files to read, unfinished ones, removed ones; then apply it below.
    const { todo, dirty, removed, mayLack } = planRefresh(found.files, {
      complete: catalog.complete,
      paths: () => catalog.paths(),
      get: (p) => catalog.get(p),
      stored: (id) => store.has(id) && lexical.has(id),
      partsLost,
    }, scope);
    const summary: RefreshSummary = {
      filesSeen: found.files.length, filesIndexed: 0, filesUnchanged: found.files.length - todo.length, filesRemoved: 0,
      skipped: [...found.skipped], ignoredCount: found.ignoredCount, chunksEmbedded: 0, chunksReused: 0, chunksRemoved: 0,
      chunksTotal: 0, ms: 0, modelMs: 0, storeDir: this.state.storeDir, ...(scope ? { onlyPaths: scope.size } : {}),
    };
    const wasComplete = catalog.complete;
    catalog.complete = false;

    // Hash of the embedded text → a stored chunk with it (moved code under the same header reuses its vector).
    // With the default `path` context header the hash covers the path, so only the file's own chunks can
    // match: those are looked up by path (O(chunks of the file)). Other headers can match any chunk, and
    // the map of every stored chunk is built once, on the first miss (O(index)).
    let byHash: Map<string, string> | null = null;
    const pathInHash = (this.options.chunkContext ?? 'path') === 'path';
    const reusable = (hash: string, filePath: string): Float32Array | undefined => {
      for (const r of store.recordsOfPath(filePath)) if (embedHashOfId(r.id) === hash) return store.vectorOf(r.id);
      if (pathInHash) return undefined;
      if (!byHash) {
        byHash = new Map();
        for (const p of store.paths()) for (const r of store.recordsOfPath(p)) byHash.set(embedHashOfId(r.id), r.id);
      }
      const id = byHash.get(hash);
      return id === undefined ? undefined : store.vectorOf(id);
    };

    interface Pending { path: string; entry: CatalogEntry; chunks: Chunk[]; embed: Chunk[] }
    let pending: Pending[] = [];
    let pendingTexts = 0;
    let sinceCheckpoint = 0;
    let lastCheckpoint = performance.now();
    const embedBatch = this.options.embedBatch ?? 128;
    const checkpointChunks = this.options.checkpointChunks ?? 2048;
    const checkpointMs = this.options.checkpointMs ?? 30_000;
    let filesDone = 0;
    const progress = (p?: string) => onProgress?.({ phase: 'index', filesDone, filesTotal: todo.length, chunksEmbedded: summary.chunksEmbedded, path: p });

    // Chunk ids that files had before this refresh replaced or removed them (for the lexical index).
    const removedChunks = new Map<string, string[]>();
    let touched = false;
    const commit = (file: Pending) => {
      const before = catalog.get(file.path);
      if (before?.chunks.length) removedChunks.set(`${file.path}\u0000old`, before.chunks.map((c) => c.id));
      for (const c of file.chunks) lexical.add(c.id, c.path, lexicalTextOf(c));
      catalog.set(file.path, file.entry);
    };

    // Overlap: while the model embeds one batch, the loop reads and chunks the files of the next. At most
    // one model call is in flight; its results are committed (upsert, catalog, checkpoint) by the loop
    // itself before the next call starts, so nothing else writes while a checkpoint saves.
    let inflight: { batch: Pending[]; toEmbed: Chunk[]; data: Promise<Float32Array | null> } | null = null;
    const settle = async () => {
      if (!inflight) return;
      const { batch, toEmbed, data } = inflight;
      inflight = null;
      const vectors = await data;
      if (vectors) {
        const records: ChunkRecord[] = toEmbed.map((c) => ({ id: c.id, path: c.path, startLine: c.startLine, endLine: c.endLine, contentHash: c.contentHash }));
        store.upsert(records, vectors);
        summary.chunksEmbedded += toEmbed.length;
        sinceCheckpoint += toEmbed.length;
      }
      batch.forEach(commit);
      if (sinceCheckpoint >= checkpointChunks || performance.now() - lastCheckpoint >= checkpointMs) {
        onProgress?.({ phase: 'save', filesDone, filesTotal: todo.length, chunksEmbedded: summary.chunksEmbedded });
        await this.checkpoint();
        sinceCheckpoint = 0;
        lastCheckpoint = performance.now();
      }
    };
    const flush = async () => {
      if (!pending.length) return;
      const batch = pending;
      pending = [];
      pendingTexts = 0;
      await settle();
      const toEmbed = batch.flatMap((f) => f.embed);
      let data: Promise<Float32Array | null> = Promise.resolve(null);
      if (toEmbed.length) {
        const t0 = performance.now();
        const base = summary.chunksEmbedded;
        data = this.options.embedder.embed(toEmbed.map((c) => embedTextOf(c)), {
          signal,
          prefix: this.prefixes.passage || undefined,
          onProgress: (e) => onProgress?.({ phase: 'index', filesDone, filesTotal: todo.length, chunksEmbedded: base + e.itemsDone }),
        }).then((v) => {
          this.modelMs += performance.now() - t0;
          return v;
        });
        data.catch(() => undefined); // awaited by settle(); this only keeps a failure from being "unhandled" meanwhile
      }
      inflight = { batch, toEmbed, data };
    };

    const skip = (p: string, reason: SkippedFile['reason'], detail: string | undefined, size: number, mtimeMs: number) => {
      summary.skipped.push({ path: p, reason, detail });
      const before = catalog.get(p);
      if (before?.chunks.length) removedChunks.set(`${p}\u0000old`, before.chunks.map((c) => c.id));
      touched = true;
      catalog.set(p, { size, mtimeMs, skip: { reason, ...(detail ? { detail } : {}) }, chunks: [] });
    };

    try {
      // Skips found by earlier refreshes are still skips (their files are unchanged, so not re-read).
      const todoSet = new Set(todo);
      for (const f of found.files) {
        const entry = catalog.get(f.path);
        if (entry?.skip && !todoSet.has(f)) summary.skipped.push({ path: f.path, reason: entry.skip.reason, detail: entry.skip.detail });
      }
      for (const file of todo) {
        signal?.throwIfAborted();
        progress(file.path);
        const read = await readIndexableText(file.absPath, this.options.textChecks);
        filesDone++;
        if (!read.ok) {
          skip(file.path, read.reason, read.detail, read.size ?? file.size, read.mtimeMs ?? file.mtimeMs);
          continue;
        }
        const old = catalog.get(file.path);
        if (old && !old.skip && old.hash === read.hash && !dirty.has(file.path)) {
          // Touched, not changed: only the stat fields move.
          catalog.set(file.path, { ...old, size: read.size, mtimeMs: read.mtimeMs });
          touched = true;
          summary.filesUnchanged++;
          continue;
        }
        const chunks = await this.chunker.chunk(file.path, read.text);
        const embed: Chunk[] = [];
        const reusedRecords: ChunkRecord[] = [];
        const reusedVectors: Float32Array[] = [];
        for (const c of chunks) {
          if (store.has(c.id)) { summary.chunksReused++; continue; }
          const v = reusable(embedHashOfId(c.id), c.path);
          if (v) {
            reusedRecords.push({ id: c.id, path: c.path, startLine: c.startLine, endLine: c.endLine, contentHash: c.contentHash });
            reusedVectors.push(v);
            continue;
          }
          embed.push(c);
        }
        if (reusedRecords.length) {
          const flat = new Float32Array(reusedVectors.length * store.dims);
          reusedVectors.forEach((v, i) => flat.set(v, i * store.dims));
          store.upsert(reusedRecords, flat);
          summary.chunksReused += reusedRecords.length;
        }
        summary.filesIndexed++;
        const entry: CatalogEntry = {
          size: read.size, mtimeMs: read.mtimeMs, hash: read.hash,
          chunks: chunks.map((c) => ({ id: c.id, startLine: c.startLine, endLine: c.endLine, contentHash: c.contentHash })),
        };
        pending.push({ path: file.path, entry, chunks, embed });
        pendingTexts += embed.length;
        if (pendingTexts >= embedBatch) await flush();
      }
      await flush();
      await settle();

      // Removals last: files gone from the folder, then every stored chunk the catalog no longer names.
      for (const p of removed) {
        removedChunks.set(p, catalog.get(p)!.chunks.map((c) => c.id));
        catalog.delete(p);
        summary.filesRemoved++;
      }
      const removedChunkPaths = [...removedChunks.keys()];
      // After a complete refresh the store and the lexical index hold exactly the catalog's chunks, so only
      // the files this refresh changed can leave chunks behind (a chunk id starts with its file's path): the
      // sweep looks at those (O(change)). After an unfinished one (a cancel, a crash, a dropped segment) a
      // file may have chunks the catalog never named, and the whole index is swept (O(index)).
      const fullSweep = !wasComplete || mayLack;
      const liveByPath = new Map<string, Set<string>>();
      let live: Set<string> | undefined;
      if (fullSweep) {
        live = new Set<string>();
        for (const c of catalog.chunks()) live.add(c.id);
      }
      const isLive = (id: string, p: string): boolean => {
        if (live) return live.has(id);
        let set = liveByPath.get(p);
        if (!set) liveByPath.set(p, (set = new Set(catalog.get(p)?.chunks.map((c) => c.id) ?? [])));
        return set.has(id);
      };
      const pathOfKey = (k: string) => (k.endsWith('\u0000old') ? k.slice(0, -4) : k);
      const sweepPaths = fullSweep ? store.paths() : [...new Set(removedChunkPaths.map(pathOfKey))];
      for (const p of sweepPaths) {
        for (const r of store.recordsOfPath(p)) {
          if (!isLive(r.id, p)) { store.deleteById(r.id); summary.chunksRemoved++; }
        }
      }
      for (const k of removedChunkPaths) {
        for (const c of removedChunks.get(k) ?? []) if (!isLive(c, pathOfKey(k))) lexical.remove(c);
      }
      // Documents of files that a crash left uncommitted: only then is the full id scan needed.
      const liveCount = live ? live.size : catalog.counts().chunks;
      if (lexical.size > liveCount) {
        live ??= new Set([...catalog.chunks()].map((c) => c.id));
        for (const id of lexical.ids()) if (!live.has(id)) lexical.remove(id);
      }
      const changed = !wasComplete || summary.filesIndexed > 0 || summary.filesRemoved > 0 || summary.chunksRemoved > 0 || touched;
      catalog.complete = true;
      if (changed) {
        onProgress?.({ phase: 'save', filesDone, filesTotal: todo.length, chunksEmbedded: summary.chunksEmbedded });
        await this.checkpoint();
      }
    } catch (err) {
      // Cancel or failure: keep every finished file (the pending ones are redone next time).
      try {
        await this.checkpoint();
      } catch (saveErr) {
        log?.error(`Could not save the index after an interruption: ${saveErr instanceof Error ? saveErr.message : String(saveErr)}`);
      }
      throw err;
    }
    summary.chunksTotal = catalog.counts().chunks;
    summary.ms = performance.now() - started;
    summary.modelMs = this.modelMs;
    summary.skipped.sort((a, b) => (a.path < b.path ? -1 : 1));
    onProgress?.({ phase: 'done', filesDone, filesTotal: todo.length, chunksEmbedded: summary.chunksEmbedded });
    return summary;
  }
}
