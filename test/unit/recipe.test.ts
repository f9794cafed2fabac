// The recipe's one home (src/core/recipe.ts), the model identity (weights, not path text), and typed
// errors (src/core/errors.ts) with the words each front end gives them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { errorCode, fromWire, toWire, UserError } from '../../src/core/errors';
import { WorkspaceIndexer } from '../../src/core/index/indexer';
import {
  DEFAULT_RECIPE,
  describeIdentity,
  POOLING_DESCRIPTIONS,
  POOLING_MODES,
  recipeDifferences,
  validateRecipe,
  VECTOR_POOLINGS,
  WORD_POOLINGS,
} from '../../src/core/recipe';
import { WorkspaceSearch } from '../../src/core/search/search';
import { matchesKey, recipeKey, storeDirFor } from '../../src/core/workspace/layout';
import { cliMessage } from '../../src/cli/errors';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';

const REPO = path.resolve(__dirname, '../..');

describe('recipe vocabulary', () => {
  test('the extension settings declare exactly the core vocabulary and defaults', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(REPO, 'package.json'), 'utf8'));
    const props = pkg.contributes.configuration.properties;
    assert.deepEqual(props['embeddingLens.pooling'].enum, [...POOLING_MODES]);
    assert.deepEqual(props['embeddingLens.pooling'].enumDescriptions, POOLING_MODES.map((p) => POOLING_DESCRIPTIONS[p]));
    assert.deepEqual(props['embeddingLens.wordPooling'].enum, [...WORD_POOLINGS]);
    assert.equal(props['embeddingLens.pooling'].default, DEFAULT_RECIPE.pool);
    assert.equal(props['embeddingLens.wordPooling'].default, DEFAULT_RECIPE.wordPool);
    assert.equal(props['embeddingLens.layer'].default, DEFAULT_RECIPE.layer);
    assert.equal(props['embeddingLens.normalize'].default, DEFAULT_RECIPE.normalize);
  });

  test('none and words are not one vector: refused where one vector per text is needed', () => {
    for (const pool of POOLING_MODES) {
      const recipe = { layer: 'last', pool };
      if ((VECTOR_POOLINGS as readonly string[]).includes(pool)) {
        assert.equal(validateRecipe(recipe, { oneVector: 'an index' }), recipe);
      } else {
        assert.throws(() => validateRecipe(recipe, { oneVector: 'an index' }), (e: unknown) =>
          e instanceof UserError && e.code === 'BAD_INPUT' && new RegExp(`Pooling "${pool}" gives one vector per (token|word); an index needs one vector per text`).test(e.message));
        assert.equal(validateRecipe(recipe), recipe, 'extraction takes per-token poolings');
      }
    }
    assert.throws(() => validateRecipe({ layer: 'last', pool: 'mean', wordPool: 'first' }), /applies only with pooling "words"/);
    assert.throws(() => validateRecipe({ layer: 'last', pool: 'avg' as never }), /Unknown pooling "avg"/);
    assert.throws(() => validateRecipe({ layer: ' ', pool: 'mean' }), /layer spec is empty/);
  });
});

describe('model identity: the weights, not the path', () => {
  let tmp: string;
  let ws: string;
  const open: Extractor[] = [];
  before(async () => {
    ensureFixtureModels();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'el-recipe-'));
    ws = path.join(tmp, 'ws');
    await fs.mkdir(ws);
    await fs.writeFile(path.join(ws, 'a.py'), 'def parse_url(url):\n    return url.split("/")\n');
    await fs.writeFile(path.join(ws, 'b.ts'), 'export function add(a: number, b: number) { return a + b; }\n');
  });
  after(async () => {
    for (const e of open) await e.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  });
  const load = async (model: string) => {
    const e = await Extractor.load({ model, offline: true });
    open.push(e);
    return e;
  };

  test('an index built through one path is found through a symlink and a copied folder', async () => {
    const real = fixtureModelDir('bert-tiny');
    const link = path.join(tmp, 'renamed-link');
    await fs.symlink(real, link);
    const copy = path.join(tmp, 'moved-copy');
    await fs.cp(real, copy, { recursive: true });
    const recipe = { layer: 'last', pool: 'mean', normalize: true } as const;
    const a = (await load(real)).embedder(recipe);
    const storage = path.join(tmp, 'storage');
    const summary = await (await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: a })).refresh();
    assert.equal(summary.filesIndexed, 2);
    for (const other of [link, copy]) {
      const b = (await load(other)).embedder(recipe);
      assert.notEqual(b.identity.model, a.identity.model);
      assert.deepEqual(recipeDifferences(a.identity, b.identity), []);
      assert.equal(recipeKey(b.identity), recipeKey(a.identity));
      assert.equal(await storeDirFor(storage, b.identity), summary.storeDir);
      const search = await WorkspaceSearch.open({ root: ws, storageDir: storage, embedder: b });
      // The fixture's weights are random: which file the vector search ranks first says nothing; that it
      // answers from the stored vectors does, and keywords pin the file.
      assert.equal((await search.search('parse url', { mode: 'vector', k: 1 })).length, 1);
      assert.equal((await search.search('parse url', { mode: 'lexical', k: 1 }))[0]?.path, 'a.py');
      // Indexing again through the other path embeds nothing: it is the same index.
      const again = await (await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder: b })).refresh();
      assert.equal(again.chunksEmbedded, 0);
    }
  });

  test('a store folder named by an earlier version (model name in the key) is still found', async () => {
    const e = (await load(fixtureModelDir('bert-tiny'))).embedder({ layer: '1', pool: 'cls', normalize: true });
    const storage = path.join(tmp, 'legacy');
    const legacy = `bert-tiny-${recipeKey(e.identity)}`;
    assert.ok(matchesKey(legacy, e.identity));
    await fs.mkdir(path.join(storage, 'stores', legacy), { recursive: true });
    assert.equal(await storeDirFor(storage, e.identity), path.join(storage, 'stores', legacy));
  });

  test('another model is refused, naming what differs', async () => {
    const a = (await load(fixtureModelDir('bert-tiny'))).embedder({ layer: 'last', pool: 'mean', normalize: true });
    const b = (await load(fixtureModelDir('distilbert-tiny'))).embedder({ layer: 'last', pool: 'mean', normalize: true });
    const diffs = recipeDifferences(a.identity, b.identity);
    assert.deepEqual(diffs.map((d) => d.field), a.identity.dims === b.identity.dims ? ['model'] : ['model', 'dims']);
    assert.match(String(diffs[0]!.index), new RegExp(a.identity.modelHash));
    assert.match(String(diffs[0]!.request), new RegExp(b.identity.modelHash));
    assert.notEqual(recipeKey(a.identity), recipeKey(b.identity));
    assert.match(describeIdentity(a.identity), /layer last, mean, normalized, \d+ dims/);
  });
});

describe('typed errors', () => {
  test('code and facts survive the worker boundary', () => {
    const err = new UserError('The index is damaged.', 'Rebuild the index.', { code: 'INDEX_DAMAGED', dir: '/x', file: '/x/lexical.json' });
    const back = fromWire(structuredClone(toWire(err)));
    assert.ok(back instanceof UserError);
    assert.equal(back.code, 'INDEX_DAMAGED');
    assert.deepEqual(back.facts, { dir: '/x', file: '/x/lexical.json' });
    assert.equal(back.message, err.message);
    assert.equal(back.statement, 'The index is damaged.');
    assert.equal(errorCode(new Error('x')), undefined);
    assert.equal(errorCode(new UserError('bad')), 'BAD_INPUT');
  });

  test('the CLI names its own command for each code; core names no flag', () => {
    const damaged = new UserError('lexical.json is truncated.', 'Rebuild the index.', { code: 'INDEX_DAMAGED' });
    assert.doesNotMatch(damaged.message, /--|embedding-lens /);
    assert.equal(cliMessage(damaged, { command: 'search', folder: 'my repo', cli: 'embedding-lens' }), "lexical.json is truncated.\nRebuild it: embedding-lens index 'my repo' --rebuild");
    const missing = new UserError('No index.', 'Build the index first.', { code: 'INDEX_MISSING' });
    assert.match(cliMessage(missing, { command: 'search', folder: 'src', cli: 'embedding-lens' }), /embedding-lens index src$/);
    assert.equal(cliMessage(new UserError('Bad value.', 'Use 3.')), 'Bad value.\nUse 3.');
  });
});
