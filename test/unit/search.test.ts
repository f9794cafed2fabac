// Search over an index of the sample workspace, with the real bert-tiny model. bert-tiny has random
// weights, so these tests check what holds for any encoder (exact identifiers, identical text, line
// ranges, grouping, modes), not semantic quality.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { WorkspaceIndexer } from '../../src/core/index/indexer';
import { expandTerm } from '../../src/core/search/lexical';
import { prefixesForModel } from '../../src/core/search/prefixes';
import { DEFAULT_FUSION, fuse, groupPerFile, HEADER_SCORE_FACTOR, headersStandForFiles, parseFusion, pickHits, rankByKind, resolveSearchOptions, WorkspaceSearch } from '../../src/core/search/search';
import { ELIDED_LINES, hitPreviewLines } from '../../src/core/search/hitPreview';
import { formatHits } from '../../src/cli/search';
import { chunkId } from '../../src/core/index/chunk';
import { hashText } from '../../src/core/index/files';
import { DATA_SCORE_FACTOR, isDataPath, scoreFactorOfPath, TEST_SCORE_FACTOR } from '../../src/core/search/kinds';
import { UserError } from '../../src/core/types';

const REPO = path.resolve(__dirname, '../..');
const FIXTURE = path.join(REPO, 'test/fixtures/sample-workspace');
const MODEL = path.join(REPO, 'test/fixtures/models/bert-tiny');

let extractor: Extractor;
let search: WorkspaceSearch;
let storage: string;

before(async () => {
  extractor = await Extractor.load({ model: MODEL, offline: true });
  const embedder = extractor.embedder({ layer: 'last', pool: 'mean', normalize: true });
  storage = await fs.mkdtemp(path.join(os.tmpdir(), 'el-search-'));
  const indexer = await WorkspaceIndexer.open({ root: FIXTURE, storageDir: storage, embedder, chunkTokens: 64 });
  await indexer.refresh();
  search = await WorkspaceSearch.open({ root: FIXTURE, storageDir: storage, embedder });
});
after(async () => {
  await extractor?.dispose();
  await fs.rm(storage, { recursive: true, force: true });
});

async function lineOf(rel: string, needle: string): Promise<number> {
  const lines = (await fs.readFile(path.join(FIXTURE, rel), 'utf8')).split('\n');
  return lines.findIndex((l) => l.includes(needle)) + 1;
}

describe('search', () => {
  test('lexical: an exact identifier finds its definition with the right line range', async () => {
    const hits = await search.search('computeGreatestCommonDivisor', { mode: 'lexical', k: 5 });
    const line = await lineOf('src/math.ts', 'export function computeGreatestCommonDivisor');
    const top = hits.find((h) => h.path === 'src/math.ts');
    assert.ok(top, JSON.stringify(hits));
    assert.ok(top.startLine <= line && top.endLine >= line, `${top.startLine}-${top.endLine} holds line ${line}`);
    assert.ok(top.preview.includes('computeGreatestCommonDivisor'));
    assert.ok(!top.stale);
  });

  test('lexical: identifier parts match (snake_case and camelCase)', async () => {
    const hits = await search.search('parse http url', { mode: 'lexical', k: 3 });
    assert.equal(hits[0]?.path, 'src/http_client.py');
    const line = await lineOf('src/http_client.py', 'def parse_http_url');
    assert.ok(hits[0]!.startLine <= line && hits[0]!.endLine >= line);
    assert.deepEqual(expandTerm('parseHTTPUrl').sort(), ['http', 'pars', 'parsehttpurl', 'url'].sort());
    assert.deepEqual(expandTerm('where'), [], 'stop words are dropped');
    assert.deepEqual(expandTerm('parsing'), expandTerm('parses').map((t) => (t === 'parses' ? 'parsing' : t)), 'parsing and parses share a stem');
  });

  test('vector: a chunk\'s own text is its nearest neighbour', async () => {
    const text = (await fs.readFile(path.join(FIXTURE, 'src/nested/queue.rs'), 'utf8')).split('\n');
    const hitsAll = await search.search('BoundedQueue', { mode: 'lexical', k: 1 });
    const target = hitsAll[0]!;
    const chunkText = text.slice(target.startLine - 1, target.endLine).join('\n');
    const hits = await search.search(chunkText, { mode: 'vector', k: 3 });
    assert.equal(hits[0]!.path, target.path);
    assert.equal(hits[0]!.startLine, target.startLine);
    // The index embedded the chunk under its context header (path > enclosing names), the query is the bare text.
    assert.ok(hits[0]!.score > 0.95, `cosine ${hits[0]!.score}`);
  });

  test('hybrid returns fused results; no ignored or skipped file ever shows up', async () => {
    const hits = await search.search('secret token do-not-index', { mode: 'hybrid', k: 20 });
    assert.ok(hits.length > 0);
    for (const h of hits) {
      assert.ok(!h.path.startsWith('ignored-folder/') && h.path !== 'src/generated.ts' && h.path !== 'web/bundle.js', h.path);
    }
  });

  test('similar to a file range leaves the range itself out', async () => {
    const hits = await search.similar({ path: 'src/math.ts', startLine: 13, endLine: 20 }, { k: 5 });
    assert.ok(hits.length > 0);
    assert.ok(!hits.some((h) => h.path === 'src/math.ts' && h.startLine <= 20 && h.endLine >= 13));
  });

  test('at most perFile results per file', async () => {
    const hits = await search.search('number return value', { mode: 'vector', k: 10, perFile: 1 });
    assert.equal(new Set(hits.map((h) => h.path)).size, hits.length);
  });

  test('an empty or blank query is a clear error', async () => {
    await assert.rejects(search.search('   '), (err: unknown) => err instanceof UserError && /empty/.test(err.message));
  });

  test('resolveSearchOptions: defaults, checks, and a deeper fetch for a kind filter', () => {
    const d = resolveSearchOptions('q');
    assert.deepEqual({ ...d }, { mode: 'hybrid', k: 10, perFile: 4, previewLines: 6, fusion: DEFAULT_FUSION, kinds: undefined, depth: 160 });
    assert.equal(resolveSearchOptions('q', { k: 2, perFile: 1 }).depth, 50);
    assert.equal(resolveSearchOptions('q', { k: 2, perFile: 1, kinds: ['tests'] }).depth, 200);
    assert.equal(resolveSearchOptions('q', { k: 2, perFile: 1, kinds: ['tests'] }, 8).depth, 232);
    assert.equal(resolveSearchOptions('q', { k: 0.5 }).k, 1);
    assert.throws(() => resolveSearchOptions('  '), /query is empty/);
    assert.throws(() => resolveSearchOptions('q', { mode: 'fuzzy' as never }), /Unknown search mode "fuzzy"/);
  });

  test('RRF and grouping helpers', () => {
    const rec = (id: string, p: string, s: number, e: number) => ({ rec: { id, path: p, startLine: s, endLine: e, contentHash: '' }, score: 0 });
    const fused = fuse([rec('a', 'x', 1, 5), rec('b', 'y', 1, 5)], [rec('b', 'y', 1, 5), rec('c', 'z', 1, 5)]);
    assert.equal(fused[0]!.rec.id, 'b');
    const grouped = groupPerFile([rec('a', 'x', 1, 5), rec('b', 'x', 3, 8), rec('c', 'x', 10, 12), rec('d', 'x', 20, 22)], 10, 2);
    assert.deepEqual(grouped.map((g) => g.rec.id), ['a', 'c']);
  });

  test('fusions: the score blend favours one list\'s clear winner, mix also a chunk both lists rank high; parseFusion spells them', () => {
    const rec = (id: string, score: number) => ({ rec: { id, path: id, startLine: 1, endLine: 5, contentHash: '' }, score });
    const vector = [rec('a', 0.9), rec('b', 0.5), rec('c', 0.1)];
    const lexical = [rec('c', 10), rec('b', 9), rec('d', 1)];
    const byScore = fuse(vector, lexical, { method: 'score', lexicalWeight: 0.3 });
    assert.deepEqual(byScore.map((x) => x.rec.id), ['a', 'b', 'c', 'd']);
    assert.ok(Math.abs(byScore[1]!.score - (0.7 * 0.5 + 0.3 * 8 / 9)) < 1e-12);
    // mix: 0.5 × the blend above + 0.5 × the mean of 61 / (60 + rank) over the two lists.
    const mix = fuse(vector, lexical, { method: 'mix', lexicalWeight: 0.3, rankWeight: 0.5, k: 60 });
    const expected = { a: 0.5 * 0.7 + 0.5 * (1 / 2), b: 0.5 * (0.35 + 0.3 * 8 / 9) + 0.5 * (61 / 62), c: 0.5 * 0.3 + 0.5 * (61 / 63 + 1) / 2, d: 0.5 * (61 / 63) / 2 };
    assert.deepEqual(mix.map((x) => x.rec.id), ['b', 'c', 'a', 'd']);
    for (const x of mix) assert.ok(Math.abs(x.score - expected[x.rec.id as keyof typeof expected]) < 1e-12, `${x.rec.id}: ${x.score}`);
    assert.equal(fuse(vector, lexical, { method: 'mix', lexicalWeight: 0.3, rankWeight: 0, k: 60 }).map((x) => x.score).join(), byScore.map((x) => x.score).join(), 'rank weight 0 is the blend');
    assert.deepEqual(DEFAULT_FUSION, { method: 'mix', lexicalWeight: 0.3, rankWeight: 0.5, k: 60 });
    assert.deepEqual(parseFusion('mix:0.3:0.5:60'), DEFAULT_FUSION);
    assert.deepEqual(parseFusion('score:0.3'), { method: 'score', lexicalWeight: 0.3 });
    assert.deepEqual(parseFusion('rrf:60'), { method: 'rrf', k: 60, lexicalWeight: 1 });
    assert.throws(() => parseFusion('mix:0.3:1.5:60'), (e: unknown) => e instanceof UserError && /rank weight must be a number from 0 to 1/.test(e.message) && /mix:0\.3:0\.5:60/.test(e.hint ?? ''));
    assert.throws(() => parseFusion('mix:0.3'), /rank weight/);
    assert.throws(() => parseFusion('blend:1'), /Unknown fusion "blend:1"/);
  });

  test('data, configuration and test chunks rank below code of equal score; the rest keep their order', () => {
    const c = (p: string, score: number) => ({ rec: { path: p }, score });
    const ranked = [c('package.json', 0.9), c('src/a.ts', 0.8), c('test/a.test.ts', 0.78), c('src/b.ts', 0.7), c('conf/app.yaml', -0.1), c('src/c.ts', -0.11)];
    assert.deepEqual(rankByKind(ranked).map((x) => x.rec.path), ['src/a.ts', 'package.json', 'src/b.ts', 'test/a.test.ts', 'src/c.ts', 'conf/app.yaml']);
    assert.equal(rankByKind(ranked)[1]!.score, 0.9 * DATA_SCORE_FACTOR);
    assert.equal(rankByKind(ranked)[3]!.score, 0.78 * TEST_SCORE_FACTOR);
    assert.ok(isDataPath('a/b/tsconfig.json') && isDataPath('.eslintrc') && isDataPath('x.svg') && !isDataPath('src/json.ts') && !isDataPath('README.md'));
    assert.equal(scoreFactorOfPath('src/url_test.go'), TEST_SCORE_FACTOR);
    assert.equal(scoreFactorOfPath('docs/guide.md'), 1);
    const plain = [c('src/a.ts', 1), c('src/b.ts', 2)];
    assert.equal(rankByKind(plain), plain, 'only code: the list is returned as is');
  });

  test("a file's header hit stands for the file: its best other candidate takes the header's score; the header stays, ranked down", () => {
    const c = (p: string, s: number, e: number, score: number, header = false) => ({ rec: { id: chunkId(p, s, e, 'h', undefined, header), path: p }, score });
    const ranked = [c('a.ts', 1, 9, 0.9, true), c('b.ts', 10, 20, 0.8), c('a.ts', 30, 40, 0.5), c('a.ts', 12, 28, 0.4), c('c.ts', 1, 5, 0.3, true)];
    const out = headersStandForFiles(ranked);
    assert.deepEqual(out.map((x) => `${x.rec.path}:${x.rec.id.split('#')[1]!.split('@')[0]}=${x.score.toFixed(2)}`), [
      'a.ts:L30-L40=0.90', // a.ts's best other candidate, lifted to its header's score
      'b.ts:L10-L20=0.80',
      'a.ts:L1-L9~H=0.45', // the header, at HEADER_SCORE_FACTOR of its score
      'a.ts:L12-L28=0.40', // the file's other candidates keep theirs
      'c.ts:L1-L5~H=0.30', // no other candidate of c.ts: the header keeps its score
    ]);
    assert.equal(HEADER_SCORE_FACTOR, 0.5);
    // A candidate already above its header keeps its own score.
    assert.deepEqual(headersStandForFiles([c('a.ts', 30, 40, 0.95), c('a.ts', 1, 9, 0.9, true)]).map((x) => x.score), [0.95, 0.45]);
    const plain = [c('a.ts', 1, 9, 0.9), c('b.ts', 1, 9, 0.8)];
    assert.equal(headersStandForFiles(plain), plain, 'no header: the list is returned as is');
  });

  test('pieces of one function are one result: the whole function, the best piece as its match', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'el-decl-'));
    try {
      const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
      await fs.writeFile(path.join(dir, 'a.ts'), lines.join('\n'));
      const piece = (s: number, e: number, score: number, unit?: [number, number]) => ({
        rec: { id: chunkId('a.ts', s, e, 'h', unit ? { startLine: unit[0], endLine: unit[1] } : undefined), path: 'a.ts', startLine: s, endLine: e, contentHash: hashText(lines.slice(s - 1, e).join('\n')) },
        score,
      });
      const ranked = [piece(12, 15, 0.9, [5, 20]), piece(1, 4, 0.8), piece(5, 11, 0.7, [5, 20]), piece(21, 30, 0.6)];
      const q = resolveSearchOptions('q', { k: 10, previewLines: 2 });
      const hits = await pickHits(dir, ranked, q);
      assert.deepEqual(hits.map((h) => [h.startLine, h.endLine, h.match?.startLine, h.match?.endLine]), [[5, 20, 12, 15], [1, 4, undefined, undefined], [21, 30, undefined, undefined]]);
      assert.equal(hits[0]!.preview, 'line 5\nline 6', 'the preview starts at the function');
      assert.equal(hits[0]!.match?.preview, 'line 12\nline 13', 'the match has its own preview');
      // Shown (CLI, result lists): the function's first line, ⋯, the matched lines; a hit without a match as it is.
      assert.deepEqual(hitPreviewLines(hits[0]!), ['line 5', ELIDED_LINES, 'line 12', 'line 13']);
      assert.deepEqual(hitPreviewLines(hits[1]!), ['line 1', 'line 2']);
      assert.deepEqual(hitPreviewLines({ preview: 'a\nb', startLine: 5, match: { startLine: 5, preview: 'a' } }), ['a', 'b'], 'a piece at the start: nothing left out');
      assert.match(formatHits(hits, 'hybrid'), /^a\.ts:5-20 {2}fused 0\.9000 {2}\(matched 12-15\)\n {4}line 5\n {4}⋯\n {4}line 12\n {4}line 13\n/);
      assert.equal(hits[0]!.stale, undefined, 'the piece is current');
      await fs.writeFile(path.join(dir, 'a.ts'), lines.map((l, i) => (i === 13 ? 'changed' : l)).join('\n'));
      assert.equal((await pickHits(dir, ranked, q))[0]!.stale, true, 'a change inside the piece makes it stale');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('model prefixes', () => {
    assert.equal(prefixesForModel('intfloat/e5-small-v2').query, 'query: ');
    assert.equal(prefixesForModel('Xenova/all-MiniLM-L6-v2').query, '');
    assert.match(prefixesForModel('BAAI/bge-small-en-v1.5').query, /^Represent this sentence/);
  });
});
