// `embedding-lens extract`: texts in, vectors out (.npy / .h5 / .faiss, or JSON on stdout),
// with the manifest written beside the file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Extractor } from '../core/extract/extractor';
import { DEFAULT_RECIPE, isPoolingMode, isVectorPooling, isWordPooling, POOLING_MODES, validateRecipe, VECTOR_POOLINGS, WORD_POOLINGS, type Recipe } from '../core/recipe';
import { describeModelRecipe } from '../core/model/modelRecipe';
import { parseModelDtype } from '../core/model/modelSource';
import { UserError, type ExtractResult } from '../core/types';
import { checkText, SKIP_REASON_TEXT } from '../core/index/files';
import { writeExtraction, outputFormatOf } from '../core/outputs';
import { runAttention } from './attention';
import { resolveShard, runShard, type ShardRunOptions } from '../core/extract/shard';
import { nonNegativeInt, outputDType, positiveInt } from './options';
import { count, stderrLogger, progressReporter, signalFromSigint } from './terminal';

export const summary = 'Embed texts with any layer and pooling; write .npy, .h5, .faiss or JSON';

const HELP = `Usage: embedding-lens extract --model <hub id | folder> (--text "..." ... | --input <file>) --out <file | ->

Model
  --model <id|folder>     Hugging Face model id (downloaded once into the cache) or a local model folder
                          with config.json, tokenizer.json and onnx/model.onnx
  --offline               never use the network; a hub id must already be cached
  --model-dtype <dtype>   weights variant, as transformers.js names them: fp32 (onnx/model.onnx, default),
                          fp16, q8 (model_quantized), int8, uint8, q4, q4f16, bnb4 (onnx/model_<dtype>.onnx)
  --quantized             same as --model-dtype q8
  --cache-dir <dir>       where downloaded models live (default ~/.cache/embedding-lens/models)
  --threads <n>           ONNX Runtime intra-op threads (default: one per core)

Recipe
  --layer <spec>          embeddings | first | middle | last | <index> (negative from the end) |
                          -1,-2 (concatenate) | mean(-4..-1) | all | output (the model's
                          last_hidden_state) | sentence (the graph's own sentence_embedding)
                          (default: the model's output where its sentence-transformers files say
                          how to pool it, else last)
  --pool <mode>           mean | max | cls | last | none (token vectors) | words (default: the model's
                          own, from 1_Pooling/config.json, else ${DEFAULT_RECIPE.pool}; last = the last real token)
  --word-pool <mode>      ${WORD_POOLINGS.join(' | ')}, for --pool words (default: ${DEFAULT_RECIPE.wordPool})
  --no-normalize          keep rows as the model gives them (default: L2-normalized, as index and search)
  --exclude-special       leave [CLS]/[SEP]-like tokens out of mean / max / none
  --prefix <text>         text put before every input (e.g. "query: " for E5 models)

Input
  --text <text>           a text to embed (repeatable)
  --input <file>          .txt: one text per line; .jsonl: one JSON object per line (field "text",
                          see --field); "-" reads lines from stdin
  --field <name>          JSON field holding the text (default: text)

Long inputs and batching
  --max-tokens <n>        token budget of one batch (batch size × padded length, default 1024)
  --window-overlap <n>    tokens shared by consecutive windows of a long input (default: 1/4 window)
  --truncate              cut long inputs to the model's maximum instead of windowing (reported)

Output
  --out <file|->          .npy, .h5 or .faiss; "-" prints JSON to stdout. <file>.json gets the manifest.
  --dtype <t>             float32 (default) or float16 (.npy; h5wasm cannot write float16 HDF5)
  --quiet                 no progress on stderr

Attention
  --attention             write attention probabilities instead of vectors, for one text: with
                          --layer <k> (Hugging Face output_attentions numbering: 0 = first encoder
                          layer, -1 = last; also first | middle | last) an array [heads, tokens, tokens],
                          with --layer all [layers, heads, tokens, tokens]; to .npy (+ manifest) or "-"

Sharding (many processes or machines; join the parts with \`embedding-lens merge\`)
  --shard <K/N>           embed shard K of N (K = 0…N-1): inputs floor(K·n/N) … floor((K+1)·n/N)-1,
                          written to <out>.shard-0000K-of-0000N.npy (+ .json manifest, .items.jsonl);
                          --out must be .npy. A re-run after a kill resumes from the last checkpoint.
  --shards <N>            with Slurm arrays (SLURM_ARRAY_TASK_ID) or Kubernetes Indexed Jobs
                          (JOB_COMPLETION_INDEX): the shard number comes from the environment
  --checkpoint-every <n>  texts per checkpoint (default 1024)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      offline: { type: 'boolean', default: false },
      quantized: { type: 'boolean', default: false },
      'model-dtype': { type: 'string' },
      'cache-dir': { type: 'string' },
      threads: { type: 'string' },
      layer: { type: 'string' },
      pool: { type: 'string' },
      attention: { type: 'boolean', default: false },
      'word-pool': { type: 'string' },
      // --normalize is the default; the flag is still accepted so older scripts keep working.
      normalize: { type: 'boolean', default: false },
      'no-normalize': { type: 'boolean', default: false },
      'exclude-special': { type: 'boolean', default: false },
      prefix: { type: 'string' },
      text: { type: 'string', multiple: true },
      input: { type: 'string' },
      field: { type: 'string', default: 'text' },
      'max-tokens': { type: 'string' },
      'window-overlap': { type: 'string' },
      truncate: { type: 'boolean', default: false },
      out: { type: 'string' },
      dtype: { type: 'string', default: 'float32' },
      quiet: { type: 'boolean', default: false },
      shard: { type: 'string' },
      shards: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model) throw new UserError('No --model given.', 'Give a Hugging Face id (e.g. Xenova/all-MiniLM-L6-v2) or a local model folder.');
  if (!values.out) throw new UserError('No --out given.', 'Write to a .npy, .h5 or .faiss file, or "-" for JSON on stdout.');
  if (values.text && values.input) throw new UserError('Give either --text or --input, not both.');
  if (!values.text && !values.input) throw new UserError('Nothing to embed: give --text "..." or --input <file>.');
  const dtype = outputDType(values.dtype);
  const shard = resolveShard(values.shard, values.shards);
  if (!shard && values['checkpoint-every']) throw new UserError('--checkpoint-every applies to sharded runs (--shard K/N).');
  if (shard && values.attention) throw new UserError('--attention writes one text\'s attention; it does not take --shard.');
  // A shard always writes .npy (checked by runShard, which names the flag); merge picks the final format.
  const format = values.out === '-' ? 'json' : shard ? 'npy' : outputFormatOf(values.out);

  if (values.attention) {
    const texts = values.text ?? (await readTexts(values.input!, values.field!));
    return runAttention({ ...values, model: values.model, out: values.out, layer: values.layer ?? DEFAULT_RECIPE.layer, texts, dtype, format });
  }
  if (values.out !== '-') {
    const dir = path.dirname(path.resolve(values.out));
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new UserError(`Cannot write --out ${values.out}: the folder ${dir} does not exist.`, 'Create the folder first, or write somewhere else.');
  }
  if (values.normalize && values['no-normalize']) throw new UserError('Give --normalize or --no-normalize, not both.');
  // The recipe is checked before the input is read and the model loaded.
  const pool = values.pool;
  if (pool !== undefined && !isPoolingMode(pool)) throw new UserError(`--pool "${pool}" is not a pooling.`, `Use --pool ${POOLING_MODES.join(' | ')}.`);
  const wordPool = values['word-pool'];
  if (wordPool !== undefined && !isWordPooling(wordPool)) throw new UserError(`--word-pool "${wordPool}" is not a word pooling.`, `Use --word-pool ${WORD_POOLINGS.join(' | ')}.`);
  const modelDtype = parseModelDtype(values['model-dtype'], '--model-dtype');
  if (wordPool && pool !== 'words') throw new UserError('--word-pool only applies with --pool words.');
  if (format === 'faiss' && pool !== undefined && !isVectorPooling(pool)) {
    throw new UserError(`A FAISS index holds one vector per text; --pool ${pool} gives one per ${pool === 'words' ? 'word' : 'token'}.`, `Use --pool ${VECTOR_POOLINGS.join(' | ')}, or write .npy / .h5.`);
  }
  // Checked now with a stand-in for what the model will supply (its own layer / pooling).
  validateRecipe({ layer: values.layer ?? DEFAULT_RECIPE.layer, pool: pool ?? DEFAULT_RECIPE.pool, ...(wordPool ? { wordPool } : {}) });
  const texts = values.text ?? (await readTexts(values.input!, values.field!));

  const logger = stderrLogger(values.quiet);
  const extractor = await Extractor.load({
    model: values.model,
    offline: values.offline,
    quantized: values.quantized,
    modelDtype,
    cacheDir: values['cache-dir'],
    threads: positiveInt(values.threads, '--threads'),
    maxTokensPerBatch: positiveInt(values['max-tokens'], '--max-tokens'),
    logger,
    onDownloadProgress: (e) => logger.progress?.(`downloading ${e.file}: ${e.total ? Math.round((100 * e.loaded) / e.total) : 0}%`),
  });
  const signal = signalFromSigint();
  try {
    // The model's own recipe where the person chose nothing (its 1_Pooling/config.json), printed with its source.
    const own = extractor.modelRecipe({
      ...(values.layer !== undefined ? { layer: values.layer } : {}),
      ...(pool !== undefined ? { pool: (isVectorPooling(pool) ? pool : DEFAULT_RECIPE.pool) } : {}),
      ...(values['no-normalize'] ? { normalize: false } : {}),
    });
    const recipe: Recipe = validateRecipe({
      layer: own.recipe.layer,
      pool: pool ?? own.recipe.pool,
      ...(wordPool ? { wordPool } : {}),
      normalize: !values['no-normalize'],
      excludeSpecialTokens: values['exclude-special'],
    });
    const recipeLines = describeModelRecipe(own).slice(0, 3);
    if (pool !== undefined && !isVectorPooling(pool)) recipeLines[1] = `pooling ${pool}, from your choice`;
    logger.info(`Recipe: ${recipeLines.join('; ')}`);
    if (!values.prefix && (own.prefixes.query || own.prefixes.passage) && own.sources.query !== 'none') {
      logger.info(`The model declares query / document prefixes (${own.sources.query}); extract adds none unless --prefix is given.`);
    }
    const preparing = performance.now();
    await extractor.prepare(recipe);
    logger.info(`ONNX session for layer spec "${recipe.layer}" ready in ${((performance.now() - preparing) / 1000).toFixed(2)} s`);
    if (shard) {
      return await runShardCommand(extractor, { texts, recipe, spec: shard, out: values.out, dtype, prefix: values.prefix, truncate: values.truncate,
        windowOverlap: nonNegativeInt(values['window-overlap'], '--window-overlap'), checkpointEvery: positiveInt(values['checkpoint-every'], '--checkpoint-every'),
        signal, logger }, values.quiet);
    }
    const progress = progressReporter(values.quiet, 'texts');
    const started = performance.now();
    let result: ExtractResult;
    try {
      result = await extractor.extract(texts, recipe, {
        signal,
        onProgress: progress.update,
        truncate: values.truncate,
        windowOverlap: nonNegativeInt(values['window-overlap'], '--window-overlap'),
        prefix: values.prefix,
      });
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    result.manifest.dtype = dtype;
    const truncated = result.items.filter((i) => i.truncated).length;
    const windowed = result.items.filter((i) => i.windows > 1).length;
    if (format === 'json') {
      process.stdout.write(JSON.stringify(toJson(result)) + '\n');
    } else {
      const written = await writeExtraction(values.out, result, { dtype, texts });
      logger.info(`wrote ${result.rows} × ${result.dims} ${dtype} to ${written.join(', ')}`);
    }
    // Tokens embedded: after a --truncate cut, not before it (the cut-off tokens are said apart).
    const tokens = result.items.reduce((a, i) => a + i.embeddedTokens, 0);
    const cutOff = result.items.reduce((a, i) => a + i.tokenCount - i.embeddedTokens, 0);
    logger.info(
      `${count(texts.length, 'text')}, ${count(tokens, 'token')} embedded in ${seconds.toFixed(2)} s (${(texts.length / seconds).toFixed(1)} texts/s)` +
        (windowed ? `; ${count(windowed, 'long text')} split into windows` : '') +
        (truncated ? `; ${count(truncated, 'text')} TRUNCATED to ${extractor.info.maxLength} tokens (--truncate; ${count(cutOff, 'token')} cut off)` : ''),
    );
    return 0;
  } finally {
    await extractor.dispose();
  }
}

async function runShardCommand(extractor: Extractor, options: ShardRunOptions, quiet: boolean): Promise<number> {
  const progress = progressReporter(quiet, 'texts');
  const started = performance.now();
  let r;
  try {
    r = await runShard(extractor, { ...options, onProgress: progress.update });
  } finally {
    progress.stop();
  }
  if (!r.alreadyComplete) {
    const secs = (performance.now() - started) / 1000;
    const fresh = r.rows - r.resumedRows;
    options.logger?.info(`shard ${options.spec.index}/${options.spec.count}: ${r.rows} rows in ${r.file}` +
      (r.resumedRows ? ` (${r.resumedRows} from the interrupted run, ${fresh} now)` : '') + `; ${fresh} texts in ${secs.toFixed(2)} s (${(fresh / secs).toFixed(1)} texts/s)`);
  }
  return 0;
}

function toJson(result: ExtractResult) {
  const rows: number[][] = [];
  for (let r = 0; r < result.rows; r++) rows.push(Array.from(result.data.subarray(r * result.dims, (r + 1) * result.dims)));
  return { manifest: result.manifest, items: result.items, vectors: rows };
}

async function readTexts(input: string, field: string): Promise<string[]> {
  let buffer: Buffer;
  if (input === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    buffer = Buffer.concat(chunks);
  } else {
    try {
      buffer = fs.readFileSync(input);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`Cannot read --input ${input}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message}`);
    }
  }
  // Binary or undecodable input is refused as the indexer refuses such files (no size or line-length
  // limit here: a long list of texts is fine).
  const check = checkText(buffer, { maxFileBytes: Infinity, maxLineLength: Infinity, maxAverageLineLength: Infinity });
  if (!check.ok && (check.reason === 'binary' || check.reason === 'undecodable')) {
    throw new UserError(
      `--input ${input} is not text: ${SKIP_REASON_TEXT[check.reason]}${check.detail ? ` (${check.detail})` : ''}.`,
      'Give a UTF-8 .txt file with one text per line, or a .jsonl file with one JSON object per line.',
    );
  }
  const content = buffer.toString('utf8');
  const lines = content.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const name = input === '-' ? 'stdin' : path.basename(input);
  if (input.endsWith('.jsonl') || input.endsWith('.ndjson')) {
    return lines.map((line, i) => {
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        throw new UserError(`Line ${i + 1} of ${name} is not valid JSON: ${(err as Error).message}`);
      }
      const text = (obj as Record<string, unknown>)?.[field];
      if (typeof text !== 'string') throw new UserError(`Line ${i + 1} of ${name} has no string field "${field}".`, 'Choose the field with --field.');
      if (!text.trim()) throw new UserError(`Line ${i + 1} of ${name}: field "${field}" is empty.`);
      return text;
    });
  }
  lines.forEach((line, i) => {
    if (!line.trim()) throw new UserError(`Line ${i + 1} of ${name} is empty: every line is one text, so blank lines would be empty texts.`, 'Remove the blank lines (rows of the output match lines of the input).');
  });
  if (!lines.length) throw new UserError(`${name} holds no texts.`);
  return lines;
}
