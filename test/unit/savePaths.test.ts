// An editor's save names its files: discoverPaths decides each one exactly as the folder walk would,
// and a refresh given paths (RefreshOptions.paths) re-indexes them without walking the folder, ending
// in the same index a walk gives. Real files, the real bert-tiny fixture model.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Extractor } from '../../src/core/extract/extractor';
import { discoverFiles, discoverPaths, type DiscoverOptions } from '../../src/core/index/files';
import { WorkspaceIndexer } from '../../src/core/index/indexer';
import type { TextEmbedder } from '../../src/core/types';
import { loadFixtureEmbedder, releaseFixture } from '../helpers/fixtureEmbedder';
import { makeWorkspace } from '../helpers/workspace';


let extractor: Extractor;
let embedder: TextEmbedder;
const cleanup: string[] = [];
before(async () => ({ extractor, embedder } = await loadFixtureEmbedder()));
after(() => releaseFixture(extractor, cleanup));

/** Every path under `dir` (files, folders, links; links not followed), relative, `/`-separated. */
async function everyPath(dir: string, rel = ''): Promise<{ path: string; kind: 'file' | 'dir' | 'link' }[]> {
  const out: { path: string; kind: 'file' | 'dir' | 'link' }[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isSymbolicLink()) out.push({ path: p, kind: 'link' });
    else if (e.isDirectory()) out.push({ path: p, kind: 'dir' }, ...(await everyPath(dir, p)));
    else out.push({ path: p, kind: 'file' });
  }
  return out;
}

/** A workspace without symbolic links (a folder reached through one is walked, see the last test). */
async function plainWorkspace(): Promise<string> {
  const ws = await makeWorkspace();
  cleanup.push(ws);
  await fs.rm(path.join(ws, 'src/nested/loop'));
  await fs.rm(path.join(ws, 'src/broken.ts'));
  return ws;
}

describe('discoverPaths: a named path is decided as the folder walk decides it', () => {
  for (const [name, options] of [['default rules', {}], ['include/exclude globs', { include: ['src/**', 'data/**'], exclude: ['**/*.py'] }], ['no .gitignore, a size limit', { useGitignore: false, maxFileBytes: 300 }]] as [string, DiscoverOptions][]) {
    test(name, async () => {
      const ws = await makeWorkspace();
      cleanup.push(ws);
      const walk = await discoverFiles(ws, options);
      const files = new Map(walk.files.map((f) => [f.path, f]));
      const skipped = new Map(walk.skipped.map((s) => [s.path, s]));
      let decided = 0;
      for (const { path: p, kind } of await everyPath(ws)) {
        const one = discoverPaths(ws, [p], options);
        if (kind === 'dir' && !one.walkNeeded) {
          // A folder inside a left-out folder: absent, and so is everything under it.
          assert.deepEqual(one.absent, [p]);
          assert.ok(!walk.files.some((f) => f.path.startsWith(`${p}/`)), p);
          continue;
        }
        if (kind !== 'file' || p.endsWith('/.gitignore') || p === '.gitignore') {
          assert.ok(one.walkNeeded, `${p} (${kind}) needs a walk`);
          continue;
        }
        assert.equal(one.walkNeeded, undefined, p);
        decided++;
        const f = files.get(p);
        const s = skipped.get(p);
        if (f) assert.deepEqual(one.files, [f], p);
        else if (s) assert.deepEqual(one.skipped, [s], p);
        else assert.deepEqual(one.absent, [p], `${p}: left out by the walk, absent here`);
      }
      assert.ok(decided >= 20, `${decided} files compared`);
      // A path that does not exist, one outside the root, and several at once.
      assert.deepEqual(discoverPaths(ws, ['src/gone.ts'], options).absent, ['src/gone.ts']);
      assert.deepEqual(discoverPaths(ws, ['../elsewhere.ts', path.join(ws, 'src/math.ts')], options), { files: [], skipped: [], absent: [] });
      const several = discoverPaths(ws, [...files.keys()], options);
      assert.deepEqual(several.files, walk.files);
    });
  }
});

describe('a refresh given the saved paths', () => {
  test('re-indexes only the named files, without a walk, to the index a walk gives', async () => {
    const ws = await plainWorkspace();
    const storage = await fs.mkdtemp(path.join(os.tmpdir(), 'el-paths-'));
    cleanup.push(storage);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder, chunkTokens: 64 });

    // The first refresh of an indexer walks even when given paths (changes made while it was closed).
    await fs.appendFile(path.join(ws, 'src/math.ts'), '\nexport const early = 1;\n');
    const first = await indexer.refresh({ paths: ['src/math.ts'] });
    assert.equal(first.onlyPaths, undefined, 'walked');
    assert.ok(first.filesIndexed > 5);

    // A save of one file: only it is looked at (absolute or relative paths).
    await fs.appendFile(path.join(ws, 'src/math.ts'), '\nexport function tripleIt(x: number): number {\n  return 3 * x;\n}\n');
    await fs.appendFile(path.join(ws, 'src/server.go'), '\n// changed by another tool, not saved in the editor\n');
    const saved = await indexer.refresh({ paths: [path.join(ws, 'src/math.ts')] });
    assert.equal(saved.onlyPaths, 1);
    assert.equal(saved.filesSeen, 1);
    assert.equal(saved.filesIndexed, 1);
    assert.ok(saved.chunksEmbedded >= 1);
    assert.ok(indexer.store.recordsOfPath('src/math.ts').length > 0);

    // New file, deleted file, a file in an ignored folder, a skipped one, a file that is unchanged.
    await fs.writeFile(path.join(ws, 'src/fresh.ts'), 'export function freshlyMade(): string {\n  return "new";\n}\n');
    await fs.rm(path.join(ws, 'src/http_client.py'));
    await fs.mkdir(path.join(ws, 'node_modules/dep2'), { recursive: true });
    await fs.writeFile(path.join(ws, 'node_modules/dep2/index.js'), 'module.exports = 2;\n');
    await fs.writeFile(path.join(ws, 'src/blob.bin'), Buffer.from([1, 2, 3]));
    const many = await indexer.refresh({ paths: ['src/fresh.ts', 'src/http_client.py', 'node_modules/dep2/index.js', 'src/blob.bin', 'src/math.ts'] });
    assert.equal(many.onlyPaths, 5);
    assert.equal(many.filesIndexed, 1);
    assert.equal(many.filesRemoved, 1);
    assert.equal(many.filesUnchanged, 1);
    assert.deepEqual(many.skipped.map((s) => [s.path, s.reason]), [['src/blob.bin', 'binary']]);
    assert.equal(indexer.catalog.get('src/http_client.py'), undefined);
    assert.equal(indexer.store.recordsOfPath('src/http_client.py').length, 0);
    assert.equal(indexer.catalog.get('node_modules/dep2/index.js'), undefined);
    assert.equal(indexer.store.count, many.chunksTotal);

    // A walk afterwards finds only what no save named (server.go), and the index equals a fresh one's.
    const walk = await indexer.refresh();
    assert.equal(walk.onlyPaths, undefined);
    assert.equal(walk.filesIndexed, 1);
    assert.equal(walk.filesRemoved, 0);
    const fresh = await WorkspaceIndexer.open({ root: ws, storageDir: await fs.mkdtemp(path.join(os.tmpdir(), 'el-paths-fresh-')), embedder, chunkTokens: 64 });
    cleanup.push(fresh.storeDir);
    await fresh.refresh();
    const ids = (ix: WorkspaceIndexer) => [...ix.catalog.paths()].sort().flatMap((p) => ix.catalog.get(p)!.chunks.map((c) => c.id));
    assert.deepEqual(ids(indexer), ids(fresh), 'the same chunks as an index built from scratch');
    assert.equal(indexer.store.count, fresh.store.count, 'no chunk lost or duplicated in the store');
    assert.equal(indexer.lexical.size, fresh.lexical.size);

    // A .gitignore or a folder among the paths: the rules may decide other files, so the folder is walked.
    await fs.appendFile(path.join(ws, '.gitignore'), '\nsrc/fresh.ts\n');
    const rules = await indexer.refresh({ paths: ['.gitignore'] });
    assert.equal(rules.onlyPaths, undefined);
    assert.equal(rules.filesRemoved, 1, 'the newly ignored file is removed');
    const folder = await indexer.refresh({ paths: ['src'] });
    assert.equal(folder.onlyPaths, undefined);
    // A deleted folder named as a path: its files go (a walk).
    await fs.rm(path.join(ws, 'src/nested'), { recursive: true });
    const gone = await indexer.refresh({ paths: ['src/nested'] });
    assert.equal(gone.onlyPaths, undefined);
    assert.ok(gone.filesRemoved >= 1 && ![...indexer.catalog.paths()].some((p) => p.startsWith('src/nested/')));
  });

  test('a folder reached through a symbolic link: paths are not trusted, the folder is walked', async () => {
    const ws = await plainWorkspace();
    await fs.symlink('src/nested', path.join(ws, 'linked'));
    const storage = await fs.mkdtemp(path.join(os.tmpdir(), 'el-paths-'));
    cleanup.push(storage);
    const indexer = await WorkspaceIndexer.open({ root: ws, storageDir: storage, embedder, chunkTokens: 64 });
    await indexer.refresh();
    await fs.appendFile(path.join(ws, 'src/math.ts'), '\n// edited\n');
    const s = await indexer.refresh({ paths: ['src/math.ts'] });
    assert.equal(s.onlyPaths, undefined);
    assert.equal(s.filesIndexed, 1);
  });
});
