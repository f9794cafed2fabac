// The on-disk vector store the extension searches: a segment store whose write cost follows the change.
//
// Folder layout (one committed generation g at a time, named by manifest.json):
//   manifest.json         format version, recipe, index parameters, counts, generation, and the list of
//                         segment files with their sha256 and size
//   index.<b>.hnsw        base segment: hnswlib's own file (an HNSW graph over the base chunks)
//   metadata.<b>.bin      base segment: label → chunk id, path, line range, content hash, with lookup
//                         orders by id and by path stored beside it (storeSegments.ts; viewed in place)
//   delta.<d>.seg         delta segments, oldest first: chunks added since the base (records + vectors)
//                         and tombstones (labels deleted), each committed by the generation d that wrote it
//
// A save writes only a new delta segment (the chunks changed since the last save) and the manifest.
// Queries merge the base's HNSW search with an exact search over the delta rows. Compaction folds the
// deltas into a new base (index + metadata) when they pass a share of the base; it is a separate call
// (`compactIfNeeded`), so the edit path never pays for it.
//
// Commit protocol (crash safety, the same for a delta and for a compaction): write the new segment files
// (each temp + fsync + rename), verify them, then atomically replace manifest.json naming generation g+1
// and the files' sha256, then delete files no manifest names any more. A process killed at any instant
// leaves manifest.json naming a complete generation: g (whose files are deleted only after the new
// manifest is durable) or g+1. Open checks every file against the manifest's size and checksum before it
// is decoded or searched (large files on a worker thread, checkedRead.ts); the HNSW file is read by
// hnswlib while its checksum is computed, once its layout is known to be sound (checkHnswlibLayout), and
// the store is handed out only when both are done. A damaged delta can be dropped by an open with
// `repair` (the chunks it held are then missing, and the indexer re-embeds the files it covered).
//
// Single writer per folder (the indexer's writer lock covers saves and compactions); readers may run at any time.

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import hnswlib from 'hnswlib-node';
import { indexDamaged, UserError } from '../errors';
import { assertSameRecipe, type RecipeIdentity } from '../recipe';
import { TOOL_VERSION } from '../types';
import {
  commitTempFile,
  digestBytes,
  fsyncDir,
  isTempName,
  removeQuietly,
  sweepUnreferenced,
  tempPathFor,
  writeFileAtomic,
  type FileDigest,
} from './atomicFile';
import { readChecked, type Checked } from './checkedRead';
import { checkHnswlibLayout, parseHnswlibFile, validateHnswlibFile, type HnswlibHeader } from './hnswlibFile';
import { BaseMeta, decodeDelta, encodeBaseMeta, encodeDelta, type LabeledRecord } from './storeSegments';

const { HierarchicalNSW } = hnswlib;
type HnswIndex = InstanceType<typeof HierarchicalNSW>;

export const STORE_FORMAT = 'embedding-lens-store';
/** 1: one HNSW file + JSON metadata per generation (read, and rewritten as 2 at the next save). 2: segments. */
export const STORE_FORMAT_VERSION = 2;
export const MANIFEST_NAME = 'manifest.json';
/**
 * Chosen from bench/store.ts (bench/results-store.json), 100k × 384 clustered, M=16, efConstruction=200:
 * recall@10 was 0.801 at ef=10, 0.990 at ef=50, 1.000 at ef=100 and 200, with p50 latency ~0.5 ms for
 * all of them. 50 meets the 0.98 goal with little margin on synthetic data; 100 costs nothing noticeable
 * and leaves room for real embeddings, which cluster less cleanly.
 */
export const DEFAULT_EF_SEARCH = 100;

/**
 * The search breadth a graph of `live` points gets by default: `base` (the store's efSearch) up to 100k
 * points, doubled for every tenfold past that (at most 8 × base), because HNSW's recall at a fixed ef falls
 * as the graph grows. Measured (bench/segments.ts, clustered 384-dim vectors, M 16): 100k points,
 * efConstruction 200: recall@10 1.000 at ef 100; 1M points, efConstruction 100 (the cheaper build, so the
 * worse graph): 0.926 at ef 100, 0.970 at ef 200 (p50 1.4 ms). A query's own `ef` overrides it.
 */
export function efSearchForSize(live: number, base = DEFAULT_EF_SEARCH): number {
  if (live <= 100_000) return base;
  return Math.min(Math.ceil(base * 2 ** Math.log10(live / 100_000)), 8 * base);
}
/** Points a compaction adds to the graph between two yields to the event loop (~50-100 ms of work at 1M). */
const FOLD_SLICE = 64;

export type StoreMetric = 'cosine' | 'ip' | 'l2';

export interface StoreOptions {
  /** Default `cosine` (score = cosine similarity). `ip`: score = dot product. `l2`: score = −squared distance. */
  metric?: StoreMetric;
  /** HNSW links per node (level 0 gets 2M). Default 16. */
  M?: number;
  efConstruction?: number;
  /** Search breadth when `query` gets no `ef`, up to 100k points (it grows with the graph: efSearchForSize). */
  efSearch?: number;
  /** Initial capacity; the index grows by itself. Default 1024. */
  initialCapacity?: number;
  /** Compaction rebuilds the HNSW graph when deleted labels exceed this fraction of its labels... Default 0.25. */
  compactRatio?: number;
  /** ...and at least this many. Default 256. */
  compactMinDeleted?: number;
  /** Compaction is due when the delta rows pass this share of the base rows... Default 0.1. */
  deltaShare?: number;
  /** ...but never below this many rows (exact search over them is cheap)... Default 1024. */
  deltaMinRows?: number;
  /** ...and always above this many (keeps the exact part of a query under a few ms). Default 16384. */
  deltaMaxRows?: number;
  /** Compaction is also due at this many delta segments. Default 64. */
  maxDeltaSegments?: number;
  /** Seed of hnswlib's level generator (deterministic builds). Default 100. */
  seed?: number;
}

/** One stored chunk's description. `id` is unique in the store (upsert replaces the same id). */
export interface ChunkRecord {
  id: string;
  path: string;
  startLine: number;
  endLine: number;
  contentHash: string;
}

export interface QueryHit extends ChunkRecord {
  label: number;
  /** Higher is better: cosine similarity, dot product, or −squared L2 distance. */
  score: number;
  /** hnswlib's distance (1 − cos, 1 − dot, squared L2). */
  distance: number;
}

export interface StoreStats {
  dir: string;
  generation: number;
  count: number;
  /** Deleted labels still in the HNSW graph (dropped by a compaction that rebuilds it). */
  deleted: number;
  capacity: number;
  paths: number;
  dims: number;
  metric: StoreMetric;
  M: number;
  efConstruction: number;
  efSearch: number;
  recipe: RecipeIdentity;
  /** Bytes of the committed files (0 before the first save of a new store). */
  bytesOnDisk: number;
  dirty: boolean;
  /** Live chunks in the base segment. */
  baseRows: number;
  /** Live chunks in delta segments (saved or not yet saved), searched exactly. */
  deltaRows: number;
  /** Committed delta segment files. */
  deltaSegments: number;
  /** Whether hnswlib has read the base graph (false until first needed in a store opened with `lazyGraph`). */
  graphRead: boolean;
}

interface FileEntry extends FileDigest {
  name: string;
}

/** A committed delta segment: its file, what it holds, and the files it covered (for repair). */
export interface DeltaEntry extends FileEntry {
  rows: number;
  tombstones: number;
  paths: string[];
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  formatVersion: number;
  toolVersion: string;
  recipe: RecipeIdentity;
  metric: StoreMetric;
  M: number;
  efConstruction: number;
  efSearch: number;
  seed: number;
  compactRatio: number;
  compactMinDeleted: number;
  deltaShare: number;
  deltaMinRows: number;
  deltaMaxRows: number;
  maxDeltaSegments: number;
  /** Live chunks of the generation. */
  count: number;
  /** Deleted labels inside the base HNSW file. */
  deleted: number;
  capacity: number;
  nextLabel: number;
  generation: number;
  /** The base segment. */
  files: { index: FileEntry; metadata: FileEntry };
  baseRows: number;
  deltas: DeltaEntry[];
  createdAt: string;
  savedAt: string;
}

/** A delta segment that failed its checksum and was left out by an open with `repair`. */
export interface DroppedDelta {
  file: string;
  /** Files whose chunks it held or deleted: re-index these. */
  paths: string[];
  reason: string;
}

/** v1 metadata.<g>.json: live entries as rows [label, id, path, startLine, endLine, contentHash]. */
interface MetadataFileV1 {
  format: 'embedding-lens-store-metadata';
  generation: number;
  entries: [number, string, string, number, number, string][];
}

export { assertSameRecipe };

function checkVectors(values: Float32Array, dims: number, what: string): number {
  if (values.length % dims !== 0) {
    throw new UserError(`${what}: got ${values.length} values, which is not a multiple of the store's dims ${dims}.`);
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new UserError(`${what}: value ${i % dims} of vector ${Math.floor(i / dims)} is ${values[i]}; vectors must be finite.`);
    }
  }
  return values.length / dims;
}

const repairHint = 'Index the folder again: that drops the damaged segment and re-embeds only the files it held.';

function indexName(g: number): string {
  return `index.${g}.hnsw`;
}
function metadataName(g: number): string {
  return `metadata.${g}.bin`;
}
function deltaName(g: number): string {
  return `delta.${g}.seg`;
}
const GENERATION_FILE = /^(index|metadata|delta)\.(\d+)\.(hnsw|json|bin|seg)$/;

/**
 * Delta rows kept in memory: records, vectors in one growing arena (for the exact search), lookups by
 * id and by path. Rows "folded" into the HNSW graph by a compaction that has not committed yet are
 * skipped by the exact search (the graph finds them).
 */
class DeltaRows {
  readonly records = new Map<number, ChunkRecord>();
  readonly byId = new Map<string, number>();
  readonly byPath = new Map<string, Set<number>>();
  private slotOf = new Map<number, number>();
  private slotLabel = new Int32Array(64).fill(-1);
  private folded = new Uint8Array(64);
  private vectors: Float32Array;
  private used = 0;

  constructor(private readonly dims: number) {
    this.vectors = new Float32Array(64 * dims);
  }

  get size(): number {
    return this.records.size;
  }

  add(label: number, rec: ChunkRecord, vector: Float32Array): void {
    if (this.used === this.slotLabel.length) {
      const cap = this.slotLabel.length * 2;
      const labels = new Int32Array(cap).fill(-1);
      labels.set(this.slotLabel);
      const folded = new Uint8Array(cap);
      folded.set(this.folded);
      const vectors = new Float32Array(cap * this.dims);
      vectors.set(this.vectors);
      this.slotLabel = labels;
      this.folded = folded;
      this.vectors = vectors;
    }
    const slot = this.used++;
    this.slotLabel[slot] = label;
    this.vectors.set(vector, slot * this.dims);
    this.slotOf.set(label, slot);
    this.records.set(label, rec);
    this.byId.set(rec.id, label);
    let set = this.byPath.get(rec.path);
    if (!set) this.byPath.set(rec.path, (set = new Set()));
    set.add(label);
  }

  remove(label: number): ChunkRecord | undefined {
    const rec = this.records.get(label);
    if (!rec) return undefined;
    const slot = this.slotOf.get(label)!;
    this.slotLabel[slot] = -1;
    this.slotOf.delete(label);
    this.records.delete(label);
    this.byId.delete(rec.id);
    const set = this.byPath.get(rec.path)!;
    set.delete(label);
    if (set.size === 0) this.byPath.delete(rec.path);
    return rec;
  }

  vector(label: number): Float32Array | undefined {
    const slot = this.slotOf.get(label);
    return slot === undefined ? undefined : this.vectors.subarray(slot * this.dims, (slot + 1) * this.dims);
  }

  isFolded(label: number): boolean {
    const slot = this.slotOf.get(label);
    return slot !== undefined && this.folded[slot] === 1;
  }
  setFolded(label: number): void {
    const slot = this.slotOf.get(label);
    if (slot !== undefined) this.folded[slot] = 1;
  }
  get unfolded(): number {
    let n = 0;
    for (let s = 0; s < this.used; s++) if (this.slotLabel[s] >= 0 && this.folded[s] === 0) n++;
    return n;
  }

  /** Exact search over the unfolded rows: the `k` smallest distances in hnswlib's definition. */
  search(query: Float32Array, k: number, metric: StoreMetric): { label: number; distance: number }[] {
    const dims = this.dims;
    const best: { label: number; distance: number }[] = [];
    let worst = Infinity;
    const v = this.vectors;
    for (let s = 0; s < this.used; s++) {
      const label = this.slotLabel[s];
      if (label < 0 || this.folded[s] === 1) continue;
      const off = s * dims;
      let d = 0;
      if (metric === 'l2') {
        for (let j = 0; j < dims; j++) {
          const t = v[off + j] - query[j];
          d += t * t;
        }
      } else {
        let dot = 0;
        for (let j = 0; j < dims; j++) dot += v[off + j] * query[j];
        d = 1 - dot;
      }
      if (best.length < k || d < worst) {
        let p = best.length < k ? best.length : k - 1;
        if (best.length < k) best.push({ label, distance: d });
        while (p > 0 && best[p - 1].distance > d) {
          best[p] = best[p - 1];
          p--;
        }
        best[p] = { label, distance: d };
        worst = best[best.length - 1].distance;
      }
    }
    return best;
  }

  labels(): number[] {
    return [...this.records.keys()];
  }
}

/** Normalizes in place as hnswlib's cosine space does (divide by the norm; a zero vector stays zero). */
function normalizeInPlace(v: Float32Array): void {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  const inv = 1 / (Math.sqrt(s) + 1e-30);
  for (let j = 0; j < v.length; j++) v[j] *= inv;
}

export class VectorStore {
  private base: BaseMeta;
  /** Labels of base rows deleted since the base was written. */
  private baseDead = new Set<number>();
  private delta: DeltaRows;
  /** Changes since the last committed save. */
  private pendingAdded = new Set<number>();
  private pendingTombstones = new Map<number, string>();
  /** Deleted labels marked in the HNSW graph. */
  private hnswDeleted: number;
  private nextLabel: number;
  private dirty = false;
  /** A compaction was asked for: the next save writes a new base instead of a delta. */
  private compactRequested = false;
  private saving: Promise<void> = Promise.resolve();
  /** Delta segments left out by an open with `repair` (see DroppedDelta). */
  readonly dropped: DroppedDelta[] = [];

  /**
   * The base's HNSW graph, or null until first needed when the store was opened with `lazyGraph` (a writer
   * applying an edit needs the metadata, not the graph: at 37k chunks that saved hnswlib's read of 62 MB).
   */
  private graph: HnswIndex | null;
  /** Where a lazy graph is read from (checked against the manifest when the store opened) and its header. */
  private lazyGraph?: { file: string; count: number; maxElements: number };

  private constructor(
    readonly dir: string,
    private manifest: StoreManifest,
    index: HnswIndex | { file: string; count: number; maxElements: number },
    base: BaseMeta,
  ) {
    if (index instanceof HierarchicalNSW) {
      this.graph = index;
    } else {
      this.graph = null;
      this.lazyGraph = index;
    }
    this.base = base;
    this.delta = new DeltaRows(manifest.recipe.dims);
    this.hnswDeleted = manifest.deleted;
    this.nextLabel = manifest.nextLabel;
  }

  /** The HNSW graph, read now if the store was opened with `lazyGraph` and nothing needed it yet. */
  private get index(): HnswIndex {
    if (!this.graph) {
      const lazy = this.lazyGraph!;
      const index = new HierarchicalNSW(this.manifest.metric, this.dims);
      try {
        index.readIndexSync(lazy.file);
      } catch (err) {
        throw indexDamaged(`${lazy.file} could not be read (${(err as Error).message}); the store is damaged.`, { dir: this.dir, file: lazy.file });
      }
      this.adoptGraph(index, lazy);
    }
    return this.graph!;
  }

  /**
   * Reads a lazy graph now, on libuv's thread pool (the event loop stays free: before a search on a
   * writer's store, which would otherwise read it synchronously at its first query). No-op when read.
   */
  async loadGraph(): Promise<void> {
    const lazy = this.lazyGraph;
    if (this.graph || !lazy) return;
    const index = new HierarchicalNSW(this.manifest.metric, this.dims);
    try {
      await index.readIndex(lazy.file);
    } catch (err) {
      throw indexDamaged(`${lazy.file} could not be read (${(err as Error).message}); the store is damaged.`, { dir: this.dir, file: lazy.file });
    }
    if (this.graph || this.lazyGraph !== lazy) return; // read (or replaced by a compaction) meanwhile
    this.adoptGraph(index, lazy);
  }

  private adoptGraph(index: HnswIndex, lazy: { file: string; count: number }): void {
    if (index.getCurrentCount() !== lazy.count) {
      throw indexDamaged(`${lazy.file} changed since the store was opened (${index.getCurrentCount()} points, it had ${lazy.count}).`, { dir: this.dir, file: lazy.file });
    }
    // Deletions since the base was written were kept in baseDead only; the graph learns them now.
    for (const label of this.baseDead) index.markDelete(label);
    index.setEf(this.manifest.efSearch);
    this.graph = index;
    this.lazyGraph = undefined;
  }
  private set index(index: HnswIndex) {
    this.graph = index;
    this.lazyGraph = undefined;
  }
  /** Points in the HNSW graph, deleted ones included (from the file's header while the graph is not read). */
  private get graphCount(): number {
    return this.graph ? this.graph.getCurrentCount() : this.lazyGraph!.count;
  }

  // ---------------------------------------------------------------------------------------------
  // Open / create

  /** Make a new store in `dir` (missing or empty) and commit its first, empty generation. */
  static async create(dir: string, recipe: RecipeIdentity, options: StoreOptions = {}): Promise<VectorStore> {
    if (!Number.isInteger(recipe.dims) || recipe.dims <= 0) throw new UserError(`Store: dims must be a positive integer, got ${recipe.dims}.`);
    await fsp.mkdir(dir, { recursive: true });
    const existing = (await fsp.readdir(dir)).filter((n) => !n.startsWith('.'));
    if (existing.includes(MANIFEST_NAME)) throw new UserError(`${dir} already holds an Embedding Lens store; open it instead.`);
    if (existing.length > 0) throw new UserError(`${dir} is not empty; choose an empty folder for a new store.`);
    const metric = options.metric ?? 'cosine';
    if (!['cosine', 'ip', 'l2'].includes(metric)) throw new UserError(`Store: unknown metric "${metric}" (cosine, ip, l2).`);
    const now = new Date().toISOString();
    const manifest: StoreManifest = {
      format: STORE_FORMAT,
      formatVersion: STORE_FORMAT_VERSION,
      toolVersion: TOOL_VERSION,
      recipe: { ...recipe },
      metric,
      M: options.M ?? 16,
      efConstruction: options.efConstruction ?? 200,
      efSearch: options.efSearch ?? DEFAULT_EF_SEARCH,
      seed: options.seed ?? 100,
      compactRatio: options.compactRatio ?? 0.25,
      compactMinDeleted: options.compactMinDeleted ?? 256,
      deltaShare: options.deltaShare ?? 0.1,
      deltaMinRows: options.deltaMinRows ?? 1024,
      deltaMaxRows: options.deltaMaxRows ?? 16384,
      maxDeltaSegments: options.maxDeltaSegments ?? 64,
      count: 0,
      deleted: 0,
      capacity: Math.max(16, options.initialCapacity ?? 1024),
      nextLabel: 0,
      generation: 0,
      files: { index: { name: '', sha256: '', bytes: 0 }, metadata: { name: '', sha256: '', bytes: 0 } },
      baseRows: 0,
      deltas: [],
      createdAt: now,
      savedAt: now,
    };
    const index = new HierarchicalNSW(metric, recipe.dims);
    index.initIndex(manifest.capacity, manifest.M, manifest.efConstruction, manifest.seed);
    const store = new VectorStore(dir, manifest, index, BaseMeta.empty());
    store.dirty = true;
    store.compactRequested = true; // the first generation is an (empty) base
    await store.save();
    return store;
  }

  /** True if `dir` holds a manifest.json of ours (any version). */
  static async isStore(dir: string): Promise<boolean> {
    try {
      const m = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST_NAME), 'utf8'));
      return m?.format === STORE_FORMAT;
    } catch {
      return false;
    }
  }

  /** Read and check the manifest (format, version) without loading the index. */
  static async readManifest(dir: string): Promise<StoreManifest> {
    let text: string;
    try {
      text = await fsp.readFile(path.join(dir, MANIFEST_NAME), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        const exists = await fsp.stat(dir).then((s) => s.isDirectory(), () => false);
        throw new UserError(
          exists ? `${dir} is not an Embedding Lens store (no ${MANIFEST_NAME}).` : `No Embedding Lens store at ${dir}.`,
          'Build the index first, or point to the store folder.',
          { code: 'INDEX_MISSING', dir },
        );
      }
      throw new UserError(`Cannot read ${path.join(dir, MANIFEST_NAME)}: ${(err as Error).message}`, undefined, { code: 'IO_FAILED', dir, file: path.join(dir, MANIFEST_NAME) });
    }
    let m: StoreManifest;
    try {
      m = JSON.parse(text);
    } catch {
      throw indexDamaged(`The store manifest in ${dir} is corrupt (not valid JSON).`, { dir, file: path.join(dir, MANIFEST_NAME) });
    }
    if (m?.format !== STORE_FORMAT) throw new UserError(`${dir} is not an Embedding Lens store (its ${MANIFEST_NAME} is something else).`);
    if (!Number.isInteger(m.formatVersion) || m.formatVersion > STORE_FORMAT_VERSION) {
      throw new UserError(
        `The store in ${dir} was written by a newer Embedding Lens (store format ${m.formatVersion}; this version reads up to ${STORE_FORMAT_VERSION}).`,
        'Update Embedding Lens, or rebuild the index with this version.',
        { code: 'INDEX_NEWER', dir },
      );
    }
    if (m.formatVersion < 2) {
      // Version 1: one generation = index + JSON metadata; the segment fields take their defaults.
      m.deltaShare ??= 0.1;
      m.deltaMinRows ??= 1024;
      m.deltaMaxRows ??= 16384;
      m.maxDeltaSegments ??= 64;
      m.deltas ??= [];
      m.baseRows ??= m.count;
    }
    return m;
  }

  /**
   * Open an existing store, verifying every file against the manifest's checksums.
   * With `expected`, a store built with another recipe is refused (the message names the fields).
   * With `repair`, a delta segment that fails its checksum is left out (listed in `dropped`, with the
   * files it covered) instead of refusing the store; the next save commits the store without it.
   * With `lazyGraph`, every file is checked now but hnswlib reads the graph only when something needs it
   * (a query, a stored vector, a compaction): for a writer applying an edit.
   */
  static async open(dir: string, expected?: RecipeIdentity, options: { repair?: boolean; lazyGraph?: boolean } = {}): Promise<VectorStore> {
    // A writer (another process) may commit a new generation while we read and then delete the files of
    // the one we started from: when the manifest moved on meanwhile, read again instead of reporting damage.
    for (let attempt = 0; ; attempt++) {
      const manifest = await VectorStore.readManifest(dir);
      try {
        return await VectorStore.openGeneration(dir, manifest, expected, options);
      } catch (err) {
        const now = await VectorStore.readManifest(dir).catch(() => manifest);
        if (attempt < 3 && now.generation !== manifest.generation) continue;
        throw err;
      }
    }
  }

  private static async openGeneration(dir: string, manifest: StoreManifest, expected: RecipeIdentity | undefined, options: { repair?: boolean; lazyGraph?: boolean }): Promise<VectorStore> {
    if (expected) assertSameRecipe(manifest.recipe, expected, 'the requested recipe');
    const dims = manifest.recipe.dims;
    const indexPath = path.join(dir, manifest.files.index.name);
    const metaPath = path.join(dir, manifest.files.metadata.name);
    // Every file is read and checked at once (large ones on the checking thread, checkedRead.ts), and each
    // verdict is awaited before its file is used. The HNSW file is only checked, not kept: hnswlib reads
    // it itself, starting as soon as its layout is known to be sound (checkHnswlibLayout), while its
    // checksum is computed; the store is handed out only once both are done, so no query ever searches a
    // graph whose checksum failed. Problems are reported in the order index, metadata, deltas.
    const metaRead = readChecked(metaPath, manifest.files.metadata);
    const graphChecked = readChecked(indexPath, manifest.files.index, { keep: false });
    const deltaReads = manifest.deltas.map((entry) => readChecked(path.join(dir, entry.name), entry));
    let header: HnswlibHeader;
    try {
      header = await checkHnswlibLayout(indexPath, { dims, M: manifest.M, count: manifest.baseRows + manifest.deleted, capacity: manifest.capacity });
    } catch (err) {
      verifiedBytes(indexPath, manifest.files.index, await graphChecked); // a damaged file is reported as such
      throw indexDamaged(`${indexPath} is damaged (${(err as Error).message}).`, { dir, file: indexPath });
    }
    let index: HnswIndex | { file: string; count: number; maxElements: number };
    if (options.lazyGraph) {
      verifiedBytes(indexPath, manifest.files.index, await graphChecked);
      index = { file: indexPath, count: header.count, maxElements: header.maxElements };
    } else {
      const graph = new HierarchicalNSW(manifest.metric, dims);
      // hnswlib's async read runs on libuv's thread pool: a CLI search loads the model on the main thread meanwhile.
      const reading = graph.readIndex(indexPath).then(() => null, (err: unknown) => err as Error);
      verifiedBytes(indexPath, manifest.files.index, await graphChecked);
      const failed = await reading;
      if (failed) throw indexDamaged(`${indexPath} could not be read (${failed.message}); the store is damaged.`, { dir, file: indexPath });
      index = graph;
    }
    const metaBytes = verifiedBytes(metaPath, manifest.files.metadata, await metaRead);
    let base: BaseMeta;
    const legacy = manifest.formatVersion < 2;
    try {
      base = legacy ? legacyBase(metaBytes) : new BaseMeta(metaBytes, metaPath);
    } catch (err) {
      throw indexDamaged(`${metaPath} is corrupt (${(err as Error).message}).`, { dir, file: metaPath });
    }
    const store = new VectorStore(dir, manifest, index, base);
    if (base.rows !== manifest.baseRows || store.graphCount !== manifest.baseRows + manifest.deleted) {
      throw indexDamaged(
        `The store in ${dir} is inconsistent (manifest base ${manifest.baseRows} chunks, metadata ${base.rows}, index ${store.graphCount} with ${manifest.deleted} deleted).`,
        { dir },
      );
    }
    const kept: DeltaEntry[] = [];
    for (const [i, entry] of manifest.deltas.entries()) {
      const p = path.join(dir, entry.name);
      let content;
      try {
        content = decodeDelta(verifiedBytes(p, entry, await deltaReads[i]!), dims, p);
      } catch (err) {
        const reason = err instanceof UserError ? err.statement : `${p} is corrupt (${(err as Error).message})`;
        if (!options.repair) {
          throw indexDamaged(`${reason} It held the chunks of ${describePaths(entry.paths)}.`, { dir, file: p, repair: 'refresh' }, repairHint);
        }
        store.dropped.push({ file: entry.name, paths: entry.paths, reason });
        continue;
      }
      store.applyDelta(content);
      kept.push(entry);
    }
    if (store.dropped.length > 0) {
      store.manifest = { ...manifest, deltas: kept };
      store.dirty = true; // the next save commits the manifest without them
    } else if (store.count !== manifest.count) {
      throw indexDamaged(`The store in ${dir} is inconsistent (manifest count ${manifest.count}, segments hold ${store.count}).`, { dir });
    }
    if (legacy) {
      // Rewrite in the current format at the next save (the HNSW file is reused as the new base).
      store.compactRequested = true;
      store.dirty = true;
    }
    if (index instanceof HierarchicalNSW) index.setEf(manifest.efSearch);
    return store;
  }

  /** Open `dir` if it is a store (checking the recipe), else create it. */
  static async openOrCreate(dir: string, recipe: RecipeIdentity, options: StoreOptions = {}): Promise<VectorStore> {
    const hasManifest = await fsp.stat(path.join(dir, MANIFEST_NAME)).then(() => true, () => false);
    return hasManifest ? VectorStore.open(dir, recipe) : VectorStore.create(dir, recipe, options);
  }

  private applyDelta(d: { labels: Int32Array; records: ChunkRecord[]; vectors: Float32Array; tombstones: Int32Array }): void {
    const dims = this.dims;
    for (let i = 0; i < d.labels.length; i++) this.delta.add(d.labels[i], d.records[i], d.vectors.subarray(i * dims, (i + 1) * dims));
    for (const label of d.tombstones) {
      if (this.delta.remove(label)) continue;
      if (this.base.rowOfLabel(label) >= 0 && !this.baseDead.has(label)) {
        this.baseDead.add(label);
        this.graph?.markDelete(label); // a lazy graph marks baseDead when it is read
        this.hnswDeleted++;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  get recipe(): RecipeIdentity {
    return { ...this.manifest.recipe };
  }
  get dims(): number {
    return this.manifest.recipe.dims;
  }
  get metric(): StoreMetric {
    return this.manifest.metric;
  }
  get count(): number {
    return this.base.rows - this.baseDead.size + this.delta.size;
  }
  get generation(): number {
    return this.manifest.generation;
  }

  private baseRowOfId(id: string): number {
    const row = this.base.rowOfId(id);
    return row >= 0 && !this.baseDead.has(this.base.labels[row]) ? row : -1;
  }
  private labelOfId(id: string): number | undefined {
    const d = this.delta.byId.get(id);
    if (d !== undefined) return d;
    const row = this.baseRowOfId(id);
    return row >= 0 ? this.base.labels[row] : undefined;
  }

  has(id: string): boolean {
    return this.labelOfId(id) !== undefined;
  }
  get(id: string): ChunkRecord | undefined {
    const label = this.labelOfId(id);
    return label === undefined ? undefined : this.recordOfLabel(label);
  }
  /** The chunk stored under an HNSW label (labels are the ids in exported FAISS files). */
  recordOfLabel(label: number): ChunkRecord | undefined {
    const d = this.delta.records.get(label);
    if (d) return { ...d };
    if (this.baseDead.has(label)) return undefined;
    const row = this.base.rowOfLabel(label);
    return row >= 0 ? this.base.record(row) : undefined;
  }
  /** Chunk records of one path (e.g. to compare content hashes when re-indexing). */
  recordsOfPath(p: string): ChunkRecord[] {
    return this.labelsOfPath(p).map((l) => this.recordOfLabel(l)!);
  }
  private labelsOfPath(p: string): number[] {
    const out: number[] = [];
    const no = this.base.pathNo(p);
    if (no >= 0) {
      for (const row of this.base.rowsOfPathNo(no)) {
        const label = this.base.labels[row];
        if (!this.baseDead.has(label)) out.push(label);
      }
    }
    for (const l of this.delta.byPath.get(p) ?? []) out.push(l);
    return out;
  }
  paths(): string[] {
    const out = new Set<string>();
    for (let p = 0; p < this.base.pathCount; p++) {
      const rows = this.base.rowsOfPathNo(p);
      if (this.baseDead.size === 0 || rows.some((r) => !this.baseDead.has(this.base.labels[r]))) out.add(this.base.pathAt(p));
    }
    for (const p of this.delta.byPath.keys()) out.add(p);
    return [...out];
  }

  /** The stored vector of a chunk (normalized for the cosine metric), or undefined. */
  vectorOf(id: string): Float32Array | undefined {
    const label = this.labelOfId(id);
    if (label === undefined) return undefined;
    const d = this.delta.vector(label);
    return d ? d.slice() : Float32Array.from(this.index.getPoint(label));
  }

  /** The search breadth a query gets without `ef`: the manifest's efSearch, grown with the graph (efSearchForSize). */
  get efSearch(): number {
    return efSearchForSize(this.hnswLive, this.manifest.efSearch);
  }

  /** Live chunks in the HNSW graph (base rows plus folded delta rows). */
  private get hnswLive(): number {
    return this.graphCount - this.hnswDeleted;
  }

  /**
   * The `k` nearest chunks, best first. `ef` (default: `efSearch`, which follows the graph's size) is raised to k if lower.
   * With `recipe`, a query embedded with another recipe is refused.
   * The base's HNSW graph and an exact search over the delta rows are merged.
   */
  query(vector: Float32Array, k: number, options: { ef?: number; recipe?: RecipeIdentity } = {}): QueryHit[] {
    if (options.recipe) assertSameRecipe(this.manifest.recipe, options.recipe, 'the query');
    if (vector.length !== this.dims) {
      throw new UserError(`Query vector has ${vector.length} dims, the store has ${this.dims}.`, 'Embed the query with the store\'s recipe.');
    }
    checkVectors(vector, this.dims, 'Query');
    const kk = Math.min(Math.max(0, Math.floor(k)), this.count);
    if (kk === 0) return [];
    const found = new Map<number, number>();
    const fromGraph = Math.min(kk, this.hnswLive);
    if (fromGraph > 0) {
      this.index.setEf(Math.max(options.ef ?? this.efSearch, fromGraph));
      const { neighbors, distances } = this.index.searchKnn(Array.from(vector), fromGraph);
      for (let i = 0; i < neighbors.length; i++) found.set(neighbors[i], distances[i]);
    }
    if (this.delta.size > 0) {
      const q = Float32Array.from(vector);
      if (this.metric === 'cosine') normalizeInPlace(q);
      for (const h of this.delta.search(q, kk, this.metric)) if (!found.has(h.label)) found.set(h.label, h.distance);
    }
    const hits: QueryHit[] = [];
    for (const [label, distance] of [...found].sort((a, b) => a[1] - b[1] || a[0] - b[0])) {
      if (hits.length >= kk) break;
      const rec = this.recordOfLabel(label);
      if (!rec) continue; // cannot happen for a consistent store; never report an unknown label
      hits.push({ ...rec, label, distance, score: this.scoreOf(distance) });
    }
    return hits;
  }

  private scoreOf(distance: number): number {
    return this.manifest.metric === 'l2' ? -distance : 1 - distance;
  }

  /** Live entries with their stored vectors (normalized for the cosine metric), in label order. */
  snapshot(): { labels: Int32Array; records: ChunkRecord[]; vectors: Float32Array } {
    const all: number[] = [];
    for (const l of this.base.labels) if (!this.baseDead.has(l)) all.push(l);
    for (const l of this.delta.labels()) all.push(l);
    const labels = Int32Array.from(all).sort();
    const vectors = new Float32Array(labels.length * this.dims);
    labels.forEach((label, i) => vectors.set(this.delta.vector(label) ?? this.index.getPoint(label), i * this.dims));
    return { labels, records: [...labels].map((l) => this.recordOfLabel(l)!), vectors };
  }

  stats(): StoreStats {
    const m = this.manifest;
    return {
      dir: this.dir,
      generation: m.generation,
      count: this.count,
      deleted: this.hnswDeleted,
      capacity: this.graph ? this.graph.getMaxElements() : this.lazyGraph!.maxElements,
      paths: this.paths().length,
      dims: this.dims,
      metric: m.metric,
      M: m.M,
      efConstruction: m.efConstruction,
      efSearch: this.efSearch,
      recipe: this.recipe,
      bytesOnDisk: m.files.index.bytes + m.files.metadata.bytes + m.deltas.reduce((s, d) => s + d.bytes, 0),
      dirty: this.dirty,
      baseRows: this.base.rows - this.baseDead.size,
      deltaRows: this.delta.size,
      deltaSegments: m.deltas.length,
      graphRead: this.graph !== null,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Writing (in memory until save())

  /**
   * Add chunks, replacing any with the same id. `vectors` is records.length × dims, row-major.
   * With `recipe`, vectors made with another recipe are refused.
   */
  upsert(records: ChunkRecord[], vectors: Float32Array, recipe?: RecipeIdentity): void {
    if (recipe) assertSameRecipe(this.manifest.recipe, recipe, 'the new vectors');
    const n = checkVectors(vectors, this.dims, 'Upsert');
    if (n !== records.length) throw new UserError(`Upsert: ${records.length} records but ${n} vectors.`);
    for (let i = 0; i < n; i++) {
      const rec = records[i];
      const old = this.labelOfId(rec.id);
      if (old !== undefined) this.deleteLabel(old);
      const label = this.nextLabel++;
      const v = vectors.slice(i * this.dims, (i + 1) * this.dims);
      if (this.metric === 'cosine') normalizeInPlace(v);
      this.delta.add(label, { id: rec.id, path: rec.path, startLine: rec.startLine, endLine: rec.endLine, contentHash: rec.contentHash }, v);
      this.pendingAdded.add(label);
    }
    if (n > 0) this.dirty = true;
  }

  /** Remove every chunk of `p`; returns how many were removed. */
  deleteByPath(p: string): number {
    const all = this.labelsOfPath(p);
    if (all.length === 0) return 0;
    for (const l of all) this.deleteLabel(l);
    this.dirty = true;
    return all.length;
  }

  deleteById(id: string): boolean {
    const label = this.labelOfId(id);
    if (label === undefined) return false;
    this.deleteLabel(label);
    this.dirty = true;
    return true;
  }

  private deleteLabel(label: number): void {
    const fromDelta = this.delta.isFolded(label);
    const rec = this.delta.remove(label);
    if (rec) {
      if (fromDelta) {
        this.index.markDelete(label);
        this.hnswDeleted++;
      }
      // A row added since the last save simply disappears; a saved one needs a tombstone.
      if (!this.pendingAdded.delete(label)) this.pendingTombstones.set(label, rec.path);
      return;
    }
    const row = this.base.rowOfLabel(label);
    if (row < 0 || this.baseDead.has(label)) return;
    this.baseDead.add(label);
    this.graph?.markDelete(label); // a lazy graph marks baseDead when it is read
    this.hnswDeleted++;
    this.pendingTombstones.set(label, this.base.record(row).path);
  }

  /**
   * True when a compaction is due: the delta rows passed their share of the base (or the bounds), there
   * are many delta segments, or deleted labels clutter the HNSW graph.
   */
  needsCompaction(): boolean {
    const m = this.manifest;
    const baseLive = this.base.rows - this.baseDead.size;
    const limit = Math.max(m.deltaMinRows, Math.min(m.deltaMaxRows, m.deltaShare * baseLive));
    const total = this.graphCount;
    return this.compactRequested
      || this.delta.size + this.pendingTombstones.size > limit
      || m.deltas.length >= m.maxDeltaSegments
      || (this.hnswDeleted >= m.compactMinDeleted && this.hnswDeleted > m.compactRatio * total);
  }

  /** Ask for a compaction: the next save folds every delta row into a new base segment. */
  compact(): void {
    this.compactRequested = true;
    this.dirty = true;
  }

  /**
   * If a compaction is due, write a new base generation (see needsCompaction) and return true.
   * Meant to run off the edit path (after an index refresh has reported), under the writer lock.
   */
  async compactIfNeeded(): Promise<boolean> {
    if (!this.needsCompaction()) return false;
    this.compact();
    await this.save();
    return true;
  }

  /**
   * Fold every delta row into the HNSW graph, or rebuild the graph from the live vectors when deleted
   * labels pass compactRatio (labels are kept either way).
   *
   * Folding adds the delta vectors to the open graph (hnswlib's resizeIndex + addPoint; deleted labels
   * stay marked) instead of building a new one, and yields to the event loop every FOLD_SLICE points, so a
   * process that serves queries while it compacts (the editor's engine) keeps answering them: a row folded
   * so far is found by the graph and skipped by the exact search of the deltas. Rows added meanwhile are
   * not folded and stay in the deltas (writeBase takes only folded rows into the new base).
   */
  private async fold(): Promise<void> {
    const m = this.manifest;
    const dims = this.dims;
    const unfolded = this.delta.labels().filter((l) => !this.delta.isFolded(l));
    const live = this.count;
    if (this.hnswDeleted >= m.compactMinDeleted && this.hnswDeleted > m.compactRatio * (this.index.getCurrentCount() + unfolded.length)) {
      const next = new HierarchicalNSW(m.metric, dims);
      next.initIndex(Math.max(16, Math.ceil(live * 1.25)), m.M, m.efConstruction, m.seed);
      for (const l of this.base.labels) if (!this.baseDead.has(l)) next.addPoint(this.index.getPoint(l), l);
      for (const l of this.delta.labels()) {
        next.addPoint(Array.from(this.delta.vector(l)!), l);
        this.delta.setFolded(l);
      }
      next.setEf(m.efSearch);
      this.index = next;
      this.hnswDeleted = 0;
      return;
    }
    const needed = this.index.getCurrentCount() + unfolded.length;
    const cap = this.index.getMaxElements();
    if (needed > cap) this.index.resizeIndex(Math.max(needed, Math.ceil(cap * 1.5)));
    const index = this.index;
    for (let i = 0; i < unfolded.length; i++) {
      if (i > 0 && i % FOLD_SLICE === 0) await new Promise((r) => setImmediate(r));
      const l = unfolded[i];
      const v = this.delta.vector(l);
      if (!v || this.delta.isFolded(l)) continue; // deleted (or folded) while this one yielded
      index.addPoint(Array.from(v), l);
      this.delta.setFolded(l);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Saving

  /**
   * Commit the in-memory state as a new generation (see the protocol at the top of this file): a delta
   * segment with the changes since the last save, or a new base after `compact()`.
   * On any failure (disk full, permissions) the previous generation stays the committed one and the
   * error is reported; the in-memory state is kept so the save can be retried.
   */
  save(): Promise<void> {
    const run = this.saving.then(() => this.saveNow());
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async saveNow(): Promise<void> {
    if (!this.dirty) return;
    const g = this.manifest.generation + 1;
    const written: string[] = [];
    let manifestTmp: string | undefined;
    let committed = false;
    const compacting = this.compactRequested;
    try {
      let manifest: StoreManifest;
      let afterCommit: () => void;
      if (compacting) {
        ({ manifest, afterCommit } = await this.writeBase(g, written));
      } else {
        ({ manifest, afterCommit } = await this.writeDelta(g, written));
      }
      const manifestPath = path.join(this.dir, MANIFEST_NAME);
      manifestTmp = tempPathFor(manifestPath);
      await writeSynced(manifestTmp, JSON.stringify(manifest, null, 2) + '\n');
      await fsp.rename(manifestTmp, manifestPath);
      // Committed: the manifest names generation g. Nothing below may delete g's files.
      committed = true;
      this.manifest = manifest;
      afterCommit();
      await fsyncDir(this.dir);
    } catch (err) {
      if (manifestTmp) await removeQuietly(manifestTmp);
      if (committed) throw err; // only the final directory fsync failed; the new generation is in place
      // The files of the uncommitted generation are garbage now (the manifest still names g-1).
      for (const f of written) await removeQuietly(f);
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'ENOSPC'
          ? 'the disk is full'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied'
            : e.code === 'EFBIG' || e instanceof UserError
              ? `a file came out short, is the disk full? ${e instanceof UserError ? e.statement : e.message}`
              : e.message;
      throw new UserError(
        `Saving the index in ${this.dir} failed (${why}); the previous version (generation ${this.manifest.generation}) is intact.`,
        e instanceof UserError ? e.statement : 'Free disk space or fix the folder permissions, then index again.',
        { code: 'IO_FAILED', dir: this.dir },
      );
    }
    await this.sweep();
  }

  /** Writes delta.<g>.seg with the pending changes; the returned callback updates memory after the commit. */
  private async writeDelta(g: number, written: string[]): Promise<{ manifest: StoreManifest; afterCommit: () => void }> {
    // Snapshot synchronously, so later mutations go to the next save.
    const added = [...this.pendingAdded].sort((a, b) => a - b);
    const tombstones = new Map(this.pendingTombstones);
    const counts = { count: this.count, nextLabel: this.nextLabel };
    this.pendingAdded = new Set();
    this.pendingTombstones = new Map();
    const restore = () => {
      for (const l of added) if (this.delta.records.has(l)) this.pendingAdded.add(l);
      for (const [l, p] of tombstones) if (!this.pendingTombstones.has(l)) this.pendingTombstones.set(l, p);
    };
    try {
      const deltas = [...this.manifest.deltas];
      const records = added.map((l) => this.delta.records.get(l)!);
      if (added.length > 0 || tombstones.size > 0) {
        const vectors = new Float32Array(added.length * this.dims);
        added.forEach((l, i) => vectors.set(this.delta.vector(l)!, i * this.dims));
        const bytes = encodeDelta({ labels: Int32Array.from(added), records, vectors, tombstones: Int32Array.from(tombstones.keys()) }, this.dims);
        const file = path.join(this.dir, deltaName(g));
        written.push(file);
        await writeFileAtomic(file, bytes);
        const paths = [...new Set([...records.map((r) => r.path), ...tombstones.values()])].sort();
        deltas.push({ name: deltaName(g), ...digestBytes(bytes), rows: added.length, tombstones: tombstones.size, paths });
      }
      const manifest: StoreManifest = {
        ...this.manifest,
        formatVersion: STORE_FORMAT_VERSION,
        toolVersion: TOOL_VERSION,
        ...counts,
        generation: g,
        deltas,
        savedAt: new Date().toISOString(),
      };
      return {
        manifest,
        afterCommit: () => {
          this.dirty = this.pendingAdded.size > 0 || this.pendingTombstones.size > 0 || this.compactRequested;
        },
      };
    } catch (err) {
      restore();
      throw err;
    }
  }

  /** Folds the deltas and writes index.<g>.hnsw + metadata.<g>.bin; the callback swaps memory after the commit. */
  private async writeBase(g: number, written: string[]): Promise<{ manifest: StoreManifest; afterCommit: () => void }> {
    await this.fold();
    // Snapshot synchronously: every live row that is in the graph (rows added while the fold yielded are
    // not, and stay delta rows).
    const rows: LabeledRecord[] = [];
    for (let r = 0; r < this.base.rows; r++) {
      const label = this.base.labels[r];
      if (!this.baseDead.has(label)) rows.push({ label, rec: this.base.record(r) });
    }
    const included = new Set<number>();
    for (const [label, rec] of this.delta.records) {
      if (!this.delta.isFolded(label)) continue;
      rows.push({ label, rec });
      included.add(label);
    }
    rows.sort((a, b) => a.label - b.label);
    // Rows in the new base are no longer "added since the last save": deleting one now needs a tombstone.
    for (const label of included) this.pendingAdded.delete(label);
    const tombstonesBefore = new Set(this.pendingTombstones.keys());
    const counts = { count: rows.length, deleted: this.hnswDeleted, capacity: this.index.getMaxElements(), nextLabel: this.nextLabel };
    const metaBytes = encodeBaseMeta(rows);
    const indexFinal = path.join(this.dir, indexName(g));
    const metaFinal = path.join(this.dir, metadataName(g));
    const indexTmp = tempPathFor(indexFinal);
    written.push(indexTmp);
    // hnswlib opens its std::ofstream without reporting failure: create the file first so that
    // permission problems surface as a real EACCES here instead of a missing file later.
    await (await fsp.open(indexTmp, 'wx', 0o644)).close();
    try {
      // The async variant serializes on a libuv thread: the event loop stays free (a compaction of a
      // large store writes hundreds of MB). Nothing mutates the graph meanwhile: refreshes wait for the
      // compaction (writer lock), and queries only read it.
      await this.index.writeIndex(indexTmp);
    } catch (err) {
      throw new Error(`writing the HNSW index failed: ${(err as Error).message}`);
    }
    // hnswlib does not check its stream: read the file back and walk its layout to catch a short write.
    const indexBytes = await fsp.readFile(indexTmp);
    validateHnswlibFile(indexBytes, indexTmp);
    const indexDigest = digestBytes(indexBytes);
    const h = await fsp.open(indexTmp, 'r+');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
    written.push(indexFinal);
    await commitTempFile(indexTmp, indexFinal);
    written.push(metaFinal);
    await writeFileAtomic(metaFinal, metaBytes);
    const manifest: StoreManifest = {
      ...this.manifest,
      ...counts,
      formatVersion: STORE_FORMAT_VERSION,
      toolVersion: TOOL_VERSION,
      generation: g,
      files: {
        index: { name: indexName(g), ...indexDigest },
        metadata: { name: metadataName(g), ...digestBytes(metaBytes) },
      },
      baseRows: rows.length,
      deltas: [],
      savedAt: new Date().toISOString(),
    };
    return {
      manifest,
      afterCommit: () => {
        // Changes made while the files were written (none when the caller awaits) stay pending.
        const later = new DeltaRows(this.dims);
        for (const [label, rec] of this.delta.records) {
          if (!included.has(label)) later.add(label, rec, this.delta.vector(label)!);
        }
        this.base = new BaseMeta(metaBytes, metadataName(g));
        this.delta = later;
        this.baseDead = new Set();
        for (const label of this.pendingTombstones.keys()) if (!tombstonesBefore.has(label) && this.base.rowOfLabel(label) >= 0) this.baseDead.add(label);
        for (const label of tombstonesBefore) this.pendingTombstones.delete(label);
        this.compactRequested = false;
        this.dirty = this.pendingAdded.size > 0 || this.pendingTombstones.size > 0;
      },
    };
  }

  /** Delete files no manifest names any more and temp leftovers of killed writers. */
  private async sweep(): Promise<void> {
    const keep = new Set([this.manifest.files.index.name, this.manifest.files.metadata.name, ...this.manifest.deltas.map((d) => d.name)]);
    // Temp files of this process are another part's save in flight (the keyword index commits beside the
    // store: indexer.ts checkpoint); only those of other (dead: the writer lock is ours) processes go.
    const ours = `.tmp-${process.pid}-`;
    await sweepUnreferenced(this.dir, { test: (name) => GENERATION_FILE.test(name) || (isTempName(name) && !name.includes(ours)) }, keep);
  }
}

function describePaths(paths: string[]): string {
  if (paths.length === 0) return 'no file';
  const shown = paths.slice(0, 5).join(', ');
  return paths.length > 5 ? `${shown} and ${paths.length - 5} more files` : shown;
}

/** A v1 JSON metadata file as a base segment (decoded once; the next save writes the binary one). */
function legacyBase(bytes: Uint8Array): BaseMeta {
  const meta = JSON.parse(new TextDecoder().decode(bytes)) as MetadataFileV1;
  if (meta?.format !== 'embedding-lens-store-metadata' || !Array.isArray(meta.entries)) throw new Error('not a store metadata file');
  const rows: LabeledRecord[] = meta.entries
    .map(([label, id, p, startLine, endLine, contentHash]) => ({ label, rec: { id, path: p, startLine, endLine, contentHash } }))
    .sort((a, b) => a.label - b.label);
  return new BaseMeta(encodeBaseMeta(rows), 'metadata');
}

async function writeSynced(filePath: string, data: string): Promise<void> {
  const h = await fsp.open(filePath, 'wx', 0o644);
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
}

/** The bytes of a checked read, or the damage report of this store (a missing, short or altered file). */
function verifiedBytes(filePath: string, entry: FileEntry, checked: Checked): Uint8Array {
  if (checked.ok) return checked.bytes ?? new Uint8Array(0);
  const facts = { dir: path.dirname(filePath), file: filePath };
  const p = checked.problem;
  if (p.kind === 'missing') throw indexDamaged(`${filePath} is missing (${p.code}); the store is damaged.`, facts);
  if (p.kind === 'size') throw indexDamaged(`${filePath} is truncated or damaged (${p.size} bytes, the manifest says ${entry.bytes}).`, facts);
  throw indexDamaged(`${filePath} is corrupt (checksum mismatch).`, facts);
}

async function readVerified(filePath: string, entry: FileEntry): Promise<Uint8Array> {
  return verifiedBytes(filePath, entry, await readChecked(filePath, entry));
}

/** The HNSW graph of a store's committed base segment, for export to FAISS (see faiss.ts). */
export async function readStoreGraph(dir: string) {
  const manifest = await VectorStore.readManifest(dir);
  const p = path.join(dir, manifest.files.index.name);
  const bytes = await readVerified(p, manifest.files.index);
  return { manifest, graph: parseHnswlibFile(bytes, manifest.recipe.dims, p) };
}
