// The catalog: what the index holds, per file — size, mtime, content hash, and the chunks made from it
// (or why the file was skipped). It is the authority on what is done: the vector store and the lexical
// index are saved BEFORE the catalog, so after a crash the catalog never claims work that is not on
// disk; anything the store holds beyond it is swept (or reused, when its content hash comes back).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../store/atomicFile';
import { describeIdentity, sameRecipe, type RecipeIdentity } from '../recipe';
import { UserError } from '../errors';
import type { SkipReason } from './files';

export const CATALOG_FORMAT_VERSION = 1;
/** Bumped when chunking changes in a way that changes chunk boundaries (forces re-chunking). */
export const CHUNKER_VERSION = 1;

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

interface CatalogJson {
  formatVersion: number;
  tool: 'embedding-lens';
  identity: RecipeIdentity;
  chunking: ChunkingParams;
  /** Folder that was indexed (absolute), so a store is not reused for another folder by mistake. */
  root: string;
  updatedAt: string;
  /** True once a refresh ran to the end (false while one is in progress or after a cancel/crash). */
  complete: boolean;
  files: Record<string, CatalogEntry>;
}

export class Catalog {
  private constructor(
    readonly file: string,
    private data: CatalogJson,
  ) {}

  /**
   * Opens the catalog at `file`, or starts an empty one. A catalog made with other chunking parameters
   * is started afresh (its chunks would not match); one for another recipe or a newer format is an error.
   */
  static async open(file: string, init: { identity: RecipeIdentity; chunking?: ChunkingParams; root: string }): Promise<{ catalog: Catalog; reset: boolean }> {
    let raw: string | null = null;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const fresh = (): CatalogJson => ({
      formatVersion: CATALOG_FORMAT_VERSION, tool: 'embedding-lens', identity: init.identity,
      chunking: init.chunking ?? { version: CHUNKER_VERSION, maxTokens: 256, overlapLines: 2, scale: 1 },
      root: init.root, updatedAt: new Date().toISOString(), complete: false, files: {},
    });
    if (raw === null) return { catalog: new Catalog(file, fresh()), reset: false };
    let data: CatalogJson;
    try {
      data = JSON.parse(raw) as CatalogJson;
    } catch {
      throw new UserError(`The index catalog ${file} is corrupt (not valid JSON).`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', dir: path.dirname(file), file });
    }
    if (typeof data.formatVersion !== 'number' || data.formatVersion > CATALOG_FORMAT_VERSION) {
      throw new UserError(
        `The index at ${path.dirname(file)} was written by a newer version of embedding-lens (catalog format ${data.formatVersion}; this version reads ${CATALOG_FORMAT_VERSION}).`,
        'Update Embedding Lens, or rebuild the index with this version.',
        { code: 'INDEX_NEWER', dir: path.dirname(file) },
      );
    }
    if (!sameRecipe(data.identity, init.identity)) {
      throw new UserError(
        `The index at ${path.dirname(file)} belongs to another model or recipe (${describeIdentity(data.identity)}), not ${describeIdentity(init.identity)}.`,
        'Rebuild the index.',
        { code: 'RECIPE_MISMATCH', dir: path.dirname(file) },
      );
    }
    const c = data.chunking;
    const want = init.chunking;
    if (want && (!c || c.version !== want.version || c.maxTokens !== want.maxTokens || c.overlapLines !== want.overlapLines || c.scale !== want.scale)) {
      return { catalog: new Catalog(file, fresh()), reset: true };
    }
    if (init.root) data.root = init.root;
    return { catalog: new Catalog(file, data), reset: false };
  }

  get identity(): RecipeIdentity { return this.data.identity; }
  get complete(): boolean { return this.data.complete; }
  set complete(value: boolean) { this.data.complete = value; }
  get updatedAt(): string { return this.data.updatedAt; }
  get root(): string { return this.data.root; }
  get chunking(): ChunkingParams { return this.data.chunking; }

  paths(): string[] { return Object.keys(this.data.files); }
  get(p: string): CatalogEntry | undefined { return this.data.files[p]; }
  set(p: string, entry: CatalogEntry): void { this.data.files[p] = entry; }
  delete(p: string): void { delete this.data.files[p]; }

  *chunks(): Iterable<ChunkRef & { path: string }> {
    for (const [p, entry] of Object.entries(this.data.files)) {
      for (const chunk of entry.chunks) yield { ...chunk, path: p };
    }
  }

  counts(): { files: number; skipped: number; chunks: number } {
    let files = 0, skipped = 0, chunks = 0;
    for (const entry of Object.values(this.data.files)) {
      if (entry.skip) skipped++;
      else files++;
      chunks += entry.chunks.length;
    }
    return { files, skipped, chunks };
  }

  async save(): Promise<void> {
    this.data.updatedAt = new Date().toISOString();
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify(this.data));
  }
}

export { sameRecipe, describeIdentity } from '../recipe';
