// `embedding-lens search <folder> "<query>"`: vector, lexical or hybrid search over an index made by
// `embedding-lens index`; prints `path:start-end  score` and preview lines, or JSON with --json.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { assertSameRecipe, type VectorPooling } from '../core/recipe';
import { dtypeOfFile } from '../core/model/modelSource';
import { DEFAULT_PER_FILE, SEARCH_MODES, type SearchHit, type SearchMode } from '../core/search/search';
import { hitPreviewLines } from '../core/search/hitPreview';
import { parseKinds } from '../core/search/kinds';
import { UserError } from '../core/types';
import { Workspace } from '../core/workspace/workspace';
import { loadModel, MODEL_OPTIONS, searchRecipe } from './index';
import { positiveInt } from './options';
import { checkConnection, postgresStore, searchPostgres, STORE_HELP } from './postgres';
import { selfCommand, stderrLogger } from './terminal';
import { mark } from './timings';

export const summary = 'Search an indexed folder by meaning, by exact words, or both';

const HELP = `Usage: embedding-lens search <folder> "<query>" [options]
       embedding-lens search <folder> --similar <file>:<start>-<end> [options]

Searches the index built by \`embedding-lens index <folder>\`, with the model, layer and pooling
it was built with (read from the index; no option needed). A keyword search (--mode lexical) loads
no model at all.

  -k <n>                  results (default 10)
  --mode <m>              vector | lexical | hybrid (default hybrid: both, scores blended 0.7 / 0.3)
  --per-file <n>          at most n results from one file (default 4)
  --kind <k,...>          only code, docs and/or tests (by path; default all), e.g. --kind code
  --preview <n>           preview lines per result (default 4)
  --similar <file:a-b>    chunks similar to lines a-b of a file (relative to <folder>), by vectors
  --json                  print [{ path, startLine, endLine, score, scoreKind, preview, match? }] on stdout
                          (match: the lines that matched and their first lines, when the result
                          is a whole function)

Scores: vector = cosine similarity (−1…1), lexical = BM25 (unbounded, higher is better),
hybrid = 0.7 × vector + 0.3 × keyword score, each scaled to 0…1 over its candidates (only the order means something).

Choosing an index (when the folder has several, or to check the model)
  --model <id|folder>     the model to embed the query with; refused unless it has the index's weights
  --layer <spec>, --pool <mode>, --no-normalize
                          pick the index built with this recipe
  --offline, --cache-dir <dir>, --threads <n>, --storage <dir>   as for \`index\`
${STORE_HELP}`;

function printHits(hits: SearchHit[], json: boolean, kind: SearchMode | 'similar'): void {
  if (json) {
    const out = hits.map(({ path: p, startLine, endLine, score, preview, match }) => ({ path: p, startLine, endLine, score, scoreKind: SCORE_KINDS[kind], preview, ...(match ? { match } : {}) }));
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(formatHits(hits, kind) + '\n');
  }
}

/** What a score means, by search mode (they are on different scales). */
export const SCORE_KINDS: Readonly<Record<SearchMode | 'similar', string>> = { vector: 'cosine', similar: 'cosine', lexical: 'BM25', hybrid: 'fused' };

export function formatHits(hits: SearchHit[], mode: SearchMode | 'similar' = 'hybrid'): string {
  if (!hits.length) return 'No results.';
  const kind = SCORE_KINDS[mode];
  return hits
    .map((h) => {
      const head = `${h.path}:${h.startLine}-${h.endLine}  ${kind} ${h.score.toFixed(mode === 'lexical' ? 2 : 4)}${h.match ? `  (matched ${h.match.startLine}-${h.match.endLine})` : ''}${h.stale ? '  (file changed since indexing)' : ''}`;
      const preview = hitPreviewLines(h).map((l) => `    ${l}`).join('\n');
      return `${head}\n${preview}`;
    })
    .join('\n\n');
}

function parseRange(spec: string): { path: string; startLine: number; endLine: number } {
  const m = /^(.*):(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) throw new UserError(`--similar expects <file>:<start>-<end>, got "${spec}".`);
  const startLine = Number(m[2]);
  const endLine = m[3] ? Number(m[3]) : startLine;
  if (startLine < 1) throw new UserError(`--similar ${spec}: lines count from 1.`);
  if (endLine < startLine) throw new UserError(`--similar ${spec}: the range ends before it starts.`, `Give the first line, then the last: ${m[1]}:${endLine}-${startLine}.`);
  return { path: m[1]!.split(path.sep).join('/'), startLine, endLine };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      // No defaults: the index's own recipe is used unless these are given.
      model: { type: 'string' },
      layer: { type: 'string' },
      pool: { type: 'string' },
      k: { type: 'string', short: 'k', default: '10' },
      mode: { type: 'string' },
      'per-file': { type: 'string', default: String(DEFAULT_PER_FILE) },
      preview: { type: 'string', default: '4' },
      similar: { type: 'string' },
      kind: { type: 'string' },
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  // Every option is checked before anything is opened or loaded.
  const [folderArg, ...queryParts] = positionals;
  if (!folderArg) throw new UserError('Give the indexed folder and a query.', 'Usage: embedding-lens search <folder> "<query>"');
  const query = queryParts.join(' ');
  if (values.similar && query.trim()) throw new UserError('Give either a query or --similar, not both.');
  if (!values.similar && !query.trim()) throw new UserError('The search query is empty.', 'Usage: embedding-lens search <folder> "<query>"');
  const mode = (values.mode ?? 'hybrid') as SearchMode;
  if (!SEARCH_MODES.includes(mode)) throw new UserError(`Unknown --mode "${values.mode}".`, 'Use vector, lexical or hybrid.');
  if (values.similar && values.mode && values.mode !== 'vector') {
    throw new UserError(`--similar finds chunks by vector similarity; --mode ${values.mode} does not apply to it.`, 'Leave out --mode (or give --mode vector), or search for words with a query instead.');
  }
  const target = values.similar ? parseRange(values.similar) : undefined;
  const options = {
    k: positiveInt(values.k, '-k'),
    perFile: positiveInt(values['per-file'], '--per-file'),
    previewLines: positiveInt(values.preview, '--preview'),
    ...(values.kind !== undefined ? { kinds: parseKinds(values.kind) } : {}),
  };
  positiveInt(values.threads, '--threads');
  if (values.pool !== undefined) searchRecipe(values);
  const folder = path.resolve(folderArg);
  const logger = stderrLogger(values.quiet);
  const pgUrl = postgresStore(values.store);
  if (pgUrl) {
    await checkConnection(pgUrl);
    const { extractor, embedder } = await loadModel(values, logger);
    try {
      printHits(await searchPostgres(pgUrl, folder, embedder, target ?? query, { ...options, mode }), values.json, target ? 'similar' : mode);
      return 0;
    } finally {
      await extractor.dispose();
    }
  }
  const workspace = Workspace.at(folder, { storageDir: values.storage, logger });
  const identity = await workspace.indexedRecipe(
    { layer: values.layer, pooling: values.pool as VectorPooling | undefined, ...(values['no-normalize'] ? { normalize: false } : {}) },
    'Choose one with --layer and --pool (and --model).',
  );
  // The index opens (its files read and checked, the HNSW graph read on libuv's thread pool) while the
  // model loads and its ONNX session is made on the main thread; the index's verdict is reported first.
  const opening = workspace.status(identity);
  const needsModel = !!target || mode !== 'lexical';
  // The model the index was built with, unless --model names another copy of the same weights.
  // Its weights file too (an index built with the built-in model's int8 graph is searched with it),
  // unless --model / --model-dtype name others.
  const ownDtype = values.model === undefined && values['model-dtype'] === undefined && !values.quantized ? dtypeOfFile(identity.modelFile) : undefined;
  const loading = needsModel
    ? loadModel({ ...values, model: values.model ?? identity.model, ...(ownDtype ? { 'model-dtype': ownDtype } : {}), layer: identity.layer, pool: identity.pooling, 'no-normalize': !identity.normalize }, logger)
      .then(async (m) => {
        await m.extractor.prepare(m.modelRecipe.recipe).catch(async (err: unknown) => { await m.extractor.dispose(); throw err; });
        return m;
      })
    : undefined;
  loading?.catch(() => undefined); // awaited below, after the index's verdict
  let status;
  try {
    status = await opening;
  } catch (err) {
    await loading?.then((m) => m.extractor.dispose(), () => undefined);
    throw err;
  }
  mark('indexChecked');
  if (!status.complete) logger.warn(`the index is incomplete (an indexing run was interrupted); index the folder again to finish it: ${selfCommand()} index ${folderArg}`);
  let hits: SearchHit[];
  if (!loading) {
    hits = await workspace.search(query, { identity }, { ...options, mode });
  } else {
    const { extractor, embedder } = await loading;
    mark('modelLoaded');
    try {
      assertSameRecipe(identity, embedder.identity, values.model ? `--model ${values.model}` : 'the model it names');
      hits = target ? await workspace.similar(target, embedder, options) : await workspace.search(query, { embedder }, { ...options, mode });
    } finally {
      await extractor.dispose();
    }
  }
  mark('searched');
  printHits(hits, values.json, target ? 'similar' : mode);
  return 0;
}
