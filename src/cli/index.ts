// `embedding-lens index <folder>`: build or refresh the semantic index of a folder (only new and
// changed files are embedded), with a progress bar on a terminal and a summary at the end.
// Also holds the options and model loading shared by `search` and `demo`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { Extractor } from '../core/extract/extractor';
import { SKIP_REASON_TEXT, type SkipReason } from '../core/index/files';
import type { RefreshOptions, RefreshSummary } from '../core/index/indexer';
import { hasCode } from '../core/errors';
import { storageFor } from '../core/workspace/layout';
import { chunkTokensFor, Workspace, type RefreshRequest } from '../core/workspace/workspace';
import { DEFAULT_RECIPE, describeIdentity, isPoolingMode, isVectorPooling, validateRecipe, VECTOR_POOLINGS } from '../core/recipe';
import { describeModelRecipe, type ModelRecipe, type RecipeChoice } from '../core/model/modelRecipe';
import { DEFAULT_MODEL, dtypeOfFile, MODEL_DTYPES, parseModelDtype } from '../core/model/modelSource';
import { UserError, type TextEmbedder } from '../core/types';
import { count, signalFromSigint, stderrLogger, type CliLogger } from './terminal';
import { positiveInt } from './options';
import { mark } from './timings';
import { checkConnection, indexPostgres, postgresStore, STORE_HELP } from './postgres';

export const summary = 'Index a folder for semantic search (only new and changed files are embedded)';

/**
 * Default model: all-MiniLM-L6-v2, committed in models/ (nothing to download; see its README for why
 * this model and which graph). A Hugging Face id (downloaded once into the cache) or a folder replaces it.
 */
export { DEFAULT_MODEL };

export const MODEL_OPTIONS = {
  model: { type: 'string', default: DEFAULT_MODEL },
  // No defaults here: an absent --layer / --pool means "the model's own recipe" (modelRecipe.ts).
  layer: { type: 'string' },
  pool: { type: 'string' },
  'no-normalize': { type: 'boolean', default: false },
  'model-dtype': { type: 'string' },
  quantized: { type: 'boolean', default: false },
  storage: { type: 'string' },
  offline: { type: 'boolean', default: false },
  'cache-dir': { type: 'string' },
  threads: { type: 'string' },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const MODEL_HELP = `Model and recipe
  --model <id|folder>     Hugging Face id (downloaded once into the cache) or a local model folder
                          (config.json, tokenizer.json, onnx/model.onnx). Default: ${DEFAULT_MODEL},
                          built in (models/${DEFAULT_MODEL}, no download)
  --model-dtype <dtype>   weights variant: ${Object.keys(MODEL_DTYPES).join(' | ')} (onnx/model_<dtype>.onnx,
                          as transformers.js names them). Default: fp32. The built-in ${DEFAULT_MODEL}
                          can use int8 (onnx/model_int8.onnx, made by "npm run model:int8", not shipped:
                          ~1.75x faster, same search quality)
  --quantized             same as --model-dtype q8 (onnx/model_quantized.onnx)
  --layer <spec>          hidden state to use (last, output, -2, mean(-4..-1), ...). Default: the
                          model's output where its sentence-transformers files say how to pool, else last
  --pool <mode>           ${VECTOR_POOLINGS.join(' | ')}. Default: the model's own (1_Pooling/config.json),
                          else ${DEFAULT_RECIPE.pool}
  --no-normalize          keep vectors unnormalized (default: L2-normalized)
  The query / document prompts are the model's own (config_sentence_transformers.json), else a built-in
  table for known families (e5, bge, nomic, ...). The recipe used, and why, is printed when the model loads.
  --offline               never use the network (a hub id must already be cached)
  --cache-dir <dir>       model cache (default ~/.cache/embedding-lens/models)
  --threads <n>           ONNX Runtime threads
Storage
  --storage <dir>         where indexes live (default: <folder>/.embedding-lens, git-ignored);
                          one index per model + layer + pooling, side by side`;

interface ModelValues {
  model?: string;
  layer?: string;
  pool?: string;
  'no-normalize'?: boolean;
  'model-dtype'?: string;
  quantized?: boolean;
  offline?: boolean;
  'cache-dir'?: string;
  threads?: string;
}

export interface LoadedModel {
  extractor: Extractor;
  embedder: TextEmbedder;
  /** Chunk budget: the model's window (special tokens left out), at most 256. */
  chunkTokens: number;
  /** The recipe in use, with where each value came from. */
  modelRecipe: ModelRecipe;
}

/** Loads the model named by the options; a hub failure says how to use a local folder instead. */
/**
 * The recipe of --layer / --pool / --no-normalize, checked before any model is loaded: an index and a
 * search need one vector per text.
 */
export function searchRecipe(values: Pick<ModelValues, 'layer' | 'pool' | 'no-normalize'>): RecipeChoice {
  const pool = values.pool;
  if (pool !== undefined && !isVectorPooling(pool)) {
    throw new UserError(
      isPoolingMode(pool)
        ? `--pool ${pool} gives one vector per ${pool === 'words' ? 'word' : 'token'}; an index and a search need one vector per text.`
        : `--pool "${pool}" is not a pooling.`,
      `Use --pool ${VECTOR_POOLINGS.join(' | ')}.`,
    );
  }
  if (values.layer !== undefined) validateRecipe({ layer: values.layer, pool: pool ?? DEFAULT_RECIPE.pool });
  return {
    ...(values.layer !== undefined ? { layer: values.layer } : {}),
    ...(pool !== undefined ? { pool } : {}),
    ...(values['no-normalize'] ? { normalize: false } : {}),
  };
}

export async function loadModel(values: ModelValues, logger: CliLogger): Promise<LoadedModel> {
  const model = values.model ?? DEFAULT_MODEL;
  const choice = searchRecipe(values);
  const modelDtype = parseModelDtype(values['model-dtype'], '--model-dtype');
  const extractor = await Extractor.load({
      model,
      modelDtype,
      quantized: values.quantized,
      offline: values.offline,
      cacheDir: values['cache-dir'],
      threads: positiveInt(values.threads, '--threads'),
      logger,
      onDownloadProgress: (e) => logger.progress?.(`downloading ${e.file}: ${e.total ? Math.round((100 * e.loaded) / e.total) : 0}%`),
  });
  let modelRecipe: ModelRecipe;
  try {
    modelRecipe = extractor.modelRecipe(choice);
  } catch (err) {
    await extractor.dispose();
    throw err;
  }
  // Which recipe, and why: the person's choice, the model's own files, or the engine's default.
  logger.info(`Recipe: ${describeModelRecipe(modelRecipe).join('; ')}`);
  const embedder = extractor.embedder(modelRecipe.recipe, modelRecipe.prefixes);
  return { extractor, embedder, chunkTokens: chunkTokensFor(extractor.info.maxLength, modelRecipe.maxSeqLength), modelRecipe };
}

export { storageFor };

const HELP = `Usage: embedding-lens index <folder> [options]

Indexes the text and code files of <folder> (respecting .gitignore) for \`embedding-lens search\`.
Run it again to refresh: only new or changed files are embedded, deleted ones are removed; without
--model / --layer / --pool it keeps the recipe of the folder's index. It also repairs a damaged index:
what a refresh can redo is redone, anything else is rebuilt beside the old index, which stays until
the new one is complete (--rebuild does that on request).
Ctrl+C stops after the current batch and keeps what is done.

${MODEL_HELP}
Files
  --include <glob>        only files matching (repeatable), e.g. "src/**/*.ts"
  --exclude <glob>        also leave out files matching (repeatable)
  --no-gitignore          do not apply .gitignore files
  --max-file-size <KiB>   skip larger files (default 1024)
  --max-data-size <KiB>   skip larger data files: JSON, CSV, XML... (default 32; SVG and .log files are always skipped)
  --chunk-tokens <n>      token budget of one chunk (default: min(256, model window))
  --show-skipped          list every skipped file with its reason
  --rebuild               embed every file again into a fresh index for this recipe, built beside
                          the old one (which stays until the new one is complete); with --store, all
                          of this recipe's rows are replaced in one transaction (readers see the old
                          index until it commits), also re-chunking with this run's --chunk-tokens
  --json                  print the summary as JSON on stdout
${STORE_HELP}
  --add-recipe            with --store: create this recipe's index beside another one in the database`;

export function formatSummary(s: RefreshSummary, showSkipped: boolean): string {
  const byReason = new Map<SkipReason, number>();
  for (const k of s.skipped) byReason.set(k.reason, (byReason.get(k.reason) ?? 0) + 1);
  const secs = s.ms / 1000;
  const lines = [
    `Found ${count(s.filesSeen, 'file')}: ${s.filesIndexed} new or changed, ${s.filesUnchanged} unchanged, ${s.filesRemoved} removed.`,
    `Chunks: ${s.chunksTotal} in the index; ${s.chunksEmbedded} embedded now, ${s.chunksReused} reused, ${s.chunksRemoved} removed.`,
    `Time: ${secs.toFixed(1)} s (model ${(s.modelMs / 1000).toFixed(1)} s)` +
      (s.chunksEmbedded ? `, ${(s.chunksEmbedded / Math.max(1e-3, s.modelMs / 1000)).toFixed(1)} chunks/s in the model.` : '.'),
  ];
  if (s.skipped.length) {
    lines.push(`Skipped ${count(s.skipped.length, 'file')}: ${[...byReason].map(([r, n]) => `${SKIP_REASON_TEXT[r]} (${n})`).join(', ')}.`);
    const list = showSkipped ? s.skipped : s.skipped.slice(0, 5);
    for (const k of list) lines.push(`  ${k.path}: ${SKIP_REASON_TEXT[k.reason]}${k.detail ? ` (${k.detail})` : ''}`);
    if (!showSkipped && s.skipped.length > list.length) lines.push(`  … ${s.skipped.length - list.length} more (--show-skipped lists them)`);
  }
  if (s.ignoredCount) lines.push(`Left out by .gitignore, default excludes and globs: ${s.ignoredCount} files and folders.`);
  lines.push(`Index: ${s.storeDir}`);
  return lines.join('\n');
}

/** Runs one refresh with a progress bar on a TTY; Ctrl+C stops after the current batch. */
export async function indexFolder(indexer: { refresh(options: RefreshOptions): Promise<RefreshSummary> }, quiet: boolean): Promise<RefreshSummary> {
  const tty = !quiet && process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: '{bar} {percentage}% | {value}/{total} files | {chunks} chunks embedded | {file}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  const signal = signalFromSigint();
  try {
    return await indexer.refresh({
      signal,
      onProgress: (p) => {
        if (!bar || p.phase === 'discover') return;
        if (!started) { bar.start(Math.max(1, p.filesTotal), 0, { chunks: 0, file: '' }); started = true; }
        const file = p.phase === 'save' ? 'saving…' : (p.path ?? '').slice(-40);
        bar.setTotal(Math.max(1, p.filesTotal));
        bar.update(p.filesDone, { chunks: p.chunksEmbedded, ...(p.path || p.phase === 'save' ? { file } : {}) });
      },
    });
  } finally {
    if (started) bar?.stop();
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      // No default model: an existing index's recipe is used unless one is given.
      model: { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      'no-gitignore': { type: 'boolean', default: false },
      'max-file-size': { type: 'string' },
      'max-data-size': { type: 'string' },
      'chunk-tokens': { type: 'string' },
      'show-skipped': { type: 'boolean', default: false },
      rebuild: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
      'add-recipe': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('Give exactly one folder to index.', 'Usage: embedding-lens index <folder> [--model …]');
  const folder = path.resolve(positionals[0]!);
  if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`Folder "${positionals[0]}" does not exist or is not a folder.`);
  const logger = stderrLogger(values.quiet);
  // Every option is checked before the model loads.
  const maxKiB = positiveInt(values['max-file-size'], '--max-file-size');
  const maxDataKiB = positiveInt(values['max-data-size'], '--max-data-size');
  const textChecks = maxKiB || maxDataKiB ? { ...(maxKiB ? { maxFileBytes: maxKiB * 1024 } : {}), ...(maxDataKiB ? { maxDataBytes: maxDataKiB * 1024 } : {}) } : undefined;
  const chunkTokensOption = positiveInt(values['chunk-tokens'], '--chunk-tokens');
  searchRecipe(values);
  positiveInt(values.threads, '--threads');
  const pgUrl = postgresStore(values.store);
  if (values['add-recipe'] && !pgUrl) throw new UserError('--add-recipe applies to a shared index (--store postgres://…).');
  if (pgUrl) await checkConnection(pgUrl);
  const workspace = Workspace.at(folder, { storageDir: values.storage, logger });
  // Without model or recipe options, a folder that has an index is indexed again with its recipe
  // (so `index <folder>` and `index <folder> --rebuild` need nothing else); else the defaults.
  const given = values.model !== undefined || values.layer !== undefined || values.pool !== undefined || values['no-normalize'];
  let recipeValues: typeof values = { ...values };
  if (!given && !pgUrl) {
    const existing = await workspace.indexedRecipe({}, 'Choose one with --model, --layer and --pool.').catch((err: unknown) => {
      if (hasCode(err, 'INDEX_MISSING', 'INDEX_DAMAGED')) return undefined;
      throw err;
    });
    if (existing) {
      recipeValues = { ...values, model: existing.model, layer: existing.layer, pool: existing.pooling, 'no-normalize': !existing.normalize };
      // Its weights file too (e.g. the built-in model's int8 graph), unless --model-dtype names another.
      const own = dtypeOfFile(existing.modelFile);
      if (values['model-dtype'] === undefined && !values.quantized && own) recipeValues['model-dtype'] = own;
      logger.info(`Recipe of the existing index: ${describeIdentity(existing)}`);
    }
  }
  const { extractor, embedder, chunkTokens } = await loadModel(recipeValues, logger);
  mark('modelLoaded');
  try {
    if (pgUrl) {
      const result = await indexPostgres(pgUrl, folder, embedder, {
        chunkTokens: chunkTokensOption ?? chunkTokens,
        discovery: { include: values.include, exclude: values.exclude, useGitignore: !values['no-gitignore'], ...(maxKiB ? { maxFileBytes: maxKiB * 1024 } : {}) },
        textChecks,
        allowNewRecipe: values['add-recipe'],
        rebuild: values.rebuild,
      }, logger, signalFromSigint());
      if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else if (!values.quiet) process.stderr.write(formatSummary(result, values['show-skipped']) + '\n');
      return 0;
    }
    const request: RefreshRequest = {
      rebuild: values.rebuild,
      chunkTokens: chunkTokensOption ?? chunkTokens,
      discovery: {
        include: values.include,
        exclude: values.exclude,
        useGitignore: !values['no-gitignore'],
        ...(maxKiB ? { maxFileBytes: maxKiB * 1024 } : {}),
      },
      textChecks,
    };
    const result = await indexFolder({ refresh: (o) => workspace.refresh(embedder, { ...request, ...o }) }, values.quiet);
    mark('refreshed');
    if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else if (!values.quiet) process.stderr.write(formatSummary(result, values['show-skipped']) + '\n');
    // After the report: fold the delta segments into a new base when they passed their share.
    if (await workspace.compactIfNeeded(embedder.identity)) logger.info('Compacted the index (its delta segments were folded into a new base).');
    mark('compacted');
    return 0;
  } finally {
    await extractor.dispose();
  }
}
