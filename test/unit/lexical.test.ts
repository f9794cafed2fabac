// The segmented lexical index against MiniSearch (the library it replaced, run here as the reference):
// the same documents, the same removals, the same options → the same BM25 scores, whether the documents
// sit in pending memory, in several saved segments with tombstones, or in one compacted segment.
// Also: checksum damage is reported, and a load with `repair` leaves the damaged segment out.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import MiniSearch from 'minisearch';
import { expandTerm, LexicalIndex, tokenizeCode } from '../../src/core/search/lexical';
import { lexicalTextOf } from '../../src/core/index/chunk';
import { seededRandom } from '../../src/core/random';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-lexical-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const WORDS = ['parseHttpURL', 'parse_http_url', 'loadConfig', 'const', 'return', 'await', 'fs', 'readFile', 'JSON', 'Config', 'path', 'LRUCache',
  'capacity', 'map', 'get', 'set', 'rows', 'weights', 'dims', 'sum', 'indexer', 'gitignore', 'binary', 'minified', 'getUserName', 'x2', 'ÄpfelBaum', '日本語'];

function docs(n: number, seed: number): { id: string; path: string; text: string }[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const len = 3 + Math.floor(r() * 40);
    const text = Array.from({ length: len }, () => WORDS[Math.floor(r() * r() * WORDS.length)]).join(r() < 0.5 ? ' ' : '(');
    return { id: `src/f${i % 17}.ts#L${i}-L${i + 3}@${i.toString(16)}`, path: `src/f${i % 17}.ts`, text };
  });
}

function reference(live: { id: string; path: string; text: string }[]): MiniSearch {
  const mini = new MiniSearch<{ id: string; path: string; text: string }>({
    fields: ['text', 'path'],
    storeFields: [],
    tokenize: (text: string) => tokenizeCode(text),
    processTerm: (term: string) => expandTerm(term),
    searchOptions: { boost: { path: 0.5 }, prefix: false, fuzzy: false, combineWith: 'OR' },
  });
  mini.addAll(live);
  return mini;
}

const QUERIES = [WORDS.join(' ') + ' get_set parse_user load_name x3 y4 z5 w6', 'parse http url', 'loadConfig readFile', 'LRUCache capacity', 'f3', 'const return await', 'user name', 'äpfel', '日本語 weights', 'nothing_here'];

function assertSameScores(index: LexicalIndex, mini: MiniSearch, what: string): void {
  for (const q of QUERIES) {
    const got = index.search(q, 1000);
    const want = mini.search(q).map((r) => ({ id: String(r.id), score: r.score }));
    assert.equal(got.length, want.length, `${what}: "${q}" gives ${got.length} results, MiniSearch ${want.length}`);
    const byId = new Map(want.map((w) => [w.id, w.score]));
    for (const h of got) {
      const ref = byId.get(h.id);
      assert.ok(ref !== undefined, `${what}: "${q}" returned ${h.id}, which MiniSearch does not`);
      assert.ok(Math.abs(h.score - ref) <= 1e-9 * Math.max(1, Math.abs(ref)), `${what}: "${q}" ${h.id} score ${h.score}, MiniSearch ${ref}`);
    }
    for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].score >= got[i].score, 'best first');
  }
}

/** A fresh folder for an index file, the documents, and an empty index. */
function setup(name: string, n: number, seed: number) {
  const file = path.join(tmp, name, 'lexical.json');
  fs.mkdirSync(path.dirname(file));
  return { file, all: docs(n, seed), index: LexicalIndex.empty() };
}
function addAll(index: LexicalIndex, list: { id: string; path: string; text: string }[]): void {
  for (const d of list) index.add(d.id, d.path, d.text);
}

describe('lexical index (segments)', () => {
  it('scores equal MiniSearch in memory, across saved segments with tombstones, and after compaction', async () => {
    const { file, all, index } = setup('a', 400, 1);
    addAll(index, all.slice(0, 150));
    assertSameScores(index, reference(all.slice(0, 150)), 'pending');
    await index.save(file);
    addAll(index, all.slice(150, 300));
    const removed = new Set(all.filter((_, i) => i % 7 === 0 && i < 300).map((d) => d.id));
    for (const id of removed) index.remove(id);
    await index.save(file);
    addAll(index, all.slice(300));
    index.remove(all[301].id);
    removed.add(all[301].id);
    const live = all.filter((d) => !removed.has(d.id));
    assertSameScores(index, reference(live), 'segments + pending');
    await index.save(file);
    assert.equal(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.seg')).length, 3);
    const loaded = (await LexicalIndex.load(file))!;
    assert.equal(loaded.size, live.length);
    assert.deepEqual(loaded.ids().sort(), live.map((d) => d.id).sort());
    assert.ok(loaded.has(all[1].id) && !loaded.has(all[0].id));
    assertSameScores(loaded, reference(live), 'loaded segments');
    // A removed id added again lives again (newer segment wins over the tombstone).
    loaded.add(all[0].id, all[0].path, all[0].text);
    await loaded.save(file);
    live.push(all[0]);
    const again = (await LexicalIndex.load(file))!;
    assertSameScores(again, reference(live), 're-added');
    await again.save(file, { compact: true });
    assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.seg')), ['lexical.5.seg']);
    assertSameScores((await LexicalIndex.load(file))!, reference(live), 'compacted');
  });

  it('a damaged segment is reported; repair leaves it out and the rest still answers', async () => {
    const { file, all, index } = setup('b', 60, 2);
    addAll(index, all.slice(0, 30));
    await index.save(file);
    addAll(index, all.slice(30));
    await index.save(file);
    const seg = path.join(path.dirname(file), 'lexical.2.seg');
    const bytes = fs.readFileSync(seg);
    bytes[bytes.length >> 1] ^= 1;
    fs.writeFileSync(seg, bytes);
    await assert.rejects(LexicalIndex.load(file), /lexical index is damaged: .*lexical\.2\.seg is corrupt \(checksum mismatch\)[\s\S]*Index the folder again/);
    const repaired = (await LexicalIndex.load(file, { repair: true }))!;
    assert.equal(repaired.dropped.length, 1);
    assert.equal(repaired.size, 30);
    assertSameScores(repaired, reference(all.slice(0, 30)), 'repaired');
    fs.writeFileSync(file, '{"format": "embedding-lens-lex');
    await assert.rejects(LexicalIndex.load(file), /corrupt \(not valid JSON\)/);
    fs.writeFileSync(file, JSON.stringify({ formatVersion: 1, index: {} }));
    assert.equal(await LexicalIndex.load(file), null, 'format 1 is rebuilt by the indexer');
  });
});

describe('what the keyword index reads of a chunk', () => {
  it('the enclosing declarations or the heading trail, then the lines; the path stays its own field', () => {
    assert.equal(lexicalTextOf({ path: 'src/a.ts', context: 'src/a.ts > Store > save', text: 'x();' }), 'Store save\nx();');
    assert.equal(lexicalTextOf({ path: 'README.md', context: 'README.md > Command line > extract', text: 'Run it.' }), 'Command line extract\nRun it.');
    assert.equal(lexicalTextOf({ path: 'src/a.ts', context: 'src/a.ts', text: 'x();' }), 'x();');
    assert.equal(lexicalTextOf({ path: 'src/a.ts', context: 'Store > save', text: 'x();' }), 'Store save\nx();', 'names-only headers');
    assert.equal(lexicalTextOf({ path: 'src/a.ts', context: '', text: 'x();' }), 'x();');
    // A method's later chunk is found by its class and method names.
    const index = LexicalIndex.empty();
    index.add('a', 'src/a.ts', lexicalTextOf({ path: 'src/a.ts', context: 'src/a.ts > WriterLock > acquire', text: 'const pid = readPid();\nif (alive(pid)) throw busy();' }));
    index.add('b', 'src/b.ts', lexicalTextOf({ path: 'src/b.ts', context: 'src/b.ts > Other', text: 'return 1;' }));
    assert.deepEqual(index.search('writer lock acquire', 5).map((h) => h.id), ['a']);
  });
});
