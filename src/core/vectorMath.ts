// Small vector math shared by the engine, search and the webview (no Node imports: media/ bundles it).

/**
 * Cosine similarity of two equal-length vectors, summed in float64.
 *
 * A zero vector has no direction, so its cosine is a choice the caller makes, stated at each call:
 * `bothZero` is what two zero vectors give (1 where "the same numbers" is the question, as in the
 * encoder's batch-independence check; 0 where "how alike are these directions" is, as in search).
 * One zero vector and one non-zero vector always give 0.
 */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>, bothZero: 0 | 1): number {
  if (a.length !== b.length) throw new Error(`cosine of vectors of different lengths (${a.length} and ${b.length})`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 && nb === 0) return bothZero;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}
