// `embedding-lens merge`: joins the shards of a sharded extraction (shard.ts) into one .npy / .h5 / .faiss
// in the original input order, after checking that they belong together (same input, model hash,
// recipe, dims, dtype) and cover the input exactly once. Every check that needs no data runs before
// anything is written; the data is streamed (a few MiB at a time) and each shard file's sha256 is
// verified on the way, so a damaged shard aborts the merge and nothing appears under --out.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { AtomicFileWriter } from '../store/atomicFile';
import { FaissFlatWriter } from '../store/faiss';
import { fromFloat16Array } from '../store/float16';
import { NpyWriter, parseNpyHeader } from '../store/npy';
import { outputFormatOf, type OutputFormat } from '../outputs';
import { UserError, type EmbeddingManifest, type Logger } from '../types';
import { readJson, recipeDifference, SHARD_FORMAT, shardPaths, type ShardItem, type ShardManifest } from './shard';

export interface MergeOptions {
  out: string;
  /** Shard .npy files (their manifests sit beside them). */
  shards: string[];
  /** Rows read and written at a time. Default 4096. */
  blockRows?: number;
  logger?: Logger;
}

export interface MergeResult {
  file: string;
  manifestFile: string;
  format: OutputFormat;
  rows: number;
  dims: number;
  shards: number;
}

interface Loaded {
  file: string;
  manifest: ShardManifest;
}

const name = (f: string) => path.basename(f);

async function loadShard(given: string): Promise<Loaded> {
  const file = path.resolve(given.endsWith('.npy.json') ? given.slice(0, -'.json'.length) : given);
  const p = shardPaths(file);
  const manifest = await readJson<ShardManifest>(p.manifest);
  if (!manifest) {
    const partial = await fsp.stat(p.progress).then(() => true, () => false);
    throw new UserError(
      partial
        ? `${name(file)} is not finished: its run stopped part-way (${name(p.progress)} is there, ${name(p.manifest)} is not).`
        : `${name(file)} is not a finished shard: ${name(p.manifest)} is missing.`,
      partial ? 'Run the same extract command for that shard again: it resumes from its last checkpoint. Then merge.' : 'Give the .npy files written by `embedding-lens extract … --shard K/N`.',
    );
  }
  if (manifest.format !== SHARD_FORMAT) throw new UserError(`${name(p.manifest)} is not a shard manifest (format "${String(manifest.format)}").`);
  return { file, manifest };
}

/** Checks that the shards belong together and cover the input once; returns them in input order. */
export async function planMerge(files: string[]): Promise<Loaded[]> {
  if (!files.length) throw new UserError('No shard files given to merge.', 'Usage: embedding-lens merge --out <file> <shard.npy> …');
  const shards = await Promise.all(files.map(loadShard));
  const first = shards[0]!;
  for (const s of shards.slice(1)) {
    const a = first.manifest;
    const b = s.manifest;
    if (a.input.sha256 !== b.input.sha256 || a.input.count !== b.input.count) {
      throw new UserError(`${name(first.file)} and ${name(s.file)} come from different inputs (${a.input.count} vs ${b.input.count} texts${a.input.count === b.input.count ? ', different content' : ''}).`);
    }
    if (a.recipe.modelHash !== b.recipe.modelHash) {
      throw new UserError(`${name(first.file)} and ${name(s.file)} were made by different models: model hash ${a.recipe.modelHash} (${a.recipe.model}) vs ${b.recipe.modelHash} (${b.recipe.model}).`);
    }
    const diff = recipeDifference(a.recipe, b.recipe);
    if (diff) throw new UserError(`${name(first.file)} and ${name(s.file)} differ in ${diff.field}: ${diff.a} vs ${diff.b}. Shards of one run share one recipe.`);
    if (a.shard.count !== b.shard.count) {
      throw new UserError(`${name(first.file)} is one of ${a.shard.count} shards, ${name(s.file)} one of ${b.shard.count}: shards of different splits cannot be merged.`);
    }
  }
  // Coverage: every input index exactly once.
  const n = first.manifest.input.count;
  const count = first.manifest.shard.count;
  const byIndex = new Map<number, Loaded[]>();
  for (const s of shards) byIndex.set(s.manifest.shard.index, [...(byIndex.get(s.manifest.shard.index) ?? []), s]);
  const problems: string[] = [];
  for (const [index, list] of [...byIndex].sort((x, y) => x[0] - y[0])) {
    if (list.length > 1) {
      const r = list[0]!.manifest.range;
      problems.push(`shard ${index}/${count} is given ${list.length} times (${list.map((l) => name(l.file)).join(', ')}): input rows ${r.start}–${r.end - 1} would be doubled`);
    }
  }
  const missing: string[] = [];
  for (let k = 0; k < count; k++) {
    if (!byIndex.has(k)) {
      const start = Math.floor((k * n) / count);
      const end = Math.floor(((k + 1) * n) / count);
      missing.push(`shard ${k}/${count} (input rows ${start}–${end - 1})`);
    }
  }
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  if (problems.length) throw new UserError(`The shards do not cover the ${n} inputs exactly once: ${problems.join('; ')}.`, 'Give each shard file once; run the missing shards first (`extract … --shard K/N`).');
  const ordered = [...byIndex.values()].map((l) => l[0]!).sort((a, b) => a.manifest.range.start - b.manifest.range.start);
  let expect = 0;
  for (const s of ordered) {
    if (s.manifest.range.start !== expect) throw new UserError(`${name(s.file)} starts at input row ${s.manifest.range.start}, expected ${expect} (damaged manifest?).`);
    expect = s.manifest.range.end;
  }
  // The files: size and header as the manifest says (a truncated copy is caught here, before writing).
  for (const s of ordered) {
    const m = s.manifest;
    const st = await fsp.stat(s.file).catch(() => null);
    if (!st) throw new UserError(`${name(s.file)} is missing (its manifest is there).`);
    if (st.size !== m.file.bytes) {
      throw new UserError(`${name(s.file)} has ${st.size} bytes, its manifest says ${m.file.bytes}: the file is truncated or was changed after the shard finished.`, 'Copy it again, or delete the shard\'s files and run that shard again.');
    }
    const head = Buffer.alloc(Math.min(st.size, 4096));
    const fh = await fsp.open(s.file, 'r');
    try {
      await fh.read(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    const h = parseNpyHeader(head, name(s.file));
    const rows = m.range.end - m.range.start;
    if (h.shape[0] !== rows || h.shape[1] !== m.recipe.dims || h.dtype !== m.recipe.dtype) {
      throw new UserError(`${name(s.file)} holds ${h.shape.join(' × ')} ${h.dtype}, its manifest says ${rows} × ${m.recipe.dims} ${m.recipe.dtype}.`);
    }
  }
  return ordered;
}

/** Reads one shard's rows in blocks (as float32), verifying the whole file's sha256 at the end. */
async function* shardBlocks(s: Loaded, blockRows: number): AsyncGenerator<Float32Array> {
  const m = s.manifest;
  const itemBytes = m.recipe.dtype === 'float16' ? 2 : 4;
  const rowBytes = m.recipe.dims * itemBytes;
  const hash = createHash('sha256');
  const fh = await fsp.open(s.file, 'r');
  try {
    const head = Buffer.alloc(Math.min(m.file.bytes, 4096));
    await fh.read(head, 0, head.length, 0);
    const { dataOffset } = parseNpyHeader(head, name(s.file));
    hash.update(head.subarray(0, dataOffset));
    const rows = m.range.end - m.range.start;
    const buf = Buffer.alloc(blockRows * rowBytes);
    let pos = dataOffset;
    for (let r = 0; r < rows; r += blockRows) {
      const want = Math.min(blockRows, rows - r) * rowBytes;
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) throw new UserError(`${name(s.file)} ended early (truncated while merging?).`);
        got += bytesRead;
      }
      pos += want;
      hash.update(buf.subarray(0, want));
      // A copy into an aligned buffer of its own (the writer may keep it until written).
      const bytes = new Uint8Array(want);
      bytes.set(buf.subarray(0, want));
      yield itemBytes === 2 ? fromFloat16Array(new Uint16Array(bytes.buffer)) : new Float32Array(bytes.buffer);
    }
  } finally {
    await fh.close();
  }
  if (hash.digest('hex') !== m.file.sha256) {
    throw new UserError(`${name(s.file)} does not match the checksum in its manifest: the file was changed or damaged after the shard finished.`, 'Delete that shard\'s files and run the shard again.');
  }
}

async function* shardItems(s: Loaded): AsyncGenerator<ShardItem> {
  const file = path.join(path.dirname(s.file), s.manifest.itemsFile);
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let expect = s.manifest.range.start;
  for await (const line of rl) {
    if (!line) continue;
    const item = JSON.parse(line) as ShardItem;
    if (item.index !== expect) throw new UserError(`${name(file)}: item for input ${item.index} where ${expect} was expected (damaged items file).`);
    expect++;
    yield item;
  }
  if (expect !== s.manifest.range.end) throw new UserError(`${name(file)} lists inputs up to ${expect - 1}, the shard holds up to ${s.manifest.range.end - 1} (truncated items file).`);
}

interface RowSink {
  append(rows: Float32Array, items: ShardItem[]): Promise<void>;
  close(): Promise<unknown>;
  abort(): Promise<void>;
}

async function openSink(out: string, format: OutputFormat, manifest: EmbeddingManifest): Promise<{ sink: RowSink; extra: Record<string, unknown> }> {
  const dims = manifest.dims;
  if (format === 'npy') {
    const w = await NpyWriter.create(out, { dims, dtype: manifest.dtype });
    return { sink: { append: (rows) => w.append(rows), close: () => w.close(), abort: () => w.abort() }, extra: {} };
  }
  if (manifest.dtype !== 'float32') {
    throw new UserError(`The shards hold ${manifest.dtype}; ${format === 'h5' ? 'HDF5 output (h5wasm) takes float32 only' : 'a FAISS index holds float32'}.`, 'Merge float16 shards into a .npy file.');
  }
  if (format === 'faiss') {
    // Inner product on normalized vectors is cosine similarity; otherwise L2 (as `extract --out x.faiss`).
    const metric = manifest.normalize ? 'ip' : 'l2';
    const w = await FaissFlatWriter.create(out, { dims, metric });
    return {
      sink: { append: (rows, items) => w.append(rows, items.map((i) => i.index)), close: () => w.close(), abort: () => w.abort() },
      extra: { metric: metric === 'ip' ? 'inner_product' : 'l2' },
    };
  }
  const { H5Writer } = await import('../store/hdf5');
  const w = await H5Writer.create(out, { dims, dtype: 'float32', manifest });
  return {
    sink: {
      append: (rows, items) => w.append(rows, items.map((i) => ({ id: String(i.index), path: '', startLine: 0, endLine: 0 }))),
      close: () => w.close(),
      abort: () => w.abort(),
    },
    extra: {},
  };
}

/** Merges shard files into `out` (format by extension) plus `<out>.json`; nothing is written if a check fails. */
export async function mergeShards(options: MergeOptions): Promise<MergeResult> {
  const format = outputFormatOf(options.out);
  const out = path.resolve(options.out);
  const ordered = await planMerge(options.shards);
  const first = ordered[0]!.manifest;
  const n = first.input.count;
  const manifest: EmbeddingManifest = { ...first.manifest, count: n, createdAt: new Date().toISOString() };
  const blockRows = options.blockRows ?? 4096;
  const { sink, extra } = await openSink(out, format, manifest);
  const manifestWriter = await AtomicFileWriter.open(`${out}.json`);
  let rowsWritten = 0;
  try {
    const head = JSON.stringify({ ...manifest, format, ...extra, shards: ordered.map((s) => name(s.file)), input: first.input }, null, 1);
    let text = head.slice(0, -2) + ',\n "items": [';
    let firstItem = true;
    for (const s of ordered) {
      const items = shardItems(s);
      for await (const block of shardBlocks(s, blockRows)) {
        const rows = block.length / manifest.dims;
        const batch: ShardItem[] = [];
        for (let i = 0; i < rows; i++) {
          const next = await items.next();
          if (next.done) throw new UserError(`${s.manifest.itemsFile} lists fewer inputs than ${name(s.file)} holds rows.`);
          batch.push(next.value);
        }
        await sink.append(block, batch);
        for (const it of batch) {
          text += `${firstItem ? '' : ','}\n  ${JSON.stringify({ index: it.index, rowStart: rowsWritten++, rowCount: 1, tokenCount: it.tokenCount, windows: it.windows, truncated: it.truncated })}`;
          firstItem = false;
        }
        if (text.length > 1 << 20) {
          await manifestWriter.write(Buffer.from(text, 'utf8'));
          text = '';
        }
      }
      if (!(await items.next()).done) throw new UserError(`${s.manifest.itemsFile} lists more inputs than ${name(s.file)} holds rows.`);
      options.logger?.info(`merged ${name(s.file)} (${s.manifest.rows} rows)`);
    }
    if (rowsWritten !== n) throw new Error(`merged ${rowsWritten} rows for ${n} inputs`);
    text += '\n ]\n}\n';
    await manifestWriter.write(Buffer.from(text, 'utf8'));
    await sink.close();
    await manifestWriter.commit();
  } catch (err) {
    await sink.abort();
    await manifestWriter.abort();
    throw err;
  }
  return { file: out, manifestFile: `${out}.json`, format, rows: n, dims: manifest.dims, shards: ordered.length };
}
