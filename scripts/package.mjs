#!/usr/bin/env node
// `npm run package`: production bundles (esbuild.js --production), then a linux-x64 .vsix with vsce,
// then checks on the result: the entries it must and must not hold, and — from an unpacked copy — that
// the bundled worker starts and the native modules load with only what the .vsix carries.
//
//   node scripts/package.mjs            build + package + check
//   node scripts/package.mjs --reuse    skip vsce when the packaged inputs have not changed (test runs)
//
// Exports `packageVsix()` for test/integration/runHost.mjs.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VSIX = path.join(ROOT, 'embedding-lens-linux-x64.vsix');
const TARGET = 'linux-x64';

/** Entries the .vsix must hold (paths inside `extension/`). */
const REQUIRED = [
  'package.json',
  'dist/extension.js',
  'dist/worker.js',
  'dist/media/inspector.js',
  'media/inspector.css',
  'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
  'node_modules/onnxruntime-common/dist/cjs/index.js',
  'node_modules/hnswlib-node/build/Release/addon.node',
  'node_modules/bindings/bindings.js',
  'node_modules/file-uri-to-path/index.js',
  'node_modules/tokenizers/index.js',
  'node_modules/tokenizers/tokenizers.linux-x64-gnu.node',
  // The built-in default model (models/all-MiniLM-L6-v2): search works with nothing to download.
  'models/all-MiniLM-L6-v2/config.json',
  'models/all-MiniLM-L6-v2/onnx/model.onnx',
  'models/all-MiniLM-L6-v2/tokenizer.json',
  'models/all-MiniLM-L6-v2/LICENSE',
];
/** Patterns that must not appear: other platforms, bundled-in packages, sources, maps. */
const FORBIDDEN = [
  /napi-v6\/(darwin|win32)\//, /napi-v6\/linux\/arm64\//, /tokenizers\.(?!linux-x64-gnu)[\w-]+\.node$/,
  /node_modules\/(@huggingface|sharp|@img|typescript|esbuild|onnxruntime-web|h5wasm|protobufjs)\//,
  /extension\/models\/[^/]+\/answer_key[^/]*\.json$/,
  /\.map$/, /^extension\/src\//, /^extension\/test\//, /^extension\/\.cache\//, /dist\/cli\.js$/,
];

function log(msg) {
  process.stderr.write(`[package] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map((f) => path.join(dir, String(f))).filter((f) => statSync(f).isFile());
}

/** Hash of everything that ends up in the .vsix (bundles, CSS, manifest, ignore rules, lockfile). */
function inputsHash() {
  const files = [
    'package.json', '.vscodeignore', 'package-lock.json', 'dist/extension.js', 'dist/worker.js',
    ...filesUnder(path.join(ROOT, 'dist', 'media')).map((f) => path.relative(ROOT, f)),
    ...filesUnder(path.join(ROOT, 'media')).filter((f) => /\.(css|svg|png)$/.test(f)).map((f) => path.relative(ROOT, f)),
    ...filesUnder(path.join(ROOT, 'models')).map((f) => path.relative(ROOT, f)),
  ].sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f);
    const abs = path.join(ROOT, f);
    h.update(existsSync(abs) ? readFileSync(abs) : 'missing');
  }
  return h.digest('hex');
}

export function checkEntries(vsix = VSIX) {
  const entries = execFileSync('unzip', ['-Z1', vsix], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const missing = REQUIRED.filter((r) => !entries.includes(`extension/${r}`));
  const forbidden = entries.filter((e) => FORBIDDEN.some((re) => re.test(e)));
  if (missing.length || forbidden.length) {
    throw new Error(`bad .vsix contents:\n  missing: ${missing.join(', ') || '-'}\n  should not be there: ${forbidden.join(', ') || '-'}`);
  }
  return entries;
}

/** Unpacks the .vsix and loads what the extension loads at run time, from the unpacked copy only. */
export function checkLoads(vsix = VSIX) {
  const dir = mkdtempSync(path.join(tmpdir(), 'el-vsix-'));
  try {
    execFileSync('unzip', ['-q', vsix, 'extension/*', '-d', dir]);
    const ext = path.join(dir, 'extension');
    const probe = `
      const { fork } = require('node:child_process');
      const req = require('node:module').createRequire(${JSON.stringify(path.join(ext, 'package.json'))});
      const ort = req('onnxruntime-node');
      if (typeof ort.InferenceSession?.create !== 'function') throw new Error('onnxruntime-node: no InferenceSession');
      const { HierarchicalNSW } = req('hnswlib-node');
      const index = new HierarchicalNSW('cosine', 4); index.initIndex(2); index.addPoint([1, 0, 0, 0], 0);
      const tok = req('tokenizers');
      if (typeof tok.Tokenizer?.fromString !== 'function') throw new Error('tokenizers: no Tokenizer');
      // The engine runs in its own process (src/host/engineClient.ts): start it the same way.
      const w = fork(${JSON.stringify(path.join(ext, 'dist', 'worker.js'))}, [], { serialization: 'advanced', execArgv: [] });
      const t = setTimeout(() => { console.error('engine process did not answer'); w.kill(); process.exit(1); }, 60000);
      w.on('error', (e) => { console.error('engine process error', e); process.exit(1); });
      let status;
      w.on('message', (m) => {
        if (m.type === 'ready') w.send({ type: 'request', id: 1, method: 'status', params: {} });
        if (m.type === 'error') { console.error('engine error', JSON.stringify(m)); w.kill(); process.exit(1); }
        if (m.type !== 'result') return;
        if (m.id === 1) {
          status = m.result;
          // The built-in model from inside the .vsix, offline: it must load and embed.
          w.send({ type: 'request', id: 2, method: 'load', params: { model: 'all-MiniLM-L6-v2', offline: true, threads: 0, maxTokensPerBatch: 1024 } });
        } else if (m.id === 2) {
          status.defaultModel = m.result.folder ?? m.result.model;
          w.send({ type: 'request', id: 3, method: 'extract', params: { texts: ['hello world'], recipe: { layer: 'last', pool: 'mean', normalize: true } } });
        } else if (m.id === 3) {
          status.defaultModelDims = m.result.dims;
          clearTimeout(t); console.log(JSON.stringify(status)); w.kill();
        }
      });`;
    // Run from the unpacked folder with NODE_PATH cleared, so nothing from the repo's node_modules helps.
    const out = run(process.execPath, ['-e', probe], { cwd: dir, env: { ...process.env, NODE_PATH: '' } });
    const status = JSON.parse(out.trim().split('\n').pop());
    if (status.ownProcess !== true || typeof status.pid !== 'number') throw new Error(`the engine from the .vsix did not report its own process: ${JSON.stringify(status)}`);
    if (status.defaultModelDims !== 384) throw new Error(`the built-in model did not embed from the .vsix: ${JSON.stringify(status)}`);
    return status;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function packageVsix({ reuse = false } = {}) {
  const t0 = performance.now();
  run(process.execPath, ['esbuild.js', '--production']);
  const hash = inputsHash();
  const stamp = path.join(ROOT, '.cache', 'vsix-inputs.sha256');
  if (reuse && existsSync(VSIX) && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) {
    log(`inputs unchanged, reusing ${path.relative(ROOT, VSIX)}`);
  } else {
    rmSync(stamp, { force: true });
    run(process.execPath, [path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--target', TARGET,
      '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links', '--out', VSIX]);
    mkdirSync(path.dirname(stamp), { recursive: true });
    writeFileSync(stamp, hash);
  }
  const entries = checkEntries();
  const status = checkLoads();
  const mb = (statSync(VSIX).size / 1e6).toFixed(1);
  log(`${path.relative(ROOT, VSIX)}: ${entries.length} entries, ${mb} MB; natives + worker load from it (worker node ${status.node}); ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return VSIX;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    packageVsix({ reuse: process.argv.includes('--reuse') });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
