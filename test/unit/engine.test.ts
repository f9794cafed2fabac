// The engine against independent references: the TypeScript forward pass over the generated
// fixtures' weights (test/reference/forward.ts) and torch's answers for a real Hugging Face export
// (../shared/fixtures/hf-bert-export, when present).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { loadReferenceModel, referenceHiddenStates, type ReferenceModel } from '../reference/forward';
import { fixtureModelDir } from '../fixtures/generate';
import { encodeModel, quantizeDynamic } from '../fixtures/modelBuilder';
import { decodeModel } from '../../src/core/model/onnxGraph';
import { suiteRequiring } from '../skip';

const TOL = 1e-4;
const SHARED_EXPORT = path.resolve(__dirname, '../../../shared/fixtures/hf-bert-export');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function row(data: Float32Array, r: number, dims: number): Float32Array {
  return data.subarray(r * dims, (r + 1) * dims);
}

/** Independent pooling over reference hidden states [T][H] (float64). */
const refPool = {
  mean(h: Float64Array[], include?: boolean[]): number[] {
    const rows = h.filter((_, t) => !include || include[t]);
    return Array.from(h[0], (_, d) => rows.reduce((s, r) => s + r[d], 0) / rows.length);
  },
  max(h: Float64Array[], include?: boolean[]): number[] {
    const rows = h.filter((_, t) => !include || include[t]);
    return Array.from(h[0], (_, d) => Math.max(...rows.map((r) => r[d])));
  },
};

const TEXTS = [
  'hello',
  'getUserName returns the user name of the current session',
  'def add(a, b): return a + b',
  'The embedding of a function differs from the embedding of its documentation, layer by layer.',
];

for (const name of ['bert-tiny', 'distilbert-tiny']) {
  describe(`engine on ${name} vs the TypeScript reference forward pass`, () => {
    let ex: Extractor;
    let ref: ReferenceModel;
    let ids: number[][];
    let types: number[][];
    let hidden: Float64Array[][][]; // [text][layer][token][dim]

    before(async () => {
      const dir = fixtureModelDir(name);
      ex = await Extractor.load({ model: dir, maxTokensPerBatch: 64 });
      ref = loadReferenceModel(dir);
      const all = await ex.extract(TEXTS, { layer: '0', pool: 'none' });
      ids = all.items.map((it) => it.tokens!.map((t) => t.id));
      types = ids.map((x) => x.map(() => 0));
      hidden = ids.map((x, i) => referenceHiddenStates(ref, x, types[i]));
    });
    after(() => ex.dispose());

    test('every layer of every token of a padded, mixed-length batch matches within 1e-4', async () => {
      // All texts in one batch (budget large enough), so the short ones are padded.
      const L = ex.info.numLayers;
      const r = await ex.extract(TEXTS, { layer: 'all', pool: 'none' });
      assert.equal(r.dims, (L + 1) * ex.info.hiddenSize);
      let worst = 0;
      r.items.forEach((item, i) => {
        assert.equal(item.rowCount, ids[i].length);
        for (let t = 0; t < item.rowCount; t++) {
          const got = row(r.data, item.rowStart + t, r.dims);
          const want = hidden[i].flatMap((layer) => Array.from(layer[t]));
          worst = Math.max(worst, maxAbsDiff(got, want));
        }
      });
      assert.ok(worst < TOL, `max abs diff ${worst}`);
    });

    test('pooled vectors equal pooling computed by hand from the reference', async () => {
      const H = ex.info.hiddenSize;
      for (const layer of [0, 1, ex.info.numLayers]) {
        const spec = String(layer);
        const mean = await ex.extract(TEXTS, { layer: spec, pool: 'mean' });
        const max = await ex.extract(TEXTS, { layer: spec, pool: 'max' });
        const cls = await ex.extract(TEXTS, { layer: spec, pool: 'cls' });
        const last = await ex.extract(TEXTS, { layer: spec, pool: 'last' });
        const noSpecial = await ex.extract(TEXTS, { layer: spec, pool: 'mean', excludeSpecialTokens: true });
        TEXTS.forEach((_, i) => {
          const h = hidden[i][layer];
          const T = h.length;
          assert.ok(maxAbsDiff(row(mean.data, i, H), refPool.mean(h)) < TOL, 'mean');
          assert.ok(maxAbsDiff(row(max.data, i, H), refPool.max(h)) < TOL, 'max (padding must not win)');
          assert.ok(maxAbsDiff(row(cls.data, i, H), h[0]) < TOL, 'cls');
          assert.ok(maxAbsDiff(row(last.data, i, H), h[T - 1]) < TOL, 'last real token');
          const inner = h.map((_, t) => t > 0 && t < T - 1);
          assert.ok(maxAbsDiff(row(noSpecial.data, i, H), refPool.mean(h, inner)) < TOL, 'mean without special tokens');
        });
      }
    });

    test('layer combinations: concat, mean of a range, normalize', async () => {
      const H = ex.info.hiddenSize;
      const L = ex.info.numLayers;
      const concat = await ex.extract(TEXTS, { layer: '-1,-2', pool: 'mean' });
      assert.equal(concat.dims, 2 * H);
      const avg = await ex.extract(TEXTS, { layer: 'mean(-2..-1)', pool: 'max', normalize: true });
      assert.equal(avg.dims, H);
      TEXTS.forEach((_, i) => {
        const want = [...refPool.mean(hidden[i][L]), ...refPool.mean(hidden[i][L - 1])];
        assert.ok(maxAbsDiff(row(concat.data, i, 2 * H), want) < TOL);
        // Mean of layers per token first, then max over tokens, then L2 normalization.
        const averaged = hidden[i][L].map((tok, t) => Float64Array.from(tok, (v, d) => (v + hidden[i][L - 1][t][d]) / 2));
        const mx = refPool.max(averaged);
        const norm = Math.hypot(...mx);
        assert.ok(maxAbsDiff(row(avg.data, i, H), mx.map((v) => v / norm)) < TOL);
      });
    });
  });
}

describe('subword → word pooling', () => {
  let ex: Extractor;
  let ref: ReferenceModel;
  before(async () => {
    ex = await Extractor.load({ model: fixtureModelDir('bert-tiny') });
    ref = loadReferenceModel(fixtureModelDir('bert-tiny'));
  });
  after(() => ex.dispose());

  test('getUserName splits into get ##user ##name and its word vector follows first / last / mean / first_last', async () => {
    const text = 'call getUserName now';
    const none = await ex.extract([text], { layer: 'last', pool: 'none' });
    const pieces = none.items[0].tokens!.map((t) => t.token);
    assert.deepEqual(pieces, ['[CLS]', 'call', 'get', '##user', '##name', 'now', '[SEP]']);
    const h = referenceHiddenStates(ref, none.items[0].tokens!.map((t) => t.id))[ex.info.numLayers];
    const H = ex.info.hiddenSize;
    for (const mode of ['first', 'last', 'mean', 'first_last'] as const) {
      const r = await ex.extract([text], { layer: 'last', pool: 'words', wordPool: mode });
      const words = r.items[0].words!;
      assert.deepEqual(words.map((w) => w.text), ['call', 'getUserName', 'now']);
      assert.deepEqual([words[1].start, words[1].end], [5, 16]);
      const want = {
        first: Array.from(h[2]),
        last: Array.from(h[4]),
        mean: refPool.mean([h[2], h[3], h[4]]),
        first_last: [...h[2], ...h[4]],
      }[mode];
      assert.equal(r.dims, mode === 'first_last' ? 2 * H : H);
      assert.equal(r.rows, 3);
      assert.ok(maxAbsDiff(row(r.data, 1, r.dims), want) < TOL, mode);
      assert.ok(maxAbsDiff(row(r.data, 0, r.dims), mode === 'first_last' ? [...h[1], ...h[1]] : Array.from(h[1])) < TOL);
    }
  });

  test('offsets are UTF-16 indices even after characters outside the BMP', async () => {
    const text = '😀 get user';
    const r = await ex.extract([text], { layer: 'last', pool: 'words' });
    const words = r.items[0].words!;
    const user = words.find((w) => w.text === 'user');
    assert.ok(user, `words: ${words.map((w) => w.text)}`);
    assert.equal(text.slice(user.start, user.end), 'user');
  });
});

describe('long inputs: windows, stitching, truncation (bert-tiny, 32 positions)', () => {
  let ex: Extractor;
  let ref: ReferenceModel;
  const long = Array.from({ length: 12 }, (_, i) => `function ${['get', 'set', 'add', 'remove'][i % 4]} user name ${i} returns value`).join(' ');
  before(async () => {
    ex = await Extractor.load({ model: fixtureModelDir('bert-tiny'), maxTokensPerBatch: 96 });
    ref = loadReferenceModel(fixtureModelDir('bert-tiny'));
  });
  after(() => ex.dispose());

  test('windows are pooled per window and combined (token-weighted mean, max, first cls, last last)', async () => {
    const overlap = 6;
    const none = await ex.extract([long], { layer: '0', pool: 'none' }, { windowOverlap: overlap });
    const ids = none.items[0].tokens!.map((t) => t.id);
    assert.ok(ids.length > 60, `${ids.length} tokens`);
    const width = 30; // 32 minus [CLS] and [SEP]
    const content = ids.slice(1, -1);
    const windows: number[][] = [];
    for (let s = 0; ; s += width - overlap) {
      windows.push([ids[0], ...content.slice(s, s + width), ids[ids.length - 1]]);
      if (s + width >= content.length) break;
    }
    const L = ex.info.numLayers;
    const hs = windows.map((w) => referenceHiddenStates(ref, w)[L]);
    const H = ex.info.hiddenSize;
    const mean = await ex.extract([long], { layer: 'last', pool: 'mean' }, { windowOverlap: overlap });
    assert.equal(mean.items[0].windows, windows.length);
    assert.equal(mean.items[0].truncated, false);
    const total = hs.reduce((s, h) => s + h.length, 0);
    const weighted = Array.from({ length: H }, (_, d) => hs.reduce((s, h) => s + h.reduce((a, t) => a + t[d], 0), 0) / total);
    assert.ok(maxAbsDiff(row(mean.data, 0, H), weighted) < TOL, 'token-weighted mean');
    const max = await ex.extract([long], { layer: 'last', pool: 'max' }, { windowOverlap: overlap });
    assert.ok(maxAbsDiff(row(max.data, 0, H), refPool.max(hs.flat())) < TOL, 'max');
    const cls = await ex.extract([long], { layer: 'last', pool: 'cls' }, { windowOverlap: overlap });
    assert.ok(maxAbsDiff(row(cls.data, 0, H), hs[0][0]) < TOL, 'cls from the first window');
    const last = await ex.extract([long], { layer: 'last', pool: 'last' }, { windowOverlap: overlap });
    const lastWindow = hs[hs.length - 1];
    assert.ok(maxAbsDiff(row(last.data, 0, H), lastWindow[lastWindow.length - 1]) < TOL, 'last from the last window');
  });

  test('token output is stitched without duplicates, each token from the window where it has most context', async () => {
    const overlap = 10;
    const r = await ex.extract([long], { layer: 'last', pool: 'none' }, { windowOverlap: overlap });
    const tokens = r.items[0].tokens!;
    const ids = tokens.map((t) => t.id);
    assert.equal(r.rows, ids.length, 'one row per token, none twice');
    const width = 30;
    const stride = width - overlap;
    const content = ids.slice(1, -1);
    const starts: number[] = [];
    for (let s = 0; ; s += stride) { starts.push(s); if (s + width >= content.length) break; }
    const hs = starts.map((s) => referenceHiddenStates(ref, [ids[0], ...content.slice(s, s + width), ids[ids.length - 1]])[ex.info.numLayers]);
    for (let j = 0; j < content.length; j++) {
      let best = -1, margin = -1;
      starts.forEach((s, w) => {
        const end = Math.min(s + width, content.length);
        if (j < s || j >= end) return;
        const m = Math.min(j - s, end - 1 - j);
        if (m > margin) { margin = m; best = w; }
      });
      const want = hs[best][1 + j - starts[best]];
      assert.ok(maxAbsDiff(row(r.data, 1 + j, r.dims), want) < TOL, `token ${j}`);
    }
  });

  test('truncation happens only when asked, and is reported', async () => {
    const r = await ex.extract([long, 'short text'], { layer: 'last', pool: 'mean' }, { truncate: true });
    assert.equal(r.items[0].truncated, true);
    assert.equal(r.items[0].windows, 1);
    assert.equal(r.items[1].truncated, false);
    const ids = (await ex.extract([long], { layer: '0', pool: 'none' })).items[0].tokens!.map((t) => t.id);
    const cut = [...ids.slice(0, 31), ids[ids.length - 1]];
    const h = referenceHiddenStates(ref, cut)[ex.info.numLayers];
    assert.ok(maxAbsDiff(row(r.data, 0, r.dims), refPool.mean(h)) < TOL);
  });
});

describe('batching and the graph cut', () => {
  let ex: Extractor;
  before(async () => { ex = await Extractor.load({ model: fixtureModelDir('bert-tiny'), maxTokensPerBatch: 40, maxBatchSize: 3 }); });
  after(() => ex.dispose());

  test('results come back in input order whatever the batches', async () => {
    const texts = Array.from({ length: 23 }, (_, i) => `item ${i} ` + 'user name '.repeat((i * 7) % 11));
    const events: number[] = [];
    const all = await ex.extract(texts, { layer: 'last', pool: 'mean' }, { onProgress: (e) => events.push(e.itemsDone) });
    assert.equal(events[events.length - 1], texts.length);
    assert.ok(events.length > 3, 'progress reported per batch');
    for (const i of [0, 5, 11, 22]) {
      const one = await ex.extract([texts[i]], { layer: 'last', pool: 'mean' });
      assert.ok(maxAbsDiff(row(all.data, i, all.dims), one.data) < 1e-5, `text ${i}`);
    }
  });

  test('asking for layer k cuts the graph: fewer nodes, same values as the full graph', async () => {
    const full = await ex.nodeCount('last');
    const cut = await ex.nodeCount('2');
    assert.ok(cut < full * 0.75, `cut ${cut} vs full ${full}`);
    const a = await ex.extract(TEXTS, { layer: '2', pool: 'none' });
    const b = await ex.extract(TEXTS, { layer: '2,last', pool: 'none' });
    const H = ex.info.hiddenSize;
    for (let r = 0; r < a.rows; r++) assert.ok(maxAbsDiff(row(a.data, r, H), row(b.data, r, 2 * H).subarray(0, H)) === 0);
  });

  test('cancellation stops between batches with an AbortError', async () => {
    const controller = new AbortController();
    const texts = Array.from({ length: 40 }, (_, i) => `text number ${i} with some words`);
    await assert.rejects(
      ex.extract(texts, { layer: 'last', pool: 'mean' }, { signal: controller.signal, onProgress: (e) => { if (e.itemsDone > 0) controller.abort(); } }),
      (err: Error) => err.name === 'AbortError',
    );
  });
});

describe('quantized graph', () => {
  test('hidden states are found in model_quantized.onnx and stay close to fp32', async () => {
    const fp32 = await Extractor.load({ model: fixtureModelDir('bert-tiny') });
    const q8 = await Extractor.load({ model: fixtureModelDir('bert-tiny'), quantized: true });
    try {
      assert.equal(q8.info.modelFile, path.join('onnx', 'model_quantized.onnx'));
      assert.equal(q8.info.numLayers, fp32.info.numLayers);
      for (const layer of ['first', 'last']) {
        const a = await fp32.extract(TEXTS, { layer, pool: 'mean', normalize: true });
        const b = await q8.extract(TEXTS, { layer, pool: 'mean', normalize: true });
        for (let i = 0; i < TEXTS.length; i++) {
          const cos = row(a.data, i, a.dims).reduce((s, v, d) => s + v * b.data[i * b.dims + d], 0);
          assert.ok(cos > 0.9, `layer ${layer} text ${i}: cosine ${cos}`);
        }
      }
    } finally {
      await fp32.dispose();
      await q8.dispose();
    }
  });
});

describe('a batched quantised graph must give each text what it gives alone', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-quant-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  /** bert-tiny with its fp32 MatMuls quantised by quantizeDynamic(…, activations), as onnx/model.onnx. */
  const variant = (activations: 'per-row' | 'per-tensor'): string => {
    const dir = path.join(tmp, activations);
    fs.cpSync(fixtureModelDir('bert-tiny'), dir, { recursive: true });
    const file = path.join(dir, 'onnx', 'model.onnx');
    fs.writeFileSync(file, encodeModel(quantizeDynamic(decodeModel(fs.readFileSync(file)), activations)));
    return dir;
  };
  const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

  test('per-row activation scales: batched, every vector equal to the text alone, close to fp32', async () => {
    const q = await Extractor.load({ model: variant('per-row') });
    const fp32 = await Extractor.load({ model: fixtureModelDir('bert-tiny') });
    try {
      assert.deepEqual(q.info.quantizedOps, ['MatMulInteger']);
      assert.equal(q.info.dynamicQuantization, false);
      const recipe = { layer: 'last', pool: 'mean' as const, normalize: true };
      const batched = await q.extract(TEXTS, recipe);
      assert.equal(batched.stats.batches, 1, 'one padded batch');
      const reference = await fp32.extract(TEXTS, recipe);
      for (let i = 0; i < TEXTS.length; i++) {
        const alone = await q.extract([TEXTS[i]], recipe);
        const c = cos(alone.data, row(batched.data, i, batched.dims));
        assert.ok(c >= 0.9999, `text ${i}: batch vs alone cosine ${c}`);
        const f = cos(row(reference.data, i, reference.dims), row(batched.data, i, batched.dims));
        assert.ok(f > 0.9, `text ${i}: cosine to fp32 ${f}`);
      }
    } finally {
      await q.dispose();
      await fp32.dispose();
    }
  });

  test('one activation scale over the whole batch: refused by the self-check, naming why', async () => {
    const q = await Extractor.load({ model: variant('per-tensor') });
    try {
      await assert.rejects(q.extract(TEXTS, { layer: 'last', pool: 'mean' }), /quantised graph \(MatMulInteger\) gives a text other numbers in a padded batch than alone \(token cosine 0\.\d+, below 0\.9999\)[\s\S]*--model-dtype fp32/);
    } finally {
      await q.dispose();
    }
  });
});

suiteRequiring('a real Hugging Face export (torch reference)', !fs.existsSync(SHARED_EXPORT) && `../shared/fixtures/hf-bert-export is absent: skipped`, () => {
  let ex: Extractor;
  let reference: {
    inputs: { text: string; input_ids: number[]; offsets: number[][]; hidden_states: number[][][]; pooled: Record<string, Record<string, number[]>> }[];
    batch: { input_ids: number[][]; attention_mask: number[][]; hidden_states: number[][][][] };
  };
  before(async () => {
    reference = JSON.parse(fs.readFileSync(path.join(SHARED_EXPORT, 'reference.json'), 'utf8'));
    ex = await Extractor.load({ model: SHARED_EXPORT });
  });
  after(() => ex?.dispose());

  test('ids, offsets and every hidden state of every token match torch within 1e-4 (batched, padded)', async () => {
    const texts = reference.inputs.map((i) => i.text);
    const r = await ex.extract(texts, { layer: 'all', pool: 'none' });
    let worst = 0;
    reference.inputs.forEach((inp, i) => {
      const item = r.items[i];
      assert.deepEqual(item.tokens!.map((t) => t.id), inp.input_ids);
      assert.deepEqual(item.tokens!.map((t) => [t.start, t.end]), inp.offsets);
      for (let t = 0; t < inp.input_ids.length; t++) {
        const want = inp.hidden_states.flatMap((layer) => layer[t]);
        worst = Math.max(worst, maxAbsDiff(row(r.data, item.rowStart + t, r.dims), want));
      }
    });
    assert.ok(worst < TOL, `max abs diff ${worst}`);
  });

  test('pooled vectors of every layer match torch', async () => {
    const texts = reference.inputs.map((i) => i.text);
    let worst = 0;
    for (const pool of ['mean', 'max', 'cls', 'last'] as const) {
      for (let layer = 0; layer <= ex.info.numLayers; layer++) {
        const r = await ex.extract(texts, { layer: String(layer), pool });
        reference.inputs.forEach((inp, i) => {
          worst = Math.max(worst, maxAbsDiff(row(r.data, i, r.dims), inp.pooled[pool][String(layer)]));
        });
      }
    }
    assert.ok(worst < TOL, `max abs diff ${worst}`);
  });
});

describe('one pass, many recipes', () => {
  test('extractMany gives every layer × pooling from a single model pass, equal to separate extractions', async () => {
    const ex = await Extractor.load({ model: fixtureModelDir('bert-tiny'), maxTokensPerBatch: 64 });
    try {
      const recipes = [];
      for (let layer = 0; layer <= ex.info.numLayers; layer++) {
        for (const pool of ['mean', 'max', 'cls', 'last'] as const) recipes.push({ layer: String(layer), pool });
      }
      recipes.push({ layer: 'mean(-4..-1)', pool: 'mean' as const });
      const many = await ex.extractMany(TEXTS, recipes);
      const single = await ex.extract(TEXTS, { layer: 'last', pool: 'mean' });
      assert.equal(many[0].stats.batches, single.stats.batches, 'the model ran once per batch, not once per recipe');
      for (const [i, recipe] of recipes.entries()) {
        const alone = await ex.extract(TEXTS, recipe);
        assert.ok(maxAbsDiff(many[i].data, alone.data) < 1e-6, `${recipe.layer}/${recipe.pool}`);
      }
    } finally {
      await ex.dispose();
    }
  });
});

describe('a model that already outputs its hidden states', () => {
  test('outputs named hidden_states.N are used as they are', async () => {
    const { buildVariant, decodeModel, findResidualStream, loadOnnxModel } = await import('../../src/core/model/onnxGraph');
    const { create, toBinary } = await import('@bufbuild/protobuf');
    const { ModelProtoSchema } = await import('onnx-buf');
    const os = await import('node:os');
    const src = fixtureModelDir('bert-tiny');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-hs-'));
    try {
      fs.cpSync(src, dir, { recursive: true });
      const file = path.join(dir, 'onnx', 'model.onnx');
      const original = loadOnnxModel(fs.readFileSync(file));
      const found = findResidualStream(original.proto, 'last_hidden_state', 4);
      // Re-export with every hidden state as an output named like transformers' exports do.
      const model = decodeModel(buildVariant(original, [...found.residual.slice(0, -1), 'last_hidden_state']));
      const rename = new Map(found.residual.slice(0, -1).map((t, i) => [t, `hidden_states.${i}`]));
      for (const n of model.graph!.node) {
        n.output = n.output.map((o) => rename.get(o) ?? o);
        n.input = n.input.map((o) => rename.get(o) ?? o);
      }
      for (const o of model.graph!.output) o.name = rename.get(o.name) ?? o.name;
      model.graph!.output.push(create((await import('onnx-buf')).ValueInfoProtoSchema, { name: 'hidden_states.4' }));
      // hidden_states.4 is the last layer: an Identity of last_hidden_state, as exporters write it.
      model.graph!.node.push(create((await import('onnx-buf')).NodeProtoSchema, { opType: 'Identity', input: ['last_hidden_state'], output: ['hidden_states.4'], name: 'hs4' }));
      fs.writeFileSync(file, toBinary(ModelProtoSchema, create(ModelProtoSchema, model)));
      const a = await Extractor.load({ model: dir });
      const b = await Extractor.load({ model: src });
      try {
        assert.equal(a.info.hiddenStateSource, 'graph-outputs');
        for (const layer of ['0', '2', 'last']) {
          const x = await a.extract(TEXTS, { layer, pool: 'mean' });
          const y = await b.extract(TEXTS, { layer, pool: 'mean' });
          assert.ok(maxAbsDiff(x.data, y.data) < 1e-6, `layer ${layer}`);
        }
      } finally {
        await a.dispose();
        await b.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
