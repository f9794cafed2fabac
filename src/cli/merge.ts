// `embedding-lens merge --out <file> <shard.npy> …`: joins the shards of `extract … --shard K/N` into one
// .npy / .h5 / .faiss in input order (checks and streaming in src/core/extract/shardMerge.ts).
import { parseArgs } from 'node:util';
import { mergeShards } from '../core/extract/shardMerge';
import { UserError } from '../core/types';
import { positiveInt } from './options';
import { stderrLogger } from './terminal';

export const summary = 'Join the shards of a sharded extraction into one .npy / .h5 / .faiss';

const HELP = `Usage: embedding-lens merge --out <file> <shard.npy> …

Joins the shard files written by \`embedding-lens extract … --shard K/N\` (or --shards N under Slurm /
Kubernetes) into one file in the original input order, with <file>.json listing every input once.
Checks first that the shards share input, model hash, recipe, dims and dtype and cover the input
exactly once (a missing or doubled shard is named); nothing is written when a check fails.
Streams: memory stays at a few MiB whatever the size.

  --out <file>            .npy, .h5 or .faiss (float16 shards: .npy only)
  --block-rows <n>        rows read and written at a time (default 4096)
  --quiet                 no messages on stderr`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'block-rows': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.out) throw new UserError('No --out given.', 'Usage: embedding-lens merge --out <file.npy|.h5|.faiss> <shard.npy> …');
  if (!positionals.length) throw new UserError('No shard files given.', 'Usage: embedding-lens merge --out <file> results/emb.shard-*.npy');
  const logger = stderrLogger(values.quiet);
  const started = performance.now();
  const r = await mergeShards({ out: values.out, shards: positionals, blockRows: positiveInt(values['block-rows'], '--block-rows'), logger });
  logger.info(`wrote ${r.rows} × ${r.dims} from ${r.shards} shards to ${r.file} and ${r.manifestFile} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  return 0;
}
