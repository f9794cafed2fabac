// Benchmark of the HNSW vector store (numbers, not pass/fail).
//
//   tsx bench/store.ts            100k × 384, clustered (300 centres) and uniform random
//   tsx bench/store.ts --quick    10k × 384
//   options: --n N --dims D --queries Q --centres C
//
// For each data set: build time (upserts through VectorStore and the compaction that builds the HNSW
// graph, M=16, efConstruction=200), files on disk, save time of one changed chunk (a delta), load time
// (including checksums), and for ef ∈ {10, 50, 100, 200}: recall@10 against exact
// brute-force cosine search and p50/p99 query latency. Queries are fresh points from the same
// distribution, not stored vectors. Writes bench/results-store.json.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { VectorStore } from '../src/core/store/vectorStore';
import { exactSearch } from '../src/core/store/exact';
import type { RecipeIdentity } from '../src/core/types';
import { seededRandom as rng } from '../src/core/random';
import { clusteredPoints, gaussianCentres, percentile as pct } from './synthetic';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const quick = flag('quick');
const N = opt('n', quick ? 10_000 : 100_000);
const D = opt('dims', 384);
const Q = opt('queries', quick ? 200 : 200);
const CENTRES = opt('centres', 300);
const K = 10;
const EFS = [10, 50, 100, 200];

function uniform(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * D }, () => r() * 2 - 1);
}

interface EfResult {
  ef: number;
  recallAt10: number;
  p50ms: number;
  p99ms: number;
}
interface DataSetResult {
  name: string;
  n: number;
  dims: number;
  buildS: number;
  fileMB: number;
  saveS: number;
  loadS: number;
  exactQueryMs: number;
  ef: EfResult[];
}

async function run(name: string, data: Float32Array, queries: Float32Array): Promise<DataSetResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `el-bench-${name}-`));
  try {
    const recipe: RecipeIdentity = { model: 'bench', modelHash: '0', layer: 'last', pooling: 'mean', normalize: false, dims: D };
    const store = await VectorStore.create(dir, recipe, { metric: 'cosine', initialCapacity: N });
    const t0 = performance.now();
    const B = 1000;
    for (let i = 0; i < N; i += B) {
      const m = Math.min(B, N - i);
      const recs = Array.from({ length: m }, (_, k) => ({ id: `c${i + k}`, path: `f${(i + k) % 1000}`, startLine: 1, endLine: 2, contentHash: '' }));
      store.upsert(recs, data.subarray(i * D, (i + m) * D));
      if (!quick && i % 20000 === 0) process.stderr.write(`  ${name}: ${i}/${N}\r`);
    }
    // The segment store inserts into the HNSW graph when it compacts: build = upserts + compaction.
    store.compact();
    await store.save();
    const buildS = (performance.now() - t0) / 1000;
    // Save: one changed chunk after the build (a delta segment).
    store.upsert([{ id: 'c0', path: 'f0', startLine: 1, endLine: 3, contentHash: 'edited' }], data.subarray(0, D)); // same vector: recall truth unchanged
    const t1 = performance.now();
    await store.save();
    const saveS = (performance.now() - t1) / 1000;
    const fileMB = store.stats().bytesOnDisk / 1e6;
    const t2 = performance.now();
    const loaded = await VectorStore.open(dir, recipe);
    const loadS = (performance.now() - t2) / 1000;

    // Ground truth: exact cosine search over the stored vectors.
    const truth: Set<string>[] = [];
    const te = performance.now();
    for (let q = 0; q < Q; q++) {
      const hits = exactSearch(data, D, queries.subarray(q * D, (q + 1) * D), K, 'cosine');
      truth.push(new Set(Array.from(hits.rows, (r) => `c${r}`)));
    }
    const exactQueryMs = (performance.now() - te) / Q;

    const ef: EfResult[] = [];
    for (const e of EFS) {
      const times: number[] = [];
      let found = 0;
      for (let q = 0; q < Q; q++) {
        const qv = queries.subarray(q * D, (q + 1) * D);
        const s = performance.now();
        const hits = loaded.query(qv, K, { ef: e });
        times.push(performance.now() - s);
        for (const h of hits) if (truth[q].has(h.id)) found++;
      }
      times.sort((a, b) => a - b);
      ef.push({ ef: e, recallAt10: found / (Q * K), p50ms: pct(times, 50), p99ms: pct(times, 99) });
    }
    return { name, n: N, dims: D, buildS, fileMB, saveS, loadS, exactQueryMs, ef };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function table(results: DataSetResult[]): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[]) => lines.push('| ' + cells.join(' | ') + ' |');
  row(['data', 'n×d', 'build s', 'files MB', 'save s', 'load s', 'exact ms/q', 'ef', 'recall@10', 'p50 ms', 'p99 ms']);
  row(Array(11).fill('---'));
  for (const r of results) {
    r.ef.forEach((e, i) =>
      row(
        i === 0
          ? [r.name, `${r.n}×${r.dims}`, r.buildS.toFixed(1), r.fileMB.toFixed(1), r.saveS.toFixed(2), r.loadS.toFixed(2), r.exactQueryMs.toFixed(1), e.ef, e.recallAt10.toFixed(3), e.p50ms.toFixed(2), e.p99ms.toFixed(2)]
          : ['', '', '', '', '', '', '', e.ef, e.recallAt10.toFixed(3), e.p50ms.toFixed(2), e.p99ms.toFixed(2)],
      ),
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  // Points around CENTRES Gaussian centres (bench/synthetic.ts).
  const centres = gaussianCentres(CENTRES, D, 7);
  const results: DataSetResult[] = [];
  console.log(`vector store benchmark: ${N} × ${D}, ${Q} queries, k=${K}, M=16, efConstruction=200, ${os.cpus().length} cores, node ${process.version}`);
  results.push(await run(`clustered(${CENTRES})`, clusteredPoints(N, D, centres, 1), clusteredPoints(Q, D, centres, 2)));
  results.push(await run('uniform', uniform(N, 3), uniform(Q, 4)));
  const t = table(results);
  console.log(t);
  const clusteredEf = results[0].ef.find((e) => e.recallAt10 >= 0.98)?.ef;
  console.log(`smallest ef with recall@10 >= 0.98 on the clustered set: ${clusteredEf ?? 'none of ' + EFS.join(', ')}`);
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), 'results-store.json');
  fs.writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), quick, n: N, dims: D, queries: Q, k: K, cores: os.cpus().length, node: process.version, results, table: t, clusteredEf }, null, 2) + '\n',
  );
  console.log(`wrote ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
