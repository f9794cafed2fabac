// What a refresh has to do, decided before anything is read or embedded: which files to read (new,
// changed by size or mtime, or left unfinished), which catalog files are gone, and whether the whole
// index must be swept afterwards. Pure: the indexer (indexer.ts refreshLocked) applies the plan.

/** A file found in the folder (core/index/files.ts discoverFiles). */
export interface PlannedFile {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** What the plan reads of the index as it is now. */
export interface IndexView {
  /** True when the last refresh ran to the end. */
  readonly complete: boolean;
  paths(): Iterable<string>;
  get(path: string): { readonly size: number; readonly mtimeMs: number; readonly chunks: readonly { readonly id: string }[] } | undefined;
  /** Whether the vector store and the lexical index hold a chunk. */
  stored(id: string): boolean;
  /** Parts dropped as damaged when the index was opened, or a lexical index smaller than the store. */
  readonly partsLost: boolean;
}

export interface RefreshPlan<F extends PlannedFile> {
  /** Files to read, in discovery order. */
  readonly todo: readonly F[];
  /** Catalog files with chunks missing from the store or the lexical index: redone even if their text did not change. */
  readonly dirty: ReadonlySet<string>;
  /** Catalog files no longer in the folder (of `scope`, when given): their chunks are removed. */
  readonly removed: readonly string[];
  /**
   * Whether the index may lack chunks the catalog names (an unfinished refresh, a dropped part): then
   * every catalog chunk was checked, and the store is swept whole after the refresh.
   */
  readonly mayLack: boolean;
}

/**
 * `scope`: the refresh looked only at these paths (discoverPaths, for an editor's save), so `files` are
 * those of them still there and only they can be removed. Only valid when the index lacks nothing
 * (complete, no part lost: then no other file is dirty); the indexer walks the folder otherwise.
 *
 * A catalog entry whose chunks are not all in the store and the lexical index is unfinished work. Only
 * an unfinished refresh (a cancel, a crash) or a dropped damaged part can leave such entries: the
 * catalog is saved after the store and the lexical index, so after a complete refresh it claims
 * nothing they lack, and the chunk-by-chunk check (two lookups per chunk of the whole index) is skipped.
 */
export function planRefresh<F extends PlannedFile>(files: readonly F[], index: IndexView, scope?: ReadonlySet<string>): RefreshPlan<F> {
  const mayLack = !index.complete || index.partsLost;
  if (scope && mayLack) throw new Error('planRefresh: a refresh of named paths needs an index that lacks nothing (walk the folder)');
  const dirty = new Set<string>();
  if (mayLack) {
    for (const p of index.paths()) {
      if (index.get(p)!.chunks.some((c) => !index.stored(c.id))) dirty.add(p);
    }
  }
  // Stat unchanged and every chunk stored: nothing to do for that file.
  const todo = files.filter((f) => {
    const entry = index.get(f.path);
    return !entry || dirty.has(f.path) || entry.size !== f.size || entry.mtimeMs !== f.mtimeMs;
  });
  const seen = new Set(files.map((f) => f.path));
  // A refresh of named paths (scope: an editor's save) knows only about those: only they can be gone.
  const removed = scope ? [...scope].filter((p) => !seen.has(p) && index.get(p) !== undefined).sort() : [...index.paths()].filter((p) => !seen.has(p));
  return { todo, dirty, removed, mayLack };
}
