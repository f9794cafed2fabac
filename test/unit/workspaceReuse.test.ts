// The workspace keeps its index open between refreshes (an editor's save re-indexes one file without
// opening the index again), and opens it afresh when someone else committed to the folder meanwhile.
// Real parts: the bert-tiny fixture model, the real indexer and store. An index open is observable by its
// token-estimate calibration, which asks the model's tokenizer to count tokens once per open.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import type { TextEmbedder } from '../../src/core/types';
import { Workspace } from '../../src/core/workspace/workspace';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';

function counting(inner: TextEmbedder) {
  const calls = { countTokens: 0, embed: 0 };
  const e: TextEmbedder = {
    identity: inner.identity,
    prefixes: inner.prefixes,
    countTokens: (t) => { calls.countTokens++; return inner.countTokens(t); },
    embed: (t, o) => { calls.embed++; return inner.embed(t, o); },
  };
  return { e, calls };
}

describe('workspace: the index stays open between refreshes', () => {
  let tmp: string;
  let extractor: Extractor;
  let inner: TextEmbedder;
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
    fs.writeFileSync(path.join(tmp, rel), text);
  };

  before(async () => {
    ensureFixtureModels();
    extractor = await Extractor.load({ model: fixtureModelDir('bert-tiny'), offline: true });
    inner = extractor.embedder({ layer: 'last', pool: 'mean', normalize: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-reuse-'));
    for (const name of ['a', 'b', 'c', 'd']) write(`src/${name}.ts`, `export function ${name}One(x: number): number {\n  return x + 1;\n}\n\nexport const ${name}Two = '${name} two';\n`);
  });
  after(async () => {
    await extractor.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('reused while nothing else commits; reopened after another writer committed; never out of step with the disk', async () => {
    const one = counting(inner);
    const ws1 = Workspace.at(tmp);
    const first = await ws1.refresh(one.e);
    assert.equal(first.filesIndexed, 4);
    assert.equal(one.calls.countTokens, 1, 'the first refresh opens the index (one calibration)');

    // An edit, and a new embedder object of the same recipe (an engine that reloaded its model).
    write('src/a.ts', 'export function aOne(x: number): number {\n  return x * 7;\n}\n');
    const two = counting(inner);
    const edit = await ws1.refresh(two.e);
    assert.equal(edit.filesIndexed, 1);
    assert.ok(edit.chunksEmbedded >= 1);
    assert.equal(one.calls.countTokens + two.calls.countTokens, 1, 'the second refresh reused the open index');
    assert.ok(two.calls.embed >= 1, 'and embedded with the embedder it was given now');

    // Another writer (a CLI run, another window) commits a change to b.ts.
    write('src/b.ts', 'export const bOnly = 2;\n');
    const other = await Workspace.at(tmp).refresh(inner);
    assert.equal(other.filesIndexed, 1);

    // ws1 must see that commit: reopen (a calibration), redo only c.ts, keep b.ts as the other writer left it.
    write('src/c.ts', 'export const cOnly = 3;\n');
    const three = counting(inner);
    const after = await ws1.refresh(three.e);
    assert.equal(three.calls.countTokens, 1, 'the index was opened again after the other commit');
    assert.equal(after.filesIndexed, 1, 'only c.ts: b.ts was committed by the other writer');

    // A fresh look at the folder finds nothing to do and nothing stray: the store, keyword index and
    // catalog on disk agree with the files.
    const check = await Workspace.at(tmp).refresh(inner);
    assert.deepEqual([check.filesIndexed, check.chunksEmbedded, check.chunksRemoved], [0, 0, 0]);
    assert.equal(check.chunksTotal, after.chunksTotal);
    const status = await Workspace.at(tmp).status(inner.identity);
    assert.equal(status.chunks, after.chunksTotal);
    const hits = await Workspace.at(tmp).search('bOnly', { identity: inner.identity }, { mode: 'lexical' });
    assert.equal(hits[0]?.path, 'src/b.ts');

    // Clearing the index drops the open one: the next refresh builds from scratch.
    await ws1.clear();
    const rebuilt = await ws1.refresh(inner);
    assert.equal(rebuilt.filesIndexed, 4);
  });

  test("searches share the indexer's open index (after a refresh and after a compaction), not during a refresh, not after another writer", async () => {
    const ws = Workspace.at(tmp);
    await ws.refresh(inner);
    const s1 = await ws.openSearch({ embedder: inner });
    assert.equal(s1.shared, true, 'after a refresh the search runs over the open index');
    assert.equal((await ws.search('dTwo', { embedder: inner }, { mode: 'lexical' }))[0]?.path, 'src/d.ts');
    assert.equal((await ws.openSearch({ identity: inner.identity })).shared, true, 'a keyword search too');

    // A save: the shared search sees the edit at once (nothing opened again) in every mode.
    write('src/d.ts', 'export function dSeven(x: number): number {\n  return x * 7;\n}\n');
    await ws.refresh(inner, { paths: ['src/d.ts'] });
    const s2 = await ws.openSearch({ embedder: inner });
    assert.equal(s2.shared, true);
    for (const mode of ['lexical', 'vector', 'hybrid'] as const) {
      const hits = await ws.search('dSeven', { embedder: inner }, { mode, k: 20 });
      assert.ok(hits.some((h) => h.path === 'src/d.ts' && h.preview.includes('dSeven')), `${mode}: the edited function is found`);
    }

    // While a refresh runs, a search reads what is committed (opened from disk), then shares again.
    write('src/e.ts', 'export const eNew = 5;\n');
    let mid: ReturnType<Workspace['openSearch']> | undefined;
    await ws.refresh(inner, { onProgress: (p) => { if (p.phase === 'discover') mid ??= ws.openSearch({ identity: inner.identity }); } });
    assert.equal((await mid!).shared, false, 'a search opened during a refresh does not share the parts being changed');
    assert.equal((await ws.openSearch({ identity: inner.identity })).shared, true);

    // A compaction folds the deltas into the indexer's graph: searches keep sharing that one graph.
    const held = ws as unknown as { indexers: Map<string, { indexer: { store: { compact(): void; save(): Promise<void> } } }> };
    const indexer = [...held.indexers.values()][0]!.indexer;
    indexer.store.compact(); // as compactIfNeeded does once the deltas pass their share
    assert.equal(await ws.compactIfNeeded(inner.identity), true);
    const s3 = await ws.openSearch({ embedder: inner });
    assert.equal(s3.shared, true, 'after a compaction');
    assert.ok((await ws.search('dSeven', { embedder: inner }, { mode: 'vector', k: 20 })).some((h) => h.path === 'src/d.ts'));

    // Another writer commits: the held index is out of step, the search opens the committed one.
    write('src/e.ts', 'export const eOther = 6;\n');
    await Workspace.at(tmp).refresh(inner);
    const s4 = await ws.openSearch({ identity: inner.identity });
    assert.equal(s4.shared, false);
    assert.equal((await ws.search('eOther', { identity: inner.identity }, { mode: 'lexical' }))[0]?.path, 'src/e.ts');
  });
});
