// What a full index embeds: the exact texts the CLI's `index` hands the model on a folder (same
// Workspace.refresh, chunker, header and reuse rules as `embedding-lens index`), counted in the model's
// own tokens. The model itself is not run: the recording embedder returns zero vectors into a throwaway
// index, so this takes seconds. Numbers, not pass/fail.
//
//   tsx bench/indexTokens.ts [--root <folder>] [--model <folder>] [--json <file>] [--texts <file>]
//
// --texts writes the embedded texts, one array per embed call, for bench/ortOptions.ts.
//
// Default root: a `git archive` snapshot of HEAD in a temporary folder (what a fresh clone holds).
// Reports, over the texts embedded: chunks, tokens embedded (with [CLS]/[SEP]), tokens of the chunks'
// own lines, of the context header (path > enclosing names), lines repeated by the overlap between
// neighbouring chunks, texts embedded more than once (same text, same vector), and the padding the
// engine's batch plan adds (planBatches with its default limits, per embed call as the indexer makes them).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/cli/index';
import { DEFAULT_LIMITS, planBatches } from '../src/core/extract/batch';
import type { TextEmbedder } from '../src/core/types';
import { Workspace } from '../src/core/workspace/workspace';

const REPO = path.resolve(__dirname, '..');
const quiet = { info: () => undefined, warn: (m: string) => process.stderr.write(`warning: ${m}\n`), error: (m: string) => process.stderr.write(`error: ${m}\n`) };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { root: { type: 'string' }, model: { type: 'string' }, json: { type: 'string' }, texts: { type: 'string' } } });
  let root = values.root;
  const temp: string[] = [];
  if (!root) {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'el-tokens-root-'));
    temp.push(root);
    execFileSync('sh', ['-c', `git archive HEAD | tar -x -C "${root}"`], { cwd: REPO });
  }
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'el-tokens-store-'));
  temp.push(storage);
  try {
    const { extractor, embedder, chunkTokens } = await loadModel({ model: values.model, offline: true } as Parameters<typeof loadModel>[0], quiet as never);
    const calls: string[][] = [];
    const recording: TextEmbedder = {
      identity: embedder.identity,
      prefixes: embedder.prefixes,
      countTokens: (t) => embedder.countTokens(t),
      embed: async (texts, options) => {
        calls.push(texts.map((t) => (options?.prefix ?? '') + t));
        return new Float32Array(texts.length * embedder.identity.dims);
      },
    };
    const summary = await Workspace.at(root, { storageDir: storage, logger: quiet }).refresh(recording, { chunkTokens });
    const texts = calls.flat();
    const counts = await extractor.countTokens(texts);
    const maxLen = extractor.info.maxLength;
    let tokens = 0;
    let truncated = 0;
    for (const c of counts) {
      tokens += Math.min(c, maxLen);
      if (c > maxLen) truncated++;
    }
    // Headers: the indexer's embed text is context + '\n' + lines, and the context is the path trail
    // (plus a description line for some files): count the tokens of the text without its first line when
    // that line starts with the file's path (the default `path` header).
    const headerTexts: string[] = [];
    const bodyTexts: string[] = [];
    for (const t of texts) {
      const nl = t.indexOf('\n');
      headerTexts.push(nl < 0 ? '' : t.slice(0, nl));
      bodyTexts.push(nl < 0 ? t : t.slice(nl + 1));
    }
    const headerTokens = (await extractor.countTokens(headerTexts.map((h) => h || '.'))).reduce((s, c, i) => s + (headerTexts[i] ? c - 2 : 0), 0);
    const bodyTokens = (await extractor.countTokens(bodyTexts.map((b) => b || '.'))).reduce((s, c) => s + Math.min(c, maxLen) - 2, 0);
    // Same text embedded twice (identical embed text → identical vector).
    const seen = new Map<string, number>();
    for (const t of texts) seen.set(t, (seen.get(t) ?? 0) + 1);
    let dupTexts = 0;
    let dupTokens = 0;
    texts.forEach((t, i) => {
      if ((seen.get(t) ?? 0) > 1) {
        dupTexts++;
        dupTokens += Math.min(counts[i], maxLen);
      }
    });
    const uniqueDupGroups = [...seen.values()].filter((n) => n > 1).length;
    // Padding as the engine plans it: each embed call is sorted and packed under the token budget.
    let padded = 0;
    let offset = 0;
    let batches = 0;
    for (const call of calls) {
      const lens = counts.slice(offset, offset + call.length).map((c) => Math.min(c, maxLen));
      offset += call.length;
      for (const b of planBatches(lens, DEFAULT_LIMITS)) {
        batches++;
        padded += Math.max(...b.map((i) => lens[i])) * b.length;
      }
    }
    const sorted = counts.map((c) => Math.min(c, maxLen)).sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    const result = {
      root: values.root ?? 'git archive HEAD',
      model: embedder.identity.model,
      filesIndexed: summary.filesIndexed,
      chunks: texts.length,
      embedCalls: calls.length,
      batches,
      tokensEmbedded: tokens,
      tokensPerChunk: +(tokens / texts.length).toFixed(1),
      tokenQuantiles: { p10: q(0.1), p50: q(0.5), p90: q(0.9), max: q(1) },
      specialTokens: 2 * texts.length,
      headerTokens,
      bodyTokens,
      headerShare: +(headerTokens / tokens).toFixed(4),
      truncatedTexts: truncated,
      duplicateTexts: dupTexts,
      duplicateGroups: uniqueDupGroups,
      duplicateTokensSaved: dupTokens - [...seen.entries()].filter(([, n]) => n > 1).reduce((s, [t]) => s + Math.min(counts[texts.indexOf(t)], maxLen), 0),
      paddedTokens: padded,
      paddingShare: +((padded - tokens) / padded).toFixed(4),
      chunkTokens,
    };
    console.log(JSON.stringify(result, null, 2));
    if (values.texts) fs.writeFileSync(values.texts, JSON.stringify(calls));
    if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
    await extractor.dispose();
  } finally {
    for (const d of temp) fs.rmSync(d, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
