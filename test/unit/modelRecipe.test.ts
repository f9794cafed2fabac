// The default recipe is the model's own (its sentence-transformers files), a person's explicit choice
// always wins, the engine's defaults fill only the rest, and the prefix table is the fallback for
// folders without prompts. The CLI prints which recipe it uses and why.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { describeModelRecipe, resolveModelRecipe } from '../../src/core/model/modelRecipe';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');

async function infoOf(name: string) {
  const ex = await Extractor.load({ model: fixtureModelDir(name) });
  const info = ex.info;
  await ex.dispose();
  return info;
}

before(() => ensureFixtureModels());

describe("a model's own recipe", () => {
  test('gte-modernbert-style: CLS from 1_Pooling, layer `output` (HF\'s last hidden state is before final_norm)', async () => {
    const r = resolveModelRecipe(await infoOf('modernbert-tiny'));
    assert.deepEqual(r.recipe, { layer: 'output', pool: 'cls', normalize: true });
    assert.equal(r.sources.pool, "the model's 1_Pooling/config.json (pooling_mode_cls_token)");
    assert.equal(r.sources.normalize, "the model's modules.json (Normalize)");
    assert.equal(r.maxSeqLength, 64);
    assert.match(describeModelRecipe(r).join('\n'), /^pooling cls, from the model's 1_Pooling\/config\.json/m);
  });

  test('Qwen3-Embedding-style: last token with its query instruction; layer `last` (= the output for decoders)', async () => {
    const r = resolveModelRecipe(await infoOf('qwen3-tiny'));
    assert.deepEqual(r.recipe, { layer: 'last', pool: 'last', normalize: true });
    assert.match(r.prefixes.query, /^Instruct: Given a web search query/);
    assert.equal(r.prefixes.passage, '');
    assert.equal(r.sources.query, "the model's config_sentence_transformers.json (prompts.query)");
  });

  test('a folder without sentence-transformers files: engine defaults, prefixes from the built-in table', async () => {
    const info = await infoOf('bert-tiny');
    const r = resolveModelRecipe(info);
    assert.deepEqual(r.recipe, { layer: 'last', pool: 'mean', normalize: true });
    assert.equal(r.sources.pool, 'the engine default');
    assert.deepEqual(r.prefixes, { query: '', passage: '' });
    const e5 = resolveModelRecipe({ ...info, model: 'intfloat/e5-small-v2' });
    assert.deepEqual(e5.prefixes, { query: 'query: ', passage: 'passage: ' });
    assert.match(e5.sources.query, /built-in prefix table/);
  });

  test('the person\'s explicit choice always wins', async () => {
    const r = resolveModelRecipe(await infoOf('qwen3-tiny'), { pool: 'mean', layer: '2', normalize: false, prefixes: { query: 'q: ' } });
    assert.deepEqual(r.recipe, { layer: '2', pool: 'mean', normalize: false });
    assert.equal(r.prefixes.query, 'q: ');
    assert.equal(r.sources.pool, 'your choice');
  });

  test('a recipe the engine cannot reproduce is named; the engine\'s default only when the person chooses', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-recipe-'));
    try {
      fs.cpSync(fixtureModelDir('distilbert-tiny'), dir, { recursive: true });
      const pooling = path.join(dir, '1_Pooling', 'config.json');
      fs.writeFileSync(pooling, JSON.stringify({ ...JSON.parse(fs.readFileSync(pooling, 'utf8')), pooling_mode_mean_tokens: false, pooling_mode_mean_sqrt_len_tokens: true }));
      const info = { ...(await infoOf('distilbert-tiny')), folder: dir };
      assert.throws(() => resolveModelRecipe(info), /cannot reproduce: 1_Pooling\/config\.json: pooling_mode_mean_sqrt_len_tokens[\s\S]*Choose the pooling/);
      assert.equal(resolveModelRecipe(info, { pool: 'mean' }).recipe.pool, 'mean');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the embedder carries the model\'s prompts (index and search use them)', async () => {
    const ex = await Extractor.load({ model: fixtureModelDir('qwen3-tiny') });
    try {
      const e = ex.embedder({ layer: 'last', pool: 'last', normalize: true });
      assert.match(e.prefixes!.query, /^Instruct:/);
    } finally {
      await ex.dispose();
    }
  });
});

suiteRequiring('the CLI prints the recipe it uses and why', !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) && 'dist/cli.js missing: run `npm run build` first', () => {
  test('extract on a CLS model: pooling cls from its 1_Pooling/config.json, unless --pool is given', () => {
    const run = (extra: string[]) => spawnSync(process.execPath, [BIN, 'extract', '--model', fixtureModelDir('modernbert-tiny'), '--text', 'hello world', '--out', '-', ...extra], { encoding: 'utf8', cwd: ROOT });
    const own = run([]);
    assert.equal(own.status, 0, own.stderr);
    assert.match(own.stderr, /Recipe: layer output, from the model's output \(what its 1_Pooling\/config\.json pools\); pooling cls, from the model's 1_Pooling\/config\.json/);
    const chosen = run(['--pool', 'mean']);
    assert.equal(chosen.status, 0, chosen.stderr);
    assert.match(chosen.stderr, /pooling mean, from your choice/);
    assert.notDeepEqual(JSON.parse(own.stdout), JSON.parse(chosen.stdout));
  });

  test('index on a decoder embedder: last token and the model\'s query prompt', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'el-recipe-idx-'));
    try {
      fs.writeFileSync(path.join(folder, 'a.py'), 'def add(a, b):\n    return a + b\n');
      const r = spawnSync(process.execPath, [BIN, 'index', folder, '--model', fixtureModelDir('qwen3-tiny'), '--storage', path.join(folder, '.store')], { encoding: 'utf8', cwd: ROOT });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /pooling last, from the model's 1_Pooling\/config\.json \(pooling_mode_lasttoken\)/);
      assert.match(r.stderr, /query prefix "Instruct: Given a web search query/);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
