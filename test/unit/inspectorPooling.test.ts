// The inspector's pooled vectors (what its "Copy as JSON" copies) are the numbers `embedding-lens
// extract` writes for the same text and recipe: the engine adapter the extension talks to
// (worker/engine.ts `inspect`) against the real CLI's .npy output, layer by layer, every vector pooling,
// normalized or not, special tokens kept or left out, and a long text cut as --truncate cuts it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { VECTOR_POOLINGS } from '../../src/core/recipe';
import { readNpy } from '../../src/core/store/npy';
import { openEngine, type Engine } from '../../src/worker/engine';
import type { WireInspectResult } from '../../src/protocol/worker';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'all-MiniLM-L6-v2');
const TOL = 1e-6;
const quiet = { info() {}, warn() {}, error() {} };
const cliMissing = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'dist/cli.js missing: run `npm run build` first';

const TEXTS = ['def add(a, b): return a + b', 'getUserName returns the user name of the current session'];
// Longer than bert-tiny's 32 positions: the inspector cuts it, as extract --truncate does.
const LONG = Array.from({ length: 12 }, (_, i) => `word${i} parse the http request`).join(' ');

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-inspect-pool-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let outN = 0;
/** Runs the real CLI and reads back the .npy it wrote. */
async function extract(model: string, texts: string | string[], args: string[]): Promise<{ rows: number; dims: number; data: Float32Array }> {
  const out = path.join(tmp, `out${outN++}.npy`);
  const r = spawnSync(process.execPath, [BIN, 'extract', '--model', model, '--offline', '--quiet', ...[texts].flat().flatMap((t) => ['--text', t]), '--out', out, ...args], { encoding: 'utf8', cwd: ROOT });
  assert.equal(r.status, 0, r.stderr);
  const npy = await readNpy(out);
  return { rows: npy.shape[0]!, dims: npy.shape[1]!, data: npy.data };
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= TOL, `${what}: max |inspector − extract| = ${worst}`);
}

function layerRow(r: WireInspectResult, pool: (typeof VECTOR_POOLINGS)[number], layer: number): Float32Array {
  return r.pooled[pool].subarray(layer * r.dims, (layer + 1) * r.dims);
}

async function inspect(engine: Engine, text: string, recipe: { normalize: boolean; excludeSpecialTokens: boolean }): Promise<WireInspectResult> {
  return engine.inspect(text, recipe, new AbortController().signal);
}

suiteRequiring('inspector pooled vectors = extract (fixture model bert-tiny)', cliMissing, () => {
  let engine: Engine;
  let model: string;
  before(async () => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    engine = await openEngine({ model, offline: true, threads: 1, maxTokensPerBatch: 1024 }, quiet, () => {}, new AbortController().signal);
  });
  after(() => engine?.dispose());

  test('normalized, special tokens kept (the extension\'s default recipe): every pooling at the first and last hidden state', async () => {
    // Both texts in one extract call: it batches them (padded); the inspector runs each alone.
    const inspected = await Promise.all(TEXTS.map((t) => inspect(engine, t, { normalize: true, excludeSpecialTokens: false })));
    for (const r of inspected) {
      assert.deepEqual(r.pooledRecipe, { normalize: true, excludeSpecialTokens: false });
      assert.equal(r.layers, 5);
    }
    for (const pool of VECTOR_POOLINGS) {
      for (const layer of [0, 4]) {
        const x = await extract(model, TEXTS, ['--layer', String(layer), '--pool', pool]);
        assert.equal(x.rows, TEXTS.length);
        inspected.forEach((r, i) => assertClose(layerRow(r, pool, layer), x.data.subarray(i * r.dims, (i + 1) * r.dims), `"${TEXTS[i]}" ${pool} layer ${layer}`));
      }
    }
  });

  test('raw and with special tokens left out: every layer (extract --layer all, concatenated)', async () => {
    const text = TEXTS[1]!;
    for (const excludeSpecialTokens of [false, true]) {
      const r = await inspect(engine, text, { normalize: false, excludeSpecialTokens });
      for (const pool of VECTOR_POOLINGS) {
        const x = await extract(model, text, ['--layer', 'all', '--pool', pool, '--no-normalize', ...(excludeSpecialTokens ? ['--exclude-special'] : [])]);
        assert.equal(x.dims, r.layers * r.dims);
        for (let l = 0; l < r.layers; l++) {
          assertClose(layerRow(r, pool, l), x.data.subarray(l * r.dims, (l + 1) * r.dims), `${pool} layer ${l} excludeSpecial ${excludeSpecialTokens}`);
        }
      }
    }
    // The choice matters: mean with and without [CLS]/[SEP] differ (else this test could not tell them apart).
    const kept = await inspect(engine, text, { normalize: false, excludeSpecialTokens: false });
    const left = await inspect(engine, text, { normalize: false, excludeSpecialTokens: true });
    const d = Math.max(...Array.from(layerRow(kept, 'mean', 4), (v, i) => Math.abs(v - layerRow(left, 'mean', 4)[i]!)));
    assert.ok(d > 1e-3, `special tokens change the mean (${d})`);
  });

  test('a long text: the inspector cuts it as extract --truncate does', async () => {
    const r = await inspect(engine, LONG, { normalize: true, excludeSpecialTokens: false });
    assert.equal(r.truncated, true);
    for (const pool of VECTOR_POOLINGS) {
      const x = await extract(model, LONG, ['--layer', 'last', '--pool', pool, '--truncate']);
      assertClose(layerRow(r, pool, r.layers - 1), x.data, `long text ${pool}`);
    }
  });
});

suiteRequiring('inspector pooled vectors = extract (the default model all-MiniLM-L6-v2)',
  cliMissing || (fs.existsSync(path.join(DEFAULT_MODEL, 'onnx', 'model.onnx')) ? false : `${DEFAULT_MODEL} missing`), () => {
    let engine: Engine;
    before(async () => {
      engine = await openEngine({ model: DEFAULT_MODEL, offline: true, threads: 1, maxTokensPerBatch: 1024 }, quiet, () => {}, new AbortController().signal);
    });
    after(() => engine?.dispose());

    test('extract with no recipe flags (the model\'s own: mean, normalized) = the inspector\'s mean at the last layer', async () => {
      const text = TEXTS[1]!;
      const r = await inspect(engine, text, { normalize: true, excludeSpecialTokens: false });
      const x = await extract(DEFAULT_MODEL, text, []);
      assert.equal(x.dims, 384);
      assertClose(layerRow(r, 'mean', r.layers - 1), x.data, 'MiniLM mean last');
      const cls = await extract(DEFAULT_MODEL, text, ['--layer', '3', '--pool', 'cls']);
      assertClose(layerRow(r, 'cls', 3), cls.data, 'MiniLM cls layer 3');
    });
  });
