// The recipe: everything that decides what a vector means — model, layer(s), pooling, normalization,
// prefixes. This file is its one home: the vocabulary (pooling modes, word poolings), the defaults,
// validation, the identity that makes two stores compatible, the key a store folder is named by, and
// the words a person reads. The CLI, the worker, the host, the webview and the stores import it.
// No Node modules here: the webview (a browser bundle) imports this file too. The store folder a
// recipe is kept in (its key) is part of the storage layout: core/workspace/layout.ts.
import { UserError } from './errors';

export { prefixesForModel, type TextPrefixes } from './search/prefixes';

/** How token vectors are reduced: one vector per text (mean, max, cls, last), or kept per token / word. */
export const POOLING_MODES = ['mean', 'max', 'cls', 'last', 'none', 'words'] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];

/** Poolings that give ONE vector per text: the only ones an index, a search or a FAISS file can hold. */
export const VECTOR_POOLINGS = ['mean', 'max', 'cls', 'last'] as const satisfies readonly PoolingMode[];
export type VectorPooling = (typeof VECTOR_POOLINGS)[number];

/** How the subword pieces of one word are combined when the pooling is `words`. */
export const WORD_POOLINGS = ['first', 'last', 'mean', 'first_last'] as const;
export type WordPooling = (typeof WORD_POOLINGS)[number];

/** One line per pooling, for pickers and help texts. */
export const POOLING_DESCRIPTIONS: Readonly<Record<PoolingMode, string>> = {
  mean: 'Mean of the token vectors (mask-aware).',
  max: 'Element-wise max over tokens.',
  cls: 'The first token ([CLS] / <s>).',
  last: 'The last token.',
  none: 'No pooling: one vector per token (extraction only).',
  words: 'One vector per word, from its subword pieces (see Word Pooling; extraction only).',
};

/** Short names for a pooling, as the inspector labels them. */
export const POOLING_LABELS: Readonly<Record<PoolingMode, string>> = {
  mean: 'mean', max: 'max', cls: 'first token', last: 'last token', none: 'per token', words: 'per word',
};

/** Everything that decides what a vector means. Two vectors are comparable only if their recipes match. */
export interface Recipe {
  /** Layer spec string: `last`, `-2`, `mean(-4..-1)`, `-1,-2`, `all`, ... (see core/extract/layers.ts) */
  readonly layer: string;
  readonly pool: PoolingMode;
  /** Only for `pool: 'words'`. Default `mean`. */
  readonly wordPool?: WordPooling;
  /**
   * L2-normalize every output row. Every command and the extension default to true
   * (DEFAULT_RECIPE); in the engine's own API an absent value means false (raw vectors).
   */
  readonly normalize?: boolean;
  /** Leave [CLS]/[SEP]-like tokens out of mean/max/none pooling. Default false (as sentence-transformers). */
  readonly excludeSpecialTokens?: boolean;
}

/** The product defaults: `extract`, `index`, `search` and the extension settings all start here. */
export const DEFAULT_RECIPE = {
  layer: 'last',
  pool: 'mean',
  wordPool: 'mean',
  normalize: true,
  excludeSpecialTokens: false,
} as const satisfies Required<Recipe>;

/** The identity of a recipe applied to one model: what a store or an index file must match. */
export interface RecipeIdentity {
  /** Hub id or folder as the user gave it: for display only, never compared (see `modelHash`). */
  readonly model: string;
  /** sha256 (16 hex) of the ONNX weights: THE model identity (a symlink, a moved folder, a cache copy match). */
  readonly modelHash: string;
  readonly layer: string;
  readonly pooling: PoolingMode;
  readonly wordPooling?: WordPooling;
  readonly normalize: boolean;
  /** Absent = false. */
  readonly excludeSpecialTokens?: boolean;
  readonly dims: number;
  /**
   * Provenance, not identity (never compared, not in the key): the hidden-state indices the layer
   * spec resolved to, how they combine, and the ONNX file, so an exported index can say them. Absent
   * in stores written before they were recorded.
   */
  readonly layers?: readonly number[];
  readonly layerCombine?: 'single' | 'concat' | 'mean';
  readonly modelFile?: string;
}

// ---------------------------------------------------------------------------------------------
// Validation

export function isPoolingMode(value: unknown): value is PoolingMode {
  return typeof value === 'string' && (POOLING_MODES as readonly string[]).includes(value);
}

/** True for poolings that give one vector per text (not `none` / `words`). */
export function isVectorPooling(value: unknown): value is VectorPooling {
  return typeof value === 'string' && (VECTOR_POOLINGS as readonly string[]).includes(value);
}

export function isWordPooling(value: unknown): value is WordPooling {
  return typeof value === 'string' && (WORD_POOLINGS as readonly string[]).includes(value);
}

/** "a, b or c" */
export function listChoices(values: readonly string[]): string {
  return values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

/**
 * Refuses a pooling that gives one vector per token or word where one vector per text is needed.
 * `purpose` completes "… needs one vector per text", e.g. "an index", "a FAISS file".
 */
export function requireVectorPooling(pool: PoolingMode, purpose = 'an index or a search'): asserts pool is VectorPooling {
  if (!isVectorPooling(pool)) {
    throw new UserError(
      `Pooling "${pool}" gives one vector per ${pool === 'words' ? 'word' : 'token'}; ${purpose} needs one vector per text.`,
      `Choose ${listChoices(VECTOR_POOLINGS)} pooling.`,
    );
  }
}

/**
 * Checks a recipe's words (not its layer spec, which needs the model: see parseLayerSpec) and returns
 * it. With `oneVector`, per-token and per-word poolings are refused (see requireVectorPooling).
 */
export function validateRecipe<R extends Recipe>(recipe: R, options: { oneVector?: string } = {}): R {
  if (!isPoolingMode(recipe.pool)) {
    throw new UserError(`Unknown pooling "${String(recipe.pool)}".`, `Choose ${listChoices(POOLING_MODES)}.`);
  }
  if (recipe.wordPool !== undefined && !isWordPooling(recipe.wordPool)) {
    throw new UserError(`Unknown word pooling "${String(recipe.wordPool)}".`, `Choose ${listChoices(WORD_POOLINGS)}.`);
  }
  if (recipe.wordPool !== undefined && recipe.pool !== 'words') {
    throw new UserError(`A word pooling ("${recipe.wordPool}") applies only with pooling "words", not "${recipe.pool}".`);
  }
  if (typeof recipe.layer !== 'string' || !recipe.layer.trim()) {
    throw new UserError('The layer spec is empty.', 'Give last, -2, mean(-4..-1), -1,-2 or a layer number.');
  }
  if (options.oneVector !== undefined) requireVectorPooling(recipe.pool, options.oneVector);
  return recipe;
}

/** A recipe with every default filled in (DEFAULT_RECIPE), so it can be shown and compared. */
export function withDefaults(partial: Partial<Recipe> = {}): Recipe {
  const pool = partial.pool ?? DEFAULT_RECIPE.pool;
  return {
    layer: partial.layer?.trim() || DEFAULT_RECIPE.layer,
    pool,
    ...(pool === 'words' ? { wordPool: partial.wordPool ?? DEFAULT_RECIPE.wordPool } : {}),
    normalize: partial.normalize ?? DEFAULT_RECIPE.normalize,
    ...(partial.excludeSpecialTokens ? { excludeSpecialTokens: true } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Identity

/** The identity of `recipe` on a model, given the width of one output row. */
export function identityOf(
  recipe: Recipe,
  model: { model: string; modelHash: string },
  dims: number,
  provenance?: Pick<RecipeIdentity, 'layers' | 'layerCombine' | 'modelFile'>,
): RecipeIdentity {
  return {
    model: model.model,
    modelHash: model.modelHash,
    layer: recipe.layer,
    pooling: recipe.pool,
    ...(recipe.pool === 'words' ? { wordPooling: recipe.wordPool ?? DEFAULT_RECIPE.wordPool } : {}),
    normalize: recipe.normalize ?? false,
    ...(recipe.excludeSpecialTokens ? { excludeSpecialTokens: true } : {}),
    dims,
    ...(provenance?.layers ? { layers: [...provenance.layers] } : {}),
    ...(provenance?.layerCombine ? { layerCombine: provenance.layerCombine } : {}),
    ...(provenance?.modelFile ? { modelFile: provenance.modelFile } : {}),
  };
}

/** The same weights, whatever path or id reached them. */
export function sameModel(a: Pick<RecipeIdentity, 'modelHash'>, b: Pick<RecipeIdentity, 'modelHash'>): boolean {
  return a.modelHash === b.modelHash;
}

export interface RecipeDifference {
  field: 'model' | 'layer' | 'pooling' | 'wordPooling' | 'normalize' | 'excludeSpecialTokens' | 'dims';
  index: unknown;
  request: unknown;
}

/** Field-by-field differences that make vectors of `index` and `request` incomparable (empty = compatible). */
export function recipeDifferences(index: RecipeIdentity, request: RecipeIdentity): RecipeDifference[] {
  const out: RecipeDifference[] = [];
  if (!sameModel(index, request)) {
    const weights = (id: RecipeIdentity) => `${id.model} (${id.modelFile ? `${id.modelFile}, ` : ''}weights ${id.modelHash})`;
    out.push({ field: 'model', index: weights(index), request: weights(request) });
  }
  if (index.layer !== request.layer) out.push({ field: 'layer', index: index.layer, request: request.layer });
  if (index.pooling !== request.pooling) out.push({ field: 'pooling', index: index.pooling, request: request.pooling });
  if ((index.wordPooling ?? null) !== (request.wordPooling ?? null)) out.push({ field: 'wordPooling', index: index.wordPooling, request: request.wordPooling });
  if (index.normalize !== request.normalize) out.push({ field: 'normalize', index: index.normalize, request: request.normalize });
  if (!!index.excludeSpecialTokens !== !!request.excludeSpecialTokens) {
    out.push({ field: 'excludeSpecialTokens', index: !!index.excludeSpecialTokens, request: !!request.excludeSpecialTokens });
  }
  if (index.dims !== request.dims) out.push({ field: 'dims', index: index.dims, request: request.dims });
  return out;
}

/** Same recipe on the same weights (the model's path text does not matter). */
export function sameRecipe(a: RecipeIdentity, b: RecipeIdentity): boolean {
  return recipeDifferences(a, b).length === 0;
}

/**
 * Throws RECIPE_MISMATCH naming every field where `request` differs from the index's recipe.
 * `what` names the request in the message ("the query", "the new vectors").
 */
export function assertSameRecipe(index: RecipeIdentity, request: RecipeIdentity, what = 'this request'): void {
  const differences = recipeDifferences(index, request);
  if (!differences.length) return;
  const text = differences.map((d) => `${d.field}: the index has ${JSON.stringify(d.index)}, ${what} has ${JSON.stringify(d.request)}`);
  throw new UserError(
    `Recipe mismatch (${differences.map((d) => d.field).join(', ')}): ${text.join('; ')}.`,
    'Vectors made with different recipes are never mixed: use the index\'s recipe, or rebuild the index with the new one.',
    { code: 'RECIPE_MISMATCH', differences },
  );
}

// ---------------------------------------------------------------------------------------------
// Words

/** `layer last, mean, normalized` (the recipe without the model). */
export function describeRecipe(recipe: Recipe): string {
  return `layer ${recipe.layer}, ${recipe.pool}${recipe.pool === 'words' ? `/${recipe.wordPool ?? DEFAULT_RECIPE.wordPool}` : ''}` +
    `${recipe.normalize ? ', normalized' : ''}${recipe.excludeSpecialTokens ? ', special tokens left out' : ''}`;
}

/** `<model> (<weights file>) [layer last, mean, normalized, 384 dims]` (the file when the index recorded it: two graphs of one model read apart). */
export function describeIdentity(id: RecipeIdentity): string {
  const recipe: Recipe = { layer: id.layer, pool: id.pooling, wordPool: id.wordPooling, normalize: id.normalize, excludeSpecialTokens: id.excludeSpecialTokens };
  return `${id.model}${id.modelFile ? ` (${id.modelFile})` : ''} [${describeRecipe(recipe)}, ${id.dims} dims]`;
}
