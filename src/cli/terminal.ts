// Terminal helpers shared by CLI commands: a stderr logger, a progress bar (cli-progress) that only
// draws on a TTY, and Ctrl+C turned into an AbortSignal so a long run stops between batches.
import cliProgress from 'cli-progress';
import * as path from 'node:path';
import type { Logger, ProgressEvent } from '../core/types';

export interface CliLogger extends Logger {
  progress?(message: string): void;
}

export function stderrLogger(quiet = false): CliLogger {
  return {
    info: (m) => { if (!quiet) process.stderr.write(`${m}\n`); },
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
    error: (m) => process.stderr.write(`error: ${m}\n`),
    debug: (m) => { if (process.env.EMBEDDING_LENS_DEBUG) process.stderr.write(`debug: ${m}\n`); },
    progress: (m) => { if (!quiet && process.stderr.isTTY) process.stderr.write(`\r${m}\x1b[K`); },
  };
}

export function progressReporter(quiet: boolean, unit: string): { update: (e: ProgressEvent) => void; stop: () => void } {
  if (quiet || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `{bar} {percentage}% | {value}/{total} ${unit} | {tokens} tokens | eta {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (e) => {
      if (!started) { bar.start(e.itemsTotal, 0, { tokens: 0 }); started = true; }
      bar.update(e.itemsDone, { tokens: `${e.tokensDone}/${e.tokensTotal}` });
    },
    stop: () => { if (started) bar.stop(); },
  };
}

/** First Ctrl+C aborts the work gracefully; a second one exits at once. */
export function signalFromSigint(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping after the current batch (Ctrl+C again to quit now)\n');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return controller.signal;
}

/**
 * How to run this CLI again from here, for messages that print a command line: `embedding-lens` when
 * it was started through an installed bin (npm link / npm install -g), else `node <path to the launcher>`
 * (a fresh clone has no `embedding-lens` on PATH).
 */
export function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (path.basename(script) === 'embedding-lens') return 'embedding-lens';
  if (/embedding-lens\.js$|[\\/]cli\.js$/.test(script)) {
    const rel = path.relative(process.cwd(), script);
    return `node ${rel.includes(' ') ? `"${rel}"` : rel}`;
  }
  return 'embedding-lens';
}

/** `1 text`, `2 texts` (`plural` for irregular words). */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
