// The index as a user's commands meet it: whole `embedding-lens` CLI processes (bin/embedding-lens.js,
// the esbuild bundle; run `npm run build` first) on a synthetic repository of real files, N chunks, with
// the default model (models/all-MiniLM-L6-v2). Numbers, not pass/fail.
//
//   tsx bench/cliProcess.ts [--chunks 37000] [--runs 3] [--model <folder>] [--cli <launcher.js> --label <name>] [--only in-process|search [--compare <launcher.js,...> --labels <name,...>]]
//
// --cli measures another build of the CLI (e.g. a copy of bin/ + dist/ from an earlier commit, kept under
// .cache/, so "before" and "after" run in one session on the same machine); --label names its results file.
//
// Setup (cached in .cache/cli/<chunks>/, reused by later runs): a folder of TypeScript files, 14 small
// functions each, indexed once in process by the real indexer with the real chunker, catalog, lexical
// index and store. Only the bulk vectors of that first index come from a stand-in embedder (clustered
// random vectors, keyed by the chunk's text) with the model's exact recipe identity, because embedding
// 37k chunks with the real model takes ~15 min on 2 cores; every CLI process measured below runs the real
// model on whatever it embeds, and the index's recipe is the real one (the CLI checks it).
// Each run works on a hard-linked copy of the cached folder (every writer of the index replaces files by
// rename, never in place; the benchmark's own edits do the same).
//
// Measured, each a new process, wall (and CPU seconds of the process, from /usr/bin/time):
//   index, nothing changed     the folder walk + catalog compare (and, before this change, the model load)
//   index, one file edited     one function's body changed: chunk, embed, delta save, exit
//   search, cold (hybrid)      open the index, load the model, one query
//   search, cold (lexical)     open the index, no model
// and, with EMBEDDING_LENS_TIMINGS=1, the process's own split: node start + bundle load, command module
// load, model load, the work (src/cli/timings.ts). Also the same one-file edit in process (the model loaded
// and the index open, as the editor's engine holds them): the re-index latency an editor save sees, once
// with a walk of the folder and once given the saved file's path (the extension's save), and the first
// hybrid search after such a save. `--only in-process` measures only these (no CLI build needed).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/cli/index';
import { seededRandom } from '../src/core/random';
import type { TextEmbedder } from '../src/core/types';
import { Workspace } from '../src/core/workspace/workspace';

const REPO = path.resolve(__dirname, '..');
const { values: opts } = parseArgs({
  options: {
    chunks: { type: 'string', default: '37000' },
    runs: { type: 'string', default: '3' },
    model: { type: 'string' },
    cli: { type: 'string' },
    label: { type: 'string' },
    // with --only search: other builds' launchers (comma-separated), run in turn with this one, round by
    // round (the machine's load drifts; interleaving shares it fairly); --labels names them
    compare: { type: 'string' },
    labels: { type: 'string' },
    // 'in-process': only the in-process edit rows (no CLI processes; its results file gets the suffix -in-process);
    // 'search': only the two cold-search rows (results file suffix -search)
    only: { type: 'string' },
  },
});
const CLI = opts.cli ? path.resolve(opts.cli) : path.join(REPO, 'bin', 'embedding-lens.js');
const CHUNKS = Number(opts.chunks);
const RUNS = Number(opts.runs);
const FUNCS = 7; // the chunker makes 2 chunks of each function below: 14 chunks a file, the ratio of the vite repository in the issue
const quiet = { info: () => undefined, warn: (m: string) => process.stderr.write(`warning: ${m}\n`), error: (m: string) => process.stderr.write(`error: ${m}\n`) };

const WORDS = ['config', 'cache', 'index', 'store', 'token', 'layer', 'vector', 'query', 'parse', 'load', 'save', 'user', 'path', 'file', 'node', 'tree', 'item', 'value', 'key', 'http', 'url', 'list', 'map', 'stream', 'buffer', 'request', 'response', 'session', 'worker', 'queue'];
/** One function of ~20 lines: real-looking code, different in every file. */
function fn(file: number, k: number, edit = ''): string {
  const r = seededRandom(file * 131 + k);
  const w = () => WORDS[Math.floor(r() * WORDS.length)];
  const name = `${w()}${w()[0].toUpperCase()}${w().slice(1)}${file}_${k}`;
  const lines = [`/** ${w()} the ${w()} of a ${w()} from its ${w()} (${edit || 'v1'}). */`, `export function ${name}(${w()}: string, ${w()}Count: number): number {`];
  lines.push(`  let total = 0;`);
  for (let i = 0; i < 14; i++) {
    lines.push(r() < 0.5 ? `  const ${w()}${i} = ${w()}Count * ${Math.floor(r() * 97)} + total;` : `  if (total > ${Math.floor(r() * 1000)}) total -= ${w()}Count; else total += ${Math.floor(r() * 13)};`);
  }
  lines.push(`  return total;`, `}`, ``);
  return lines.join('\n');
}
function fileText(file: number, editedFn = -1, edit = ''): string {
  return Array.from({ length: FUNCS }, (_, k) => fn(file, k, k === editedFn ? edit : '')).join('\n');
}
const fileName = (f: number) => `src/pkg${f % 53}/mod${f}.ts`;

/** Writes a file the way editors do when saving atomically (new inode): never touches a hard-linked cache copy. */
function replaceFile(p: string, text: string): void {
  const tmp = `${p}.tmp-bench`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, p);
}

/** Clustered unit vectors keyed by the text (a stand-in for the bulk of the first index only, see above). */
function standIn(real: TextEmbedder): TextEmbedder {
  const dims = real.identity.dims;
  const centres = Float32Array.from({ length: 64 * dims }, seededRandom(7));
  return {
    identity: real.identity,
    prefixes: real.prefixes,
    countTokens: (t) => real.countTokens(t),
    async embed(texts) {
      const out = new Float32Array(texts.length * dims);
      texts.forEach((t, i) => {
        let h = 2166136261;
        for (let j = 0; j < t.length; j++) h = Math.imul(h ^ t.charCodeAt(j), 16777619);
        const r = seededRandom(h >>> 0);
        const c = Math.floor(r() * 64);
        let s = 0;
        for (let j = 0; j < dims; j++) s += (out[i * dims + j] = centres[c * dims + j] - 0.5 + 0.3 * (r() - 0.5)) ** 2;
        const inv = 1 / Math.sqrt(s);
        for (let j = 0; j < dims; j++) out[i * dims + j] *= inv;
      });
      return out;
    },
  };
}

interface ProcessRun { wallMs: number; cpuMs: number; peakRssMiB: number; timings?: Record<string, number>; stdout: string }

/** One CLI process under /usr/bin/time (CPU and peak RSS of the child), with its own phase timings. */
function cli(args: string[], launcher = CLI): ProcessRun {
  const timeFile = path.join(os.tmpdir(), `el-bench-time-${process.pid}`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%U %S %M', process.execPath, launcher, ...args], { encoding: 'utf8', env: { ...process.env, EMBEDDING_LENS_TIMINGS: '1' }, maxBuffer: 64 << 20 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`embedding-lens ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  const [u, s, m] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  const line = r.stderr.split('\n').find((l) => l.startsWith('timings '));
  return { wallMs, cpuMs: (u + s) * 1000, peakRssMiB: Math.round(m / 1024), timings: line ? JSON.parse(line.slice(8)) : undefined, stdout: r.stdout };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

async function prepare(cacheDir: string): Promise<Record<string, unknown>> {
  const done = path.join(cacheDir, 'prepared.json');
  if (fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8'));
  const tmp = `${cacheDir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const files = Math.ceil(CHUNKS / (2 * FUNCS));
  for (let f = 0; f < files; f++) {
    const p = path.join(tmp, 'repo', fileName(f));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, fileText(f));
  }
  const { extractor, embedder, chunkTokens } = await loadModel({ model: opts.model, offline: true }, quiet);
  const t0 = performance.now();
  const summary = await Workspace.at(path.join(tmp, 'repo'), { logger: quiet }).refresh(standIn(embedder), { chunkTokens });
  const prefillS = (performance.now() - t0) / 1000;
  await extractor.dispose();
  const info = { files, chunks: summary.chunksTotal, prefillS: +prefillS.toFixed(1), storeDir: path.relative(tmp, summary.storeDir) };
  fs.writeFileSync(path.join(tmp, 'prepared.json'), JSON.stringify(info) + '\n');
  fs.renameSync(tmp, cacheDir);
  return info;
}

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((s, n) => s + fs.statSync(path.join(dir, n)).size, 0);
}

/** `--only search`: the two cold-search rows alone (the CLI processes of the cold-search target, more runs cheaply). */
function reportSearchOnly(rows: Record<string, ProcessRun[]>, info: Record<string, unknown>, storeDir: string, emptyNode: number, versionMs: number, launcher: string, label: string | undefined): void {
  console.log(`${label ?? 'this build'} (${path.relative(REPO, launcher)}):`);
  const lines = ['| process | wall ms (median of ' + RUNS + ') | CPU ms | peak RSS MiB | marks: ms since process start | runs |', '|---|---:|---:|---:|---|---|'];
  const summary: Record<string, unknown> = {};
  for (const [k, rs] of Object.entries(rows)) {
    if (!rs.length) continue;
    const t = (key: string) => Math.round(median(rs.map((r) => r.timings?.[key] ?? NaN)));
    const marks = Object.keys(rs[0].timings ?? {}).filter((m) => m !== 'cpuMs' && m !== 'peakRssMiB').map((m) => `${m} ${t(m)}`).join(', ');
    const row = { wallMs: Math.round(median(rs.map((r) => r.wallMs))), cpuMs: Math.round(median(rs.map((r) => r.cpuMs))), peakRssMiB: median(rs.map((r) => r.peakRssMiB)), runs: rs.map((r) => Math.round(r.wallMs)), cpuRuns: rs.map((r) => Math.round(r.cpuMs)) };
    summary[k] = { ...row, marks };
    lines.push(`| ${k} | ${row.wallMs} | ${row.cpuMs} | ${row.peakRssMiB} | ${marks} | ${row.runs.join(', ')} |`);
  }
  console.log(lines.join('\n'));
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`;
  console.log(`(${info.chunks} chunks, index ${(dirBytes(storeDir) / 1e6).toFixed(1)} MB; ${machine}; an empty node process: ${Math.round(emptyNode)} ms, \`embedding-lens --version\`: ${Math.round(versionMs)} ms)`);
  const out = path.join(REPO, 'bench', `results-cli-${CHUNKS}${label ? `-${label}` : ''}-search.json`);
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, node: process.version, cli: path.relative(REPO, launcher), ...info, processes: summary }, null, 2) + '\n');
}

async function main(): Promise<void> {
  if (opts.only !== 'in-process' && !fs.existsSync(path.join(path.dirname(CLI), '..', 'dist', 'cli.js'))) throw new Error(`No dist/cli.js beside ${CLI}: run \`npm run build\` first.`);
  const cacheDir = path.join(REPO, '.cache', 'cli', String(CHUNKS));
  const tp = performance.now();
  const info = await prepare(cacheDir);
  process.stderr.write(`prepared ${JSON.stringify(info)} (${((performance.now() - tp) / 1000).toFixed(0)} s)\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'el-bench-cli-'));
  fs.rmSync(work, { recursive: true });
  execFileSync('cp', ['-al', cacheDir, work]);
  const repo = path.join(work, 'repo');
  const storeDir = path.join(work, info.storeDir as string);
  try {
    const emptyNode = median(Array.from({ length: 3 }, () => { const t = performance.now(); spawnSync(process.execPath, ['-e', '0']); return performance.now() - t; }));
    const help = opts.only === 'in-process' ? { wallMs: NaN } : cli(['--version']);
    const rows: Record<string, ProcessRun[]> = { 'index, nothing changed': [], 'index, one file edited': [], 'search, cold (hybrid)': [], 'search, cold (lexical)': [] };
    const files = info.files as number;
    const others = opts.compare ? opts.compare.split(',').map((c) => path.resolve(c)) : [];
    const otherLabels = opts.labels ? opts.labels.split(',') : others.map((_, i) => `compare${i + 1}`);
    if (others.length && (opts.only !== 'search' || otherLabels.length !== others.length)) throw new Error('--compare needs --only search, and one --labels name per launcher');
    const otherRows = others.map(() => ({ 'search, cold (hybrid)': [] as ProcessRun[], 'search, cold (lexical)': [] as ProcessRun[] }));
    for (let run = 0; run < (opts.only === 'in-process' ? 0 : RUNS); run++) {
      const f = Math.floor(((run + 1) * files) / (RUNS + 2));
      if (opts.only === 'search') {
        for (const [i, launcher] of others.entries()) {
          otherRows[i]!['search, cold (hybrid)'].push(cli(['search', repo, `parse the config cache of file ${f}`, '--json', '-q'], launcher));
          otherRows[i]!['search, cold (lexical)'].push(cli(['search', repo, 'configCache parse', '--mode', 'lexical', '--json', '-q'], launcher));
        }
        rows['search, cold (hybrid)'].push(cli(['search', repo, `parse the config cache of file ${f}`, '--json', '-q']));
        rows['search, cold (lexical)'].push(cli(['search', repo, 'configCache parse', '--mode', 'lexical', '--json', '-q']));
        continue;
      }
      rows['index, nothing changed'].push(cli(['index', repo, '--json', '-q']));
      replaceFile(path.join(repo, fileName(f)), fileText(f, 6, `edit ${run}`));
      const edit = cli(['index', repo, '--json', '-q']);
      const s = JSON.parse(edit.stdout);
      if (s.filesIndexed !== 1 || s.chunksEmbedded < 1) throw new Error(`expected one file re-indexed, got ${edit.stdout}`);
      rows['index, one file edited'].push(edit);
      rows['search, cold (hybrid)'].push(cli(['search', repo, `parse the config cache of file ${f}`, '--json', '-q']));
      rows['search, cold (lexical)'].push(cli(['search', repo, 'configCache parse', '--mode', 'lexical', '--json', '-q']));
    }
    if (opts.only === 'search') {
      others.forEach((launcher, i) => reportSearchOnly(otherRows[i]!, info, storeDir, emptyNode, help.wallMs, launcher, otherLabels[i]));
      reportSearchOnly(rows, info, storeDir, emptyNode, help.wallMs, CLI, opts.label);
      return;
    }
    // In process: the engine holds the model and the open index; one file edited and saved.
    const { extractor, embedder, chunkTokens } = await loadModel({ model: opts.model, offline: true }, quiet);
    const ws = Workspace.at(repo, { logger: quiet });
    await ws.refresh(embedder, { chunkTokens }); // opens the index (the editor's engine keeps it open)
    // Twice: a refresh that walks the folder (the CLI's, and the editor's after a file-system event),
    // then one given the saved file's path (the editor's save: no walk). Each edits a different file.
    // After each path edit, the first hybrid search (what a search right after a save waits for).
    const inProcess: Record<'walk' | 'path', { ms: number; cpuMs: number; modelMs: number; searchMs?: number }[]> = { walk: [], path: [] };
    let pathsIgnored = false;
    for (const mode of ['walk', 'path'] as const) {
      for (let run = 0; run < RUNS; run++) {
        const f = Math.floor(((run + 1) * files) / (RUNS + 2)) + (mode === 'walk' ? 1 : 2);
        replaceFile(path.join(repo, fileName(f)), fileText(f, 6, `in-process edit ${mode} ${run}`));
        const t = performance.now();
        const c = process.cpuUsage();
        const s = await ws.refresh(embedder, { chunkTokens, ...(mode === 'path' ? { paths: [path.join(repo, fileName(f))] } : {}) });
        const d = process.cpuUsage(c);
        // A build without the saved-path refresh (an earlier commit, run from its own checkout) walks in both modes.
        const honoured = (s as { onlyPaths?: number }).onlyPaths === 1;
        if (s.filesIndexed !== 1 || s.chunksEmbedded < 1 || (mode === 'walk' && honoured)) throw new Error(`expected one file re-indexed (${mode}), got ${JSON.stringify({ ...s, skipped: s.skipped.length })}`);
        if (mode === 'path' && !honoured) pathsIgnored = true;
        const ms = performance.now() - t;
        let searchMs: number | undefined;
        if (mode === 'path') {
          const ts = performance.now();
          await ws.search(`parse the config cache of file ${f}`, { embedder }, { mode: 'hybrid' });
          searchMs = performance.now() - ts;
        }
        inProcess[mode].push({ ms, cpuMs: (d.user + d.system) / 1000, modelMs: s.modelMs, searchMs });
      }
    }
    await extractor.dispose();

    const summary = Object.fromEntries(Object.entries(rows).filter(([, rs]) => rs.length).map(([k, rs]) => {
      const t = (key: string) => median(rs.map((r) => r.timings?.[key] ?? NaN));
      return [k, {
        wallMs: Math.round(median(rs.map((r) => r.wallMs))),
        cpuMs: Math.round(median(rs.map((r) => r.cpuMs))),
        peakRssMiB: median(rs.map((r) => r.peakRssMiB)),
        // each mark: ms since the process started (node start + bundle load = cliLoaded)
        marks: Object.fromEntries(Object.keys(rs[0].timings ?? {}).filter((m) => m !== 'cpuMs' && m !== 'peakRssMiB').map((m) => [m, Math.round(t(m))])),
        runs: rs.map((r) => Math.round(r.wallMs)),
      }];
    }));
    const result = {
      date: new Date().toISOString(),
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
      node: process.version,
      cli: path.relative(REPO, CLI),
      ...info,
      storeBytes: dirBytes(storeDir),
      emptyNodeProcessMs: Math.round(emptyNode),
      versionProcessMs: Math.round(help.wallMs),
      processes: summary,
      // runs[0] of `walk` is the first edit after opening (the model's and the chunker's first call for it)
      inProcessEdit: Object.fromEntries((['walk', 'path'] as const).map((mode) => [mode, {
        ms: Math.round(median(inProcess[mode].map((r) => r.ms))),
        cpuMs: Math.round(median(inProcess[mode].map((r) => r.cpuMs))),
        modelMs: Math.round(median(inProcess[mode].map((r) => r.modelMs))),
        runs: inProcess[mode].map((r) => Math.round(r.ms)),
        ...(mode === 'path' ? { searchAfterMs: Math.round(median(inProcess[mode].map((r) => r.searchMs!))), searchRuns: inProcess[mode].map((r) => Math.round(r.searchMs!)) } : {}),
      }])) as Record<'walk' | 'path', { ms: number; cpuMs: number; modelMs: number; runs: number[]; searchAfterMs?: number; searchRuns?: number[] }>,
      engineRssMiB: Math.round(process.memoryUsage().rss / 1048576),
      ...(pathsIgnored ? { note: 'this build ignores the saved path (no such refresh): its "saved path given" rows walked the folder' } : {}),
    };
    const lines = ['| process | wall ms (median of ' + RUNS + ') | CPU ms | peak RSS MiB | marks: ms since process start |', '|---|---:|---:|---:|---|'];
    for (const [k, v] of Object.entries(summary)) lines.push(`| ${k} | ${v.wallMs} | ${v.cpuMs} | ${v.peakRssMiB} | ${Object.entries(v.marks).map(([m, ms]) => `${m} ${ms}`).join(', ')} |`);
    for (const [mode, label] of [['walk', 'folder walked'], ['path', pathsIgnored ? 'saved path given, ignored by this build: walked' : 'saved path given']] as const) {
      const r = result.inProcessEdit[mode];
      lines.push(`| one file edited, in process (model loaded, index open; ${label}) | ${r.ms} | ${r.cpuMs} | | model ${r.modelMs} ms; runs ${r.runs.join(', ')} |`);
    }
    const p = result.inProcessEdit.path;
    lines.push(`| hybrid search right after that save, in process | ${p.searchAfterMs} | | ${result.engineRssMiB} (the benchmark process at the end) | runs ${p.searchRuns!.join(', ')} |`);
    console.log(lines.join('\n'));
    console.log(`(${info.chunks} chunks in ${files} files, index ${(result.storeBytes / 1e6).toFixed(1)} MB; an empty node process: ${result.emptyNodeProcessMs} ms, \`embedding-lens --version\`: ${result.versionProcessMs} ms)`);
    const out = path.join(REPO, 'bench', `results-cli-${CHUNKS}${opts.label ? `-${opts.label}` : ''}${opts.only ? `-${opts.only}` : ''}.json`);
    fs.writeFileSync(out, JSON.stringify({ ...result, table: lines.join('\n') }, null, 2) + '\n');
    console.log(`wrote ${out}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
