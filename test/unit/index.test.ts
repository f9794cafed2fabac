// Workspace indexer: discovery, chunking, incremental refresh, cancel / crash and resume.
// Uses the real bert-tiny fixture model (npm run fixtures); the only wrapper counts the texts sent to it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Extractor } from '../../src/core/extract/extractor';
import { Chunker, embedHashOfId, fileDescription, isHeaderId, packLines, unitOfId, indentationBreaks, roughTokenCount } from '../../src/core/index/chunk';
import { checkText, dataFileReason, discoverFiles, hashText } from '../../src/core/index/files';
import { recipeKey, WorkspaceIndexer } from '../../src/core/index/indexer';
import { locateTreeSitterWasm } from '../../src/core/index/treeSitter';
import { WorkspaceSearch } from '../../src/core/search/search';
import { UserError, type TextEmbedder } from '../../src/core/types';
import { FIXTURE_MODEL, loadFixtureEmbedder, releaseFixture } from '../helpers/fixtureEmbedder';
import { FIXTURE, makeWorkspace } from '../helpers/workspace';

const REPO = path.resolve(__dirname, '../..');

/** The real model's embedder, with a count of every text sent to it. */
function counting(inner: TextEmbedder): TextEmbedder & { texts: string[]; calls: number } {
  const wrapper = {
    identity: inner.identity,
    texts: [] as string[],
    calls: 0,
    embed: async (texts: string[], options?: Parameters<TextEmbedder['embed']>[1]) => {
      wrapper.calls++;
      wrapper.texts.push(...texts);
      return inner.embed(texts, options);
    },
    countTokens: (texts: string[]) => inner.countTokens(texts),
  };
  return wrapper;
}

let extractor: Extractor;
let embedder: TextEmbedder;
const cleanup: string[] = [];
before(async () => ({ extractor, embedder } = await loadFixtureEmbedder()));
after(() => releaseFixture(extractor, cleanup));

async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'el-store-'));
  cleanup.push(d);
  return d;
}

describe('discovery', () => {
  test('honours nested .gitignore files, default excludes and reports skips with reasons', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const found = await discoverFiles(ws);
    const paths = found.files.map((f) => f.path);
    assert.ok(paths.includes('src/math.ts'));
    assert.ok(paths.includes('src/nested/queue.rs'));
    assert.ok(paths.includes('src/keep.log'), 'a deeper .gitignore re-includes keep.log');
    assert.ok(!paths.includes('debug.log'), 'root *.log rule');
    assert.ok(!paths.includes('src/generated.ts'), 'nested .gitignore rule');
    assert.ok(!paths.some((p) => p.startsWith('ignored-folder/')), 'ignored folder');
    assert.ok(!paths.some((p) => p.startsWith('node_modules/')), 'default exclude');
    assert.ok(!paths.some((p) => p === '.git' || p.endsWith('/.git')), `a .git file (worktree, submodule) is left out like the folder: ${paths.join(' ')}`);
    const reasons = Object.fromEntries(found.skipped.map((s) => [s.path, s.reason]));
    assert.equal(reasons['data/huge.txt'], 'too-large');
    assert.equal(reasons['src/nested/loop'], 'symlink-loop');
    assert.equal(reasons['src/broken.ts'], 'unreadable');
  });

  test('include and exclude globs', async () => {
    const found = await discoverFiles(FIXTURE, { include: ['src/**'], exclude: ['**/*.py'] });
    const paths = found.files.map((f) => f.path);
    assert.ok(paths.every((p) => p.startsWith('src/')));
    assert.ok(!paths.includes('src/http_client.py'));
    assert.ok(paths.includes('src/math.ts'));
  });

  test('a missing folder is a clear error', async () => {
    await assert.rejects(discoverFiles('/no/such/folder/here'), (err: unknown) => err instanceof UserError && /does not exist/.test(err.message));
  });

  test('data files: SVG always, JSON / CSV / XML over the data limit, by name and size alone', () => {
    assert.match(dataFileReason('assets/logo.svg', 300)!, /image markup \(SVG\)/);
    assert.equal(dataFileReason('package.json', 10_000), null);
    assert.match(dataFileReason('models/tokenizer.json', 711_661)!, /JSON data of 695 KiB, over the 32 KiB limit/);
    assert.equal(dataFileReason('models/tokenizer.json', 711_661, 1024 * 1024), null, 'a larger limit keeps it');
    assert.match(dataFileReason('C:\\data\\table.CSV', 40_000)!, /CSV data/);
    assert.equal(dataFileReason('src/big.ts', 900_000), null, 'code is never data');
    assert.equal(dataFileReason('logs/server.LOG', 10), 'a .log file', 'a log of any size');
    assert.equal(dataFileReason('src/catalog.ts', 10), null);
  });

  test('content checks: binary, undecodable, minified, text', () => {
    assert.equal(checkText(Buffer.from('a\u0000b')).ok, false);
    const bad = checkText(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    assert.equal(!bad.ok && bad.reason, 'undecodable');
    const min = checkText(Buffer.from('x'.repeat(5000)));
    assert.equal(!min.ok && min.reason, 'minified');
    assert.equal(checkText(Buffer.from('const a = 1;\n')).ok, true);
  });
});

describe('chunking', () => {
  test('a file describes itself: leading comment or module docstring, license headers and directives skipped', () => {
    const d = (text: string) => fileDescription(text.split('\n'));
    assert.equal(d('// Copyright 2009 The Go Authors. All rights reserved.\n// license that can be found in the LICENSE file.\n\n//go:generate go run gen.go\n\n// Package url parses URLs and implements query escaping. More here.\npackage url'), 'Package url parses URLs and implements query escaping.');
    assert.equal(d('#!/usr/bin/env python3\n"""Functions that read and write gzipped files.\n\nMore.\n"""\nimport os'), 'Functions that read and write gzipped files.');
    assert.equal(d('/*\n\tPackage flag implements command-line flag parsing.\n*/\npackage flag'), 'Package flag implements command-line flag parsing.');
    assert.equal(d('import x from "y";\n// not at the top\n'), '');
    assert.equal(d('/* eslint-disable */\n// Search over a workspace index: vector or lexical\n// or hybrid.\nexport {}'), 'Search over a workspace index: vector or lexical or hybrid.');
  });

  test('tree-sitter grammars are found in node_modules', () => {
    assert.ok(locateTreeSitterWasm().length > 0);
  });

  test('line ranges are exact and declarations stay whole', async () => {
    const text = await fs.readFile(path.join(FIXTURE, 'src/math.ts'), 'utf8');
    const lines = text.split('\n');
    const chunker = new Chunker({ maxTokens: 120 });
    const chunks = await chunker.chunk('src/math.ts', text);
    assert.ok(chunks.length >= 2);
    for (const c of chunks) {
      assert.equal(c.text, lines.slice(c.startLine - 1, c.endLine).join('\n'), `text of ${c.id} matches its lines`);
      assert.ok(c.id.startsWith(`src/math.ts#L${c.startLine}-L${c.endLine}${c.header ? '~H' : ''}${c.unit ? `~L${c.unit.startLine}-L${c.unit.endLine}` : ''}@`));
    }
    const gcd = lines.findIndex((l) => l.includes('function computeGreatestCommonDivisor')) + 1;
    const holder = chunks.find((c) => c.startLine <= gcd && c.endLine >= gcd)!;
    assert.ok(holder.text.includes('return Math.abs(a);'), 'the whole function is in one chunk');
    assert.ok(holder.text.includes('Greatest common divisor'), 'with its doc comment');
  });

  test('a piece of a long function names the whole function (comments included) in its id; whole declarations name nothing', async () => {
    const body = Array.from({ length: 40 }, (_, i) => `  const step${i} = transformTheValue(input, ${i}, "a fairly long literal string number ${i}");`).join('\n');
    const text = `import { x } from './x';\n\n/**\n * Runs every step.\n */\nexport function runAll(input: string): void {\n${body}\n}\n\nexport function small(): number {\n  return 1;\n}\n`;
    const chunks = await new Chunker({ maxTokens: 120 }).chunk('src/steps.ts', text);
    const lines = text.split('\n');
    const start = lines.indexOf('/**') + 1;
    const end = lines.indexOf('}', start) + 1;
    const pieces = chunks.filter((c) => c.startLine >= start && c.endLine <= end);
    assert.ok(pieces.length >= 3, chunks.map((c) => c.id).join(' '));
    for (const p of pieces) {
      assert.deepEqual(p.unit, { startLine: start, endLine: end });
      assert.deepEqual(unitOfId(p.id), { startLine: start, endLine: end });
      assert.ok(p.id.startsWith(`src/steps.ts#L${p.startLine}-L${p.endLine}~L${start}-L${end}@`), p.id);
      assert.equal(embedHashOfId(p.id), hashText(`${p.context}\n${p.text}`), 'the embedded-text hash stays last');
    }
    for (const c of chunks.filter((c) => c.startLine > end)) assert.equal(unitOfId(c.id), null, `${c.id} holds whole declarations`);
    assert.equal(unitOfId('a.ts#L1-L9@abc'), null);
  });

  test("a file's header (leading comments, imports, package line, module docstring) is marked when code follows it", async () => {
    const comment = Array.from({ length: 8 }, (_, i) => `// Line ${i} of what this whole module is about, which is written at some length here.`).join('\n');
    const fn = (n: number) => `export function step${n}(input: string): string {\n  const a = input.trim();\n  const b = a.toUpperCase();\n  return b + "${n}";\n}\n`;
    const ts = `${comment}\nimport { x } from './x';\nimport { y } from './y';\n\n${[1, 2, 3, 4].map(fn).join('\n')}`;
    const chunks = await new Chunker({ maxTokens: 100 }).chunk('src/steps.ts', ts);
    const headers = chunks.filter((c) => c.header);
    assert.ok(headers.length >= 1 && chunks.length > headers.length, chunks.map((c) => c.id).join(' '));
    const firstCode = ts.split('\n').findIndex((l) => l.startsWith('export function')) + 1;
    for (const c of chunks) {
      assert.equal(!!c.header, c.endLine < firstCode, `${c.startLine}-${c.endLine}: a header exactly when it ends above the first function`);
      assert.equal(isHeaderId(c.id), !!c.header, c.id);
      assert.ok(c.id.startsWith(`src/steps.ts#L${c.startLine}-L${c.endLine}${c.header ? '~H' : ''}@`), c.id);
    }
    // Python: module docstring + imports; Go: package doc, package line, imports.
    const doc = Array.from({ length: 10 }, (_, i) => `Line ${i} of the module docstring, which explains at length what the module does.`).join('\n');
    const py = `"""${doc}\n"""\nimport os\nfrom typing import List\n\n${[1, 2, 3].map((n) => `def step${n}(value):\n    total = value + ${n}\n    return total * 2\n`).join('\n')}`;
    const pyChunks = await new Chunker({ maxTokens: 90 }).chunk('pkg/steps.py', py);
    assert.ok(pyChunks[0]!.header && !pyChunks.at(-1)!.header, pyChunks.map((c) => c.id).join(' '));
    const go = `// Package steps does things.\n${comment}\npackage steps\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\n${[1, 2, 3].map((n) => `func Step${n}(s string) string {\n\tt := strings.TrimSpace(s)\n\treturn fmt.Sprint(t, ${n})\n}\n`).join('\n')}`;
    const goChunks = await new Chunker({ maxTokens: 90 }).chunk('steps/steps.go', go);
    assert.ok(goChunks[0]!.header && !goChunks.at(-1)!.header, goChunks.map((c) => c.id).join(' '));
    // A file of comments alone, and a small file whose one chunk holds its code, have no header chunk.
    assert.ok((await new Chunker({ maxTokens: 40 }).chunk('src/notes.ts', comment)).every((c) => !c.header));
    assert.ok((await new Chunker({ maxTokens: 400 }).chunk('src/steps.ts', ts)).every((c) => !c.header));
    // A first chunk that opens with the file's description (2+ comment lines) speaks for the file too,
    // though it also holds code; a one-line comment does not make it one.
    const described = (lead: string) => `${lead}\nexport const LIMIT = 3;\n\n${[1, 2, 3, 4].map(fn).join('\n')}`;
    const two = await new Chunker({ maxTokens: 60 }).chunk('src/steps.ts', described('// Steps that turn input into output,\n// one after another.'));
    assert.ok(two.length > 1 && two[0]!.header && two[0]!.text.includes('LIMIT') && two.slice(1).every((c) => !c.header), two.map((c) => c.id).join(' '));
    const one = await new Chunker({ maxTokens: 60 }).chunk('src/steps.ts', described('// Steps.'));
    assert.ok(one.every((c) => !c.header), one.map((c) => c.id).join(' '));
    assert.equal(isHeaderId('a.ts#L1-L9@abc'), false);
    assert.equal(isHeaderId('a.ts#L1-L9~L1-L20@abc'), false);
  });

  test('the token budget bounds chunks; long runs are cut with overlap', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `  value_${i} = compute(value_${i - 1}, ${i});`);
    const ranges = packLines(lines, indentationBreaks(lines), 200, roughTokenCount, 2);
    for (const r of ranges) {
      const tokens = lines.slice(r.start, r.end + 1).reduce((s, l) => s + roughTokenCount(l) + 1, 0);
      assert.ok(tokens <= 200, `chunk ${r.start}-${r.end} has ${tokens} tokens`);
    }
    assert.ok(ranges.slice(1).every((r, i) => r.start <= ranges[i]!.end), 'consecutive chunks overlap');
    assert.equal(ranges.at(-1)!.end, 199);
  });

  test('Markdown splits at headings; the heading trail is the context header, not part of the text', async () => {
    const section = (title: string) => `## ${title}\n\n${Array.from({ length: 4 }, (_, i) => `Line ${i} of the ${title.toLowerCase()} section says something about it.`).join('\n')}\n`;
    const text = `# Guide\n\n${section('Queues')}\n${section('Health checks')}\n${section('Logging')}`;
    const chunks = await new Chunker({ maxTokens: 90 }).chunk('docs/guide.md', text);
    assert.ok(chunks.length >= 3, chunks.map((c) => c.text).join('\n---\n'));
    assert.ok(chunks.slice(1).every((c) => c.text.startsWith('## ')), chunks.map((c) => c.text.split('\n')[0]).join(' | '));
    assert.ok(chunks.slice(1).every((c) => c.context === 'docs/guide.md > Guide'), chunks.map((c) => c.context).join(' | '));
    assert.ok(!chunks[1]!.text.includes('docs/guide.md'));
  });

  test('code: no chunk under 3 lines, no overlap, a declaration keeps its comment, the enclosing class is the context', async () => {
    const methods = Array.from({ length: 12 }, (_, i) => `  /** Adds ${i} to the running total. */\n  add${i}(value: number): number {\n    this.total += value + ${i};\n    return this.total;\n  }\n`).join('\n');
    const text = `import { x } from './x';\n\nexport class Totals {\n  private total = 0;\n\n${methods}}\n\nexport const one = 1;\n`;
    const lines = text.split('\n');
    const chunks = await new Chunker({ maxTokens: 80 }).chunk('src/totals.ts', text);
    assert.ok(chunks.length >= 3);
    for (const [i, c] of chunks.entries()) {
      assert.ok(c.endLine - c.startLine + 1 >= 3, `chunk ${c.startLine}-${c.endLine} has fewer than 3 lines`);
      if (i) assert.ok(c.startLine > chunks[i - 1]!.endLine, 'ranges do not overlap');
      assert.equal(c.text, lines.slice(c.startLine - 1, c.endLine).join('\n'));
      // Every method's doc comment is in the same chunk as its signature.
      for (let l = c.startLine; l <= c.endLine; l++) if (/^\s+add\d+\(/.test(lines[l - 1]!)) assert.ok(l > c.startLine && /\/\*\*/.test(lines[l - 2]!), `signature at line ${l} keeps its comment`);
    }
    assert.ok(chunks.slice(1, -1).some((c) => c.context === 'src/totals.ts > Totals'), chunks.map((c) => c.context).join(' | '));
  });
});

describe('incremental indexing', () => {
  test('first index embeds every chunk; unchanged → nothing; change one file → only its new chunks', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const model = counting(embedder);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: model, chunkTokens: 64 });
    const first = await indexer.refresh();
    assert.equal(model.texts.length, first.chunksTotal);
    assert.equal(first.chunksEmbedded, first.chunksTotal);
    const skipped = Object.fromEntries(first.skipped.map((s) => [s.path, s.reason]));
    assert.equal(skipped['web/bundle.js'], 'minified');
    assert.equal(skipped['data/records.raw'], 'binary');
    assert.equal(skipped['data/latin1.txt'], 'undecodable');
    assert.equal(skipped['data/huge.txt'], 'too-large');
    assert.equal(skipped['data/vocab.json'], 'data');
    assert.match(first.skipped.find((k) => k.path === 'data/vocab.json')!.detail!, /JSON data of \d+ KiB, over the 32 KiB limit/);
    assert.equal(skipped['data/icon.svg'], 'data');
    assert.equal(skipped['src/keep.log'], 'data', 'log output is left out even where .gitignore re-includes it');
    assert.equal(skipped['data/settings.json'], undefined, 'small configuration is indexed');
    assert.equal(indexer.store.count, first.chunksTotal);

    model.texts.length = 0;
    const second = await indexer.refresh();
    assert.equal(model.texts.length, 0, 'nothing changed, nothing embedded');
    assert.equal(second.filesIndexed, 0);

    // Touch without changing: re-read, nothing embedded.
    const now = new Date(Date.now() + 5000);
    await fs.utimes(path.join(ws, 'src/server.go'), now, now);
    await indexer.refresh();
    assert.equal(model.texts.length, 0);

    // Change one function of math.ts: only the chunks whose content changed are embedded.
    const mathPath = path.join(ws, 'src/math.ts');
    const before = indexer.catalog.get('src/math.ts')!.chunks;
    await fs.writeFile(mathPath, (await fs.readFile(mathPath, 'utf8')).replace('return prev;', 'return prev; // n-th value'));
    const third = await indexer.refresh();
    assert.equal(third.filesIndexed, 1);
    const afterChunks = indexer.catalog.get('src/math.ts')!.chunks;
    const oldHashes = new Set(before.map((c) => c.contentHash));
    const changed = afterChunks.filter((c) => !oldHashes.has(c.contentHash));
    assert.ok(changed.length >= 1 && changed.length < afterChunks.length, `changed ${changed.length} of ${afterChunks.length}`);
    assert.equal(model.texts.length, changed.length);
    assert.ok(model.texts.every((t) => fs !== null && afterChunks.length > 0 && typeof t === 'string'));
    assert.ok(model.texts.some((t) => t.includes('n-th value')));
    assert.equal(indexer.store.count, third.chunksTotal, 'replaced chunks are gone from the store');
  });

  test('a damaged delta segment: search names it and its files; index re-embeds only those files', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const model = counting(embedder);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: model, chunkTokens: 64 });
    await indexer.refresh();
    const mathPath = path.join(ws, 'src/math.ts');
    await fs.writeFile(mathPath, (await fs.readFile(mathPath, 'utf8')).replace('return prev;', 'return prev; // n-th value'));
    await indexer.refresh();
    const manifest = JSON.parse(await fs.readFile(path.join(indexer.storeDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.deltas.length, 1, 'the edit is a delta segment');
    assert.deepEqual(manifest.deltas[0].paths, ['src/math.ts']);
    const deltaPath = path.join(indexer.storeDir, manifest.deltas[0].name);
    const bytes = await fs.readFile(deltaPath);
    bytes[bytes.length >> 1] ^= 0x40;
    await fs.writeFile(deltaPath, bytes);
    await assert.rejects(
      WorkspaceSearch.open({ root: ws, storageDir: storage, embedder }),
      (err: unknown) => err instanceof UserError && /delta\.\d+\.seg is corrupt \(checksum mismatch\)[\s\S]*src\/math\.ts[\s\S]*Index the folder again/.test(err.message) && err.code === 'INDEX_DAMAGED' && err.facts.repair === 'refresh',
    );
    model.texts.length = 0;
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
    const again = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: model, chunkTokens: 64, logger });
    const repaired = await again.refresh();
    assert.match(warnings.join('\n'), /Left it out; its files are re-indexed: src\/math\.ts/);
    assert.equal(repaired.filesIndexed, 1, 'only math.ts is redone');
    // Each embedded text starts with its context header, which names the file.
    assert.ok(model.texts.length >= 1 && model.texts.every((t) => t.startsWith('src/math.ts')), 'only chunks of math.ts are embedded');
    assert.equal(again.store.count, repaired.chunksTotal);
    const search = await WorkspaceSearch.open({ root: ws, storageDir: storage, embedder });
    const hits = await search.search('n-th value', { mode: 'lexical' });
    assert.equal(hits[0]?.path, 'src/math.ts');
  });

  test('a compaction takes the writer lock like a refresh: another process holding it is named, nothing is written', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder, chunkTokens: 64 });
    await indexer.refresh();
    indexer.store.compact(); // make one due
    const generation = indexer.store.generation;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
      const { acquireWriterLock } = require(${JSON.stringify(path.join(REPO, 'src/core/index/writerLock.ts'))});
      acquireWriterLock(${JSON.stringify(indexer.storeDir)}).then(() => { console.log('locked'); setTimeout(() => {}, 60000); });
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d) => { if (String(d).includes('locked')) resolve(); });
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      await assert.rejects(indexer.compactIfNeeded(), (e: unknown) => e instanceof UserError && e.code === 'INDEX_BUSY' && new RegExp(`pid ${child.pid}`).test(e.message));
      assert.equal(indexer.store.generation, generation, 'nothing committed while another process holds the lock');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    assert.equal(await indexer.compactIfNeeded(), true);
    assert.equal(indexer.store.generation, generation + 1);
  });

  test('delete removes a file from the store and the results; rename re-embeds only that file (its path is in the context header)', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const model = counting(embedder);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: model, chunkTokens: 64 });
    await indexer.refresh();

    await fs.rm(path.join(ws, 'src/server.go'));
    model.texts.length = 0;
    const del = await indexer.refresh();
    assert.equal(del.filesRemoved, 1);
    assert.equal(model.texts.length, 0);
    assert.equal(indexer.store.recordsOfPath('src/server.go').length, 0);
    const search = await WorkspaceSearch.open({ root: ws, storageDir: storage, embedder });
    const hits = await search.search('healthHandler', { mode: 'lexical', k: 20 });
    assert.ok(!hits.some((h) => h.path === 'src/server.go'), 'deleted file is not found');

    await fs.rename(path.join(ws, 'src/http_client.py'), path.join(ws, 'src/web_client.py'));
    const ren = await indexer.refresh();
    const moved = indexer.store.recordsOfPath('src/web_client.py').length;
    assert.ok(moved > 0);
    assert.equal(ren.chunksEmbedded, moved, 'only the renamed file is embedded again');
    assert.ok(model.texts.every((t) => t.startsWith('src/web_client.py')), 'under its new path');
    assert.equal(indexer.store.recordsOfPath('src/http_client.py').length, 0);
  });

  test('cancel mid-index, then resume: only the unfinished work is done', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    // Reference: how many chunks a full index has.
    const full = counting(embedder);
    const ref = await WorkspaceIndexer.open({ root: ws, storageDir: await tmp(), embedder: full, chunkTokens: 32 });
    const total = (await ref.refresh()).chunksTotal;

    const controller = new AbortController();
    const model = counting(embedder);
    const cancelling: TextEmbedder = {
      identity: embedder.identity,
      countTokens: (t) => embedder.countTokens(t),
      embed: async (texts, options) => {
        if (model.calls === 2) controller.abort();
        return model.embed(texts, options);
      },
    };
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: cancelling, chunkTokens: 32, embedBatch: 8 });
    await assert.rejects(indexer.refresh({ signal: controller.signal }), (err: Error) => err.name === 'AbortError');
    const committed = indexer.catalog.counts().chunks;
    assert.ok(committed > 0 && committed < total, `committed ${committed} of ${total}`);

    const resumed = counting(embedder);
    const again = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: resumed, chunkTokens: 32 });
    const summary = await again.refresh();
    assert.equal(summary.chunksTotal, total);
    assert.equal(resumed.texts.length, total - committed, 'resume embeds only what was not finished');
    assert.equal(again.store.count, total);
  });

  test('a crash (SIGKILL) mid-index, then resume: only the unfinished work is done', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const child = `(async () => {
      const { Extractor } = require(${JSON.stringify(path.join(REPO, 'src/core/extract/extractor.ts'))});
      const { WorkspaceIndexer } = require(${JSON.stringify(path.join(REPO, 'src/core/index/indexer.ts'))});
      const ex = await Extractor.load({ model: ${JSON.stringify(FIXTURE_MODEL)}, offline: true });
      const inner = ex.embedder({ layer: 'last', pool: 'mean', normalize: true });
      let calls = 0;
      const embedder = { identity: inner.identity, countTokens: (t) => inner.countTokens(t),
        embed: async (texts, o) => { if (++calls === 4) process.kill(process.pid, 'SIGKILL'); return inner.embed(texts, o); } };
      const ix = await WorkspaceIndexer.open({ root: ${JSON.stringify(ws)}, storageDir: ${JSON.stringify(storage)}, embedder,
        chunkTokens: 32, embedBatch: 4, checkpointChunks: 4 });
      await ix.refresh();
    })();`;
    const code = await new Promise<NodeJS.Signals | number | null>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '-e', child], { cwd: REPO, stdio: 'ignore' });
      p.on('exit', (c, sig) => resolve(sig ?? c));
    });
    assert.equal(code, 'SIGKILL');

    const model = counting(embedder);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: model, chunkTokens: 32 });
    const committed = indexer.catalog.counts().chunks;
    const stored = indexer.store.count;
    assert.ok(committed > 0, 'checkpoints before the crash survived');
    const summary = await indexer.refresh();
    assert.ok(model.texts.length <= summary.chunksTotal - committed, `embedded ${model.texts.length}, total ${summary.chunksTotal}, committed ${committed}`);
    assert.ok(model.texts.length >= summary.chunksTotal - stored);
    assert.equal(indexer.store.count, summary.chunksTotal);
  });

  test('another recipe gets its own store; the first one stays', async () => {
    const ws = await makeWorkspace();
    cleanup.push(ws);
    const storage = await tmp();
    const a = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder, chunkTokens: 64 });
    await a.refresh();
    const other = extractor.embedder({ layer: '2', pool: 'cls', normalize: true });
    const b = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: other, chunkTokens: 64 });
    await b.refresh();
    assert.notEqual(recipeKey(embedder.identity), recipeKey(other.identity));
    const dirs = await fs.readdir(path.join(storage, 'stores'));
    assert.equal(dirs.length, 2);
    const search = await WorkspaceSearch.open({ root: ws, storageDir: storage, embedder });
    assert.ok((await search.search('fibonacci', { k: 3 })).length > 0);
  });

  test('a storage folder from a newer version is refused with a clear message', async () => {
    const storage = await tmp();
    await fs.writeFile(path.join(storage, 'embedding-lens.json'), JSON.stringify({ format: 'embedding-lens-storage', formatVersion: 99 }));
    await assert.rejects(
      WorkspaceIndexer.open({ root: FIXTURE, storageDir: storage, embedder }),
      (err: unknown) => err instanceof UserError && /newer version/.test(err.message),
    );
  });
});
