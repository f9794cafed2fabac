// The files extract and export write, read back: the one extension → format map (core/outputFormats.ts)
// used by extract, export and the editor; token-level .h5 counts that agree with the .json beside them;
// an exported index's .h5 with /text and its layers / model file; --truncate reporting the tokens
// embedded after the cut. Each file is read with the repo's reader and, where installed, with h5py.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extensionsOfFormat, OUTPUT_FORMAT_OF_EXTENSION, outputFormatOf, outputFormatOfName } from '../../src/core/outputFormats';
import { errorCode } from '../../src/core/errors';
import { readFaissIndex } from '../../src/core/store/faiss';
import { readH5 } from '../../src/core/store/hdf5';
import { readNpy } from '../../src/core/store/npy';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const SRC = path.join(ROOT, 'src');
const PYTHON = process.env.EMBEDDING_LENS_PYTHON ?? '/usr/bin/python3';
const cliMissing = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'dist/cli.js missing: run `npm run build` first';
const h5pyMissing = !fs.existsSync(PYTHON) ? `${PYTHON} not found (apt-get install -y python3-h5py)`
  : spawnSync(PYTHON, ['-c', 'import h5py'], { cwd: os.tmpdir() }).status !== 0 ? `${PYTHON} lacks h5py (apt-get install -y python3-h5py)` : false;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The .h5 as h5py sees it (test/interop/check_h5.py), or undefined when h5py is not installed. */
function h5py(file: string): { datasets: Record<string, { shape: number[]; values: unknown[] }>; attrs: Record<string, { value: unknown }> } | undefined {
  if (h5pyMissing) return undefined;
  const r = spawnSync(PYTHON, [path.join(ROOT, 'test/interop/check_h5.py'), file], { encoding: 'utf8', cwd: os.tmpdir(), maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-outputs-'));
  if (h5pyMissing) console.log(`# outputFiles: h5py checks skipped: ${h5pyMissing}`);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('one extension → format map', () => {
  test('every extension, any case; unknown ones refused naming the choices', () => {
    assert.deepEqual({ ...OUTPUT_FORMAT_OF_EXTENSION }, { '.npy': 'npy', '.h5': 'h5', '.hdf5': 'h5', '.faiss': 'faiss', '.index': 'faiss' });
    for (const [ext, format] of Object.entries(OUTPUT_FORMAT_OF_EXTENSION)) {
      assert.equal(outputFormatOf(`a/b${ext}`), format);
      assert.equal(outputFormatOf(`a/b${ext.toUpperCase()}`), format);
    }
    assert.deepEqual(extensionsOfFormat('h5'), ['h5', 'hdf5']);
    assert.deepEqual(extensionsOfFormat('faiss'), ['faiss', 'index']);
    assert.equal(outputFormatOfName('x.csv'), undefined);
    assert.equal(outputFormatOfName('x.constructor'), undefined, 'no prototype key is a format');
    for (const bad of ['x.csv', 'noext']) {
      assert.throws(() => outputFormatOf(bad), (e: Error) => errorCode(e) === 'BAD_INPUT' && /\.npy.*\.h5.*\.faiss/.test(e.message));
    }
  });

  test('no other source file spells the map (it existed three times and the copies disagreed)', () => {
    const copies: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && p !== path.join(SRC, 'core', 'outputFormats.ts')) {
          const text = fs.readFileSync(p, 'utf8');
          // A comparison with or a key of '.hdf5' / '.index', a `'.npy':` entry, or an `h5|hdf5` alternation.
          if (/['"]\.(hdf5|index)['"]|['"]\.(npy|h5|faiss)['"]\s*:|h5\|hdf5/.test(text)) copies.push(path.relative(ROOT, p));
        }
      }
    };
    walk(SRC);
    assert.deepEqual(copies, []);
  });
});

suiteRequiring('files written by extract and export, read back', cliMissing, () => {
  let model: string;
  before(() => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
  });

  test('extract: .hdf5 and .index are the formats the map names', async () => {
    const h5 = path.join(tmp, 'upper.HDF5');
    let r = cli(['extract', '--model', model, '--quiet', '--text', 'alpha beta', '--text', 'gamma', '--out', h5]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(fs.readFileSync(`${h5}.json`, 'utf8')).format, 'h5');
    assert.equal((await readH5(h5)).rows, 2);
    const faiss = path.join(tmp, 'vectors.index');
    r = cli(['extract', '--model', model, '--quiet', '--text', 'alpha beta', '--text', 'gamma', '--out', faiss]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(fs.readFileSync(`${faiss}.json`, 'utf8')).format, 'faiss');
    assert.equal((await readFaissIndex(faiss)).ntotal, 2);
    r = cli(['extract', '--model', model, '--quiet', '--text', 'x', '--out', path.join(tmp, 'x.csv')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unknown output format "\.csv"/);
  });

  for (const pool of ['none', 'words'] as const) {
    test(`extract --pool ${pool} to .h5: count = rows in the file = the .json's count; items = texts`, async () => {
      const out = path.join(tmp, `tokens-${pool}.h5`);
      const texts = ['getUserName returns the name', 'def add(a, b): return a + b', 'hello'];
      const r = cli(['extract', '--model', model, '--quiet', '--pool', pool, ...texts.flatMap((t) => ['--text', t]), '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      const side = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
      const rows = side.items.reduce((a: number, it: { rowCount: number }) => a + it.rowCount, 0);
      assert.ok(rows > texts.length, `${rows} ${pool === 'none' ? 'tokens' : 'words'}`);
      assert.equal(side.count, rows, 'the .json count is the rows');
      const mine = await readH5(out);
      assert.equal(mine.rows, rows);
      assert.equal(mine.attrs.count, rows);
      assert.equal(mine.attrs.items, texts.length);
      assert.equal(JSON.parse(mine.attrs.manifest_json as string).count, rows);
      assert.deepEqual(mine.text, texts);
      const theirs = h5py(out);
      if (theirs) {
        assert.deepEqual(theirs.datasets.tokens!.shape[0], rows, 'h5py: rows');
        assert.equal(theirs.attrs.count!.value, side.count, 'h5py: count = the .json count');
        assert.equal(theirs.attrs.items!.value, texts.length);
        assert.equal((theirs.datasets.token_offsets!.values as number[]).at(-1), rows);
      }
    });
  }

  test('--truncate reports the tokens embedded after the cut (= the token rows written)', async () => {
    const long = Array.from({ length: 12 }, (_, i) => `word${i} parse the http request`).join(' ');
    const out = path.join(tmp, 'cut.npy');
    const r = cli(['extract', '--model', model, '--pool', 'none', '--truncate', '--text', long, '--text', 'short text', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const side = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
    const [cut, short] = side.items;
    assert.equal(cut.truncated, true);
    assert.ok(cut.tokenCount > 32, `the long text has ${cut.tokenCount} tokens`);
    assert.equal(cut.embeddedTokens, 32, 'bert-tiny takes 32 positions');
    assert.equal(short.embeddedTokens, short.tokenCount);
    const npy = await readNpy(out);
    assert.equal(npy.shape[0], cut.embeddedTokens + short.embeddedTokens, 'rows written = tokens embedded');
    const m = /2 texts, (\d+) tokens embedded/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(Number(m[1]), npy.shape[0], 'the log says the tokens after the cut');
    assert.match(r.stderr, new RegExp(`1 text TRUNCATED to 32 tokens \\(--truncate; ${cut.tokenCount - 32} tokens cut off\\)`));
  });

  test('export of an index to .h5 / .hdf5 / .index: /text of every chunk, non-empty layers and model_file; a changed file is said, not guessed', async () => {
    const ws = path.join(tmp, 'ws');
    fs.mkdirSync(path.join(ws, 'src'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'src', 'a.py'), 'def add(a, b):\n    """Adds two numbers."""\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n');
    fs.writeFileSync(path.join(ws, 'README.md'), '# Tools\n\nSmall helpers for numbers.\n');
    let r = cli(['index', ws, '--model', model, '--quiet']);
    assert.equal(r.code, 0, r.stderr);

    const out = path.join(tmp, 'index.hdf5');
    r = cli(['export', '--from', ws, '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const side = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8'));
    const mine = await readH5(out);
    assert.equal(mine.rows, side.rows.length);
    assert.ok(mine.rows >= 2);
    // The text of each row, read here from the files by its path and lines.
    const expected = side.rows.map((row: { path: string; startLine: number; endLine: number }) =>
      fs.readFileSync(path.join(ws, row.path), 'utf8').split('\n').slice(row.startLine - 1, row.endLine).join('\n'));
    assert.deepEqual(mine.text, expected);
    assert.ok(expected.every((t: string) => t.trim().length > 0));
    assert.deepEqual(mine.attrs.layers, [4], 'bert-tiny: last = hidden state 4');
    assert.equal(mine.attrs.model_file, path.join('onnx', 'model.onnx'));
    assert.equal(mine.attrs.layer_combine, 'single');
    assert.equal(mine.attrs.count, mine.rows);
    const theirs = h5py(out);
    if (theirs) {
      assert.deepEqual(theirs.datasets.text!.values, expected, 'h5py: /text');
      assert.deepEqual(theirs.attrs.layers!.value, [4]);
      assert.equal(theirs.attrs.model_file!.value, path.join('onnx', 'model.onnx'));
    }

    // The map decides export formats too: .index is FAISS.
    r = cli(['export', '--from', ws, '--out', path.join(tmp, 'index.index'), '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readFaissIndex(path.join(tmp, 'index.index'))).ntotal, mine.rows);

    // A file edited after indexing: its chunks' /text stays empty and the export says so.
    fs.writeFileSync(path.join(ws, 'README.md'), '# Tools, renamed\n\nOther words now.\n');
    const again = path.join(tmp, 'stale.h5');
    r = cli(['export', '--from', ws, '--out', again]);
    assert.equal(r.code, 0, r.stderr);
    const stale = await readH5(again);
    const readmeRows = stale.paths.map((p, i) => [p, i] as const).filter(([p]) => p === 'README.md').map(([, i]) => i);
    assert.ok(readmeRows.length >= 1);
    for (let i = 0; i < stale.rows; i++) assert.equal(stale.text![i], readmeRows.includes(i) ? '' : expected[i]);
    assert.match(r.stderr, new RegExp(`${readmeRows.length} chunks? changed since indexing`));
  });
});
