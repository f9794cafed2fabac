// Sharded extraction: one process embeds a deterministic share of the input, writes its own .npy plus a
// manifest, and resumes after a kill from its last checkpoint. `merge` (shardMerge.ts) joins the shards.
//
// The share is by input index: shard K of N takes rows [floor(K·n/N), floor((K+1)·n/N)) of the n input
// texts, so every text lands in exactly one shard whatever machine runs it, and a merge is a
// concatenation in shard order (streamed).
//
// Files of shard K of N for `--out <dir>/<name>.npy`:
//   <name>.shard-0000K-of-0000N.npy              the rows (published at the end; header has the final shape)
//   <name>.shard-0000K-of-0000N.npy.json         the manifest (written last: its presence means complete)
//   <name>.shard-0000K-of-0000N.npy.items.jsonl  one line per input: index, tokens, windows, truncated
// While running: `<shard>.npy.partial`, `<shard>.npy.items.jsonl.partial` and `<shard>.npy.progress.json`.
//
// Checkpoint protocol: after each batch of texts the rows are written at their place in the .partial
// file and the item lines appended, both fsync'ed, then the progress file (rows done) is replaced
// atomically. After a kill, a re-run reads the progress file, cuts both partial files back to the rows it
// names (a batch written after the last checkpoint is dropped and redone), and continues: no row is
// missing or doubled.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { outputFormatOfName } from '../outputFormats';
import { commitTempFile, digestFile, fsyncDir, removeQuietly, writeFileAtomic } from '../store/atomicFile';
import { toFloat16Array } from '../store/float16';
import { npyPreamble } from '../store/npy';
import { TOOL_VERSION, UserError, type EmbeddingManifest, type Logger, type OutputDType, type ProgressEvent, type Recipe } from '../types';
import type { Extractor } from './extractor';

export const SHARD_FORMAT = 'embedding-lens-shard';
export const SHARD_FORMAT_VERSION = 1;

export interface ShardSpec {
  /** 0-based. */
  index: number;
  count: number;
}

/** `K/N` with 0 ≤ K < N. */
export function parseShardSpec(text: string, flag = '--shard'): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UserError(`${flag} expects K/N (shard K of N, K from 0 to N-1), got "${text}".`);
  const spec = { index: Number(m[1]), count: Number(m[2]) };
  checkSpec(spec, flag);
  return spec;
}

function checkSpec(spec: ShardSpec, source: string): void {
  if (!Number.isSafeInteger(spec.count) || spec.count < 1) throw new UserError(`${source}: the number of shards must be at least 1, got ${spec.count}.`);
  if (!Number.isSafeInteger(spec.index) || spec.index < 0 || spec.index >= spec.count) {
    throw new UserError(`${source}: shard ${spec.index} is outside 0..${spec.count - 1} (shards are numbered from 0).`);
  }
}

/**
 * The shard this process runs: `--shard K/N`, else the scheduler's variables with `--shards N`:
 * Slurm job arrays (SLURM_ARRAY_TASK_ID, minus SLURM_ARRAY_TASK_MIN; SLURM_ARRAY_TASK_COUNT) and
 * Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX). Null when nothing asks for sharding.
 */
export function resolveShard(shard: string | undefined, shards: string | undefined, env: NodeJS.ProcessEnv = process.env): ShardSpec | null {
  if (shard !== undefined) {
    const spec = parseShardSpec(shard);
    if (shards !== undefined && Number(shards) !== spec.count) throw new UserError(`--shard ${shard} and --shards ${shards} disagree on the number of shards.`);
    return spec;
  }
  if (shards === undefined) return null;
  const count = Number(shards);
  if (!Number.isSafeInteger(count) || count < 1) throw new UserError(`--shards must be a positive integer, got "${shards}".`);
  let index: number;
  let source: string;
  if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const min = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    index = Number(env.SLURM_ARRAY_TASK_ID) - min;
    source = `SLURM_ARRAY_TASK_ID=${env.SLURM_ARRAY_TASK_ID}${env.SLURM_ARRAY_TASK_MIN ? ` (minus SLURM_ARRAY_TASK_MIN=${min})` : ''}`;
    if (env.SLURM_ARRAY_TASK_COUNT !== undefined && Number(env.SLURM_ARRAY_TASK_COUNT) !== count) {
      throw new UserError(`--shards ${count} but the Slurm array has SLURM_ARRAY_TASK_COUNT=${env.SLURM_ARRAY_TASK_COUNT} tasks.`, 'Make --shards equal the array size (e.g. --array=0-3 with --shards 4).');
    }
  } else if (env.JOB_COMPLETION_INDEX !== undefined) {
    index = Number(env.JOB_COMPLETION_INDEX);
    source = `JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX}`;
  } else {
    throw new UserError(
      `--shards ${count} without a shard number: give --shard K/${count}, or run it as a Slurm array task (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX).`,
    );
  }
  const spec = { index, count };
  checkSpec(spec, source);
  return spec;
}

/** Input rows of a shard: [start, end). */
export function shardRange(total: number, spec: ShardSpec): { start: number; end: number } {
  return { start: Math.floor((spec.index * total) / spec.count), end: Math.floor(((spec.index + 1) * total) / spec.count) };
}

/** `emb.npy` → `emb.shard-00002-of-00004.npy`. */
export function shardFileName(out: string, spec: ShardSpec): string {
  const ext = path.extname(out);
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${out.slice(0, out.length - ext.length)}.shard-${pad(spec.index)}-of-${pad(spec.count)}${ext}`;
}

/** sha256 over every input text (length-prefixed), so shards of different inputs are never merged. */
export function inputDigest(texts: string[]): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(8);
  for (const t of texts) {
    const b = Buffer.from(t, 'utf8');
    len.writeBigUInt64LE(BigInt(b.length));
    h.update(len);
    h.update(b);
  }
  return h.digest('hex');
}

/** What must be equal across the shards of one run (checked on resume and at merge). */
export interface ShardRecipe {
  model: string;
  modelHash: string;
  layer: string;
  layers: number[];
  pooling: string;
  normalize: boolean;
  excludeSpecialTokens: boolean;
  dims: number;
  dtype: OutputDType;
  prefix: string;
  truncate: boolean;
  windowOverlap: number | null;
}

/** Fields compared between shards, in the order a mismatch is reported. */
export const SHARD_RECIPE_FIELDS: (keyof ShardRecipe)[] = [
  'modelHash', 'layer', 'layers', 'pooling', 'normalize', 'excludeSpecialTokens', 'dims', 'dtype', 'prefix', 'truncate', 'windowOverlap',
];

export interface ShardManifest {
  format: typeof SHARD_FORMAT;
  formatVersion: number;
  toolVersion: string;
  shard: ShardSpec;
  input: { count: number; sha256: string };
  /** Input rows [start, end) this shard holds, in order. */
  range: { start: number; end: number };
  recipe: ShardRecipe;
  /** The engine's manifest of the extraction (without items). */
  manifest: Omit<EmbeddingManifest, 'count' | 'createdAt'>;
  rows: number;
  /** sha256 and size of the finished .npy file, checked by merge. */
  file: { sha256: string; bytes: number };
  itemsFile: string;
  createdAt: string;
}

interface ShardProgress {
  format: 'embedding-lens-shard-progress';
  shard: ShardSpec;
  input: { count: number; sha256: string };
  range: { start: number; end: number };
  recipe: ShardRecipe;
  manifest: Omit<EmbeddingManifest, 'count' | 'createdAt'>;
  rowsDone: number;
  itemsBytes: number;
}

/** One line of the items file. */
export interface ShardItem {
  /** Input index (0-based, over the whole input). */
  index: number;
  tokenCount: number;
  windows: number;
  truncated: boolean;
}

export interface ShardRunOptions {
  texts: string[];
  recipe: Recipe;
  spec: ShardSpec;
  /** The output the user named (`emb.npy`); the shard's file name is derived from it. */
  out: string;
  dtype: OutputDType;
  prefix?: string;
  truncate?: boolean;
  windowOverlap?: number;
  /** Texts per checkpoint. Default 1024. */
  checkpointEvery?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  logger?: Logger;
}

export interface ShardRunResult {
  file: string;
  manifestFile: string;
  rows: number;
  /** Rows found done from an earlier run. */
  resumedRows: number;
  /** True when the shard had been finished before: nothing was done. */
  alreadyComplete: boolean;
}

export function shardPaths(file: string) {
  return {
    file,
    manifest: `${file}.json`,
    items: `${file}.items.jsonl`,
    partial: `${file}.partial`,
    itemsPartial: `${file}.items.jsonl.partial`,
    progress: `${file}.progress.json`,
  };
}

/** First differing field of two recipes (with both values), or null. */
export function recipeDifference(a: ShardRecipe, b: ShardRecipe): { field: string; a: string; b: string } | null {
  for (const f of SHARD_RECIPE_FIELDS) {
    const x = JSON.stringify(a[f] ?? null);
    const y = JSON.stringify(b[f] ?? null);
    if (x !== y) return { field: f, a: x, b: y };
  }
  return null;
}

/** Runs (or resumes, or confirms) one shard. */
export async function runShard(extractor: Extractor, options: ShardRunOptions): Promise<ShardRunResult> {
  const { texts, recipe, spec, dtype, logger } = options;
  if (recipe.pool === 'none' || recipe.pool === 'words') {
    throw new UserError(`Sharded extraction writes one row per text: use --pool mean, max, cls or last (not "${recipe.pool}").`);
  }
  if (outputFormatOfName(options.out) !== 'npy') {
    throw new UserError(
      `With --shard, --out must name a .npy file (got "${options.out}"): each shard writes .npy rows.`,
      'Choose .npy, .h5 or .faiss for the joined result with `embedding-lens merge --out <file>`.',
    );
  }
  const checkpointEvery = options.checkpointEvery ?? 1024;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1) throw new UserError(`--checkpoint-every must be a positive integer, got ${checkpointEvery}.`);
  const identity = extractor.identity(recipe);
  const selection = extractor.layers(recipe.layer);
  const input = { count: texts.length, sha256: inputDigest(texts) };
  const range = shardRange(texts.length, spec);
  const shardRecipe: ShardRecipe = {
    model: identity.model,
    modelHash: identity.modelHash,
    layer: recipe.layer,
    layers: selection.layers,
    pooling: recipe.pool,
    normalize: identity.normalize,
    excludeSpecialTokens: recipe.excludeSpecialTokens ?? false,
    dims: identity.dims,
    dtype,
    prefix: options.prefix ?? '',
    truncate: options.truncate ?? false,
    windowOverlap: options.windowOverlap ?? null,
  };
  const baseManifest: ShardProgress['manifest'] = {
    tool: 'embedding-lens',
    toolVersion: TOOL_VERSION,
    model: extractor.info.model,
    modelHash: extractor.info.modelHash,
    modelFile: extractor.info.modelFile,
    layer: recipe.layer,
    layers: selection.layers,
    layerCombine: selection.combine,
    pooling: recipe.pool,
    normalize: recipe.normalize ?? false,
    excludeSpecialTokens: recipe.excludeSpecialTokens ?? false,
    dims: identity.dims,
    dtype,
  };
  const file = path.resolve(shardFileName(options.out, spec));
  const p = shardPaths(file);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const where = `shard ${spec.index}/${spec.count} (${path.basename(file)})`;
  const sameRun = (other: { shard: ShardSpec; input: { count: number; sha256: string }; recipe: ShardRecipe }, what: string) => {
    if (other.shard.count !== spec.count || other.shard.index !== spec.index) throw new UserError(`${what} is shard ${other.shard.index}/${other.shard.count}, not ${spec.index}/${spec.count}.`);
    if (other.input.sha256 !== input.sha256) {
      throw new UserError(`${what} was made from another input (${other.input.count} texts, different content).`, `Delete ${path.basename(file)}* to start this shard again, or use another --out.`);
    }
    const diff = recipeDifference(other.recipe, shardRecipe);
    if (diff) throw new UserError(`${what} was made with ${diff.field} ${diff.a}, this run asks for ${diff.b}.`, `Delete ${path.basename(file)}* to start this shard again, or use another --out.`);
  };

  // Finished before (a scheduler retry): confirm and do nothing.
  const done = await readJson<ShardManifest>(p.manifest);
  if (done) {
    sameRun(done, `${where}: the finished shard on disk`);
    logger?.info(`${where} is already complete (${done.rows} rows); nothing to do.`);
    return { file, manifestFile: p.manifest, rows: done.rows, resumedRows: done.rows, alreadyComplete: true };
  }

  const rowBytes = identity.dims * (dtype === 'float16' ? 2 : 4);
  const total = range.end - range.start;
  const preamble = npyPreamble(dtype, [total, identity.dims]);
  let rowsDone = 0;
  let itemsBytes = 0;
  const progress = await readJson<ShardProgress>(p.progress);
  if (progress && fs.existsSync(p.partial) && fs.existsSync(p.itemsPartial)) {
    sameRun(progress, `${where}: the interrupted run on disk`);
    rowsDone = progress.rowsDone;
    itemsBytes = progress.itemsBytes;
    const have = (await fsp.stat(p.partial)).size;
    if (have < preamble.length + rowsDone * rowBytes) throw new UserError(`${p.partial} is shorter than its checkpoint says (${have} bytes for ${rowsDone} rows).`, `Delete ${path.basename(file)}* to start this shard again.`);
    await fsp.truncate(p.partial, preamble.length + rowsDone * rowBytes);
    await fsp.truncate(p.itemsPartial, itemsBytes);
    logger?.info(`${where}: resuming after ${rowsDone} of ${total} rows (checkpoint of the interrupted run).`);
  } else {
    await fsp.writeFile(p.partial, preamble);
    await fsp.writeFile(p.itemsPartial, '');
    await writeProgress(p.progress, { format: 'embedding-lens-shard-progress', shard: spec, input, range, recipe: shardRecipe, manifest: baseManifest, rowsDone: 0, itemsBytes: 0 });
  }
  const resumedRows = rowsDone;

  const data = await fsp.open(p.partial, 'r+');
  const items = await fsp.open(p.itemsPartial, 'r+');
  try {
    let tokensDone = 0;
    while (rowsDone < total) {
      options.signal?.throwIfAborted?.();
      const a = range.start + rowsDone;
      const b = Math.min(range.end, a + checkpointEvery);
      const result = await extractor.extract(texts.slice(a, b), recipe, {
        signal: options.signal,
        truncate: options.truncate,
        windowOverlap: options.windowOverlap,
        prefix: options.prefix,
        onProgress: (e) => options.onProgress?.({ itemsDone: rowsDone + e.itemsDone, itemsTotal: total, tokensDone: tokensDone + e.tokensDone, tokensTotal: 0 }),
      });
      if (result.rows !== b - a || result.dims !== identity.dims) {
        throw new Error(`extract returned ${result.rows} × ${result.dims} for ${b - a} texts of dims ${identity.dims}`);
      }
      const values = dtype === 'float16' ? toFloat16Array(result.data) : result.data;
      await writeAll(data, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), preamble.length + rowsDone * rowBytes);
      const lines = result.items
        .map((it, i) => JSON.stringify({ index: a + i, tokenCount: it.tokenCount, windows: it.windows, truncated: it.truncated } satisfies ShardItem) + '\n')
        .join('');
      const lineBytes = Buffer.from(lines, 'utf8');
      await writeAll(items, lineBytes, itemsBytes);
      await data.sync();
      await items.sync();
      rowsDone += b - a;
      itemsBytes += lineBytes.length;
      tokensDone += result.items.reduce((s, it) => s + it.tokenCount, 0);
      await writeProgress(p.progress, { format: 'embedding-lens-shard-progress', shard: spec, input, range, recipe: shardRecipe, manifest: baseManifest, rowsDone, itemsBytes });
      logger?.debug?.(`${where}: checkpoint at ${rowsDone}/${total} rows`);
    }
  } finally {
    await data.close();
    await items.close();
  }

  // Publish: data and items under their final names, then the manifest (its presence = complete).
  await commitTempFile(p.partial, p.file);
  await commitTempFile(p.itemsPartial, p.items);
  const digest = await digestFile(p.file);
  const manifest: ShardManifest = {
    format: SHARD_FORMAT,
    formatVersion: SHARD_FORMAT_VERSION,
    toolVersion: TOOL_VERSION,
    shard: spec,
    input,
    range,
    recipe: shardRecipe,
    manifest: baseManifest,
    rows: total,
    file: digest,
    itemsFile: path.basename(p.items),
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(p.manifest, JSON.stringify(manifest, null, 1) + '\n');
  await removeQuietly(p.progress);
  await fsyncDir(path.dirname(file));
  return { file, manifestFile: p.manifest, rows: total, resumedRows, alreadyComplete: false };
}

async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, off, bytes.byteLength - off, position + off);
    off += bytesWritten;
  }
}

async function writeProgress(file: string, progress: ShardProgress): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(progress) + '\n');
}

export async function readJson<T>(file: string): Promise<T | null> {
  let raw: string;
  try {
    raw = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`Cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new UserError(`${file} is not valid JSON (damaged?).`);
  }
}
