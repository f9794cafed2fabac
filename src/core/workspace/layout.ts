// The storage layout of a folder's indexes — the one place that knows where things are on disk:
//
//   <storage>/embedding-lens.json          storage format marker (a newer one is refused, not guessed)
//   <storage>/.gitignore                   `*`, so a storage folder inside a repository stays out of git
//   <storage>/stores/<recipe key>/         one store per recipe: the VectorStore's files (manifest.json,
//                                          its generation files), catalog.json, lexical.json, writer.lock
//
// The CLI keeps <storage> in <folder>/.embedding-lens by default; the extension in VS Code's storage.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { UserError } from '../errors';
import { describeIdentity, type RecipeIdentity } from '../recipe';
import { writeFileAtomic } from '../store/atomicFile';

export const STORAGE_FORMAT_VERSION = 1;
export const STORAGE_MARKER = 'embedding-lens.json';
export const STORES_DIR = 'stores';
export const CATALOG_FILE = 'catalog.json';
export const LEXICAL_FILE = 'lexical.json';
/** The store's own manifest (core/store/vectorStore.ts MANIFEST_NAME). */
export const STORE_MANIFEST = 'manifest.json';
/** The CLI's storage folder inside an indexed folder. */
export const DEFAULT_STORAGE_NAME = '.embedding-lens';

/** `<folder>/.embedding-lens` unless a storage folder is given. */
export function storageFor(folder: string, storage?: string): string {
  return path.resolve(storage ?? path.join(folder, DEFAULT_STORAGE_NAME));
}

/** The hash part of a store key: the identity minus the model's path text. */
function identityHash(identity: RecipeIdentity): string {
  const fields: unknown[] = [identity.modelHash, identity.layer, identity.pooling, identity.wordPooling ?? null, identity.normalize, identity.dims];
  if (identity.excludeSpecialTokens) fields.push('exclude-special');
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 10);
}

/**
 * Short stable key of a recipe, used as its store folder's name: `<layer>-<pooling>-<hash>`. It
 * depends on the weights' hash, never on the model's path, so a symlink or a moved folder finds the
 * same store. (Stores named by earlier versions, `<model name>-<layer>-<pooling>-<hash>`, end in the
 * same hash: see `matchesKey`.)
 */
export function recipeKey(identity: RecipeIdentity): string {
  const slug = `${identity.layer}-${identity.pooling}`.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return `${slug || 'recipe'}-${identityHash(identity)}`;
}

/** Whether a store folder name belongs to this identity (also the names earlier versions gave). */
export function matchesKey(folderName: string, identity: RecipeIdentity): boolean {
  return folderName === recipeKey(identity) || folderName.endsWith(`-${identityHash(identity)}`);
}

export function storesDirOf(storageDir: string): string {
  return path.join(storageDir, STORES_DIR);
}

/** Where the store of `identity` is, or would be created: an existing folder of this identity, else the key's. */
export async function storeDirFor(storageDir: string, identity: RecipeIdentity): Promise<string> {
  const stores = storesDirOf(storageDir);
  const exact = path.join(stores, recipeKey(identity));
  if (await exists(exact)) return exact;
  const names = (await fs.readdir(stores).catch(() => [] as string[])).filter((n) => !isTransient(n)).sort();
  const legacy = names.find((n) => matchesKey(n, identity));
  return legacy ? path.join(stores, legacy) : exact;
}

/**
 * What is in a store folder: nothing (`absent`), a store whose manifest reads (`store`), a manifest
 * that does not read (`damaged`), or store files without a manifest (`leftovers`: damaged too).
 */
export async function storeState(storeDir: string): Promise<'absent' | 'store' | 'damaged' | 'leftovers'> {
  const names = (await fs.readdir(storeDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.') && n !== 'writer.lock');
  if (!names.length) return 'absent';
  if (!names.includes(STORE_MANIFEST)) return 'leftovers';
  try {
    const m = JSON.parse(await fs.readFile(path.join(storeDir, STORE_MANIFEST), 'utf8')) as { format?: unknown };
    return m?.format === 'embedding-lens-store' ? 'store' : 'damaged';
  } catch {
    return 'damaged';
  }
}

/** A store being rebuilt beside the old one (`<key>.rebuild`) or an old one being removed (`<key>.old-<pid>`). */
function isTransient(name: string): boolean {
  return name.endsWith('.rebuild') || /\.old-\d+$/.test(name);
}

export interface StoredIndex {
  /** The store folder. */
  dir: string;
  name: string;
  /** The recipe its manifest records (or its catalog, when the manifest does not read); undefined when neither reads. */
  recipe?: RecipeIdentity;
  /** The manifest does not read. */
  damaged?: boolean;
  /** Vectors the manifest counts. */
  count?: number;
}

/** Every store folder under a storage folder, with the recipe its manifest names (if readable). */
export async function listStores(storageDir: string): Promise<StoredIndex[]> {
  const stores = storesDirOf(storageDir);
  const names = (await fs.readdir(stores, { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isDirectory() && !isTransient(e.name))
    .map((e) => e.name)
    .sort();
  return Promise.all(names.map(async (name): Promise<StoredIndex> => {
    const dir = path.join(stores, name);
    try {
      const m = JSON.parse(await fs.readFile(path.join(dir, STORE_MANIFEST), 'utf8')) as { recipe?: RecipeIdentity; count?: number };
      if (m.recipe) return { dir, name, recipe: m.recipe, count: m.count };
    } catch {
      // the manifest does not read: the catalog names the recipe too
    }
    try {
      const catalog = JSON.parse(await fs.readFile(path.join(dir, CATALOG_FILE), 'utf8')) as { identity?: RecipeIdentity };
      if (catalog.identity) return { dir, name, recipe: catalog.identity, damaged: true };
    } catch {
      // neither reads
    }
    return { dir, name, damaged: true };
  }));
}

/** Descriptions of the recipes indexed in a storage folder (for "no index for this recipe" messages). */
export async function describeStored(storageDir: string): Promise<string[]> {
  return (await listStores(storageDir)).flatMap((s) => (s.recipe ? [describeIdentity(s.recipe)] : []));
}

/** Checks (or creates) the storage folder's format marker; a newer format is a clear error. */
export async function prepareStorage(storageDir: string, create: boolean): Promise<void> {
  const marker = path.join(storageDir, STORAGE_MARKER);
  let raw: string | null = null;
  try {
    raw = await fs.readFile(marker, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UserError(`Cannot read ${marker}: ${(err as Error).message}`, undefined, { code: 'IO_FAILED', file: marker });
    }
  }
  if (raw !== null) {
    let version: unknown;
    try {
      version = (JSON.parse(raw) as { formatVersion?: unknown }).formatVersion;
    } catch {
      if (create) {
        // Only the marker is damaged; it holds nothing but the version: write it again.
        await writeMarker(storageDir);
        return;
      }
      throw new UserError(`${marker} is corrupt (not valid JSON).`, 'Index the folder again: that writes it anew.', { code: 'INDEX_DAMAGED', storageDir, file: marker, repair: 'refresh' });
    }
    if (typeof version !== 'number' || version > STORAGE_FORMAT_VERSION) {
      throw new UserError(
        `The index folder ${storageDir} was written by a newer version of Embedding Lens (storage format ${String(version)}; this version reads ${STORAGE_FORMAT_VERSION}).`,
        'Update Embedding Lens, or rebuild the index with this version (or keep it in another storage folder).',
        { code: 'INDEX_NEWER', storageDir },
      );
    }
    return;
  }
  if (!create) throw new UserError(`No index at ${storageDir}.`, 'Build the index first.', { code: 'INDEX_MISSING', storageDir });
  await fs.mkdir(storageDir, { recursive: true });
  await writeFileAtomic(path.join(storageDir, '.gitignore'), '# Embedding Lens index: generated, not for version control\n*\n');
  await writeMarker(storageDir);
}

async function writeMarker(storageDir: string): Promise<void> {
  await writeFileAtomic(path.join(storageDir, STORAGE_MARKER), JSON.stringify({ format: 'embedding-lens-storage', formatVersion: STORAGE_FORMAT_VERSION }, null, 2) + '\n');
}

/**
 * Removes a storage folder's stores: one recipe's, or all of them with the folder's own marker files.
 * Only what the indexer writes is removed, so a storage folder the user chose keeps anything else.
 */
export async function clearStorage(storageDir: string, identity?: RecipeIdentity): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (p: string) => {
    if (await exists(p)) {
      await fs.rm(p, { recursive: true, force: true });
      removed.push(p);
    }
  };
  if (identity) {
    for (const s of await listStores(storageDir)) if (matchesKey(s.name, identity)) await remove(s.dir);
    return removed;
  }
  await remove(storesDirOf(storageDir));
  await remove(path.join(storageDir, STORAGE_MARKER));
  await remove(path.join(storageDir, '.gitignore'));
  // The folder itself goes when nothing else is in it.
  if ((await fs.readdir(storageDir).catch(() => ['?'])).length === 0) await fs.rmdir(storageDir).catch(() => undefined);
  return removed;
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(() => true, () => false);
}
