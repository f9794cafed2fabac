// Shared types of the engine. Plain data only: no vscode, no native modules.
// The extractor produces these; the stores, the indexer, the CLI and the host consume them.

import type { PoolingMode, WordPooling, RecipeIdentity, TextPrefixes } from './recipe';

// The recipe's vocabulary lives in ./recipe, errors in ./errors; re-exported here for existing imports.
export type { PoolingMode, WordPooling, VectorPooling, Recipe, RecipeIdentity } from './recipe';
export { UserError, type ErrorCode } from './errors';

export type OutputDType = 'float32' | 'float16';

export interface ExtractOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Cut inputs longer than the model's max length instead of windowing them (reported in the result). */
  truncate?: boolean;
  /** Tokens shared by consecutive windows of a long input. Default: a quarter of the window. */
  windowOverlap?: number;
  /** Tokens per window, special tokens included (default and upper bound: the model's max length). */
  windowTokens?: number;
  /** Prefix added before each text (e.g. E5's `query: `). Offsets stay relative to the original text. */
  prefix?: string;
}

export interface ProgressEvent {
  itemsDone: number;
  itemsTotal: number;
  tokensDone: number;
  tokensTotal: number;
}

/** One token of an input, as the tokenizer produced it. Offsets are UTF-16 indices into the input text. */
export interface TokenInfo {
  token: string;
  id: number;
  start: number;
  end: number;
  special: boolean;
  /** Index of the word this token belongs to, or null for special tokens. */
  word: number | null;
}

export interface WordInfo {
  text: string;
  start: number;
  end: number;
  /** Token indices [first, last] (inclusive) in the item's token list. */
  firstToken: number;
  lastToken: number;
}

/** What one input text became. */
export interface ItemInfo {
  /** First row of this item in `data`. */
  rowStart: number;
  /** Rows of this item: 1 for pooled modes, tokens or words for `none` / `words`. */
  rowCount: number;
  /** Tokens of the whole input, special tokens included (as the model saw them, before windowing). */
  tokenCount: number;
  /** Tokens the model embedded: `tokenCount`, or fewer when `truncate` cut the input. */
  embeddedTokens: number;
  /** How many windows the input was split into (1 if it fit). */
  windows: number;
  /** True when the input was cut to the model's max length (only with `truncate`). */
  truncated: boolean;
  /** For `none`: one entry per row. For `words`: the tokens behind the words. */
  tokens?: TokenInfo[];
  /** For `words`: one entry per row. */
  words?: WordInfo[];
}

/** Identifies the vectors' meaning; written next to every file we produce. */
export interface EmbeddingManifest {
  tool: 'embedding-lens';
  toolVersion: string;
  /** Hub id or folder path as the user gave it. */
  model: string;
  /** sha256 of the ONNX file (first 16 hex chars), so a changed model folder is detected. */
  modelHash: string;
  modelFile: string;
  layer: string;
  /** Hidden-state indices the spec resolved to (0 = embeddings output). */
  layers: number[];
  layerCombine: 'single' | 'concat' | 'mean';
  pooling: PoolingMode;
  wordPooling?: WordPooling;
  normalize: boolean;
  excludeSpecialTokens: boolean;
  dims: number;
  dtype: OutputDType;
  /** Vectors (rows) in the file: one per text when pooled, one per token or word for `none` / `words`. */
  count: number;
  createdAt: string;
}

export interface ExtractResult {
  /** rows × dims, row-major. */
  data: Float32Array;
  rows: number;
  dims: number;
  items: ItemInfo[];
  manifest: EmbeddingManifest;
  stats: ExtractStats;
}

/** Where the time of one extraction went, and how much padding the batches carried. */
export interface ExtractStats {
  tokenizeMs: number;
  /** Time inside ONNX Runtime (tensor creation and session.run). */
  modelMs: number;
  totalMs: number;
  batches: number;
  realTokens: number;
  paddedTokens: number;
}

/**
 * What the indexer and search need from the engine: pooled vectors for texts with one fixed recipe.
 * Implemented by `Extractor.embedder(recipe)`.
 */
export interface TextEmbedder {
  readonly identity: RecipeIdentity;
  /** The model's query / document prefixes (its own prompts, else the built-in table): see core/model/modelRecipe.ts. */
  readonly prefixes?: TextPrefixes;
  embed(texts: string[], options?: ExtractOptions): Promise<Float32Array>;
  countTokens(texts: string[]): Promise<number[]>;
}

/** Minimal logger the engine writes to; the host adapts it to a LogOutputChannel, the CLI to stderr. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

export const TOOL_VERSION = '0.1.0';
