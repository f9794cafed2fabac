// Bad input gets a clear message that says what is wrong and what to do — never a stack trace,
// never a quiet fallback.
import { create, toBinary } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ModelProtoSchema } from 'onnx-buf';
import { Extractor } from '../../src/core/extract/extractor';
import { decodeModel } from '../../src/core/model/onnxGraph';
import { UserError } from '../../src/core/types';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';

let tmp: string;
function copyModel(name: string): string {
  const dest = fs.mkdtempSync(path.join(tmp, `${name}-`));
  fs.cpSync(fixtureModelDir('bert-tiny'), dest, { recursive: true });
  return dest;
}
function editJson(file: string, edit: (o: Record<string, unknown>) => void): void {
  const obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(obj);
  fs.writeFileSync(file, JSON.stringify(obj));
}
async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('bad input', () => {
  let ex: Extractor;
  before(async () => {
    ensureFixtureModels();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bad-'));
    ex = await Extractor.load({ model: fixtureModelDir('bert-tiny') });
  });
  after(async () => {
    await ex.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('empty and whitespace-only texts', async () => {
    await rejectsWith(ex.extract(['fine', ''], { layer: 'last', pool: 'mean' }), /Text 2 of 2 is empty/);
    await rejectsWith(ex.extract(['  \n\t'], { layer: 'last', pool: 'mean' }), /only whitespace/);
    await rejectsWith(ex.inspect('   '), /selection is empty/);
  });

  test('unknown layer spec and pooling', async () => {
    await rejectsWith(ex.extract(['x'], { layer: '7', pool: 'mean' }), /layer 7 does not exist: this model has layers 0 \(embeddings\) to 4/);
    await rejectsWith(ex.extract(['x'], { layer: 'last', pool: 'avg' as never }), /Unknown pooling "avg".*mean, max, cls, last, none or words/s);
  });

  test('a model folder missing a file names the file', async () => {
    for (const file of ['tokenizer.json', 'config.json', path.join('onnx', 'model.onnx')]) {
      const dir = copyModel('missing');
      fs.rmSync(path.join(dir, file));
      await rejectsWith(Extractor.load({ model: dir }), new RegExp(`has no ${file.replace(/[\\/.]/g, '.')}`));
    }
    await rejectsWith(Extractor.load({ model: path.join(tmp, 'no-such-folder') }), /does not exist/);
  });

  test('an ONNX file without last_hidden_state', async () => {
    const dir = copyModel('no-output');
    const file = path.join(dir, 'onnx', 'model.onnx');
    const model = decodeModel(fs.readFileSync(file));
    const graph = model.graph!;
    for (const n of graph.node) n.output = n.output.map((o) => (o === 'last_hidden_state' ? 'logits' : o));
    graph.output[0].name = 'logits';
    fs.writeFileSync(file, toBinary(ModelProtoSchema, create(ModelProtoSchema, model)));
    await rejectsWith(Extractor.load({ model: dir }), /no "last_hidden_state" output \(it outputs: logits\)/);
  });

  test('a corrupt ONNX file', async () => {
    const dir = copyModel('corrupt');
    fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), Buffer.from('this is not protobuf at all'));
    await rejectsWith(Extractor.load({ model: dir }), /ONNX file could not be read/);
  });

  test('token ids beyond the embedding table (tokenizer and model do not match)', async () => {
    const dir = copyModel('vocab');
    editJson(path.join(dir, 'config.json'), (c) => { c.vocab_size = 50; });
    const small = await Extractor.load({ model: dir });
    try {
      await rejectsWith(small.extract(['zebra function returns'], { layer: 'last', pool: 'mean' }), /beyond the model's embedding table \(vocab_size 50\)/);
    } finally {
      await small.dispose();
    }
  });

  test('a causal-LM export (logits, no last_hidden_state) and an encoder-decoder model', async () => {
    // Decoders are read from their structure now (see modernArchitectures.test.ts); a generation head is not.
    const dir = copyModel('gpt');
    editJson(path.join(dir, 'config.json'), (c) => { c.model_type = 'gpt2'; c.architectures = ['GPT2LMHeadModel']; });
    const file = path.join(dir, 'onnx', 'model.onnx');
    const model = decodeModel(fs.readFileSync(file));
    for (const n of model.graph!.node) n.output = n.output.map((o) => (o === 'last_hidden_state' ? 'logits' : o));
    model.graph!.output[0].name = 'logits';
    fs.writeFileSync(file, toBinary(ModelProtoSchema, model));
    await rejectsWith(Extractor.load({ model: dir }), /no "last_hidden_state" output \(it outputs: logits\)/);
    const t5 = copyModel('t5');
    editJson(path.join(t5, 'config.json'), (c) => { c.model_type = 't5'; c.architectures = ['T5ForConditionalGeneration']; });
    await rejectsWith(Extractor.load({ model: t5 }), /is a t5 encoder-decoder model/);
  });

  test('config and graph that disagree on depth', async () => {
    const dir = copyModel('depth');
    editJson(path.join(dir, 'config.json'), (c) => { c.num_hidden_layers = 12; });
    await rejectsWith(Extractor.load({ model: dir }), /config.json says the model has 12 layers but its ONNX graph has 4/);
  });

  test('a hub id that is not cached while offline never falls back to another model', async () => {
    await rejectsWith(
      Extractor.load({ model: 'sentence-transformers/all-MiniLM-L6-v2', offline: true, cacheDir: path.join(tmp, 'empty-cache') }),
      /not in the cache .* downloads are off/s,
    );
  });
});
