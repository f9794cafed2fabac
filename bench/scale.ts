// Benchmarks of issue 16 (numbers, not pass/fail): sharded extraction, merge, and the PostgreSQL store
// beside the local HNSW store on the same vectors.
//
//   tsx bench/scale.ts extract  [--texts 256] [--model <folder>]   N = 1 vs 2 shard processes (2 cores)
//   tsx bench/scale.ts merge    [--rows 1000000] [--dims 384] [--shards 4]   synthetic shards → merge
//   tsx bench/scale.ts postgres [--n 100000] [--dims 384] [--queries 200] [--m 16] [--efc 200] [--ef 100]
//                               [--workers 1] [--mwm <MB>] [--insert-baseline 20000] [--only local|postgres]
//                               needs PostgreSQL + pgvector; --insert-baseline loads that many rows the
//                               old way (multi-row INSERT) first, for the COPY before/after ratio
//
// Every part prints a table and writes bench/results-scale-<part>.json. Wall time beside CPU seconds
// (user + system of the measured processes), since this machine is shared.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SHARD_FORMAT, SHARD_FORMAT_VERSION, shardFileName, shardRange, type ShardManifest } from '../src/core/extract/shard';
import { digestFile } from '../src/core/store/atomicFile';
import { exactSearch } from '../src/core/store/exact';
import { npyPreamble } from '../src/core/store/npy';
import { PostgresStore, type PgFileUpdate } from '../src/core/store/postgres';
import { documentTerms } from '../src/core/store/postgresLexical';
import { VectorStore, type ChunkRecord } from '../src/core/store/vectorStore';
import { seededRandom } from '../src/core/random';
import { gaussian, percentile as pct, SPREAD } from './synthetic';
import type { RecipeIdentity } from '../src/core/types';
import { findPostgres, startPostgres } from '../test/helpers/pgServer';
import pg from 'pg';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const [part, ...args] = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const optStr = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};

interface Measured { wallS: number; cpuS: number; maxRssMB: number; code: number | null; stderr: string }

/** Runs node + args under /usr/bin/time -f: wall, CPU (user + sys) and peak RSS of the process. */
function timed(nodeArgs: string[]): Promise<Measured> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, ...nodeArgs], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      resolve({ wallS: Number(m?.[1]), cpuS: Number(m?.[2]) + Number(m?.[3]), maxRssMB: Number(m?.[4]) / 1024, code, stderr });
    });
  });
}

function save(name: string, result: unknown): void {
  fs.writeFileSync(path.join(ROOT, 'bench', `results-scale-${name}.json`), JSON.stringify(result, null, 2) + '\n');
}

/**
 * n × dims points around 300 centres, L2-normalized. Its own loop rather than bench/synthetic.ts's
 * clusteredPoints: uniform centres, and the norm summed from the float64 values before they are stored,
 * which the published results-scale-*.json numbers came from.
 */
function clustered(n: number, dims: number, seed: number): Float32Array {
  const rc = seededRandom(42);
  const centres = Float32Array.from({ length: 300 * dims }, () => rc() * 2 - 1);
  const r = seededRandom(seed);
  const g = gaussian(r);
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * 300);
    let s = 0;
    for (let j = 0; j < dims; j++) {
      const v = centres[c * dims + j]! + SPREAD * g();
      out[i * dims + j] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dims; j++) out[i * dims + j]! *= inv;
  }
  return out;
}

async function benchExtract(): Promise<void> {
  const n = opt('texts', 256);
  const real = path.resolve(ROOT, '..', 'shared', 'models', 'all-MiniLM-L6-v2');
  const model = optStr('model', fs.existsSync(path.join(real, 'onnx')) ? real : path.join(ROOT, 'bench', 'models', 'minilm-l6'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bench-shard-'));
  const words = 'parse the http request and retry with a timeout when the socket closes before the response arrives in the queue'.split(' ');
  const r = seededRandom(3);
  const texts = Array.from({ length: n }, (_, i) => `${i} ` + Array.from({ length: 20 + Math.floor(r() * 100) }, () => words[Math.floor(r() * words.length)]).join(' '));
  const input = path.join(tmp, 'in.txt');
  fs.writeFileSync(input, texts.join('\n') + '\n');
  const common = ['extract', '--model', model, '--input', input, '--quiet'];
  const one = await timed([BIN, ...common, '--out', path.join(tmp, 'one.npy'), '--shard', '0/1']);
  if (one.code !== 0) throw new Error(one.stderr);
  const started = performance.now();
  const two = await Promise.all([0, 1].map((k) => timed([BIN, ...common, '--threads', '1', '--out', path.join(tmp, 'two.npy'), '--shard', `${k}/2`])));
  const twoWall = (performance.now() - started) / 1000;
  two.forEach((t) => { if (t.code !== 0) throw new Error(t.stderr); });
  const merged = await timed([BIN, 'merge', '--quiet', '--out', path.join(tmp, 'merged.npy'), shardFileName(path.join(tmp, 'two.npy'), { index: 0, count: 2 }), shardFileName(path.join(tmp, 'two.npy'), { index: 1, count: 2 })]);
  const result = {
    model, texts: n, cores: os.cpus().length,
    n1: { wallS: one.wallS, cpuS: one.cpuS, textsPerS: n / one.wallS },
    n2: { wallS: twoWall, cpuS: two.reduce((s, t) => s + t.cpuS, 0), textsPerS: n / twoWall, perProcessWallS: two.map((t) => t.wallS) },
    ratio: one.wallS / twoWall,
    mergeS: merged.wallS,
  };
  console.log(`extraction, ${n} texts, ${path.basename(model)}, ${result.cores} cores (wall includes model load)
  N=1 (one process, ORT threads = cores): ${one.wallS.toFixed(1)} s wall, ${one.cpuS.toFixed(1)} CPU s, ${result.n1.textsPerS.toFixed(1)} texts/s
  N=2 (two processes, --threads 1 each):  ${twoWall.toFixed(1)} s wall, ${result.n2.cpuS.toFixed(1)} CPU s, ${result.n2.textsPerS.toFixed(1)} texts/s
  ratio N=2 / N=1 throughput: ${result.ratio.toFixed(2)}×; merge of the 2 shards ${merged.wallS.toFixed(2)} s`);
  save('extract', result);
  fs.rmSync(tmp, { recursive: true, force: true });
}

/** Writes `count` synthetic shards of `rows` × `dims` float32 with valid manifests (as `extract --shard` does). */
async function writeSyntheticShards(dir: string, rows: number, dims: number, count: number): Promise<string[]> {
  const out = path.join(dir, 'synthetic.npy');
  const files: string[] = [];
  const block = 8192;
  for (let k = 0; k < count; k++) {
    const spec = { index: k, count };
    const range = shardRange(rows, spec);
    const file = shardFileName(out, spec);
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, npyPreamble('float32', [range.end - range.start, dims]));
    const items = fs.openSync(`${file}.items.jsonl`, 'w');
    const r = seededRandom(k + 1);
    for (let a = range.start; a < range.end; a += block) {
      const b = Math.min(range.end, a + block);
      const data = Float32Array.from({ length: (b - a) * dims }, () => r() - 0.5);
      fs.writeSync(fd, new Uint8Array(data.buffer));
      let lines = '';
      for (let i = a; i < b; i++) lines += `{"index":${i},"tokenCount":12,"windows":1,"truncated":false}\n`;
      fs.writeSync(items, lines);
    }
    fs.closeSync(fd);
    fs.closeSync(items);
    const recipe = { model: 'synthetic', modelHash: 'synthetic0000000', layer: 'last', layers: [6], pooling: 'mean', normalize: false, excludeSpecialTokens: false, dims, dtype: 'float32' as const, prefix: '', truncate: false, windowOverlap: null };
    const manifest: ShardManifest = {
      format: SHARD_FORMAT, formatVersion: SHARD_FORMAT_VERSION, toolVersion: 'bench', shard: spec, input: { count: rows, sha256: 'synthetic' }, range, recipe,
      manifest: { tool: 'embedding-lens', toolVersion: 'bench', model: 'synthetic', modelHash: 'synthetic0000000', modelFile: 'none', layer: 'last', layers: [6], layerCombine: 'single', pooling: 'mean', normalize: false, excludeSpecialTokens: false, dims, dtype: 'float32' },
      rows: range.end - range.start, file: await digestFile(file), itemsFile: path.basename(`${file}.items.jsonl`), createdAt: new Date().toISOString(),
    };
    fs.writeFileSync(`${file}.json`, JSON.stringify(manifest));
    files.push(file);
  }
  return files;
}

async function benchMerge(): Promise<void> {
  const rows = opt('rows', 1_000_000);
  const dims = opt('dims', 384);
  const count = opt('shards', 4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bench-merge-'));
  try {
    const t0 = performance.now();
    const files = await writeSyntheticShards(dir, rows, dims, count);
    const genS = (performance.now() - t0) / 1000;
    const m = await timed([BIN, 'merge', '--quiet', '--out', path.join(dir, 'merged.npy'), ...files]);
    if (m.code !== 0) throw new Error(m.stderr);
    const bytes = fs.statSync(path.join(dir, 'merged.npy')).size;
    const result = { rows, dims, shards: count, dataMB: bytes / 2 ** 20, wallS: m.wallS, cpuS: m.cpuS, maxRssMB: m.maxRssMB, MBperS: bytes / 2 ** 20 / m.wallS, generateS: genS };
    console.log(`merge ${rows} × ${dims} float32 (${result.dataMB.toFixed(0)} MiB) from ${count} shards: ${m.wallS.toFixed(1)} s wall, ${m.cpuS.toFixed(1)} CPU s, ` +
      `peak RSS ${m.maxRssMB.toFixed(0)} MiB, ${result.MBperS.toFixed(0)} MiB/s (sha256 of every shard checked on the way)`);
    save('merge', result);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Files of 10 chunks each, with short synthetic texts (the BM25 rows are part of the load). */
function syntheticFiles(vectors: Float32Array, dims: number, from: number, to: number, tag = ''): PgFileUpdate[] {
  const words = 'user name parse http url request retry socket cache token vector index query store layer model config'.split(' ');
  const files: PgFileUpdate[] = [];
  for (let f = from; f < to; f += 10) {
    const p = `src/f${Math.floor(f / 10)}.ts`;
    const chunks = [];
    for (let i = f; i < Math.min(to, f + 10); i++) {
      chunks.push({ id: `${p}:${i}${tag}`, path: p, startLine: (i - f) * 10 + 1, endLine: (i - f) * 10 + 10, contentHash: `h${i}${tag}`, text: `${words[i % words.length]} ${words[(i * 7) % words.length]} ${words[(i * 13) % words.length]} item${i}` });
    }
    files.push({ path: p, contentHash: `f${f}${tag}`, chunks, vectors: vectors.subarray(f * dims, (f + chunks.length) * dims) });
  }
  return files;
}

/** CPU seconds (user + system) of a PostgreSQL server: the postmaster, its reaped children and its live ones. */
function serverCpuS(postmaster: number): number {
  const ticks = 100; // USER_HZ on Linux
  const stat = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ').map(Number);
  const own = stat(postmaster);
  let t = own[11]! + own[12]! + own[13]! + own[14]!; // utime stime cutime cstime
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = stat(Number(d));
      if (st[1] === postmaster) t += st[11]! + st[12]!;
    } catch { /* gone */ }
  }
  return t / ticks;
}

/** The way rows went in before binary COPY (multi-row INSERT … SELECT FROM unnest, 500 rows a statement), for the before/after ratio. */
async function insertBaseline(store: PostgresStore, files: PgFileUpdate[]): Promise<void> {
  const c = store.client;
  const t = (name: string) => `"${store.prefix}_${name}"`;
  await c.query('BEGIN');
  await c.query(`INSERT INTO ${t('files')} (path, content_hash, chunk_count) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])`,
    [files.map((f) => f.path), files.map((f) => f.contentHash), files.map((f) => f.chunks.length)]);
  const all = files.flatMap((f) => f.chunks.map((ch, j) => ({ ch, v: f.vectors.subarray(j * store.dims, (j + 1) * store.dims) })));
  for (let i = 0; i < all.length; i += 500) {
    const part = all.slice(i, i + 500);
    const stats = part.map(({ ch }) => documentTerms(ch.path, ch.text));
    const inserted = await c.query<{ id: string; chunk_id: string }>(
      `INSERT INTO ${t('chunks')} (chunk_id, path, start_line, end_line, content_hash, text_len, path_len, embedding)
       SELECT a, b, c, d, e, f, g, h::vector FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::int[], $7::int[], $8::text[]) AS u(a, b, c, d, e, f, g, h)
       RETURNING id, chunk_id`,
      [part.map(({ ch }) => ch.id), part.map(({ ch }) => ch.path), part.map(({ ch }) => ch.startLine), part.map(({ ch }) => ch.endLine),
        part.map(({ ch }) => ch.contentHash), stats.map((x) => x.textLength), stats.map((x) => x.pathLength), part.map(({ v }) => `[${Array.prototype.join.call(v, ',')}]`)],
    );
    const idOf = new Map(inserted.rows.map((x) => [x.chunk_id, x.id]));
    const term: string[] = []; const field: number[] = []; const chunk: string[] = []; const tf: number[] = [];
    stats.forEach((x, j) => { for (const r of x.rows) { term.push(r.term); field.push(r.field); chunk.push(idOf.get(part[j]!.ch.id)!); tf.push(r.tf); } });
    await c.query(`INSERT INTO ${t('terms')} (term, field, chunk, tf) SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::int[])`, [term, field, chunk, tf]);
  }
  await c.query('COMMIT');
}

async function benchPostgres(): Promise<void> {
  const n = opt('n', 100_000);
  const dims = opt('dims', 384);
  const Q = opt('queries', 200);
  const EF = opt('ef', 100);
  const M = opt('m', 16);
  const EFC = opt('efc', 200);
  const workers = opt('workers', 1);
  // The graph must fit in maintenance_work_mem, or pgvector's build slows down many times over:
  // about (vector + 2·M neighbour slots + overhead) per row, with room to spare.
  const mwmMB = opt('mwm', Math.max(1024, Math.ceil((n * (dims * 4 + 2 * M * 8 + 400) * 1.5) / 2 ** 20)));
  const baselineRows = Math.min(n, opt('insert-baseline', 20_000));
  const only = optStr('only', '');
  const started = performance.now();
  const install = findPostgres();
  if ('skip' in install) { console.log(`skipped: ${install.skip}`); return; }
  let t0 = performance.now();
  const data = clustered(n, dims, 1);
  const queries = clustered(Q, dims, 2);
  const exact = Array.from({ length: Q }, (_, q) => Array.from(exactSearch(data, dims, queries.subarray(q * dims, (q + 1) * dims), 10, 'cosine').rows));
  console.log(`vectors and exact top-10 of ${Q} queries: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const identity: RecipeIdentity = { model: 'synthetic', modelHash: 'synthetic0000000', layer: 'last', pooling: 'mean', normalize: true, dims };
  const result: Record<string, unknown> = { n, dims, queries: Q, ef: EF, M, efConstruction: EFC, maintenanceWorkMemMB: mwmMB, parallelMaintenanceWorkers: workers, cpus: os.cpus().length, loadavgAtStart: os.loadavg()[0] };
  const resultName = n === 100_000 && EFC === 200 ? 'postgres' : `postgres-${n}-efc${EFC}`;

  // PostgreSQL: bulk load without the HNSW index (binary COPY, as a first load does), then build it.
  // `--only local` reruns the local side and keeps the PostgreSQL numbers of the last run.
  const previous = path.join(ROOT, 'bench', `results-scale-${resultName}.json`);
  if (only === 'local') result.postgres = (JSON.parse(fs.readFileSync(previous, 'utf8')) as Record<string, unknown>).postgres;
  const server = only === 'local' ? null : await startPostgres(install, `-c maintenance_work_mem=${mwmMB}MB -c max_parallel_maintenance_workers=${workers} -c shared_buffers=512MB -c max_wal_size=8GB`);
  // Stopped from outside (a time limit): the throwaway server goes too.
  const onSignal = () => {
    console.log(`stopped by a signal after ${((performance.now() - started) / 1000).toFixed(0)} s`);
    server?.stop();
    process.exit(143);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  if (server) try {
    server.createDatabase('bench');
    const url = server.url('bench');
    const pgR: Record<string, unknown> = {};
    result.postgres = pgR;
    // Before/after: the same first rows through the old INSERT path into a second recipe's tables.
    if (baselineRows > 0) {
      const base = await PostgresStore.open(url, { ...identity, layer: 'insert-baseline' }, { create: true, allowNewRecipe: true });
      const bIdx = await base.client.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%hnsw%'`, [`${base.prefix}_chunks`]);
      await base.client.query(`DROP INDEX "${bIdx.rows[0]!.indexname}"`);
      const pm = Number((await base.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      const ppid = Number(fs.readFileSync(`/proc/${pm}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
      const s0 = serverCpuS(ppid);
      const c0 = process.cpuUsage();
      t0 = performance.now();
      for (let f = 0; f < baselineRows; f += 10_000) await insertBaseline(base, syntheticFiles(data, dims, f, Math.min(baselineRows, f + 10_000)));
      const c1 = process.cpuUsage(c0);
      pgR.insertBaseline = { rows: baselineRows, loadS: (performance.now() - t0) / 1000, clientCpuS: (c1.user + c1.system) / 1e6, serverCpuS: serverCpuS(ppid) - s0 };
      await base.close();
    }
    const store = await PostgresStore.open(url, identity, { create: true, allowNewRecipe: true, hnsw: { m: M, efConstruction: EFC } });
    const backend = Number((await store.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    const postmaster = Number(fs.readFileSync(`/proc/${backend}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
    const idx = await store.client.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%hnsw%'`, [`${store.prefix}_chunks`]);
    await store.client.query(`DROP INDEX "${idx.rows[0]!.indexname}"`);
    let s0 = serverCpuS(postmaster);
    let t = performance.now();
    const cpu0 = process.cpuUsage();
    for (let f = 0; f < n; f += 10_000) {
      await store.apply(syntheticFiles(data, dims, f, Math.min(n, f + 10_000)), []);
      if (f % 200_000 === 0 && f) console.log(`  loaded ${f} rows, ${((performance.now() - t) / 1000).toFixed(0)} s`);
    }
    pgR.loadS = (performance.now() - t) / 1000;
    const clientCpu = process.cpuUsage(cpu0);
    pgR.clientCpuS = (clientCpu.user + clientCpu.system) / 1e6;
    pgR.serverCpuLoadS = serverCpuS(postmaster) - s0;
    console.log(`  load (binary COPY): ${(pgR.loadS as number).toFixed(1)} s`);
    s0 = serverCpuS(postmaster);
    t = performance.now();
    // Progress of the build from a second connection (pgvector reports tuples done), for an honest
    // extrapolation when a large build has to be stopped.
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    const tb = t;
    const progress = setInterval(() => {
      watcher.query<{ phase: string; tuples_done: string; tuples_total: string }>('SELECT phase, tuples_done::text, tuples_total::text FROM pg_stat_progress_create_index')
        .then((r) => {
          const x = r.rows[0];
          if (x) console.log(`  HNSW build ${((performance.now() - tb) / 1000).toFixed(0)} s: ${x.phase}, ${x.tuples_done}/${x.tuples_total} tuples, server CPU ${(serverCpuS(postmaster) - s0).toFixed(0)} s`);
        }, () => undefined);
    }, 60_000);
    try {
      await store.client.query(`CREATE INDEX ON "${store.prefix}_chunks" USING hnsw (embedding vector_cosine_ops) WITH (m = ${M}, ef_construction = ${EFC})`);
    } finally {
      clearInterval(progress);
      await watcher.end().catch(() => undefined);
    }
    pgR.hnswBuildS = (performance.now() - t) / 1000;
    pgR.serverCpuBuildS = serverCpuS(postmaster) - s0;
    console.log(`  HNSW build: ${(pgR.hnswBuildS as number).toFixed(1)} s`);
    const lat: number[] = [];
    let hit = 0;
    for (let q = 0; q < Q; q++) {
      const t1 = performance.now();
      const got = await store.queryVector(queries.subarray(q * dims, (q + 1) * dims), 10, EF);
      lat.push(performance.now() - t1);
      const want = new Set(exact[q]!.map((row) => `src/f${Math.floor(row / 10)}.ts:${row}`));
      hit += got.filter((h) => want.has(h.id)).length;
    }
    lat.sort((a, b) => a - b);
    // One file of 10 chunks changed: its rows replaced in one transaction.
    const fresh = clustered(10, dims, 3);
    const upd = syntheticFiles(fresh, dims, 0, 10, 'v2').map((f) => ({ ...f, path: 'src/f0.ts', chunks: f.chunks.map((c) => ({ ...c, path: 'src/f0.ts' })) }));
    t = performance.now();
    const applied = await store.apply(upd, []);
    const updateMs = performance.now() - t;
    const size = await store.client.query<{ bytes: string }>(`SELECT pg_total_relation_size($1)::text AS bytes`, [`${store.prefix}_chunks`]);
    Object.assign(pgR, {
      p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), recallAt10: hit / (Q * 10),
      oneFileUpdate: { walBytes: applied.walBytes, ms: updateMs }, chunksTableMB: Number(size.rows[0]!.bytes) / 2 ** 20,
    });
    save(resultName, result);
    await store.close();
  } finally {
    server.stop();
  }
  if (only === 'postgres') {
    console.log(JSON.stringify(result, null, 2));
    return;
  }

  // Local store on the same vectors (VectorStore: upserts, then save builds the HNSW graph).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bench-local-'));
  try {
    const local = await VectorStore.create(dir, identity, { M, efConstruction: EFC });
    const records: ChunkRecord[] = [];
    for (let i = 0; i < n; i++) records.push({ id: `src/f${Math.floor(i / 10)}.ts:${i}`, path: `src/f${Math.floor(i / 10)}.ts`, startLine: (i % 10) * 10 + 1, endLine: (i % 10) * 10 + 10, contentHash: `h${i}` });
    let t = performance.now();
    const lc0 = process.cpuUsage();
    local.upsert(records, data);
    local.compact(); // the first save builds the HNSW base (otherwise it writes a delta, searched exactly)
    await local.save();
    const buildS = (performance.now() - t) / 1000;
    const lc1 = process.cpuUsage(lc0);
    const buildCpuS = (lc1.user + lc1.system) / 1e6;
    const lat: number[] = [];
    let hit = 0;
    for (let q = 0; q < Q; q++) {
      const t1 = performance.now();
      const got = local.query(queries.subarray(q * dims, (q + 1) * dims), 10, { ef: EF });
      lat.push(performance.now() - t1);
      const want = new Set(exact[q]!.map((row) => `src/f${Math.floor(row / 10)}.ts:${row}`));
      hit += got.filter((h) => want.has(h.id)).length;
    }
    lat.sort((a, b) => a - b);
    const before = new Map(fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f)).mtimeMs]));
    const fresh = clustered(10, dims, 3);
    local.deleteByPath('src/f0.ts');
    local.upsert(Array.from({ length: 10 }, (_, i) => ({ id: `src/f0.ts:${i}v2`, path: 'src/f0.ts', startLine: i * 10 + 1, endLine: i * 10 + 10, contentHash: `h${i}v2` })), fresh);
    t = performance.now();
    await local.save();
    const updateMs = performance.now() - t;
    let written = 0;
    for (const f of fs.readdirSync(dir)) {
      const st = fs.statSync(path.join(dir, f));
      if (before.get(f) !== st.mtimeMs) written += st.size;
    }
    result.local = { buildS, buildCpuS, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), recallAt10: hit / (Q * 10), oneFileUpdate: { bytesWritten: written, ms: updateMs }, bytesOnDisk: local.stats().bytesOnDisk };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const pgR = result.postgres as Record<string, any>;
  const lo = result.local as Record<string, any>;
  console.log(`${n} × ${dims} clustered, cosine, M=${M}, efConstruction=${EFC}, ef_search=${EF}, ${Q} queries (exact top-10 as truth)
                         PostgreSQL+pgvector     local HNSW store
  bulk load (COPY)       ${pgR.loadS.toFixed(1).padStart(8)} s              (in the build)${pgR.insertBaseline ? `
  old INSERT path        ${pgR.insertBaseline.loadS.toFixed(1).padStart(8)} s for ${pgR.insertBaseline.rows} rows (${(pgR.insertBaseline.rows / pgR.insertBaseline.loadS).toFixed(0)} rows/s vs COPY ${(n / pgR.loadS).toFixed(0)} rows/s)` : ''}
  HNSW build             ${pgR.hnswBuildS.toFixed(1).padStart(8)} s          ${lo.buildS.toFixed(1).padStart(8)} s (upserts + save)
  query p50 / p99        ${pgR.p50Ms.toFixed(2)} / ${pgR.p99Ms.toFixed(2)} ms      ${lo.p50Ms.toFixed(2)} / ${lo.p99Ms.toFixed(2)} ms
  recall@10              ${pgR.recallAt10.toFixed(3).padStart(8)}            ${lo.recallAt10.toFixed(3).padStart(8)}
  one-file update        ${(pgR.oneFileUpdate.walBytes / 1024).toFixed(0)} KiB WAL, ${pgR.oneFileUpdate.ms.toFixed(0)} ms    ${(lo.oneFileUpdate.bytesWritten / 1024).toFixed(0)} KiB written, ${lo.oneFileUpdate.ms.toFixed(0)} ms`);
  save(resultName, result);
}

const parts: Record<string, () => Promise<void>> = { extract: benchExtract, merge: benchMerge, postgres: benchPostgres };
const run = parts[part ?? ''];
if (!run) {
  console.error('Usage: tsx bench/scale.ts extract|merge|postgres [options] (see the header of bench/scale.ts)');
  process.exit(2);
}
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
