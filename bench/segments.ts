// Benchmark of the index's storage, before and after the segment format, in one run (numbers, not
// pass/fail). "before" is the store / lexical index / catalog of commit BASELINE (one HNSW file + JSON
// metadata, one MiniSearch JSON, one catalog JSON, each rewritten by every save), taken from git into
// bench/.baseline/ (ignored); "after" is the code of this checkout. Both get the same synthetic index:
// N chunks × 384 dims (clustered vectors), 14 chunks per file (the vite repository's ratio), a short
// code-like text per chunk for the lexical index.
//
//   tsx bench/segments.ts [--n 100000] [--dims 384] [--queries 100] [--words 24] [--only before|after]
//
// Per implementation, in its own process (so peak RSS is its own):
//   build       every chunk added in checkpoints of 2048 (store + lexical + catalog saved each time, as
//               the indexer does), then the final save (after: the compaction a first index runs)
//   bytes       on disk after the build
//   open        store + lexical + catalog opened, in process, and a cold `search` as a new process
//               (open everything, one vector query, one lexical query; page cache warm)
//   edit        one file edited (1 chunk's content changes, the chunks after it move: new ids, reused
//               vectors), applied and saved like the indexer does: bytes written (from /proc/self/io
//               wchar) and time, in process and as a whole new process (open, apply, save; the model and
//               the folder walk of a real `index` are not in it, see bench/index.ts for those)
//   query       p50 / p99 latency and recall@10 against exact search, ef 50 and 100, 100 fresh queries,
//               on the store as the edit left it (after: base + one delta)
//   peak RSS    of the process
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { exactSearch } from '../src/core/store/exact';
import { seededRandom } from '../src/core/random';
import { gaussian, gaussianCentres, percentile as pct, pointNearCentre } from './synthetic';
import type { RecipeIdentity } from '../src/core/types';

const BASELINE = 'd1c02d8';
const BENCH = __dirname;
const REPO = path.resolve(BENCH, '..');
const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dims: { type: 'string', default: '384' },
    queries: { type: 'string', default: '100' },
    words: { type: 'string', default: '24' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string' },
    // HNSW build parameters of the "after" store (the "before" side keeps its own defaults)
    M: { type: 'string', default: '16' },
    'ef-construction': { type: 'string', default: '200' },
    // ef values to measure; "auto" = the product's default (no ef given: the store's efSearch, which follows its size)
    efs: { type: 'string', default: '50,100,auto' },
    // chunks per build checkpoint (the indexer's default is 2048 or 30 s; larger builds a 1M store faster)
    checkpoint: { type: 'string', default: '2048' },
    // keep the built "after" store in .cache/segments/ and reuse it (each run works on a hard-linked copy:
    // every writer of the store replaces files by rename, never in place, so the cached files stay intact)
    'no-cache': { type: 'boolean', default: false },
    // internal: run one implementation / one child step
    impl: { type: 'string' },
    step: { type: 'string' },
    dir: { type: 'string' },
  },
});
const N = opts.quick ? 20_000 : Number(opts.n);
const D = Number(opts.dims);
const Q = Number(opts.queries);
const WORDS = Number(opts.words);
const PER_FILE = 14;
const CHECKPOINT = Number(opts.checkpoint);
const HNSW_M = Number(opts.M);
const EF_CONSTRUCTION = Number(opts['ef-construction']);
const EFS: (number | 'auto')[] = opts.efs!.split(',').map((e) => (e === 'auto' ? 'auto' : Number(e)));
const CACHE = path.join(REPO, '.cache', 'segments');
// The build holds a whole first index in one process (delta records, keyword postings, catalog): at 1M
// chunks that passes Node's default heap limit (~4 GB here), as it would in one indexer process.
const HEAP_MB = Math.max(4096, Math.ceil(N / 1e6 * 12288));
const recipe: RecipeIdentity = { model: 'bench', modelHash: 'bench', layer: 'last', pooling: 'mean', normalize: true, dims: D };
const chunking = { version: 1, maxTokens: 256, overlapLines: 2, scale: 1 };

// ------------------------------------------------------------------------------------------------
// Data (deterministic, regenerated in each process)

let centres: Float32Array | null = null;
/** Row i of data set `seed`: a point near one of 300 Gaussian centres (rows are independent, so a process can make one). */
function vectorRow(i: number, seed: number): Float32Array {
  centres ??= gaussianCentres(300, D, 7);
  const r = seededRandom((Math.imul(seed, 2654435761) + i) >>> 0);
  const out = new Float32Array(D);
  pointNearCentre(centres, D, r, gaussian(r), out, 0);
  return out;
}
function vectors(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * D);
  for (let i = 0; i < n; i++) out.set(vectorRow(i, seed), i * D);
  return out;
}
const SYLLABLES = ['get', 'set', 'parse', 'load', 'read', 'write', 'http', 'url', 'config', 'cache', 'index', 'store', 'node', 'tree', 'map', 'list', 'user', 'name', 'file', 'path', 'token', 'layer', 'vector', 'query', 'save', 'open', 'close', 'item', 'value', 'key'];
function text(i: number): string {
  const r = seededRandom(1000 + i);
  const words: string[] = [];
  for (let w = 0; w < WORDS; w++) {
    // Zipf-ish identifiers: camelCase pairs of syllables plus a numbered tail for rare ones
    const a = SYLLABLES[Math.floor(r() * r() * SYLLABLES.length)];
    const b = SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    words.push(r() < 0.3 ? `${a}${b[0].toUpperCase()}${b.slice(1)}${Math.floor(r() * r() * 5000)}` : `${a}_${b}`);
  }
  return words.join(' ');
}
const fileOf = (i: number) => `src/dir${Math.floor(i / PER_FILE) % 97}/file${Math.floor(i / PER_FILE)}.ts`;
function record(i: number, lineShift = 0, hash = `h${i}`) {
  const line = (i % PER_FILE) * 20 + 1 + lineShift;
  return { id: `${fileOf(i)}#L${line}-L${line + 19}@${hash}`, path: fileOf(i), startLine: line, endLine: line + 19, contentHash: hash };
}

function wchar(): number {
  const m = /wchar: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}
function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((s, n) => s + fs.statSync(path.join(dir, n)).size, 0);
}
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

// ------------------------------------------------------------------------------------------------
// The two implementations behind one shape

interface Parts {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  VectorStore: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  LexicalIndex: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  Catalog: any;
}

function baselineDir(): string {
  return path.join(BENCH, '.baseline', BASELINE);
}

/** Extracts the baseline's src/ from git (once). Returns null with the reason when it cannot. */
function prepareBaseline(): string | null {
  const dir = baselineDir();
  if (fs.existsSync(path.join(dir, 'src/core/store/vectorStore.ts'))) return null;
  try {
    fs.mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', BASELINE, 'src'], { cwd: REPO, maxBuffer: 256 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    return null;
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    return `cannot take commit ${BASELINE} from git (${(err as Error).message.split('\n')[0]}); a shallow clone lacks it`;
  }
}

async function load(impl: string): Promise<Parts> {
  const root = impl === 'before' ? path.join(baselineDir(), 'src') : path.join(REPO, 'src');
  const store = await import(path.join(root, 'core/store/vectorStore.ts'));
  const lexical = await import(path.join(root, 'core/search/lexical.ts'));
  const catalog = await import(path.join(root, 'core/index/catalog.ts'));
  return { VectorStore: store.VectorStore, LexicalIndex: lexical.LexicalIndex, Catalog: catalog.Catalog };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function openAll(p: Parts, dir: string): Promise<{ store: any; lexical: any; catalog: any }> {
  const store = await p.VectorStore.open(dir);
  const lexical = await p.LexicalIndex.load(path.join(dir, 'lexical.json'));
  const { catalog } = await p.Catalog.open(path.join(dir, 'catalog.json'), { identity: recipe, chunking, root: '/bench' });
  return { store, lexical, catalog };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function saveAll(impl: string, dir: string, parts: { store: any; lexical: any; catalog: any }): Promise<void> {
  // As the indexer's checkpoint does (src/core/index/indexer.ts).
  await parts.store.save();
  await parts.lexical.save(path.join(dir, 'lexical.json'));
  await parts.catalog.save();
  if (impl === 'after' && parts.lexical.segmentCount > 32) await parts.lexical.save(path.join(dir, 'lexical.json'), { compact: true });
  if (impl === 'after' && parts.catalog.segmentCount > 32) await parts.catalog.save({ compact: true });
}

/** The one-file edit: chunk k of file `file` changes; the chunks after it move down 3 lines. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function applyEdit(parts: { store: any; lexical: any; catalog: any }, file: number): number {
  const first = file * PER_FILE;
  const k = 6;
  const records = [];
  const reuse: Float32Array[] = [];
  for (let c = first + k; c < first + PER_FILE && c < N; c++) {
    const old = record(c);
    const now = c === first + k ? record(c, 0, `edited${c}`) : record(c, 3);
    parts.store.deleteById(old.id);
    parts.lexical.remove(old.id);
    records.push(now);
    reuse.push(c === first + k ? vectorRow(c, 3) : vectorRow(c, 1)); // a new vector for the changed chunk, the old ones reused
    parts.lexical.add(now.id, now.path, text(c) + (c === first + k ? ' editedToken' : ''));
  }
  const flat = new Float32Array(records.length * D);
  reuse.forEach((v, i) => flat.set(v, i * D));
  parts.store.upsert(records, flat);
  const chunks = [];
  for (let c = first; c < first + PER_FILE && c < N; c++) {
    const r = c < first + k ? record(c) : c === first + k ? record(c, 0, `edited${c}`) : record(c, 3);
    chunks.push({ id: r.id, startLine: r.startLine, endLine: r.endLine, contentHash: r.contentHash });
  }
  parts.catalog.set(fileOf(first), { size: 1234, mtimeMs: Date.now(), hash: 'edited', chunks });
  return records.length;
}

// ------------------------------------------------------------------------------------------------
// Child steps (a fresh process each)

async function childStep(impl: string, step: string, dir: string): Promise<void> {
  const t0 = performance.now();
  const p = await load(impl);
  const tLoaded = performance.now();
  const parts = await openAll(p, dir);
  const tOpen = performance.now();
  const out: Record<string, number> = { importMs: tLoaded - t0, openMs: tOpen - tLoaded };
  if (step === 'search') {
    const q = vectors(1, 99);
    const hits = parts.store.query(q, 10);
    const lex = parts.lexical.search('parse_config loadCache', 50);
    out.queryMs = performance.now() - tOpen;
    out.hits = hits.length + lex.length;
    out.chunks = parts.catalog.counts().chunks;
  } else if (step === 'edit') {
    const tEdit = performance.now();
    const before = wchar();
    applyEdit(parts, Math.floor(N / PER_FILE / 3));
    await saveAll(impl, dir, parts);
    out.editMs = performance.now() - tEdit;
    out.bytesWritten = wchar() - before;
  }
  const cpu = process.cpuUsage();
  out.processCpuMs = (cpu.user + cpu.system) / 1000;
  out.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(JSON.stringify(out) + '\n');
}

function commonArgs(): string[] {
  return ['--n', String(N), '--dims', String(D), '--queries', String(Q), '--words', String(WORDS), '--M', String(HNSW_M), '--ef-construction', String(EF_CONSTRUCTION), '--efs', EFS.join(','), '--checkpoint', String(CHECKPOINT), ...(opts['no-cache'] ? ['--no-cache'] : [])];
}

function spawnStep(impl: string, step: string, dir: string): { wallMs: number; result: Record<string, number> } {
  const t0 = performance.now();
  const r = spawnSync(tsx, [__filename, '--impl', impl, '--step', step, '--dir', dir, ...commonArgs()], { encoding: 'utf8' });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${step} (${impl}) failed: ${r.stderr}`);
  return { wallMs, result: JSON.parse(r.stdout.trim().split('\n').pop()!) };
}

// ------------------------------------------------------------------------------------------------
// One implementation, in its own process

/** Builds the synthetic index into `dir`: checkpoints of 2048 chunks, then (after) the first index's compaction. */
async function build(impl: string, p: Parts, dir: string, log: (m: string) => void): Promise<Record<string, number>> {
  const w0 = wchar();
  const tb = performance.now();
  const c0 = process.cpuUsage();
  const store = await p.VectorStore.create(dir, recipe, impl === 'after' ? { initialCapacity: Math.min(N, 1 << 20), M: HNSW_M, efConstruction: EF_CONSTRUCTION } : { initialCapacity: Math.min(N, 1 << 20) });
  const lexical = p.LexicalIndex.empty();
  const { catalog } = await p.Catalog.open(path.join(dir, 'catalog.json'), { identity: recipe, chunking, root: '/bench' });
  const parts = { store, lexical, catalog };
  for (let i = 0; i < N; i += CHECKPOINT) {
    const m = Math.min(CHECKPOINT, N - i);
    const recs = Array.from({ length: m }, (_, k) => record(i + k));
    const vecs = new Float32Array(m * D);
    for (let k = 0; k < m; k++) vecs.set(vectorRow(i + k, 1), k * D);
    store.upsert(recs, vecs);
    for (let k = 0; k < m; k++) lexical.add(recs[k].id, recs[k].path, text(i + k));
    for (let f = Math.floor(i / PER_FILE); f * PER_FILE < i + m; f++) {
      const chunks = [];
      for (let c = f * PER_FILE; c < Math.min((f + 1) * PER_FILE, N); c++) {
        const r = record(c);
        chunks.push({ id: r.id, startLine: r.startLine, endLine: r.endLine, contentHash: r.contentHash });
      }
      catalog.set(fileOf(f * PER_FILE), { size: 1000, mtimeMs: 1.7e12, hash: `f${f}`, chunks });
    }
    await saveAll(impl, dir, parts);
    if ((i / CHECKPOINT) % 10 === 0) log(`build ${i}/${N} (${((performance.now() - tb) / 1000).toFixed(0)} s)`);
  }
  const checkpointsS = (performance.now() - tb) / 1000;
  let compactS = 0;
  if (impl === 'after') {
    // What a first index ends with: the compaction that builds the HNSW graph and merges the segments.
    const tc = performance.now();
    store.compact();
    await store.save();
    await lexical.save(path.join(dir, 'lexical.json'), { compact: true });
    await catalog.save({ compact: true });
    compactS = (performance.now() - tc) / 1000;
  }
  return {
    buildS: +((performance.now() - tb) / 1000).toFixed(1),
    buildCpuS: +(cpuMsSince(c0) / 1000).toFixed(1),
    checkpointsS: +checkpointsS.toFixed(1),
    compactS: +compactS.toFixed(1),
    buildMBWritten: +((wchar() - w0) / 1e6).toFixed(1),
    buildPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function runImpl(impl: string): Promise<Record<string, unknown>> {
  const p = await load(impl);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `el-seg-${impl}-`));
  const log = (m: string) => process.stderr.write(`  [${impl}] ${m}\n`);
  try {
    let built: Record<string, number>;
    let fromCache = false;
    const cached = path.join(CACHE, `${impl}-${N}x${D}-M${HNSW_M}-efc${EF_CONSTRUCTION}-w${WORDS}-c${CHECKPOINT}`);
    if (impl === 'after' && !opts['no-cache']) {
      if (!fs.existsSync(path.join(cached, 'built.json'))) {
        const tmp = `${cached}.tmp`;
        fs.rmSync(tmp, { recursive: true, force: true });
        fs.mkdirSync(tmp, { recursive: true });
        built = await build(impl, p, tmp, log);
        fs.writeFileSync(path.join(tmp, 'built.json'), JSON.stringify(built) + '\n');
        fs.renameSync(tmp, cached);
      } else {
        built = JSON.parse(fs.readFileSync(path.join(cached, 'built.json'), 'utf8'));
        fromCache = true;
        log(`store taken from ${path.relative(REPO, cached)} (built ${built.buildS} s earlier)`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      execFileSync('cp', ['-al', cached, dir]);
      fs.rmSync(path.join(dir, 'built.json'));
    } else {
      built = await build(impl, p, dir, log);
    }
    const buildS = built.buildS;
    const buildBytesWritten = built.buildMBWritten * 1e6;
    const bytesOnDisk = dirBytes(dir);
    log(`built in ${buildS.toFixed(1)} s (HNSW + merge ${built.compactS} s), ${(bytesOnDisk / 1e6).toFixed(1)} MB`);

    // Open in process.
    const to = performance.now();
    const co = process.cpuUsage();
    await openAll(p, dir);
    const openMs = performance.now() - to;
    const openCpuMs = cpuMsSince(co);
    // Cold search as a process (twice; the second number is kept: the first also warms tsx's cache).
    spawnStep(impl, 'search', dir);
    const search = spawnStep(impl, 'search', dir);
    log(`open ${openMs.toFixed(0)} ms, search process ${search.wallMs.toFixed(0)} ms`);

    // One-file edit, in process (on the parts opened fresh, as a long-lived editor process holds them).
    const live = await openAll(p, dir);
    const we = wchar();
    const te = performance.now();
    const ce = process.cpuUsage();
    const changedChunks = applyEdit(live, Math.floor(N / PER_FILE / 2));
    await saveAll(impl, dir, live);
    const editMs = performance.now() - te;
    const editCpuMs = cpuMsSince(ce);
    const editBytes = wchar() - we;
    const bytesAfterEdit = dirBytes(dir);
    // ...and as a process: the same kind of edit to another file, on the saved state.
    const editProcess = spawnStep(impl, 'edit', dir);
    log(`edit: ${editBytes} bytes written, ${editMs.toFixed(0)} ms in process, ${editProcess.wallMs.toFixed(0)} ms as a process`);

    // Queries on the store as the edits left it.
    const queries = vectors(Q, 2);
    const current = await p.VectorStore.open(dir);
    const snap = current.snapshot();
    const ids: string[] = snap.records.map((r: { id: string }) => r.id);
    const te2 = performance.now();
    const truth = Array.from({ length: Q }, (_, q) => new Set(Array.from(exactSearch(snap.vectors, D, queries.subarray(q * D, (q + 1) * D), 10, 'cosine').rows, (r) => ids[r])));
    const exactMsPerQuery = (performance.now() - te2) / Q;
    const efs = [];
    for (const efSpec of EFS) {
      const ef = efSpec === 'auto' ? undefined : efSpec;
      const times: number[] = [];
      let found = 0;
      for (let q = 0; q < Q; q++) {
        const t = performance.now();
        const hits = current.query(queries.subarray(q * D, (q + 1) * D), 10, ef === undefined ? {} : { ef });
        times.push(performance.now() - t);
        for (const h of hits) if (truth[q].has(h.id)) found++;
      }
      times.sort((a, b) => a - b);
      efs.push({ ef: efSpec === 'auto' ? `auto (${current.stats().efSearch})` : efSpec, recallAt10: +(found / (Q * 10)).toFixed(4), p50ms: +pct(times, 50).toFixed(3), p99ms: +pct(times, 99).toFixed(3) });
    }
    return {
      impl,
      n: N,
      dims: D,
      M: impl === 'after' ? HNSW_M : 16,
      efConstruction: impl === 'after' ? EF_CONSTRUCTION : 200,
      fromCache,
      build: built,
      buildS: +buildS.toFixed(1),
      buildMBWritten: +(buildBytesWritten / 1e6).toFixed(1),
      bytesOnDisk,
      openMs: +openMs.toFixed(0),
      openCpuMs: +openCpuMs.toFixed(0),
      searchProcessMs: +search.wallMs.toFixed(0),
      searchProcessInside: search.result,
      edit: {
        chunksChanged: changedChunks,
        bytesWritten: editBytes,
        shareOfStore: +(editBytes / bytesAfterEdit).toFixed(5),
        inProcessMs: +editMs.toFixed(0),
        inProcessCpuMs: +editCpuMs.toFixed(0),
        processMs: +editProcess.wallMs.toFixed(0),
        processInside: editProcess.result,
      },
      query: { exactMsPerQuery: +exactMsPerQuery.toFixed(1), efs },
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------

function table(rows: Record<string, any>[]): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[]) => lines.push('| ' + cells.join(' | ') + ' |');
  row(['store', 'n×d', 'build s', 'MB on disk', 'open ms (CPU ms)', 'cold search process ms (CPU ms)', 'edit: bytes written', 'share of store', 'edit ms in process (CPU ms)', 'edit process ms (CPU ms)', 'p50 / p99 ms (ef 100)', 'recall@10 (ef 50 / 100)', 'product default ef: p50 ms, recall@10', 'peak RSS MiB']);
  row(Array(14).fill('---'));
  for (const r of rows) {
    const e100 = r.query.efs.find((e: { ef: number }) => e.ef === 100) ?? r.query.efs[r.query.efs.length - 1];
    const e50 = r.query.efs.find((e: { ef: number }) => e.ef === 50) ?? r.query.efs[0];
    const auto = r.query.efs.find((e: { ef: number | string }) => typeof e.ef === 'string');
    const cpu = (v: number | undefined) => (v === undefined ? '' : ` (${Math.round(v)})`);
    row([r.impl, `${r.n}×${r.dims}`, r.buildS, (r.bytesOnDisk / 1e6).toFixed(1), `${r.openMs}${cpu(r.openCpuMs)}`, `${r.searchProcessMs}${cpu(r.searchProcessInside.processCpuMs)}`,
      r.edit.bytesWritten.toLocaleString('en'), `${(r.edit.shareOfStore * 100).toFixed(2)}%`, `${r.edit.inProcessMs}${cpu(r.edit.inProcessCpuMs)}`,
      `${r.edit.processMs}${cpu(r.edit.processInside.processCpuMs)}`, `${e100.p50ms} / ${e100.p99ms}`, `${e50.recallAt10} / ${e100.recallAt10}`, auto ? `${auto.ef}: ${auto.p50ms}, ${auto.recallAt10}` : '', r.peakRssMiB]);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (opts.step) return childStep(opts.impl!, opts.step, opts.dir!);
  if (opts.impl) {
    process.stdout.write(JSON.stringify(await runImpl(opts.impl)) + '\n');
    return;
  }
  const impls = opts.only ? [opts.only] : ['before', 'after'];
  const rows: Record<string, unknown>[] = [];
  const notes: string[] = [];
  if (impls.includes('before')) {
    const why = prepareBaseline();
    if (why) {
      notes.push(`before: skipped, ${why}`);
      impls.splice(impls.indexOf('before'), 1);
    }
  }
  const tsxStart = performance.now();
  spawnSync(tsx, ['-e', '0']);
  const emptyProcessMs = performance.now() - tsxStart;
  console.error(`segment store benchmark: ${N} × ${D}, ${PER_FILE} chunks per file, ${os.cpus().length} cores, node ${process.version}`);
  for (const impl of impls) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = spawnSync(tsx, [__filename, '--impl', impl, ...commonArgs()], {
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_MB}`.trim() }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`${impl} failed (exit ${r.status})`);
    const row = JSON.parse(r.stdout.trim().split('\n').pop()!);
    row.wallS = +((performance.now() - t0) / 1000).toFixed(1);
    void cpu0;
    rows.push(row);
  }
  const t = table(rows as Record<string, any>[]);
  console.log(t);
  for (const n of notes) console.log(n);
  console.log(`(an empty tsx process takes ${emptyProcessMs.toFixed(0)} ms here; the process numbers include it)`);
  const out = path.join(BENCH, `results-segments-${N}.json`);
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), baseline: BASELINE, n: N, dims: D, queries: Q, cores: os.cpus().length, node: process.version, emptyProcessMs: Math.round(emptyProcessMs), notes, rows, table: t }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
