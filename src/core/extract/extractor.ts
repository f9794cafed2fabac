// The engine's one API: load a model once, then extract pooled vectors (or token / word vectors) of
// any layer selection for many texts, batched and windowed, with progress and cancellation.
import { EncoderModel, type EncoderInfo, type PaddedBatch } from '../model/encoder';
import { resolveModel, type ModelSourceOptions } from '../model/modelSource';
import type { Encoded, EncodedDetail } from '../model/tokenizer';
import { abortError } from '../errors';
import { DEFAULT_RECIPE, identityOf, validateRecipe, VECTOR_POOLINGS, type TextPrefixes, type VectorPooling } from '../recipe';
import { resolveModelRecipe, type ModelRecipe, type RecipeChoice } from '../model/modelRecipe';
import {
  TOOL_VERSION,
  UserError,
  type EmbeddingManifest,
  type ExtractOptions,
  type ExtractResult,
  type ExtractStats,
  type ItemInfo,
  type Recipe,
  type RecipeIdentity,
  type TextEmbedder,
  type TokenInfo,
  type WordInfo,
} from '../types';
import { DEFAULT_LIMITS, isOutOfMemory, planBatches, type BatchLimits } from './batch';
import { parseLayerSpec, selectionDims, type LayerSelection } from './layers';
import { accumulateMax, accumulateSum, l2NormalizeRows, meanOfMatrices, poolWords, type TokenMatrix } from './pool';
import { planWindows, specialFrame, type WindowPlan } from './windows';

export interface ExtractorOptions extends ModelSourceOptions {
  /** Hub id or local folder. */
  model: string;
  /** ONNX Runtime intra-op threads (default: one per core). */
  threads?: number;
  /** Token budget of one batch (batch size × padded length). */
  maxTokensPerBatch?: number;
  maxBatchSize?: number;
  /**
   * Batch texts even when the graph quantises activations dynamically (per tensor): faster, but each
   * text's vector then depends on its batch mates. Default false (one text per call); benchmarks only.
   */
  batchDynamicQuantization?: boolean;
  /** Where passed self-checks are recorded (EncoderOptions.selfCheckDir); false: check in every process. */
  selfCheckDir?: string | false;
}

/** Everything the inspector shows for one text: all hidden states of all tokens. */
export interface Inspection {
  text: string;
  model: string;
  numLayers: number;
  hiddenSize: number;
  tokens: TokenInfo[];
  words: WordInfo[];
  /** [(numLayers + 1) × tokens × hiddenSize], hidden state 0 = embeddings output. */
  hiddenStates: Float32Array;
  truncated: boolean;
  /**
   * The one-vector-per-text poolings of every hidden state: `pooled[p]` is [(numLayers + 1) × hiddenSize],
   * pooled (and normalized) by the same code as extract, so row l equals what `extract` writes for the
   * text with layer l, pooling p and `pooledRecipe` (the inspector shows and copies these rows).
   */
  pooled: Record<VectorPooling, Float32Array>;
  pooledRecipe: { normalize: boolean; excludeSpecialTokens: boolean };
}

/** The parts of a recipe the inspector's pooled vectors follow (its layer and pooling are all of them). */
export type InspectRecipe = Pick<Recipe, 'normalize' | 'excludeSpecialTokens'>;

interface Sequence {
  item: number;
  window: number;
  /** Token positions of the item's encoding that make up this window. */
  positions: Int32Array;
}

/** One input: its encoding and windows (shared by all recipes of a pass). */
interface ItemPlan {
  enc: Encoded | EncodedDetail;
  plan: WindowPlan;
  /** Windows not yet run. */
  remaining: number;
}

/** Pooling state of one input under one recipe. */
interface Accumulator {
  count: number;
  sum?: Float64Array;
  max?: Float32Array;
  first?: Float32Array;
  last?: Float32Array;
  /** Stitched token matrix (none / words), [tokens × width]. */
  tokens?: Float32Array;
}

export class Extractor {
  private readonly limits: BatchLimits;

  private constructor(private readonly encoder: EncoderModel, options: ExtractorOptions) {
    this.limits = {
      maxTokens: options.maxTokensPerBatch ?? DEFAULT_LIMITS.maxTokens,
      // Dynamic (per-tensor) activation quantisation takes its scale over the whole padded batch, so a
      // text's int8 vector would change with its batch mates (pooled cosine down to 0.980 on MiniLM).
      // One sequence per call makes every vector independent of the batch.
      maxBatchSize: encoder.info.dynamicQuantization && !options.batchDynamicQuantization ? 1 : options.maxBatchSize ?? DEFAULT_LIMITS.maxBatchSize,
    };
    if (!(this.limits.maxTokens >= 1) || !(this.limits.maxBatchSize >= 1)) {
      throw new UserError('Max tokens per batch and max batch size must be at least 1.');
    }
  }

  static async load(options: ExtractorOptions): Promise<Extractor> {
    const resolved = await resolveModel(options.model, options);
    const encoder = await EncoderModel.load(resolved, { threads: options.threads, logger: options.logger, selfCheckDir: options.selfCheckDir });
    return new Extractor(encoder, options);
  }

  get info(): EncoderInfo {
    return this.encoder.info;
  }

  /** Resolves a layer spec against this model (throws a UserError that lists what exists). */
  layers(spec: string): LayerSelection {
    return parseLayerSpec(spec, this.info.numLayers, { output: this.info.outputIndex, sentence: this.info.sentenceIndex });
  }

  /** Width of one output row for a recipe. */
  dims(recipe: Recipe): number {
    const base = selectionDims(this.layers(recipe.layer), this.info.hiddenSize);
    return recipe.pool === 'words' && recipe.wordPool === 'first_last' ? 2 * base : base;
  }

  identity(recipe: Recipe): RecipeIdentity {
    const selection = this.layers(validateRecipe(recipe).layer);
    return identityOf(recipe, this.info, this.dims(recipe), { layers: selection.layers, layerCombine: selection.combine, modelFile: this.info.modelFile });
  }

  /** Graph nodes computed for a layer spec (fewer when the graph is cut before the last layer). */
  nodeCount(spec: string): Promise<number> {
    return this.encoder.nodeCount(this.layers(spec).layers);
  }

  /** Builds the ONNX session a recipe needs (graph edit + ORT load), so the first batch does not pay for it. */
  async prepare(recipe: Recipe): Promise<void> {
    await this.encoder.prepare(this.layers(recipe.layer).layers);
  }

  async countTokens(texts: string[]): Promise<number[]> {
    return (await this.encoder.tokenizer.encode(texts)).map((e) => e.ids.length);
  }

  /**
   * The model's own recipe (its sentence-transformers files), with the person's explicit choices on top
   * and each value's source: see core/model/modelRecipe.ts.
   */
  modelRecipe(choice: RecipeChoice = {}): ModelRecipe {
    return resolveModelRecipe(this.info, choice);
  }

  /** `prefixes`: default the model's own prompts, else the built-in table (modelRecipe). */
  embedder(recipe: Recipe, prefixes?: TextPrefixes): TextEmbedder {
    validateRecipe(recipe, { oneVector: 'an index or a search' });
    const identity = this.identity(recipe);
    return {
      identity,
      prefixes: prefixes ?? this.modelRecipe({ pool: recipe.pool as VectorPooling }).prefixes,
      embed: async (texts, options) => (await this.extract(texts, recipe, options)).data,
      countTokens: (texts) => this.countTokens(texts),
    };
  }

  async extract(texts: string[], recipe: Recipe, options: ExtractOptions = {}): Promise<ExtractResult> {
    return (await this.extractMany(texts, [recipe], options))[0];
  }

  /**
   * Several recipes from ONE model pass: each batch runs once with every layer any recipe needs, and
   * each recipe pools from the same hidden states (e.g. every layer × every pooling for a layer sweep).
   */
  async extractMany(texts: string[], recipes: Recipe[], options: ExtractOptions = {}): Promise<ExtractResult[]> {
    const { signal, onProgress } = options;
    signal?.throwIfAborted?.();
    if (!recipes.length) throw new UserError('No recipe given.');
    recipes.forEach((r) => validateRecipe(r));
    const selections = recipes.map((r) => this.layers(r.layer));
    texts.forEach((t, i) => {
      if (typeof t !== 'string' || t.trim() === '') {
        throw new UserError(`Text ${i + 1} of ${texts.length} is empty${typeof t === 'string' && t.length ? ' (only whitespace)' : ''}: there is nothing to embed.`, 'Remove empty lines from the input.');
      }
    });
    const hidden = this.info.hiddenSize;
    const widths = selections.map((sel) => (sel.combine === 'concat' ? sel.layers.length : 1) * hidden);
    const tokenLevel = recipes.some((r) => r.pool === 'none' || r.pool === 'words');
    const started = performance.now();
    const stats: ExtractStats = { tokenizeMs: 0, modelMs: 0, totalMs: 0, batches: 0, realTokens: 0, paddedTokens: 0 };
    const prefix = options.prefix ?? '';
    const inputs = prefix ? texts.map((t) => prefix + t) : texts;
    const encodings: (Encoded | EncodedDetail)[] = tokenLevel
      ? await this.encoder.tokenizer.encodeDetailed(inputs)
      : await this.encoder.tokenizer.encode(inputs);
    stats.tokenizeMs = performance.now() - started;
    signal?.throwIfAborted?.();

    // Windows, then sequences to run.
    const items: ItemPlan[] = [];
    const sequences: Sequence[] = [];
    encodings.forEach((enc, item) => {
      const { prefix: pre, suffix } = specialFrame(enc.special);
      const plan = planWindows(enc.ids.length, pre, suffix, Math.min(this.info.maxLength, options.windowTokens ?? Infinity), options.windowOverlap, options.truncate ?? false);
      plan.windows.forEach((positions, window) => sequences.push({ item, window, positions }));
      items.push({ enc, plan, remaining: plan.windows.length });
    });
    // The graph's sentence_embedding sees one window only: a longer text would need its windows averaged,
    // which is not what the model computes.
    if (this.info.sentenceIndex !== undefined && selections.some((sel) => sel.layers.includes(this.info.sentenceIndex!))) {
      if (recipes.some((r) => r.pool === 'none' || r.pool === 'words')) throw new UserError('Layer "sentence" is one vector per text: use it with pooling mean, max, cls or last (all give that vector).');
      const long = items.findIndex((it) => it.plan.windows.length > 1);
      if (long >= 0) {
        throw new UserError(
          `Text ${long + 1} has ${items[long].enc.ids.length} tokens, more than the ${this.info.maxLength} the graph's sentence_embedding takes at once.`,
          'Cut long texts (the truncate option) or use layer "output" with the model\'s pooling, which windows long texts.',
        );
      }
    }
    const accumulators: Accumulator[][] = recipes.map((recipe, r) => items.map((it) => newAccumulator(recipe, widths[r], it.enc.ids.length)));

    const lengths = sequences.map((s) => s.positions.length);
    const tokensTotal = lengths.reduce((a, b) => a + b, 0);
    let tokensDone = 0;
    let itemsDone = 0;
    onProgress?.({ itemsDone, itemsTotal: texts.length, tokensDone, tokensTotal });

    const runLayers = [...new Set(selections.flatMap((sel) => sel.layers))].sort((a, b) => a - b);
    const consume = (batch: number[], outputs: Float32Array[], seqLen: number) => {
      batch.forEach((s, row) => {
        const seq = sequences[s];
        const item = items[seq.item];
        recipes.forEach((recipe, r) => {
          const selection = selections[r];
          // Left padding: the row's real tokens are its last `length` positions.
          const offset = this.info.paddingSide === 'left' ? seqLen - seq.positions.length : 0;
          const matrices = selection.layers.map((layer): TokenMatrix => ({
            data: outputs[runLayers.indexOf(layer)],
            base: (row * seqLen + offset) * hidden,
            dims: hidden,
            length: seq.positions.length,
          }));
          const parts = selection.combine === 'mean' ? [meanOfMatrices(matrices)] : matrices;
          accumulate(accumulators[r][seq.item], item, seq, parts, recipe, hidden);
        });
        tokensDone += seq.positions.length;
        if (--item.remaining === 0) itemsDone++;
      });
      onProgress?.({ itemsDone, itemsTotal: texts.length, tokensDone, tokensTotal });
    };

    for (const batch of planBatches(lengths, this.limits)) {
      if (signal?.aborted) throw abortError();
      await this.runAdaptive(batch, sequences, items, runLayers, consume, stats);
    }

    const results = recipes.map((recipe, r) => this.finish(texts, prefix.length, items, accumulators[r], selections[r], recipe, widths[r], stats));
    stats.totalMs = performance.now() - started;
    return results;
  }

  /** Runs a batch; if ONNX Runtime cannot allocate it, halves it and retries, down to one sequence. */
  private async runAdaptive(
    batch: number[],
    sequences: Sequence[],
    states: ItemPlan[],
    layers: number[],
    consume: (batch: number[], outputs: Float32Array[], seqLen: number) => void,
    stats: ExtractStats,
  ): Promise<void> {
    const padded = this.pad(batch.map((s) => ({ seq: sequences[s], enc: states[sequences[s].item].enc })));
    try {
      const t0 = performance.now();
      const outputs = await this.encoder.run(padded, layers);
      stats.modelMs += performance.now() - t0;
      stats.batches++;
      stats.paddedTokens += padded.batch * padded.seqLen;
      stats.realTokens += batch.reduce((n, s) => n + sequences[s].positions.length, 0);
      consume(batch, outputs, padded.seqLen);
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
      if (batch.length === 1) {
        throw new UserError(
          `Out of memory running one sequence of ${padded.seqLen} tokens (${(err as Error).message}).`,
          'Free memory, use fewer threads, or a smaller model.',
        );
      }
      const half = Math.ceil(batch.length / 2);
      this.limits.maxBatchSize = Math.max(1, Math.min(this.limits.maxBatchSize, half));
      await this.runAdaptive(batch.slice(0, half), sequences, states, layers, consume, stats);
      await this.runAdaptive(batch.slice(half), sequences, states, layers, consume, stats);
    }
  }

  private pad(rows: { seq: Sequence; enc: Encoded }[]): PaddedBatch {
    const seqLen = Math.max(...rows.map((r) => r.seq.positions.length));
    const size = rows.length * seqLen;
    const ids = new Int32Array(size).fill(this.info.padId);
    const typeIds = new Int32Array(size);
    const mask = new Int32Array(size);
    rows.forEach(({ seq, enc }, b) => {
      // Padding on the tokenizer's side; a pad id equal to the end token is told apart by the mask only.
      const base = b * seqLen + (this.info.paddingSide === 'left' ? seqLen - seq.positions.length : 0);
      seq.positions.forEach((p, k) => {
        ids[base + k] = enc.ids[p];
        typeIds[base + k] = enc.typeIds[p];
        mask[base + k] = 1;
      });
    });
    return { batch: rows.length, seqLen, ids, typeIds, mask };
  }

  private finish(texts: string[], prefixLength: number, plans: ItemPlan[], accumulators: Accumulator[], selection: LayerSelection, recipe: Recipe, width: number, stats: ExtractStats): ExtractResult {
    const rows: Float32Array[] = [];
    const items: ItemInfo[] = [];
    let rowStart = 0;
    let outDims = width;
    accumulators.forEach((state, i) => {
      const { enc: encoding, plan } = plans[i];
      const embeddedTokens = plan.truncated ? plan.windows[0]!.length : encoding.ids.length;
      const info: ItemInfo = { rowStart, rowCount: 1, tokenCount: encoding.ids.length, embeddedTokens, windows: plan.windows.length, truncated: plan.truncated };
      switch (recipe.pool) {
        case 'mean':
        case 'max':
        case 'cls':
        case 'last':
          rows.push(pooledVector(state, recipe.pool, width));
          break;
        case 'none':
        case 'words': {
          const enc = encoding as EncodedDetail;
          const tokens = tokenInfos(enc, prefixLength);
          const kept = tokens.map((_, t) => t).filter((t) => plan.owner[t] >= 0 && !(recipe.pool === 'none' && recipe.excludeSpecialTokens && enc.special[t]));
          const matrix: TokenMatrix = { data: state.tokens!, base: 0, dims: width, length: enc.ids.length };
          if (recipe.pool === 'none') {
            const out = new Float32Array(kept.length * width);
            kept.forEach((t, r) => out.set(state.tokens!.subarray(t * width, (t + 1) * width), r * width));
            rows.push(out);
            info.rowCount = kept.length;
            info.tokens = kept.map((t) => tokens[t]);
          } else {
            const words = wordInfos(tokens, texts[i]).filter((w) => plan.owner[w.firstToken] >= 0 && plan.owner[w.lastToken] >= 0);
            const mode = recipe.wordPool ?? DEFAULT_RECIPE.wordPool;
            rows.push(poolWords(matrix, words, mode));
            outDims = mode === 'first_last' ? 2 * width : width;
            info.rowCount = words.length;
            info.words = words;
            info.tokens = tokens;
          }
          break;
        }
        default:
          assertNever(recipe.pool);
      }
      rowStart += info.rowCount;
      items.push(info);
    });
    const data = new Float32Array(rowStart * outDims);
    let offset = 0;
    for (const r of rows) {
      data.set(r, offset);
      offset += r.length;
    }
    if (recipe.normalize) l2NormalizeRows(data, rowStart, outDims);
    const manifest: EmbeddingManifest = {
      tool: 'embedding-lens',
      toolVersion: TOOL_VERSION,
      model: this.info.model,
      modelHash: this.info.modelHash,
      modelFile: this.info.modelFile,
      layer: recipe.layer,
      layers: selection.layers,
      layerCombine: selection.combine,
      pooling: recipe.pool,
      ...(recipe.pool === 'words' ? { wordPooling: recipe.wordPool ?? DEFAULT_RECIPE.wordPool } : {}),
      normalize: recipe.normalize ?? false,
      excludeSpecialTokens: recipe.excludeSpecialTokens ?? false,
      dims: outDims,
      dtype: 'float32',
      count: rowStart,
      createdAt: new Date().toISOString(),
    };
    return { data, rows: rowStart, dims: outDims, items, manifest, stats };
  }

  /** All hidden states (0..L) of every token of one text, for the inspector. Long texts are cut to the model's maximum (reported). */
  async inspect(text: string, options: { signal?: AbortSignal; recipe?: InspectRecipe } = {}): Promise<Inspection> {
    if (typeof text !== 'string' || text.trim() === '') throw new UserError('The selection is empty: select some text to inspect.');
    const [enc] = await this.encoder.tokenizer.encodeDetailed([text]);
    const { prefix, suffix } = specialFrame(enc.special);
    const plan = planWindows(enc.ids.length, prefix, suffix, this.info.maxLength, undefined, true);
    const positions = plan.windows[0];
    options.signal?.throwIfAborted?.();
    const layers = Array.from({ length: this.info.numLayers + 1 }, (_, i) => i);
    const padded = this.pad([{ seq: { item: 0, window: 0, positions }, enc }]);
    const outputs = await this.encoder.run(padded, layers);
    const T = positions.length;
    const H = this.info.hiddenSize;
    const hiddenStates = new Float32Array(layers.length * T * H);
    outputs.forEach((o, l) => hiddenStates.set(o.subarray(0, T * H), l * T * H));
    const allTokens = tokenInfos(enc, 0);
    const tokens = Array.from(positions, (p) => allTokens[p]);
    const words = wordInfos(tokens, text);
    // Pooled as extractMany pools a text of one window (extract cuts a long text the same way with truncate).
    const pooledRecipe = { normalize: options.recipe?.normalize ?? false, excludeSpecialTokens: options.recipe?.excludeSpecialTokens ?? false };
    const item: ItemPlan = { enc, plan, remaining: 0 };
    const seq: Sequence = { item: 0, window: 0, positions };
    const pooled = {} as Record<VectorPooling, Float32Array>;
    for (const pool of VECTOR_POOLINGS) {
      const recipe: Recipe = { layer: 'all', pool, ...pooledRecipe };
      const rows = new Float32Array(layers.length * H);
      layers.forEach((l) => {
        const acc = newAccumulator(recipe, H, enc.ids.length);
        accumulate(acc, item, seq, [{ data: hiddenStates, base: l * T * H, dims: H, length: T }], recipe, H);
        rows.set(pooledVector(acc, pool, H), l * H);
      });
      if (recipe.normalize) l2NormalizeRows(rows, layers.length, H);
      pooled[pool] = rows;
    }
    return { text, model: this.info.model, numLayers: this.info.numLayers, hiddenSize: H, tokens, words, hiddenStates, truncated: plan.truncated, pooled, pooledRecipe };
  }

  /**
   * Attention probabilities (Hugging Face output_attentions numbering: 0 = first encoder layer) of
   * every window of each text, all run as one padded batch. Each window's matrices cover its real
   * tokens only: [layers.length × heads × T × T], T = the window's tokens.
   */
  async attention(texts: string[], layers: number[], options: { signal?: AbortSignal; truncate?: boolean } = {}): Promise<TextAttention[]> {
    if (!texts.length) throw new UserError('No text given to compute attention for.');
    texts.forEach((t) => {
      if (typeof t !== 'string' || t.trim() === '') throw new UserError('The text is empty: give some text to compute attention for.');
    });
    const encs = await this.encoder.tokenizer.encodeDetailed(texts);
    const plans = encs.map((enc) => {
      const { prefix, suffix } = specialFrame(enc.special);
      return planWindows(enc.ids.length, prefix, suffix, this.info.maxLength, undefined, options.truncate ?? false);
    });
    const rows = plans.flatMap((plan, item) => plan.windows.map((positions, window) => ({ seq: { item, window, positions }, enc: encs[item] })));
    options.signal?.throwIfAborted?.();
    const padded = this.pad(rows);
    const { heads, probs } = await this.encoder.runAttention(padded, layers);
    const S = padded.seqLen;
    const out: TextAttention[] = texts.map((text, item) => ({
      text,
      tokenCount: encs[item].ids.length,
      truncated: plans[item].truncated,
      heads,
      layers: [...layers],
      windows: [],
    }));
    rows.forEach(({ seq, enc }, b) => {
      const T = seq.positions.length;
      const data = new Float32Array(layers.length * heads * T * T);
      probs.forEach((p, l) => {
        for (let h = 0; h < heads; h++) {
          for (let q = 0; q < T; q++) {
            const src = ((b * heads + h) * S + q) * S;
            data.set(p.subarray(src, src + T), ((l * heads + h) * T + q) * T);
          }
        }
      });
      const allTokens = tokenInfos(enc as EncodedDetail, 0);
      const tokens = Array.from(seq.positions, (p) => allTokens[p]);
      out[seq.item].windows.push({ positions: Array.from(seq.positions), tokens, words: wordInfos(tokens, texts[seq.item]), probs: data });
    });
    return out;
  }

  async dispose(): Promise<void> {
    await this.encoder.dispose();
  }
}

/** Attention of one text: one entry per window (one unless the text is longer than the model takes). */
export interface TextAttention {
  text: string;
  /** Tokens of the whole text, special tokens included. */
  tokenCount: number;
  truncated: boolean;
  heads: number;
  /** Attention layers, Hugging Face output_attentions numbering (0 = first encoder layer). */
  layers: number[];
  windows: {
    /** Token positions of the whole encoding that this window holds. */
    positions: number[];
    tokens: TokenInfo[];
    words: WordInfo[];
    /** [layers × heads × T × T], query rows, key columns; T = tokens.length. */
    probs: Float32Array;
  }[];
}

function accumulate(state: Accumulator, item: ItemPlan, seq: Sequence, parts: TokenMatrix[], recipe: Recipe, hidden: number): void {
  const { positions, window } = seq;
  const special = item.enc.special;
  const include = recipe.excludeSpecialTokens
    ? Uint8Array.from(positions, (p) => (special[p] ? 0 : 1))
    : undefined;
  const width = parts.length * hidden;
  switch (recipe.pool) {
    case 'mean': {
      let n = 0;
      parts.forEach((m, k) => { n = accumulateSum(m, state.sum!.subarray(k * hidden, (k + 1) * hidden), include); });
      state.count += n;
      break;
    }
    case 'max': {
      let n = 0;
      parts.forEach((m, k) => { n = accumulateMax(m, state.max!.subarray(k * hidden, (k + 1) * hidden), include); });
      state.count += n;
      break;
    }
    case 'cls':
      if (window === 0) state.first = concatRows(parts, 0, hidden);
      break;
    case 'last':
      if (window === item.plan.windows.length - 1) state.last = concatRows(parts, positions.length - 1, hidden);
      break;
    case 'none':
    case 'words':
      positions.forEach((t, p) => {
        if (item.plan.owner[t] !== window || item.plan.ownerPosition[t] !== p) return;
        parts.forEach((m, k) => {
          const src = m.base + p * hidden;
          state.tokens!.set(m.data.subarray(src, src + hidden), t * width + k * hidden);
        });
      });
      break;
    default:
      assertNever(recipe.pool);
  }
}

/** The one vector of a text from its accumulated state (extract and the inspector both end here). */
function pooledVector(state: Accumulator, pool: VectorPooling, width: number): Float32Array {
  switch (pool) {
    case 'mean':
      return Float32Array.from(state.sum!, (v) => (state.count ? v / state.count : 0));
    case 'max':
      return state.count ? state.max! : new Float32Array(width);
    case 'cls':
      return state.first!;
    case 'last':
      return state.last!;
    default:
      return assertNever(pool);
  }
}

function newAccumulator(recipe: Recipe, width: number, tokens: number): Accumulator {
  const acc: Accumulator = { count: 0 };
  if (recipe.pool === 'mean') acc.sum = new Float64Array(width);
  if (recipe.pool === 'max') acc.max = new Float32Array(width).fill(-Infinity);
  if (recipe.pool === 'none' || recipe.pool === 'words') acc.tokens = new Float32Array(tokens * width);
  return acc;
}

function concatRows(parts: TokenMatrix[], position: number, hidden: number): Float32Array {
  const out = new Float32Array(parts.length * hidden);
  parts.forEach((m, k) => {
    const src = m.base + position * hidden;
    out.set(m.data.subarray(src, src + hidden), k * hidden);
  });
  return out;
}

function tokenInfos(enc: EncodedDetail, prefixLength: number): TokenInfo[] {
  return enc.tokens.map((token, t) => ({
    token,
    id: enc.ids[t],
    start: Math.max(0, enc.offsets[2 * t] - prefixLength),
    end: Math.max(0, enc.offsets[2 * t + 1] - prefixLength),
    special: enc.special[t] === 1,
    word: enc.wordIds[t] >= 0 ? enc.wordIds[t] : null,
  }));
}

/** Groups consecutive tokens with the same word id (from the tokenizer's pre-tokenizer and offsets). */
function wordInfos(tokens: TokenInfo[], text: string): WordInfo[] {
  const words: WordInfo[] = [];
  tokens.forEach((tok, t) => {
    if (tok.word === null) return;
    const last = words[words.length - 1];
    if (last && tokens[last.lastToken].word === tok.word && last.lastToken === t - 1) {
      last.lastToken = t;
      last.end = tok.end;
      last.text = text.slice(last.start, last.end);
    } else {
      words.push({ text: text.slice(tok.start, tok.end), start: tok.start, end: tok.end, firstToken: t, lastToken: t });
    }
  });
  return words;
}

function assertNever(x: never): never {
  throw new Error(`Unhandled case: ${String(x)}`);
}
