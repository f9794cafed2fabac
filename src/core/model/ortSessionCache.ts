// ONNX Runtime sessions made from a cached copy of the graph in ORT's own format, without copying its weights.
//
// Making the session of the default model (90 MB) from its .onnx took 229 ms of main-thread CPU in a cold
// CLI process, most of it ORT copying the weights. ORT can save the graph it built (after the same
// optimisations) in its own format (.ort) and later make a session from those bytes in place
// (session.use_ort_model_bytes_directly + use_ort_model_bytes_for_initializers): 65 ms, with outputs equal
// to the last bit (bench probe, BENCHMARKS.md "Session 6"). The first process pays once for the save
// (the session is made with ORT writing the .ort beside it: +240 ms).
//
// What makes a cached graph safe to use:
//  - Its key names everything the graph depends on: the model's sha256 (the graph and its weight files,
//    the same digest the self-check record uses), the outputs of the variant (which hidden states), the
//    source of the code that adds those outputs, the ONNX Runtime version, the optimisation level, and the
//    machine (ORT warns that a graph optimised at level `all` may hold kernels for this CPU only).
//  - It is committed like the stores' files: ORT writes a temporary file, which is read back, digested
//    (size, CRC-32, sha256), fsynced and renamed; then the record `<key>.json` naming its digest is written
//    atomically, and only a record makes an entry. Before ORT sees a byte of it, the file is checked
//    against the record (checkedRead.ts: off the main thread). Anything that does not match — no record, a
//    damaged record or file, another key — means the session is made from the .onnx as before, and a new
//    entry is written.
//  - The bytes stay referenced as long as the session (ORT uses them in place).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { TOOL_VERSION } from '../types';
import { commitTempFile, digestBytes, sweepStaleTempFilesSync, tempPathFor, writeFileAtomic, type FileDigest } from '../store/atomicFile';
import { readChecked } from '../store/checkedRead';

const CACHE_FORMAT = 'embedding-lens-ort-session';
/** A temp file this old belongs to a writer that was killed (a live one renames it within seconds). */
const STALE_TEMP_MS = 10 * 60_000;

interface Entry extends FileDigest {
  format: typeof CACHE_FORMAT;
  key: string;
  modelSha256: string;
  outputs: string[];
  onnxruntime: unknown;
  createdAt: string;
}

export class OrtSessionCache {
  /** Cached bytes of each session made from them (ORT reads them in place for the session's lifetime). */
  private readonly held = new WeakMap<ort.InferenceSession, Uint8Array>();

  /**
   * `dir`: where entries live; `identity`: what the graph is, besides the outputs (the model's sha256 and
   * the source of the code that edits the graph).
   */
  constructor(
    private readonly dir: string,
    private readonly identity: { modelSha256: string; graphCode: string },
    private readonly logger?: { debug?(message: string): void },
  ) {}

  /** The session for the graph variant with `outputs`: from a checked cache entry, else from `bytes()` (and cached). */
  async session(outputs: string[], bytes: () => Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
    const key = this.key(outputs, options);
    const cached = await this.read(key);
    if (cached) {
      try {
        const session = await ort.InferenceSession.create(cached, {
          ...options,
          graphOptimizationLevel: 'disabled', // optimised when it was saved
          extra: { session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } },
        } as ort.InferenceSession.SessionOptions);
        this.held.set(session, cached);
        this.logger?.debug?.(`cached ORT graph ${key} used (no copy of the weights)`);
        return session;
      } catch (err) {
        this.logger?.debug?.(`the cached ORT graph ${key} was refused by ONNX Runtime (${(err as Error).message}); made from the model`);
      }
    }
    const target = path.join(this.dir, `${key}.ort`);
    let temp: string | undefined;
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      sweepStaleTempFilesSync(this.dir, STALE_TEMP_MS);
      temp = tempPathFor(target);
    } catch {
      temp = undefined; // an unwritable cache: sessions are made from the model every time
    }
    const session = await ort.InferenceSession.create(bytes(), temp
      ? {
        ...options,
        optimizedModelFilePath: temp,
        // ORT warns that a graph saved at level `all` may be specific to this CPU: the key names the CPU.
        logSeverityLevel: 3,
        extra: { session: { save_model_format: 'ORT' } },
      } as ort.InferenceSession.SessionOptions
      : options);
    if (temp) await this.commit(key, outputs, temp, target).catch((err: Error) => this.logger?.debug?.(`the ORT graph could not be cached (${err.message})`));
    return session;
  }

  private key(outputs: string[], options: ort.InferenceSession.SessionOptions): string {
    const machine = [process.platform, process.arch, os.cpus()[0]?.model ?? ''];
    return crypto.createHash('sha256')
      .update(JSON.stringify([CACHE_FORMAT, TOOL_VERSION, this.identity.modelSha256, outputs, this.identity.graphCode, ort.env.versions, options.graphOptimizationLevel ?? 'all', machine]))
      .digest('hex')
      .slice(0, 32);
  }

  /** The checked bytes of the entry `key`, or null (no entry, or one that does not match its record). */
  private async read(key: string): Promise<Uint8Array | null> {
    let entry: Entry;
    try {
      entry = JSON.parse(await fsp.readFile(path.join(this.dir, `${key}.json`), 'utf8'));
    } catch {
      return null;
    }
    if (entry?.format !== CACHE_FORMAT || entry.key !== key || typeof entry.bytes !== 'number' || typeof entry.sha256 !== 'string') return null;
    const checked = await readChecked(path.join(this.dir, `${key}.ort`), entry);
    if (!checked.ok) {
      this.logger?.debug?.(`the cached ORT graph ${key} does not match its record (${checked.problem.kind}); made from the model`);
      return null;
    }
    return checked.bytes;
  }

  private async commit(key: string, outputs: string[], temp: string, target: string): Promise<void> {
    try {
      const bytes = await fsp.readFile(temp);
      const handle = await fsp.open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await commitTempFile(temp, target);
      const entry: Entry = { format: CACHE_FORMAT, key, modelSha256: this.identity.modelSha256, outputs, onnxruntime: ort.env.versions, createdAt: new Date().toISOString(), ...digestBytes(bytes) };
      await writeFileAtomic(path.join(this.dir, `${key}.json`), JSON.stringify(entry, null, 1) + '\n');
    } finally {
      await fsp.rm(temp, { force: true });
    }
    await this.sweepSuperseded(key, outputs);
  }

  /**
   * Removes the entries this one replaces: the same model and outputs under another key (another ONNX
   * Runtime, Embedding Lens or CPU), which no process of this build would use again (~the model's size
   * each). The record goes first, so a reader meanwhile finds no entry or a missing file: never a mismatch used.
   */
  private async sweepSuperseded(key: string, outputs: string[]): Promise<void> {
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{32})\.json$/.exec(name);
      if (!m || m[1] === key) continue;
      try {
        const other = JSON.parse(await fsp.readFile(path.join(this.dir, name), 'utf8')) as Partial<Entry>;
        if (other.format !== CACHE_FORMAT || other.modelSha256 !== this.identity.modelSha256 || JSON.stringify(other.outputs) !== JSON.stringify(outputs)) continue;
        await fsp.rm(path.join(this.dir, name), { force: true });
        await fsp.rm(path.join(this.dir, `${m[1]}.ort`), { force: true });
      } catch {
        // unreadable, or removed meanwhile by another process: left alone
      }
    }
  }
}
