// The on-disk vector store the extension searches: an hnswlib HNSW index + chunk metadata + a manifest.
//
// Folder layout (one committed generation g at a time):
//   manifest.json        format version, recipe, index parameters, counts, generation, file checksums
//   index.<g>.hnsw       hnswlib's own file
//   metadata.<g>.json    label → chunk id, path, line range, content hash
//
// Save protocol (crash safety): write index.<g+1> and metadata.<g+1> (each temp + fsync + rename),
// verify them, then atomically replace manifest.json naming generation g+1 and the files' sha256,
// then delete generation g's files. A process killed at any instant leaves manifest.json naming a
// complete generation: either g (whose files are deleted only after the new manifest is durable) or g+1.
// Load verifies every file against the manifest's checksums before handing it to native code.
//
// Single writer per folder is assumed (the host and the CLI serialize indexing); readers may run at any time.

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import hnswlib from 'hnswlib-node';
import { TOOL_VERSION, UserError, type RecipeIdentity } from '../types';
import {
  commitTempFile,
  digestBytes,
  fsyncDir,
  isTempName,
  removeQuietly,
  tempPathFor,
  writeFileAtomic,
  type FileDigest,
} from './atomicFile';
import { parseHnswlibFile, validateHnswlibFile } from './hnswlibFile';

const { HierarchicalNSW } = hnswlib;
type HnswIndex = InstanceType<typeof HierarchicalNSW>;

export const STORE_FORMAT = 'embedding-lens-store';
export const STORE_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';
/**
 * Chosen from bench/store.ts (bench/results-store.json), 100k × 384 clustered, M=16, efConstruction=200:
 * recall@10 was 0.801 at ef=10, 0.990 at ef=50, 1.000 at ef=100 and 200, with p50 latency ~0.5 ms for
 * all of them. 50 meets the 0.98 goal with little margin on synthetic data; 100 costs nothing noticeable
 * and leaves room for real embeddings, which cluster less cleanly.
 */
export const DEFAULT_EF_SEARCH = 100;

export type StoreMetric = 'cosine' | 'ip' | 'l2';

export interface StoreOptions {
  /** Default `cosine` (score = cosine similarity). `ip`: score = dot product. `l2`: score = −squared distance. */
  metric?: StoreMetric;
  /** HNSW links per node (level 0 gets 2M). Default 16. */
  M?: number;
  efConstruction?: number;
  /** Default search breadth when `query` gets no `ef`. */
  efSearch?: number;
  /** Initial capacity; the index grows by itself. Default 1024. */
  initialCapacity?: number;
  /** Rebuild at save when deleted labels exceed this fraction of all labels... Default 0.25. */
  compactRatio?: number;
  /** ...and at least this many. Default 256. */
  compactMinDeleted?: number;
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
}

interface FileEntry extends FileDigest {
  name: string;
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
  count: number;
  deleted: number;
  capacity: number;
  nextLabel: number;
  generation: number;
  files: { index: FileEntry; metadata: FileEntry };
  createdAt: string;
  savedAt: string;
}

/** metadata.<g>.json: live entries as rows [label, id, path, startLine, endLine, contentHash]. */
interface MetadataFile {
  format: 'embedding-lens-store-metadata';
  generation: number;
  entries: [number, string, string, number, number, string][];
}

const RECIPE_FIELDS: (keyof RecipeIdentity)[] = ['model', 'modelHash', 'layer', 'pooling', 'wordPooling', 'normalize', 'dims'];

/** Throws a UserError naming every field where `actual` differs from the store's recipe. */
export function assertSameRecipe(expected: RecipeIdentity, actual: RecipeIdentity, what = 'this request'): void {
  const diffs: string[] = [];
  for (const f of RECIPE_FIELDS) {
    const a = expected[f];
    const b = actual[f];
    if (a === undefined && b === undefined) continue;
    if (a !== b) diffs.push(`${f}: store has ${JSON.stringify(a)}, ${what} has ${JSON.stringify(b)}`);
  }
  if (diffs.length > 0) {
    throw new UserError(
      `Recipe mismatch (${diffs.map((d) => d.split(':')[0]).join(', ')}): ${diffs.join('; ')}.`,
      'Vectors made with different recipes are never mixed: use the store\'s recipe, or rebuild the index with the new one.',
    );
  }
}

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

const rebuildHint = 'Rebuild the index (Embedding Lens: Rebuild Index, or `embedding-lens index --rebuild`).';

function indexName(g: number): string {
  return `index.${g}.hnsw`;
}
function metadataName(g: number): string {
  return `metadata.${g}.json`;
}
const GENERATION_FILE = /^(index|metadata)\.(\d+)\.(hnsw|json)$/;

export class VectorStore {
  private byId = new Map<string, number>();
  private byLabel = new Map<number, ChunkRecord>();
  private byPath = new Map<string, Set<number>>();
  private deletedCount: number;
  private nextLabel: number;
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private manifest: StoreManifest,
    private index: HnswIndex,
  ) {
    this.deletedCount = manifest.deleted;
    this.nextLabel = manifest.nextLabel;
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
      count: 0,
      deleted: 0,
      capacity: Math.max(16, options.initialCapacity ?? 1024),
      nextLabel: 0,
      generation: 0,
      files: { index: { name: '', sha256: '', bytes: 0 }, metadata: { name: '', sha256: '', bytes: 0 } },
      createdAt: now,
      savedAt: now,
    };
    const index = new HierarchicalNSW(metric, recipe.dims);
    index.initIndex(manifest.capacity, manifest.M, manifest.efConstruction, manifest.seed);
    const store = new VectorStore(dir, manifest, index);
    store.dirty = true;
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
          'Build one with `embedding-lens index`, or point to the store folder.',
        );
      }
      throw new UserError(`Cannot read ${path.join(dir, MANIFEST_NAME)}: ${(err as Error).message}`);
    }
    let m: StoreManifest;
    try {
      m = JSON.parse(text);
    } catch {
      throw new UserError(`The store manifest in ${dir} is corrupt (not valid JSON).`, rebuildHint);
    }
    if (m?.format !== STORE_FORMAT) throw new UserError(`${dir} is not an Embedding Lens store (its ${MANIFEST_NAME} is something else).`);
    if (!Number.isInteger(m.formatVersion) || m.formatVersion > STORE_FORMAT_VERSION) {
      throw new UserError(
        `The store in ${dir} was written by a newer Embedding Lens (store format ${m.formatVersion}; this version reads up to ${STORE_FORMAT_VERSION}).`,
        'Update Embedding Lens, or rebuild the index with this version.',
      );
    }
    return m;
  }

  /**
   * Open an existing store, verifying every file against the manifest's checksums.
   * With `expected`, a store built with another recipe is refused (the message names the fields).
   */
  static async open(dir: string, expected?: RecipeIdentity): Promise<VectorStore> {
    const manifest = await VectorStore.readManifest(dir);
    if (expected) assertSameRecipe(manifest.recipe, expected, 'the requested recipe');
    const indexPath = path.join(dir, manifest.files.index.name);
    const metaPath = path.join(dir, manifest.files.metadata.name);
    const indexBytes = await readVerified(indexPath, manifest.files.index);
    validateHnswlibFile(indexBytes, indexPath);
    const metaBytes = await readVerified(metaPath, manifest.files.metadata);
    let meta: MetadataFile;
    try {
      meta = JSON.parse(new TextDecoder().decode(metaBytes));
    } catch {
      throw new UserError(`${metaPath} is corrupt (not valid JSON).`, rebuildHint);
    }
    const index = new HierarchicalNSW(manifest.metric, manifest.recipe.dims);
    index.readIndexSync(indexPath);
    const store = new VectorStore(dir, manifest, index);
    for (const [label, id, p, startLine, endLine, contentHash] of meta.entries) {
      store.remember(label, { id, path: p, startLine, endLine, contentHash });
    }
    if (store.byLabel.size !== manifest.count || index.getCurrentCount() !== manifest.count + manifest.deleted) {
      throw new UserError(
        `The store in ${dir} is inconsistent (manifest count ${manifest.count}, metadata ${store.byLabel.size}, index ${index.getCurrentCount()} with ${manifest.deleted} deleted).`,
        rebuildHint,
      );
    }
    index.setEf(manifest.efSearch);
    return store;
  }

  /** Open `dir` if it is a store (checking the recipe), else create it. */
  static async openOrCreate(dir: string, recipe: RecipeIdentity, options: StoreOptions = {}): Promise<VectorStore> {
    const hasManifest = await fsp.stat(path.join(dir, MANIFEST_NAME)).then(() => true, () => false);
    return hasManifest ? VectorStore.open(dir, recipe) : VectorStore.create(dir, recipe, options);
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
    return this.byLabel.size;
  }
  get generation(): number {
    return this.manifest.generation;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }
  get(id: string): ChunkRecord | undefined {
    const label = this.byId.get(id);
    return label === undefined ? undefined : { ...this.byLabel.get(label)! };
  }
  /** The chunk stored under an HNSW label (labels are the ids in exported FAISS files). */
  recordOfLabel(label: number): ChunkRecord | undefined {
    const r = this.byLabel.get(label);
    return r ? { ...r } : undefined;
  }
  /** Chunk records of one path (e.g. to compare content hashes when re-indexing). */
  recordsOfPath(p: string): ChunkRecord[] {
    return [...(this.byPath.get(p) ?? [])].map((l) => ({ ...this.byLabel.get(l)! }));
  }
  paths(): string[] {
    return [...this.byPath.keys()];
  }

  /**
   * The `k` nearest chunks, best first. `ef` (default: the store's efSearch) is raised to k if lower.
   * With `recipe`, a query embedded with another recipe is refused.
   */
  query(vector: Float32Array, k: number, options: { ef?: number; recipe?: RecipeIdentity } = {}): QueryHit[] {
    if (options.recipe) assertSameRecipe(this.manifest.recipe, options.recipe, 'the query');
    if (vector.length !== this.dims) {
      throw new UserError(`Query vector has ${vector.length} dims, the store has ${this.dims}.`, 'Embed the query with the store\'s recipe.');
    }
    checkVectors(vector, this.dims, 'Query');
    const kk = Math.min(Math.max(0, Math.floor(k)), this.count);
    if (kk === 0) return [];
    this.index.setEf(Math.max(options.ef ?? this.manifest.efSearch, kk));
    const { neighbors, distances } = this.index.searchKnn(Array.from(vector), kk);
    const hits: QueryHit[] = [];
    for (let i = 0; i < neighbors.length; i++) {
      const rec = this.byLabel.get(neighbors[i]);
      if (!rec) continue; // cannot happen for a consistent store; never report an unknown label
      const distance = distances[i];
      hits.push({ ...rec, label: neighbors[i], distance, score: this.scoreOf(distance) });
    }
    return hits;
  }

  private scoreOf(distance: number): number {
    return this.manifest.metric === 'l2' ? -distance : 1 - distance;
  }

  /** Live entries with their stored vectors (normalized for the cosine metric), in label order. */
  snapshot(): { labels: Int32Array; records: ChunkRecord[]; vectors: Float32Array } {
    const labels = Int32Array.from([...this.byLabel.keys()].sort((a, b) => a - b));
    const vectors = new Float32Array(labels.length * this.dims);
    labels.forEach((label, i) => vectors.set(this.index.getPoint(label), i * this.dims));
    return { labels, records: [...labels].map((l) => ({ ...this.byLabel.get(l)! })), vectors };
  }

  stats(): StoreStats {
    const m = this.manifest;
    return {
      dir: this.dir,
      generation: m.generation,
      count: this.count,
      deleted: this.deletedCount,
      capacity: this.index.getMaxElements(),
      paths: this.byPath.size,
      dims: this.dims,
      metric: m.metric,
      M: m.M,
      efConstruction: m.efConstruction,
      efSearch: m.efSearch,
      recipe: this.recipe,
      bytesOnDisk: m.files.index.bytes + m.files.metadata.bytes,
      dirty: this.dirty,
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
    this.ensureCapacity(n);
    for (let i = 0; i < n; i++) {
      const rec = records[i];
      const old = this.byId.get(rec.id);
      if (old !== undefined) this.deleteLabel(old);
      const label = this.nextLabel++;
      this.index.addPoint(Array.from(vectors.subarray(i * this.dims, (i + 1) * this.dims)), label);
      this.remember(label, { id: rec.id, path: rec.path, startLine: rec.startLine, endLine: rec.endLine, contentHash: rec.contentHash });
    }
    if (n > 0) this.dirty = true;
  }

  /** Remove every chunk of `p`; returns how many were removed. */
  deleteByPath(p: string): number {
    const labels = this.byPath.get(p);
    if (!labels) return 0;
    const all = [...labels];
    for (const l of all) this.deleteLabel(l);
    this.dirty = true;
    return all.length;
  }

  deleteById(id: string): boolean {
    const label = this.byId.get(id);
    if (label === undefined) return false;
    this.deleteLabel(label);
    this.dirty = true;
    return true;
  }

  /** True when deleted labels pass the thresholds (compaction then happens at the next save). */
  needsCompaction(): boolean {
    const total = this.count + this.deletedCount;
    return this.deletedCount >= this.manifest.compactMinDeleted && this.deletedCount > this.manifest.compactRatio * total;
  }

  /** Rebuild the HNSW graph from the live vectors only (drops deleted labels; labels are kept). */
  compact(): void {
    if (this.deletedCount === 0) return;
    const labels = [...this.byLabel.keys()].sort((a, b) => a - b);
    const capacity = Math.max(16, Math.ceil(labels.length * 1.25));
    const next = new HierarchicalNSW(this.manifest.metric, this.dims);
    next.initIndex(capacity, this.manifest.M, this.manifest.efConstruction, this.manifest.seed);
    for (const label of labels) next.addPoint(this.index.getPoint(label), label);
    this.index = next;
    this.index.setEf(this.manifest.efSearch);
    this.deletedCount = 0;
    this.dirty = true;
  }

  private remember(label: number, rec: ChunkRecord): void {
    this.byId.set(rec.id, label);
    this.byLabel.set(label, rec);
    let set = this.byPath.get(rec.path);
    if (!set) this.byPath.set(rec.path, (set = new Set()));
    set.add(label);
  }

  private deleteLabel(label: number): void {
    const rec = this.byLabel.get(label);
    if (!rec) return;
    this.index.markDelete(label);
    this.deletedCount++;
    this.byLabel.delete(label);
    this.byId.delete(rec.id);
    const set = this.byPath.get(rec.path);
    set?.delete(label);
    if (set && set.size === 0) this.byPath.delete(rec.path);
  }

  private ensureCapacity(extra: number): void {
    const cap = this.index.getMaxElements();
    const needed = this.index.getCurrentCount() + extra;
    if (needed > cap) this.index.resizeIndex(Math.max(needed, Math.ceil(cap * 1.5)));
  }

  // ---------------------------------------------------------------------------------------------
  // Saving

  /**
   * Commit the in-memory state as a new generation (see the protocol at the top of this file).
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
    if (this.needsCompaction()) this.compact();
    const g = this.manifest.generation + 1;
    // Snapshot everything synchronously first, so later mutations do not leak into this generation.
    const meta: MetadataFile = {
      format: 'embedding-lens-store-metadata',
      generation: g,
      entries: [...this.byLabel].map(([l, r]) => [l, r.id, r.path, r.startLine, r.endLine, r.contentHash]),
    };
    const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
    const indexFinal = path.join(this.dir, indexName(g));
    const metaFinal = path.join(this.dir, metadataName(g));
    const indexTmp = tempPathFor(indexFinal);
    let manifestTmp: string | undefined;
    let committed = false;
    const counts = { count: this.count, deleted: this.deletedCount, capacity: this.index.getMaxElements(), nextLabel: this.nextLabel };
    try {
      // hnswlib opens its std::ofstream without reporting failure: create the file first so that
      // permission problems surface as a real EACCES here instead of a missing file later.
      await (await fsp.open(indexTmp, 'wx', 0o644)).close();
      try {
        this.index.writeIndexSync(indexTmp);
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
      await commitTempFile(indexTmp, indexFinal);
      await writeFileAtomic(metaFinal, metaBytes);
      const manifest: StoreManifest = {
        ...this.manifest,
        ...counts,
        toolVersion: TOOL_VERSION,
        generation: g,
        files: {
          index: { name: indexName(g), ...indexDigest },
          metadata: { name: metadataName(g), ...digestBytes(metaBytes) },
        },
        savedAt: new Date().toISOString(),
      };
      const manifestPath = path.join(this.dir, MANIFEST_NAME);
      manifestTmp = tempPathFor(manifestPath);
      await writeSynced(manifestTmp, JSON.stringify(manifest, null, 2) + '\n');
      await fsp.rename(manifestTmp, manifestPath);
      // Committed: the manifest names generation g. Nothing below may delete g's files.
      committed = true;
      this.manifest = manifest;
      this.dirty = false;
      await fsyncDir(this.dir);
    } catch (err) {
      await removeQuietly(indexTmp);
      if (manifestTmp) await removeQuietly(manifestTmp);
      if (committed) throw err; // only the final directory fsync failed; the new generation is in place
      // The files of the uncommitted generation are garbage now (the manifest still names g-1).
      await removeQuietly(indexFinal);
      await removeQuietly(metaFinal);
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'ENOSPC'
          ? 'the disk is full'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied'
            : e.code === 'EFBIG' || e instanceof UserError
              ? `a file came out short, is the disk full? ${e.message}`
              : e.message;
      throw new UserError(
        `Saving the index in ${this.dir} failed (${why}); the previous version (generation ${this.manifest.generation}) is intact.`,
        e instanceof UserError ? e.message : 'Free disk space or fix the folder permissions, then index again.',
      );
    }
    await this.sweep();
  }

  /** Delete files of other generations and temp leftovers of killed writers. */
  private async sweep(): Promise<void> {
    const keep = new Set([this.manifest.files.index.name, this.manifest.files.metadata.name]);
    let removed = false;
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (keep.has(name)) continue;
      if (GENERATION_FILE.test(name) || isTempName(name)) {
        await removeQuietly(path.join(this.dir, name));
        removed = true;
      }
    }
    if (removed) await fsyncDir(this.dir).catch(() => undefined);
  }
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

async function readVerified(filePath: string, entry: FileEntry): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(filePath);
  } catch (err) {
    throw new UserError(`${filePath} is missing (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); the store is damaged.`, rebuildHint);
  }
  if (bytes.byteLength !== entry.bytes) {
    throw new UserError(`${filePath} is truncated or damaged (${bytes.byteLength} bytes, the manifest says ${entry.bytes}).`, rebuildHint);
  }
  if (digestBytes(bytes).sha256 !== entry.sha256) {
    throw new UserError(`${filePath} is corrupt (checksum mismatch).`, rebuildHint);
  }
  return bytes;
}

/** The HNSW graph of a store's committed index, for export to FAISS (see faiss.ts). */
export async function readStoreGraph(dir: string) {
  const manifest = await VectorStore.readManifest(dir);
  const p = path.join(dir, manifest.files.index.name);
  const bytes = await readVerified(p, manifest.files.index);
  return { manifest, graph: parseHnswlibFile(bytes, manifest.recipe.dims, p) };
}
