// `npm run bench [-- --quick] [-- --threads N]`: runs the three benchmarks one after another, each in its
// own process (so peak RSS is per benchmark), and merges their results into bench/results.json:
//   bench/extract.ts   pipeline vs engine vs ONNX Runtime limit, graph cut, threads, quantized
//   bench/store.ts     HNSW store: build, size, save/load, recall@10 and latency per ef
//   bench/index.ts     indexing real code: files/s, chunks/s, model share, peak RSS, re-index after an edit
//   bench/segments.ts  index storage before / after the segment format: build, open, bytes per edit, queries
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const BENCH = __dirname;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const tsx = path.join(BENCH, '..', 'node_modules', '.bin', 'tsx');

function step(name: string, script: string, extra: string[], captureJson: boolean): unknown {
  process.stderr.write(`\n===== ${name} (${script} ${[...args, ...extra].join(' ')})\n`);
  const started = performance.now();
  const r = spawnSync(tsx, [path.join(BENCH, script), ...args, ...extra], {
    stdio: captureJson ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${script} failed with exit code ${r.status}`);
  process.stderr.write(`===== ${name} done in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  if (captureJson) {
    process.stdout.write(r.stdout);
    return JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  }
  return undefined;
}

const extractFile = path.join(BENCH, 'results-extract.json');
step('extraction', 'extract.ts', ['--out', extractFile], false);
step('vector store', 'store.ts', [], false);
const index = step('indexing', 'index.ts', [], true);
step('index storage, before / after segments', 'segments.ts', [], false);
const merged = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  extract: JSON.parse(fs.readFileSync(extractFile, 'utf8')),
  store: JSON.parse(fs.readFileSync(path.join(BENCH, 'results-store.json'), 'utf8')),
  index,
  segments: JSON.parse(fs.readFileSync(path.join(BENCH, `results-segments-${quick ? 20000 : 100000}.json`), 'utf8')),
};
fs.writeFileSync(path.join(BENCH, 'results.json'), JSON.stringify(merged, null, 2) + '\n');
process.stderr.write(`\nwrote bench/results.json\n`);
