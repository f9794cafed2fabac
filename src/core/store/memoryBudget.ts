// How much memory the engine needs for the indexes it holds open: the one place these figures live
// (the extension sizes the engine process's budget from them when the user has not set one, and its
// over-budget warning quotes them). Measured in session 5 (bench/deltaMemory.ts, BENCHMARKS.md, issue 12):
// searching holds about 2 KB per indexed chunk (the HNSW graph is ~1.7 KB of it, 384 dims); a first
// index about 4 KB (its chunks wait in memory, vectors included, until they are folded into the graph,
// and the process keeps what it took); plus about 0.5 GB for the model, ONNX Runtime and the rest.

/** Bytes per indexed chunk held open for search. */
export const SEARCH_BYTES_PER_CHUNK = 2048;
/** Bytes per chunk in a process that made (most of) the index itself: a first index or a rebuild. */
export const FIRST_INDEX_BYTES_PER_CHUNK = 4096;
/** The model, ONNX Runtime, the engine's code and heap without an index (MB). */
export const ENGINE_BASE_MB = 512;
/** The budget when nothing is known (no index open yet), and the least an automatic budget gives (MB). */
export const DEFAULT_ENGINE_BUDGET_MB = 2048;
/** An automatic budget takes at most this share of the machine's memory… */
export const MACHINE_SHARE = 0.75;
/** …but never less than this (MB), on a small machine. */
export const MIN_AUTO_BUDGET_MB = 1024;

export interface OpenIndexSize {
  chunks: number;
  /** The engine embedded most of this index itself (a first index, a rebuild): 4 KB a chunk, not 2. */
  builtHere: boolean;
}

export interface EngineBudget {
  /** The budget (MB). */
  mb: number;
  /** What the open indexes need (MB), before the floor and the machine's cap. */
  neededMb: number;
  /** True when the machine's memory capped the budget below what the indexes need. */
  capped: boolean;
}

/** The memory (MB) an engine needs for these open indexes: ENGINE_BASE_MB plus each index's chunks at its rate. */
export function engineMemoryNeededMb(indexes: readonly OpenIndexSize[]): number {
  const bytes = indexes.reduce((a, i) => a + Math.max(0, i.chunks) * (i.builtHere ? FIRST_INDEX_BYTES_PER_CHUNK : SEARCH_BYTES_PER_CHUNK), 0);
  return Math.ceil(ENGINE_BASE_MB + bytes / (1024 * 1024));
}

/**
 * The engine's memory budget when the user has not set one: what its open indexes need, at least
 * DEFAULT_ENGINE_BUDGET_MB, and at most MACHINE_SHARE of the machine's memory (never under
 * MIN_AUTO_BUDGET_MB). `machineMb`: the machine's total memory (os.totalmem()).
 */
export function autoEngineBudget(indexes: readonly OpenIndexSize[], machineMb: number): EngineBudget {
  const neededMb = engineMemoryNeededMb(indexes);
  const cap = Math.max(MIN_AUTO_BUDGET_MB, Math.floor(machineMb * MACHINE_SHARE));
  const wanted = Math.max(DEFAULT_ENGINE_BUDGET_MB, neededMb);
  return { mb: Math.min(wanted, cap), neededMb, capped: neededMb > cap };
}
