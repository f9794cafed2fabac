// The one place the worker touches the engine (src/core). Everything else in the worker speaks the
// protocol types; this file adapts the engine's Extractor to them.
import { describeModelRecipe } from '../core/model/modelRecipe';
import { parseModelDtype } from '../core/model/modelSource';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Extractor } from '../core/extract/extractor';
import { discoverFiles, readIndexableText } from '../core/index/files';
import type { IndexProgress, RefreshSummary } from '../core/index/indexer';
import { requireVectorPooling } from '../core/recipe';
import { clearStorage } from '../core/workspace/layout';
import { chunkTokensFor, sampleIndices, Workspace } from '../core/workspace/workspace';
import { outputFormatOf, writeExtraction } from '../core/outputs';
import type { SearchHit } from '../core/search/search';
import { neighboursPerLayer, type LayerNeighbours } from '../core/search/layerNeighbours';
import { prefixesForModel } from '../core/search/prefixes';
import { writeFileAtomic } from '../core/store/atomicFile';
import { postgresIndexStatus, PostgresSearch, refreshPostgres } from '../core/store/postgresIndex';
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
  WireAttention,
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
  inspect(text: string, recipe: Pick<Recipe, 'normalize' | 'excludeSpecialTokens'> | undefined, signal: AbortSignal): Promise<WireInspectResult>;
  attention(text: string, signal: AbortSignal): Promise<WireAttention>;
  /** Forgets open searches (their stores were removed or rewritten behind them). */
  dropOpenIndexes(): void;
  /** What a recipe means on this model (the key of its store). */
  identity(recipe: Recipe): RecipeIdentity;
  index(params: IndexParams, run: Run<IndexProgress>): Promise<RefreshSummary>;
  search(params: SearchParams, signal: AbortSignal): Promise<WireSearchHit[]>;
  similar(params: SimilarParams, signal: AbortSignal): Promise<WireSearchHit[]>;
  layerNeighbours(params: SimilarParams & { layers: number[]; candidates?: number }, signal: AbortSignal): Promise<LayerNeighbours>;
  indexPoints(params: IndexTarget & { limit: number }): Promise<IndexPoints>;
  indexStatus(params: IndexTarget): Promise<IndexState>;
  extractToFile(params: ExtractToFileParams, run: Run<ExtractToFileProgress>): Promise<ExtractToFileResult>;
  sweep(params: SweepParams, run: Run<SweepRequestProgress>): Promise<SweepResult>;
  dispose(): Promise<void>;
}

export { clearStorage };

function wireHit(h: SearchHit): WireSearchHit {
  return {
    path: h.path, startLine: h.startLine, endLine: h.endLine, score: h.score, preview: h.preview,
    ...(h.stale ? { stale: true } : {}),
    ...(h.match ? { match: { ...h.match } } : {}),
  };
}

export { sampleIndices };

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
  let maxSeqLength: number | undefined;
  let ownRecipe: LoadedModelInfo['ownRecipe'];
  let ownRecipeProblem: string | undefined;
  try {
    const own = extractor.modelRecipe();
    maxSeqLength = own.maxSeqLength;
    ownRecipe = { layer: own.recipe.layer, pool: own.recipe.pool, normalize: own.recipe.normalize ?? true, lines: describeModelRecipe(own) };
    log.info(`engine: the model's own recipe: ${ownRecipe.lines.join('; ')}`);
  } catch (err) {
    ownRecipeProblem = err instanceof Error ? err.message : String(err);
    log.warn(`engine: ${ownRecipeProblem}`);
  }
  const info: LoadedModelInfo = {
    model: i.model,
    folder: i.folder,
    modelHash: i.modelHash,
    modelType: i.modelType,
    hiddenStates: i.numLayers + 1,
    hiddenSize: i.hiddenSize,
    maxTokens: i.maxLength,
    loadMs: performance.now() - started,
    ...(ownRecipe ? { ownRecipe } : {}),
    ...(ownRecipeProblem !== undefined ? { ownRecipeProblem } : {}),
  };
  log.info(`engine: loaded ${i.model} (${i.modelType}, ${i.numLayers} layers, ${i.hiddenSize} wide, hidden states: ${i.hiddenStateSource}) in ${info.loadMs.toFixed(0)} ms`);
  // One Workspace per indexed folder and storage folder: it owns the layout, the lock and the open searches.
  const workspaces = new Map<string, Workspace>();
  const workspace = (t: { root: string; storageDir: string }): Workspace => {
    const key = `${path.resolve(t.root)}\u0000${path.resolve(t.storageDir)}`;
    let w = workspaces.get(key);
    if (!w) workspaces.set(key, (w = Workspace.at(t.root, { storageDir: t.storageDir, logger: log })));
    return w;
  };
  // Open searches of shared indexes, one per connection string, folder and recipe. One connection runs
  // one transaction at a time, so requests on it are queued (`chain`); a failure closes it (the next
  // request connects again).
  const pgSearches = new Map<string, { open: Promise<PostgresSearch>; chain: Promise<unknown> }>();
  const withPg = async <T>(t: IndexTarget & { store: string }, fn: (s: PostgresSearch) => Promise<T>): Promise<T> => {
    const embedder = extractor.embedder(t.recipe);
    const key = JSON.stringify([t.store, path.resolve(t.root), embedder.identity]);
    let entry = pgSearches.get(key);
    if (!entry) pgSearches.set(key, (entry = { open: PostgresSearch.open({ root: t.root, url: t.store, embedder }), chain: Promise.resolve() }));
    const e = entry;
    const run = e.chain.then(async () => {
      let s: PostgresSearch;
      try {
        s = await e.open;
      } catch (err) {
        if (pgSearches.get(key) === e) pgSearches.delete(key);
        throw err;
      }
      try {
        return await fn(s);
      } catch (err) {
        if (pgSearches.get(key) === e) pgSearches.delete(key);
        await s.close();
        throw err;
      }
    });
    e.chain = run.catch(() => undefined);
    return run;
  };
  const forgetPg = () => {
    for (const e of pgSearches.values()) void e.chain.then(() => e.open).then((x) => x.close(), () => undefined);
    pgSearches.clear();
  };
  const forget = () => {
    workspaces.forEach((w) => w.forget());
    forgetPg();
  };
  // The model's first call costs ~250–400 ms more than the next ones (ONNX Runtime's first run, measured
  // in BENCHMARKS.md, Session 6; a short text absorbs most of it). Made now, in the background, so the
  // first save or search after a load does not wait for it; dispose waits for it.
  const warmUp = (async () => {
    try {
      await extractor.embedder({ layer: 'last', pool: 'mean', normalize: true }).embed(['warm up']);
    } catch (err) {
      log.info(`engine: the model's warm-up call failed (${err instanceof Error ? err.message : String(err)}); the first request makes it instead`);
    }
  })();
  const sharedOnly = (what: string) => new UserError(`${what} works on the local index only, not on a shared PostgreSQL index.`, 'Clear the shared index setting to use it on a local index of this folder.');

  return {
    info,
    extract: (texts, recipe, o) => extractor.extract(texts, recipe, o),
    async inspect(text, recipe, abort) {
      const r = await extractor.inspect(text, { signal: abort, recipe });
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
        pooled: r.pooled,
        pooledRecipe: r.pooledRecipe,
      };
    },
    async attention(text, abort) {
      const layers = Array.from({ length: extractor.info.numLayers }, (_, l) => l);
      const [a] = await extractor.attention([text], layers, { signal: abort, truncate: true });
      const w = a.windows[0];
      return { text, model: extractor.info.model, tokens: w.tokens, words: w.words, layers: layers.length, heads: a.heads, totalTokens: a.tokenCount, truncated: a.truncated, probs: w.probs };
    },
    identity: (recipe) => extractor.identity(recipe),
    dropOpenIndexes: () => forget(),
    async index(p, run) {
      const embedder = extractor.embedder(p.recipe);
      if (p.store) {
        forgetPg();
        return refreshPostgres({
          root: p.root,
          url: p.store,
          embedder,
          chunkTokens: chunkTokensFor(i.maxLength, maxSeqLength),
          discovery: { include: p.include?.length ? p.include : undefined, exclude: p.exclude, ...(p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : {}) },
          textChecks: p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : undefined,
          rebuild: p.rebuild,
          logger: log,
        }, { signal: run.signal, onProgress: run.onProgress });
      }
      const ws = workspace(p);
      const result = await ws.refresh(embedder, {
        rebuild: p.rebuild,
        chunkTokens: chunkTokensFor(i.maxLength, maxSeqLength),
        discovery: {
          include: p.include?.length ? p.include : undefined,
          exclude: p.exclude,
          ...(p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : {}),
        },
        textChecks: p.maxFileBytes ? { maxFileBytes: p.maxFileBytes } : undefined,
        ...(p.checkpointMs ? { checkpointMs: p.checkpointMs } : {}),
        ...(p.paths?.length && !p.rebuild ? { paths: p.paths } : {}),
        signal: run.signal,
        onProgress: run.onProgress,
      });
      if (result.rebuilt) log.info(`index: rebuilt ${result.storeDir} (${result.rebuilt})`);
      // Off the edit path: the answer goes out first, then the delta segments are folded if due.
      setImmediate(() => {
        ws.compactIfNeeded(embedder.identity).catch((err) => log.warn(`Compacting the index failed (the previous version stays): ${err instanceof Error ? err.message : String(err)}`));
      });
      return result;
    },
    async search(p, signal) {
      if (p.store) {
        const store = p.store;
        return (await withPg({ ...p, store }, (s) => s.search(p.query, { mode: p.mode, k: p.k, previewLines: 4, signal, ...(p.kinds?.length ? { kinds: p.kinds } : {}) }))).map(wireHit);
      }
      const hits = await workspace(p).search(p.query, { embedder: extractor.embedder(p.recipe) }, { mode: p.mode, k: p.k, previewLines: 4, signal, ...(p.kinds?.length ? { kinds: p.kinds } : {}) });
      return hits.map(wireHit);
    },
    async similar(p, signal) {
      const target = 'text' in p ? { text: p.text } : { path: p.path, startLine: p.startLine, endLine: p.endLine };
      if (p.store) {
        const store = p.store;
        return (await withPg({ ...p, store }, (s) => s.similar(target, { k: p.k ?? 10, previewLines: 4, signal }))).map(wireHit);
      }
      const hits = await workspace(p).similar(target, extractor.embedder(p.recipe), { k: p.k ?? 10, previewLines: 4, signal });
      return hits.map(wireHit);
    },
    async indexStatus(t) {
      if (t.store) {
        const s = await postgresIndexStatus(t.store, extractor.embedder(t.recipe).identity);
        return s.exists ? { exists: true, complete: true, files: s.files, chunks: s.chunks, others: [] } : { exists: false, others: s.others };
      }
      return workspace(t).indexStatus(extractor.embedder(t.recipe).identity);
    },
    async layerNeighbours(p, signal) {
      if (p.store) throw sharedOnly('Nearest chunks per layer');
      const search = await workspace(p).openSearch({ embedder: extractor.embedder(p.recipe) });
      const target = 'text' in p ? { text: p.text } : { path: p.path, startLine: p.startLine, endLine: p.endLine };
      return neighboursPerLayer({
        root: p.root, search, extractor, recipe: p.recipe, target, layers: p.layers, k: p.k, candidates: p.candidates,
        prefix: prefixesForModel(extractor.info.model).passage || undefined, signal,
      });
    },
    async indexPoints(p) {
      if (p.store) throw sharedOnly('The map of indexed chunks');
      const { vectors, dims, records, total } = await workspace(p).sample(extractor.embedder(p.recipe).identity, p.limit);
      return { vectors, dims, records, total };
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
      await warmUp;
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
