// `embedding-lens search <folder> "<query>"`: vector, lexical or hybrid search over an index made by
// `embedding-lens index`; prints `path:start-end  score` and preview lines, or JSON with --json.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SEARCH_MODES, WorkspaceSearch, type SearchHit, type SearchMode } from '../core/search/search';
import { UserError } from '../core/types';
import { loadModel, MODEL_HELP, MODEL_OPTIONS, storageFor } from './index';
import { positiveInt } from './options';
import { checkConnection, postgresStore, searchPostgres, STORE_HELP } from './postgres';
import { stderrLogger } from './terminal';

export const summary = 'Search an indexed folder by meaning, by exact words, or both';

const HELP = `Usage: embedding-lens search <folder> "<query>" [options]
       embedding-lens search <folder> --similar <file>:<start>-<end> [options]

Searches the index built by \`embedding-lens index <folder>\` (use the same model, layer and pooling).

  -k <n>                  results (default 10)
  --mode <m>              vector | lexical | hybrid (default hybrid: both, fused by reciprocal rank)
  --per-file <n>          at most n results from one file (default 2)
  --preview <n>           preview lines per result (default 4)
  --similar <file:a-b>    chunks similar to lines a-b of a file (relative to <folder>)
  --json                  print [{ path, startLine, endLine, score, preview }] on stdout

${MODEL_HELP}
${STORE_HELP}`;

export function formatHits(hits: SearchHit[]): string {
  if (!hits.length) return 'No results.';
  return hits
    .map((h) => {
      const head = `${h.path}:${h.startLine}-${h.endLine}  ${h.score.toFixed(4)}${h.stale ? '  (file changed since indexing)' : ''}`;
      const preview = h.preview.split('\n').map((l) => `    ${l}`).join('\n');
      return `${head}\n${preview}`;
    })
    .join('\n\n');
}

function parseRange(spec: string): { path: string; startLine: number; endLine: number } {
  const m = /^(.*):(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) throw new UserError(`--similar expects <file>:<start>-<end>, got "${spec}".`);
  const startLine = Number(m[2]);
  return { path: m[1]!.split(path.sep).join('/'), startLine, endLine: m[3] ? Number(m[3]) : startLine };
}

function printHits(hits: SearchHit[], json: boolean): void {
  if (json) {
    const out = hits.map(({ path: p, startLine, endLine, score, preview }) => ({ path: p, startLine, endLine, score, preview }));
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(formatHits(hits) + '\n');
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTIONS,
      k: { type: 'string', short: 'k', default: '10' },
      mode: { type: 'string', default: 'hybrid' },
      'per-file': { type: 'string', default: '2' },
      preview: { type: 'string', default: '4' },
      similar: { type: 'string' },
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [folderArg, ...queryParts] = positionals;
  if (!folderArg) throw new UserError('Give the indexed folder and a query.', 'Usage: embedding-lens search <folder> "<query>"');
  const query = queryParts.join(' ');
  if (!values.similar && !query.trim()) throw new UserError('The search query is empty.', 'Usage: embedding-lens search <folder> "<query>"');
  const mode = values.mode as SearchMode;
  if (!SEARCH_MODES.includes(mode)) throw new UserError(`Unknown --mode "${values.mode}".`, 'Use vector, lexical or hybrid.');
  const folder = path.resolve(folderArg);
  const logger = stderrLogger(values.quiet);
  const pgUrl = postgresStore(values.store);
  if (pgUrl && values.similar) throw new UserError('--similar is not available with --store yet.', 'Search the shared index with a query text.');
  if (pgUrl) await checkConnection(pgUrl);
  const { extractor, embedder } = await loadModel(values, logger);
  try {
    if (pgUrl) {
      const hits = await searchPostgres(pgUrl, folder, embedder, query, {
        mode, k: positiveInt(values.k, '-k'), perFile: positiveInt(values['per-file'], '--per-file'), previewLines: positiveInt(values.preview, '--preview'),
      });
      printHits(hits, values.json);
      return 0;
    }
    const search = await WorkspaceSearch.open({ root: folder, storageDir: storageFor(folder, values.storage), embedder });
    const status = search.status();
    if (!status.complete) logger.warn('the index is incomplete (an indexing run was interrupted); run `embedding-lens index` again to finish it.');
    const options = {
      k: positiveInt(values.k, '-k'),
      perFile: positiveInt(values['per-file'], '--per-file'),
      previewLines: positiveInt(values.preview, '--preview'),
    };
    const hits = values.similar
      ? await search.similar(parseRange(values.similar), options)
      : await search.search(query, { ...options, mode });
    printHits(hits, values.json);
    return 0;
  } finally {
    await extractor.dispose();
  }
}
