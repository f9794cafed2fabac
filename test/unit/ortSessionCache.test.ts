// The ORT-format session cache (src/core/model/ortSessionCache.ts): the first load of a model saves the
// graph ORT built; later loads make their session from that file in place, with the same vectors to the
// bit; a damaged file or record is never used (the session comes from the model, and the entry is
// written anew); no records, no cache; another model, another entry.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { checkedReadOptions } from '../../src/core/store/checkedRead';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-ortcache-'));
before(() => ensureFixtureModels());
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TEXTS = ['the ORT session cache', 'function add(a, b) { return a + b; }'];

/** Loads `model`, embeds TEXTS, and returns the vectors and the cache's debug lines. */
async function embed(model: string, selfCheckDir: string | false): Promise<{ cache: string[]; vectors: Float32Array }> {
  const cache: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: (m: string) => { if (/ORT graph/.test(m)) cache.push(m); } };
  const ex = await Extractor.load({ model, selfCheckDir, logger });
  try {
    const r = await ex.extract(TEXTS, { layer: 'last', pool: 'mean' });
    return { cache, vectors: r.data };
  } finally {
    await ex.dispose();
  }
}

const entries = (dir: string) => fs.readdirSync(path.join(dir, 'ort-sessions')).filter((f) => f.endsWith('.json')).sort();

describe('ORT-format session cache', () => {
  test('saved by the first load, used by the next with the same vectors; a damaged file or record is never used', async () => {
    const dir = path.join(tmp, 'checks');
    const model = fixtureModelDir('bert-tiny');
    const reference = await embed(model, false); // no records: the session from the .onnx, nothing cached
    assert.deepEqual(reference.cache, []);
    const first = await embed(model, dir);
    assert.deepEqual(first.vectors, reference.vectors);
    assert.deepEqual(first.cache, [], 'the first load makes its session from the model');
    const [record] = entries(dir);
    assert.ok(record, 'an entry was written');
    const ortFile = path.join(dir, 'ort-sessions', record.replace(/\.json$/, '.ort'));
    const saved = fs.readFileSync(ortFile);
    assert.equal(saved.subarray(4, 8).toString(), 'ORTM', 'the file is in ORT format');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'ort-sessions', record), 'utf8')).bytes, saved.length);

    const second = await embed(model, dir);
    assert.equal(second.cache.length, 1);
    assert.match(second.cache[0], /cached ORT graph .* used/);
    assert.deepEqual(second.vectors, reference.vectors, 'the same vectors to the bit');

    // The same through the checking thread (large graphs are checked there).
    const threshold = checkedReadOptions.offThreadMinBytes;
    checkedReadOptions.offThreadMinBytes = 0;
    try {
      const offThread = await embed(model, dir);
      assert.match(offThread.cache.join('\n'), /cached ORT graph .* used/);
      assert.deepEqual(offThread.vectors, reference.vectors);

      // A flipped byte (in a weight: the file is mostly weights) is caught by the checksum before ORT reads it.
      const bad = Buffer.from(saved);
      bad[bad.length >> 1] ^= 0x10;
      fs.writeFileSync(ortFile, bad);
      const flipped = await embed(model, dir);
      assert.match(flipped.cache.join('\n'), /does not match its record \(checksum\)/);
      assert.doesNotMatch(flipped.cache.join('\n'), /used/);
      assert.deepEqual(flipped.vectors, reference.vectors);
    } finally {
      checkedReadOptions.offThreadMinBytes = threshold;
    }
    // ...and the entry was written anew: the next load uses it.
    const rewritten = await embed(model, dir);
    assert.match(rewritten.cache.join('\n'), /cached ORT graph .* used/);
    assert.deepEqual(rewritten.vectors, reference.vectors);

    // A file cut short, and a damaged record: not used either.
    fs.writeFileSync(ortFile, saved.subarray(0, saved.length - 16));
    const cut = await embed(model, dir);
    assert.match(cut.cache.join('\n'), /does not match its record \(size\)/);
    assert.deepEqual(cut.vectors, reference.vectors);
    fs.writeFileSync(path.join(dir, 'ort-sessions', record), '{"format":"embedding-lens-ort-session","key":');
    const noRecord = await embed(model, dir);
    assert.doesNotMatch(noRecord.cache.join('\n'), /used/);
    assert.deepEqual(noRecord.vectors, reference.vectors);
    assert.match((await embed(model, dir)).cache.join('\n'), /used/, 'the record was written anew');
    assert.deepEqual(entries(dir), [record]);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'ort-sessions')).filter((f) => !/^[0-9a-f]{32}\.(ort|json)$/.test(f)), [], 'no temporary files left');
  });

  test('an entry of the same model and outputs under another key (another ONNX Runtime, build or CPU) is removed when the new one is written', async () => {
    const dir = path.join(tmp, 'superseded');
    const cache = path.join(dir, 'ort-sessions');
    await embed(fixtureModelDir('bert-tiny'), dir);
    await embed(fixtureModelDir('distilbert-tiny'), dir);
    const [bert, distil] = [fixtureModelDir('bert-tiny'), fixtureModelDir('distilbert-tiny')];
    const records = entries(dir).map((f) => ({ f, r: JSON.parse(fs.readFileSync(path.join(cache, f), 'utf8')) }));
    assert.equal(records.length, 2);
    assert.notEqual(records[0]!.r.modelSha256, records[1]!.r.modelSha256);
    // One entry as an older ONNX Runtime would have left it: another key, the same model and outputs.
    const { f, r } = records[0]!;
    const oldKey = 'f'.repeat(32);
    fs.renameSync(path.join(cache, f.replace('.json', '.ort')), path.join(cache, `${oldKey}.ort`));
    fs.writeFileSync(path.join(cache, `${oldKey}.json`), JSON.stringify({ ...r, key: oldKey, onnxruntime: { node: '0.0.1' } }));
    fs.rmSync(path.join(cache, f));
    // Loading both models again: the one whose entry moved writes it anew under its key, and removes the old one.
    await embed(bert, dir);
    await embed(distil, dir);
    assert.deepEqual(entries(dir), records.map((x) => x.f).sort());
    assert.ok(!fs.existsSync(path.join(cache, `${oldKey}.ort`)) && !fs.existsSync(path.join(cache, `${oldKey}.json`)), 'the superseded entry is gone');
  });

  test('another model (other bytes) gets its own entry', async () => {
    const dir = path.join(tmp, 'two');
    await embed(fixtureModelDir('bert-tiny'), dir);
    await embed(fixtureModelDir('distilbert-tiny'), dir);
    assert.equal(entries(dir).length, 2);
    // A copy of bert-tiny with one weight changed (same size) is another model: a new entry, not the old one.
    const copy = fs.mkdtempSync(path.join(tmp, 'bert-'));
    fs.cpSync(fixtureModelDir('bert-tiny'), copy, { recursive: true });
    const onnx = path.join(copy, 'onnx', 'model.onnx');
    const b = fs.readFileSync(onnx);
    b[b.length >> 1] ^= 0x01;
    fs.writeFileSync(onnx, b);
    const changed = await embed(copy, dir);
    assert.doesNotMatch(changed.cache.join('\n'), /used/);
    assert.equal(entries(dir).length, 3);
  });
});

describe('graph facts record (a load that neither reads nor decodes the .onnx)', () => {
  async function load(model: string, selfCheckDir: string, layers: ('last' | '-2')[] = ['last']) {
    const lines: string[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: (m: string) => { lines.push(m); } };
    const ex = await Extractor.load({ model, selfCheckDir, logger });
    try {
      const vectors = [];
      for (const layer of layers) vectors.push((await ex.extract(TEXTS, { layer, pool: 'mean' })).data);
      return { fromRecord: lines.some((l) => /graph facts .* from their record/.test(l)), info: ex.info, vectors };
    } finally {
      await ex.dispose();
    }
  }

  test('the same model, info and vectors from the record; another config.json, or a damaged record, derives them again', async () => {
    const dir = path.join(tmp, 'facts');
    const copy = fs.mkdtempSync(path.join(tmp, 'facts-bert-'));
    fs.cpSync(fixtureModelDir('bert-tiny'), copy, { recursive: true });
    const first = await load(copy, dir, ['last', '-2']);
    assert.equal(first.fromRecord, false);
    const second = await load(copy, dir, ['last', '-2']); // -2: a variant, built from the .onnx read then
    assert.equal(second.fromRecord, true);
    assert.deepEqual(second.info, first.info);
    assert.deepEqual(second.vectors, first.vectors);
    const records = fs.readdirSync(path.join(dir, 'graph-facts'));
    assert.equal(records.length, 1);
    fs.writeFileSync(path.join(dir, 'graph-facts', records[0]), '{"format":"embedding-lens-graph-facts","key":"');
    assert.equal((await load(copy, dir)).fromRecord, false, 'a damaged record is not used');
    assert.equal((await load(copy, dir)).fromRecord, true, 'and is written anew');
    const configFile = path.join(copy, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), note: 'changed' }));
    assert.equal((await load(copy, dir)).fromRecord, false, 'another config.json: derived again');
  });

  test('a graph read after a load from the record must still be the bytes the model was identified by', async () => {
    const dir = path.join(tmp, 'facts2');
    const copy = fs.mkdtempSync(path.join(tmp, 'facts-bert-'));
    fs.cpSync(fixtureModelDir('bert-tiny'), copy, { recursive: true });
    await load(copy, dir);
    const ex = await Extractor.load({ model: copy, selfCheckDir: dir });
    try {
      // The file changes under the loaded model (same size); a layer whose variant needs the graph is refused.
      const onnx = path.join(copy, 'onnx', 'model.onnx');
      const b = fs.readFileSync(onnx);
      b[b.length >> 1] ^= 0x01;
      fs.writeFileSync(onnx, b);
      await assert.rejects(ex.extract(TEXTS, { layer: '-2', pool: 'mean' }), /model\.onnx changed since the model was loaded/);
    } finally {
      await ex.dispose();
    }
  });
});
