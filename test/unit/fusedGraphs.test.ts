// The residual stream is found from the structure, so graphs whose norms and activations are fused —
// as ONNX Runtime's optimizer writes them (SimplifiedLayerNormalization for RMSNorm, fused Gelu) and as
// the transformer optimizer fuses residual Adds into SkipSimplifiedLayerNormalization — give the same
// hidden states, layer for layer, as the plain exports they came from.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Extractor } from '../../src/core/extract/extractor';
import { decodeModel } from '../../src/core/model/onnxGraph';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { fuseSkipSimplifiedNorms } from '../fixtures/modelVariants';

const TEXTS = ['hello', 'getUserName returns the user name of the current session', 'def add(a, b): return a + b'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-fused-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
before(() => ensureFixtureModels());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A copy of a fixture whose onnx/model.onnx is the graph ORT writes after its own (extended) optimizations. */
async function ortOptimized(name: string, edit?: (bytes: Uint8Array) => Uint8Array): Promise<string> {
  const dir = path.join(tmp, `${name}-${edit ? 'skip' : 'opt'}`);
  fs.cpSync(fixtureModelDir(name), dir, { recursive: true });
  const file = path.join(dir, 'onnx', 'model.onnx');
  const optimized = path.join(tmp, `${name}-optimized.onnx`);
  const s = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'extended', optimizedModelFilePath: optimized });
  await s.release();
  const bytes = new Uint8Array(fs.readFileSync(optimized));
  fs.writeFileSync(file, edit ? edit(bytes) : bytes);
  return dir;
}

function opTypes(dir: string): Map<string, number> {
  const ops = new Map<string, number>();
  for (const n of decodeModel(fs.readFileSync(path.join(dir, 'onnx', 'model.onnx'))).graph!.node) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
  return ops;
}

async function compareEveryLayer(plainDir: string, fusedDir: string, specs: string[]): Promise<number> {
  const a = await Extractor.load({ model: plainDir, maxTokensPerBatch: 4096 });
  const b = await Extractor.load({ model: fusedDir, maxTokensPerBatch: 4096 });
  let worst = 0;
  try {
    for (const layer of specs) {
      const x = await a.extract(TEXTS, { layer, pool: 'none' });
      const y = await b.extract(TEXTS, { layer, pool: 'none' });
      const err = maxAbsDiff(x.data, y.data);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `layer ${layer}: ${err}`);
    }
  } finally {
    await a.dispose();
    await b.dispose();
  }
  return worst;
}

describe('fused graphs give the same hidden states', () => {
  test('Qwen3-style decoder, RMSNorm fused by ORT into SimplifiedLayerNormalization', async () => {
    const dir = await ortOptimized('qwen3-tiny');
    const ops = opTypes(dir);
    assert.ok((ops.get('SimplifiedLayerNormalization') ?? 0) > 0 && !ops.has('Pow'), [...ops.keys()].join(' '));
    await compareEveryLayer(fixtureModelDir('qwen3-tiny'), dir, ['0', '1', '2', '3', 'output']);
  });

  test('Qwen3-style decoder, residual Adds fused into SkipSimplifiedLayerNormalization (final sum dropped)', async () => {
    const dir = await ortOptimized('qwen3-tiny', (bytes) => toBinary(ModelProtoSchema, fuseSkipSimplifiedNorms(decodeModel(bytes))));
    const ops = opTypes(dir);
    assert.ok((ops.get('SkipSimplifiedLayerNormalization') ?? 0) >= 5, [...ops.keys()].join(' '));
    await compareEveryLayer(fixtureModelDir('qwen3-tiny'), dir, ['0', '1', '2', '3', 'output']);
  });

  test('ModernBERT-style encoder (external data, fused Gelu) and BERT (BiasGelu), ORT-optimized', async () => {
    const mb = await ortOptimized('modernbert-tiny');
    await compareEveryLayer(fixtureModelDir('modernbert-tiny'), mb, ['0', '1', '2', '3', '4', 'output']);
    const bert = await ortOptimized('bert-tiny');
    assert.ok(opTypes(bert).has('BiasGelu'));
    await compareEveryLayer(fixtureModelDir('bert-tiny'), bert, ['0', '1', '2', '3', '4']);
  });
});
