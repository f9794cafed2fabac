// Checks the repo's fixture models against the independent reference forward pass, so that tests of the
// engine can trust both: if these pass, a fixture's ONNX graph computes what BERT / DistilBERT compute,
// its tokenizer.json loads in HF's tokenizers, and the reference is right for every layer it can see
// (the ONNX graph only exposes the last one; the engine's tests compare the others).

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from 'tokenizers';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { erf, loadReferenceModel, referenceHiddenStates } from '../reference/forward';

// Different lengths, so the batch is right-padded and the mask matters; each under bert-tiny's 32 positions.
const TEXTS = [
  'getUserName returns the user name',
  'hello world',
  'const embedding = model.encode(text); // layer 3 hidden state of each token',
];

const TOLERANCE = 1e-4;

interface BatchOutput {
  hidden: Float32Array;
  seqLen: number;
  hiddenSize: number;
  ids: number[][];
  typeIds: number[][];
}

async function runPaddedBatch(dir: string, modelFile: string): Promise<BatchOutput> {
  const tokenizer = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const encodings = await Promise.all(TEXTS.map((t) => tokenizer.encode(t)));
  const ids = encodings.map((e) => e.getIds());
  const typeIds = encodings.map((e) => e.getTypeIds());
  const seqLen = Math.max(...ids.map((x) => x.length));
  const B = TEXTS.length;
  const inputIds = new BigInt64Array(B * seqLen); // [PAD] = 0 fills the right
  const mask = new BigInt64Array(B * seqLen);
  const types = new BigInt64Array(B * seqLen);
  ids.forEach((row, b) =>
    row.forEach((id, t) => {
      inputIds[b * seqLen + t] = BigInt(id);
      mask[b * seqLen + t] = 1n;
      types[b * seqLen + t] = BigInt(typeIds[b][t]);
    }),
  );
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', modelFile));
  try {
    const dims = [B, seqLen];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
    };
    if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', types, dims);
    assert.deepEqual(session.outputNames, ['last_hidden_state'], 'fixtures expose only last_hidden_state, like HF exports');
    const out = (await session.run(feeds)).last_hidden_state;
    assert.equal(out.dims[0], B);
    assert.equal(out.dims[1], seqLen);
    return { hidden: out.data as Float32Array, seqLen, hiddenSize: Number(out.dims[2]), ids, typeIds };
  } finally {
    await session.release();
  }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function opCounts(file: string): Map<string, number> {
  const model = fromBinary(ModelProtoSchema, fs.readFileSync(file));
  const counts = new Map<string, number>();
  for (const n of model.graph!.node) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  return counts;
}

before(() => {
  ensureFixtureModels();
});

test('reference erf matches known values to 1e-7', () => {
  const known: [number, number][] = [
    [0, 0], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149],
    [2, 0.9953222650189527], [2.9999, 0.9999778955735178], [3, 0.9999779095030014], [3.0001, 0.9999779234241298],
    [3.5, 0.9999992569016276], [5, 0.9999999999984626], [-1.5, -0.9661051464753108],
  ];
  for (const [x, want] of known) assert.ok(Math.abs(erf(x) - want) < 1e-7, `erf(${x}) = ${erf(x)}, want ${want}`);
});

test('tokenizer.json loads in HF tokenizers and splits identifiers into WordPiece pieces', async () => {
  for (const name of ['bert-tiny', 'distilbert-tiny']) {
    const tokenizer = Tokenizer.fromFile(path.join(fixtureModelDir(name), 'tokenizer.json'));
    assert.deepEqual((await tokenizer.encode('getUserName')).getTokens(), ['[CLS]', 'get', '##user', '##name', '[SEP]']);
    assert.deepEqual((await tokenizer.encode('embedding')).getTokens(), ['[CLS]', 'embed', '##ding', '[SEP]']);
    assert.deepEqual((await tokenizer.encode('hello 😀')).getTokens(), ['[CLS]', 'hello', '[UNK]', '[SEP]']);
    const e = await tokenizer.encode('Hello world');
    assert.deepEqual(e.getIds().slice(0, 1), [tokenizer.tokenToId('[CLS]')]);
    assert.deepEqual(e.getOffsets()[1], [0, 5]);
    assert.equal(tokenizer.tokenToId('[PAD]'), 0);
    // No id gaps: every id below the vocab size is a token (a gap breaks the embedding Gather in ORT).
    const size = tokenizer.getVocabSize(true);
    const config = JSON.parse(fs.readFileSync(path.join(fixtureModelDir(name), 'config.json'), 'utf8'));
    assert.equal(size, config.vocab_size);
    for (let id = 0; id < size; id++) assert.notEqual(tokenizer.idToToken(id), null, `id ${id} has no token`);
  }
});

describe('ONNX fixtures vs the TypeScript reference forward pass', () => {
  for (const name of ['bert-tiny', 'distilbert-tiny']) {
    test(`${name}: last_hidden_state of a right-padded batch of 3 matches the reference (< ${TOLERANCE})`, async (t) => {
      const dir = fixtureModelDir(name);
      const ref = loadReferenceModel(dir);
      const out = await runPaddedBatch(dir, 'model.onnx');
      const H = out.hiddenSize;
      assert.equal(H, ref.config.hiddenSize);
      let maxDiff = 0;
      let maxAbs = 0;
      out.ids.forEach((ids, b) => {
        const states = referenceHiddenStates(ref, ids, out.typeIds[b]);
        assert.equal(states.length, ref.config.numLayers + 1);
        const last = states[ref.config.numLayers];
        for (let t = 0; t < ids.length; t++) {
          for (let h = 0; h < H; h++) {
            const got = out.hidden[(b * out.seqLen + t) * H + h];
            maxDiff = Math.max(maxDiff, Math.abs(got - last[t][h]));
            maxAbs = Math.max(maxAbs, Math.abs(last[t][h]));
          }
        }
        // Layers must differ visibly, or layer-selection tests could not tell them apart.
        for (let l = 1; l < states.length; l++) {
          assert.ok(cosine(states[l][1], states[l - 1][1]) < 0.99, `${name}: layer ${l} barely changes token 1`);
        }
      });
      t.diagnostic(`${name}: max |onnx - reference| = ${maxDiff.toExponential(2)} (values up to ${maxAbs.toFixed(2)})`);
      assert.ok(maxDiff < TOLERANCE, `${name}: max diff ${maxDiff} >= ${TOLERANCE}`);
    });
  }

  test('bert-tiny: padding does not change the real positions (batch vs one text alone)', async () => {
    // The reference comparison above already implies it; this pins the mask on its own for clearer failures.
    const dir = fixtureModelDir('bert-tiny');
    const ref = loadReferenceModel(dir);
    const out = await runPaddedBatch(dir, 'model.onnx');
    const shortest = out.ids.findIndex((x) => x.length < out.seqLen);
    assert.ok(shortest >= 0, 'the batch must contain a padded row');
    const states = referenceHiddenStates(ref, out.ids[shortest], out.typeIds[shortest]);
    const H = out.hiddenSize;
    for (let t = 0; t < out.ids[shortest].length; t++) {
      const row = out.hidden.subarray((shortest * out.seqLen + t) * H, (shortest * out.seqLen + t + 1) * H);
      assert.ok(cosine(row, states[ref.config.numLayers][t]) > 0.99999);
    }
  });

  test('bert-tiny quantized: close to fp32 by cosine, with the ORT dynamic-quantization structure', async (t) => {
    const dir = fixtureModelDir('bert-tiny');
    const fp32 = await runPaddedBatch(dir, 'model.onnx');
    const q8 = await runPaddedBatch(dir, 'model_quantized.onnx');
    const H = fp32.hiddenSize;
    let minCos = 1;
    fp32.ids.forEach((ids, b) => {
      for (let t = 0; t < ids.length; t++) {
        const at = (b * fp32.seqLen + t) * H;
        minCos = Math.min(minCos, cosine(fp32.hidden.subarray(at, at + H), q8.hidden.subarray(at, at + H)));
      }
    });
    t.diagnostic(`bert-tiny quantized vs fp32: min row cosine = ${minCos.toFixed(5)}`);
    assert.ok(minCos > 0.99, `min cosine ${minCos}`);

    const layers = 4;
    const ops = opCounts(path.join(dir, 'onnx', 'model_quantized.onnx'));
    assert.equal(ops.get('MatMulInteger'), 6 * layers, 'Q, K, V, O, FFN in, FFN out per layer');
    assert.equal(ops.get('DynamicQuantizeLinear'), 4 * layers, 'Q/K/V share one quantized activation');
    assert.equal(ops.get('LayerNormalization'), 2 * layers + 1, 'LayerNorm boundaries kept');
  });

  test('graph structure: BERT uses LayerNormalization, DistilBERT decomposed LayerNorm, both Softmax per layer', () => {
    const bert = opCounts(path.join(fixtureModelDir('bert-tiny'), 'onnx', 'model.onnx'));
    assert.equal(bert.get('LayerNormalization'), 2 * 4 + 1);
    assert.equal(bert.get('Softmax'), 4);
    const distil = opCounts(path.join(fixtureModelDir('distilbert-tiny'), 'onnx', 'model.onnx'));
    assert.equal(distil.get('LayerNormalization'), undefined);
    assert.equal(distil.get('ReduceMean'), 2 * (2 * 3 + 1));
    assert.equal(distil.get('Softmax'), 3);
  });
});
