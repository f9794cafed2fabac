// The sentence-transformers recipe reader, on the real all-MiniLM-L6-v2 folder (when ../shared has it),
// on a fixture folder the generator writes, and on hand-written folders for the cases those two lack.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeSource, readSentenceTransformersConfig, SentenceTransformersConfigError } from '../../src/core/model/sentenceTransformersConfig';
import { ensureFixtureModel, FIXTURE_MODELS } from '../fixtures/generate';

const MINILM = path.resolve(__dirname, '..', '..', '..', 'shared', 'models', 'all-MiniLM-L6-v2');

function tempFolder(files: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-config-'));
  for (const [name, value] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  }
  return dir;
}

const MODULES = [
  { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
];
const poolingFlags = (on: string) => ({
  word_embedding_dimension: 8,
  pooling_mode_cls_token: on === 'cls',
  pooling_mode_mean_tokens: on === 'mean',
  pooling_mode_max_tokens: on === 'max',
  pooling_mode_mean_sqrt_len_tokens: on === 'sqrt',
  pooling_mode_weightedmean_tokens: false,
  pooling_mode_lasttoken: on === 'lasttoken',
  include_prompt: true,
});

describe('sentence-transformers recipe of a model folder', () => {
  test('all-MiniLM-L6-v2 (../shared): mean, normalized, 256 tokens, no prompts', { skip: !fs.existsSync(path.join(MINILM, 'modules.json')) && `${MINILM} is absent` }, () => {
    const c = readSentenceTransformersConfig(MINILM);
    assert.equal(c.hasModules, true);
    assert.deepEqual(c.modules.map((m) => m.kind), ['Transformer', 'Pooling', 'Normalize']);
    assert.deepEqual(c.pooling, { value: 'mean', file: '1_Pooling/config.json', key: 'pooling_mode_mean_tokens' });
    assert.equal(c.normalize?.value, true);
    assert.equal(c.normalize?.file, 'modules.json');
    assert.deepEqual(c.maxSeqLength, { value: 256, file: 'sentence_bert_config.json', key: 'max_seq_length' });
    assert.equal(c.queryPrompt, undefined);
    assert.equal(c.documentPrompt, undefined);
    assert.equal(c.similarity?.value, 'cosine');
    assert.deepEqual(c.unsupported, []);
    assert.equal(`pooling ${c.pooling!.value}, ${describeSource(c.pooling!)}`, "pooling mean, from the model's 1_Pooling/config.json (pooling_mode_mean_tokens)");
  });

  test('a generated fixture folder (distilbert-tiny) reads back what the generator wrote', () => {
    const spec = FIXTURE_MODELS.find((m) => m.name === 'distilbert-tiny')!;
    const { dir } = ensureFixtureModel(spec);
    const c = readSentenceTransformersConfig(dir);
    assert.equal(c.pooling?.value, spec.sentenceTransformers!.pooling);
    assert.equal(c.normalize?.value, spec.sentenceTransformers!.normalize);
    assert.equal(c.maxSeqLength?.value, spec.sentenceTransformers!.maxSeqLength);
    assert.deepEqual(c.unsupported, []);
  });

  test('a plain Hugging Face folder has no recipe', () => {
    const c = readSentenceTransformersConfig(tempFolder({ 'config.json': { model_type: 'bert' } }));
    assert.equal(c.hasModules, false);
    assert.equal(c.pooling, undefined);
    assert.equal(c.normalize, undefined);
    assert.deepEqual(c.unsupported, []);
  });

  test('Qwen3-Embedding-style: last token, normalized, query instruction, empty document prompt', () => {
    const query = 'Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:';
    const c = readSentenceTransformersConfig(tempFolder({
      'modules.json': [...MODULES, { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }],
      '1_Pooling/config.json': poolingFlags('lasttoken'),
      'config_sentence_transformers.json': { prompts: { query, document: '' }, default_prompt_name: null, similarity_fn_name: 'cosine' },
    }));
    assert.deepEqual(c.pooling, { value: 'last', file: '1_Pooling/config.json', key: 'pooling_mode_lasttoken' });
    assert.equal(c.normalize?.value, true);
    assert.deepEqual(c.queryPrompt, { value: query, file: 'config_sentence_transformers.json', key: 'prompts.query' });
    assert.deepEqual(c.documentPrompt, { value: '', file: 'config_sentence_transformers.json', key: 'prompts.document' });
    assert.deepEqual(c.unsupported, []);
  });

  test('bge-style CLS without Normalize; e5-style passage prompt name', () => {
    const c = readSentenceTransformersConfig(tempFolder({
      'modules.json': MODULES,
      '1_Pooling/config.json': poolingFlags('cls'),
      'config_sentence_transformers.json': { prompts: { query: 'query: ', passage: 'passage: ' } },
    }));
    assert.equal(c.pooling?.value, 'cls');
    assert.deepEqual(c.normalize, { value: false, file: 'modules.json', key: 'no Normalize module' });
    assert.equal(c.documentPrompt?.value, 'passage: ');
    assert.equal(c.documentPrompt?.key, 'prompts.passage');
  });

  test('the newer string form `pooling_mode` is read', () => {
    const c = readSentenceTransformersConfig(tempFolder({ 'modules.json': MODULES, '1_Pooling/config.json': { pooling_mode: 'max' } }));
    assert.deepEqual(c.pooling, { value: 'max', file: '1_Pooling/config.json', key: 'pooling_mode' });
  });

  test('what the engine cannot reproduce is named, with file and key', () => {
    const c = readSentenceTransformersConfig(tempFolder({
      'modules.json': [...MODULES, { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' }],
      '1_Pooling/config.json': poolingFlags('sqrt'),
    }));
    assert.equal(c.pooling, undefined);
    assert.ok(c.unsupported.some((u) => u.includes('1_Pooling/config.json') && u.includes('pooling_mode_mean_sqrt_len_tokens')), c.unsupported.join('; '));
    assert.ok(c.unsupported.some((u) => u.includes('sentence_transformers.models.Dense') && u.includes('2_Dense')), c.unsupported.join('; '));

    const two = readSentenceTransformersConfig(tempFolder({ 'modules.json': MODULES, '1_Pooling/config.json': { ...poolingFlags('cls'), pooling_mode_mean_tokens: true } }));
    assert.equal(two.pooling, undefined);
    assert.match(two.unsupported.join('\n'), /pooling_mode_cls_token \+ pooling_mode_mean_tokens \(several pooling modes concatenated\)/);

    const missing = readSentenceTransformersConfig(tempFolder({ 'modules.json': MODULES }));
    assert.match(missing.unsupported.join('\n'), /Pooling module at "1_Pooling" but 1_Pooling\/config.json is missing/);

    const noPrompt = readSentenceTransformersConfig(tempFolder({ 'modules.json': MODULES, '1_Pooling/config.json': { ...poolingFlags('mean'), include_prompt: false } }));
    assert.equal(noPrompt.pooling?.value, 'mean');
    assert.match(noPrompt.unsupported.join('\n'), /include_prompt false/);
  });

  test('unreadable JSON throws, naming the file', () => {
    const dir = tempFolder({ 'modules.json': '[{"idx": 0,' });
    assert.throws(() => readSentenceTransformersConfig(dir), (err: Error) => err instanceof SentenceTransformersConfigError && err.message.includes(path.join(dir, 'modules.json')));
  });
});
