// The editor's save through the engine (src/worker/engine.ts, in process: the same code the engine
// process runs, without the IPC): the model loaded, a first refresh (open + walk), then one-file saves
// given their paths, as the extension sends them. The first save after a load is the one a warm-up
// helps. Needs the folder that bench/cliProcess.ts prepares (.cache/cli/<chunks>).
//
//   tsx bench/engineSave.ts [--chunks 37000] [--saves 3] [--pause-ms 1500]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { openEngine } from '../src/worker/engine';

const { values: opts } = parseArgs({ options: { chunks: { type: 'string', default: '37000' }, saves: { type: 'string', default: '3' }, 'pause-ms': { type: 'string', default: '1500' } } });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

async function main(): Promise<void> {
  const REPO = path.resolve(__dirname, '..');
  const cache = path.join(REPO, '.cache', 'cli', opts.chunks!);
  if (!fs.existsSync(path.join(cache, 'prepared.json'))) throw new Error(`No prepared folder in ${cache}: run bench/cliProcess.ts --chunks ${opts.chunks} first.`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bench-save-'));
  fs.rmSync(work, { recursive: true });
  execFileSync('cp', ['-al', cache, work]); // writers replace files by rename: the cache is never written
  try {
    const root = path.join(work, 'repo');
    const run = { signal: new AbortController().signal, onProgress: () => undefined };
    let t = performance.now();
    const engine = await openEngine({ model: path.join(REPO, 'models', 'all-MiniLM-L6-v2'), offline: true, threads: 0, maxTokensPerBatch: 8192 }, quiet, () => undefined, new AbortController().signal);
    const loadMs = performance.now() - t;
    const target = { root, storageDir: path.join(root, '.embedding-lens'), recipe: { layer: 'last', pool: 'mean', normalize: true } as const };
    await new Promise((r) => setTimeout(r, Number(opts['pause-ms']))); // between a load and the first save, time passes
    t = performance.now();
    await engine.index(target, run);
    const firstRefreshMs = performance.now() - t;
    const saves: { ms: number; modelMs: number }[] = [];
    for (let i = 0; i < Number(opts.saves); i++) {
      const f = path.join(root, `src/pkg${i + 5}/mod${i + 5}.ts`);
      fs.writeFileSync(`${f}.tmp-bench`, `${fs.readFileSync(f, 'utf8')}\nexport const saved${i} = ${i};\n`);
      fs.renameSync(`${f}.tmp-bench`, f);
      t = performance.now();
      const s = await engine.index({ ...target, paths: [f] }, run);
      if (s.onlyPaths !== 1 || s.filesIndexed !== 1) throw new Error(`expected the saved file alone re-indexed, got ${JSON.stringify({ ...s, skipped: s.skipped.length })}`);
      saves.push({ ms: Math.round(performance.now() - t), modelMs: Math.round(s.modelMs) });
    }
    await engine.dispose();
    console.log(JSON.stringify({ load: os.loadavg()[0].toFixed(1), loadMs: Math.round(loadMs), firstRefreshMs: Math.round(firstRefreshMs), saves }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
