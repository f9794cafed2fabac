// The default recipe of a model is the model's own: how its sentence-transformers folder says it was
// trained to be used (sentenceTransformersConfig.ts). A person's explicit choice always wins; the
// engine's defaults (recipe.ts) fill only what neither says; the hard-coded prefix table
// (search/prefixes.ts) is the fallback for folders that declare no prompts. Every value carries where it
// came from, so the CLI and the editor can print "pooling cls, from the model's 1_Pooling/config.json".
import { UserError } from '../errors';
import { DEFAULT_RECIPE, prefixesForModel, type Recipe, type TextPrefixes, type VectorPooling } from '../recipe';
import { describeSource, readSentenceTransformersConfig, SentenceTransformersConfigError, type SentenceTransformersConfig } from './sentenceTransformersConfig';

/** What the person chose explicitly (undefined = not chosen: the model's own or the engine's default applies). */
export interface RecipeChoice {
  layer?: string;
  pool?: VectorPooling;
  normalize?: boolean;
  prefixes?: Partial<TextPrefixes>;
}

export interface ModelRecipe {
  recipe: Recipe & { pool: VectorPooling };
  prefixes: TextPrefixes;
  /** Where each value came from, in words ("the model's 1_Pooling/config.json", "your choice", ...). */
  sources: { layer: string; pool: string; normalize: string; query: string; passage: string };
  /** sentence-transformers' max_seq_length, when the model declares one (chunk budgets). */
  maxSeqLength?: number;
  /** The folder's recipe as read (undefined when it has no sentence-transformers files). */
  config?: SentenceTransformersConfig;
}

const CHOSEN = 'your choice';
const ENGINE = 'the engine default';

/**
 * Resolves the recipe for a loaded model. `model` is what the engine knows of it: the folder, the id the
 * person gave (for the prefix table), and whether HF's hidden state L is the model's output.
 * Throws (MODEL_INVALID) when the folder's recipe has parts the engine cannot reproduce and the person
 * has not chosen the pooling themselves.
 */
export function resolveModelRecipe(
  model: { folder: string; model: string; numLayers: number; outputIndex: number },
  choice: RecipeChoice = {},
): ModelRecipe {
  let config: SentenceTransformersConfig | undefined;
  try {
    config = readSentenceTransformersConfig(model.folder);
  } catch (err) {
    if (!(err instanceof SentenceTransformersConfigError)) throw err;
    if (choice.pool === undefined) throw new UserError(err.message, 'Fix or remove the file, or choose the pooling yourself.', { code: 'MODEL_INVALID', model: model.model });
  }
  if (config && !config.hasModules && config.pooling === undefined && !config.queryPrompt && !config.documentPrompt && config.maxSeqLength === undefined) config = undefined;
  if (config?.unsupported.length && choice.pool === undefined) {
    throw new UserError(
      `The model's sentence-transformers recipe has parts Embedding Lens cannot reproduce: ${config.unsupported.join('; ')}.`,
      'Vectors made without them would not be the model\'s. Choose the pooling (and layer) yourself to use the engine\'s recipe instead.',
      { code: 'MODEL_INVALID', model: model.model },
    );
  }

  // The model's own output is what sentence-transformers pools: "output". Where HF's hidden state L is
  // that same tensor (post-norm encoders, decoders) the engine's "last" names it and is kept, so
  // existing indexes keep their recipe; where it is not (ModernBERT), the default is "output".
  const ownLayer = model.outputIndex === model.numLayers ? DEFAULT_RECIPE.layer : 'output';
  const layer = choice.layer ?? (config?.pooling ? ownLayer : DEFAULT_RECIPE.layer);
  const layerSource = choice.layer !== undefined ? CHOSEN : config?.pooling ? `the model's output (what its ${config.pooling.file} pools)` : ENGINE;

  const pool: VectorPooling = choice.pool ?? config?.pooling?.value ?? DEFAULT_RECIPE.pool;
  const poolSource = choice.pool !== undefined ? CHOSEN : config?.pooling ? describeSource(config.pooling).replace(/^from /, '') : ENGINE;

  // Search compares by cosine, so the engine normalizes unless told not to; the model's Normalize module is named when it agrees.
  const normalize = choice.normalize ?? DEFAULT_RECIPE.normalize;
  const normalizeSource = choice.normalize !== undefined ? CHOSEN : config?.normalize?.value ? "the model's modules.json (Normalize)" : ENGINE;

  const table = prefixesForModel(model.model);
  const prompt = (own: SentenceTransformersConfig['queryPrompt'], chosen: string | undefined, fallback: string) => {
    if (chosen !== undefined) return { value: chosen, source: CHOSEN };
    if (own) return { value: own.value, source: describeSource(own).replace(/^from /, '') };
    if (config?.hasModules && (config.queryPrompt || config.documentPrompt)) return { value: '', source: "the model's config_sentence_transformers.json (none for this side)" };
    return { value: fallback, source: fallback ? `the built-in prefix table for "${model.model}"` : 'none' };
  };
  const query = prompt(config?.queryPrompt, choice.prefixes?.query, table.query);
  const passage = prompt(config?.documentPrompt, choice.prefixes?.passage, table.passage);

  return {
    recipe: { layer, pool, normalize },
    prefixes: { query: query.value, passage: passage.value },
    sources: { layer: layerSource, pool: poolSource, normalize: normalizeSource, query: query.source, passage: passage.source },
    maxSeqLength: config?.maxSeqLength?.value,
    config,
  };
}

/** Lines for the log: "pooling cls, from the model's 1_Pooling/config.json (pooling_mode_cls_token)". */
export function describeModelRecipe(r: ModelRecipe): string[] {
  const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
  return [
    `layer ${r.recipe.layer}, from ${r.sources.layer}`,
    `pooling ${r.recipe.pool}, from ${r.sources.pool}`,
    `${r.recipe.normalize ? 'normalized' : 'not normalized'}, from ${r.sources.normalize}`,
    `query prefix ${r.prefixes.query ? quote(r.prefixes.query) : 'none'}${r.sources.query !== 'none' ? `, from ${r.sources.query}` : ''}`,
    `document prefix ${r.prefixes.passage ? quote(r.prefixes.passage) : 'none'}${r.sources.passage !== 'none' ? `, from ${r.sources.passage}` : ''}`,
  ];
}
