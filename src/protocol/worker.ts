// Messages between the extension host (src/host/engineClient.ts) and the engine worker
// (src/worker/engineWorker.ts). Types only: both sides `import type` this file, so nothing here
// may have a runtime value.
//
// Every request carries an `id`; the worker answers with exactly one `result` or `error` for it,
// and may send any number of `progress` events before that. `cancel` aborts a request (the worker
// then answers with an `error` whose `name` is `AbortError`).
import type { EmbeddingManifest, ItemInfo, ProgressEvent, Recipe, TokenInfo, WordInfo } from '../core/types';

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
}

/** Request name → its parameters and its result. The one table both sides are checked against. */
export interface EngineMethods {
  status: { params: Record<string, never>; result: EngineStatus };
  load: { params: EngineLoadOptions; result: LoadedModelInfo };
  extract: { params: { texts: string[]; recipe: Recipe; options?: ExtractRequestOptions }; result: WireExtractResult };
  inspect: { params: { text: string }; result: WireInspectResult };
  unload: { params: Record<string, never>; result: { unloaded: boolean } };
}
export type EngineMethod = keyof EngineMethods;

/** A request as sent: one member per method, discriminated by `method`. */
export type WorkerRequest = {
  [M in EngineMethod]: { type: 'request'; id: number; method: M; params: EngineMethods[M]['params'] };
}[EngineMethod];

export type ToWorker = WorkerRequest | { type: 'cancel'; id: number };

/** An error as it crosses the boundary: `name` keeps UserError / AbortError apart. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  hint?: string;
}

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
  | { type: 'progress'; id: number; progress: ProgressEvent }
  | { type: 'downloadProgress'; id: number; progress: DownloadProgress }
  | { type: 'log'; level: LogLevel; message: string };
