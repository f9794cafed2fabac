// One indexed folder: the object the CLI and the engine worker use for everything an index does —
// refresh (with repair and rebuild), search, similar, sample, status, clear, export. It owns the
// storage layout (./layout.ts) and the rebuild protocol; the indexer, the store and the search are its
// parts. Front ends only parse their input and print or post the results.
//
// Recovery: a refresh repairs what it can in place (a damaged delta segment, catalog or keyword index
// is dropped and its files redone; vectors already stored are reused). Damage only a rebuild fixes (a
// store manifest or base that does not read), and an explicit rebuild, build a new store BESIDE the
// old one and swap it in when it has committed: until then the old index stays as it was, so a
// cancelled or failed rebuild loses nothing.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { hasCode, UserError } from '../errors';
import { WorkspaceIndexer, type IndexerOptions, type IndexProgress, type RefreshSummary } from '../index/indexer';
import { acquireWriterLock } from '../index/writerLock';
import { describeIdentity, recipeDifferences, type RecipeIdentity } from '../recipe';
import { WorkspaceSearch, type IndexStatus, type SearchHit, type SearchOptions, type SimilarTarget } from '../search/search';
import { exportStore, type ExportFormat } from '../store/export';
import { VectorStore } from '../store/vectorStore';
import type { Logger, TextEmbedder } from '../types';
import { CATALOG_FILE, clearStorage, describeStored, LEXICAL_FILE, listStores, storageFor, STORE_MANIFEST, storeDirFor, storeState, type StoredIndex } from './layout';

/**
 * The chunk budget for a model: its window without the two special tokens, where sentence-transformers'
 * max_seq_length (the length the model was trained and is served with: 256 for all-MiniLM-L6-v2) wins
 * over the graph's position limit; at most 256 tokens (longer chunks blur in one vector).
 */
export function chunkTokensFor(maxLength: number, maxSeqLength?: number): number {
  return Math.max(16, Math.min(256, Math.min(maxLength, maxSeqLength ?? maxLength) - 2));
}

export interface RefreshRequest {
  /** Build a fresh index beside the old one and swap it in (the old one stays until the new commits). */
  rebuild?: boolean;
  discovery?: IndexerOptions['discovery'];
  textChecks?: IndexerOptions['textChecks'];
  chunkTokens?: number;
  /** Save a checkpoint at least this often (ms); default: the indexer's. */
  checkpointMs?: number;
  /** Only these files changed (an editor's save); see RefreshOptions.paths. A rebuild walks the folder. */
  paths?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (p: IndexProgress) => void;
}

export interface RefreshResult extends RefreshSummary {
  /** Why the store was rebuilt instead of refreshed (the damage found), when it was. */
  rebuilt?: string;
}

/** A sample of an index's vectors, with where each chunk comes from. */
export interface IndexSample {
  vectors: Float32Array;
  dims: number;
  /** Chunks in the index. */
  total: number;
  records: { path: string; startLine: number; endLine: number; preview: string }[];
}

/** Evenly spaced sample of `limit` indices out of `n` (all of them when n ≤ limit). */
export function sampleIndices(n: number, limit: number): number[] {
  if (n <= limit) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: limit }, (_, i) => Math.floor((i * n) / limit));
}

interface HeldIndexer {
  indexer: WorkspaceIndexer;
  /** Recipe, prompts and refresh options it was opened with. */
  key: string;
  /** committedStamp() of its folder after its last commit. */
  stamp: string;
  forward: { current: TextEmbedder };
  /** A refresh is changing its parts now: searches open the committed index from disk meanwhile. */
  refreshing: boolean;
}

/**
 * Identifies what is committed in a store folder: the three manifests are replaced by rename at every
 * commit (store, keyword index, catalog), so a new inode, size or time means someone committed.
 */
async function committedStamp(storeDir: string): Promise<string> {
  const parts = await Promise.all([STORE_MANIFEST, LEXICAL_FILE, CATALOG_FILE].map(async (name) => {
    const st = await fs.stat(path.join(storeDir, name)).catch(() => undefined);
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '-';
  }));
  return parts.join('|');
}

export class Workspace {
  /** Open searches by store folder, reused across queries; dropped whenever that store is written or removed. */
  private readonly searches = new Map<string, Promise<WorkspaceSearch>>();
  /**
   * The open indexer of each store folder, kept between refreshes (an editor's save re-indexes one file
   * without opening the index again), with what it was opened for and the committed files it last saw.
   */
  private readonly indexers = new Map<string, HeldIndexer>();

  private constructor(
    /** The indexed folder (absolute). */
    readonly root: string,
    /** The folder holding its indexes, one per recipe (absolute). */
    readonly storageDir: string,
    private readonly logger?: Logger,
  ) {}

  /** The workspace of `root`; `storageDir` defaults to `<root>/.embedding-lens`. */
  static at(root: string, options: { storageDir?: string; logger?: Logger } = {}): Workspace {
    const abs = path.resolve(root);
    return new Workspace(abs, storageFor(abs, options.storageDir), options.logger);
  }

  // -------------------------------------------------------------------------------------------
  // What is there (no model needed)

  /** Every index of this folder, with the recipe its manifest records (undefined when it does not read). */
  indexes(): Promise<StoredIndex[]> {
    return listStores(this.storageDir);
  }

  /** The store folder of a recipe (existing, or where it would be made). */
  storeDir(identity: RecipeIdentity): Promise<string> {
    return storeDirFor(this.storageDir, identity);
  }

  /**
   * The recipe to search with when none was given: the folder's one index, or the one whose recipe
   * matches `filter`. None: INDEX_MISSING. Several: BAD_INPUT listing them (`choose` says how to pick).
   */
  async indexedRecipe(filter: Partial<Pick<RecipeIdentity, 'layer' | 'pooling' | 'normalize'>> = {}, choose = 'Choose one by its recipe.'): Promise<RecipeIdentity> {
    const all = await this.indexes();
    const damaged = all.filter((s) => !s.recipe);
    const known = all.flatMap((s) => (s.recipe ? [s.recipe] : []));
    const matching = known.filter((r) =>
      (filter.layer === undefined || r.layer === filter.layer) && (filter.pooling === undefined || r.pooling === filter.pooling) && (filter.normalize === undefined || r.normalize === filter.normalize));
    if (matching.length === 1) return matching[0]!;
    if (matching.length > 1) {
      throw new UserError(`${this.root} has ${matching.length} indexes:\n${matching.map((r) => `  ${describeIdentity(r)}`).join('\n')}`, choose);
    }
    if (damaged.length && !known.length) {
      await VectorStore.readManifest(damaged[0]!.dir); // the precise INDEX_DAMAGED error
      throw new UserError(`The index in ${damaged[0]!.dir} is damaged: its manifest is missing.`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', root: this.root, dir: damaged[0]!.dir });
    }
    const others = known.map(describeIdentity);
    throw new UserError(
      others.length ? `${path.basename(this.root)} has no index for this recipe (it has: ${others.join('; ')}).` : `${path.basename(this.root)} has no index yet.`,
      others.length ? 'Build one for this recipe, or search with the recipe of an existing one.' : 'Index the folder first.',
      { code: 'INDEX_MISSING', root: this.root, storageDir: this.storageDir, others },
    );
  }

  /** Counts and completeness of the index of a recipe (INDEX_MISSING / INDEX_DAMAGED when it has none / a damaged one). */
  async status(identity: RecipeIdentity): Promise<IndexStatus> {
    return (await this.openSearch({ identity })).status();
  }

  /** Removes one recipe's index, or (no recipe) every index of this folder. Returns what was removed. */
  async clear(identity?: RecipeIdentity): Promise<string[]> {
    this.forget();
    this.indexers.clear();
    return clearStorage(this.storageDir, identity);
  }

  /** Forget open searches (of one store folder, or all: their stores were written or removed behind them). */
  forget(storeDir?: string): void {
    if (storeDir === undefined) this.searches.clear();
    else this.forgetStore(storeDir);
  }

  private forgetStore(storeDir: string): void {
    for (const key of [...this.searches.keys()]) if (key.startsWith(`${storeDir}\u0000`)) this.searches.delete(key);
  }

  /** Whether a recipe has an index here, and its counts; `others`: the recipes indexed instead. */
  async indexStatus(identity: RecipeIdentity): Promise<{ exists: boolean; complete?: boolean; files?: number; chunks?: number; others: string[] }> {
    if ((await storeState(await this.storeDir(identity))) === 'absent') return { exists: false, others: await describeStored(this.storageDir) };
    const s = await this.status(identity);
    return { exists: true, complete: s.complete, files: s.files, chunks: s.chunks, others: [] };
  }

  // -------------------------------------------------------------------------------------------
  // Indexing

  /**
   * Brings the index of the embedder's recipe up to date with the folder (only new and changed files are
   * embedded), repairing what a refresh can repair. With `rebuild`, or when the store is damaged beyond
   * that, a new store is built beside the old one and swapped in once committed.
   */
  async refresh(embedder: TextEmbedder, original: RefreshRequest = {}): Promise<RefreshResult> {
    const target = await this.storeDir(embedder.identity);
    this.forget(target);
    // A search while indexing reads the store as of the last checkpoint: after each one, the open
    // search is dropped so that the next query sees the files saved since.
    let saving = false;
    const request: RefreshRequest = {
      ...original,
      onProgress: (e) => {
        if (saving && e.phase !== 'save') this.forgetStore(target);
        saving = e.phase === 'save';
        original.onProgress?.(e);
      },
    };
    try {
      if (!request.rebuild) {
        try {
          const held = await this.heldIndexer(target, embedder, request);
          held.refreshing = true;
          try {
            const summary = await held.indexer.refresh({ paths: request.paths, signal: request.signal, onProgress: request.onProgress });
            held.stamp = await committedStamp(target);
            return summary;
          } catch (err) {
            this.indexers.delete(target); // opened again next time, from what is committed
            throw err;
          } finally {
            held.refreshing = false;
          }
        } catch (err) {
          if (!hasCode(err, 'INDEX_DAMAGED')) throw err;
          const why = (err as UserError).statement;
          this.logger?.warn(`${why} Rebuilding the index beside it; the damaged one is replaced when the new one is complete.`);
          return { ...(await this.rebuild(embedder, target, request)), rebuilt: why };
        }
      }
      return { ...(await this.rebuild(embedder, target, request)), rebuilt: 'asked for' };
    } finally {
      this.forget(target);
    }
  }

  /**
   * Folds the delta segments of a recipe's store into a new base when they passed their share. Off the
   * edit path: call it after a refresh has reported. Returns true when it compacted.
   */
  async compactIfNeeded(identity: RecipeIdentity): Promise<boolean> {
    const target = await this.storeDir(identity);
    const held = this.indexers.get(target);
    if (!held) return false;
    this.forget(target);
    try {
      const done = await held.indexer.compactIfNeeded();
      if (done) held.stamp = await committedStamp(target);
      return done;
    } catch (err) {
      this.indexers.delete(target);
      throw err;
    } finally {
      this.forget(target);
    }
  }

  /**
   * The held indexer of `target` when it was opened for the same recipe, prompts and options and nothing
   * else (another process, a clear) committed to the folder since; else the index opened afresh.
   */
  private async heldIndexer(target: string, embedder: TextEmbedder, request: RefreshRequest): Promise<HeldIndexer> {
    const key = JSON.stringify([embedder.identity, embedder.prefixes ?? null, request.chunkTokens ?? null, request.discovery ?? null, request.textChecks ?? null, request.checkpointMs ?? null]);
    let held = this.indexers.get(target);
    if (held && (held.key !== key || held.stamp !== (await committedStamp(target)))) {
      this.indexers.delete(target);
      held = undefined;
    }
    if (!held) {
      // The indexer keeps the embedder it was opened with; this one forwards to the caller's current one
      // (an engine reloads its model after idling: same recipe, a new object).
      const forward = { current: embedder };
      const stable: TextEmbedder = {
        identity: embedder.identity,
        prefixes: embedder.prefixes,
        embed: (texts, options) => forward.current.embed(texts, options),
        countTokens: (texts) => forward.current.countTokens(texts),
      };
      const indexer = await this.indexer(stable, request);
      held = { indexer, key, stamp: '', forward, refreshing: false };
      this.indexers.set(target, held);
    }
    held.forward.current = embedder;
    return held;
  }

  private indexer(embedder: TextEmbedder, request: RefreshRequest, storeDir?: string): Promise<WorkspaceIndexer> {
    return WorkspaceIndexer.open({
      root: this.root,
      storageDir: this.storageDir,
      storeDir,
      embedder,
      chunkTokens: request.chunkTokens,
      discovery: request.discovery,
      textChecks: request.textChecks,
      ...(request.checkpointMs ? { checkpointMs: request.checkpointMs } : {}),
      logger: this.logger,
    });
  }

  /** Builds into `<target>.rebuild`, then swaps it in under the old store's writer lock. */
  private async rebuild(embedder: TextEmbedder, target: string, request: RefreshRequest): Promise<RefreshSummary> {
    const aside = `${target}.rebuild`;
    await fs.rm(aside, { recursive: true, force: true });
    let summary: RefreshSummary;
    this.indexers.delete(target);
    try {
      summary = await (await this.indexer(embedder, request, aside)).refresh({ signal: request.signal, onProgress: request.onProgress });
    } catch (err) {
      await fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    // Swap: the old store (if any) goes only after the new one is in place.
    const hadOld = (await storeState(target)) !== 'absent';
    const release = hadOld ? await acquireWriterLock(target) : undefined;
    const trash = `${target}.old-${process.pid}`;
    try {
      if (hadOld) await fs.rename(target, trash);
      else await fs.rm(target, { recursive: true, force: true });
      await fs.rename(aside, target);
    } finally {
      await release?.().catch(() => undefined);
    }
    await fs.rm(trash, { recursive: true, force: true }).catch(() => undefined);
    return { ...summary, storeDir: target };
  }

  // -------------------------------------------------------------------------------------------
  // Searching

  /**
   * The open search of a recipe (cached). With an embedder every mode works; with only an identity
   * (read from the index's manifest), only keyword search, and no model is loaded.
   */
  async openSearch(by: { embedder?: TextEmbedder; identity?: RecipeIdentity }): Promise<WorkspaceSearch> {
    const identity = by.embedder?.identity ?? by.identity;
    if (!identity) throw new Error('openSearch needs an embedder or an identity');
    if (by.embedder && by.identity) {
      const diffs = recipeDifferences(by.identity, by.embedder.identity);
      if (diffs.length) throw new Error(`openSearch: embedder and identity disagree (${diffs.map((d) => d.field).join(', ')})`);
    }
    const storeDir = await this.storeDir(identity);
    const key = `${storeDir}\u0000${by.embedder ? 'model' : 'keywords'}`;
    let s = this.searches.get(key);
    if (!s) {
      s = (async () => {
        if ((await storeState(storeDir)) === 'absent') {
          const others = await describeStored(this.storageDir);
          throw new UserError(
            others.length
              ? `The index of ${path.basename(this.root)} was built with another recipe (${others.join('; ')}), not ${describeIdentity(identity)}.`
              : `${path.basename(this.root)} has no index yet for ${describeIdentity(identity)}.`,
            others.length ? 'Rebuild the index for the current recipe, or change the recipe back.' : 'Index the folder first.',
            { code: 'INDEX_MISSING', root: this.root, storageDir: this.storageDir, others },
          );
        }
        // The index the engine's indexer holds open serves searches too (one store in memory, one HNSW
        // graph, nothing read again after a save), unless a refresh is changing it now or another
        // process committed since (then the committed index is opened from disk).
        const held = this.indexers.get(storeDir);
        const current = () => this.indexers.get(storeDir) === held && !held!.refreshing;
        if (held && current() && held.stamp && held.stamp === (await committedStamp(storeDir))) {
          const { store, catalog, lexical } = held.indexer;
          await store.loadGraph();
          if (current()) return WorkspaceSearch.over({ root: this.root, embedder: by.embedder, identity, store, catalog, lexical, storeDir });
        }
        // The index already open for keywords (a CLI search checks it before loading the model) serves
        // the model's search too, instead of being opened again.
        const keywords = by.embedder ? this.searches.get(`${storeDir}\u0000keywords`) : undefined;
        if (keywords && by.embedder) return (await keywords).withEmbedder(by.embedder);
        return WorkspaceSearch.open({ root: this.root, storageDir: this.storageDir, embedder: by.embedder, identity });
      })();
      this.searches.set(key, s);
      s.catch(() => this.searches.delete(key));
    }
    return s;
  }

  /** Search by meaning, keywords or both. `mode: 'lexical'` works with only the identity (no model). */
  async search(query: string, by: { embedder?: TextEmbedder; identity?: RecipeIdentity }, options: SearchOptions = {}): Promise<SearchHit[]> {
    if (options.mode !== 'lexical' && !by.embedder) throw new Error('A vector or hybrid search needs the model (an embedder).');
    return (await this.openSearch(by)).search(query, options);
  }

  /** Chunks similar to a text or to lines of an indexed file (the range itself left out). */
  async similar(target: SimilarTarget, embedder: TextEmbedder, options: Omit<SearchOptions, 'mode'> = {}): Promise<SearchHit[]> {
    return (await this.openSearch({ embedder })).similar(target, options);
  }

  /** An evenly spaced sample of `limit` indexed chunks with their vectors and a preview (for a map). */
  async sample(identity: RecipeIdentity, limit: number): Promise<IndexSample> {
    const storeDir = await this.storeDir(identity);
    await this.openSearch({ identity }); // INDEX_MISSING / INDEX_DAMAGED as for a search
    const snap = (await VectorStore.open(storeDir)).snapshot();
    const dims = identity.dims;
    const picked = sampleIndices(snap.records.length, Math.max(0, Math.floor(limit)));
    const vectors = new Float32Array(picked.length * dims);
    const lines = new Map<string, Promise<string[]>>();
    const records = await Promise.all(picked.map(async (idx, row) => {
      vectors.set(snap.vectors.subarray(idx * dims, (idx + 1) * dims), row * dims);
      const r = snap.records[idx]!;
      let file = lines.get(r.path);
      if (!file) lines.set(r.path, (file = fs.readFile(path.join(this.root, r.path), 'utf8').then((t) => t.split(/\r?\n/), () => [])));
      const preview = (await file).slice(r.startLine - 1, Math.min(r.endLine, r.startLine + 2)).join('\n');
      return { path: r.path, startLine: r.startLine, endLine: r.endLine, preview };
    }));
    return { vectors, dims, total: snap.records.length, records };
  }

  /** Writes the vectors of a recipe's index to .npy / .h5 / .faiss with `<out>.json` mapping rows to files and lines. */
  async export(identity: RecipeIdentity, options: { format: ExportFormat; out: string; dtype?: 'float32' | 'float16' }): Promise<{ rows: number; files: string[]; storeDir: string }> {
    const storeDir = await this.storeDir(identity);
    await this.openSearch({ identity });
    return { ...(await exportStore(storeDir, options)), storeDir };
  }
}
