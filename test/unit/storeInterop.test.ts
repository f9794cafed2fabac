// Interop: the formats' own libraries read our files unchanged.
//   numpy  np.load          → .npy float32 and float16 (float16 compared bit for bit with numpy's astype)
//   h5py                    → .h5 values, attributes, ragged token layout
//   faiss  read_index       → .faiss Flat (byte-identical to faiss's own serialization) and HNSW,
//                             searched by faiss, compared with our exact search
// They need Debian's python3-numpy, python3-h5py and python3-faiss, which install into /usr/bin/python3
// (not the first python3 on PATH here). Missing → the tests skip and say which module is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { it, before, after } from 'node:test';
import type { EmbeddingManifest, RecipeIdentity } from '../../src/core/types';
import { NpyWriter } from '../../src/core/store/npy';
import { H5Writer } from '../../src/core/store/hdf5';
import { encodeFaissFlat, readFaissIndex, writeFaissFile } from '../../src/core/store/faiss';
import { exactSearch } from '../../src/core/store/exact';
import { VectorStore } from '../../src/core/store/vectorStore';
import { exportStore } from '../../src/core/store/export';
import { seededRandom as rng } from '../../src/core/random';
import { suiteRequiring } from '../skip';

const PYTHON = process.env.EMBEDDING_LENS_PYTHON ?? '/usr/bin/python3';
const INTEROP = path.resolve('test/interop');

function missingModules(mods: string[]): string | undefined {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found (apt-get install -y python3-numpy python3-h5py python3-faiss)`;
  const missing = mods.filter((m) => spawnSync(PYTHON, ['-c', `import ${m}`]).status !== 0);
  return missing.length ? `${PYTHON} lacks ${missing.join(', ')} (apt-get install -y ${missing.map((m) => `python3-${m}`).join(' ')})` : undefined;
}

function py(script: string, args: (string | number)[]): any {
  const r = spawnSync(PYTHON, [path.join(INTEROP, script), ...args.map(String)], { encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, `${script} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function randomMatrix(n: number, d: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * d }, () => (r() * 2 - 1) * scale);
}
function normalizeRows(m: Float32Array, d: number): Float32Array {
  for (let i = 0; i < m.length; i += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += m[i + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) m[i + j] *= inv;
  }
  return m;
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-interop-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

suiteRequiring('numpy reads our .npy', missingModules(['numpy']), () => {
  for (const dtype of ['float32', 'float16'] as const) {
    it(`${dtype}: np.load gives the same values bit for bit`, async () => {
      const rows = 777;
      const dims = 33;
      // wide range: subnormal, tie-prone and overflowing values for float16
      const data = randomMatrix(rows, dims, 11, 70000).map((x, i) => (i % 5 === 0 ? x * 1e-9 : i % 7 === 0 ? x / 65536 : x));
      const file = path.join(tmp, `${dtype}.npy`);
      const w = await NpyWriter.create(file, { dims, dtype });
      for (let i = 0; i < rows; i += 100) await w.append(data.subarray(i * dims, Math.min(rows, i + 100) * dims));
      await w.close();
      const ref = path.join(tmp, `${dtype}.ref.bin`);
      fs.writeFileSync(ref, bytesOf(data));
      const out = py('check_npy.py', [file, ref, rows, dims]);
      assert.deepEqual(out.shape, [rows, dims]);
      assert.equal(out.dtype, dtype);
      assert.equal(out.fortran, false);
      assert.deepEqual(out.version, [1, 0]);
      assert.equal(out.bit_mismatches, 0);
    });
  }
});

suiteRequiring('h5py reads our .h5', missingModules(['h5py', 'numpy']), () => {
  const manifest: EmbeddingManifest = {
    tool: 'embedding-lens', toolVersion: '0.1.0', model: 'fixture/tiny-bert', modelHash: '0123456789abcdef', modelFile: 'onnx/model.onnx',
    layer: 'mean(-4..-1)', layers: [3, 4, 5, 6], layerCombine: 'mean', pooling: 'mean', normalize: true, excludeSpecialTokens: false,
    dims: 8, dtype: 'float32', count: 0, createdAt: '2024-05-01T12:00:00.000Z',
  };

  it('pooled: values, ids, source, text and attributes', async () => {
    const n = 300;
    const data = randomMatrix(n, 8, 12);
    const file = path.join(tmp, 'pooled.h5');
    const w = await H5Writer.create(file, { dims: 8, manifest, gzip: 6, chunkRows: 64, withText: true });
    const items = Array.from({ length: n }, (_, i) => ({ id: `c${i}`, path: `src/ü${i % 5}.ts`, startLine: i + 1, endLine: i + 3, text: `fn f${i}() { return "✓"; }` }));
    for (let i = 0; i < n; i += 70) await w.append(data.subarray(i * 8, Math.min(n, i + 70) * 8), items.slice(i, i + 70));
    await w.close();
    const out = py('check_h5.py', [file]);
    const emb = out.datasets.embeddings;
    assert.deepEqual(emb.shape, [n, 8]);
    assert.equal(emb.dtype, 'float32');
    assert.deepEqual(emb.chunks, [64, 8]);
    assert.equal(emb.compression, 'gzip');
    assert.deepEqual(Float32Array.from(emb.values.flat()), data);
    assert.deepEqual(out.datasets.ids.values, items.map((i) => i.id));
    assert.deepEqual(out.datasets['source/path'].values, items.map((i) => i.path));
    assert.deepEqual(out.datasets['source/start_line'].values, items.map((i) => i.startLine));
    assert.deepEqual(out.datasets['source/end_line'].values, items.map((i) => i.endLine));
    assert.deepEqual(out.datasets.text.values, items.map((i) => i.text));
    const a = out.attrs;
    assert.equal(a.model.value, manifest.model);
    assert.equal(a.model_hash.value, manifest.modelHash);
    assert.equal(a.layer.value, 'mean(-4..-1)');
    assert.deepEqual(a.layers.value, [3, 4, 5, 6]);
    assert.equal(a.pooling.value, 'mean');
    assert.equal(a.normalize.value, 1);
    assert.equal(a.dims.value, 8);
    assert.equal(a.count.value, n);
    assert.equal(a.created.value, manifest.createdAt);
    assert.equal(a.tool_version.value, '0.1.0');
    assert.equal(JSON.parse(a.manifest_json.value).layer, 'mean(-4..-1)');
  });

  it('token-level: /tokens ragged by /token_offsets with per-token strings and offsets', async () => {
    const lengths = [3, 1, 0, 5, 2];
    const total = lengths.reduce((a, b) => a + b, 0);
    const data = randomMatrix(total, 8, 13);
    const file = path.join(tmp, 'tokens.h5');
    const w = await H5Writer.create(file, { dims: 8, manifest: { ...manifest, pooling: 'none' }, tokenLevel: true });
    let row = 0;
    for (let i = 0; i < lengths.length; i++) {
      const tokens = Array.from({ length: lengths[i] }, (_, t) => ({ text: t === 0 ? '[CLS]' : `tok${i}_${t}`, start: t * 4, end: t * 4 + 3 }));
      await w.append(data.subarray(row * 8, (row + lengths[i]) * 8), [{ id: `t${i}`, path: 'a.md', startLine: 1, endLine: 1, tokens }]);
      row += lengths[i];
    }
    await w.close();
    const out = py('check_h5.py', [file]);
    assert.deepEqual(out.datasets.tokens.shape, [total, 8]);
    assert.deepEqual(Float32Array.from(out.datasets.tokens.values.flat()), data);
    const offsets = [0];
    for (const l of lengths) offsets.push(offsets[offsets.length - 1] + l);
    assert.deepEqual(out.datasets.token_offsets.values, offsets);
    assert.equal(out.datasets.token_offsets.dtype, 'int64');
    assert.equal(out.datasets.token_text.values.length, total);
    assert.equal(out.datasets.token_text.values[0], '[CLS]');
    assert.deepEqual(out.datasets.token_char_end.values.slice(0, 3), [3, 7, 11]);
    // h5py's slicing by offsets gives the same per-item sums as ours
    lengths.forEach((_, i) => {
      let s = 0;
      for (let k = offsets[i] * 8; k < offsets[i + 1] * 8; k++) s += data[k];
      assert.ok(Math.abs(out.ragged_row_sums[i] - s) < 1e-9);
    });
    assert.equal(out.attrs.row_unit.value, 'token');
    assert.equal(out.attrs.pooling.value, 'none');
  });
});

suiteRequiring('faiss reads our .faiss', missingModules(['faiss', 'numpy']), () => {
  const n = 3000;
  const d = 24;
  const k = 10;

  for (const metric of ['ip', 'l2'] as const) {
    it(`IndexIDMap(IndexFlat${metric === 'ip' ? 'IP' : 'L2'}): byte-identical to faiss, same neighbours as exact search`, async () => {
      const data = metric === 'ip' ? normalizeRows(randomMatrix(n, d, 21), d) : randomMatrix(n, d, 22);
      const ids = Array.from({ length: n }, (_, i) => 5_000_000_000 + i * 7); // > 2^32: 64-bit ids survive
      const file = path.join(tmp, `flat-${metric}.faiss`);
      await writeFaissFile(file, encodeFaissFlat({ vectors: data, dims: d, ids, metric }));
      const queries = metric === 'ip' ? normalizeRows(randomMatrix(20, d, 23), d) : randomMatrix(20, d, 24);
      const files = ['xb', 'ids', 'q'].map((s) => path.join(tmp, `${metric}-${s}.bin`));
      fs.writeFileSync(files[0], bytesOf(data));
      fs.writeFileSync(files[1], bytesOf(BigInt64Array.from(ids.map(BigInt))));
      fs.writeFileSync(files[2], bytesOf(queries));
      const out = py('check_faiss.py', [file, ...files, d, k]);
      assert.equal(out.outer, 'IndexIDMap');
      assert.equal(out.ntotal, n);
      assert.equal(out.d, d);
      assert.equal(out.metric, metric);
      assert.equal(out.bytes_equal, true, `sizes ${out.sizes}`);
      for (let q = 0; q < 20; q++) {
        const exact = exactSearch(data, d, queries.subarray(q * d, (q + 1) * d), k, metric);
        assert.deepEqual(out.ids[q], Array.from(exact.rows, (r) => ids[r]), `query ${q}`);
      }
    });
  }

  it('IndexIDMap(IndexHNSWFlat) exported from a store: faiss searches it and finds the exact neighbours', async () => {
    const recipe: RecipeIdentity = { model: 'm', modelHash: 'h', layer: 'last', pooling: 'mean', normalize: true, dims: d };
    const dir = path.join(tmp, 'store');
    const s = await VectorStore.create(dir, recipe, { metric: 'cosine' });
    const data = randomMatrix(n, d, 31);
    s.upsert(Array.from({ length: n }, (_, i) => ({ id: `c${i}`, path: `p${i % 10}`, startLine: i, endLine: i, contentHash: '' })), data);
    s.deleteByPath('p3'); // forces the in-memory rebuild: FAISS has no deletion marks
    await s.save();
    const file = path.join(tmp, 'hnsw.faiss');
    await exportStore(dir, { format: 'faiss-hnsw', out: file });
    const ours = await readFaissIndex(file);
    assert.equal(ours.kind, 'hnsw');
    const queries = normalizeRows(randomMatrix(30, d, 32), d);
    const files = ['xb', 'ids', 'q'].map((x) => path.join(tmp, `hnsw-${x}.bin`));
    fs.writeFileSync(files[0], bytesOf(ours.vectors));
    fs.writeFileSync(files[1], bytesOf(ours.ids!));
    fs.writeFileSync(files[2], bytesOf(queries));
    const out = py('check_faiss.py', [file, ...files, d, k, 256]);
    assert.equal(out.inner, 'IndexHNSWFlat');
    assert.equal(out.ntotal, s.count);
    assert.equal(out.metric, 'ip');
    // The reference neighbours come from the INPUT vectors (not from what our export wrote), by label:
    // label i is the chunk c<i> upserted from row i of `data`.
    const liveRows = Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 !== 3);
    for (const i of liveRows) assert.equal(s.recordOfLabel(i)?.id, `c${i}`);
    const input = new Float32Array(liveRows.length * d);
    liveRows.forEach((r, j) => input.set(data.subarray(r * d, (r + 1) * d), j * d));
    let hit = 0;
    for (let q = 0; q < 30; q++) {
      const exact = exactSearch(input, d, queries.subarray(q * d, (q + 1) * d), k, 'cosine');
      const want = new Set(Array.from(exact.rows, (r) => liveRows[r]!));
      for (const id of out.ids[q]) if (want.has(id)) hit++;
      // and the ids are the store's labels of live chunks
      for (const id of out.ids[q]) assert.notEqual(s.recordOfLabel(id)?.path, 'p3');
    }
    assert.ok(hit / (30 * k) >= 0.98, `faiss HNSW recall@10 ${hit / (30 * k)}`);
  });

  it('our reader parses an IndexHNSWFlat written by faiss itself', async () => {
    const data = randomMatrix(500, 8, 41);
    const src = path.join(tmp, 'their-xb.bin');
    fs.writeFileSync(src, bytesOf(data));
    const file = path.join(tmp, 'theirs.faiss');
    const r = spawnSync(PYTHON, [path.join(INTEROP, 'write_faiss_hnsw.py'), file, src, '8', '12', 'l2'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const idx = await readFaissIndex(file);
    assert.equal(idx.kind, 'hnsw');
    assert.equal(idx.ntotal, 500);
    assert.deepEqual(idx.vectors, data);
    assert.equal(Number(idx.ids![3]), 37);
    // FAISS's level tables for M=12 are what our writer produces for the same M
    assert.equal(idx.hnsw!.cumNeighbours[1], 24);
    assert.equal(idx.hnsw!.cumNeighbours[2] - idx.hnsw!.cumNeighbours[1], 12);
  });
});
