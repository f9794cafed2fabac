// Pre-norm encoders (ModernBERT-style) and decoder embedders (Qwen3-Embedding-style): every hidden state
// of a padded mixed-length batch, the model's `output`, and every pooling, against the independent
// TypeScript forward pass (test/reference/forward.ts) run on each text alone, unpadded. The decoder is
// run with left padding (its tokenizer_config.json) and with right padding (a copy that says so).
// Plus the refusals: an unknown pre-norm family, and a model whose blocks leave the stream unchanged.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Extractor } from '../../src/core/extract/extractor';
import { planWindows, specialFrame } from '../../src/core/extract/windows';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { loadModernReference, referenceModernStates, type ModernReferenceStates } from '../reference/forward';

const TOL = 1e-4;

// Mixed lengths (2 to ~25 tokens), longer than ModernBERT's ±4 sliding window, so padding, the window
// and the causal mask all matter.
const TEXTS = [
  'hello',
  'getUserName returns the user name of the current session',
  'def add(a, b): return a + b',
  'The embedding of a function differs from the embedding of its documentation, layer by layer.',
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function normalize(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
}

function copyFixture(name: string, edit: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `el-${name}-`));
  fs.cpSync(fixtureModelDir(name), dir, { recursive: true });
  edit(dir);
  return dir;
}

const worst: Record<string, number> = {};

interface Case { name: string; fixture: string; padding?: 'left' | 'right'; lastIsOutput: boolean }
const CASES: Case[] = [
  { name: 'modernbert-tiny (pre-LN encoder, right padding)', fixture: 'modernbert-tiny', lastIsOutput: false },
  { name: 'qwen3-tiny (decoder, left padding)', fixture: 'qwen3-tiny', padding: 'left', lastIsOutput: true },
  { name: 'qwen3-tiny (decoder, right padding)', fixture: 'qwen3-tiny', padding: 'right', lastIsOutput: true },
];

before(() => ensureFixtureModels());

for (const c of CASES) {
  describe(`every layer of ${c.name} vs the reference forward pass`, () => {
    let ex: Extractor;
    let ids: number[][];
    let ref: ModernReferenceStates[];
    let L: number;
    let dir: string;

    before(async () => {
      dir = c.padding === 'right'
        ? copyFixture(c.fixture, (d) => {
          const file = path.join(d, 'tokenizer_config.json');
          fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), padding_side: 'right' }));
        })
        : fixtureModelDir(c.fixture);
      // One batch for all texts: padded to the longest.
      ex = await Extractor.load({ model: dir, maxTokensPerBatch: 4096 });
      const model = loadModernReference(dir);
      L = model.config.numLayers;
      const none = await ex.extract(TEXTS, { layer: '0', pool: 'none' });
      ids = none.items.map((it) => it.tokens!.map((t) => t.id));
      ref = ids.map((x) => referenceModernStates(model, model.config, x));
    });
    after(async () => {
      await ex?.dispose();
      if (c.padding === 'right') fs.rmSync(dir, { recursive: true, force: true });
    });

    test('the engine reads the padding side from tokenizer_config.json', () => {
      assert.equal(ex.info.paddingSide, c.padding ?? 'right');
      assert.equal(ex.info.layout, 'pre-norm');
    });

    test('the batch is padded (mixed lengths in one model call)', async () => {
      const r = await ex.extract(TEXTS, { layer: 'last', pool: 'mean' });
      assert.equal(r.stats.batches, 1);
      assert.ok(r.stats.paddedTokens > r.stats.realTokens, 'no padding in the batch');
    });

    test('hidden states 0..L and `output`, every token, within 1e-4', async () => {
      const specs = [...Array.from({ length: L + 1 }, (_, i) => String(i)), 'output'];
      const results = await ex.extractMany(TEXTS, specs.map((layer) => ({ layer, pool: 'none' as const })));
      results.forEach((r, s) => {
        const spec = specs[s];
        let err = 0;
        r.items.forEach((item, i) => {
          const want = spec === 'output' || (spec === String(L) && c.lastIsOutput) ? ref[i].output : ref[i].residual[Number(spec)];
          assert.equal(item.rowCount, want.length, `tokens of text ${i}`);
          want.forEach((w, t) => { err = Math.max(err, maxAbsDiff(r.data.subarray((item.rowStart + t) * r.dims, (item.rowStart + t + 1) * r.dims), w)); });
        });
        worst[c.name] = Math.max(worst[c.name] ?? 0, err);
        assert.ok(err < TOL, `layer ${spec}: max abs error ${err}`);
      });
      // HF's convention for index L: ModernBERT before final_norm, decoders after (= output).
      const last = await ex.extract(TEXTS, { layer: 'last', pool: 'none' });
      const out = await ex.extract(TEXTS, { layer: 'output', pool: 'none' });
      if (c.lastIsOutput) assert.equal(maxAbsDiff(last.data, out.data), 0);
      else assert.ok(maxAbsDiff(last.data, out.data) > 0.1, 'ModernBERT: hidden state L must differ from the output');
    });

    test('every pooling of `output` (and of a middle layer) within 1e-4; last = last real token', async () => {
      for (const layer of ['output', '2']) {
        const want = (i: number) => (layer === 'output' ? ref[i].output : ref[i].residual[2]);
        for (const pool of ['mean', 'max', 'cls', 'last'] as const) {
          for (const norm of [false, true]) {
            const r = await ex.extract(TEXTS, { layer, pool, normalize: norm });
            TEXTS.forEach((_, i) => {
              const h = want(i);
              const H = h[0].length;
              let v: number[];
              if (pool === 'mean') v = Array.from({ length: H }, (_, d) => h.reduce((s, row) => s + row[d], 0) / h.length);
              else if (pool === 'max') v = Array.from({ length: H }, (_, d) => Math.max(...h.map((row) => row[d])));
              else if (pool === 'cls') v = Array.from(h[0]);
              else v = Array.from(h[h.length - 1]);
              if (norm) v = normalize(v);
              const err = maxAbsDiff(r.data.subarray(i * r.dims, (i + 1) * r.dims), v);
              worst[c.name] = Math.max(worst[c.name] ?? 0, err);
              assert.ok(err < TOL, `${layer}/${pool}${norm ? '/normalized' : ''} text ${i}: ${err}`);
            });
          }
        }
      }
    });

    test('the graph is cut after the deepest layer asked for', async () => {
      const counts = await Promise.all(['0', '1', 'last', 'output'].map((l) => ex.nodeCount(l)));
      assert.ok(counts[0] < counts[1] && counts[1] < counts[2] && counts[2] <= counts[3], counts.join(' < '));
    });

    test('a text alone and in the padded batch give the same vectors', async () => {
      const batch = await ex.extract(TEXTS, { layer: 'output', pool: 'last' });
      const alone = await ex.extract([TEXTS[0]], { layer: 'output', pool: 'last' });
      assert.ok(maxAbsDiff(batch.data.subarray(0, batch.dims), alone.data) < 1e-5);
    });
  });
}

describe('windows of a long input on the decoder (causal)', () => {
  test('a text longer than the model is windowed, each window ending in the end token; `last` = the last window\'s last token', async () => {
    const dir = fixtureModelDir('qwen3-tiny');
    const ex = await Extractor.load({ model: dir });
    try {
      const model = loadModernReference(dir);
      const long = Array.from({ length: 30 }, (_, i) => `word${i} value`).join(' ');
      const none = await ex.extract([long], { layer: 'output', pool: 'none' });
      const ids = none.items[0].tokens!.map((t) => t.id);
      const special = none.items[0].tokens!.map((t) => (t.special ? 1 : 0));
      const frame = specialFrame(Uint8Array.from(special));
      assert.deepEqual(frame, { prefix: 0, suffix: 1 }, 'the decoder tokenizer appends one end token');
      const plan = planWindows(ids.length, frame.prefix, frame.suffix, ex.info.maxLength, undefined, false);
      assert.ok(plan.windows.length > 1, 'expected several windows');
      assert.equal(none.items[0].windows, plan.windows.length);
      const lastWindow = Array.from(plan.windows[plan.windows.length - 1], (p) => ids[p]);
      const want = referenceModernStates(model, model.config, lastWindow).output;
      const r = await ex.extract([long], { layer: 'output', pool: 'last' });
      const err = maxAbsDiff(r.data, want[want.length - 1]);
      assert.ok(err < TOL, `last token of the last window: ${err}`);
    } finally {
      await ex.dispose();
    }
  });
});

describe('refusals on pre-norm models', () => {
  test('a pre-norm model of a family whose hidden-state convention is unknown is refused, naming it', async () => {
    const dir = copyFixture('modernbert-tiny', (d) => {
      const file = path.join(d, 'config.json');
      fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), model_type: 'newfangled' }));
    });
    try {
      await assert.rejects(Extractor.load({ model: dir }), /"newfangled" is a pre-norm model.*hidden state 4/s);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('blocks that leave the stream unchanged fail the self-check, naming the model type and the states', async () => {
    const dir = copyFixture('qwen3-tiny', (d) => {
      const file = path.join(d, 'onnx', 'model.onnx');
      const model = fromBinary(ModelProtoSchema, fs.readFileSync(file));
      for (const t of model.graph!.initializer) {
        if (t.name === 'layers.1.self_attn.o_proj.weight' || t.name === 'layers.1.mlp.down_proj.weight') t.rawData = new Uint8Array(t.rawData.length);
      }
      fs.writeFileSync(file, toBinary(ModelProtoSchema, model));
    });
    try {
      const ex = await Extractor.load({ model: dir });
      try {
        // The check runs before the first hidden states are handed out, whatever is asked for.
        for (const layer of ['0', 'output']) {
          await assert.rejects(ex.extract(['hello'], { layer, pool: 'mean' }), /Self-check failed for this qwen3 model.*hidden states 1 and 2 are equal/s);
        }
      } finally {
        await ex.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

after(() => {
  for (const [name, err] of Object.entries(worst)) console.log(`# largest abs error ${name}: ${err.toExponential(2)}`);
});
