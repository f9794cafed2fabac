// Real weights: sentence-transformers/all-MiniLM-L6-v2 against independent answer keys (every layer
// of both graphs is checked in realMiniLM.test.ts).
//  - ../shared/models/all-MiniLM-L6-v2 (when present): the sentence-similarity matrix the
//    sentence-transformers docs print, int8 vectors independent of their batch, and int8 against fp32
//    on this repository's own code (cosine per vector, top-10 neighbour agreement).
//  - models/all-MiniLM-L6-v2 (committed, the default model): always, against the answer key committed
//    beside it (pooled vectors and the similarity matrix from the same references).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { Chunker } from '../../src/core/index/chunk';
import { BUNDLED_MODEL_DIR, DEFAULT_MODEL } from '../../src/core/model/modelSource';

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

describe('all-MiniLM-L6-v2 from ../shared/models (real weights)', { skip: !fs.existsSync(SHARED) && '../shared/models/all-MiniLM-L6-v2 is absent: skipped' }, () => {
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
    console.log(`int8 vs fp32 on ${n} chunks: cosine min ${minCos.toFixed(4)} mean ${meanCos.toFixed(4)}; top-10 neighbours shared ${(agree * 100).toFixed(1)}%`);
    assert.ok(minCos >= 0.97, `lowest cosine ${minCos}`);
    assert.ok(agree >= 0.8, `top-10 agreement ${agree}`);
  });
});

describe('the committed default model (models/all-MiniLM-L6-v2)', () => {
  let ex: Extractor;
  before(async () => {
    ex = await Extractor.load({ model: DEFAULT_MODEL, offline: true });
  });
  after(() => ex?.dispose());

  test('is what the default model name resolves to, offline, with its license and provenance', () => {
    assert.equal(ex.info.folder, BUNDLED_MODEL_DIR);
    for (const f of ['LICENSE', 'README.md', 'config.json', 'tokenizer.json', 'modules.json', 'sentence_bert_config.json']) {
      assert.ok(fs.existsSync(path.join(BUNDLED_MODEL_DIR, f)), `${f} is committed`);
    }
    assert.equal(ex.info.numLayers, 6);
    assert.equal(ex.info.hiddenSize, 384);
  });

  test('reproduces the committed answer key: similarity matrix and pooled vectors of 8 texts', async () => {
    const key = JSON.parse(fs.readFileSync(path.join(BUNDLED_MODEL_DIR, 'answer_key.json'), 'utf8')) as {
      similarity: { texts: string[]; cosine: number[][]; tolerance: number };
      pooled: { texts: string[]; mean_last_normalized: number[][]; min_cosine: number };
    };
    const sim = await similarity(ex, key.similarity.texts);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(sim[i]![j]! - key.similarity.cosine[i]![j]!) <= key.similarity.tolerance, `[${i}][${j}] ${sim[i]![j]} vs ${key.similarity.cosine[i]![j]}`);
      }
    }
    const r = await ex.extract(key.pooled.texts, { layer: 'last', pool: 'mean', normalize: true });
    key.pooled.texts.forEach((_, i) => {
      const c = cosine(r.data.subarray(i * 384, (i + 1) * 384), key.pooled.mean_last_normalized[i]!);
      assert.ok(c >= key.pooled.min_cosine, `text ${i}: cosine ${c}`);
    });
    // Related sentences are closer than unrelated ones: the weights mean something.
    assert.ok(sim[0]![1]! > 0.5 && sim[0]![2]! < 0.3, `similarity ${JSON.stringify(sim)}`);
  });
});
