// Opens a store folder the way a search does (the vector store, then the keyword index), in process, and
// prints wall ms, CPU ms and peak RSS: for the open time of large stores (e.g. bench/segments.ts's cached
// 1M store), and for an earlier commit's code against this one's (give its source tree: a git worktree).
//
//   tsx bench/openStore.ts <store folder> [<source root, default this checkout>]
import * as os from 'node:os';
import * as path from 'node:path';

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? '');
  const root = path.resolve(process.argv[3] ?? path.join(__dirname, '..'));
  const { VectorStore } = await import(path.join(root, 'src/core/store/vectorStore'));
  const { LexicalIndex } = await import(path.join(root, 'src/core/search/lexical'));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const store = await VectorStore.open(dir);
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  const lexical = await LexicalIndex.load(path.join(dir, 'lexical.json'));
  const t2 = performance.now();
  const c2 = process.cpuUsage(c0);
  console.log(JSON.stringify({
    code: root, count: store.count, keywordDocs: lexical?.size,
    storeOpenMs: Math.round(t1 - t0), storeCpuMs: Math.round((c1.user + c1.system) / 1000),
    withKeywordsMs: Math.round(t2 - t0), withKeywordsCpuMs: Math.round((c2.user + c2.system) / 1000),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), load: os.loadavg()[0].toFixed(1),
  }));
  process.exit(0); // the checking thread and hnswlib's memory need no orderly teardown here
}

void main();
