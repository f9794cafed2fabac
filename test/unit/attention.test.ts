// Attention probabilities read out of the graph (src/core/model/attentionGraph.ts) against independent
// references: the answer key of the real all-MiniLM-L6-v2 (../shared/models, every layer and head) and
// the TypeScript reference forward pass over the generated fixtures' weights.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, NodeProtoSchema } from 'onnx-buf';
import { run as extractCli } from '../../src/cli/extract';
import { Extractor, type TextAttention } from '../../src/core/extract/extractor';
import { findAttentionProbs, parseAttentionLayers } from '../../src/core/model/attentionGraph';
import { buildVariant, decodeModel, findResidualStream, loadOnnxModel } from '../../src/core/model/onnxGraph';
import { readNpy } from '../../src/core/store/npy';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { loadReferenceModel, referenceAttentions } from '../reference/forward';
import { suiteRequiring } from '../skip';

const TOL = 1e-4;
const MINILM = path.resolve(__dirname, '../../../shared/models/all-MiniLM-L6-v2');
const MINILM_KEY = path.join(MINILM, 'attention_reference.json');

interface AnswerKey {
  num_layers: number;
  num_heads: number;
  texts: { text: string; input_ids: number[]; attention: number[][][][] }[];
}

/** Max |row sum − 1| over every query row of [layers × heads × T × T]. */
function rowSumError(probs: Float32Array, T: number): number {
  let worst = 0;
  for (let r = 0; r < probs.length / T; r++) {
    let s = 0;
    for (let k = 0; k < T; k++) s += probs[r * T + k];
    worst = Math.max(worst, Math.abs(s - 1));
  }
  return worst;
}

function single(att: TextAttention) {
  assert.equal(att.windows.length, 1);
  return att.windows[0];
}

const TEXTS = ['hello world', 'getUserName returns the user name of the current session', 'def add(a, b): return a + b'];

suiteRequiring('attention on all-MiniLM-L6-v2 vs its answer key', !fs.existsSync(MINILM_KEY) && `${MINILM_KEY} is absent: skipped`, () => {
  let ex: Extractor;
  let key: AnswerKey;
  before(async () => {
    key = JSON.parse(fs.readFileSync(MINILM_KEY, 'utf8'));
    ex = await Extractor.load({ model: MINILM });
  });
  after(() => ex?.dispose());

  test('every layer and head within 1e-4, rows sum to 1', async (t) => {
    const layers = Array.from({ length: key.num_layers }, (_, l) => l);
    let worst = 0;
    for (const ref of key.texts) {
      const w = single((await ex.attention([ref.text], layers))[0]);
      assert.deepEqual(w.tokens.map((x) => x.id), ref.input_ids, 'token ids');
      const T = ref.input_ids.length;
      assert.equal(w.probs.length, key.num_layers * key.num_heads * T * T);
      for (let l = 0; l < key.num_layers; l++) {
        for (let h = 0; h < key.num_heads; h++) {
          for (let q = 0; q < T; q++) {
            for (let k = 0; k < T; k++) {
              const got = w.probs[((l * key.num_heads + h) * T + q) * T + k];
              worst = Math.max(worst, Math.abs(got - ref.attention[l][h][q][k]));
            }
          }
        }
      }
      assert.ok(rowSumError(w.probs, T) < 1e-5);
    }
    t.diagnostic(`max abs error vs answer key: ${worst.toExponential(2)}`);
    assert.ok(worst < TOL, `max abs error ${worst}`);
  });

  test('a padded batch gives the same probabilities over real tokens as one text alone', async () => {
    const layers = [0, 3, 5];
    const [alone] = await ex.attention([TEXTS[0]], layers);
    const batch = await ex.attention([TEXTS[0], TEXTS[1]], layers);
    const a = single(alone).probs;
    const b = single(batch[0]).probs;
    assert.equal(a.length, b.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-5, `max abs difference ${worst}`);
  });
});

for (const name of ['bert-tiny', 'distilbert-tiny']) {
  describe(`attention on ${name} vs the TypeScript reference forward pass`, () => {
    let ex: Extractor;
    before(async () => {
      ensureFixtureModels();
      ex = await Extractor.load({ model: fixtureModelDir(name) });
    });
    after(() => ex?.dispose());

    test('every layer and head within 1e-4', async () => {
      const ref = loadReferenceModel(fixtureModelDir(name));
      const L = ref.config.numLayers;
      const layers = Array.from({ length: L }, (_, l) => l);
      const results = await ex.attention(TEXTS, layers);
      for (const att of results) {
        const w = single(att);
        const T = w.tokens.length;
        const expected = referenceAttentions(ref, w.tokens.map((x) => x.id));
        assert.equal(att.heads, ref.config.numHeads);
        let worst = 0;
        for (let l = 0; l < L; l++) {
          const got = w.probs.subarray(l * att.heads * T * T, (l + 1) * att.heads * T * T);
          for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[l][i]));
        }
        assert.ok(worst < TOL, `${att.text}: max abs error ${worst}`);
        assert.ok(rowSumError(w.probs, T) < 1e-5);
      }
    });

    test('one layer alone equals that layer of all, and the graph is cut after it', async () => {
      const all = single((await ex.attention([TEXTS[1]], [0, 1, 2]))[0]);
      const one = single((await ex.attention([TEXTS[1]], [1]))[0]);
      const n = one.probs.length;
      assert.deepEqual(Array.from(one.probs), Array.from(all.probs.subarray(n, 2 * n)));
      const onnx = loadOnnxModel(fs.readFileSync(path.join(fixtureModelDir(name), 'onnx', 'model.onnx')));
      const L = loadReferenceModel(fixtureModelDir(name)).config.numLayers;
      const map = findAttentionProbs(onnx.proto, 'last_hidden_state', L);
      const nodes = (outputs: string[]) => decodeModel(buildVariant(onnx, outputs)).graph!.node.length;
      assert.ok(nodes([map.tensors[0]]) < nodes([map.tensors[L - 1]]));
      assert.ok(nodes([map.tensors[L - 1]]) < onnx.proto.graph!.node.length);
    });
  });
}

describe('attention in the int8 graph of bert-tiny', () => {
  test('is found (through DynamicQuantizeLinear / MatMulInteger) and stays near fp32', async () => {
    ensureFixtureModels();
    const fp32 = await Extractor.load({ model: fixtureModelDir('bert-tiny') });
    const int8 = await Extractor.load({ model: fixtureModelDir('bert-tiny'), quantized: true });
    try {
      const a = single((await fp32.attention([TEXTS[1]], [0, 3]))[0]).probs;
      const b = single((await int8.attention([TEXTS[1]], [0, 3]))[0]).probs;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      assert.ok(worst < 0.1, `int8 vs fp32 max abs ${worst}`);
    } finally {
      await fp32.dispose();
      await int8.dispose();
    }
  });
});

describe('attention layer specs', () => {
  test('HF output_attentions numbering, names, negative indices', () => {
    assert.deepEqual(parseAttentionLayers('0', 6).layers, [0]);
    assert.deepEqual(parseAttentionLayers('-1', 6).layers, [5]);
    assert.deepEqual(parseAttentionLayers('last', 6).layers, [5]);
    assert.deepEqual(parseAttentionLayers('first', 6).layers, [0]);
    assert.deepEqual(parseAttentionLayers('middle', 6).layers, [2]);
    assert.deepEqual(parseAttentionLayers('all', 3), { layers: [0, 1, 2], all: true });
  });
  test('mixing layers, the embeddings and out-of-range layers are refused', () => {
    assert.throws(() => parseAttentionLayers('1,2', 6), /one layer or all, not a layer spec that mixes layers/);
    assert.throws(() => parseAttentionLayers('mean(0..2)', 6), /mixes layers/);
    assert.throws(() => parseAttentionLayers('0..2', 6), /mixes layers/);
    assert.throws(() => parseAttentionLayers('embeddings', 6), /embeddings have no attention/);
    assert.throws(() => parseAttentionLayers('6', 6), /layers 0 to 5/);
    assert.throws(() => parseAttentionLayers('nope', 6), /Unknown attention layer/);
  });
});

describe('embedding-lens extract --attention', () => {
  let tmp: string;
  let model: string;
  before(() => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-attn-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('writes [heads, T, T] for one layer and [layers, heads, T, T] for all, with a manifest', async () => {
    const text = 'getUserName returns the user name';
    const one = path.join(tmp, 'one.npy');
    assert.equal(await extractCli(['--model', model, '--attention', '--layer=-1', '--text', text, '--out', one, '--quiet']), 0);
    const all = path.join(tmp, 'all.npy');
    assert.equal(await extractCli(['--model', model, '--attention', '--layer', 'all', '--text', text, '--out', all, '--quiet']), 0);
    const a1 = await readNpy(one);
    const aAll = await readNpy(all);
    const manifest = JSON.parse(fs.readFileSync(`${one}.json`, 'utf8'));
    const T = manifest.tokenCount;
    assert.equal(manifest.kind, 'attention');
    assert.deepEqual(manifest.layers, [3]);
    assert.equal(manifest.tokens.length, T);
    assert.deepEqual(a1.shape, [4, T, T]);
    assert.deepEqual(aAll.shape, [4, 4, T, T]);
    assert.deepEqual(Array.from(a1.data), Array.from(aAll.data.subarray(3 * 4 * T * T)));
  });

  const refused: [string, string[], RegExp][] = [
    ['with pooling', ['--pool', 'mean'], /not pooled: --pool does not apply/],
    ['with --normalize', ['--normalize'], /--normalize does not apply/],
    ['for several texts', ['--text', 'another text'], /one text at a time; got 2/],
    ['for a spec mixing layers', ['--layer', '1,2'], /mixes layers/],
    ['for a mean of layers', ['--layer', 'mean(0..1)'], /mixes layers/],
    ['for a layer that does not exist', ['--layer', '4'], /layers 0 to 3/],
  ];
  for (const [what, extra, message] of refused) {
    test(`refuses --attention ${what}`, async () => {
      const args = ['--model', model, '--attention', '--text', 'hello world', '--out', path.join(tmp, 'x.npy'), '--quiet', ...extra];
      await assert.rejects(extractCli(args), message);
      assert.ok(!fs.existsSync(path.join(tmp, 'x.npy')));
    });
  }

  test('a text longer than the model takes: refused unless --truncate, which the manifest reports', async () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i % 7}`).join(' ');
    const out = path.join(tmp, 'long.npy');
    await assert.rejects(extractCli(['--model', model, '--attention', '--layer', '0', '--text', long, '--out', out, '--quiet']), /more than the 32 this model takes.*\n.*--truncate/);
    assert.equal(await extractCli(['--model', model, '--attention', '--layer', '0', '--text', long, '--out', out, '--truncate', '--quiet']), 0);
    const manifest = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
    assert.equal(manifest.truncated, true);
    assert.equal(manifest.tokenCount, 32);
  });

  test('a graph with fused attention is refused, naming the operator', async () => {
    const dir = path.join(tmp, 'fused');
    fs.cpSync(model, dir, { recursive: true });
    const file = path.join(dir, 'onnx', 'model.onnx');
    const proto = fromBinary(ModelProtoSchema, fs.readFileSync(file));
    // Every layer's Softmax becomes onnxruntime's fused Attention op (the hidden-state finder counts it
    // as an attention block too, so the model still loads; only --attention must refuse).
    proto.graph!.node = proto.graph!.node.map((n) =>
      n.opType === 'Softmax' ? create(NodeProtoSchema, { ...n, opType: 'Attention', domain: 'com.microsoft' }) : n,
    );
    fs.writeFileSync(file, toBinary(ModelProtoSchema, proto));
    assert.ok(findResidualStream(proto, 'last_hidden_state', 4).residual.length === 5);
    await assert.rejects(
      extractCli(['--model', dir, '--attention', '--layer', '0', '--text', 'hello', '--out', path.join(tmp, 'f.npy'), '--quiet']),
      /fused operator, com\.microsoft\.Attention \(node ".*"\), so the attention probabilities never exist as a tensor/,
    );
  });
});
