// The real all-MiniLM-L6-v2 (transformers.js export: opset 11, decomposed LayerNorm) from ../shared,
// against its answer key (a float64 numpy forward of the graph's own weights): every hidden state of
// every token of a padded mixed-length batch within 1e-4, every pooling of every layer, the `output`
// spec, and the int8 graph by cosine. Skipped, saying so, when ../shared/models is absent.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { suiteRequiring } from '../skip';

const MINILM = path.resolve(__dirname, '..', '..', '..', 'shared', 'models', 'all-MiniLM-L6-v2');
const KEY = path.join(MINILM, 'reference.json');
const KEY_Q = path.join(MINILM, 'reference_quantized.json');

interface KeyInput { text: string; input_ids: number[]; hidden_states: number[][][]; pooled: Record<'mean' | 'max' | 'cls' | 'last', Record<string, number[]>> }

suiteRequiring('the real all-MiniLM-L6-v2 vs its answer key', !fs.existsSync(KEY) && `${KEY} is absent: skipped`, () => {
  test('every hidden state (0..6 and output) of a padded batch, and every pooling of every layer, within 1e-4', async () => {
    const key = JSON.parse(fs.readFileSync(KEY, 'utf8')) as { inputs: KeyInput[] };
    const texts = key.inputs.map((i) => i.text);
    const ex = await Extractor.load({ model: MINILM, maxTokensPerBatch: 1 << 20 });
    let worst = 0;
    try {
      assert.equal(ex.info.layout, 'post-norm');
      const specs = ['0', '1', '2', '3', '4', '5', '6', 'output'];
      const results = await ex.extractMany(texts, specs.map((layer) => ({ layer, pool: 'none' as const })));
      assert.equal(results[0].stats.batches, 1, 'one padded batch');
      results.forEach((r, s) => {
        const layer = specs[s] === 'output' ? 6 : Number(specs[s]);
        r.items.forEach((item, i) => {
          assert.deepEqual(item.tokens!.map((t) => t.id), key.inputs[i].input_ids);
          key.inputs[i].hidden_states[layer].forEach((want, t) => {
            for (let d = 0; d < want.length; d++) worst = Math.max(worst, Math.abs(r.data[(item.rowStart + t) * r.dims + d] - want[d]));
          });
        });
      });
      for (const pool of ['mean', 'max', 'cls', 'last'] as const) {
        const pooled = await ex.extractMany(texts, specs.slice(0, 7).map((layer) => ({ layer, pool })));
        pooled.forEach((r, layer) => key.inputs.forEach((input, i) => {
          const want = input.pooled[pool][String(layer)];
          for (let d = 0; d < want.length; d++) worst = Math.max(worst, Math.abs(r.data[i * r.dims + d] - want[d]));
        }));
      }
    } finally {
      await ex.dispose();
    }
    console.log(`# all-MiniLM-L6-v2 fp32, largest abs error vs the answer key: ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `max abs error ${worst}`);
  });

  test('the int8 graph: every hidden state by cosine ≥ 0.99 per token (texts run alone, as the key)', { skip: !fs.existsSync(KEY_Q) && `${KEY_Q} is absent` }, async () => {
    const key = JSON.parse(fs.readFileSync(KEY_Q, 'utf8')) as { inputs: KeyInput[] };
    const ex = await Extractor.load({ model: MINILM, modelDtype: 'q8' });
    let worst = 1;
    try {
      for (const input of key.inputs.slice(0, 4)) {
        const all = await ex.extract([input.text], { layer: 'all', pool: 'none' });
        const H = 384;
        input.hidden_states.forEach((layer, l) => layer.forEach((want, t) => {
          let dot = 0, na = 0, nb = 0;
          for (let d = 0; d < H; d++) {
            const got = all.data[t * all.dims + l * H + d];
            dot += got * want[d]; na += got * got; nb += want[d] * want[d];
          }
          worst = Math.min(worst, dot / Math.sqrt(na * nb));
        }));
      }
    } finally {
      await ex.dispose();
    }
    console.log(`# all-MiniLM-L6-v2 int8, smallest token cosine vs the answer key: ${worst.toFixed(4)}`);
    assert.ok(worst >= 0.99, `min cosine ${worst}`);
  });
});
