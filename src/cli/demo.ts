// `embedding-lens demo`: the README's main job in one command — index this repository with the
// built-in model (models/all-MiniLM-L6-v2, offline) or --model, then run a few example searches.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../core/types';
import { Workspace } from '../core/workspace/workspace';
import { formatSummary, indexFolder, loadModel, MODEL_HELP, MODEL_OPTIONS } from './index';
import { formatHits } from './search';
import { selfCommand, stderrLogger } from './terminal';

export const summary = 'Index this repository and run a few example searches (the main job, end to end)';

export const DEMO_QUERIES = [
  'respect .gitignore rules when walking the workspace',
  'split source code into chunks at function boundaries',
  'mean pooling of token vectors using the attention mask',
  'write a file atomically so a crash never leaves half a file',
  'reciprocal rank fusion of vector and keyword results',
];

const HELP = `Usage: embedding-lens demo [folder] [options]

Indexes [folder] (default: the current folder, i.e. this repository under \`npm run demo\`) and runs
${DEMO_QUERIES.length} example searches, with the built-in model (no download) unless --model names another.

${MODEL_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...MODEL_OPTIONS, k: { type: 'string', short: 'k', default: '3' } },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UserError('Give at most one folder.');
  const folder = path.resolve(positionals[0] ?? '.');
  const logger = stderrLogger(values.quiet);
  logger.info(`Model: ${values.model}${values.model === MODEL_OPTIONS.model.default ? ' (built in, no download)' : ''}`);
  const { extractor, embedder, chunkTokens } = await loadModel(values, logger);
  try {
    const workspace = Workspace.at(folder, { storageDir: values.storage, logger });
    logger.info(`Indexing ${folder} …`);
    const result = await indexFolder({ refresh: (o) => workspace.refresh(embedder, { chunkTokens, ...o }) }, values.quiet);
    process.stdout.write(formatSummary(result, false) + '\n');
    const k = Number(values.k) || 3;
    for (const query of DEMO_QUERIES) {
      process.stdout.write(`\n=== ${query}\n\n`);
      process.stdout.write(formatHits(await workspace.search(query, { embedder }, { k, mode: 'hybrid', previewLines: 3 }), 'hybrid') + '\n');
    }
    process.stdout.write(`\nTry your own: ${selfCommand()} search ${path.relative(process.cwd(), folder) || '.'} "<query>"` +
      (values.model !== MODEL_OPTIONS.model.default ? ` --model ${values.model}` : '') + '\n');
    return 0;
  } finally {
    await extractor.dispose();
  }
}
