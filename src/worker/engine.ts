// The one place the worker touches the engine (src/core). Everything else in the worker speaks the
// protocol types; this file adapts the engine's Extractor to them.
import { describeModelRecipe } from '../core/model/modelRecipe';
import { parseModelDtype } from '../core/model/modelSource';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Extractor } from '../core/extract/extractor';
import { discoverFiles, readIndexableText } from '../core/index/files';
import { WorkspaceIndexer, type IndexProgress, type RefreshSummary } from '../core/index/indexer';
import { describeIdentity, requireVectorPooling } from '../core/recipe';
import { clearStorage, describeStored, storeDirFor } from '../core/workspace/layout';
import { outputFormatOf, writeExtraction } from '../core/outputs';
import { WorkspaceSearch, type SearchHit } from '../core/search/search';
import { VectorStore } from '../core/store/vectorStore';
import { writeFileAtomic } from '../core/store/atomicFile';
import { minePairs } from '../core/sweep/pairs';
import { runSweep, type SweepResult } from '../core/sweep/sweep';
import { UserError, type Logger, type ProgressEvent, type Recipe, type RecipeIdentity } from '../core/types';
import type {
  DownloadProgress,
  EngineLoadOptions,
  ExtractRequestOptions,
  ExtractToFileParams,
  ExtractToFileProgress,
  ExtractToFileResult,
  IndexParams,
  IndexPoints,
  IndexState,
  IndexTarget,
  LoadedModelInfo,
  SearchParams,
  SimilarParams,
  SweepParams,
  SweepRequestProgress,
  WireExtractResult,
  WireInspectResult,
  WireSearchHit,
} from '../protocol/worker';

/** What every long operation takes: the request's abort signal and a progress sink. */
export interface Run<P> {
  signal: AbortSignal;
  onProgress: (p: P) => void;
}

export interface Engine {
  readonly info: LoadedModelInfo;
  extract(
    texts: string[],
    recipe: Recipe,
    options: ExtractRequestOptions & { signal: AbortSignal; onProgress: (p: ProgressEvent) => void },
  ): Promise<WireExtractResult>;
  inspect(text: string, signal: AbortSignal): Promise<WireInspectResult>;
  /** Forgets open searches (their stores were removed or rewritten behind them). */
  dropOpenIndexes(): void;
  /** What a recipe means on this model (the key of its store). */
  identity(recipe: Recipe): RecipeIdentity;
  index(params: IndexParams, run: Run<IndexProgress>): Promise<RefreshSummary>;
  search(params: SearchParams, signal: AbortSignal): Promise<WireSearchHit[]>;
  similar(params: SimilarParams, signal: AbortSignal): Promise<WireSearchHit[]>;
  indexPoints(params: IndexTarget & { limit: number }): Promise<IndexPoints>;
  indexStatus(params: IndexTarget): Promise<IndexState>;
  extractToFile(params: ExtractToFileParams, run: Run<ExtractToFileProgress>): Promise<ExtractToFileResult>;
  sweep(params: SweepParams, run: Run<SweepRequestProgress>): Promise<SweepResult>;
  dispose(): Promise<void>;
}

export { clearStorage };

/** There is no index of this folder for this recipe (`others`: the recipes it does have). */
function indexMissing(root: string, identity: RecipeIdentity, others: string[]): Error {
  return new UserError(
    others.length
      ? `The index of ${path.basename(root)} was built with another recipe (${others.join('; ')}), not ${describeIdentity(identity)}.`
      : `${path.basename(root)} has no index yet for ${describeIdentity(identity)}.`,
    others.length ? 'Rebuild the index for the current recipe, or change the recipe back.' : 'Index the folder first.',
    { code: 'INDEX_MISSING', root, others },
  );
}

function wireHit(h: SearchHit): WireSearchHit {
  const hit: WireSearchHit = { path: h.path, startLine: h.startLine, endLine: h.endLine, score: h.score, preview: h.preview };
  if (h.stale) hit.stale = true;
  return hit;
}

/** Evenly spaced sample of `limit` indices out of `n` (all of them when n ≤ limit). */
export function sampleIndices(n: number, limit: number): number[] {
  if (n <= limit) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: limit }, (_, i) => Math.floor((i * n) / limit));
}

/** Whether the engine can be used in this build; reported by the worker's `status` request. */
export const engineAvailability: { available: boolean; reason?: string } = { available: true };

export async function openEngine(
  options: EngineLoadOptions,
  log: Logger,
  onDownloadProgress: (p: DownloadProgress) => void,
  signal: AbortSignal,
): Promise<Engine> {
  const started = performance.now();
  const extractor = await Extractor.load({
    model: options.model,
    modelDtype: parseModelDtype(options.modelDtype, 'model dtype'),
    offline: options.offline,
    cacheDir: options.cacheDir,
    threads: options.threads > 0 ? options.threads : undefined,
    maxTokensPerBatch: options.maxTokensPerBatch,
    logger: log,
    onDownloadProgress,
  });
  if (signal.aborted) {
    await extractor.dispose();
    signal.throwIfAborted();
  }
  const i = extractor.info;
  const info: LoadedModelInfo = {
    model: i.model,
    folder: i.folder,
    modelHash: i.modelHash,
    modelType: i.modelType,
    hiddenStates: i.numLayers + 1,
    hiddenSize: i.hiddenSize,
    maxTokens: i.maxLength,
    loadMs: performance.now() - started,
  };
  try {
    const own = extractor.modelRecipe();
    info.ownRecipe = { layer: own.recipe.layer, pool: own.recipe.pool, normalize: own.recipe.normalize ?? true, lines: describeModelRecipe(own) };
    log.info(`engine: the model's own recipe: ${info.ownRecipe.lines.join('; ')}`);
  } catch (err) {
    info.ownRecipeProblem = err instanceof Error ? err.message : String(err);
    log.warn(`engine: ${info.ownRecipeProblem}`);
  }
  log.info(`engine: loaded ${i.model} (${i.modelType}, ${i.numLayers} layers, ${i.hiddenSize} wide, hidden states: ${i.hiddenStateSource}) in ${info.loadMs.toFixed(0)} ms`);
  // Chunk budget as the CLI uses it: the model's window without its special tokens, at most 256.
  const chunkTokens = Math.max(16, Math.min(256, i.maxLength - 2));

  // Open searches by store folder, reused across queries (a search-as-you-type list asks many times);
  // dropped whenever that store is written or removed.
  const searches = new Map<string, Promise<WorkspaceSearch>>();
  const forget = (storeDir?: string) => {
    if (storeDir === undefined) searches.clear();
    else searches.delete(storeDir);
  };
  async function openSearch(t: IndexTarget): Promise<WorkspaceSearch> {
    const embedder = extractor.embedder(t.recipe);
    const storeDir = await storeDirFor(path.resolve(t.storageDir), embedder.identity);
    let s = searches.get(storeDir);
    if (!s) {
      s = (async () => {
        if (!(await VectorStore.isStore(storeDir))) throw indexMissing(t.root, embedder.identity, await describeStored(t.storageDir));
        return WorkspaceSearch.open({ root: t.root, storageDir: t.storageDir, embedder });
      })();
      searches.set(storeDir, s);
      s.catch(() => searches.delete(storeDir));
    }
    return s;
  }

  return {
    info,
    extract: (texts, recipe, o) => extractor.extract(texts, recipe, o),
    async inspect(text, abort) {
      const r = await extractor.inspect(text, { signal: abort });
      return {
        text: r.text,
        model: r.model,
        tokens: r.tokens,
        words: r.words,
        truncated: r.truncated,
        layers: r.numLayers + 1,
        tokenCount: r.tokens.length,
        dims: r.hiddenSize,
        hiddenStates: r.hiddenStates,
      };
    },
    identity: (recipe) => extractor.identity(recipe),
    dropOpenIndexes: () => forget(),
    async index(p, run) {
      const embedder = extractor.embedder(p.recipe);
      const storeDir = await storeDirFor(path.resolve(p.storageDir), embedder.identity);
      forget(storeDir);
      if (p.rebuild) {
        const removed = await clearStorage(p.storageDir, embedder.identity);
        if (removed.length) log.info(`rebuild: removed ${removed.join(', ')}`);
      }
      try {
        const indexer = await WorkspaceIndexer.open({
          root: p.root,
          storageDir: p.storageDir,
          embedder,
          chunkTokens,
          discovery: {
            include: p.include?.length ? p.include : undefined,
            exclude: p.exclude,
            ...(p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : {}),
          },
          textChecks: p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : undefined,
          ...(p.checkpointMs ? { checkpointMs: p.checkpointMs } : {}),
          logger: log,
        });
        // A search while indexing reads the store as of the last checkpoint: after each one, the open
        // search is dropped so that the next query sees the files saved since.
        let saving = false;
        const summary = await indexer.refresh({
          signal: run.signal,
          onProgress: (e) => {
            if (saving && e.phase !== 'save') forget(storeDir);
            saving = e.phase === 'save';
            run.onProgress(e);
          },
        });
        // Off the edit path: the answer goes out first, then the delta segments are folded if due.
        setImmediate(() => {
          indexer.compactIfNeeded().catch((err) => log.warn(`Compacting the index failed (the previous version stays): ${err instanceof Error ? err.message : String(err)}`));
        });
        return summary;
      } finally {
        forget(storeDir);
      }
    },
    async search(p, signal) {
      const search = await openSearch(p);
      const hits = await search.search(p.query, { mode: p.mode, k: p.k, previewLines: 4, signal });
      return hits.map(wireHit);
    },
    async similar(p, signal) {
      const search = await openSearch(p);
      const target = 'text' in p ? { text: p.text } : { path: p.path, startLine: p.startLine, endLine: p.endLine };
      const hits = await search.similar(target, { k: p.k ?? 10, previewLines: 4, signal });
      return hits.map(wireHit);
    },
    async indexStatus(t) {
      const embedder = extractor.embedder(t.recipe);
      const storeDir = await storeDirFor(path.resolve(t.storageDir), embedder.identity);
      if (!(await VectorStore.isStore(storeDir))) return { exists: false, others: await describeStored(t.storageDir) };
      const s = (await openSearch(t)).status();
      return { exists: true, complete: s.complete, files: s.files, chunks: s.chunks, others: [] };
    },
    async indexPoints(p) {
      const embedder = extractor.embedder(p.recipe);
      const storeDir = await storeDirFor(path.resolve(p.storageDir), embedder.identity);
      if (!(await VectorStore.isStore(storeDir))) throw indexMissing(p.root, embedder.identity, await describeStored(p.storageDir));
      const snap = (await VectorStore.open(storeDir)).snapshot();
      const dims = embedder.identity.dims;
      const picked = sampleIndices(snap.records.length, Math.max(0, Math.floor(p.limit)));
      const vectors = new Float32Array(picked.length * dims);
      const lines = new Map<string, Promise<string[]>>();
      const records = await Promise.all(picked.map(async (idx, row) => {
        vectors.set(snap.vectors.subarray(idx * dims, (idx + 1) * dims), row * dims);
        const r = snap.records[idx]!;
        let file = lines.get(r.path);
        if (!file) lines.set(r.path, (file = fs.readFile(path.join(p.root, r.path), 'utf8').then((t) => t.split(/\r?\n/), () => [])));
        const preview = (await file).slice(r.startLine - 1, Math.min(r.endLine, r.startLine + 2)).join('\n');
        return { path: r.path, startLine: r.startLine, endLine: r.endLine, preview };
      }));
      return { vectors, dims, records };
    },
    async extractToFile(p, run) {
      const format = outputFormatOf(p.file);
      if (format === 'faiss') requireVectorPooling(p.recipe.pool, 'a FAISS index (save token or word vectors to .npy or .h5)');
      let texts: string[];
      let labels: string[] | undefined;
      let skipped = 0;
      if (p.source.kind === 'texts') {
        texts = p.source.texts;
        labels = p.source.labels;
      } else {
        const src = p.source;
        const found = await discoverFiles(src.root, {
          include: src.include?.length ? src.include : undefined,
          exclude: src.exclude,
          ...(src.maxFileBytes ? { maxFileBytes: src.maxFileBytes } : {}),
          signal: run.signal,
          logger: log,
        });
        skipped = found.skipped.length;
        texts = [];
        labels = [];
        for (const [n, f] of found.files.entries()) {
          run.signal.throwIfAborted();
          const read = await readIndexableText(f.absPath, src.maxFileBytes ? { maxFileBytes: src.maxFileBytes } : {});
          if (read.ok) {
            texts.push(read.text);
            labels.push(f.path);
          } else {
            skipped++;
          }
          run.onProgress({ phase: 'read', filesDone: n + 1, filesTotal: found.files.length });
        }
      }
      if (!texts.length || texts.every((t) => !t.trim())) throw new UserError('There is no text to embed.', p.source.kind === 'folder' ? 'The folder has no indexable text files.' : 'Select some text first.');
      const result = await extractor.extract(texts, p.recipe, { signal: run.signal, onProgress: (e) => run.onProgress({ phase: 'embed', ...e }) });
      run.signal.throwIfAborted();
      run.onProgress({ phase: 'write' });
      await fs.mkdir(path.dirname(p.file), { recursive: true });
      const files = await writeExtraction(p.file, result, { dtype: p.dtype, texts: format === 'h5' ? texts : undefined });
      if (labels) {
        // Row → where its text came from (file path or selection), one per text, in row order of items.
        const labelsFile = `${p.file}.labels.txt`;
        await writeFileAtomic(labelsFile, labels.map((l) => l.replace(/[\r\n]+/g, ' ')).join('\n') + '\n');
        files.push(labelsFile);
      }
      return { files, texts: texts.length, rows: result.rows, dims: result.dims, skipped };
    },
    async sweep(p, run) {
      const mined = await minePairs(p.root, {
        maxPairs: p.maxPairs,
        seed: p.seed,
        discovery: { include: p.include?.length ? p.include : undefined, exclude: p.exclude },
        signal: run.signal,
        logger: log,
        onProgress: (e) => run.onProgress({ phase: 'mine', ...e }),
      });
      log.info(`sweep: ${mined.pairs.length} pairs (${Object.entries(mined.used).map(([k, n]) => `${n} ${k}`).join(', ')}) from ${mined.filesScanned} files`);
      return runSweep({ extractor, pairs: mined.pairs, signal: run.signal, onProgress: run.onProgress });
    },
    async dispose() {
      forget();
      await extractor.dispose();
    },
  };
}

/**
 * A Float32Array whose buffer can be transferred without taking other data with it: if the array is
 * a view into a larger (or shared) buffer, copy it once into its own buffer.
 */
export function ownBuffer(a: Float32Array): Float32Array {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer) return a;
  return a.slice();
}
