// Recovery, as a user meets it: a real index (the CLI, the bert-tiny fixture model) is damaged one way
// at a time; `search` must fail with a message that names a command, and that very command (run as
// printed) must bring the index back, with the same results as before the damage.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { Workspace } from '../../src/core/workspace/workspace';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');
const built = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The command line the error's last line names (`…: node bin/embedding-lens.js index <folder> [--rebuild]`), as argv. */
function namedCommand(stderr: string): string[] {
  const m = /: node bin\/embedding-lens\.js (index \S+(?: --rebuild)?)\s*$/.exec(stderr.trim());
  assert.ok(m, `no command named in:\n${stderr}`);
  return m[1]!.split(' ');
}

const FILES: Record<string, string> = {
  'src/url.py': 'def parse_url(url):\n    """Split a URL into scheme, host and path."""\n    scheme, rest = url.split("://", 1)\n    return scheme, rest\n',
  'src/math.ts': 'export function addNumbers(a: number, b: number): number {\n  return a + b;\n}\n',
  'docs/readme.md': '# Notes\n\nThe cache keeps recently used entries and evicts the oldest one.\n',
};

suiteRequiring('recovery from a damaged index, with the command the message names', !built && 'dist/cli.js missing: run `npm run build` first', () => {
  let tmp: string;
  let pristine: string;
  let model: string;
  let baseline: string;
  let n = 0;

  before(() => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-recover-'));
    pristine = path.join(tmp, 'pristine');
    for (const [rel, text] of Object.entries(FILES)) {
      fs.mkdirSync(path.dirname(path.join(pristine, rel)), { recursive: true });
      fs.writeFileSync(path.join(pristine, rel), text);
    }
    const r = cli(['index', pristine, '--model', model, '-q']);
    assert.equal(r.code, 0, r.stderr);
    baseline = search(pristine, 'hybrid');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function search(folder: string, mode: string, expectCode = 0): string {
    const r = cli(['search', folder, 'split a url into host and path', '--mode', mode, '--json']);
    assert.equal(r.code, expectCode, r.stderr);
    return expectCode === 0 ? JSON.stringify(JSON.parse(r.stdout).map((h: { path: string; startLine: number }) => [h.path, h.startLine])) : r.stderr;
  }

  /** A fresh copy of the indexed folder and the path of its one store folder. */
  function copy(): { folder: string; store: string } {
    const folder = path.join(tmp, `case-${n++}`);
    fs.cpSync(pristine, folder, { recursive: true });
    const stores = path.join(folder, '.embedding-lens', 'stores');
    const [name] = fs.readdirSync(stores);
    return { folder, store: path.join(stores, name!) };
  }

  const only = (dir: string, re: RegExp) => {
    const f = fs.readdirSync(dir).find((x) => re.test(x));
    assert.ok(f, `no file matching ${re} in ${dir}: ${fs.readdirSync(dir).join(', ')}`);
    return path.join(dir, f);
  };
  const truncate = (file: string) => fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
  /** One byte flipped at `at` (a fraction of the file): damage only a checksum can see. */
  const flip = (file: string, at = 0.5) => { const b = fs.readFileSync(file); b[Math.floor(b.length * at)] ^= 0x10; fs.writeFileSync(file, b); };

  const cases: { name: string; damage: (store: string, folder: string) => void; mode?: string; message: RegExp; rebuild: boolean }[] = [
    { name: 'truncated manifest.json', damage: (s) => truncate(path.join(s, 'manifest.json')), message: /manifest .* is corrupt/, rebuild: true },
    { name: 'missing manifest.json', damage: (s) => fs.rmSync(path.join(s, 'manifest.json')), message: /manifest is missing/, rebuild: true },
    { name: 'truncated HNSW file', damage: (s) => truncate(only(s, /^index\.\d+\.hnsw$/)), message: /truncated or damaged/, rebuild: true },
    // A byte in the middle of the graph (a vector or a link): hnswlib would read it without complaint.
    { name: 'altered HNSW file', damage: (s) => flip(only(s, /^index\.\d+\.hnsw$/)), message: /index\.\d+\.hnsw is corrupt \(checksum mismatch\)/, rebuild: true },
    { name: 'altered metadata file', damage: (s) => { const f = only(s, /^metadata\.\d+\./); const b = fs.readFileSync(f); b[b.length - 1] ^= 0xff; fs.writeFileSync(f, b); }, message: /checksum mismatch/, rebuild: true },
    { name: 'truncated lexical.json (keyword search)', damage: (s) => truncate(path.join(s, 'lexical.json')), mode: 'lexical', message: /lexical index .* is corrupt/, rebuild: false },
    { name: 'truncated lexical segment (keyword search)', damage: (s) => truncate(only(s, /^lexical\.\d+\.seg$/)), mode: 'lexical', message: /lexical index is damaged: .* truncated/, rebuild: false },
    { name: 'altered lexical segment (hybrid search)', damage: (s) => flip(only(s, /^lexical\.\d+\.seg$/), 0.9), message: /lexical index is damaged: .*lexical\.\d+\.seg is corrupt \(checksum mismatch\)/, rebuild: false },
    { name: 'missing lexical.json', damage: (s) => fs.rmSync(path.join(s, 'lexical.json')), mode: 'lexical', message: /lexical index .* is missing/, rebuild: false },
    // The catalog is rebuilt from the files by a plain refresh; the store's vectors are reused.
    { name: 'truncated catalog.json', damage: (s) => truncate(path.join(s, 'catalog.json')), message: /catalog .* is corrupt/, rebuild: false },
    { name: 'truncated catalog segment', damage: (s) => truncate(only(s, /^catalog\.\d+\.seg$/)), message: /catalog segment .* is truncated/, rebuild: false },
    { name: 'missing catalog segment', damage: (s) => fs.rmSync(only(s, /^catalog\.\d+\.seg$/)), message: /catalog segment .* is missing/, rebuild: false },
    { name: 'corrupt storage marker', damage: (_s, f) => fs.writeFileSync(path.join(f, '.embedding-lens', 'embedding-lens.json'), '{"format'), message: /embedding-lens\.json is corrupt/, rebuild: false },
  ];

  for (const c of cases) {
    test(`${c.name}: search names the command, that command repairs it`, () => {
      const { folder, store } = copy();
      c.damage(store, folder);
      const stderr = search(folder, c.mode ?? 'hybrid', 1);
      assert.match(stderr, c.message);
      assert.doesNotMatch(stderr, /unexpected error|No results/);
      const command = namedCommand(stderr);
      assert.equal(command.includes('--rebuild'), c.rebuild, stderr);
      // The command as printed: no --model needed, the index's own recipe is used.
      const fix = cli([...command, '--json', '-q']);
      assert.equal(fix.code, 0, fix.stderr);
      const summary = JSON.parse(fix.stdout) as { chunksEmbedded: number; chunksTotal: number };
      if (!c.rebuild) assert.equal(summary.chunksEmbedded, 0, 'a refresh-repairable damage re-embeds nothing');
      assert.equal(search(folder, 'hybrid'), baseline);
      assert.equal(search(folder, 'vector'), search(pristine, 'vector'));
      assert.equal(search(folder, 'lexical'), search(pristine, 'lexical'));
    });
  }

  test('an altered catalog segment: a search, which needs only the catalog\'s counts, does not read it; `index` finds it and repairs it', () => {
    const { folder, store } = copy();
    flip(only(store, /^catalog\.\d+\.seg$/));
    assert.equal(search(folder, 'hybrid'), baseline);
    const fix = cli(['index', folder, '--json', '-q']);
    assert.equal(fix.code, 0, fix.stderr);
    assert.match(fix.stderr, /catalog segment .* is corrupt \(checksum mismatch\)\. Started it afresh/);
    assert.equal((JSON.parse(fix.stdout) as { chunksEmbedded: number }).chunksEmbedded, 0, 'nothing re-embedded');
    assert.equal(search(folder, 'hybrid'), baseline);
  });

  test('plain `index` (no --rebuild) also repairs damage that needs a rebuild', () => {
    const { folder, store } = copy();
    truncate(path.join(store, 'manifest.json'));
    const r = cli(['index', folder, '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Rebuilding the index beside it/);
    assert.equal(search(folder, 'hybrid'), baseline);
    assert.deepEqual(fs.readdirSync(path.dirname(store)), [path.basename(store)], 'no leftover rebuild or old folder');
  });

  test('keyword search loads no model and needs no --model; vector search uses the index\'s model', () => {
    const lexical = cli(['search', pristine, 'addNumbers', '--mode', 'lexical']);
    assert.equal(lexical.code, 0, lexical.stderr);
    assert.doesNotMatch(lexical.stderr, /Loaded/);
    assert.match(lexical.stdout, /src\/math\.ts:\d+-\d+ {2}BM25 \d/);
    const vector = cli(['search', pristine, 'add two numbers', '--mode', 'vector']);
    assert.equal(vector.code, 0, vector.stderr);
    assert.match(vector.stderr, new RegExp(`Loaded ${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(vector.stdout, / {2}cosine -?\d\.\d{4}/);
    const other = cli(['search', pristine, 'add', '--mode', 'vector', '--model', fixtureModelDir('distilbert-tiny')]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /Recipe mismatch \(model/);
  });

  test('options are checked before any model is loaded', () => {
    for (const [args, message] of [
      [['search', pristine, 'x', '-k', '0'], /-k must be a positive integer, got "0"/],
      [['search', pristine, 'x', '-k', '-3'], /-k must be a positive integer, got "-3"/],
      [['search', pristine, '--similar', 'src/url.py:4-2'], /range ends before it starts/],
      [['search', pristine, '--similar', 'src/url.py:1-2', '--mode', 'lexical'], /--mode lexical does not apply/],
      [['index', pristine, '--pool', 'bogus'], /--pool "bogus" is not a pooling/],
      [['extract', '--model', model, '--pool', 'bogus', '--text', 'x', '--out', '-'], /--pool "bogus" is not a pooling/],
      [['extract', '--model', model, '--text', 'x', '--out', '/no/such/dir/x.npy'], /the folder \/no\/such\/dir does not exist/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /Loaded|unexpected error/);
    }
  });

  test('binary or undecodable --input is refused as the indexer refuses it', () => {
    const bin = path.join(tmp, 'random.bin');
    fs.writeFileSync(bin, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)));
    const latin1 = path.join(tmp, 'latin1.txt');
    fs.writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    for (const [file, why] of [[bin, /binary file/], [latin1, /not valid UTF-8/]] as const) {
      const r = cli(['extract', '--model', model, '--input', file, '--out', '-']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, why);
    }
  });

  test('a cancelled rebuild keeps the old index as it was', async () => {
    const { folder, store } = copy();
    const before = fs.readdirSync(store).sort();
    const extractor = await Extractor.load({ model, offline: true });
    try {
      const inner = extractor.embedder({ layer: 'last', pool: 'mean', normalize: true });
      const controller = new AbortController();
      let calls = 0;
      const failing = { ...inner, embed: async (texts: string[], o?: Parameters<typeof inner.embed>[1]) => { if (++calls === 1) controller.abort(); return inner.embed(texts, { ...o, signal: controller.signal }); } };
      const ws = Workspace.at(folder);
      await assert.rejects(ws.refresh(failing, { rebuild: true, signal: controller.signal }), (e: Error) => e.name === 'AbortError');
      assert.deepEqual(fs.readdirSync(store).sort(), before);
      assert.deepEqual(fs.readdirSync(path.dirname(store)), [path.basename(store)]);
      assert.equal(search(folder, 'hybrid'), baseline);
    } finally {
      await extractor.dispose();
    }
  });
});
