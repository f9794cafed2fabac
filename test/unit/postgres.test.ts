// The shared index in a real PostgreSQL + pgvector (a throwaway server started here; skipped with the
// reason when the server binaries or pgvector are missing). Compared against the local store on the
// same folder and model: same chunks, top-10 vector overlap, identical lexical ranking.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { Extractor } from '../../src/core/extract/extractor';
import { openIndexParts, WorkspaceIndexer } from '../../src/core/index/indexer';
import { PostgresStore } from '../../src/core/store/postgres';
import { PostgresSearch, refreshPostgres } from '../../src/core/store/postgresIndex';
import { kindOfPath } from '../../src/core/search/kinds';
import { WorkspaceSearch } from '../../src/core/search/search';
import { UserError, type RecipeIdentity, type TextEmbedder } from '../../src/core/types';
import { EngineClient } from '../../src/host/engineClient';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { findPostgres, startPostgres, type PgServer } from '../helpers/pgServer';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const WORKER = path.join(ROOT, 'dist', 'worker.js');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const install = findPostgres();
const skip = 'skip' in install ? install.skip : !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? 'dist/cli.js missing: run `npm run build` first' : false;

const WORDS = 'user name parse http url request retry socket cache token vector index query store layer model config load save file path error timeout client server queue lock read write stream buffer batch'.split(' ');

/** A folder of code-like files with a seeded generator (deterministic). */
function writeWorkspace(dir: string, files: number): void {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const word = () => WORDS[Math.floor(rnd() * WORDS.length)]!;
  const ident = () => word() + word()[0]!.toUpperCase() + word().slice(1);
  for (let f = 0; f < files; f++) {
    const lines: string[] = [`// module ${f}: ${word()} ${word()} ${word()}`];
    for (let fn = 0; fn < 4; fn++) {
      lines.push(`export function ${ident()}(${word()}: string, ${word()}_${word()}: number) {`);
      for (let l = 0; l < 3 + Math.floor(rnd() * 5); l++) lines.push(`  const ${ident()} = ${word()}.${ident()}(${word()}, "${word()} ${word()}");`);
      lines.push(`  return ${word()};`, '}', '');
    }
    const sub = path.join(dir, f % 3 === 0 ? 'src' : f % 3 === 1 ? 'lib' : 'tools');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `m${f}_${word()}.ts`), lines.join('\n'));
  }
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const QUERIES = ['parse http url', 'retry request timeout', 'cache token', 'vector index query', 'socket server client', 'load config file',
  'stream buffer batch', 'userName', 'write_lock', 'queue read error', 'store layer model', 'save path', 'module 12', 'http', 'lock'];

suiteRequiring('PostgreSQL + pgvector store', skip, () => {
  let server: PgServer;
  let tmp: string;
  let model: string;
  let extractor: Extractor;
  let embedder: TextEmbedder;
  let ws: string;

  before(async () => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    server = await startPostgres(install as { bin: string });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-pgtest-'));
    ws = path.join(tmp, 'ws');
    writeWorkspace(ws, 40);
    extractor = await Extractor.load({ model });
    embedder = extractor.embedder({ layer: 'last', pool: 'mean', normalize: true });
  });
  after(async () => {
    await extractor?.dispose();
    server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Local index of `ws` in a fresh storage folder, and the shared one, compared query by query. */
  async function compareWithLocal(url: string, label: string) {
    const storage = fs.mkdtempSync(path.join(tmp, 'local-'));
    const local = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder });
    await local.refresh();
    const parts = await openIndexParts(storage, embedder.identity, false);
    const search = await PostgresSearch.open({ root: ws, url, embedder });
    try {
      const pgRecords = await search.store.records();
      const localIds = parts.store.paths().flatMap((p) => parts.store.recordsOfPath(p).map((r) => r.id)).sort();
      assert.deepEqual(pgRecords.map((r) => r.id).sort(), localIds, `${label}: same chunks`);
      let overlap = 0;
      for (const q of QUERIES) {
        const v = await embedder.embed([q]);
        const a = parts.store.query(v, 10).map((h) => h.id);
        const b = (await search.store.queryVector(v, 10)).map((h) => h.id);
        overlap += a.filter((id) => b.includes(id)).length / a.length;
        const la = parts.lexical.search(q, 10);
        const lb = await search.store.queryLexical(q, 10);
        assert.equal(lb.length, la.length, `${label}: lexical hits for "${q}"`);
        la.forEach((h, i) => {
          assert.ok(Math.abs(h.score - lb[i]!.score) <= 1e-9 * Math.max(1, h.score), `${label} "${q}" #${i}: BM25 ${h.score} vs ${lb[i]!.score}`);
          assert.equal(lb[i]!.id, h.id, `${label} "${q}" #${i}`);
        });
      }
      overlap /= QUERIES.length;
      assert.ok(overlap >= 0.95, `${label}: mean top-10 vector overlap ${overlap}`);
      return { overlap, chunks: localIds.length };
    } finally {
      await search.close();
    }
  }

  test('index, search, edit / delete / rename one file, re-index: equal to the local store', async () => {
    server.createDatabase('main');
    const url = server.url('main');
    const first = await refreshPostgres({ root: ws, url, embedder });
    assert.equal(first.filesIndexed, 40);
    assert.ok(first.chunksEmbedded > 100, `${first.chunksEmbedded} chunks`);
    const c1 = await compareWithLocal(url, 'initial');
    assert.equal(first.chunksTotal, c1.chunks);

    const s = await PostgresSearch.open({ root: ws, url, embedder });
    const hits = await s.search('parse http url', { k: 5, mode: 'hybrid' });
    await s.close();
    assert.equal(hits.length, 5);
    assert.ok(hits.every((h) => h.preview.length > 0 && !h.stale));

    const src = path.join(ws, 'src');
    const files = fs.readdirSync(src).sort();
    fs.appendFileSync(path.join(src, files[0]!), '\nexport const addedLine = "retry socket timeout";\n');
    fs.rmSync(path.join(src, files[1]!));
    fs.renameSync(path.join(src, files[2]!), path.join(ws, 'lib', `renamed_${files[2]}`));
    const second = await refreshPostgres({ root: ws, url, embedder });
    assert.equal(second.filesIndexed, 2, 'the edited file and the renamed one');
    assert.equal(second.filesRemoved, 2, 'the deleted file and the old name');
    assert.equal(second.filesUnchanged, 37);
    // The edited file's untouched chunks reuse their vectors; the renamed file is embedded again, as
    // its context header names the new path (as the local index does).
    assert.ok(second.chunksReused >= 1, `unchanged chunks reuse their vectors (${second.chunksReused})`);
    assert.ok(second.walBytes > 0 && second.walBytes < first.walBytes / 4, `one-file update WAL ${second.walBytes} vs full ${first.walBytes}`);
    await compareWithLocal(url, 'after edit/delete/rename');

    const third = await refreshPostgres({ root: ws, url, embedder });
    assert.equal(third.filesIndexed + third.filesRemoved + third.chunksEmbedded, 0);
    assert.equal(third.walBytes, 0, 'nothing to do writes nothing');
  });

  test('two indexers at once: one waits, no duplicates; SIGKILL mid-update leaves the previous state', async () => {
    server.createDatabase('concurrent');
    const url = server.url('concurrent');
    const args = ['index', ws, '--model', model, '--store', url];
    const run = () => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    const n = listTree(ws).filter((f) => f.endsWith('.ts')).length;
    const [a, b] = await Promise.all([run(), run()]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const both = a.stderr + b.stderr;
    assert.match(both, new RegExp(`Found ${n} files: ${n} new or changed`));
    assert.match(both, new RegExp(`waiting for another indexer[^\n]*\nFound ${n} files: 0 new or changed, ${n} unchanged`));
    const store = await PostgresStore.open(url, embedder.identity, { create: false });
    const before = await store.records();
    const counts = await store.counts();
    assert.equal(new Set(before.map((r) => r.id)).size, before.length, 'no duplicate chunks');
    assert.equal(counts.chunks, before.length, 'BM25 document count equals the rows');

    // Hold the statistics row so the next writer blocks on its last statement, mid-transaction; kill it there.
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM embedding_lens_recipes WHERE key = $1 FOR UPDATE', [store.prefix]);
    for (const f of fs.readdirSync(path.join(ws, 'tools')).slice(0, 5)) fs.appendFileSync(path.join(ws, 'tools', f), '\n// changed for the kill test\n');
    fs.writeFileSync(path.join(ws, 'tools', 'new_file.ts'), 'export const fresh = "a new file";\n');
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('close', (_c, sig) => resolve(sig)));
    let blocked = false;
    for (let i = 0; i < 600 && !blocked; i++) {
      const r = await store.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'embedding-lens index' AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL`);
      blocked = r.rows[0].n > 0;
      if (!blocked) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(blocked, 'the writer reached its last statement with its changes written');
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    await blocker.query('ROLLBACK');
    await blocker.end();
    // Readers see the previous state, complete.
    const mid = await store.records();
    assert.deepEqual(mid, before);
    assert.deepEqual((await store.counts()).chunks, counts.chunks);
    const lex = await store.queryLexical('fresh', 5);
    assert.equal(lex.length, 0, 'the killed update is not visible');
    // A re-run completes the update.
    const again = cli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`Found ${n + 1} files: 6 new or changed, ${n - 5} unchanged`));
    const after = await store.records();
    assert.ok(after.some((r) => r.path === 'tools/new_file.ts'));
    assert.equal((await store.counts()).chunks, after.length);
    assert.equal((await store.queryLexical('fresh', 5))[0]?.path, 'tools/new_file.ts');
    await store.close();
  });

  test('a kind filter: k hits of the wanted kind, the same as the local store (resolveSearchOptions shared)', async () => {
    // Many code files and a few test files whose words also fill the code files: without the deeper
    // fetch a kind filter leaves fewer than k; without the filter code files come back.
    const kws = path.join(tmp, 'kinds');
    writeWorkspace(kws, 40);
    fs.mkdirSync(path.join(kws, 'test'), { recursive: true });
    for (let t = 0; t < 6; t++) {
      fs.writeFileSync(path.join(kws, 'test', `t${t}.test.ts`), `// checks the http client ${t}\ntest('parse url ${t}', () => {\n  expect(parse("http url")).toBe(${t});\n});\n`);
    }
    server.createDatabase('kinds');
    const url = server.url('kinds');
    await refreshPostgres({ root: kws, url, embedder });
    const storage = fs.mkdtempSync(path.join(tmp, 'local-kinds-'));
    await (await WorkspaceIndexer.open({ root: kws, storageDir: storage, embedder })).refresh();
    const local = await WorkspaceSearch.open({ root: kws, storageDir: storage, embedder });
    const shared = await PostgresSearch.open({ root: kws, url, embedder });
    try {
      for (const mode of ['lexical', 'vector', 'hybrid'] as const) {
        const hits = await shared.search('parse http url', { k: 5, perFile: 1, mode, kinds: ['tests'] });
        assert.equal(hits.length, 5, `${mode}: k hits`);
        assert.ok(hits.every((h) => kindOfPath(h.path) === 'tests'), `${mode}: only tests (${hits.map((h) => h.path).join(', ')})`);
        if (mode === 'lexical') {
          const mine = await local.search('parse http url', { k: 5, perFile: 1, mode, kinds: ['tests'] });
          assert.deepEqual(hits.map((h) => [h.path, h.startLine]), mine.map((h) => [h.path, h.startLine]), 'same hits as the local store');
        }
      }
    } finally {
      await shared.close();
    }
  });

  test('recipe mismatch refused naming the field; wrong password and unreachable server named, nothing written locally', async () => {
    server.createDatabase('errors');
    const url = server.url('errors');
    await refreshPostgres({ root: ws, url, embedder });
    const treeBefore = listTree(ws);

    const other = extractor.embedder({ layer: '-2', pool: 'mean', normalize: true });
    await assert.rejects(refreshPostgres({ root: ws, url, embedder: other }), (err: UserError) => {
      assert.match(err.message, /holds no index for .*layer -2.*\n.*\n\s+differs in layer: database last, this run -2/);
      assert.equal(err.code, 'RECIPE_MISMATCH');
      assert.deepEqual(err.facts.differences, [{ field: 'layer', index: 'last', request: '-2' }]);
      assert.equal(err.facts.store, url.replace(server.password, '***'));
      return true;
    });
    // The CLI names the flag that adds a second recipe.
    const viaCli = cli(['index', ws, '--model', model, '--layer', '-2', '--store', url]);
    assert.equal(viaCli.code, 1);
    assert.match(viaCli.stderr, /differs in layer[^]*index .* --store 'postgres:\/\/postgres:\*\*\*@[^']*' --add-recipe/);
    const maxPool = extractor.embedder({ layer: 'last', pool: 'max', normalize: true });
    await assert.rejects(PostgresSearch.open({ root: ws, url, embedder: maxPool }), /differs in pooling: database mean, this run max/);
    // Asked for, a second recipe's tables go beside the first.
    const second = await refreshPostgres({ root: ws, url, embedder: other, allowNewRecipe: true });
    assert.equal(second.filesIndexed, listTree(ws).filter((f) => f.endsWith('.ts')).length);

    let r: ReturnType<typeof cli>;

    r = cli(['index', ws, '--model', model, '--store', server.url('errors', 'not-the-password')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${server.port} refused the password for user "postgres"`));
    assert.match(r.stderr, /PGPASSWORD/);
    assert.doesNotMatch(r.stderr, /not-the-password/);

    r = cli(['search', ws, 'http', '--model', model, '--store', 'postgres://postgres@127.0.0.1:1/x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot reach PostgreSQL at 127\.0\.0\.1:1: connection refused/);
    assert.deepEqual(listTree(ws), treeBefore, 'nothing written in the folder');
    assert.ok(!fs.existsSync(path.join(ws, '.embedding-lens')));
  });

  test('--similar and --rebuild with --store (CLI), equal to the local index; a rebuild re-chunks in one transaction', async () => {
    server.createDatabase('cli');
    const url = server.url('cli');
    const storage = fs.mkdtempSync(path.join(tmp, 'cli-local-'));
    let r = cli(['index', ws, '--model', model, '--store', url, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    r = cli(['index', ws, '--model', model, '--storage', storage, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const file = `src/${fs.readdirSync(path.join(ws, 'src')).sort()[3]}`;
    const similar = (extra: string[]) => {
      const out = cli(['search', ws, '--similar', `${file}:2-6`, '--model', model, '--json', '-k', '10', ...extra]);
      assert.equal(out.code, 0, out.stderr);
      return (JSON.parse(out.stdout) as { path: string; startLine: number; endLine: number; score: number }[]);
    };
    const shared = similar(['--store', url]);
    const local = similar(['--storage', storage]);
    assert.equal(shared.length, 10);
    assert.ok(!shared.some((h) => h.path === file && h.startLine <= 6 && h.endLine >= 2), 'the range itself is left out');
    const key = (h: { path: string; startLine: number }) => `${h.path}:${h.startLine}`;
    const overlap = shared.filter((h) => local.some((l) => key(l) === key(h))).length / local.length;
    assert.ok(overlap >= 0.9, `top-10 overlap with the local index ${overlap}`);
    shared.forEach((h) => {
      const l = local.find((x) => key(x) === key(h));
      if (l) assert.ok(Math.abs(l.score - h.score) < 1e-5, `${key(h)}: cosine ${h.score} vs local ${l.score}`);
    });

    // Other chunking is refused for an update and taken by a rebuild, which replaces every row at once.
    const store = await PostgresStore.open(url, embedder.identity, { create: false });
    const before = await store.records();
    r = cli(['index', ws, '--model', model, '--store', url, '--chunk-tokens', '80']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /chunked with maxTokens \d+[^]*this run would use maxTokens 80[^]*rebuild/);
    assert.deepEqual(await store.records(), before, 'nothing written');
    r = cli(['index', ws, '--model', model, '--store', url, '--chunk-tokens', '80', '--rebuild', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { filesIndexed: number; filesSeen: number; chunksEmbedded: number; chunksTotal: number; chunksRemoved: number };
    const after = await store.records();
    assert.equal(summary.filesIndexed, summary.filesSeen, 'every file redone');
    assert.equal(summary.chunksRemoved, before.length, 'every old row replaced');
    assert.ok(after.length < before.length, `larger chunks, fewer rows (${after.length} vs ${before.length})`);
    assert.equal(summary.chunksTotal, after.length);
    assert.equal(new Set(after.map((x) => x.id)).size, after.length, 'no duplicates');
    assert.equal((await store.counts()).chunks, after.length, 'BM25 document count equals the rows');
    const reg = await store.client.query('SELECT chunking FROM embedding_lens_recipes WHERE key = $1', [store.prefix]);
    assert.equal(reg.rows[0].chunking.maxTokens, 80);
    // Updates now follow the new chunking; a re-run does nothing.
    r = cli(['index', ws, '--model', model, '--store', url, '--chunk-tokens', '80', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).chunksEmbedded, 0);
    await store.close();
  });

  test('binary COPY: every float32 stored bit for bit; a bulk first load builds the HNSW index once', async () => {
    server.createDatabase('copy');
    const url = server.url('copy');
    const dims = 8;
    const identity: RecipeIdentity = { model: 'synthetic', modelHash: 'synthetic0000000', layer: 'last', pooling: 'mean', normalize: true, dims };
    const store = await PostgresStore.open(url, identity, { create: true });
    const n = 20_000;
    const vectors = new Float32Array(n * dims);
    let seed = 3;
    for (let i = 0; i < vectors.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      // Wide exponents, negative zero and a subnormal: values a text round trip could bend.
      vectors[i] = i === 5 ? -0 : i === 6 ? 1e-42 : ((seed / 2147483648) - 0.5) * 10 ** ((seed % 30) - 15);
    }
    const files = [];
    for (let f = 0; f < n / 10; f++) {
      const p = `dir/ünïcode ${f}.ts`;
      files.push({
        path: p, contentHash: `f${f}`, vectors: vectors.subarray(f * 10 * dims, (f + 1) * 10 * dims),
        chunks: Array.from({ length: 10 }, (_, j) => ({ id: `${p}:${j}@h${f * 10 + j}`, path: p, startLine: j + 1, endLine: j + 1, contentHash: `c${f * 10 + j}`, text: `naïve café ${f} word${j}` })),
      });
    }
    const applied = await store.apply(files, []);
    assert.equal(applied.chunksWritten, n);
    const rows = await store.client.query<{ chunk_id: string; v: string }>(`SELECT chunk_id, embedding::text AS v FROM "${store.prefix}_chunks" ORDER BY id`);
    assert.equal(rows.rows.length, n);
    const back = new Float32Array(n * dims);
    rows.rows.forEach((r, i) => {
      const parts = r.v.slice(1, -1).split(',').map(Number);
      back.set(parts, i * dims);
      assert.equal(r.chunk_id, `dir/ünïcode ${Math.floor(i / 10)}.ts:${i % 10}@h${i}`);
    });
    assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(vectors.buffer), 'bit for bit');
    const idx = await store.client.query(`SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%USING hnsw%'`, [`${store.prefix}_chunks`]);
    assert.equal(idx.rows.length, 1, 'the HNSW index is there after the bulk load');
    // The index answers (wide exponents make many vectors near-parallel: the best cosine is 1, whoever holds it).
    const hit = await store.queryVector(vectors.subarray(1234 * dims, 1235 * dims), 5, 100);
    assert.equal(hit.length, 5);
    assert.ok(hit[0]!.score > 1 - 1e-6, `best cosine ${hit[0]!.score}`);
    const lex = await store.queryLexical('café word7', 3);
    assert.equal(lex.length, 3);
    assert.ok(lex.every((h) => h.id.includes(':7@')));
    assert.equal((await store.counts()).chunks, n);
    await store.close();
  });

  test('the editor\'s engine process with a shared index: index, search, similar and status go to PostgreSQL; errors keep their codes', async () => {
    server.createDatabase('engine');
    const url = server.url('engine');
    const storageDir = fs.mkdtempSync(path.join(tmp, 'engine-storage-'));
    const client = new EngineClient(WORKER, quiet, { idleMs: 0 });
    const recipe = { layer: 'last', pool: 'mean', normalize: true } as const;
    const target = { root: ws, storageDir, recipe, store: url };
    try {
      await client.request('load', { model, offline: true, threads: 1, maxTokensPerBatch: 512 });
      const none = await client.request('indexStatus', target);
      assert.deepEqual(none, { exists: false, others: [] });
      const phases = new Set<string>();
      const summary = await client.request('index', { ...target, exclude: [] }, { onProgress: (p) => phases.add(p.phase) });
      assert.ok(summary.filesIndexed > 30 && summary.chunksTotal > 100, JSON.stringify(summary));
      assert.ok(['discover', 'index', 'save', 'done'].every((p) => phases.has(p)), [...phases].join());
      assert.deepEqual(fs.readdirSync(storageDir), [], 'nothing written in the local storage folder');
      const status = await client.request('indexStatus', target);
      assert.deepEqual(status, { exists: true, complete: true, files: summary.filesSeen - summary.skipped.length, chunks: summary.chunksTotal, others: [] });

      // The same hits as the shared index searched directly (the engine adds nothing of its own).
      const direct = await PostgresSearch.open({ root: ws, url, embedder });
      for (const mode of ['hybrid', 'vector', 'lexical'] as const) {
        const viaEngine = await client.request('search', { ...target, query: 'retry socket timeout', mode, k: 8 });
        const want = await direct.search('retry socket timeout', { mode, k: 8, previewLines: 4 });
        assert.deepEqual(viaEngine.map((h) => [h.path, h.startLine, h.endLine]), want.map((h) => [h.path, h.startLine, h.endLine]), mode);
        viaEngine.forEach((h, i) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-9, `${mode} #${i}`));
      }
      const file = `lib/${fs.readdirSync(path.join(ws, 'lib')).sort()[0]}`;
      const similar = await client.request('similar', { ...target, path: file, startLine: 2, endLine: 5, k: 5 });
      const similarDirect = await direct.similar({ path: file, startLine: 2, endLine: 5 }, { k: 5, previewLines: 4 });
      assert.deepEqual(similar.map((h) => `${h.path}:${h.startLine}`), similarDirect.map((h) => `${h.path}:${h.startLine}`));
      assert.equal(similar.length, 5);
      await direct.close();
      // Searches in flight at once share one connection, queued: each gets its own answer.
      const many = await Promise.all(['http', 'cache token', 'lock'].map((q) => client.request('search', { ...target, query: q, mode: 'lexical', k: 3 })));
      const one = await Promise.all(['http', 'cache token', 'lock'].map((q) => client.request('search', { ...target, query: q, mode: 'lexical', k: 3 })));
      assert.deepEqual(many, one);
      assert.ok(many.every((hits) => hits.length === 3));
      // Features that read the local index say so instead of answering from nothing.
      await assert.rejects(client.request('indexPoints', { ...target, limit: 10 }), /local index only/);

      // Errors cross the process boundary with their codes (the editor picks its buttons by them).
      const wrong = { ...target, store: server.url('engine', 'wrong-password') };
      await assert.rejects(client.request('search', { ...wrong, query: 'http', mode: 'hybrid', k: 3 }), (err: UserError) => {
        assert.equal(err.code, 'STORE_AUTH');
        assert.match(err.message, /refused the password for user "postgres"/);
        assert.doesNotMatch(err.message, /wrong-password/);
        assert.equal(err.facts.store, `postgres://postgres:***@127.0.0.1:${server.port}/engine`);
        return true;
      });
      await assert.rejects(client.request('index', { ...target, store: 'postgres://postgres@127.0.0.1:1/x' }), (err: UserError) => err.code === 'STORE_UNREACHABLE' && /connection refused/.test(err.message));
      const otherRecipe = { ...target, recipe: { layer: '-2', pool: 'mean', normalize: true } as const };
      await assert.rejects(client.request('search', { ...otherRecipe, query: 'http', mode: 'vector', k: 3 }), (err: UserError) => {
        assert.equal(err.code, 'RECIPE_MISMATCH');
        assert.deepEqual(err.facts.differences, [{ field: 'layer', index: 'last', request: '-2' }]);
        return true;
      });
      const mismatch = await client.request('indexStatus', otherRecipe);
      assert.equal(mismatch.exists, false);
      assert.match(mismatch.others[0]!, /layer last, pooling mean/);
      assert.deepEqual(fs.readdirSync(storageDir), [], 'still nothing written locally');
    } finally {
      await client.dispose();
    }
  });
});
