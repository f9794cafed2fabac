// Full index of this repository as a user runs it: `embedding-lens index <snapshot> --storage <fresh>`
// (the esbuild bundle, bin/embedding-lens.js: run `npm run build` first), one new CLI process per run,
// for each variant of CLI flags, alternating variants so that a change in the machine's load falls on
// all of them. Wall seconds, CPU seconds (user + system of the child, from /proc/self/stat's
// cutime/cstime: Linux only), chunks embedded and chunks/s. Numbers, not pass/fail.
//
//   tsx bench/indexSpeed.ts [--variant label=flags]... [--runs 1] [--root <folder>] [--json <file>]
//
// Default variants: `fp32` (the default model as committed) and `q8` (--model-dtype q8).
// Default root: a `git archive HEAD` snapshot of this repository (what a fresh clone holds).
// Run it under the shared benchmark lock: flock /work/wt/bench.lock npx tsx bench/indexSpeed.ts
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const REPO = path.resolve(__dirname, '..');
const CLI = path.join(REPO, 'bin', 'embedding-lens.js');

/** User + system seconds of this process's waited-for children (fields 16, 17 of /proc/self/stat). */
function childCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name, field 3 is index 0: cutime is field 16, cstime field 17.
  const ticks = Number(fields[16 - 3]) + Number(fields[17 - 3]);
  const hz = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return ticks / hz;
}

function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true },
      runs: { type: 'string', default: '1' },
      root: { type: 'string' },
      json: { type: 'string' },
    },
  });
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli.js'))) throw new Error('No dist/cli.js: run `npm run build` first.');
  const variants = (values.variant?.length ? values.variant : ['fp32=', 'q8=--model-dtype q8']).map((v) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new Error(`--variant "${v}": give label=flags (flags may be empty).`);
    return { label: v.slice(0, eq), flags: v.slice(eq + 1).split(' ').filter(Boolean) };
  });
  const temp: string[] = [];
  let root = values.root;
  let commit = 'given folder';
  if (!root) {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'el-speed-root-'));
    temp.push(root);
    execFileSync('sh', ['-c', `git archive HEAD | tar -x -C "${root}"`], { cwd: REPO });
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }).toString().trim();
  }
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (let r = 0; r < Number(values.runs); r++) {
      for (const v of variants) {
        const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'el-speed-store-'));
        temp.push(storage);
        const load0 = loadAverage();
        const cpu0 = childCpuSeconds();
        const t0 = performance.now();
        const child = spawnSync(process.execPath, [CLI, 'index', root, '--storage', storage, '--json', '--quiet', ...v.flags], { encoding: 'utf8', maxBuffer: 1 << 26 });
        const wall = (performance.now() - t0) / 1000;
        const cpu = childCpuSeconds() - cpu0;
        if (child.status !== 0) throw new Error(`${v.label}: embedding-lens index exited with ${child.status}: ${child.stderr}`);
        const summary = JSON.parse(child.stdout) as { chunksEmbedded: number; chunksTotal: number; filesIndexed: number; modelMs: number };
        const row = {
          variant: v.label, flags: v.flags.join(' '), run: r + 1, files: summary.filesIndexed, chunks: summary.chunksEmbedded,
          wall: +wall.toFixed(1), cpu: +cpu.toFixed(1), modelSeconds: +(summary.modelMs / 1000).toFixed(1),
          chunksPerSecond: +(summary.chunksEmbedded / wall).toFixed(1), loadBefore: load0, loadAfter: loadAverage(),
        };
        rows.push(row);
        console.log(JSON.stringify(row));
        fs.rmSync(storage, { recursive: true, force: true });
      }
    }
  } finally {
    for (const d of temp) fs.rmSync(d, { recursive: true, force: true });
  }
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), commit, cores: os.cpus().length, rows }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
