// The catalog's segment format: entries round-trip exactly (skips, absent hashes, chunk refs), a save
// writes only the changed entries, counts come from the manifest without decoding, format 1 (one JSON)
// is read and rewritten, compaction leaves one segment, and damage is reported.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Catalog, CHUNKER_VERSION, type CatalogEntry } from '../../src/core/index/catalog';
import type { RecipeIdentity } from '../../src/core/types';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-catalog-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const identity: RecipeIdentity = { model: 'm', modelHash: 'h', layer: 'last', pooling: 'mean', normalize: true, dims: 8 };
const chunking = { version: CHUNKER_VERSION, maxTokens: 256, overlapLines: 2, scale: 1.25 };

function entry(i: number): CatalogEntry {
  if (i % 10 === 3) return { size: i, mtimeMs: 1.5e12 + i + 0.25, skip: { reason: 'binary' }, chunks: [] };
  if (i % 10 === 7) return { size: i, mtimeMs: 1.5e12 + i, skip: { reason: 'too-large', detail: `${i} KiB > 1 MiB ✓` }, chunks: [] };
  return {
    size: 100 + i, mtimeMs: 1.7e12 + i * 1000.125, hash: `hash${i}`,
    chunks: Array.from({ length: i % 4 }, (_, c) => ({ id: `src/f${i}.ts#L${c}-L${c + 5}@x${c}`, startLine: c + 1, endLine: c + 5, contentHash: `x${c}` })),
  };
}

const open = (file: string) => Catalog.open(file, { identity, chunking, root: '/r' });
const segs = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.seg')).sort();

describe('catalog segments', () => {
  it('round-trips entries; a save writes the change only; counts without decoding; compaction', async () => {
    const dir = path.join(tmp, 'a');
    const file = path.join(dir, 'catalog.json');
    const { catalog } = await open(file);
    const want = new Map<string, CatalogEntry>();
    for (let i = 0; i < 200; i++) {
      catalog.set(`src/f${i}.ts`, entry(i));
      want.set(`src/f${i}.ts`, entry(i));
    }
    catalog.complete = true;
    await catalog.save();
    const first = fs.statSync(path.join(dir, segs(dir)[0])).size;
    const c2 = (await open(file)).catalog;
    assert.deepEqual(c2.counts(), { files: 160, skipped: 40, chunks: [...want.values()].reduce((s, e) => s + e.chunks.length, 0) });
    assert.equal(c2.complete, true);
    // Edit one entry, delete one: the new segment holds those two paths only.
    c2.set('src/f5.ts', entry(9));
    want.set('src/f5.ts', entry(9));
    c2.delete('src/f6.ts');
    want.delete('src/f6.ts');
    await c2.save();
    assert.equal(segs(dir).length, 2);
    assert.ok(fs.statSync(path.join(dir, segs(dir)[1])).size < first / 20, 'the second segment holds only the change');
    const c3 = (await open(file)).catalog;
    assert.deepEqual(new Map(c3.paths().map((p) => [p, c3.get(p)])), want);
    assert.deepEqual(c3.counts(), (await open(file)).catalog.counts(), 'manifest counts equal decoded counts');
    await c3.save({ compact: true });
    assert.equal(segs(dir).length, 1);
    const c4 = (await open(file)).catalog;
    assert.deepEqual(new Map(c4.paths().map((p) => [p, c4.get(p)])), want);
  });

  it('reads format 1 and rewrites it; damage and a newer format are clear errors', async () => {
    const dir = path.join(tmp, 'b');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'catalog.json');
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, entry(i)]));
    fs.writeFileSync(file, JSON.stringify({ formatVersion: 1, tool: 'embedding-lens', identity, chunking, root: '/r', updatedAt: '', complete: true, files }));
    const { catalog } = await open(file);
    assert.deepEqual(catalog.get('f7'), entry(7));
    await catalog.save();
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).formatVersion, 2);
    const back = (await open(file)).catalog;
    assert.deepEqual(Object.fromEntries(back.paths().map((p) => [p, back.get(p)])), files);
    const seg = path.join(dir, segs(dir)[0]);
    const bytes = fs.readFileSync(seg);
    bytes[bytes.length - 20] ^= 4;
    fs.writeFileSync(seg, bytes);
    await assert.rejects(open(file), /catalog segment .*catalog\.\d+\.seg is corrupt \(checksum mismatch\)/);
    fs.writeFileSync(seg, bytes.subarray(0, 100));
    await assert.rejects(open(file), /is truncated/);
    fs.writeFileSync(file, JSON.stringify({ formatVersion: 9 }));
    await assert.rejects(open(file), /newer version of embedding-lens \(catalog format 9/);
  });
});
