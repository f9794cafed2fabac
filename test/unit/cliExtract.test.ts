// The CLI as a user runs it (the built bundle, a child process), with numpy reading what it wrote.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const PYTHON = '/usr/bin/python3';
const hasNumpy = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

suiteRequiring('embedding-lens extract (CLI)', !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) && 'dist/cli.js missing: run `npm run build` first', () => {
  let tmp: string;
  let model: string;
  before(() => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const texts = ['def add(a, b): return a + b', 'getUserName returns the user name', 'hello'];

  test('writes .npy rows in input order that numpy reads, plus the manifest beside it', { skip: !hasNumpy && `${PYTHON} with numpy not found: skipped the numpy read` }, async () => {
    const input = path.join(tmp, 'in.txt');
    fs.writeFileSync(input, texts.join('\n') + '\n');
    const out = path.join(tmp, 'out.npy');
    const r = cli(['extract', '--model', model, '--layer', '-2', '--pool', 'mean', '--normalize', '--input', input, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const py = spawnSync(PYTHON, ['-c', 'import numpy as np, sys, json; a = np.load(sys.argv[1]); print(json.dumps({"shape": a.shape, "dtype": str(a.dtype), "rows": a.tolist()}))', out], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const loaded = JSON.parse(py.stdout);
    assert.deepEqual(loaded.shape, [3, 32]);
    assert.equal(loaded.dtype, 'float32');
    // Same numbers as the engine computes in-process, row for row.
    const ex = await Extractor.load({ model });
    const want = await ex.extract(texts, { layer: '-2', pool: 'mean', normalize: true });
    await ex.dispose();
    loaded.rows.forEach((rowValues: number[], i: number) => rowValues.forEach((v, d) => assert.ok(Math.abs(v - want.data[i * 32 + d]) < 1e-6)));
    const manifest = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
    assert.equal(manifest.layer, '-2');
    assert.deepEqual(manifest.layers, [3]);
    assert.equal(manifest.pooling, 'mean');
    assert.equal(manifest.normalize, true);
    assert.equal(manifest.dims, 32);
    assert.equal(manifest.count, 3);
    assert.equal(manifest.items.length, 3);
  });

  test('float16 output', { skip: !hasNumpy && 'numpy not found' }, () => {
    const out = path.join(tmp, 'half.npy');
    const r = cli(['extract', '--model', model, '--pool', 'cls', '--dtype', 'float16', '--text', texts[0], '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const py = spawnSync(PYTHON, ['-c', 'import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape)', out], { encoding: 'utf8' });
    assert.equal(py.stdout.trim(), 'float16 (1, 32)');
  });

  test('--pool none on one text: one row per token, tokens and offsets in the manifest', () => {
    const out = path.join(tmp, 'tokens.npy');
    const r = cli(['extract', '--model', model, '--pool', 'none', '--text', 'call getUserName', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
    assert.equal(manifest.count, 6);
    assert.deepEqual(manifest.items[0].tokens.map((t: { token: string }) => t.token), ['[CLS]', 'call', 'get', '##user', '##name', '[SEP]']);
    assert.deepEqual([manifest.items[0].tokens[3].start, manifest.items[0].tokens[3].end], [8, 12]);
  });

  test('--out - prints JSON; jsonl input with a chosen field', () => {
    const input = path.join(tmp, 'in.jsonl');
    fs.writeFileSync(input, texts.map((t) => JSON.stringify({ body: t })).join('\n'));
    const r = cli(['extract', '--model', model, '--pool', 'max', '--input', input, '--field', 'body', '--out', '-', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout);
    assert.equal(parsed.vectors.length, 3);
    assert.equal(parsed.vectors[0].length, 32);
    assert.equal(parsed.manifest.pooling, 'max');
  });

  test('bad input: clear message, exit code 1, no stack trace', () => {
    const blank = path.join(tmp, 'blank.txt');
    fs.writeFileSync(blank, 'one\n\nthree\n');
    const cases: [string[], RegExp][] = [
      [['extract', '--model', model, '--input', blank, '--out', path.join(tmp, 'b.npy')], /Line 2 of blank.txt is empty/],
      [['extract', '--model', model, '--layer', '12', '--text', 'x', '--out', '-'], /layer 12 does not exist: this model has layers 0 \(embeddings\) to 4/],
      [['extract', '--model', path.join(tmp, 'nope'), '--text', 'x', '--out', '-'], /does not exist/],
      [['extract', '--model', model, '--text', 'x', '--out', path.join(tmp, 'x.csv')], /Unknown output format ".csv"/],
      [['extract', '--model', model, '--text', 'x'], /No --out given/],
      [['extract', '--model', model, '--nope', '--out', '-'], /Unknown option '--nope'/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(args);
      assert.equal(r.code, 1, `${args.join(' ')}\n${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.equal(fs.existsSync(path.join(tmp, 'b.npy')), false, 'nothing half-written');
  });
});
