// Model files as the Hub ships them: weights in external data (model.onnx + model.onnx_data), the dtype
// variants named as transformers.js names them (--model-dtype, --quantized = q8), fp16 graphs pooled in
// fp32, and a graph that bakes in its own `sentence_embedding` (layer spec `sentence`).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { availableDtypes, parseModelDtype, requestedDtype } from '../../src/core/model/modelSource';
import { decodeModel, usesExternalData } from '../../src/core/model/onnxGraph';
import { UserError } from '../../src/core/types';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { loadModernReference, referenceModernStates } from '../reference/forward';

const TEXTS = ['hello', 'getUserName returns the user name of the current session', 'def add(a, b): return a + b'];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `el-files-${name}-`));
  fs.cpSync(fixtureModelDir(name), dir, { recursive: true });
  return dir;
}

before(() => ensureFixtureModels());

describe('external data (model.onnx + model.onnx_data)', () => {
  test('the fixture keeps its weights outside the graph, and every layer still matches the reference', async () => {
    const dir = fixtureModelDir('modernbert-tiny');
    const graph = decodeModel(fs.readFileSync(path.join(dir, 'onnx', 'model.onnx')));
    assert.ok(usesExternalData(graph));
    assert.ok(fs.statSync(path.join(dir, 'onnx', 'model.onnx_data')).size > fs.statSync(path.join(dir, 'onnx', 'model.onnx')).size);
    const before = fs.readdirSync(path.join(dir, 'onnx')).sort();
    const ex = await Extractor.load({ model: dir });
    try {
      const ref = loadModernReference(dir);
      // Two cuts of the graph (layer 1, and the full graph), each a session over the same weight file.
      for (const layer of ['1', 'output']) {
        const r = await ex.extract(TEXTS, { layer, pool: 'none' });
        r.items.forEach((item) => {
          const ids = item.tokens!.map((t) => t.id);
          const states = referenceModernStates(ref, ref.config, ids);
          const want = layer === 'output' ? states.output : states.residual[1];
          want.forEach((w, t) => assert.ok(maxAbsDiff(r.data.subarray((item.rowStart + t) * r.dims, (item.rowStart + t + 1) * r.dims), w) < 1e-4));
        });
      }
    } finally {
      await ex.dispose();
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'onnx')).sort(), before, 'nothing is left in the model folder');
  });

  test('a missing weights file is named', async () => {
    const dir = copyFixture('modernbert-tiny');
    try {
      fs.rmSync(path.join(dir, 'onnx', 'model.onnx_data'));
      await assert.rejects(Extractor.load({ model: dir }), /onnx\/model\.onnx keeps its weights in a separate file, onnx\/model\.onnx_data, which is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the weights file is part of the model hash', async () => {
    const dir = copyFixture('modernbert-tiny');
    try {
      const a = await Extractor.load({ model: dir });
      const hashA = a.info.modelHash;
      await a.dispose();
      const data = path.join(dir, 'onnx', 'model.onnx_data');
      const bytes = fs.readFileSync(data);
      bytes[bytes.length - 1] ^= 0x01;
      fs.writeFileSync(data, bytes);
      const b = await Extractor.load({ model: dir });
      assert.notEqual(b.info.modelHash, hashA);
      await b.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model dtype variants', () => {
  test('names are transformers.js\'s; --quantized is q8; an unknown one lists the names', () => {
    assert.equal(parseModelDtype('fp16', '--model-dtype'), 'fp16');
    assert.equal(requestedDtype({ quantized: true }), 'q8');
    assert.equal(requestedDtype({}), 'fp32');
    assert.throws(() => parseModelDtype('fp8', '--model-dtype'), (e: Error) => e instanceof UserError && /Unknown --model-dtype "fp8"/.test(e.message) && /fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4/.test(e.message));
    assert.throws(() => requestedDtype({ quantized: true, modelDtype: 'fp16' }), /quantized model means model dtype q8, but model dtype fp16/);
  });

  test('a dtype the folder lacks: the message lists the ones present', async () => {
    assert.deepEqual(availableDtypes(fixtureModelDir('qwen3-tiny')), ['fp32', 'fp16', 'q8']);
    await assert.rejects(
      Extractor.load({ model: fixtureModelDir('qwen3-tiny'), modelDtype: 'q4' }),
      /has no onnx\/model_q4\.onnx \(the q4 ONNX graph\)[\s\S]*It has: fp32 \(onnx\/model\.onnx\), fp16 \(onnx\/model_fp16\.onnx\), q8 \(onnx\/model_quantized\.onnx\)\. Ask for one of these model dtypes/,
    );
  });

  test('--quantized (q8) picks onnx/model_quantized.onnx', async () => {
    const ex = await Extractor.load({ model: fixtureModelDir('bert-tiny'), quantized: true });
    try {
      assert.equal(ex.info.modelFile, path.join('onnx', 'model_quantized.onnx'));
      assert.equal(ex.info.modelDtype, 'q8');
    } finally {
      await ex.dispose();
    }
  });

  test('fp16: every layer returned and pooled in float32, close to the fp32 reference', async () => {
    const dir = fixtureModelDir('qwen3-tiny');
    const ex = await Extractor.load({ model: dir, modelDtype: 'fp16', maxTokensPerBatch: 4096 });
    try {
      assert.equal(ex.info.modelFile, path.join('onnx', 'model_fp16.onnx'));
      const ref = loadModernReference(dir);
      let worst = 0;
      for (const layer of ['0', '1', '2', '3', 'output']) {
        const r = await ex.extract(TEXTS, { layer, pool: 'none' });
        assert.ok(r.data instanceof Float32Array);
        r.items.forEach((item) => {
          const states = referenceModernStates(ref, ref.config, item.tokens!.map((t) => t.id));
          const want = layer === 'output' || layer === '3' ? states.output : states.residual[Number(layer)];
          want.forEach((w, t) => { worst = Math.max(worst, maxAbsDiff(r.data.subarray((item.rowStart + t) * r.dims, (item.rowStart + t + 1) * r.dims), w)); });
        });
      }
      // float16 keeps ~3 significant digits; values here are O(1).
      assert.ok(worst < 0.05, `fp16 vs fp32 reference: ${worst}`);
      console.log(`# fp16 qwen3-tiny, largest abs error vs the fp32 reference: ${worst.toExponential(2)}`);
      const pooled = await ex.extract(TEXTS, { layer: 'output', pool: 'mean', normalize: true });
      assert.ok(pooled.data.every(Number.isFinite));
    } finally {
      await ex.dispose();
    }
  });
});

describe('a dynamically quantized (q8) decoder', () => {
  test('every layer found in the int8 graph; token vectors close to fp32 by cosine (int8 is compared by cosine, not abs error)', async () => {
    const dir = fixtureModelDir('qwen3-tiny');
    const q = await Extractor.load({ model: dir, modelDtype: 'q8', maxTokensPerBatch: 4096 });
    const f = await Extractor.load({ model: dir, maxTokensPerBatch: 4096 });
    try {
      assert.equal(q.info.modelFile, path.join('onnx', 'model_quantized.onnx'));
      let worst = 1;
      for (const layer of ['1', '2', '3', 'output']) {
        const a = await q.extract(TEXTS, { layer, pool: 'none', normalize: true });
        const b = await f.extract(TEXTS, { layer, pool: 'none', normalize: true });
        for (let r = 0; r < a.rows; r++) {
          let dot = 0;
          for (let d = 0; d < a.dims; d++) dot += a.data[r * a.dims + d] * b.data[r * b.dims + d];
          worst = Math.min(worst, dot);
        }
      }
      console.log(`# q8 qwen3-tiny, smallest token cosine to fp32: ${worst.toFixed(4)}`);
      assert.ok(worst > 0.95, `min cosine ${worst}`);
    } finally {
      await q.dispose();
      await f.dispose();
    }
  });
});

describe('a graph with its own sentence_embedding (layer `sentence`)', () => {
  test('equals the model\'s recipe computed from `output` (CLS, normalized) within 1e-4, with any pooling', async () => {
    const dir = fixtureModelDir('modernbert-tiny');
    const ex = await Extractor.load({ model: dir, maxTokensPerBatch: 4096 });
    try {
      assert.notEqual(ex.info.sentenceIndex, undefined);
      const ref = loadModernReference(dir);
      const own = await ex.extract(TEXTS, { layer: 'output', pool: 'cls', normalize: true });
      for (const pool of ['cls', 'mean', 'max', 'last'] as const) {
        const r = await ex.extract(TEXTS, { layer: 'sentence', pool });
        assert.equal(r.dims, 32);
        assert.ok(maxAbsDiff(r.data, own.data) < 1e-4, pool);
      }
      const ids = (await ex.extract([TEXTS[1]], { layer: '0', pool: 'none' })).items[0].tokens!.map((t) => t.id);
      const cls = referenceModernStates(ref, ref.config, ids).output[0];
      const n = Math.sqrt(cls.reduce((s, x) => s + x * x, 0));
      const r = await ex.extract([TEXTS[1]], { layer: 'sentence', pool: 'cls' });
      assert.ok(maxAbsDiff(r.data, Array.from(cls, (x) => x / n)) < 1e-4);
    } finally {
      await ex.dispose();
    }
  });

  test('refused where it would be wrong: combined with layers, per token, a text longer than one window, a graph without it', async () => {
    const ex = await Extractor.load({ model: fixtureModelDir('modernbert-tiny') });
    const plain = await Extractor.load({ model: fixtureModelDir('qwen3-tiny') });
    try {
      await assert.rejects(ex.extract(TEXTS, { layer: 'sentence,output', pool: 'cls' }), /cannot be combined with other layers/);
      await assert.rejects(ex.extract(TEXTS, { layer: 'sentence', pool: 'none' }), /one vector per text/);
      const long = Array.from({ length: 80 }, (_, i) => `w${i}`).join(' ');
      await assert.rejects(ex.extract([long], { layer: 'sentence', pool: 'cls' }), /Text 1 has \d+ tokens, more than the 64 the graph's sentence_embedding takes at once/);
      await assert.rejects(plain.extract(TEXTS, { layer: 'sentence', pool: 'last' }), /needs a graph with a sentence_embedding output/);
    } finally {
      await ex.dispose();
      await plain.dispose();
    }
  });
});
