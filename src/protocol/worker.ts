// Messages between the extension host (src/host/engineClient.ts) and the engine worker
// (src/worker/engineWorker.ts). Types only: both sides `import type` this file, so nothing here
// may have a runtime value.
//
// Every request carries an `id`; the worker answers with exactly one `result` or `error` for it,
// and may send any number of `progress` events before that. `cancel` aborts a request (the worker
// then answers with an `error` whose `name` is `AbortError`).
import type { IndexProgress, RefreshSummary } from '../core/index/indexer';
import type { ChunkKind } from '../core/search/kinds';
import type { SearchMode } from '../core/search/search';
import type { ErrorWire } from '../core/errors';
import type { VectorPooling } from '../core/recipe';
import type { SweepProgress, SweepResult } from '../core/sweep/sweep';
import type { NeighbourMap } from '../core/map/neighbourMap';
import type { LayerNeighbours } from '../core/search/layerNeighbours';
import type { EmbeddingManifest, ItemInfo, OutputDType, ProgressEvent, Recipe, TokenInfo, WordInfo } from '../core/types';

/** What the worker needs to open a model. Plain data, built by the host from the settings. */
export interface EngineLoadOptions {
  /** Hub id or model folder, as the user wrote it. */
  readonly model: string;
  /** True when downloads are not allowed (setting off, or workspace not trusted). */
  readonly offline: boolean;
  /** ONNX intra-op threads; 0 = let the engine decide. */
  readonly threads: number;
  readonly maxTokensPerBatch: number;
  /** Where downloaded models are cached (the extension's global storage). */
  readonly cacheDir?: string;
  /** Weights variant (transformers.js dtype name: fp32, fp16, q8, ...); absent = fp32. */
  readonly modelDtype?: string;
}

export interface EngineStatus {
  /** Node version inside the worker (the extension host's Node). */
  readonly node: string;
  /** The model loaded now, if any. */
  readonly model?: string;
  /** The engine's process id (the extension host's own when it runs as a thread). */
  readonly pid: number;
  /** True when the engine runs in its own process (child_process.fork), not as a thread of the host. */
  readonly ownProcess: boolean;
  /** Resident memory of the engine's process (native memory of ONNX Runtime and hnswlib included). */
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface LoadedModelInfo {
  readonly model: string;
  /** The folder the model was loaded from (the cache folder for a hub id). */
  readonly folder: string;
  readonly modelHash: string;
  readonly modelType: string;
  /** Hidden states the model exposes: embeddings output + one per layer. */
  readonly hiddenStates: number;
  readonly hiddenSize: number;
  readonly maxTokens: number;
  readonly loadMs: number;
  /**
   * The model's own recipe (its sentence-transformers files, else the engine defaults), used for every
   * recipe setting the person has not set; `lines` say where each value came from.
   */
  readonly ownRecipe?: { layer: string; pool: VectorPooling; normalize: boolean; lines: string[] };
  /** Why the model's own recipe could not be used (a part the engine cannot reproduce). */
  readonly ownRecipeProblem?: string;
}

export interface ExtractRequestOptions {
  readonly truncate?: boolean;
  readonly prefix?: string;
}

/** The engine's ExtractResult, as it crosses the thread boundary (`data`'s buffer is transferred). */
export interface WireExtractResult {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dims: number;
  readonly items: ItemInfo[];
  readonly manifest: EmbeddingManifest;
}

/**
 * Every hidden state of one text, for the inspector.
 * `hiddenStates` is layers × tokens × dims, row-major, one buffer (transferred, never copied).
 * Layer 0 is the embeddings output.
 */
export interface WireInspectResult {
  readonly text: string;
  readonly model: string;
  readonly tokens: TokenInfo[];
  readonly words: WordInfo[];
  /** True when the text was cut to the model's maximum length. */
  readonly truncated: boolean;
  readonly layers: number;
  readonly tokenCount: number;
  readonly dims: number;
  readonly hiddenStates: Float32Array;
  /**
   * Pooled vectors computed in core (the same code and numbers as extract): `pooled[p]` is layers × dims,
   * row l = what `extract` writes for this text with layer l, pooling p and `pooledRecipe`. The webview
   * draws and copies these; it never pools itself.
   */
  readonly pooled: Record<VectorPooling, Float32Array>;
  readonly pooledRecipe: { normalize: boolean; excludeSpecialTokens: boolean };
}

/**
 * Attention probabilities of one text, for the inspector: `probs` is layers × heads × tokens × tokens
 * (query rows, key columns; transferred). Layer 0 is the first encoder layer (Hugging Face
 * output_attentions numbering). The tokens are the inspection's: a long text is cut like it.
 */
export interface WireAttention {
  readonly text: string;
  readonly model: string;
  readonly tokens: TokenInfo[];
  readonly words: WordInfo[];
  readonly layers: number;
  readonly heads: number;
  /** Tokens of the whole text (more than `tokens.length` when truncated). */
  readonly totalTokens: number;
  readonly truncated: boolean;
  readonly probs: Float32Array;
}

/** Which folder's index, where it lives, and the recipe whose store is meant. */
export interface IndexTarget {
  /** The workspace folder (absolute path). */
  readonly root: string;
  /** The folder holding this workspace folder's stores (one per recipe). */
  readonly storageDir: string;
  readonly recipe: Recipe;
  /**
   * A shared index in PostgreSQL instead of the local one: the connection string, with the password
   * the host took from its secret storage (never from settings). Absent: the local index.
   */
  readonly store?: string;
}

export interface IndexParams extends IndexTarget {
  readonly include?: string[];
  readonly exclude?: string[];
  readonly maxFileBytes?: number;
  /** Drop this recipe's store first and embed everything again. */
  readonly rebuild?: boolean;
  /** Save what is finished (searchable while indexing goes on) at least this often, in ms. Default: the indexer's. */
  readonly checkpointMs?: number;
  /**
   * Only these files changed (absolute paths: an editor's save): they are re-indexed without walking
   * the folder when the engine can (see RefreshOptions.paths in core/index/indexer.ts); absent: walk.
   */
  readonly paths?: string[];
}

/** The state of a folder's index for one recipe, as search would find it. */
export interface IndexState {
  /** An index for this recipe exists. */
  readonly exists: boolean;
  /** The last refresh ran to the end (false: cancelled, crashed, or one is running now). */
  readonly complete?: boolean;
  readonly files?: number;
  readonly chunks?: number;
  /** Stores of other recipes in the same storage folder, described. */
  readonly others: string[];
}

/** One search result, as it crosses the boundary. Lines are 1-based and inclusive. */
export interface WireSearchHit {
  readonly path: string;
  readonly startLine: number;
  readonly endLine: number;
  readonly score: number;
  readonly preview: string;
  /** The file changed since it was indexed (the preview shows its current lines). */
  readonly stale?: boolean;
  /** When the result is a whole function: the lines of the chunk that matched, and their first lines. */
  readonly match?: { readonly startLine: number; readonly endLine: number; readonly preview: string };
}

export interface SearchParams extends IndexTarget {
  readonly query: string;
  readonly mode: SearchMode;
  readonly k: number;
  /** Only these kinds of chunk (by path); absent = all. */
  readonly kinds?: ChunkKind[];
}

export type SimilarParams = IndexTarget & { k?: number } & ({ text: string } | { path: string; startLine: number; endLine: number });

/** A sample of indexed chunks for the inspector's PCA scatter. `vectors` is records.length × dims (transferred). */
export interface IndexPoints {
  readonly vectors: Float32Array;
  readonly dims: number;
  readonly records: { path: string; startLine: number; endLine: number; preview: string }[];
  /** Chunks in the index (more than records.length when the records are a sample). */
  readonly total: number;
}

/** A UMAP of index vectors, and how well it and the PCA keep each point's k nearest neighbours. */
export type MapProjection = NeighbourMap;

/** Where extraction texts come from: given texts (selection, file), or every indexable file of a folder. */
export type ExtractSource =
  | { kind: 'texts'; texts: string[]; labels?: string[] }
  | { kind: 'folder'; root: string; include?: string[]; exclude?: string[]; maxFileBytes?: number };

export interface ExtractToFileParams {
  readonly source: ExtractSource;
  readonly recipe: Recipe;
  /** Absolute path ending in .npy, .h5 or .faiss. */
  readonly file: string;
  readonly dtype?: OutputDType;
}

export interface ExtractToFileResult {
  /** Every file written (the data file, its manifest, the labels file). */
  readonly files: string[];
  readonly texts: number;
  readonly rows: number;
  readonly dims: number;
  /** Files of a folder left out (binary, too large, …), with the reason. */
  readonly skipped: number;
}

/** Phases of an extraction to a file: reading the folder, then the model (ProgressEvent), then writing. */
export type ExtractToFileProgress = ({ phase: 'read' } & { filesDone: number; filesTotal: number }) | ({ phase: 'embed' } & ProgressEvent) | { phase: 'write' };

/** Phases of a sweep: mining pairs from the folder, then the core sweep's own phases. */
export type SweepRequestProgress = { phase: 'mine'; filesDone: number; filesTotal: number } | SweepProgress;

export interface SweepParams {
  readonly root: string;
  readonly maxPairs?: number;
  readonly seed?: number;
  readonly include?: string[];
  readonly exclude?: string[];
}

/**
 * Request name → its parameters, its result and the progress events it may send. The one table both
 * sides are checked against.
 */
export interface EngineMethods {
  readonly status: { params: Record<string, never>; result: EngineStatus; progress: never };
  readonly load: { params: EngineLoadOptions; result: LoadedModelInfo; progress: never };
  readonly extract: { params: { texts: string[]; recipe: Recipe; options?: ExtractRequestOptions }; result: WireExtractResult; progress: ProgressEvent };
  /** `recipe`: the normalization and special-token choice the pooled vectors follow (the settings' recipe). */
  readonly inspect: { params: { text: string; recipe?: Pick<Recipe, 'normalize' | 'excludeSpecialTokens'> }; result: WireInspectResult; progress: never };
  /** Attention probabilities of every layer and head of one text (cut to the model's maximum, like inspect). */
  readonly attention: { params: { text: string }; result: WireAttention; progress: never };
  readonly unload: { params: Record<string, never>; result: { unloaded: boolean }; progress: never };
  /** Brings a folder's index for the recipe up to date (only new and changed files are embedded). */
  readonly index: { params: IndexParams; result: RefreshSummary; progress: IndexProgress };
  readonly search: { params: SearchParams; result: WireSearchHit[]; progress: never };
  /** Chunks similar to a text, or to a line range of an indexed file (the range itself left out). */
  readonly similar: { params: SimilarParams; result: WireSearchHit[]; progress: never };
  /**
   * The nearest chunks at each of `layers` (hidden-state indices): the `candidates` nearest at the
   * index's layer, re-embedded at every layer (core/search/layerNeighbours.ts).
   */
  readonly layerNeighbours: { params: SimilarParams & { layers: number[]; candidates?: number }; result: LayerNeighbours; progress: never };
  /** Deletes the store of one recipe, or (no recipe) every store in the folder. */
  readonly clearIndex: { params: { storageDir: string; recipe?: Recipe }; result: { removed: string[] }; progress: never };
  readonly indexPoints: { params: IndexTarget & { limit: number }; result: IndexPoints; progress: never };
  /** Whether the recipe's index exists and is complete (no file is read, nothing is written). */
  readonly indexStatus: { params: IndexTarget; result: IndexState; progress: never };
  /** UMAP of vectors (n × dims) and the k-NN preservation of it and of the PCA. Needs no model. */
  readonly mapProjection: { params: { vectors: Float32Array; dims: number; k?: number }; result: MapProjection; progress: never };
  /** Embeds texts and writes them with writeExtraction (.npy / .h5 / .faiss + manifest). */
  readonly extractToFile: { params: ExtractToFileParams; result: ExtractToFileResult; progress: ExtractToFileProgress };
  /** Mines query → target pairs from the folder and scores every layer × pooling on them. */
  readonly sweep: { params: SweepParams; result: SweepResult; progress: SweepRequestProgress };
}
export type EngineMethod = keyof EngineMethods;

/** A request as sent: one member per method, discriminated by `method`. */
export type WorkerRequest = {
  [M in EngineMethod]: { type: 'request'; id: number; method: M; params: EngineMethods[M]['params'] };
}[EngineMethod];

export type ToWorker = WorkerRequest | { type: 'cancel'; id: number };

/**
 * An error as it crosses the boundary: `name` keeps UserError / AbortError apart, `code` and `facts`
 * say what kind of problem it is (core/errors.ts), so the host picks its action without reading text.
 */
export type WireError = ErrorWire;

/** Model download progress, per file, bytes (from the engine's model resolver). */
export interface DownloadProgress {
  readonly file: string;
  readonly loaded: number;
  readonly total: number;
  readonly status: 'downloading' | 'done';
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; method: EngineMethod; result: EngineMethods[EngineMethod]['result'] }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'progress'; id: number; progress: EngineMethods[EngineMethod]['progress'] }
  | { type: 'downloadProgress'; id: number; progress: DownloadProgress }
  | { type: 'log'; level: LogLevel; message: string };
