// Workspace discovery: which files of a folder are worth indexing, and why the others are not.
// Walks the tree honouring nested .gitignore files, default excludes and user globs; reading a file
// (readIndexableText) decides binary / undecodable / minified / too large, each with a reason.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
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
 * Lists the indexable candidates under `root` (sorted by path). Content checks (binary, minified,
 * encoding) happen when a file is read, in readIndexableText; only name- and size-based skips here.
 */
export async function discoverFiles(root: string, options: DiscoverOptions = {}): Promise<Discovery> {
  const absRoot = path.resolve(root);
  let rootStat;
  try {
    rootStat = await fs.stat(absRoot);
  } catch (err) {
    throw new UserError(`Folder "${root}" does not exist or cannot be read (${errCode(err) ?? String(err)}).`);
  }
  if (!rootStat.isDirectory()) throw new UserError(`"${root}" is not a folder.`);

  const useDefaults = options.useDefaultExcludes ?? true;
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const follow = options.followSymlinks ?? true;
  const useGitignore = options.useGitignore ?? true;
  const excludedDirs = new Set(useDefaults ? DEFAULT_EXCLUDED_DIRS : []);
  const defaultFileMatch = useDefaults ? picomatch([...DEFAULT_EXCLUDED_FILES], { basename: true, dot: true }) : () => false;
  const includeMatch = options.include?.length ? picomatch(options.include, { dot: true }) : null;
  const excludeMatch = options.exclude?.length ? picomatch(options.exclude, { dot: true }) : null;

  const files: DiscoveredFile[] = [];
  const skipped: SkippedFile[] = [];
  let ignoredCount = 0;
  const visitedDirs = new Set<string>([await fs.realpath(absRoot)]);

  const walk = async (absDir: string, relDir: string, levels: IgnoreLevel[]): Promise<void> => {
    options.signal?.throwIfAborted();
    let entries;
    try {
      entries = await fs.readdir(absDir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ path: relDir || '.', reason: 'unreadable', detail: errCode(err) });
      return;
    }
    let here = levels;
    if (useGitignore && entries.some((e) => e.name === '.gitignore' && !e.isDirectory())) {
      try {
        const text = await fs.readFile(path.join(absDir, '.gitignore'), 'utf8');
        here = [...levels, { base: relDir, rules: ignore().add(text) }];
      } catch (err) {
        options.logger?.warn(`Could not read ${relDir ? relDir + '/' : ''}.gitignore (${errCode(err)}); its rules are not applied.`);
      }
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const abs = path.join(absDir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      let stat: import('node:fs').Stats | undefined;
      if (entry.isSymbolicLink()) {
        if (!follow) { ignoredCount++; continue; }
        try {
          stat = await fs.stat(abs);
        } catch (err) {
          const code = errCode(err);
          skipped.push({ path: rel, reason: code === 'ELOOP' ? 'symlink-loop' : 'unreadable', detail: code === 'ENOENT' ? 'broken symbolic link' : code });
          continue;
        }
        isDir = stat.isDirectory();
        isFile = stat.isFile();
      }
      if (isDir) {
        if (excludedDirs.has(entry.name) || ignoredByLevels(here, rel, true)) { ignoredCount++; continue; }
        let real: string;
        try {
          real = await fs.realpath(abs);
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
      if (entry.name === '.gitignore' || defaultFileMatch(rel) || ignoredByLevels(here, rel, false)) { ignoredCount++; continue; }
      if (excludeMatch?.(rel) || (includeMatch && !includeMatch(rel))) { ignoredCount++; continue; }
      const ext = entry.name.includes('.') ? entry.name.slice(entry.name.lastIndexOf('.') + 1).toLowerCase() : '';
      if (BINARY_EXTENSIONS.has(ext)) { skipped.push({ path: rel, reason: 'binary', detail: `.${ext}` }); continue; }
      try {
        stat ??= await fs.stat(abs);
      } catch (err) {
        skipped.push({ path: rel, reason: 'unreadable', detail: errCode(err) });
        continue;
      }
      if (stat.size > maxBytes) {
        skipped.push({ path: rel, reason: 'too-large', detail: `${formatBytes(stat.size)} > ${formatBytes(maxBytes)}` });
        continue;
      }
      files.push({ path: rel, absPath: abs, size: stat.size, mtimeMs: stat.mtimeMs });
    }
  };
  await walk(absRoot, '', []);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root: absRoot, files, skipped, ignoredCount };
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
      before = await fs.stat(absPath);
      if (before.size > (options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES)) {
        return { ok: false, reason: 'too-large', detail: formatBytes(before.size), size: before.size, mtimeMs: before.mtimeMs };
      }
      const data = dataFileReason(absPath, before.size, options.maxDataBytes);
      if (data) return { ok: false, reason: 'data', detail: data, size: before.size, mtimeMs: before.mtimeMs };
      buffer = await fs.readFile(absPath);
      after = await fs.stat(absPath);
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
