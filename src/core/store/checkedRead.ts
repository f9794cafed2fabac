// Reading a segment file with its checksum checked, off the main thread when the file is large.
//
// Every segment file (store, keyword index, catalog) is checked against the size and CRC-32 (or sha256)
// its manifest recorded before a byte of it is used. Checking costs a read of the file plus the checksum
// (at 100k chunks: 237 MB; zlib's CRC-32 runs at ~3.5 GB/s here), and a cold CLI search used to pay all
// of it on the main thread, which also loads the model and makes its ONNX session. Large files are read
// and checked on one worker thread instead: the bytes are read straight into the buffer that is handed
// back (transferred, not copied), and a file only checked (the HNSW graph, which hnswlib reads itself) is
// streamed through a 4 MB buffer, so no second copy of it is ever held. Small files are checked inline,
// where a worker's start (~30 ms) would cost more than it saves.
// Why a worker and not libuv's pool: Node has no asynchronous CRC-32, and the thread pool's asynchronous
// sha256 (crypto.subtle) is 2.6× slower than CRC-32 (1.35 against 3.5 GB/s).
import * as fsp from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { matchesDigest, type FileDigest } from './atomicFile';

/** Why a file failed its check. `missing` carries the error code of the open (ENOENT, EACCES...). */
export type CheckProblem = { kind: 'missing'; code: string } | { kind: 'size'; size: number } | { kind: 'checksum' };

export type Checked = { ok: true; bytes: Uint8Array | null } | { ok: false; problem: CheckProblem };

/** Files from this size up are checked on the worker (tests lower it to run that path on small stores). */
export const checkedReadOptions = { offThreadMinBytes: 4 << 20 };

/**
 * Reads `file` and checks it against `entry` (its size, then its CRC-32 when the entry has one, else its
 * sha256). With `keep: false` only the verdict comes back (bytes: null), and the file is streamed.
 * An entry written before CRC-32s that passes its sha256 gets its CRC-32 noted in place (as matchesDigest).
 * Never throws for a damaged or missing file: the caller words the report (each store has its own).
 */
export async function readChecked(file: string, entry: FileDigest, options: { keep?: boolean } = {}): Promise<Checked> {
  const keep = options.keep !== false;
  if (entry.bytes >= checkedReadOptions.offThreadMinBytes) {
    const worker = verifier();
    // A worker that fails (it cannot start in this host) is not used again; the file is checked inline.
    if (worker) return worker.check(file, entry, keep).catch(() => readChecked(file, entry, options));
  }
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    return { ok: false, problem: { kind: 'missing', code: (err as NodeJS.ErrnoException).code ?? 'unreadable' } };
  }
  if (bytes.byteLength !== entry.bytes) return { ok: false, problem: { kind: 'size', size: bytes.byteLength } };
  if (!matchesDigest(bytes, entry)) return { ok: false, problem: { kind: 'checksum' } };
  return { ok: true, bytes: keep ? bytes : null };
}

// The worker's code, as text (the bundles stay one file each). It reads in 4 MB pieces and checksums each
// piece while it is hot in the cache.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const PIECE = 4 << 20;
let scratch = null;
parentPort.on('message', (m) => {
  let fd;
  try {
    fd = fs.openSync(m.file, 'r');
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, problem: { kind: 'missing', code: err.code || 'unreadable' } });
    return;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== m.bytes) {
      parentPort.postMessage({ id: m.id, ok: false, problem: { kind: 'size', size } });
      return;
    }
    const useCrc = typeof m.crc32 === 'number' && typeof zlib.crc32 === 'function';
    const sha = useCrc ? null : crypto.createHash('sha256');
    const noteCrc = !useCrc && typeof zlib.crc32 === 'function';
    const out = m.keep ? new Uint8Array(new ArrayBuffer(size)) : null;
    if (!out && !scratch) scratch = Buffer.allocUnsafe(PIECE);
    let crc = 0;
    let pos = 0;
    while (pos < size) {
      const want = Math.min(PIECE, size - pos);
      const n = out ? fs.readSync(fd, out, pos, want, pos) : fs.readSync(fd, scratch, 0, want, pos);
      if (n === 0) break;
      const piece = out ? out.subarray(pos, pos + n) : scratch.subarray(0, n);
      if (useCrc || noteCrc) crc = zlib.crc32(piece, crc);
      if (sha) sha.update(piece);
      pos += n;
    }
    if (pos !== size) {
      parentPort.postMessage({ id: m.id, ok: false, problem: { kind: 'size', size: pos } });
      return;
    }
    const ok = useCrc ? crc === m.crc32 : sha.digest('hex') === m.sha256;
    if (!ok) {
      parentPort.postMessage({ id: m.id, ok: false, problem: { kind: 'checksum' } });
      return;
    }
    parentPort.postMessage({ id: m.id, ok: true, bytes: out, crc32: noteCrc ? crc : undefined }, out ? [out.buffer] : []);
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, problem: { kind: 'missing', code: err.code || String(err.message || err) } });
  } finally {
    fs.closeSync(fd);
  }
});
`;

interface Reply {
  id: number;
  ok: boolean;
  problem?: CheckProblem;
  bytes?: Uint8Array | null;
  crc32?: number;
}

/** One worker per process, started on first use; it holds the process open only while a check is pending. */
class Verifier {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      p.resolve(r);
    });
    const fail = (err: Error) => {
      shared = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the file checking thread stopped (exit code ${code})`)));
  }

  async check(file: string, entry: FileDigest, keep: boolean): Promise<Checked> {
    const id = this.next++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, file, bytes: entry.bytes, crc32: entry.crc32, sha256: entry.sha256, keep });
    });
    if (!reply.ok) return { ok: false, problem: reply.problem! };
    if (typeof reply.crc32 === 'number') entry.crc32 = reply.crc32;
    return { ok: true, bytes: reply.bytes ?? null };
  }
}

let shared: Verifier | undefined | null;

/** The process's verifier, or null where worker threads cannot start (then files are checked inline). */
function verifier(): Verifier | null {
  if (shared === undefined) {
    try {
      shared = new Verifier(new Worker(WORKER_SOURCE, { eval: true }));
    } catch {
      shared = null;
    }
  }
  return shared;
}
