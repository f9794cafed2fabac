// Bundles the extension host entry, the engine worker and the CLI (CommonJS, Node 20),
// and the webview script (browser). Native modules stay external and ship in node_modules.
const esbuild = require('esbuild');
const path = require('node:path');

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

// Native / runtime-loaded packages that must not be bundled.
// pg-native: pg's optional native binding (never used: pg's pure-JS client is).
const external = ['vscode', 'onnxruntime-node', 'onnxruntime-common', 'hnswlib-node', 'tokenizers', 'pg-native'];

/** @type {import('esbuild').BuildOptions} */
const nodeOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  external,
  logLevel: 'warning',
  // transformers.js and h5wasm call createRequire(import.meta.url); in a CJS bundle import.meta is
  // empty, so point it at a shim that derives the URL from __filename.
  define: { 'import.meta.url': 'import_meta_url' },
  inject: [path.join(__dirname, 'src', 'shims', 'import-meta-url.js')],
  // transformers.js imports sharp for images only; we never process images. A function stub keeps its
  // import-time check happy without shipping sharp's native binaries.
  alias: { sharp: path.join(__dirname, 'src', 'shims', 'sharp-stub.js') },
};

// The CLI is a new process every time, so what its bundle compiles at start is paid by every command
// (8.4 MB took ~140 ms of a 1.3 s cold search). h5wasm (5.8 MB, WebAssembly inlined) and transformers.js
// (1.5 MB) are used only for .h5 files and Hub downloads: they go into bundles of their own in dist/lazy/,
// required from dist/cli.js only when those paths run. (The editor's bundles start once and keep them in.)
const LAZY = { 'h5wasm/node': 'h5wasm', '@huggingface/transformers': 'transformers' };
const lazyChunks = {
  name: 'lazy-chunks',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(LAZY).map((k) => k.replace(/[/@.]/g, '\\$&')).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: `./lazy/${LAZY[args.path]}.js`, external: true }));
  },
};

const builds = [
  { ...nodeOptions, entryPoints: { cli: 'src/cli.ts' }, outdir: 'dist', plugins: [lazyChunks] },
  { ...nodeOptions, entryPoints: { 'lazy/h5wasm': 'src/shims/lazy-h5wasm.js', 'lazy/transformers': 'src/shims/lazy-transformers.js' }, outdir: 'dist' },
  { ...nodeOptions, entryPoints: { extension: 'src/extension.ts' }, outdir: 'dist' },
  { ...nodeOptions, entryPoints: { worker: 'src/worker/engineWorker.ts' }, outdir: 'dist' },
  {
    bundle: true, platform: 'browser', format: 'iife', target: 'es2022', sourcemap: !production,
    minify: production, logLevel: 'warning', entryPoints: { inspector: 'media/inspector.ts' }, outdir: 'dist/media',
  },
].filter((b) => Object.values(b.entryPoints).every((p) => require('node:fs').existsSync(p)));

// Tree-sitter's runtime and grammars are loaded at run time from a "tree-sitter" folder beside the
// bundle (src/core/index/treeSitter.ts looks there first), so a packaged extension needs no node_modules for them.
function copyTreeSitterWasm() {
  const fs = require('node:fs');
  const from = path.join(__dirname, 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm');
  if (!fs.existsSync(from)) return;
  const to = path.join(__dirname, 'dist', 'tree-sitter');
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) if (f.endsWith('.wasm')) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

(async () => {
  copyTreeSitterWasm();
  if (watch) {
    for (const b of builds) (await esbuild.context(b)).watch();
  } else {
    await Promise.all(builds.map((b) => esbuild.build(b)));
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
