// Shared types of the engine. Plain data only: no vscode, no native modules.
// The extractor produces these; the stores, the indexer, the CLI and the host consume them.

/** How token vectors are reduced to one vector (or kept per token / per word). */
export type PoolingMode = 'mean' | 'max' | 'cls' | 'last' | 'none' | 'words';
/** How the subword pieces of one word are combined when `pool` is `words`. */
export type WordPooling = 'first' | 'last' | 'mean' | 'first_last';
export type OutputDType = 'float32' | 'float16';

/** Everything that decides what a vector means. Two vectors are comparable only if their recipes match. */
export interface Recipe {
  /** Layer spec string: `last`, `-2`, `mean(-4..-1)`, `-1,-2`, `all`, ... (see core/extract/layers.ts) */
  layer: string;
  pool: PoolingMode;
  /** Only for `pool: 'words'`. Default `mean`. */
  wordPool?: WordPooling;
  /** L2-normalize every output row. Default false. */
  normalize?: boolean;
  /** Leave [CLS]/[SEP]-like tokens out of mean/max pooling. Default false (as sentence-transformers). */
  excludeSpecialTokens?: boolean;
}

export interface ExtractOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Cut inputs longer than the model's max length instead of windowing them (reported in the result). */
  truncate?: boolean;
  /** Tokens shared by consecutive windows of a long input. Default: a quarter of the window. */
  windowOverlap?: number;
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

/** The identity of a recipe applied to one model: what a store or an index file must match. */
export interface RecipeIdentity {
  model: string;
  modelHash: string;
  layer: string;
  pooling: PoolingMode;
  wordPooling?: WordPooling;
  normalize: boolean;
  dims: number;
}

/**
 * What the indexer and search need from the engine: pooled vectors for texts with one fixed recipe.
 * Implemented by `Extractor.embedder(recipe)`.
 */
export interface TextEmbedder {
  readonly identity: RecipeIdentity;
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

/** An error whose message is meant for the user: the CLI prints only the message, the host shows it. */
export class UserError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(hint ? `${message}\n${hint}` : message);
    this.name = 'UserError';
  }
}

export const TOOL_VERSION = '0.1.0';
