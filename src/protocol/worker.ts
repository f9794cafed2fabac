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
  model: string;
  /** True when downloads are not allowed (setting off, or workspace not trusted). */
  offline: boolean;
  /** ONNX intra-op threads; 0 = let the engine decide. */
  threads: number;
  maxTokensPerBatch: number;
  /** Where downloaded models are cached (the extension's global storage). */
  cacheDir?: string;
  /** Weights variant (transformers.js dtype name: fp32, fp16, q8, ...); absent = fp32. */
  modelDtype?: string;
}

export interface EngineStatus {
  /** Node version inside the worker (the extension host's Node). */
  node: string;
  /** Whether the engine module could be loaded into the worker. */
  engineAvailable: boolean;
  /** Why not, when it could not. */
  engineError?: string;
  /** The model loaded now, if any. */
  model?: string;
  /** The engine's process id (the extension host's own when it runs as a thread). */
  pid: number;
  /** True when the engine runs in its own process (child_process.fork), not as a thread of the host. */
  ownProcess: boolean;
  /** Resident memory of the engine's process (native memory of ONNX Runtime and hnswlib included). */
  rssBytes: number;
  heapUsedBytes: number;
}

export interface LoadedModelInfo {
  model: string;
  /** The folder the model was loaded from (the cache folder for a hub id). */
  folder: string;
  modelHash: string;
  modelType: string;
  /** Hidden states the model exposes: embeddings output + one per layer. */
  hiddenStates: number;
  hiddenSize: number;
  maxTokens: number;
  loadMs: number;
  /**
   * The model's own recipe (its sentence-transformers files, else the engine defaults), used for every
   * recipe setting the person has not set; `lines` say where each value came from.
   */
  ownRecipe?: { layer: string; pool: VectorPooling; normalize: boolean; lines: string[] };
  /** Why the model's own recipe could not be used (a part the engine cannot reproduce). */
  ownRecipeProblem?: string;
}

export interface ExtractRequestOptions {
  truncate?: boolean;
  prefix?: string;
}

/** The engine's ExtractResult, as it crosses the thread boundary (`data`'s buffer is transferred). */
export interface WireExtractResult {
  data: Float32Array;
  rows: number;
  dims: number;
  items: ItemInfo[];
  manifest: EmbeddingManifest;
}

/**
 * Every hidden state of one text, for the inspector.
 * `hiddenStates` is layers × tokens × dims, row-major, one buffer (transferred, never copied).
 * Layer 0 is the embeddings output.
 */
export interface WireInspectResult {
  text: string;
  model: string;
  tokens: TokenInfo[];
  words: WordInfo[];
  /** True when the text was cut to the model's maximum length. */
  truncated: boolean;
  layers: number;
  tokenCount: number;
  dims: number;
  hiddenStates: Float32Array;
  /**
   * Pooled vectors computed in core (the same code and numbers as extract): `pooled[p]` is layers × dims,
   * row l = what `extract` writes for this text with layer l, pooling p and `pooledRecipe`. The webview
   * draws and copies these; it never pools itself.
   */
  pooled: Record<VectorPooling, Float32Array>;
  pooledRecipe: { normalize: boolean; excludeSpecialTokens: boolean };
}

/**
 * Attention probabilities of one text, for the inspector: `probs` is layers × heads × tokens × tokens
 * (query rows, key columns; transferred). Layer 0 is the first encoder layer (Hugging Face
 * output_attentions numbering). The tokens are the inspection's: a long text is cut like it.
 */
export interface WireAttention {
  text: string;
  model: string;
  tokens: TokenInfo[];
  words: WordInfo[];
  layers: number;
  heads: number;
  /** Tokens of the whole text (more than `tokens.length` when truncated). */
  totalTokens: number;
  truncated: boolean;
  probs: Float32Array;
}

/** Which folder's index, where it lives, and the recipe whose store is meant. */
export interface IndexTarget {
  /** The workspace folder (absolute path). */
  root: string;
  /** The folder holding this workspace folder's stores (one per recipe). */
  storageDir: string;
  recipe: Recipe;
  /**
   * A shared index in PostgreSQL instead of the local one: the connection string, with the password
   * the host took from its secret storage (never from settings). Absent: the local index.
   */
  store?: string;
}

export interface IndexParams extends IndexTarget {
  include?: string[];
  exclude?: string[];
  maxFileBytes?: number;
  /** Drop this recipe's store first and embed everything again. */
  rebuild?: boolean;
  /** Save what is finished (searchable while indexing goes on) at least this often, in ms. Default: the indexer's. */
  checkpointMs?: number;
}

/** The state of a folder's index for one recipe, as search would find it. */
export interface IndexState {
  /** An index for this recipe exists. */
  exists: boolean;
  /** The last refresh ran to the end (false: cancelled, crashed, or one is running now). */
  complete?: boolean;
  files?: number;
  chunks?: number;
  /** Stores of other recipes in the same storage folder, described. */
  others: string[];
}

/** One search result, as it crosses the boundary. Lines are 1-based and inclusive. */
export interface WireSearchHit {
  path: string;
  startLine: number;
  endLine: number;
  score: number;
  preview: string;
  /** The file changed since it was indexed (the preview shows its current lines). */
  stale?: boolean;
  /** When the result is a whole function: the lines of the chunk that matched. */
  match?: { startLine: number; endLine: number };
}

export interface SearchParams extends IndexTarget {
  query: string;
  mode: SearchMode;
  k: number;
  /** Only these kinds of chunk (by path); absent = all. */
  kinds?: ChunkKind[];
}

export type SimilarParams = IndexTarget & { k?: number } & ({ text: string } | { path: string; startLine: number; endLine: number });

/** A sample of indexed chunks for the inspector's PCA scatter. `vectors` is records.length × dims (transferred). */
export interface IndexPoints {
  vectors: Float32Array;
  dims: number;
  records: { path: string; startLine: number; endLine: number; preview: string }[];
  /** Chunks in the index (more than records.length when the records are a sample). */
  total: number;
}

/** A UMAP of index vectors, and how well it and the PCA keep each point's k nearest neighbours. */
export type MapProjection = NeighbourMap;

/** Where extraction texts come from: given texts (selection, file), or every indexable file of a folder. */
export type ExtractSource =
  | { kind: 'texts'; texts: string[]; labels?: string[] }
  | { kind: 'folder'; root: string; include?: string[]; exclude?: string[]; maxFileBytes?: number };

export interface ExtractToFileParams {
  source: ExtractSource;
  recipe: Recipe;
  /** Absolute path ending in .npy, .h5 or .faiss. */
  file: string;
  dtype?: OutputDType;
}

export interface ExtractToFileResult {
  /** Every file written (the data file, its manifest, the labels file). */
  files: string[];
  texts: number;
  rows: number;
  dims: number;
  /** Files of a folder left out (binary, too large, …), with the reason. */
  skipped: number;
}

/** Phases of an extraction to a file: reading the folder, then the model (ProgressEvent), then writing. */
export type ExtractToFileProgress = ({ phase: 'read' } & { filesDone: number; filesTotal: number }) | ({ phase: 'embed' } & ProgressEvent) | { phase: 'write' };

/** Phases of a sweep: mining pairs from the folder, then the core sweep's own phases. */
export type SweepRequestProgress = { phase: 'mine'; filesDone: number; filesTotal: number } | SweepProgress;

export interface SweepParams {
  root: string;
  maxPairs?: number;
  seed?: number;
  include?: string[];
  exclude?: string[];
}

/**
 * Request name → its parameters, its result and the progress events it may send. The one table both
 * sides are checked against.
 */
export interface EngineMethods {
  status: { params: Record<string, never>; result: EngineStatus; progress: never };
  load: { params: EngineLoadOptions; result: LoadedModelInfo; progress: never };
  extract: { params: { texts: string[]; recipe: Recipe; options?: ExtractRequestOptions }; result: WireExtractResult; progress: ProgressEvent };
  /** `recipe`: the normalization and special-token choice the pooled vectors follow (the settings' recipe). */
  inspect: { params: { text: string; recipe?: Pick<Recipe, 'normalize' | 'excludeSpecialTokens'> }; result: WireInspectResult; progress: never };
  /** Attention probabilities of every layer and head of one text (cut to the model's maximum, like inspect). */
  attention: { params: { text: string }; result: WireAttention; progress: never };
  unload: { params: Record<string, never>; result: { unloaded: boolean }; progress: never };
  /** Brings a folder's index for the recipe up to date (only new and changed files are embedded). */
  index: { params: IndexParams; result: RefreshSummary; progress: IndexProgress };
  search: { params: SearchParams; result: WireSearchHit[]; progress: never };
  /** Chunks similar to a text, or to a line range of an indexed file (the range itself left out). */
  similar: { params: SimilarParams; result: WireSearchHit[]; progress: never };
  /**
   * The nearest chunks at each of `layers` (hidden-state indices): the `candidates` nearest at the
   * index's layer, re-embedded at every layer (core/search/layerNeighbours.ts).
   */
  layerNeighbours: { params: SimilarParams & { layers: number[]; candidates?: number }; result: LayerNeighbours; progress: never };
  /** Deletes the store of one recipe, or (no recipe) every store in the folder. */
  clearIndex: { params: { storageDir: string; recipe?: Recipe }; result: { removed: string[] }; progress: never };
  indexPoints: { params: IndexTarget & { limit: number }; result: IndexPoints; progress: never };
  /** Whether the recipe's index exists and is complete (no file is read, nothing is written). */
  indexStatus: { params: IndexTarget; result: IndexState; progress: never };
  /** UMAP of vectors (n × dims) and the k-NN preservation of it and of the PCA. Needs no model. */
  mapProjection: { params: { vectors: Float32Array; dims: number; k?: number }; result: MapProjection; progress: never };
  /** Embeds texts and writes them with writeExtraction (.npy / .h5 / .faiss + manifest). */
  extractToFile: { params: ExtractToFileParams; result: ExtractToFileResult; progress: ExtractToFileProgress };
  /** Mines query → target pairs from the folder and scores every layer × pooling on them. */
  sweep: { params: SweepParams; result: SweepResult; progress: SweepRequestProgress };
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
  file: string;
  loaded: number;
  total: number;
  status: 'downloading' | 'done';
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; method: EngineMethod; result: EngineMethods[EngineMethod]['result'] }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'progress'; id: number; progress: EngineMethods[EngineMethod]['progress'] }
  | { type: 'downloadProgress'; id: number; progress: DownloadProgress }
  | { type: 'log'; level: LogLevel; message: string };
