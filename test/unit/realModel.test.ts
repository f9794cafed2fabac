// Real weights: sentence-transformers/all-MiniLM-L6-v2 against independent answer keys (every layer
// of both graphs is checked in realMiniLM.test.ts).
//  - ../shared/models/all-MiniLM-L6-v2 (when present): the sentence-similarity matrix the
//    sentence-transformers docs print, int8 vectors independent of their batch, and int8 against fp32
//    on this repository's own code (cosine per vector, top-10 neighbour agreement).
//  - models/all-MiniLM-L6-v2 (committed, the default model): always. Its fp32 graph (the default)
//    against its answer key (similarity matrix, pooled vectors); its int8 graph (onnx/model_int8.onnx)
//    against the fp32 answer keys committed beside it (every layer, per token and pooled, cosine
//    >= 0.99), batch independence, and int8 against fp32 (cosine, top-10 neighbours).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { Chunker } from '../../src/core/index/chunk';
import { BUNDLED_MODEL_DIR, DEFAULT_MODEL } from '../../src/core/model/modelSource';
import { suiteRequiring } from '../skip';

const SHARED = path.resolve(__dirname, '../../../shared/models/all-MiniLM-L6-v2');
const ROOT = path.resolve(__dirname, '../..');

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i]! * b[i]!; na += a[i]! * a[i]!; nb += b[i]! * b[i]!; }
  return dot / Math.sqrt(na * nb);
}

async function similarity(ex: Extractor, texts: string[]): Promise<number[][]> {
  const r = await ex.extract(texts, { layer: 'last', pool: 'mean', normalize: true });
  return texts.map((_, i) => texts.map((__, j) => cosine(r.data.subarray(i * r.dims, (i + 1) * r.dims), r.data.subarray(j * r.dims, (j + 1) * r.dims))));
}

/** Mean-pooled vectors of 40 chunks of this repository's code from both graphs: cosine per vector, and the share of each chunk's 10 nearest neighbours both graphs agree on. */
async function int8AgainstFp32(fp32: Extractor, int8: Extractor): Promise<{ minCos: number; meanCos: number; agree: number; n: number }> {
  const chunker = new Chunker({ maxTokens: 256 });
  const texts: string[] = [];
  for (const f of ['src/core/index/chunk.ts', 'src/core/search/search.ts', 'src/core/extract/pool.ts', 'README.md']) {
    for (const c of await chunker.chunk(f, fs.readFileSync(path.join(ROOT, f), 'utf8'))) texts.push(c.text);
  }
  const picked = texts.slice(0, 40);
  const a = (await fp32.extract(picked, { layer: 'last', pool: 'mean', normalize: true })).data;
  const b = (await int8.extract(picked, { layer: 'last', pool: 'mean', normalize: true })).data;
  const n = picked.length;
  let minCos = 1;
  let meanCos = 0;
  for (let i = 0; i < n; i++) {
    const c = cosine(a.subarray(i * 384, (i + 1) * 384), b.subarray(i * 384, (i + 1) * 384));
    minCos = Math.min(minCos, c);
    meanCos += c / n;
  }
  const top = (d: Float32Array, i: number) => Array.from({ length: n }, (_, j) => j).filter((j) => j !== i)
    .sort((x, y) => cosine(d.subarray(i * 384, (i + 1) * 384), d.subarray(y * 384, (y + 1) * 384)) - cosine(d.subarray(i * 384, (i + 1) * 384), d.subarray(x * 384, (x + 1) * 384))).slice(0, 10);
  let agree = 0;
  for (let i = 0; i < n; i++) {
    const ta = new Set(top(a, i));
    agree += top(b, i).filter((j) => ta.has(j)).length / 10 / n;
  }
  return { minCos, meanCos, agree, n };
}

suiteRequiring('all-MiniLM-L6-v2 from ../shared/models (real weights)', !fs.existsSync(SHARED) && '../shared/models/all-MiniLM-L6-v2 is absent: skipped', () => {
  let fp32: Extractor;
  let int8: Extractor;
  before(async () => {
    fp32 = await Extractor.load({ model: SHARED });
    int8 = await Extractor.load({ model: SHARED, quantized: true });
  });
  after(async () => {
    await fp32?.dispose();
    await int8?.dispose();
  });

  test('similarity matrix: the numbers the sentence-transformers documentation prints (fp32), and int8 close to its own', async () => {
    const key = JSON.parse(fs.readFileSync(path.join(SHARED, 'similarity.json'), 'utf8')) as { texts: string[]; cosine_fp32: number[][]; cosine_int8: number[][] };
    const a = await similarity(fp32, key.texts);
    const b = await similarity(int8, key.texts);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(a[i]![j]! - key.cosine_fp32[i]![j]!) < 1e-4, `fp32 [${i}][${j}] ${a[i]![j]} vs ${key.cosine_fp32[i]![j]}`);
        assert.ok(Math.abs(b[i]![j]! - key.cosine_int8[i]![j]!) < 0.01, `int8 [${i}][${j}] ${b[i]![j]} vs ${key.cosine_int8[i]![j]}`);
      }
    }
  });

  test('int8: a text\'s vector does not depend on the texts batched with it', async () => {
    const texts = ['hello', 'def get_user_name(self): return self.name', 'x'.repeat(3) + ' '.repeat(2) + 'a much longer text about tokenizers, padding and batches of very different lengths '.repeat(4)];
    const together = await int8.extract(texts, { layer: 'last', pool: 'mean', normalize: true });
    for (let i = 0; i < texts.length; i++) {
      const alone = await int8.extract([texts[i]!], { layer: 'last', pool: 'mean', normalize: true });
      const c = cosine(together.data.subarray(i * 384, (i + 1) * 384), alone.data);
      assert.ok(c >= 0.9999, `text ${i}: cosine ${c} to the same text alone`);
    }
  });

  test('int8 against fp32 on this repository\'s code: cosine per vector and top-10 neighbour agreement', async () => {
    const { minCos, meanCos, agree, n } = await int8AgainstFp32(fp32, int8);
    console.log(`int8 vs fp32 on ${n} chunks: cosine min ${minCos.toFixed(4)} mean ${meanCos.toFixed(4)}; top-10 neighbours shared ${(agree * 100).toFixed(1)}%`);
    assert.ok(minCos >= 0.97, `lowest cosine ${minCos}`);
    assert.ok(agree >= 0.8, `top-10 agreement ${agree}`);
  });
});

// The repository carries one model graph, the default fp32 one; the int8 graph is made from it
// (npm run model:int8, scripts/quantize-per-row.py with scripts/requirements-int8.txt; .ci/run does).
const INT8_GRAPH = path.join(BUNDLED_MODEL_DIR, 'onnx', 'model_int8.onnx');
const INT8_MISSING = !fs.existsSync(INT8_GRAPH) && 'models/all-MiniLM-L6-v2/onnx/model_int8.onnx is absent (made, not committed): run `npm run model:int8` with Python and scripts/requirements-int8.txt';

describe('the committed default model (models/all-MiniLM-L6-v2)', () => {
  let fp32: Extractor;
  before(async () => {
    fp32 = await Extractor.load({ model: DEFAULT_MODEL, offline: true });
  });
  after(async () => {
    await fp32?.dispose();
  });

  test('is what the default model name resolves to, offline (fp32), with its license and provenance', () => {
    assert.equal(fp32.info.folder, BUNDLED_MODEL_DIR);
    assert.equal(fp32.info.modelFile, 'onnx/model.onnx');
    for (const f of ['LICENSE', 'README.md', 'config.json', 'tokenizer.json', 'modules.json', 'sentence_bert_config.json']) {
      assert.ok(fs.existsSync(path.join(BUNDLED_MODEL_DIR, f)), `${f} is committed`);
    }
    assert.equal(fp32.info.numLayers, 6);
    assert.equal(fp32.info.hiddenSize, 384);
  });

  test('fp32 graph: reproduces the committed answer key (similarity matrix, pooled vectors of 8 texts)', async () => {
    const key = answerKey();
    const sim = await similarity(fp32, key.similarity.texts);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(sim[i]![j]! - key.similarity.cosine[i]![j]!) <= key.similarity.tolerance, `[${i}][${j}] ${sim[i]![j]} vs ${key.similarity.cosine[i]![j]}`);
      }
    }
    const r = await fp32.extract(key.pooled.texts, { layer: 'last', pool: 'mean', normalize: true });
    key.pooled.texts.forEach((_, i) => {
      const c = cosine(r.data.subarray(i * 384, (i + 1) * 384), key.pooled.mean_last_normalized[i]!);
      assert.ok(c >= key.pooled.min_cosine, `text ${i}: cosine ${c}`);
    });
  });

});

suiteRequiring('the built-in model\'s int8 graph (made by scripts/quantize-per-row.py)', INT8_MISSING, () => {
  let ex: Extractor;
  let fp32: Extractor;
  before(async () => {
    fp32 = await Extractor.load({ model: DEFAULT_MODEL, offline: true });
    ex = await Extractor.load({ model: DEFAULT_MODEL, offline: true, modelDtype: 'int8' });
  });
  after(async () => {
    await ex?.dispose();
    await fp32?.dispose();
  });

  test('is the graph the model README describes (its sha256), chosen by model dtype int8', () => {
    assert.equal(ex.info.folder, BUNDLED_MODEL_DIR);
    assert.equal(ex.info.modelFile, 'onnx/model_int8.onnx');
    // The README gives the sha256 of the int8 graph it describes: the script reproduces it byte for byte.
    const sha = crypto.createHash('sha256').update(fs.readFileSync(INT8_GRAPH)).digest('hex');
    assert.ok(fs.readFileSync(path.join(BUNDLED_MODEL_DIR, 'README.md'), 'utf8').includes(sha), `README.md names the int8 graph's sha256 ${sha}`);
  });

  test('int8 graph: every layer of the fp32 answer key at cosine >= 0.99 per token row and per pooled row', async () => {
    const key = JSON.parse(fs.readFileSync(path.join(BUNDLED_MODEL_DIR, 'answer_key_layers.json'), 'utf8')) as {
      min_cosine: number; texts: string[]; input_ids: number[][]; hidden_states: number[][][][]; pooled_mean: number[][][];
    };
    const H = 384;
    let tokenMin = 1, pooledMin = 1;
    for (let i = 0; i < key.texts.length; i++) {
      const all = await ex.extract([key.texts[i]!], { layer: 'all', pool: 'none' });
      assert.deepEqual(all.items[0]!.tokens!.map((t) => t.id), key.input_ids[i], `text ${i}: the key's tokens`);
      const T = key.input_ids[i]!.length;
      for (let l = 0; l < 7; l++) {
        const mean = new Float64Array(H);
        for (let t = 0; t < T; t++) {
          const row = all.data.subarray(t * all.dims + l * H, t * all.dims + (l + 1) * H);
          for (let d = 0; d < H; d++) mean[d] += row[d]! / T;
          if (i < key.hidden_states.length) tokenMin = Math.min(tokenMin, cosine(row, key.hidden_states[i]![l]![t]!));
        }
        pooledMin = Math.min(pooledMin, cosine(mean, key.pooled_mean[i]![l]!));
      }
    }
    console.log(`# int8 (committed) vs the fp32 answer key, every layer: token cosine min ${tokenMin.toFixed(4)}, pooled min ${pooledMin.toFixed(4)}`);
    assert.ok(tokenMin >= key.min_cosine, `token cosine ${tokenMin}`);
    assert.ok(pooledMin >= key.min_cosine, `pooled cosine ${pooledMin}`);
    // Related sentences are closer than unrelated ones: the weights mean something.
    const sim = await similarity(ex, answerKey().similarity.texts);
    assert.ok(sim[0]![1]! > 0.5 && sim[0]![2]! < 0.3, `similarity ${JSON.stringify(sim)}`);
  });

  test('int8 graph: a text gives the same numbers in any padded batch as alone (every token, cosine >= 0.9999)', async () => {
    const texts = ['hello', 'def get_user_name(self): return self.name', 'a much longer text about tokenizers, padding and batches of very different lengths '.repeat(5), 'x = 1'];
    const together = await ex.extract(texts, { layer: 'last', pool: 'none' });
    let worst = 1;
    for (let i = 0; i < texts.length; i++) {
      const alone = await ex.extract([texts[i]!], { layer: 'last', pool: 'none' });
      const item = together.items[i]!;
      for (let t = 0; t < alone.rows; t++) {
        worst = Math.min(worst, cosine(together.data.subarray((item.rowStart + t) * 384, (item.rowStart + t + 1) * 384), alone.data.subarray(t * 384, (t + 1) * 384)));
      }
    }
    assert.ok(worst >= 0.9999, `token cosine ${worst} between a batch and the text alone`);
  });

  test('int8 against fp32 on this repository\'s code: cosine per vector and top-10 neighbour agreement', async () => {
    const { minCos, meanCos, agree, n } = await int8AgainstFp32(fp32, ex);
    console.log(`# committed int8 vs fp32 on ${n} chunks: cosine min ${minCos.toFixed(4)} mean ${meanCos.toFixed(4)}; top-10 neighbours shared ${(agree * 100).toFixed(1)}%`);
    assert.ok(minCos >= 0.99, `lowest cosine ${minCos}`);
    assert.ok(agree >= 0.85, `top-10 agreement ${agree}`);
  });
});

function answerKey() {
  return JSON.parse(fs.readFileSync(path.join(BUNDLED_MODEL_DIR, 'answer_key.json'), 'utf8')) as {
    similarity: { texts: string[]; cosine: number[][]; tolerance: number };
    pooled: { texts: string[]; mean_last_normalized: number[][]; min_cosine: number };
  };
}

suiteRequiring('an index built with the built-in model\'s int8 graph (CLI)', INT8_MISSING || (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) && 'dist/cli.js missing: run `npm run build` first'), () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-int8-index-'));
    fs.mkdirSync(path.join(tmp, 'src'));
    fs.copyFileSync(path.join(ROOT, 'src/core/extract/pool.ts'), path.join(tmp, 'src', 'pool.ts'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin', 'embedding-lens.js'), ...args], { encoding: 'utf8', cwd: ROOT });

  test('search and a later index use the index\'s own weights file; fp32 query vectors against it are refused, naming both files', () => {
    const folder = path.join(tmp, 'src');
    const storage = ['--storage', path.join(tmp, 'storage')];
    let r = cli(['index', folder, ...storage, '--model-dtype', 'int8', '-q']);
    assert.equal(r.status, 0, r.stderr);

    // No option needed: the index says which graph made it.
    r = cli(['search', folder, 'mean of the token vectors', ...storage, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Loaded all-MiniLM-L6-v2 \(onnx\/model_int8\.onnx, int8\)/);
    assert.ok((JSON.parse(r.stdout) as unknown[]).length > 0);

    // Indexing again without options keeps the recipe, graph included: nothing embedded again.
    r = cli(['index', folder, ...storage, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Recipe of the existing index: all-MiniLM-L6-v2 \(onnx\/model_int8\.onnx\)/);
    assert.equal((JSON.parse(r.stdout) as { chunksEmbedded: number }).chunksEmbedded, 0);
    assert.equal(fs.readdirSync(path.join(tmp, 'storage', 'stores')).length, 1);

    // The fp32 graph's query vectors never meet the int8 chunk vectors.
    r = cli(['search', folder, 'mean of the token vectors', ...storage, '--model-dtype', 'fp32']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Recipe mismatch \(model\).*onnx\/model_int8\.onnx.*onnx\/model\.onnx/s);
  });
});
