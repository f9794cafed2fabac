// The catalog: what the index holds, per file — size, mtime, content hash, and the chunks made from it
// (or why the file was skipped). It is the authority on what is done: the vector store and the lexical
// index are saved BEFORE the catalog, so after a crash the catalog never claims work that is not on
// disk; anything the store holds beyond it is swept (or reused, when its content hash comes back).
//
// Storage: `catalog.json` is a small manifest (recipe, chunking, root, complete flag, counts, generation)
// naming checksummed `catalog.<g>.seg` segments, oldest first; each holds the entries that changed in
// one save (and the paths removed), in the binary container of the stores (segmentFile.ts). A save
// writes only the changed entries; `compactIfNeeded` rewrites them as one segment. Opening reads the
// manifest and the segment bytes (checked) but decodes entries only when a caller asks for them, so a
// search (which needs only the counts) never decodes the catalog. Format 1 (one JSON with every entry)
// is read once and rewritten as segments at the next save.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { digestBytes, removeQuietly, sweepUnreferenced, writeFileAtomic } from '../store/atomicFile';
import { readChecked } from '../store/checkedRead';
import { SegmentReader, SegmentWriter } from '../store/segmentFile';
import { describeIdentity, sameRecipe, type RecipeIdentity } from '../recipe';
import { indexDamaged, UserError } from '../errors';
import type { SkipReason } from './files';

export const CATALOG_FORMAT_VERSION = 2;
/** Bumped when chunking changes in a way that changes chunk boundaries (forces re-chunking). */
// 3: ids name the function a piece of a long function belongs to (chunkId's `~L…`).
// 4: ids mark a file's header chunks (chunkId's `~H`); the embedded text is unchanged, so vectors are reused.
// 5: a first chunk that opens with the file's description (2+ comment lines) is a header chunk too.
export const CHUNKER_VERSION = 5;
const SEGMENT_MAGIC = 'ELCATSG1';

export interface ChunkRef {
  id: string;
  startLine: number;
  endLine: number;
  contentHash: string;
}

export interface CatalogEntry {
  size: number;
  mtimeMs: number;
  /** Content hash of the whole file (absent when the file could not be read). */
  hash?: string;
  skip?: { reason: SkipReason; detail?: string };
  chunks: ChunkRef[];
}

export interface ChunkingParams {
  version: number;
  maxTokens: number;
  overlapLines: number;
  /** Calibrated tokens-per-rough-token of the model's tokenizer (see calibrateTokenEstimator). */
  scale: number;
}

interface Counts { files: number; skipped: number; chunks: number }

interface SegmentEntry { name: string; sha256: string; crc32?: number; bytes: number; entries: number; removed: number }

interface CatalogManifest {
  formatVersion: number;
  tool: 'embedding-lens';
  identity: RecipeIdentity;
  chunking: ChunkingParams;
  /** Folder that was indexed (absolute), so a store is not reused for another folder by mistake. */
  root: string;
  updatedAt: string;
  /** True once a refresh ran to the end (false while one is in progress or after a cancel/crash). */
  complete: boolean;
  counts: Counts;
  generation: number;
  segments: SegmentEntry[];
}

/** Format 1: one JSON with every entry. */
interface CatalogJsonV1 extends Omit<CatalogManifest, 'counts' | 'generation' | 'segments'> {
  files: Record<string, CatalogEntry>;
}

const FLAG_HASH = 1;
const FLAG_SKIP = 2;
const FLAG_DETAIL = 4;

function encodeSegment(entries: [string, CatalogEntry][], removed: string[]): Uint8Array {
  const n = entries.length;
  const flags = new Uint32Array(n);
  const chunkStart = new Uint32Array(n + 1);
  const chunks: ChunkRef[] = [];
  entries.forEach(([, e], i) => {
    flags[i] = (e.hash !== undefined ? FLAG_HASH : 0) | (e.skip ? FLAG_SKIP : 0) | (e.skip?.detail !== undefined ? FLAG_DETAIL : 0);
    for (const c of e.chunks) chunks.push(c);
    chunkStart[i + 1] = chunks.length;
  });
  const w = new SegmentWriter();
  w.addStrings(entries.map(([p]) => p)); // 0, 1
  w.add(Float64Array.from(entries, ([, e]) => e.size)); // 2
  w.add(Float64Array.from(entries, ([, e]) => e.mtimeMs)); // 3
  w.addStrings(entries.map(([, e]) => e.hash ?? '')); // 4, 5
  w.add(flags); // 6
  w.addStrings(entries.map(([, e]) => e.skip?.reason ?? '')); // 7, 8
  w.addStrings(entries.map(([, e]) => e.skip?.detail ?? '')); // 9, 10
  w.add(chunkStart); // 11
  w.addStrings(chunks.map((c) => c.id)); // 12, 13
  w.add(Uint32Array.from(chunks, (c) => c.startLine)); // 14
  w.add(Uint32Array.from(chunks, (c) => c.endLine)); // 15
  w.addStrings(chunks.map((c) => c.contentHash)); // 16, 17
  w.addStrings(removed); // 18, 19
  return w.encode(SEGMENT_MAGIC);
}

/** Applies one segment to `files` (later segments override earlier ones). */
function applySegment(bytes: Uint8Array, what: string, files: Map<string, CatalogEntry>): void {
  const r = new SegmentReader(bytes, SEGMENT_MAGIC, what);
  const paths = r.strings(0);
  const size = r.f64(2);
  const mtime = r.f64(3);
  const hash = r.strings(4);
  const flags = r.u32(6);
  const reason = r.strings(7);
  const detail = r.strings(9);
  const chunkStart = r.u32(11);
  const ids = r.strings(12);
  const start = r.u32(14);
  const end = r.u32(15);
  const hashes = r.strings(16);
  const removed = r.strings(18);
  if (chunkStart.length !== paths.length + 1 || chunkStart[paths.length] !== ids.length) throw new Error(`${what}: column lengths disagree`);
  for (let i = 0; i < removed.length; i++) files.delete(removed.get(i));
  for (let i = 0; i < paths.length; i++) {
    const chunks: ChunkRef[] = [];
    for (let c = chunkStart[i]; c < chunkStart[i + 1]; c++) chunks.push({ id: ids.get(c), startLine: start[c], endLine: end[c], contentHash: hashes.get(c) });
    const entry: CatalogEntry = { size: size[i], mtimeMs: mtime[i], chunks };
    if (flags[i] & FLAG_HASH) entry.hash = hash.get(i);
    if (flags[i] & FLAG_SKIP) entry.skip = { reason: reason.get(i) as SkipReason, ...(flags[i] & FLAG_DETAIL ? { detail: detail.get(i) } : {}) };
    files.set(paths.get(i), entry);
  }
}

/** The catalog is a record of what was indexed, rebuilt from the files; the vectors stay in the store. */
const REPAIR_HINT = 'Index the folder again: that rebuilds the catalog from the files and reuses the stored vectors (nothing is re-embedded).';

export class Catalog {
  /** Entries, decoded on first use. */
  private decoded: Map<string, CatalogEntry> | null = null;
  /** Paths set or deleted since the last save. */
  private changed = new Set<string>();
  private rewriteAll = false;
  /** Opened with `entries: false`: counts and flags only (see open). */
  private manifestOnly = false;

  private constructor(
    readonly file: string,
    private manifest: CatalogManifest,
    /** Segment bytes read (and checked) at open, not yet decoded. */
    private raw: { entry: SegmentEntry; bytes: Uint8Array }[],
  ) {}

  /**
   * Opens the catalog at `file`, or starts an empty one. A catalog made with other chunking parameters
   * is started afresh (its chunks would not match); one for another recipe or a newer format is an error.
   * A damaged one (corrupt JSON, a missing or truncated segment) is an INDEX_DAMAGED error that a
   * refresh repairs; with `repair` (the writer side) it is started afresh instead and `damaged` says
   * why: the refresh then reads every file again and reuses the vectors the store already holds.
   * With `entries: false` (a search: it needs only the counts and flags of the manifest), the segments'
   * presence and sizes are checked but their bytes are not read; such a catalog has no entries to give.
   */
  static async open(
    file: string,
    init: { identity: RecipeIdentity; chunking?: ChunkingParams; root: string },
    options: { repair?: boolean; entries?: boolean } = {},
  ): Promise<{ catalog: Catalog; reset: boolean; damaged?: string }> {
    let text: string | null = null;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const fresh = (): Catalog => {
      const c = new Catalog(file, {
        formatVersion: CATALOG_FORMAT_VERSION, tool: 'embedding-lens', identity: init.identity,
        chunking: init.chunking ?? { version: CHUNKER_VERSION, maxTokens: 256, overlapLines: 2, scale: 1 },
        root: init.root, updatedAt: new Date().toISOString(), complete: false,
        counts: { files: 0, skipped: 0, chunks: 0 }, generation: 0, segments: [],
      }, []);
      c.decoded = new Map();
      c.rewriteAll = true;
      return c;
    };
    if (text === null) return { catalog: fresh(), reset: false };
    const dir = path.dirname(file);
    const damaged = (message: string, damagedFile: string) => {
      if (options.repair) return { catalog: fresh(), reset: true, damaged: message };
      throw indexDamaged(message, { dir, file: damagedFile, repair: 'refresh' }, REPAIR_HINT);
    };
    let data: CatalogManifest & Partial<CatalogJsonV1>;
    try {
      data = JSON.parse(text);
    } catch {
      return damaged(`The index catalog ${file} is corrupt (not valid JSON).`, file);
    }
    if (typeof data.formatVersion !== 'number' || data.formatVersion > CATALOG_FORMAT_VERSION) {
      throw new UserError(
        `The index at ${dir} was written by a newer version of embedding-lens (catalog format ${data.formatVersion}; this version reads ${CATALOG_FORMAT_VERSION}).`,
        'Update Embedding Lens, or rebuild the index with this version.',
        { code: 'INDEX_NEWER', dir },
      );
    }
    if (!sameRecipe(data.identity, init.identity)) {
      throw new UserError(
        `The index at ${dir} belongs to another model or recipe (${describeIdentity(data.identity)}), not ${describeIdentity(init.identity)}.`,
        'Rebuild the index.',
        { code: 'RECIPE_MISMATCH', dir },
      );
    }
    const c = data.chunking;
    const want = init.chunking;
    if (want && (!c || c.version !== want.version || c.maxTokens !== want.maxTokens || c.overlapLines !== want.overlapLines || c.scale !== want.scale)) {
      return { catalog: fresh(), reset: true };
    }
    let catalog: Catalog;
    if (data.formatVersion < 2) {
      // Format 1: decode once; the next save writes it as one segment.
      const files = new Map(Object.entries(data.files ?? {}));
      const { files: _files, ...rest } = data;
      catalog = new Catalog(file, { ...rest, formatVersion: CATALOG_FORMAT_VERSION, counts: countsOf(files), generation: 0, segments: [] } as CatalogManifest, []);
      catalog.decoded = files;
      catalog.rewriteAll = true;
    } else {
      const raw: { entry: SegmentEntry; bytes: Uint8Array }[] = [];
      const dir = path.dirname(file);
      if (options.entries === false) {
        // Only the manifest is needed (a search reads the counts): each segment's presence and size are
        // checked, its bytes are not read, and the catalog refuses to hand out entries.
        for (const entry of data.segments) {
          const p = path.join(dir, entry.name);
          const size = await fs.stat(p).then((st) => st.size, () => -1);
          if (size < 0) return damaged(`The index catalog segment ${p} is missing.`, p);
          if (size !== entry.bytes) return damaged(`The index catalog segment ${p} is truncated.`, p);
        }
      } else {
        const reads = data.segments.map((entry) => readChecked(path.join(dir, entry.name), entry));
        for (const [i, entry] of data.segments.entries()) {
          const p = path.join(dir, entry.name);
          const checked = await reads[i]!;
          if (!checked.ok) {
            const why = checked.problem.kind === 'missing' ? 'missing' : checked.problem.kind === 'size' ? 'truncated' : 'corrupt (checksum mismatch)';
            return damaged(`The index catalog segment ${p} is ${why}.`, p);
          }
          raw.push({ entry, bytes: checked.bytes! });
        }
      }
      catalog = new Catalog(file, data, raw);
      if (options.entries === false) catalog.manifestOnly = true;
    }
    if (init.root) catalog.manifest.root = init.root;
    return { catalog, reset: false };
  }

  private get files(): Map<string, CatalogEntry> {
    if (this.manifestOnly) throw new Error('This catalog was opened with `entries: false`: it has no entries to hand out.');
    if (!this.decoded) {
      const files = new Map<string, CatalogEntry>();
      for (const { entry, bytes } of this.raw) {
        try {
          applySegment(bytes, path.join(path.dirname(this.file), entry.name), files);
        } catch (err) {
          throw indexDamaged(`The index catalog is corrupt (${(err as Error).message}).`, { dir: path.dirname(this.file), file: this.file });
        }
      }
      this.decoded = files;
      this.raw = [];
    }
    return this.decoded;
  }

  get identity(): RecipeIdentity { return this.manifest.identity; }
  get complete(): boolean { return this.manifest.complete; }
  set complete(value: boolean) { this.manifest.complete = value; }
  get updatedAt(): string { return this.manifest.updatedAt; }
  get root(): string { return this.manifest.root; }
  get chunking(): ChunkingParams { return this.manifest.chunking; }

  paths(): string[] { return [...this.files.keys()]; }
  get(p: string): CatalogEntry | undefined { return this.files.get(p); }
  set(p: string, entry: CatalogEntry): void {
    this.files.set(p, entry);
    this.changed.add(p);
  }
  delete(p: string): void {
    if (this.files.delete(p)) this.changed.add(p);
  }

  *chunks(): Iterable<ChunkRef & { path: string }> {
    for (const [p, entry] of this.files) {
      for (const chunk of entry.chunks) yield { ...chunk, path: p };
    }
  }

  /** Counts; from the manifest while the entries are not decoded (a search never decodes them). */
  counts(): Counts {
    return this.decoded ? countsOf(this.decoded) : { ...this.manifest.counts };
  }

  get segmentCount(): number {
    return this.manifest.segments.length;
  }

  /** True when the segments should be rewritten as one: many of them, or many superseded entries. */
  needsCompaction(): boolean {
    const segs = this.manifest.segments;
    const written = segs.reduce((s, e) => s + e.entries + e.removed, 0);
    return segs.length > 16 || (segs.length > 1 && written > 1.25 * this.manifest.counts.files + this.manifest.counts.skipped + 256);
  }

  /** Commits the changed entries as a new segment (every entry after `compact` or a format change). */
  async save(options: { compact?: boolean } = {}): Promise<void> {
    const all = this.rewriteAll || options.compact === true;
    // Entries never decoded cannot have changed: then only the manifest (flags, time) is written.
    const files = all || this.decoded ? this.files : new Map<string, CatalogEntry>();
    const dir = path.dirname(this.file);
    await fs.mkdir(dir, { recursive: true });
    const g = this.manifest.generation + 1;
    let entry: SegmentEntry | null = null;
    const name = `catalog.${g}.seg`;
    const entries: [string, CatalogEntry][] = all ? [...files] : [...this.changed].filter((p) => files.has(p)).map((p) => [p, files.get(p)!]);
    const removed = all ? [] : [...this.changed].filter((p) => !files.has(p));
    if (all || entries.length > 0 || removed.length > 0) {
      const bytes = encodeSegment(entries, removed);
      await writeFileAtomic(path.join(dir, name), bytes);
      entry = { name, ...digestBytes(bytes), entries: entries.length, removed: removed.length };
    }
    const manifest: CatalogManifest = {
      ...this.manifest,
      updatedAt: new Date().toISOString(),
      counts: this.decoded ? countsOf(this.decoded) : this.manifest.counts,
      generation: g,
      segments: all ? [entry!] : entry ? [...this.manifest.segments, entry] : this.manifest.segments,
    };
    try {
      await writeFileAtomic(this.file, JSON.stringify(manifest, null, 1));
    } catch (err) {
      if (entry) await removeQuietly(path.join(dir, name));
      throw err;
    }
    this.manifest = manifest;
    this.changed.clear();
    this.rewriteAll = false;
    await sweepUnreferenced(dir, /^catalog\.\d+\.seg$/, new Set(manifest.segments.map((s) => s.name)));
  }

  /** Rewrite the segments as one when due (see needsCompaction); returns true when it did. */
  async compactIfNeeded(): Promise<boolean> {
    if (!this.needsCompaction()) return false;
    await this.save({ compact: true });
    return true;
  }
}

function countsOf(files: Map<string, CatalogEntry>): Counts {
  let nFiles = 0, skipped = 0, chunks = 0;
  for (const entry of files.values()) {
    if (entry.skip) skipped++;
    else nFiles++;
    chunks += entry.chunks.length;
  }
  return { files: nFiles, skipped, chunks };
}

export { sameRecipe, describeIdentity } from '../recipe';
