// The inspector's map measures and its neighbours per layer: mapQuality on maps whose answer is known,
// UMAP keeping more neighbours than PCA on clustered data, the map's colour groups, chunk kinds, and
// neighbours per layer against exact rankings computed independently (every chunk embedded at each layer).
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { unitOfId } from '../../src/core/index/chunk';
import { WorkspaceIndexer } from '../../src/core/index/indexer';
import { groupPoints, mapQuality, umap2 } from '../../src/core/map/neighbourMap';
import { kindOfPath as kindOf } from '../../src/core/search/kinds';
import { pca2 } from '../../src/core/map/pca';
import { seededRandom } from '../../src/core/random';
import { neighboursPerLayer } from '../../src/core/search/layerNeighbours';
import { WorkspaceSearch } from '../../src/core/search/search';
import { VectorStore } from '../../src/core/store/vectorStore';

const REPO = path.resolve(__dirname, '../..');
const FIXTURE = path.join(REPO, 'test/fixtures/sample-workspace');
const MODEL = path.join(REPO, 'test/fixtures/models/bert-tiny');

/** n points in `clusters` tight Gaussian-ish blobs in `dims` dimensions. */
function blobs(n: number, dims: number, clusters: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dims }, () => r() * 2 - 1));
  const x = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) for (let d = 0; d < dims; d++) x[i * dims + d] = centres[i % clusters][d] + 0.15 * (r() - 0.5);
  return x;
}

describe('map quality', () => {
  test('a map that is the data itself keeps every neighbour; a shuffled map keeps about k/n', () => {
    const r = seededRandom(3);
    const n = 120;
    // 2-D points away from the origin (cosine ranks follow angles; a map of the angle keeps them all).
    const angles = Array.from({ length: n }, () => r() * Math.PI);
    const x = Float32Array.from(angles.flatMap((a) => [Math.cos(a), Math.sin(a)]));
    const onLine = Float64Array.from(angles.flatMap((a) => [a, 0]));
    const same = mapQuality(x, 2, onLine, 10);
    assert.equal(same.kept, 1);
    assert.ok(Math.abs(same.trust - 1) < 1e-12);
    const shuffled = Float64Array.from(angles.flatMap(() => [r(), r()]));
    const random = mapQuality(x, 2, shuffled, 10);
    assert.ok(random.kept < 0.25, `random map keeps ${random.kept}`);
    assert.ok(random.trust < 0.7, `random map trust ${random.trust}`);
  });

  test('UMAP keeps more of the 10 nearest than PCA on many clusters in 32 dims', () => {
    const dims = 32;
    const x = blobs(200, dims, 10, 5);
    const u = mapQuality(x, dims, umap2(x, dims, { epochs: 120 }), 10);
    const p = mapQuality(x, dims, pca2(x, 200, dims).coords, 10);
    assert.ok(u.kept > p.kept, `UMAP ${u.kept} vs PCA ${p.kept}`);
    assert.ok(u.trust > 0.8, `UMAP trust ${u.trust}`);
  });

  test('UMAP is seeded: the same vectors give the same map', () => {
    const x = blobs(60, 16, 3, 9);
    assert.deepEqual(Array.from(umap2(x, 16, { epochs: 50 })), Array.from(umap2(x, 16, { epochs: 50 })));
  });

  test('colour groups: the six largest get their own colour, the rest are "other"', () => {
    const names = ['a', 'a', 'a', 'b', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'h'];
    const g = groupPoints(names);
    assert.deepEqual(g.legend.map((x) => [x.name, x.count, x.colour]), [['a', 3, 0], ['b', 2, 1], ['h', 2, 2], ['c', 1, 3], ['d', 1, 4], ['e', 1, 5], ['other (2 groups)', 2, 6]]);
    assert.deepEqual(g.index.slice(0, 3), [0, 0, 0]);
    assert.equal(g.index[names.indexOf('g')], 6);
    // Seven groups fit: no "other" needed.
    assert.equal(groupPoints(['a', 'b', 'c', 'd', 'e', 'f', 'g']).legend.length, 7);
  });

  test('chunk kinds: tests, docs and code', () => {
    assert.equal(kindOf('test/unit/foo.test.ts'), 'tests');
    assert.equal(kindOf('src/foo_test.go'), 'tests');
    assert.equal(kindOf('pkg/test_utils.py'), 'tests');
    assert.equal(kindOf('README.md'), 'docs');
    assert.equal(kindOf('docs/guide.html'), 'docs');
    assert.equal(kindOf('src/core/map/pca.ts'), 'code');
    assert.equal(kindOf('src/contest.ts'), 'code');
    // One classifier for the map and search's --kind: extensionless prose files, LaTeX, code under docs/.
    for (const p of ['README', 'pkg/LICENSE', 'CHANGELOG', 'paper/main.tex', 'LICENSE.txt']) assert.equal(kindOf(p), 'docs', p);
    assert.equal(kindOf('docs/conf.py'), 'code', 'code under docs/ is code');
    assert.equal(kindOf('src/license.ts'), 'code');
    assert.equal(kindOf('tests/conftest.py'), 'tests');
  });
});

describe('neighbours per layer (bert-tiny over the sample workspace)', () => {
  let extractor: Extractor;
  let search: WorkspaceSearch;
  let storage: string;
  const recipe = { layer: 'last', pool: 'mean' as const, normalize: true };
  before(async () => {
    extractor = await Extractor.load({ model: MODEL, offline: true });
    const embedder = extractor.embedder(recipe);
    storage = await fs.mkdtemp(path.join(os.tmpdir(), 'el-layers-'));
    await (await WorkspaceIndexer.open({ root: FIXTURE, storageDir: storage, embedder, chunkTokens: 64 })).refresh();
    search = await WorkspaceSearch.open({ root: FIXTURE, storageDir: storage, embedder });
  });
  after(async () => {
    await extractor?.dispose();
    await fs.rm(storage, { recursive: true, force: true });
  });

  test('with every chunk as a candidate, each layer\'s list is the exact ranking at that layer', async () => {
    const query = 'def parse_http_url(url): split a url into scheme, host and path';
    // Candidates are what "Find Similar" returns (overlapping chunks of one file merged, the pieces of
    // one long function shown as the function): all of them here.
    const records = await search.similar({ text: query }, { k: 10_000, perFile: 10_000 });
    const stores = path.join(storage, 'stores');
    const chunks = (await VectorStore.open(path.join(stores, (await fs.readdir(stores))[0]))).snapshot().records;
    const total = new Set(chunks.map((r) => { const u = unitOfId(r.id) ?? r; return `${r.path}:${u.startLine}`; })).size;
    // A chunk that crosses a function's edge overlaps that function's result and is dropped: most, not all, remain.
    assert.ok(records.length > total * 0.7, `${records.length} of ${total}`);
    const texts = await Promise.all(records.map(async (r) => (await fs.readFile(path.join(FIXTURE, r.path), 'utf8')).split(/\r?\n/).slice(r.startLine - 1, r.endLine).join('\n')));
    const layers = [1, 2, 4];
    const got = await neighboursPerLayer({ root: FIXTURE, search, extractor, recipe, target: { text: query }, layers, k: 5, candidates: 10_000 });
    assert.equal(got.candidates, records.length);
    for (const [li, layer] of layers.entries()) {
      // Independent: each layer on its own extraction call, texts one at a time (no shared batch).
      const q = (await extractor.extract([query], { ...recipe, layer: String(layer) })).data;
      const scored = await Promise.all(texts.map(async (t, i) => {
        const v = (await extractor.extract([t], { ...recipe, layer: String(layer) })).data;
        let s = 0;
        for (let d = 0; d < v.length; d++) s += q[d] * v[d];
        return { i, s };
      }));
      scored.sort((a, b) => b.s - a.s);
      const exact = scored.slice(0, 5).map((x) => `${records[x.i].path}:${records[x.i].startLine}`);
      assert.deepEqual(got.hits[li].map((h) => `${h.path}:${h.startLine}`), exact, `layer ${layer}`);
      got.hits[li].forEach((h, r) => assert.ok(Math.abs(h.score - scored[r].s) < 1e-4));
    }
  });

  test('with few candidates, only those are ranked; a selection in the index leaves itself out', async () => {
    const lines = (await fs.readFile(path.join(FIXTURE, 'src/math.ts'), 'utf8')).split('\n');
    const start = lines.findIndex((l) => l.includes('computeGreatestCommonDivisor')) + 1;
    const got = await neighboursPerLayer({ root: FIXTURE, search, extractor, recipe, target: { path: 'src/math.ts', startLine: start, endLine: start + 2 }, layers: [1, 4], k: 3, candidates: 5 });
    assert.equal(got.candidates, 5);
    for (const list of got.hits) {
      assert.equal(list.length, 3);
      for (const h of list) {
        assert.ok(h.indexRank >= 1 && h.indexRank <= 5);
        assert.ok(!(h.path === 'src/math.ts' && h.startLine <= start + 2 && h.endLine >= start));
      }
    }
  });
});
