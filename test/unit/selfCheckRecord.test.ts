// The self-check's record (EncoderModel.checkedOnce): a pass is recorded under a key of the model's bytes,
// ONNX Runtime and the check's code, and a later load of the same model skips the second ONNX session;
// another model, or a damaged record, runs the check again; a failing model is refused every time.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Extractor } from '../../src/core/extract/extractor';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-selfcheck-'));
before(() => ensureFixtureModels());
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Loads `model`, embeds one text, and returns the ONNX sessions it created (their debug lines) and the vector. */
async function embedOnce(model: string, selfCheckDir: string): Promise<{ sessions: string[]; vector: Float32Array }> {
  const sessions: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: (m: string) => { if (m.startsWith('ONNX session')) sessions.push(m); } };
  const ex = await Extractor.load({ model, selfCheckDir, logger });
  try {
    const r = await ex.extract(['the self-check record'], { layer: 'last', pool: 'mean' });
    return { sessions, vector: r.data };
  } finally {
    await ex.dispose();
  }
}

describe('the self-check record', () => {
  test('a pass is recorded; the next load of the same bytes skips the all-states session and gives the same vector', async () => {
    const dir = path.join(tmp, 'records');
    const first = await embedOnce(fixtureModelDir('bert-tiny'), dir);
    assert.equal(first.sessions.length, 2, `the check's session (every hidden state) and the recipe's: ${first.sessions.join('; ')}`);
    const records = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.equal(records.length, 1);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, records[0]), 'utf8')).passed, true);
    const second = await embedOnce(fixtureModelDir('bert-tiny'), dir);
    assert.equal(second.sessions.length, 1, `only the recipe's session: ${second.sessions.join('; ')}`);
    assert.deepEqual(second.vector, first.vector);

    // A damaged record is not trusted: the check runs again and writes it anew.
    fs.writeFileSync(path.join(dir, records[0]), '{"format":"embedding-lens-self-check","passed":tr');
    const third = await embedOnce(fixtureModelDir('bert-tiny'), dir);
    assert.equal(third.sessions.length, 2);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, records[0]), 'utf8')).passed, true);
  });

  test('a model file\'s sha256 is remembered per file identity: the same bytes give the same identity, a changed byte of the same size a new one', async () => {
    const dir = path.join(tmp, 'records3');
    const copy = fs.mkdtempSync(path.join(tmp, 'bert-'));
    fs.cpSync(fixtureModelDir('bert-tiny'), copy, { recursive: true });
    const identity = async () => {
      const ex = await Extractor.load({ model: copy, selfCheckDir: dir });
      try {
        return ex.identity({ layer: 'last', pool: 'mean', normalize: true }).modelHash;
      } finally {
        await ex.dispose();
      }
    };
    const digests = () => fs.readdirSync(path.join(dir, 'digests')).length;
    const first = await identity();
    assert.equal(digests(), 1);
    assert.equal(await identity(), first, 'from the record');
    assert.equal(digests(), 1);
    // Same bytes, rewritten (new mtime and ctime): hashed again, same hash.
    const file = path.join(copy, 'onnx', 'model.onnx');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes);
    assert.equal(await identity(), first);
    assert.equal(digests(), 2);
    // One weight byte changed, same size: a new hash (never the remembered one).
    const model = fromBinary(ModelProtoSchema, bytes);
    const w = model.graph!.initializer.find((t) => t.rawData.length > 16)!;
    w.rawData[5] ^= 0x01;
    const changed = toBinary(ModelProtoSchema, model);
    assert.equal(changed.length, bytes.length);
    fs.writeFileSync(file, changed);
    const third = await identity();
    assert.notEqual(third, first);
    assert.equal(digests(), 3);

    // Temp files of writers killed before their rename: the next record sweeps the stale ones (the
    // shared helper's names and the `<file>.<pid>.tmp` names of earlier builds), never a fresh one
    // that a live process may be about to rename.
    const digestDir = path.join(dir, 'digests');
    const old = Date.now() / 1000 - 3600;
    const stale = ['.0123456789abcdef0123456789abcdef.json.tmp-4242-deadbeef', '0123456789abcdef0123456789abcdef.json.4242.tmp'];
    for (const name of stale) {
      fs.writeFileSync(path.join(digestDir, name), '{"key":');
      fs.utimesSync(path.join(digestDir, name), old, old);
    }
    const fresh = '.fedcba9876543210fedcba9876543210.json.tmp-4243-cafebabe';
    fs.writeFileSync(path.join(digestDir, fresh), '{"key":');
    fs.writeFileSync(file, changed);
    assert.equal(await identity(), third);
    const left = fs.readdirSync(digestDir);
    for (const name of stale) assert.ok(!left.includes(name), `${name} swept`);
    assert.ok(left.includes(fresh), 'a fresh temp file is left to its writer');
    assert.equal(left.filter((n) => n.endsWith('.json')).length, 4);
  });

  test('one changed weight is another key: its check runs, and a model that fails it is refused every time', async () => {
    const dir = path.join(tmp, 'records2');
    await embedOnce(fixtureModelDir('qwen3-tiny'), dir);
    const copy = fs.mkdtempSync(path.join(tmp, 'qwen3-'));
    fs.cpSync(fixtureModelDir('qwen3-tiny'), copy, { recursive: true });
    const file = path.join(copy, 'onnx', 'model.onnx');
    const model = fromBinary(ModelProtoSchema, fs.readFileSync(file));
    for (const t of model.graph!.initializer) {
      if (t.name === 'layers.1.self_attn.o_proj.weight' || t.name === 'layers.1.mlp.down_proj.weight') t.rawData = new Uint8Array(t.rawData.length);
    }
    fs.writeFileSync(file, toBinary(ModelProtoSchema, model));
    for (let i = 0; i < 2; i++) await assert.rejects(embedOnce(copy, dir), /Self-check failed for this qwen3 model/);
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.json')).length, 1, 'only the passing model has a record');
  });
});
