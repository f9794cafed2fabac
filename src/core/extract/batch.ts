// Batch planning: padding is where CPU time goes (a batch costs as much as batch × its longest
// sequence, and attention grows with the square of it), so sequences are sorted by length and packed
// under a token budget, each batch padded only to its own longest member.

export interface BatchLimits {
  /** Upper bound on batch × padded length. */
  maxTokens: number;
  /** Upper bound on sequences per batch. */
  maxBatchSize: number;
}

// Measured with bench/extract.ts on real code chunks (MiniLM shape, CPU): budgets of 512–2048 tokens
// cost ~20% less CPU than 4096 or 8192 (large batches pad more and their attention tensors fall out
// of cache), and 1024 keeps padding near 2%.
export const DEFAULT_LIMITS: BatchLimits = { maxTokens: 1024, maxBatchSize: 32 };

/**
 * Groups sequence indices into batches. Longest first, so a batch that is too big for memory fails
 * on the first try rather than at the end. Returns batches of indices into `lengths`.
 */
export function planBatches(lengths: ArrayLike<number>, limits: BatchLimits = DEFAULT_LIMITS): number[][] {
  const order = Array.from({ length: lengths.length }, (_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let padded = 0;
  for (const i of order) {
    const len = Math.max(1, lengths[i]);
    // Sorted descending: the first member of a batch sets its padded length.
    const width = current.length ? padded : len;
    if (current.length && ((current.length + 1) * width > limits.maxTokens || current.length >= limits.maxBatchSize)) {
      batches.push(current);
      current = [];
    }
    if (!current.length) padded = len;
    current.push(i);
  }
  if (current.length) batches.push(current);
  return batches;
}

/** Padded tokens / real tokens of a plan (1.0 = no padding at all). */
export function paddingRatio(lengths: ArrayLike<number>, batches: number[][]): number {
  let real = 0;
  let padded = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const i of batch) {
      real += lengths[i];
      longest = Math.max(longest, lengths[i]);
    }
    padded += longest * batch.length;
  }
  return real ? padded / real : 1;
}

/** ONNX Runtime reports allocation failures with these phrases (CPU and CUDA providers). */
export function isOutOfMemory(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /failed to allocate|bad_alloc|bad allocation|out of memory|OOM|Cannot allocate memory/i.test(message);
}
