// Indexing benchmark: this repository's tracked files plus TypeScript's lib.*.d.ts, indexed with the
// MiniLM-shaped fixture (npm run fixtures -- --minilm). Reports files/s, chunks/s, the share of time in
// the model, peak RSS, then a re-index after changing one file (time, bytes written against the store's
// size) and after touching one, and the re-index after an edit as a whole CLI process.
// Everything is copied to a temporary folder first, so nothing of the repository is touched.
//
//   tsx bench/index.ts [--model <folder>] [--quick] [--threads n]
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Extractor } from '../src/core/extract/extractor';
import { WorkspaceIndexer, type RefreshSummary } from '../src/core/index/indexer';
import { WorkspaceSearch } from '../src/core/search/search';

const REPO = path.resolve(__dirname, '..');

/** Bytes this process has passed to write(2) so far (/proc/self/io), to count what a refresh writes. */
function wchar(): number {
  const m = /wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}
function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, n) => sum + statSync(path.join(dir, n)).size, 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: path.join(REPO, 'bench/models/minilm-l6') },
      quick: { type: 'boolean', default: false },
      threads: { type: 'string' },
    },
  });
  const model = values.model!;
  if (!(await fs.stat(path.join(model, 'onnx/model.onnx')).catch(() => null))) {
    console.error(`No model at ${model}. Run \`npm run fixtures -- --minilm\` first (or pass --model <folder>).`);
    process.exitCode = 1;
    return;
  }
  const corpus = await fs.mkdtemp(path.join(os.tmpdir(), 'el-bench-corpus-'));
  const storage = await fs.mkdtemp(path.join(os.tmpdir(), 'el-bench-store-'));
  try {
    // Corpus: tracked files of this repository + TypeScript's lib.*.d.ts.
    const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO }).toString().split('\0').filter(Boolean);
    for (const f of tracked) {
      const src = path.join(REPO, f);
      const st = await fs.lstat(src).catch(() => null);
      if (!st?.isFile()) continue;
      await fs.mkdir(path.dirname(path.join(corpus, 'repo', f)), { recursive: true });
      await fs.copyFile(src, path.join(corpus, 'repo', f));
    }
    const tsLib = path.join(REPO, 'node_modules/typescript/lib');
    let libs = (await fs.readdir(tsLib)).filter((n) => /^lib\..*\.d\.ts$/.test(n)).sort();
    if (values.quick) libs = libs.slice(0, 4);
    await fs.mkdir(path.join(corpus, 'typescript-lib'), { recursive: true });
    for (const n of libs) await fs.copyFile(path.join(tsLib, n), path.join(corpus, 'typescript-lib', n));

    const t0 = performance.now();
    const extractor = await Extractor.load({ model, offline: true, threads: values.threads ? Number(values.threads) : undefined });
    const loadMs = performance.now() - t0;
    const embedder = extractor.embedder({ layer: 'last', pool: 'mean', normalize: true });
    const chunkTokens = Math.min(256, extractor.info.maxLength - 2);
    const indexer = await WorkspaceIndexer.open({ root: corpus, storageDir: storage, embedder, chunkTokens });

    const first = await indexer.refresh();
    const rssAfterFull = process.resourceUsage().maxRSS * 1024;

    // Re-index after changing one file's content (one function's worth of lines appended).
    const changed = path.join(corpus, 'repo/src/core/index/files.ts');
    await fs.appendFile(changed, '\n// benchmark edit\nexport const BENCH_EDIT = 1;\n');
    const w0 = wchar();
    const afterEdit = await indexer.refresh();
    const editBytesWritten = wchar() - w0;
    const storeBytes = dirBytes(indexer.storeDir);
    // Re-index after touching one file (mtime only).
    const later = new Date(Date.now() + 10_000);
    await fs.utimes(path.join(corpus, 'repo/README.md'), later, later).catch(() => fs.utimes(changed, later, later));
    const afterTouch = await indexer.refresh();
    const noChange = await indexer.refresh();

    // The same edit as a whole CLI process (start, model load, folder walk, re-index, save, exit).
    const cliFile = path.join(corpus, 'repo/src/core/index/chunk.ts');
    await fs.appendFile(cliFile, '\n// benchmark edit (CLI)\nexport const BENCH_CLI_EDIT = 2;\n');
    const tc = performance.now();
    const cli = spawnSync(process.execPath, [path.join(REPO, 'bin/embedding-lens.js'), 'index', corpus, '--storage', storage, '--model', model, '--quiet', '--json',
      ...(values.threads ? ['--threads', values.threads] : [])], { encoding: 'utf8' });
    const cliReindexMs = performance.now() - tc;
    if (cli.status !== 0) throw new Error(`CLI index failed: ${cli.stderr}`);
    const cliSummary = JSON.parse(cli.stdout) as RefreshSummary;
    const te = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    const emptyNodeMs = performance.now() - te;

    const search = await WorkspaceSearch.open({ root: corpus, storageDir: storage, embedder });
    const q0 = performance.now();
    const queries = ['parse a layer spec', 'HTMLCanvasElement getContext', 'atomic file write with fsync', 'array flat map'];
    for (const q of queries) await search.search(q, { k: 10, mode: 'hybrid' });
    const searchMs = (performance.now() - q0) / queries.length;

    const row = (name: string, s: RefreshSummary) => ({
      run: name,
      files: s.filesSeen,
      filesIndexed: s.filesIndexed,
      skipped: s.skipped.length,
      chunksEmbedded: s.chunksEmbedded,
      chunksTotal: s.chunksTotal,
      seconds: +(s.ms / 1000).toFixed(2),
      modelShare: s.ms ? +(s.modelMs / s.ms).toFixed(3) : 0,
    });
    const result = {
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
      model: path.relative(REPO, model) || model,
      modelLoadSeconds: +(loadMs / 1000).toFixed(2),
      chunkTokens,
      corpus: { repoFiles: tracked.length, typescriptLibFiles: libs.length },
      full: {
        ...row('full index', first),
        filesPerSecond: +(first.filesSeen / (first.ms / 1000)).toFixed(1),
        chunksPerSecond: +(first.chunksEmbedded / (first.ms / 1000)).toFixed(1),
        chunksPerSecondInModel: +(first.chunksEmbedded / (first.modelMs / 1000)).toFixed(1),
        peakRssMiB: Math.round(rssAfterFull / 1024 / 1024),
        skippedReasons: first.skipped.reduce<Record<string, number>>((acc, k) => ((acc[k.reason] = (acc[k.reason] ?? 0) + 1), acc), {}),
      },
      reindex: [row('one file edited', afterEdit), row('one file touched', afterTouch), row('nothing changed', noChange)],
      edit: {
        bytesWritten: editBytesWritten,
        storeBytes,
        shareOfStore: +(editBytesWritten / storeBytes).toFixed(5),
        cliProcessMs: Math.round(cliReindexMs),
        cliChunksEmbedded: cliSummary.chunksEmbedded,
        cliRefreshMs: Math.round(cliSummary.ms),
        emptyNodeProcessMs: Math.round(emptyNodeMs),
      },
      searchMsPerQuery: +searchMs.toFixed(1),
      peakRssMiB: Math.round((process.resourceUsage().maxRSS * 1024) / 1024 / 1024),
    };
    console.log(JSON.stringify(result, null, 2));
    await extractor.dispose();
  } finally {
    await fs.rm(corpus, { recursive: true, force: true });
    await fs.rm(storage, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
