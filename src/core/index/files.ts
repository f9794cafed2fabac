// Workspace discovery: which files of a folder are worth indexing, and why the others are not.
// Walks the tree honouring nested .gitignore files, default excludes and user globs; reading a file
// (readIndexableText) decides binary / undecodable / minified / too large, each with a reason.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import picomatch from 'picomatch';
import { UserError, type Logger } from '../types';

/** Folders never worth walking into: VCS data, dependencies, build output, caches. */
export const DEFAULT_EXCLUDED_DIRS: readonly string[] = [
  '.git', '.hg', '.svn', 'node_modules', 'bower_components', 'dist', 'out', 'build', 'target',
  'coverage', '.next', '.nuxt', '.turbo', '.cache', '.parcel-cache', '__pycache__', '.venv', 'venv',
  '.tox', '.mypy_cache', '.pytest_cache', '.gradle', '.idea', '.vs', '.embedding-lens',
];

/**
 * Files never worth indexing by name: VCS data, lock files and generated bundles. In a git worktree or
 * a submodule `.git` is a file (`gitdir: <path>`), not a folder: it is left out like the folder.
 */
export const DEFAULT_EXCLUDED_FILES: readonly string[] = [
  '.git',
  'package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'npm-shrinkwrap.json', 'Cargo.lock',
  'poetry.lock', 'Pipfile.lock', 'composer.lock', 'Gemfile.lock', 'go.sum', 'bun.lockb', 'uv.lock',
  '*.min.js', '*.min.css', '*.min.mjs', '*.map', '*.bundle.js', '*.chunk.js',
];

/** Extensions that are binary by construction: skipped without reading them. */
const BINARY_EXTENSIONS = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'bmp', 'ico', 'webp', 'tif', 'tiff', 'psd', 'pdf', 'zip', 'gz', 'tgz',
  'bz2', 'xz', '7z', 'rar', 'jar', 'war', 'class', 'exe', 'dll', 'so', 'dylib', 'o', 'a', 'lib', 'obj',
  'wasm', 'node', 'onnx', 'pt', 'pth', 'bin', 'safetensors', 'npy', 'npz', 'h5', 'hdf5', 'pkl',
  'parquet', 'sqlite', 'db', 'woff', 'woff2', 'ttf', 'otf', 'eot', 'mp3', 'mp4', 'wav', 'ogg', 'mov',
  'avi', 'webm', 'flac', 'pyc', 'pyo', 'vsix', 'dat', 'faiss', 'hnsw', 'lockb',
]);

export type SkipReason =
  | 'binary' // NUL bytes or a binary extension
  | 'undecodable' // not valid UTF-8
  | 'too-large'
  | 'minified' // very long lines: generated or minified
  | 'unreadable' // permission denied, broken link, vanished
  | 'symlink-loop'
  | 'changing' // kept changing while being read
  | 'empty'
  | 'data'; // structured data (JSON, CSV, XML...) over the data size limit, image markup (SVG), or log output

export const SKIP_REASON_TEXT: Record<SkipReason, string> = {
  binary: 'binary file',
  undecodable: 'not valid UTF-8 text',
  'too-large': 'larger than the size limit',
  minified: 'minified or generated (very long lines)',
  unreadable: 'could not be read',
  'symlink-loop': 'symbolic link loop',
  changing: 'kept changing while being read',
  empty: 'empty or whitespace only',
  data: 'data, image markup or log output, not prose or code',
};

/**
 * Structured-data formats: a large file of them (a tokenizer's vocabulary, benchmark results, fixtures)
 * is thousands of chunks of values that no question is about, costs model time and floods results.
 * Small ones (package.json, tsconfig.json) are configuration and stay indexed.
 */
const DATA_EXTENSIONS = new Set(['json', 'jsonl', 'ndjson', 'geojson', 'csv', 'tsv', 'xml', 'ipynb', 'har']);
/** Image markup: drawing commands, never an answer to a question about code. */
const MARKUP_ASSET_EXTENSIONS = new Set(['svg']);
/**
 * Log output: what a program printed once (timestamps, stack traces, repeated lines), written by a run,
 * not by the workspace's authors; usually ignored by .gitignore, but not in every folder. A log that
 * mentions a word (".gitignore", "retry") outranked the code that does it.
 */
const LOG_EXTENSIONS = new Set(['log']);
/** Data files larger than this are skipped (reason `data`). */
export const DEFAULT_MAX_DATA_BYTES = 32 * 1024;

/** Why a file is left out as data (null: index it), from its name and size alone. */
export function dataFileReason(filePath: string, size: number, maxDataBytes = DEFAULT_MAX_DATA_BYTES): string | null {
  const base = filePath.slice(Math.max(filePath.lastIndexOf('/'), filePath.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  const ext = dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
  if (MARKUP_ASSET_EXTENSIONS.has(ext)) return `image markup (${ext.toUpperCase()})`;
  if (LOG_EXTENSIONS.has(ext)) return 'a .log file';
  if (DATA_EXTENSIONS.has(ext) && size > maxDataBytes) return `${ext.toUpperCase()} data of ${formatBytes(size)}, over the ${formatBytes(maxDataBytes)} limit for data files`;
  return null;
}

export interface DiscoverOptions {
  /** Globs (relative to the root, `/`-separated) a file must match one of; default: every file. */
  include?: string[];
  /** Globs that exclude files, in addition to the defaults. */
  exclude?: string[];
  /** Honour `.gitignore` files (every level). Default true. */
  useGitignore?: boolean;
  /** Use DEFAULT_EXCLUDED_DIRS / DEFAULT_EXCLUDED_FILES. Default true. */
  useDefaultExcludes?: boolean;
  /** Files larger than this are skipped (reason `too-large`). Default 1 MiB. */
  maxFileBytes?: number;
  /** Follow symbolic links (loops are detected and reported). Default true. */
  followSymlinks?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface DiscoveredFile {
  /** Path relative to the root, `/`-separated. */
  path: string;
  absPath: string;
  size: number;
  mtimeMs: number;
}

export interface SkippedFile {
  path: string;
  reason: SkipReason;
  detail?: string;
}

export interface Discovery {
  root: string;
  files: DiscoveredFile[];
  skipped: SkippedFile[];
  /** Files and folders left out by ignore rules, default excludes or globs (not listed one by one). */
  ignoredCount: number;
  /** Folders reached through a symbolic link (a file may then be reachable by two paths, see discoverPaths). */
  linkedDirs: number;
}

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

interface IgnoreLevel {
  /** Folder of the .gitignore, relative to the root ('' for the root). */
  base: string;
  rules: Ignore;
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Is `rel` (file, or folder when `isDir`) ignored by the stack of .gitignore levels? Deeper levels win. */
function ignoredByLevels(levels: IgnoreLevel[], rel: string, isDir: boolean): boolean {
  let ignored = false;
  for (const level of levels) {
    const sub = level.base ? rel.slice(level.base.length + 1) : rel;
    const result = level.rules.test(isDir ? `${sub}/` : sub);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}

/**
 * The rules of one discovery, built once: the full walk (discoverFiles) and the check of named paths
 * (discoverPaths) decide every file and folder with these same functions, so both agree on any path.
 */
class DiscoveryRules {
  readonly maxBytes: number;
  readonly follow: boolean;
  private readonly useGitignore: boolean;
  private readonly excludedDirs: Set<string>;
  /** DEFAULT_EXCLUDED_FILES against a file's name (every pattern is a name: matched without picomatch's `basename` option, which splits every path again and took most of a walk's CPU). */
  private readonly defaultFileMatch: (name: string) => boolean;
  private readonly includeMatch: ((rel: string) => boolean) | null;
  private readonly excludeMatch: ((rel: string) => boolean) | null;

  constructor(private readonly options: DiscoverOptions) {
    const useDefaults = options.useDefaultExcludes ?? true;
    this.maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.follow = options.followSymlinks ?? true;
    this.useGitignore = options.useGitignore ?? true;
    this.excludedDirs = new Set(useDefaults ? DEFAULT_EXCLUDED_DIRS : []);
    this.defaultFileMatch = useDefaults ? picomatch([...DEFAULT_EXCLUDED_FILES], { dot: true }) : () => false;
    this.includeMatch = options.include?.length ? picomatch(options.include, { dot: true }) : null;
    this.excludeMatch = options.exclude?.length ? picomatch(options.exclude, { dot: true }) : null;
  }

  /** The ignore levels below folder `relDir` (its own .gitignore added when it has one and `has` says so). */
  levelsIn(absDir: string, relDir: string, levels: IgnoreLevel[], has: boolean): IgnoreLevel[] {
    if (!this.useGitignore || !has) return levels;
    try {
      const text = fs.readFileSync(path.join(absDir, '.gitignore'), 'utf8');
      return [...levels, { base: relDir, rules: ignore().add(text) }];
    } catch (err) {
      if (errCode(err) === 'ENOENT') return levels;
      this.options.logger?.warn(`Could not read ${relDir ? relDir + '/' : ''}.gitignore (${errCode(err)}); its rules are not applied.`);
      return levels;
    }
  }

  /** Whether a folder is left out (default excludes, .gitignore). */
  dirIgnored(name: string, rel: string, levels: IgnoreLevel[]): boolean {
    return this.excludedDirs.has(name) || ignoredByLevels(levels, rel, true);
  }

  /** A file by its name alone: 'ignored' (rules, globs), a skip (binary extension), or null (a candidate: stat it). */
  fileByName(name: string, rel: string, levels: IgnoreLevel[]): 'ignored' | SkippedFile | null {
    if (name === '.gitignore' || this.defaultFileMatch(name) || ignoredByLevels(levels, rel, false)) return 'ignored';
    if (this.excludeMatch?.(rel) || (this.includeMatch && !this.includeMatch(rel))) return 'ignored';
    const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
    if (BINARY_EXTENSIONS.has(ext)) return { path: rel, reason: 'binary', detail: `.${ext}` };
    return null;
  }

  /** A candidate file by its size: indexable, or skipped as too large. */
  fileBySize(rel: string, abs: string, stat: fs.Stats): DiscoveredFile | SkippedFile {
    if (stat.size > this.maxBytes) return { path: rel, reason: 'too-large', detail: `${formatBytes(stat.size)} > ${formatBytes(this.maxBytes)}` };
    return { path: rel, absPath: abs, size: stat.size, mtimeMs: stat.mtimeMs };
  }
}

const isSkip = (x: DiscoveredFile | SkippedFile): x is SkippedFile => 'reason' in x;

function statRoot(root: string): string {
  const absRoot = path.resolve(root);
  let rootStat;
  try {
    rootStat = fs.statSync(absRoot);
  } catch (err) {
    throw new UserError(`Folder "${root}" does not exist or cannot be read (${errCode(err) ?? String(err)}).`);
  }
  if (!rootStat.isDirectory()) throw new UserError(`"${root}" is not a folder.`);
  return absRoot;
}

/** Entries looked at between two yields to the event loop (the walk's file system calls are synchronous). */
const WALK_SLICE = 512;

/**
 * Lists the indexable candidates under `root` (sorted by path). Content checks (binary, minified,
 * encoding) happen when a file is read, in readIndexableText; only name- and size-based skips here.
 *
 * The walk uses the synchronous readdir/stat (a few µs each from the kernel's caches, against ~25 µs
 * for a round trip through libuv's thread pool: 2,643 files took ~110 ms awaited one by one, ~30 ms this
 * way) and yields to the event loop every WALK_SLICE entries, so a process that serves queries while it
 * walks (the editor's engine) keeps answering them.
 */
export async function discoverFiles(root: string, options: DiscoverOptions = {}): Promise<Discovery> {
  const absRoot = statRoot(root);
  const rules = new DiscoveryRules(options);
  const files: DiscoveredFile[] = [];
  const skipped: SkippedFile[] = [];
  let ignoredCount = 0;
  let linkedDirs = 0;
  let sinceYield = 0;
  const visitedDirs = new Set<string>([fs.realpathSync(absRoot)]);

  const walk = async (absDir: string, relDir: string, levels: IgnoreLevel[]): Promise<void> => {
    options.signal?.throwIfAborted();
    if (sinceYield >= WALK_SLICE) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
      options.signal?.throwIfAborted();
    }
    let entries;
    try {
      entries = fs.readdirSync(absDir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ path: relDir || '.', reason: 'unreadable', detail: errCode(err) });
      return;
    }
    sinceYield += entries.length;
    const here = rules.levelsIn(absDir, relDir, levels, entries.some((e) => e.name === '.gitignore' && !e.isDirectory()));
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const abs = path.join(absDir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      let stat: fs.Stats | undefined;
      if (entry.isSymbolicLink()) {
        if (!rules.follow) { ignoredCount++; continue; }
        try {
          stat = fs.statSync(abs);
        } catch (err) {
          const code = errCode(err);
          skipped.push({ path: rel, reason: code === 'ELOOP' ? 'symlink-loop' : 'unreadable', detail: code === 'ENOENT' ? 'broken symbolic link' : code });
          continue;
        }
        isDir = stat.isDirectory();
        isFile = stat.isFile();
        if (isDir) linkedDirs++;
      }
      if (isDir) {
        if (rules.dirIgnored(entry.name, rel, here)) { ignoredCount++; continue; }
        let real: string;
        try {
          real = fs.realpathSync(abs);
        } catch (err) {
          skipped.push({ path: rel, reason: 'unreadable', detail: errCode(err) });
          continue;
        }
        if (visitedDirs.has(real)) {
          skipped.push({ path: rel, reason: 'symlink-loop', detail: `links back to ${toPosix(path.relative(absRoot, real)) || '.'}` });
          continue;
        }
        visitedDirs.add(real);
        await walk(abs, rel, here);
        continue;
      }
      if (!isFile) { ignoredCount++; continue; } // sockets, fifos, devices
      const byName = rules.fileByName(entry.name, rel, here);
      if (byName === 'ignored') { ignoredCount++; continue; }
      if (byName) { skipped.push(byName); continue; }
      try {
        stat ??= fs.statSync(abs);
      } catch (err) {
        skipped.push({ path: rel, reason: 'unreadable', detail: errCode(err) });
        continue;
      }
      const bySize = rules.fileBySize(rel, abs, stat);
      if (isSkip(bySize)) skipped.push(bySize);
      else files.push(bySize);
    }
  };
  await walk(absRoot, '', []);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root: absRoot, files, skipped, ignoredCount, linkedDirs };
}

/** What discoverPaths found for the paths it was given. */
export interface PathDiscovery {
  /** The given paths that are indexable candidates (as discoverFiles would list them), sorted. */
  files: DiscoveredFile[];
  /** The given paths skipped by name or size (as discoverFiles would report them). */
  skipped: SkippedFile[];
  /** The given paths that are not candidates: gone, left out by the rules, not a plain file (their index entries go). */
  absent: string[];
  /**
   * Set when the given paths cannot be decided one by one and the whole folder must be walked: a
   * .gitignore changed (its rules decide other files), a folder or a symbolic link on the way.
   */
  walkNeeded?: string;
}

/**
 * Decides each of `paths` (relative to `root`, `/`-separated) exactly as discoverFiles would, without
 * walking the folder: only the .gitignore files of the folders on each path are read and each path is
 * stat'ed. For an editor's save: the folder walk stats every file, this stats the saved one.
 * Paths outside the root are ignored. Callers must not rely on it where a folder reached through a
 * symbolic link may list the same file under another path (Discovery.linkedDirs > 0): then walk.
 */
export function discoverPaths(root: string, paths: readonly string[], options: DiscoverOptions = {}): PathDiscovery {
  const absRoot = statRoot(root);
  const rules = new DiscoveryRules(options);
  const out: PathDiscovery = { files: [], skipped: [], absent: [] };
  const levelsOf = new Map<string, IgnoreLevel[] | null>(); // folder → ignore levels below it; null: the folder is not walked
  const levelsBelow = (relDir: string): IgnoreLevel[] | null | 'walk' => {
    const known = levelsOf.get(relDir);
    if (known !== undefined) return known;
    let result: IgnoreLevel[] | null | 'walk';
    const absDir = relDir ? path.join(absRoot, ...relDir.split('/')) : absRoot;
    if (!relDir) {
      result = rules.levelsIn(absRoot, '', [], true);
    } else {
      const slash = relDir.lastIndexOf('/');
      const parent = slash < 0 ? '' : relDir.slice(0, slash);
      const above = levelsBelow(parent);
      if (above === null || above === 'walk') return above;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(absDir);
      } catch {
        st = undefined;
      }
      if (st?.isSymbolicLink()) return 'walk';
      result = !st?.isDirectory() || rules.dirIgnored(relDir.slice(slash + 1), relDir, above) ? null : rules.levelsIn(absDir, relDir, above, true);
    }
    levelsOf.set(relDir, result);
    return result;
  };
  for (const given of [...new Set(paths)]) {
    const rel = toPosix(given);
    const parts = rel.split('/');
    if (!rel || path.isAbsolute(rel) || parts.some((p) => p === '' || p === '.' || p === '..')) continue; // not under the root
    const name = parts[parts.length - 1]!;
    if (name === '.gitignore') return { ...out, walkNeeded: `${rel} changed (its rules decide other files)` };
    const dir = parts.slice(0, -1).join('/');
    const levels = levelsBelow(dir);
    if (levels === 'walk') return { ...out, walkNeeded: `${rel} is reached through a symbolic link` };
    if (levels === null) { out.absent.push(rel); continue; }
    const abs = path.join(absRoot, ...parts);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      out.absent.push(rel);
      continue;
    }
    if (st.isSymbolicLink()) return { ...out, walkNeeded: `${rel} is a symbolic link` };
    if (st.isDirectory()) return { ...out, walkNeeded: `${rel} is a folder` };
    if (!st.isFile()) { out.absent.push(rel); continue; }
    const byName = rules.fileByName(name, rel, levels);
    if (byName === 'ignored') { out.absent.push(rel); continue; }
    if (byName) { out.skipped.push(byName); continue; }
    const bySize = rules.fileBySize(rel, abs, st);
    if (isSkip(bySize)) out.skipped.push(bySize);
    else out.files.push(bySize);
  }
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export interface TextCheckOptions {
  /** A line longer than this marks the file as minified/generated. Default 2000 characters. */
  maxLineLength?: number;
  /** Average characters per line above which a file (over 1 KiB) counts as minified. Default 300. */
  maxAverageLineLength?: number;
  maxFileBytes?: number;
  /** Structured-data files (JSON, CSV, XML...) larger than this are skipped as `data`. Default DEFAULT_MAX_DATA_BYTES (32 KiB). */
  maxDataBytes?: number;
}

export type ReadOutcome =
  | { ok: true; text: string; hash: string; size: number; mtimeMs: number }
  | { ok: false; reason: SkipReason; detail?: string; size?: number; mtimeMs?: number };

/** sha256 of text, first 16 hex characters: identifies content across renames. */
export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Decides whether `buffer` is indexable text; pure, so it is tested without files. */
export function checkText(buffer: Buffer, options: TextCheckOptions = {}): { ok: true; text: string } | { ok: false; reason: SkipReason; detail?: string } {
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (buffer.length > maxBytes) return { ok: false, reason: 'too-large', detail: `${formatBytes(buffer.length)} > ${formatBytes(maxBytes)}` };
  const head = buffer.subarray(0, Math.min(buffer.length, 8192));
  if (head.includes(0)) return { ok: false, reason: 'binary', detail: 'contains NUL bytes' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(buffer);
  } catch {
    return { ok: false, reason: 'undecodable' };
  }
  if (text.trim() === '') return { ok: false, reason: 'empty' };
  const maxLine = options.maxLineLength ?? 2000;
  const maxAvg = options.maxAverageLineLength ?? 300;
  let longest = 0;
  let lines = 1;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      longest = Math.max(longest, i - start);
      start = i + 1;
      lines++;
    }
  }
  longest = Math.max(longest, text.length - start);
  if (longest > maxLine) return { ok: false, reason: 'minified', detail: `a line of ${longest} characters` };
  if (text.length > 1024 && text.length / lines > maxAvg) {
    return { ok: false, reason: 'minified', detail: `${Math.round(text.length / lines)} characters per line on average` };
  }
  return { ok: true, text };
}

/**
 * Reads a file and decides whether it is indexable. The file is stat'ed before and after the read;
 * a file that changes meanwhile is read again, then skipped as `changing` — the text returned is always
 * one consistent version, and `hash` is the hash of exactly that text.
 */
export async function readIndexableText(absPath: string, options: TextCheckOptions = {}): Promise<ReadOutcome> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let before, after, buffer: Buffer;
    try {
      before = await fsp.stat(absPath);
      if (before.size > (options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES)) {
        return { ok: false, reason: 'too-large', detail: formatBytes(before.size), size: before.size, mtimeMs: before.mtimeMs };
      }
      const data = dataFileReason(absPath, before.size, options.maxDataBytes);
      if (data) return { ok: false, reason: 'data', detail: data, size: before.size, mtimeMs: before.mtimeMs };
      buffer = await fsp.readFile(absPath);
      after = await fsp.stat(absPath);
    } catch (err) {
      return { ok: false, reason: 'unreadable', detail: errCode(err) ?? String(err) };
    }
    if (before.mtimeMs !== after.mtimeMs || before.size !== after.size || buffer.length !== after.size) continue;
    const checked = checkText(buffer, options);
    if (!checked.ok) return { ...checked, size: after.size, mtimeMs: after.mtimeMs };
    return { ok: true, text: checked.text, hash: hashText(checked.text), size: after.size, mtimeMs: after.mtimeMs };
  }
  return { ok: false, reason: 'changing' };
}
