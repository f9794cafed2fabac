// `embedding-lens export`: copy the vectors of an index (an HNSW store) into .npy / .h5 / .faiss,
// with `<out>.json` mapping each row back to its file and line range.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { outputFormatOfName } from '../core/outputFormats';
import { exportStore, type ExportFormat } from '../core/store/export';
import { VectorStore } from '../core/store/vectorStore';
import { storageFor, storesDirOf } from '../core/workspace/layout';
import { UserError } from '../core/types';
import { outputDType } from './options';
import { count, stderrLogger } from './terminal';

export const summary = 'Export an index to .npy / .h5 / .faiss';

const HELP = `Usage: embedding-lens export --from <folder | index folder | store folder> --out <file> [--format npy|h5|faiss|faiss-hnsw]

  --from <dir>      a folder indexed with \`embedding-lens index\` (its .embedding-lens storage is used),
                    a storage folder, or one store folder inside it
  --store <name>    which store, when the folder holds indexes of several recipes
  --format <f>      npy | h5 | faiss (IndexIDMap(IndexFlat)) | faiss-hnsw (IndexHNSWFlat);
                    default: from the --out extension
  --out <file>      the file to write; <file>.json gets the recipe and the row → file:lines map
  --dtype <t>       float32 (default) or float16 (.npy)`;

/** Finds the store folder(s) under what the user named. */
async function storesUnder(dir: string): Promise<string[]> {
  if (await VectorStore.isStore(dir)) return [dir];
  for (const storesDir of [storesDirOf(storageFor(dir)), storesDirOf(dir)]) {
    if (!fs.existsSync(storesDir)) continue;
    const found: string[] = [];
    for (const name of fs.readdirSync(storesDir).sort()) {
      const candidate = path.join(storesDir, name);
      if (await VectorStore.isStore(candidate)) found.push(candidate);
    }
    if (found.length) return found;
  }
  return [];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      store: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      dtype: { type: 'string', default: 'float32' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.from) throw new UserError('No --from given.', 'Name the folder you indexed (or its storage folder).');
  if (!values.out) throw new UserError('No --out given.', 'Name the file to write: .npy, .h5 or .faiss.');
  if (!fs.existsSync(values.from)) throw new UserError(`--from ${values.from} does not exist.`);
  const format = (values.format ?? outputFormatOfName(values.out)) as ExportFormat | undefined;
  if (!format || !['npy', 'h5', 'faiss', 'faiss-hnsw'].includes(format)) {
    throw new UserError(`Cannot tell the format of "${values.out}"${values.format ? ` (--format ${values.format})` : ''}.`, 'Use --format npy, h5, faiss or faiss-hnsw, or an .npy / .h5 / .faiss file name.');
  }
  const dtype = outputDType(values.dtype);

  let stores = await storesUnder(path.resolve(values.from));
  if (values.store) stores = stores.filter((s) => path.basename(s) === values.store);
  if (!stores.length) {
    throw new UserError(
      `No index found under ${values.from}${values.store ? ` named ${values.store}` : ''}.`,
      'Build one first: embedding-lens index <folder> (then export --from <folder>).',
    );
  }
  if (stores.length > 1) {
    const lines = await Promise.all(stores.map(async (s) => {
      const m = await VectorStore.readManifest(s);
      return `  ${path.basename(s)}  ${m.recipe.model} layer ${m.recipe.layer} ${m.recipe.pooling}, ${m.count} vectors`;
    }));
    throw new UserError(`${values.from} holds ${stores.length} indexes (one per recipe):\n${lines.join('\n')}`, 'Choose one with --store <name>.');
  }
  const logger = stderrLogger(values.quiet);
  const { rows, files, textUnavailable } = await exportStore(stores[0], { format, out: values.out, dtype });
  logger.info(`exported ${rows} vectors from ${stores[0]} to ${files.join(', ')}`);
  if (textUnavailable) {
    logger.warn(`${count(textUnavailable, 'chunk')} changed since indexing (or the indexed folder moved): ${textUnavailable === 1 ? 'its' : 'their'} /text is empty. Index the folder again, then export, to have every text.`);
  }
  return 0;
}
