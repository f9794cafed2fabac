// The folder walk of every refresh that is not given the saved files (discoverFiles): wall and CPU per
// walk, median of N, on a folder of your choice (default: the 37k-chunk folder of bench/cliProcess.ts).
//
//   tsx bench/walk.ts [--dir .cache/cli/37000/repo] [--runs 15]
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { discoverFiles } from '../src/core/index/files';

const { values: opts } = parseArgs({ options: { dir: { type: 'string', default: '.cache/cli/37000/repo' }, runs: { type: 'string', default: '15' } } });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function main(): Promise<void> {
  const dir = path.resolve(opts.dir!);
  const wall: number[] = [];
  const cpu: number[] = [];
  let files = 0;
  for (let i = 0; i < Number(opts.runs) + 2; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    const found = await discoverFiles(dir);
    const d = process.cpuUsage(c);
    files = found.files.length;
    if (i < 2) continue; // warm-up: the file system's caches and the JIT
    wall.push(performance.now() - t);
    cpu.push((d.user + d.system) / 1000);
  }
  console.log(JSON.stringify({ dir, files, runs: wall.length, wallMs: +median(wall).toFixed(1), cpuMs: +median(cpu).toFixed(1) }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
