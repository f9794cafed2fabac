// Unit tests of src/core/store without Python: formats round-trip, float16 rounding against values
// worked out by hand from IEEE 754, the vector store against exact brute-force search, and every
// bad-input path giving a UserError that says what is wrong.
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, it, before, after } from 'node:test';
import { UserError, type EmbeddingManifest, type RecipeIdentity } from '../../src/core/types';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/core/store/float16';
import { NpyWriter, parseNpy, readNpy, writeNpy } from '../../src/core/store/npy';
import { FaissFlatWriter, encodeFaissFlat, parseFaissIndex, readFaissIndex } from '../../src/core/store/faiss';
import { exactSearch } from '../../src/core/store/exact';
import { H5Writer, readH5 } from '../../src/core/store/hdf5';
import { DEFAULT_EF_SEARCH, efSearchForSize, MANIFEST_NAME, VectorStore } from '../../src/core/store/vectorStore';
import { exportStore } from '../../src/core/store/export';
import { checkedReadOptions, readChecked } from '../../src/core/store/checkedRead';
import { digestBytes } from '../../src/core/store/atomicFile';
import { seededRandom as rng } from '../../src/core/random';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-store-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function randomMatrix(n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * d }, () => r() * 2 - 1);
}

const recipe: RecipeIdentity = { model: 'fixture/tiny-bert', modelHash: 'abcd1234abcd1234', layer: 'last', pooling: 'mean', normalize: true, dims: 16 };
function records(n: number, offset = 0, files = 7) {
  return Array.from({ length: n }, (_, i) => ({
    id: `chunk-${i + offset}`,
    path: `src/file${(i + offset) % files}.ts`,
    startLine: i + 1,
    endLine: i + 10,
    contentHash: `h${i + offset}`,
  }));
}
async function rejects(p: Promise<unknown> | (() => unknown), pattern: RegExp): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

describe('float16', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite half
    [65519.99, 0x7bff], // below the rounding boundary
    [65520, 0x7c00], // exactly halfway to 65536: rounds to even = Infinity
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie: stays on the even mantissa
    [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds up to the even mantissa
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even = 0
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even = 2
    [2 ** -14 - 2 ** -25, 0x0400], // rounds up from the largest subnormal into the smallest normal
  ];
  for (const [value, bits] of cases) {
    it(`${value} -> 0x${bits.toString(16).padStart(4, '0')}`, () => {
      assert.equal(float32ToFloat16Bits(value), bits);
    });
  }
  it('NaN stays NaN', () => {
    assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
  });
  it('every finite half value survives half -> float -> half', () => {
    for (let h = 0; h < 0x10000; h++) {
      const exp = (h >>> 10) & 0x1f;
      if (exp === 0x1f && (h & 0x3ff) !== 0) continue; // NaNs
      assert.equal(float32ToFloat16Bits(float16BitsToFloat32(h)), h);
    }
  });
});

describe('.npy', () => {
  it('streams rows and rewrites the shape; header padded to 64 bytes', async () => {
    const file = path.join(tmp, 'a.npy');
    const data = randomMatrix(1000, 24, 1);
    const w = await NpyWriter.create(file, { dims: 24 });
    for (let i = 0; i < 1000; i += 137) await w.append(data.subarray(i * 24, Math.min(1000, i + 137) * 24));
    assert.equal(fs.existsSync(file), false, 'nothing under the final name before close');
    await w.close();
    const buf = fs.readFileSync(file);
    const headerLen = buf.readUInt16LE(8);
    assert.equal((10 + headerLen) % 64, 0);
    assert.equal(buf[6], 1);
    const arr = parseNpy(buf);
    assert.deepEqual(arr.shape, [1000, 24]);
    assert.equal(arr.dtype, 'float32');
    assert.deepEqual(arr.data, data);
    assert.equal(buf.length, 10 + headerLen + data.byteLength);
  });
  it('float16 output equals the element-wise conversion', async () => {
    const file = path.join(tmp, 'h.npy');
    const data = randomMatrix(50, 8, 2).map((x) => x * 1000);
    await writeNpy(file, data, 8, 'float16');
    const arr = await readNpy(file);
    assert.equal(arr.dtype, 'float16');
    assert.deepEqual(arr.shape, [50, 8]);
    for (let i = 0; i < data.length; i++) assert.equal(arr.data[i], float16BitsToFloat32(float32ToFloat16Bits(data[i])));
  });
  it('empty array, abort, and bad rows', async () => {
    const file = path.join(tmp, 'e.npy');
    await writeNpy(file, new Float32Array(0), 5);
    assert.deepEqual((await readNpy(file)).shape, [0, 5]);
    const w = await NpyWriter.create(path.join(tmp, 'aborted.npy'), { dims: 4 });
    await rejects(w.append(new Float32Array(5)), /not a multiple of dims 4/);
    await w.abort();
    assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.includes('aborted')), []);
  });
  it('rejects a truncated file', async () => {
    const file = path.join(tmp, 't.npy');
    await writeNpy(file, randomMatrix(10, 4, 3), 4);
    const buf = fs.readFileSync(file);
    await rejects(async () => parseNpy(buf.subarray(0, buf.length - 3)), /truncated data/);
  });
});

describe('FAISS format', () => {
  it('streaming writer produces the same bytes as the one-shot encoder; reader round-trips', async () => {
    const data = randomMatrix(300, 12, 4);
    const ids = Array.from({ length: 300 }, (_, i) => 1000 + i * 3);
    const bytes = encodeFaissFlat({ vectors: data, dims: 12, ids, metric: 'ip' });
    const file = path.join(tmp, 's.faiss');
    const w = await FaissFlatWriter.create(file, { dims: 12, metric: 'ip' });
    await w.append(data.subarray(0, 100 * 12), ids.slice(0, 100));
    await w.append(data.subarray(100 * 12), ids.slice(100));
    await w.close();
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), bytes);
    const back = await readFaissIndex(file);
    assert.equal(back.kind, 'flat');
    assert.equal(back.metric, 'ip');
    assert.equal(back.ntotal, 300);
    assert.deepEqual(back.vectors, data);
    assert.deepEqual(Array.from(back.ids!, Number), ids);
    await rejects(async () => parseFaissIndex(bytes.subarray(0, bytes.length - 1)), /truncated/);
  });
});

describe('HDF5 (h5wasm)', () => {
  const manifest: EmbeddingManifest = {
    tool: 'embedding-lens', toolVersion: '0.1.0', model: 'fixture/tiny-bert', modelHash: 'abcd', modelFile: 'onnx/model.onnx',
    layer: '-2', layers: [3], layerCombine: 'single', pooling: 'mean', normalize: false, excludeSpecialTokens: false,
    dims: 6, dtype: 'float32', count: 0, createdAt: '2024-01-01T00:00:00.000Z',
  };
  it('pooled layout round-trips with attributes', async () => {
    const file = path.join(tmp, 'p.h5');
    const data = randomMatrix(40, 6, 5);
    const w = await H5Writer.create(file, { dims: 6, manifest, gzip: 4, chunkRows: 16, withText: true });
    const items = records(40).map((r) => ({ ...r, text: `text ${r.id} é` }));
    await w.append(data.subarray(0, 25 * 6), items.slice(0, 25));
    await w.append(data.subarray(25 * 6), items.slice(25));
    await w.close();
    const back = await readH5(file);
    assert.equal(back.layout, 'pooled');
    assert.deepEqual(back.vectors, data);
    assert.deepEqual(back.ids, items.map((i) => i.id));
    assert.deepEqual(back.paths, items.map((i) => i.path));
    assert.deepEqual(Array.from(back.startLines), items.map((i) => i.startLine));
    assert.deepEqual(back.text, items.map((i) => i.text));
    assert.equal(back.attrs.layer, '-2');
    assert.equal(back.attrs.dims, 6);
    assert.equal(JSON.parse(back.attrs.manifest_json as string).count, 40);
  });
  it('refuses float16 instead of silently writing float32', async () => {
    await rejects(H5Writer.create(path.join(tmp, 'f16.h5'), { dims: 6, manifest, dtype: 'float16' }), /float32 only/);
  });
});

describe('VectorStore', () => {
  const n = 600;
  const data = randomMatrix(n, 16, 6);

  it('the default search breadth follows the graph\'s size: the store\'s own up to 100k points, doubled per tenfold past that', async () => {
    assert.equal(efSearchForSize(600), DEFAULT_EF_SEARCH);
    assert.equal(efSearchForSize(100_000), 100);
    assert.equal(efSearchForSize(1_000_000), 200);
    assert.ok(efSearchForSize(300_000) > 100 && efSearchForSize(300_000) < 200);
    assert.equal(efSearchForSize(1e9), 800);
    assert.equal(efSearchForSize(1_000_000, 40), 80);
    const s = await VectorStore.create(path.join(tmp, 'store-ef'), recipe, { efSearch: 40 });
    s.upsert(records(50), data.subarray(0, 50 * 16));
    s.compact();
    await s.save();
    assert.equal(s.stats().efSearch, 40, 'a store built with its own efSearch keeps it while small');
  });

  it('finds the exact neighbours, survives save/open, and scores are cosine similarities', async () => {
    const dir = path.join(tmp, 'store1');
    const s = await VectorStore.create(dir, recipe, { initialCapacity: 32 }); // forces several resizes
    s.upsert(records(n), data, recipe);
    await s.save();
    const s2 = await VectorStore.open(dir, recipe);
    assert.equal(s2.count, n);
    let found = 0;
    for (let q = 0; q < 20; q++) {
      const query = randomMatrix(1, 16, 100 + q);
      const exact = exactSearch(data, 16, query, 10, 'cosine');
      const hits = s2.query(query, 10, { ef: 200 });
      const got = new Set(hits.map((h) => h.id));
      for (const r of exact.rows) if (got.has(`chunk-${r}`)) found++;
      // score equals the cosine similarity computed independently
      const best = hits[0];
      const row = Number(best.id.slice(6));
      const ref = exactSearch(data.subarray(row * 16, row * 16 + 16), 16, query, 1, 'cosine').values[0];
      assert.ok(Math.abs(best.score - ref) < 1e-5, `score ${best.score} vs cosine ${ref}`);
      assert.equal(best.path, `src/file${row % 7}.ts`);
    }
    assert.ok(found / 200 >= 0.99, `recall ${found / 200}`);
  });

  it('upsert replaces by id, deleteByPath removes; deltas, tombstones and compaction keep results', async () => {
    const dir = path.join(tmp, 'store2');
    const s = await VectorStore.create(dir, recipe, { compactRatio: 0.1, compactMinDeleted: 1 });
    s.upsert(records(n), data);
    await s.save(); // a delta segment: the rows are searched exactly until a compaction
    assert.deepEqual([s.stats().baseRows, s.stats().deltaRows, s.stats().deltaSegments], [0, n, 1]);
    assert.equal(await s.compactIfNeeded(), false); // 600 delta rows are under deltaMinRows
    s.compact();
    await s.save(); // a new base: every row in the HNSW graph
    assert.deepEqual([s.stats().baseRows, s.stats().deltaRows, s.stats().deltaSegments], [n, 0, 0]);
    const moved = randomMatrix(1, 16, 77);
    s.upsert([{ id: 'chunk-5', path: 'src/moved.ts', startLine: 1, endLine: 2, contentHash: 'new' }], moved);
    assert.equal(s.count, n);
    assert.equal(s.query(moved, 1)[0].id, 'chunk-5');
    assert.equal(s.query(moved, 1)[0].path, 'src/moved.ts');
    const removed = s.deleteByPath('src/file3.ts');
    assert.ok(removed > 50);
    assert.equal(s.count, n - removed);
    assert.ok(s.needsCompaction()); // tombstones in the graph passed compactRatio
    const q = randomMatrix(1, 16, 999);
    const before = s.query(q, 10, { ef: 300 }).map((h) => h.id);
    assert.ok(!before.some((id) => s.get(id)?.path === 'src/file3.ts'));
    const bytesBefore = s.stats().bytesOnDisk;
    await s.save(); // a delta with one row and the tombstones, not a rewrite
    const deltaFile = fs.readdirSync(dir).find((f) => f.startsWith('delta.'))!;
    assert.ok(fs.statSync(path.join(dir, deltaFile)).size < bytesBefore / 10, 'the delta is small next to the base');
    const s1 = await VectorStore.open(dir);
    assert.equal(s1.count, n - removed);
    assert.deepEqual(s1.query(q, 10, { ef: 300 }).map((h) => h.id), before);
    assert.deepEqual(s1.recordsOfPath('src/file3.ts'), []);
    assert.equal(s1.get('chunk-5')?.path, 'src/moved.ts');
    assert.equal(await s1.compactIfNeeded(), true); // rebuilds the graph without the deleted labels
    assert.equal(s1.stats().deleted, 0);
    const s2 = await VectorStore.open(dir);
    assert.equal(s2.count, n - removed);
    assert.deepEqual(s2.query(q, 10, { ef: 300 }).map((h) => h.id), before);
    assert.deepEqual(s2.recordsOfPath('src/file3.ts'), []);
    assert.deepEqual(s2.paths().sort(), [...new Set(records(n).map((r) => r.path).filter((p) => p !== 'src/file3.ts'))].concat('src/moved.ts').sort());
    // only the committed generation's files remain
    assert.deepEqual(fs.readdirSync(dir).sort(), [`index.${s2.generation}.hnsw`, MANIFEST_NAME, `metadata.${s2.generation}.bin`].sort());
  });

  it('a delta segment cut short or flipped is reported with the files it covered; open with repair drops it', async () => {
    const dir = path.join(tmp, 'store-damage');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(100), data.subarray(0, 100 * 16));
    s.compact();
    await s.save();
    s.deleteByPath('src/file2.ts');
    s.upsert([{ id: 'new-1', path: 'src/new.ts', startLine: 1, endLine: 3, contentHash: 'h' }], data.subarray(0, 16));
    await s.save();
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
    assert.equal(manifest.deltas.length, 1);
    assert.deepEqual(manifest.deltas[0].paths, ['src/file2.ts', 'src/new.ts']);
    const deltaPath = path.join(dir, manifest.deltas[0].name);
    const original = fs.readFileSync(deltaPath);
    for (const damage of ['flip', 'cut']) {
      const bad = Buffer.from(original);
      if (damage === 'flip') bad[bad.length - 7] ^= 0x10;
      fs.writeFileSync(deltaPath, damage === 'flip' ? bad : bad.subarray(0, bad.length - 9));
      await rejects(VectorStore.open(dir), /delta\.\d+\.seg is (corrupt|truncated)[\s\S]*src\/file2\.ts, src\/new\.ts[\s\S]*re-embeds only the files/);
    }
    const repaired = await VectorStore.open(dir, recipe, { repair: true });
    assert.deepEqual(repaired.dropped.map((d) => d.paths), [['src/file2.ts', 'src/new.ts']]);
    // Without the delta: the base as it was (file2 back, new.ts missing); the caller re-indexes those files.
    assert.equal(repaired.count, 100);
    assert.equal(repaired.has('new-1'), false);
    await repaired.save();
    const again = await VectorStore.open(dir);
    assert.equal(again.count, 100);
    assert.equal(again.stats().deltaSegments, 0);
    assert.ok(!fs.readdirSync(dir).some((f) => f.startsWith('delta.')), 'the damaged file is swept');
  });

  it('a writer\'s lazy graph: files checked at open, the graph read only when needed, deletions made before it is read kept', async () => {
    const dir = path.join(tmp, 'store-lazy');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(200), data.subarray(0, 200 * 16));
    s.compact();
    await s.save();
    const q = randomMatrix(1, 16, 4242);
    const lazy = await VectorStore.open(dir, recipe, { lazyGraph: true });
    assert.equal(lazy.stats().graphRead, false);
    assert.equal(lazy.count, 200);
    // An edit: one file's chunks deleted, one chunk added, saved as a delta, without the graph.
    const removed = lazy.deleteByPath('src/file3.ts');
    assert.ok(removed > 0);
    lazy.upsert([{ id: 'lazy-1', path: 'src/lazy.ts', startLine: 1, endLine: 2, contentHash: 'l' }], q);
    await lazy.save();
    assert.equal(lazy.stats().graphRead, false, 'a delta save does not read the graph');
    assert.equal(lazy.needsCompaction(), false);
    // A query reads it now; the deletions made before are in it.
    const hits = lazy.query(q, 50);
    assert.equal(lazy.stats().graphRead, true);
    assert.equal(hits[0].id, 'lazy-1');
    assert.ok(!hits.some((h) => h.path === 'src/file3.ts'));
    const eager = await VectorStore.open(dir, recipe);
    assert.equal(eager.stats().graphRead, true);
    assert.deepEqual(hits.map((h) => h.id), eager.query(q, 50).map((h) => h.id));
    // A stored vector also reads it (a moved chunk's vector reused by a refresh).
    const again = await VectorStore.open(dir, recipe, { lazyGraph: true });
    assert.deepEqual(again.vectorOf('chunk-7'), eager.vectorOf('chunk-7'));
    assert.equal(again.stats().graphRead, true);
    // Damage is found at open all the same.
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
    const indexFile = path.join(dir, m.files.index.name);
    const original = fs.readFileSync(indexFile);
    const bad = Buffer.from(original);
    bad[200] ^= 0x01;
    fs.writeFileSync(indexFile, bad);
    await rejects(VectorStore.open(dir, recipe, { lazyGraph: true }), /index\.\d+\.hnsw is corrupt/);
    fs.writeFileSync(indexFile, original);
  });

  it('segments are checked by CRC-32; an entry written before CRC-32s is checked by sha256 and gets its CRC at the next save', async () => {
    const dir = path.join(tmp, 'store-crc');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(100), data.subarray(0, 100 * 16));
    s.compact();
    await s.save();
    const file = path.join(dir, MANIFEST_NAME);
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    const indexFile = path.join(dir, m.files.index.name);
    const crc = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    if (crc) assert.equal(m.files.index.crc32, crc(fs.readFileSync(indexFile)), 'the CRC-32 of the file, by zlib');
    // A flipped byte in the base graph is caught before hnswlib reads it.
    const original = fs.readFileSync(indexFile);
    const bad = Buffer.from(original);
    bad[bad.length - 100] ^= 0x04;
    fs.writeFileSync(indexFile, bad);
    await rejects(VectorStore.open(dir), /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/);
    // Without CRC-32s (an older writer), sha256 decides: the flip is still caught...
    delete m.files.index.crc32;
    delete m.files.metadata.crc32;
    fs.writeFileSync(file, JSON.stringify(m));
    await rejects(VectorStore.open(dir), /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/);
    // ...and the intact file opens, and the next save records its CRC-32.
    fs.writeFileSync(indexFile, original);
    const reopened = await VectorStore.open(dir);
    assert.equal(reopened.count, 100);
    reopened.upsert([{ id: 'crc-1', path: 'src/crc.ts', startLine: 1, endLine: 2, contentHash: 'c' }], data.subarray(0, 16));
    await reopened.save();
    const after = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (crc) assert.equal(after.files.index.crc32, crc(original));
    assert.equal(after.files.index.sha256, m.files.index.sha256);
  });

  it('checked off the main thread: a store searches only after every file it uses passed its checksum; hnswlib never reads a file whose layout is unsound', async () => {
    const dir = path.join(tmp, 'store-offthread');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(300), data.subarray(0, 300 * 16));
    s.compact();
    await s.save();
    s.deleteByPath('src/file4.ts');
    s.upsert([{ id: 'late-1', path: 'src/late.ts', startLine: 1, endLine: 2, contentHash: 'l' }], data.subarray(16, 32));
    await s.save();
    const q = randomMatrix(1, 16, 777);
    const expected = s.query(q, 20).map((h) => [h.id, h.score]);
    const saved = checkedReadOptions.offThreadMinBytes;
    checkedReadOptions.offThreadMinBytes = 0; // every file through the checking thread, as large stores are
    try {
      for (const lazyGraph of [false, true]) {
        const opened = await VectorStore.open(dir, recipe, { lazyGraph });
        assert.deepEqual(opened.query(q, 20).map((h) => [h.id, h.score]), expected, 'the same results through the checking thread');
      }
      const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
      const indexFile = path.join(dir, m.files.index.name);
      const original = fs.readFileSync(indexFile);
      const level0 = 96 + 4 + 2 * 16 * 4; // the first point's vector, in the level-0 records hnswlib reads whole
      const headerCount = 16; // the header's point count: hnswlib would size its reading by it
      const upper = original.length - 8; // inside the upper-level link lists at the end of the file
      const damage: [string, (b: Buffer) => Buffer, RegExp][] = [
        ['a vector byte', (b) => { b[level0 + 5] ^= 0x20; return b; }, /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/],
        ['the header\'s point count', (b) => { b[headerCount] ^= 0x40; return b; }, /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/],
        ['an upper-level link', (b) => { b[upper] ^= 0x01; return b; }, /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/],
        ['the file cut short', (b) => b.subarray(0, b.length - 40), /index\.\d+\.hnsw is truncated or damaged \(\d+ bytes, the manifest says \d+\)/],
      ];
      for (const [what, hurt, message] of damage) {
        fs.writeFileSync(indexFile, hurt(Buffer.from(original)));
        for (const lazyGraph of [false, true]) {
          await assert.rejects(VectorStore.open(dir, recipe, { lazyGraph }), (e: unknown) => e instanceof UserError && e.code === 'INDEX_DAMAGED' && message.test(e.message) && /Rebuild the index/.test(e.message), `${what}, lazyGraph ${lazyGraph}`);
        }
      }
      fs.writeFileSync(indexFile, original);
      // A header that disagrees with the manifest (here: the manifest's M) is refused before hnswlib reads it.
      const manifestFile = path.join(dir, MANIFEST_NAME);
      fs.writeFileSync(manifestFile, JSON.stringify({ ...m, M: 32 }));
      await rejects(VectorStore.open(dir), /index\.\d+\.hnsw is damaged \(its header says maxM 16, expected 32\)/);
      fs.writeFileSync(manifestFile, JSON.stringify(m));
      // The metadata and the delta segment, checked on the same thread.
      const metaFile = path.join(dir, m.files.metadata.name);
      const meta = fs.readFileSync(metaFile);
      const badMeta = Buffer.from(meta);
      badMeta[meta.length >> 1] ^= 0x08;
      fs.writeFileSync(metaFile, badMeta);
      await rejects(VectorStore.open(dir), /metadata\.\d+\.bin is corrupt \(checksum mismatch\)/);
      fs.writeFileSync(metaFile, meta);
      const deltaFile = path.join(dir, m.deltas[0].name);
      const delta = fs.readFileSync(deltaFile);
      fs.writeFileSync(deltaFile, delta.subarray(0, delta.length - 3));
      await rejects(VectorStore.open(dir), /delta\.\d+\.seg is truncated or damaged[\s\S]*src\/file4\.ts, src\/late\.ts/);
      fs.writeFileSync(deltaFile, delta);
      assert.deepEqual((await VectorStore.open(dir)).query(q, 20).map((h) => [h.id, h.score]), expected);
    } finally {
      checkedReadOptions.offThreadMinBytes = saved;
    }
  });

  it('readChecked: the same verdicts inline and on the checking thread (missing, short, altered, sha256-only entries)', async () => {
    const file = path.join(tmp, 'checked.bin');
    const bytes = Buffer.from(randomMatrix(3000, 4, 91).buffer);
    fs.writeFileSync(file, bytes);
    const saved = checkedReadOptions.offThreadMinBytes;
    try {
      for (const threshold of [Infinity, 0]) {
        checkedReadOptions.offThreadMinBytes = threshold;
        const entry = digestBytes(bytes);
        const ok = await readChecked(file, entry);
        assert.ok(ok.ok && ok.bytes && Buffer.from(ok.bytes).equals(bytes));
        const verdict = await readChecked(file, entry, { keep: false });
        assert.deepEqual(verdict, { ok: true, bytes: null });
        assert.deepEqual(await readChecked(path.join(tmp, 'no-such.bin'), entry), { ok: false, problem: { kind: 'missing', code: 'ENOENT' } });
        assert.deepEqual(await readChecked(file, { ...entry, bytes: entry.bytes + 1 }), { ok: false, problem: { kind: 'size', size: entry.bytes } });
        assert.deepEqual(await readChecked(file, { ...entry, crc32: (entry.crc32! + 1) >>> 0 }, { keep: false }), { ok: false, problem: { kind: 'checksum' } });
        // An entry from before CRC-32s: sha256 decides, and a pass notes the CRC-32 for the next manifest.
        const old = { sha256: entry.sha256, bytes: entry.bytes };
        assert.equal((await readChecked(file, old)).ok, true);
        if (entry.crc32 !== undefined) assert.equal((old as typeof entry).crc32, entry.crc32);
        assert.deepEqual(await readChecked(file, { sha256: '0'.repeat(64), bytes: entry.bytes }), { ok: false, problem: { kind: 'checksum' } });
      }
    } finally {
      checkedReadOptions.offThreadMinBytes = saved;
    }
  });

  it('reads a format-1 store (one HNSW file + JSON metadata) and rewrites it as segments at the next save', async () => {
    const dir = path.join(tmp, 'store-v1');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(50), data.subarray(0, 50 * 16));
    s.compact();
    await s.save();
    // Turn it into what version 1 wrote: metadata.<g>.json, formatVersion 1, no segment fields.
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
    const snap = s.snapshot();
    const json = JSON.stringify({ format: 'embedding-lens-store-metadata', generation: m.generation,
      entries: snap.records.map((r, i) => [snap.labels[i], r.id, r.path, r.startLine, r.endLine, r.contentHash]) });
    fs.rmSync(path.join(dir, m.files.metadata.name));
    const metaName = `metadata.${m.generation}.json`;
    fs.writeFileSync(path.join(dir, metaName), json);
    const digest = createHash('sha256').update(json).digest('hex');
    const { deltas: _d, baseRows: _b, deltaShare: _s, deltaMinRows: _n, deltaMaxRows: _x, maxDeltaSegments: _m, ...v1 } = m;
    fs.writeFileSync(path.join(dir, MANIFEST_NAME), JSON.stringify({ ...v1, formatVersion: 1, files: { ...m.files, metadata: { name: metaName, sha256: digest, bytes: Buffer.byteLength(json) } } }));
    const old = await VectorStore.open(dir, recipe);
    assert.equal(old.count, 50);
    assert.equal(old.get('chunk-7')?.path, 'src/file0.ts');
    await old.save();
    const now = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
    assert.equal(now.formatVersion, 2);
    assert.match(now.files.metadata.name, /\.bin$/);
    assert.equal((await VectorStore.open(dir)).count, 50);
  });

  it('refuses other recipes, wrong dims and non-finite values with a message naming the problem', async () => {
    const dir = path.join(tmp, 'store3');
    const s = await VectorStore.create(dir, recipe);
    await rejects(async () => s.upsert(records(1), new Float32Array(16), { ...recipe, layer: '-2' }), /layer: the index has "last", the new vectors has "-2"/);
    await rejects(async () => s.query(new Float32Array(16), 3, { recipe: { ...recipe, pooling: 'cls' } }), /Recipe mismatch \(pooling\)/);
    await rejects(async () => s.upsert(records(1), new Float32Array(15)), /not a multiple of the store's dims 16/);
    await rejects(async () => s.query(new Float32Array(8), 3), /8 dims, the store has 16/);
    const bad = new Float32Array(16);
    bad[3] = NaN;
    await rejects(async () => s.upsert(records(1), bad), /value 3 of vector 0 is NaN/);
    bad[3] = Infinity;
    await rejects(async () => s.query(bad, 1), /Infinity/);
    await rejects(VectorStore.open(dir, { ...recipe, modelHash: 'ffff0000ffff0000', dims: 32 }), /model, dims/);
    // The same weights reached by another path (a symlink, a moved folder, a cache copy) are the same model.
    assert.equal((await VectorStore.open(dir, { ...recipe, model: '/elsewhere/tiny-bert' })).count, 0);
    await assert.rejects(VectorStore.open(dir, { ...recipe, modelHash: 'ffff0000ffff0000' }), (e: unknown) =>
      e instanceof UserError && e.code === 'RECIPE_MISMATCH' && e.facts.differences?.[0]?.field === 'model' && /abcd1234abcd1234/.test(e.message) && /ffff0000ffff0000/.test(e.message));
  });

  it('detects not-a-store folders, future versions, corrupt and truncated files', async () => {
    const notStore = path.join(tmp, 'plain');
    fs.mkdirSync(notStore);
    fs.writeFileSync(path.join(notStore, 'x.txt'), 'hi');
    await rejects(VectorStore.open(notStore), /not an Embedding Lens store/);
    await rejects(VectorStore.open(path.join(tmp, 'missing')), /No Embedding Lens store/);
    await rejects(VectorStore.create(notStore, recipe), /not empty/);

    const dir = path.join(tmp, 'store4');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(50), data.subarray(0, 50 * 16));
    await s.save();
    const manifestPath = path.join(dir, MANIFEST_NAME);
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));

    fs.writeFileSync(manifestPath, JSON.stringify({ ...manifest, formatVersion: 99 }));
    await rejects(VectorStore.open(dir), /newer Embedding Lens \(store format 99/);
    fs.writeFileSync(manifestPath, '{"format": "embedding-lens-st');
    await rejects(VectorStore.open(dir), /corrupt[\s\S]*Rebuild the index/);
    fs.writeFileSync(manifestPath, JSON.stringify(manifest));

    const indexPath = path.join(dir, manifest.files.index.name);
    const original = fs.readFileSync(indexPath);
    const flipped = Buffer.from(original);
    flipped[original.length >> 1] ^= 0xff;
    fs.writeFileSync(indexPath, flipped);
    await rejects(VectorStore.open(dir), /checksum mismatch[\s\S]*Rebuild the index/);
    fs.writeFileSync(indexPath, original.subarray(0, original.length - 100));
    await rejects(VectorStore.open(dir), /truncated[\s\S]*Rebuild the index/);
    fs.writeFileSync(indexPath, original);
    const metaPath = path.join(dir, manifest.files.metadata.name);
    fs.appendFileSync(metaPath, ' ');
    await rejects(VectorStore.open(dir), /Rebuild the index/);
  });

  it('a save that hits a permission error keeps the previous generation (real EACCES)', async (t) => {
    if (process.platform === 'win32') return t.skip('POSIX permissions');
    const dir = path.join(tmp, 'store5');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(records(100), data.subarray(0, 100 * 16));
    await s.save();
    const gen = s.generation;
    // As root, chmod does not stop writes: run the failing save as an unprivileged user instead.
    const script = path.join(tmp, 'save-readonly.ts');
    fs.writeFileSync(
      script,
      `import { VectorStore } from ${JSON.stringify(path.resolve('src/core/store/vectorStore.ts'))};
      (async () => {
        const s = await VectorStore.open(${JSON.stringify(dir)});
        s.upsert([{ id: 'extra', path: 'x', startLine: 1, endLine: 1, contentHash: 'x' }], new Float32Array(16).fill(0.5));
        try { await s.save(); console.log('SAVED'); } catch (e) { console.log('ERROR ' + e.name + ': ' + e.message); }
      })();`,
    );
    let result;
    if (process.getuid?.() === 0) {
      fs.chmodSync(tmp, 0o755);
      fs.chmodSync(script, 0o644);
      result = spawnSync(process.execPath, ['--import', 'tsx', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: process.cwd() });
    } else {
      fs.chmodSync(dir, 0o555);
      result = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: process.cwd() });
      fs.chmodSync(dir, 0o755);
    }
    assert.match(result.stdout, /ERROR UserError: Saving the index in .* failed \(permission denied\); the previous version \(generation \d+\) is intact/, result.stderr);
    const again = await VectorStore.open(dir);
    assert.equal(again.generation, gen);
    assert.equal(again.count, 100);
    assert.equal(again.has('extra'), false);
  });

  it('exports to npy, h5 and faiss with a sidecar mapping labels to chunks', async () => {
    const dir = path.join(tmp, 'store6');
    const s = await VectorStore.create(dir, { ...recipe, normalize: false }, { metric: 'l2' });
    s.upsert(records(80), data.subarray(0, 80 * 16));
    s.deleteByPath('src/file0.ts');
    await s.save();
    const npy = path.join(tmp, 'exp.npy');
    await exportStore(dir, { format: 'npy', out: npy });
    const arr = await readNpy(npy);
    const side = JSON.parse(fs.readFileSync(`${npy}.json`, 'utf8'));
    assert.equal(arr.shape[0], s.count);
    side.rows.forEach((r: { id: string }, i: number) => {
      const row = Number(r.id.slice(6));
      assert.deepEqual(arr.data.subarray(i * 16, i * 16 + 16), data.subarray(row * 16, row * 16 + 16));
    });
    const hn = path.join(tmp, 'exp-hnsw.faiss');
    await exportStore(dir, { format: 'faiss-hnsw', out: hn });
    const f = await readFaissIndex(hn);
    assert.equal(f.kind, 'hnsw');
    assert.equal(f.ntotal, s.count);
  });
});
