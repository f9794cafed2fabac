// Memory a first index holds in its store before the compaction folds it into the HNSW graph: every chunk
// of a first index waits in the delta rows (record + vector) until then. Numbers, not pass/fail.
//
//   node --expose-gc --import tsx bench/deltaMemory.ts <store folder>     (e.g. .cache/cli/100000/repo/.embedding-lens/stores/*)
//
// Takes the records and vectors of an existing store, adds them to a new store in checkpoints of 2,048 with
// a save each (as the indexer does), and reports the JS heap and the ArrayBuffer memory this added.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VectorStore } from '../src/core/store/vectorStore';

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || !process.argv[2]) throw new Error('Usage: node --expose-gc --import tsx bench/deltaMemory.ts <store folder>');
  const src = await VectorStore.open(process.argv[2]);
  const snap = src.snapshot();
  const n = snap.records.length;
  const dims = src.dims;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-delta-memory-'));
  try {
    gc();
    const m0 = process.memoryUsage();
    const s = await VectorStore.create(path.join(dir, 'store'), src.recipe);
    for (let i = 0; i < n; i += 2048) {
      const end = Math.min(n, i + 2048);
      // fresh record objects (as the indexer makes them), not the snapshot's
      s.upsert(snap.records.slice(i, end).map((r) => JSON.parse(JSON.stringify(r))), snap.vectors.subarray(i * dims, end * dims));
      await s.save();
    }
    gc();
    const m1 = process.memoryUsage();
    const mib = (x: number) => Math.round(x / 2 ** 20);
    console.log(JSON.stringify({
      rows: n,
      deltaRows: s.stats().deltaRows,
      heapMiB: mib(m1.heapUsed - m0.heapUsed),
      heapBytesPerRow: Math.round((m1.heapUsed - m0.heapUsed) / n),
      arrayBuffersMiB: mib(m1.arrayBuffers - m0.arrayBuffers),
      arrayBufferBytesPerRow: Math.round((m1.arrayBuffers - m0.arrayBuffers) / n),
    }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
