// `embedding-lens extract --attention`: the attention probabilities of one text, one layer or all.
import { Extractor } from '../core/extract/extractor';
import { attentionArray, nestedArray, writeAttentionNpy } from '../core/extract/attentionOutput';
import { parseAttentionLayers } from '../core/model/attentionGraph';
import { UserError, type OutputDType } from '../core/types';
import { positiveInt } from './options';
import { stderrLogger } from './terminal';

export interface AttentionArgs {
  model: string;
  out: string;
  layer: string;
  texts: string[];
  dtype: OutputDType;
  format: 'json' | 'npy' | 'h5' | 'faiss';
  offline?: boolean;
  quantized?: boolean;
  'cache-dir'?: string;
  threads?: string;
  pool?: string;
  'word-pool'?: string;
  normalize?: boolean;
  'exclude-special'?: boolean;
  prefix?: string;
  truncate?: boolean;
  quiet?: boolean;
}

export async function runAttention(args: AttentionArgs): Promise<number> {
  const pooling = ['--pool', '--word-pool', '--normalize', '--exclude-special', '--prefix'].filter((flag) => {
    const v = args[flag.slice(2) as keyof AttentionArgs];
    return v !== undefined && v !== false;
  });
  if (pooling.length) {
    throw new UserError(
      `--attention writes attention probabilities, which are not pooled: ${pooling.join(', ')} does not apply.`,
      'Leave out the pooling options, or leave out --attention to extract pooled vectors.',
    );
  }
  if (args.texts.length !== 1) {
    throw new UserError(
      `--attention takes one text at a time; got ${args.texts.length}.`,
      'Give one --text, or an --input file with one line (attention matrices of different texts have different sizes).',
    );
  }
  if (args.format === 'h5' || args.format === 'faiss') {
    throw new UserError(`--attention writes .npy (or JSON with --out -), not .${args.format}.`);
  }
  const logger = stderrLogger(args.quiet ?? false);
  const extractor = await Extractor.load({
    model: args.model,
    offline: args.offline,
    quantized: args.quantized,
    cacheDir: args['cache-dir'],
    threads: positiveInt(args.threads, '--threads'),
    logger,
  });
  try {
    const { layers, all } = parseAttentionLayers(args.layer, extractor.info.numLayers);
    const [att] = await extractor.attention(args.texts, layers, { truncate: args.truncate });
    const { manifest, data } = attentionArray(extractor.info, att, args.layer, all, args.dtype);
    if (args.format === 'json') {
      process.stdout.write(JSON.stringify({ manifest, attention: nestedArray(data, manifest.shape) }) + '\n');
    } else {
      const written = await writeAttentionNpy(args.out, manifest, data);
      logger.info(`wrote attention [${manifest.shape.join(', ')}] (${manifest.axes.join(', ')}) ${args.dtype} to ${written.join(', ')}`);
    }
    if (att.truncated) logger.info(`the text was TRUNCATED to ${manifest.tokenCount} of ${att.tokenCount} tokens (--truncate)`);
    return 0;
  } finally {
    await extractor.dispose();
  }
}
