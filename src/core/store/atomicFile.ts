// Crash-safe file writes for the stores.
//
// The rule everywhere in this folder: a file becomes visible under its final name only once its bytes
// are on disk. We write to a temporary file in the SAME directory (rename is atomic only within one
// file system), fsync it, rename it over the final name, then fsync the directory so the rename itself
// survives a power cut. A reader therefore sees the old file or the new one, never a mix.
// (`write-file-atomic` does the first three steps but not the directory fsync, and we also need the
// same protocol for files written by native code — hnswlib, HDF5 — so it is a few lines here.)

import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/** A temporary name next to `finalPath`, unique per process and call; starts with a dot so listings hide it. */
export function tempPathFor(finalPath: string): string {
  const dir = path.dirname(finalPath);
  const base = path.basename(finalPath);
  return path.join(dir, `.${base}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** True for names made by `tempPathFor` (so a later save can sweep leftovers of a killed process). */
export function isTempName(name: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}

/** fsync a directory so that renames/unlinks in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync an existing file by path (for files written by native code that we cannot fsync ourselves). */
export async function fsyncFile(filePath: string): Promise<void> {
  const handle = await fsp.open(filePath, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Rename a finished (already fsynced) temp file over its final name and make the rename durable. */
export async function commitTempFile(tempPath: string, finalPath: string): Promise<void> {
  await fsp.rename(tempPath, finalPath);
  await fsyncDir(path.dirname(finalPath));
}

/** Best-effort removal (used on error paths; never masks the original error). */
export async function removeQuietly(filePath: string): Promise<void> {
  await fsp.rm(filePath, { force: true }).catch(() => undefined);
}

/**
 * Delete the files of `dir` whose names match `pattern` but are not in `keep` (segment files that no
 * committed manifest names any more: superseded, or written by a process killed before its commit).
 */
export async function sweepUnreferenced(dir: string, pattern: { test(name: string): boolean }, keep: ReadonlySet<string>): Promise<void> {
  let removed = false;
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (pattern.test(name) && !keep.has(name)) {
      await removeQuietly(path.join(dir, name));
      removed = true;
    }
  }
  if (removed) await fsyncDir(dir).catch(() => undefined);
}

/** Write `data` to `finalPath` atomically: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(finalPath: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(finalPath);
  try {
    const handle = await fsp.open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await commitTempFile(tmp, finalPath);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}

/**
 * `writeFileAtomic` for synchronous callers (small records read back on a synchronous path, e.g. the
 * model digest cache): the same temp name, fsync, rename and directory fsync.
 */
export function writeFileAtomicSync(finalPath: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(finalPath);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, finalPath);
    const dir = fs.openSync(path.dirname(finalPath), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Delete temp files left in `dir` by killed writers: names made by `tempPathFor` (plus any extra
 * `pattern`, for names an older build used) whose last change is older than `olderThanMs`. The age
 * keeps a temp file that another live process is about to rename. Best effort; returns how many went.
 * For folders without a writer lock (caches); the stores sweep under their lock with sweepUnreferenced.
 */
export function sweepStaleTempFilesSync(dir: string, olderThanMs: number, pattern?: RegExp): number {
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  const now = Date.now();
  for (const name of names) {
    if (!isTempName(name) && !pattern?.test(name)) continue;
    const file = path.join(dir, name);
    try {
      if (now - fs.statSync(file).mtimeMs < olderThanMs) continue;
      fs.rmSync(file, { force: true });
      removed++;
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/**
 * A file written incrementally under a temp name and published atomically by `commit()`.
 * Used by the streaming writers (.npy, FAISS) so an interrupted export never leaves a half file
 * under the name the user asked for.
 */
export class AtomicFileWriter {
  private position = 0;
  private closed = false;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  static async open(finalPath: string): Promise<AtomicFileWriter> {
    const tmp = tempPathFor(finalPath);
    const handle = await fsp.open(tmp, 'wx', 0o644);
    return new AtomicFileWriter(finalPath, tmp, handle);
  }

  get bytesWritten(): number {
    return this.position;
  }

  /** Append bytes at the end. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, off, data.byteLength - off, this.position);
      off += bytesWritten;
      this.position += bytesWritten;
    }
  }

  /** Overwrite bytes at an absolute offset already written (header patching). */
  async writeAt(data: Uint8Array, offset: number): Promise<void> {
    if (offset + data.byteLength > this.position) throw new Error('writeAt past the end of the written data');
    let off = 0;
    while (off < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, off, data.byteLength - off, offset + off);
      off += bytesWritten;
    }
  }

  /** fsync, close, rename to the final name, fsync the directory. */
  async commit(): Promise<void> {
    if (this.closed) throw new Error('AtomicFileWriter already closed');
    this.closed = true;
    try {
      await this.handle.sync();
      await this.handle.close();
      await commitTempFile(this.tempPath, this.finalPath);
    } catch (err) {
      await removeQuietly(this.tempPath);
      throw err;
    }
  }

  /** Drop the temp file; the final name is untouched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
    await removeQuietly(this.tempPath);
  }
}

export interface FileDigest {
  sha256: string;
  bytes: number;
  /**
   * CRC-32 of the bytes (written beside sha256 since store segments are checked on every open: zlib's
   * CRC-32 ran at 3.5 GB/s here against 1.35 GB/s for sha256, 48 vs 124 ms for a 100k-chunk HNSW file).
   * It detects every burst error up to 32 bits and any other damage with probability 1 − 2⁻³²; sha256
   * stays for readers without zlib.crc32 and for entries written before it.
   */
  crc32?: number;
}

/** zlib.crc32 exists from Node 20.15 / 22.2; an older runtime (an older VS Code's Electron) checks sha256. */
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** sha256 (hex) and size of a file, streamed. */
export async function digestFile(filePath: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(filePath, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export function digestBytes(data: Uint8Array): FileDigest {
  return { sha256: createHash('sha256').update(data).digest('hex'), bytes: data.byteLength, ...(crc32 ? { crc32: crc32(data) } : {}) };
}

/**
 * Whether `data` is the file `entry` describes: its size, then its CRC-32 when both sides have one, else its
 * sha256. An entry written before CRC-32s that passes its sha256 gets its CRC-32 noted in place, so the next
 * manifest a writer commits carries it (segments are immutable, so it stays true).
 */
export function matchesDigest(data: Uint8Array, entry: FileDigest): boolean {
  if (data.byteLength !== entry.bytes) return false;
  if (crc32 && typeof entry.crc32 === 'number') return crc32(data) === entry.crc32;
  if (createHash('sha256').update(data).digest('hex') !== entry.sha256) return false;
  if (crc32) entry.crc32 = crc32(data);
  return true;
}
