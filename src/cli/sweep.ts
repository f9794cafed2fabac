// `embedding-lens sweep <folder>`: which layer and pooling retrieve best on this folder's own code?
// Mines query → target pairs (doc comments, names, headings, tests), embeds them once with every layer
// exposed, and prints MRR@10 for every layer × pooling beside a BM25 baseline, then a recommendation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_PAIRS, minePairs, PAIR_KINDS, type MinedPairs } from '../core/sweep/pairs';
import { runSweep, describeCell, type SweepResult } from '../core/sweep/sweep';
import type { RetrievalMetrics } from '../core/sweep/metrics';
import { UserError } from '../core/types';
import { DEFAULT_MODEL, loadModel, MODEL_OPTIONS } from './index';
import { positiveInt } from './options';
import { progressReporter, signalFromSigint, stderrLogger } from './terminal';

export const summary = 'find the layer and pooling that retrieve best on a folder\'s own code';

const METRICS = { mrr: 'mrrAt10', r1: 'recallAt1', r10: 'recallAt10' } as const;
type MetricName = keyof typeof METRICS;
const METRIC_TITLE: Record<MetricName, string> = { mrr: 'MRR@10', r1: 'recall@1', r10: 'recall@10' };

const HELP = `Usage: embedding-lens sweep <folder> [options]

Measures which hidden layer and which pooling retrieve best on <folder>'s own text, with no labels:
query → target pairs are mined from the code (doc comment → the code it documents, a function or
class name in words → its body, a Markdown heading → its section, a test's name → the test body).
All pairs are embedded once with every layer exposed (one model pass per text), then every
layer × pooling (mean, max, cls, last, and the mean of the last 4 layers) is scored by exact search,
beside a keyword (BM25) baseline on the same pairs. Ctrl+C stops after the current batch.

  --pairs <n>             at most n pairs (default ${DEFAULT_MAX_PAIRS})
  --seed <n>              seed of the pair sample (default 1; same seed, same files → same pairs)
  --metric <m>            table values: mrr (MRR@10, default) | r1 (recall@1) | r10 (recall@10)
  --include <glob>        only files matching (repeatable)
  --exclude <glob>        also leave out files matching (repeatable)
  --no-gitignore          do not apply .gitignore files
  --json                  print the whole result (every cell, per kind, pairs without their text) as JSON
Model
  --model <id|folder>     Hugging Face id or a local model folder. Default: ${DEFAULT_MODEL}
  --offline               never use the network (a hub id must already be cached)
  --cache-dir <dir>       model cache (default ~/.cache/embedding-lens/models)
  --threads <n>           ONNX Runtime threads
  -q, --quiet             no progress or table on stderr`;

function parseSeed(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UserError(`--seed must be a whole number from 0 to 4294967295, got "${value}".`);
  return n;
}

function pct(x: number): string {
  return x.toFixed(3);
}

/** The table: layers as rows, poolings as columns, the best cell marked with *, BM25 below. */
export function formatSweepTable(result: SweepResult, metric: MetricName = 'mrr'): string {
  const key = METRICS[metric];
  const labelWidth = Math.max(16, ...result.rows.map((r) => r.label.length + 2));
  const col = 10;
  const lines: string[] = [];
  lines.push(`${METRIC_TITLE[metric]} by layer (rows) and pooling (columns); * = best, default = ${result.rows.find((r) => r.layer === 'last')?.label ?? 'last'} · mean`);
  lines.push('');
  lines.push('layer'.padEnd(labelWidth) + result.poolings.map((p) => p.padStart(col - 2).padEnd(col)).join(''));
  result.rows.forEach((row, r) => {
    const cells = result.cells[r]!.map((cell) => {
      // By position, not identity: the result may have crossed a worker or JSON boundary.
      const mark = cell.row === result.best.row && cell.col === result.best.col ? '*' : ' ';
      return (pct(cell.metrics[key]) + mark).padStart(col - 1).padEnd(col);
    });
    lines.push(row.label.padEnd(labelWidth) + cells.join(''));
  });
  lines.push('lexical (BM25)'.padEnd(labelWidth) + `${pct(result.lexical.metrics[key])} `.padStart(col - 1) + '  keyword baseline on the same pairs');
  return lines.join('\n');
}

function metricsLine(m: RetrievalMetrics): string {
  return `MRR@10 ${pct(m.mrrAt10)}  R@1 ${pct(m.recallAt1)}  R@10 ${pct(m.recallAt10)}`;
}

export function formatSweepReport(result: SweepResult, mined: MinedPairs, metric: MetricName, seconds: { mine: number; total: number }): string {
  const kinds = PAIR_KINDS.filter((k) => mined.used[k]).map((k) => `${mined.used[k]} ${k}`).join(', ');
  const foundTotal = PAIR_KINDS.reduce((n, k) => n + mined.found[k], 0);
  const foundKinds = PAIR_KINDS.map((k) => `${mined.found[k]} ${k}`).join(', ');
  const s = result.stats;
  return [
    `Pairs: ${result.pairs} (${kinds}) sampled from ${foundTotal} found (${foundKinds}) in ${mined.filesWithPairs} of ${mined.filesScanned} files; ` +
      `${mined.droppedTrivial} trivial and ${mined.droppedDuplicate} duplicate pairs dropped; seed ${mined.seed}.`,
    `Model: ${result.model} (${result.numLayers} layers, ${result.hiddenSize} dims).`,
    '',
    formatSweepTable(result, metric),
    '',
    `Best:     ${describeCell(result.best).padEnd(22)} ${metricsLine(result.best.metrics)}`,
    `Default:  ${describeCell(result.baseline).padEnd(22)} ${metricsLine(result.baseline.metrics)}`,
    `Lexical:  ${'BM25'.padEnd(22)} ${metricsLine(result.lexical.metrics)}`,
    '',
    `Recommendation: ${result.recommendation.text}`,
    result.recommendation.change
      ? `  Apply with: --layer ${result.recommendation.layer} --pool ${result.recommendation.pool} (settings: embeddingLens.layer "${result.recommendation.layer}", embeddingLens.pooling "${result.recommendation.pool}"), then re-index.`
      : '',
    `Time: ${seconds.total.toFixed(1)} s (mining ${seconds.mine.toFixed(1)} s, embedding ${(s.embedMs / 1000).toFixed(1)} s (model ${(s.modelMs / 1000).toFixed(1)} s) for ${s.texts} texts / ${s.tokens} tokens in ${s.batches} model runs, ` +
      `scoring ${result.cells.flat().length} cells ${(s.scoreMs / 1000).toFixed(1)} s).`,
  ].filter((l, i, all) => l !== '' || (all[i - 1] !== '' && i > 0)).join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const started = performance.now();
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: MODEL_OPTIONS.model,
      offline: MODEL_OPTIONS.offline,
      'cache-dir': MODEL_OPTIONS['cache-dir'],
      threads: MODEL_OPTIONS.threads,
      quiet: MODEL_OPTIONS.quiet,
      help: MODEL_OPTIONS.help,
      pairs: { type: 'string' },
      seed: { type: 'string' },
      metric: { type: 'string', default: 'mrr' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      'no-gitignore': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UserError('Give exactly one folder to sweep.', 'Usage: embedding-lens sweep <folder> [--model …] [--pairs N] [--json]');
  const folder = path.resolve(positionals[0]!);
  if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`Folder "${positionals[0]}" does not exist or is not a folder.`);
  const maxPairs = positiveInt(values.pairs, '--pairs') ?? DEFAULT_MAX_PAIRS;
  const seed = parseSeed(values.seed);
  const metric = values.metric as MetricName;
  if (!(metric in METRICS)) throw new UserError(`Unknown --metric "${values.metric}".`, 'Use mrr, r1 or r10.');
  const logger = stderrLogger(values.quiet);
  const signal = signalFromSigint();

  // Pairs first: a folder with nothing to mine fails before the model is loaded.
  const mined = await minePairs(folder, {
    maxPairs,
    seed,
    discovery: { include: values.include, exclude: values.exclude, useGitignore: !values['no-gitignore'] },
    signal,
    logger,
    onProgress: (e) => logger.progress?.(`mining pairs: ${e.filesDone}/${e.filesTotal} files`),
  });
  const mineSeconds = (performance.now() - started) / 1000;
  logger.progress?.('');
  const { extractor } = await loadModel(values, logger);
  const bar = progressReporter(values.quiet, 'texts');
  let result: SweepResult;
  try {
    result = await runSweep({
      extractor,
      pairs: mined.pairs,
      signal,
      onProgress: (e) => {
        if (e.phase === 'embed') bar.update(e);
        else {
          bar.stop();
          logger.progress?.(`scoring: ${e.cellsDone}/${e.cellsTotal} cells`);
        }
      },
    });
  } finally {
    bar.stop();
    logger.progress?.('');
    await extractor.dispose();
  }
  const totalSeconds = (performance.now() - started) / 1000;
  if (values.json) {
    const { pairs, ...mining } = mined;
    const out = {
      ...result,
      mining: { ...mining, pairs: pairs.map(({ target: _target, ...p }) => p) },
      seconds: { mine: mineSeconds, total: totalSeconds },
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(formatSweepReport(result, mined, metric, { mine: mineSeconds, total: totalSeconds }) + '\n');
  }
  return 0;
}
