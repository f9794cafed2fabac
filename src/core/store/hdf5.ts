// HDF5 output through h5wasm (the HDF5 C library compiled to wasm: no native module, any Node ABI).
//
// Layout, chosen so h5py users get plain numpy arrays:
//   pooled rows (mean, max, cls, last):
//     /embeddings          [N, D] float32, chunked by rows, optional gzip
//   token-level rows (pool none, or words):
//     /tokens              [T, D] float32 — every item's rows, concatenated
//     /token_offsets       [N+1] int64 — item i is tokens[token_offsets[i]:token_offsets[i+1]]
//     /token_text          [T] UTF-8 strings (token or word text)
//     /token_char_start, /token_char_end   [T] int32, UTF-16 offsets into the item's text
//   per item (both layouts):
//     /ids                 [N] UTF-8 strings
//     /source/path         [N] UTF-8 strings
//     /source/start_line, /source/end_line   [N] int32 (1-based, inclusive)
//     /text                [N] UTF-8 strings (only when asked)
//   root attributes: model, model_hash, model_file, layer, layers, layer_combine, pooling, word_pooling,
//     normalize, exclude_special_tokens, dims, dtype, count (= rows: the vectors, as the .json manifest's
//     count), rows, items (texts), row_unit, created, tool, tool_version, manifest_json (the whole
//     EmbeddingManifest, to be read back exactly).
//
// Vectors are streamed (the dataset is resized and each batch written as a hyperslab); strings and
// line numbers are small and are written at close (h5wasm writes variable-length strings in one call).
// float16 is refused: h5wasm 0.10.3 creates only 32/64-bit float datasets (create_h5_datatype_from_metadata
// throws "Float size not supported"), and silently writing float32 instead would be a quiet fallback.

import * as fsp from 'node:fs/promises';
import { isVectorPooling } from '../recipe';
import { UserError, type EmbeddingManifest, type ExtractResult, type OutputDType } from '../types';
import { commitTempFile, removeQuietly, tempPathFor } from './atomicFile';

// h5wasm is ESM-only ("import" export condition): load it with a dynamic import, once.
type H5Module = typeof import('h5wasm/node');
type H5 = H5Module['default'];
let h5Promise: Promise<H5> | undefined;
async function loadH5(): Promise<H5> {
  h5Promise ??= (async () => {
    const mod = (await import('h5wasm/node')) as H5Module & { default?: H5 };
    const h5 = (mod.default ?? (mod as unknown as H5)) as H5;
    await h5.ready;
    return h5;
  })();
  return h5Promise;
}

type H5File = InstanceType<H5['File']>;
type H5Dataset = InstanceType<H5['Dataset']>;

export interface H5Item {
  id: string;
  path: string;
  startLine: number;
  endLine: number;
  /** Written to /text when the writer was created with `withText`. */
  text?: string;
  /** Token-level layout only: one entry per row of this item. */
  tokens?: { text: string; start: number; end: number }[];
}

export interface H5WriterOptions {
  dims: number;
  dtype?: OutputDType;
  /** gzip level 1–9, or false/0 for none (default). */
  gzip?: number | false;
  /** Rows per chunk. Default: about 256 KiB of float32 per chunk. */
  chunkRows?: number;
  /** Token-level layout (/tokens + /token_offsets); default: pooled (/embeddings). */
  tokenLevel?: boolean;
  /** Row unit name stored as an attribute in the token-level layout. Default 'token'. */
  rowUnit?: 'token' | 'word';
  withText?: boolean;
  /** Recipe and provenance, written as root attributes. `count`/`createdAt` are filled in at close. */
  manifest: EmbeddingManifest;
}

class GrowInt {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

export class H5Writer {
  private rows = 0;
  private ids: string[] = [];
  private paths: string[] = [];
  private texts: string[] = [];
  private startLines = new GrowInt();
  private endLines = new GrowInt();
  private tokenOffsets: number[] = [0];
  private tokenText: string[] = [];
  private tokenStart = new GrowInt();
  private tokenEnd = new GrowInt();
  private closed = false;

  private constructor(
    private readonly file: H5File,
    private readonly vectors: H5Dataset,
    private readonly finalPath: string,
    private readonly tempPath: string,
    private readonly options: H5WriterOptions,
  ) {}

  static async create(filePath: string, options: H5WriterOptions): Promise<H5Writer> {
    const { dims } = options;
    if (!Number.isInteger(dims) || dims <= 0) throw new UserError(`.h5: dims must be a positive integer, got ${dims}`);
    if ((options.dtype ?? 'float32') !== 'float32') {
      throw new UserError(
        'HDF5 output supports float32 only (the bundled HDF5 library, h5wasm, cannot create float16 datasets).',
        'Use --dtype float32 for .h5, or write .npy for float16.',
      );
    }
    const gzip = options.gzip || 0;
    if (!Number.isInteger(gzip) || gzip < 0 || gzip > 9) throw new UserError(`.h5: gzip level must be 0–9, got ${options.gzip}`);
    const h5 = await loadH5();
    const tmp = tempPathFor(filePath);
    const file = new h5.File(tmp, 'w');
    try {
      const chunkRows = options.chunkRows ?? Math.max(1, Math.floor((256 * 1024) / (4 * dims)));
      const vectors = file.create_dataset({
        name: options.tokenLevel ? 'tokens' : 'embeddings',
        data: new Float32Array(0),
        shape: [0, dims],
        maxshape: [null, dims],
        chunks: [chunkRows, dims],
        dtype: '<f',
        ...(gzip > 0 ? { compression: 'gzip' as const, compression_opts: gzip } : {}),
      });
      return new H5Writer(file, vectors, filePath, tmp, options);
    } catch (err) {
      file.close();
      await removeQuietly(tmp);
      throw err;
    }
  }

  /**
   * Append rows and the items they belong to. Pooled layout: one row per item.
   * Token-level layout: each item's `tokens` gives its rows (in order); rows = sum of tokens.
   */
  async append(vectors: Float32Array, items: H5Item[]): Promise<void> {
    const { dims, tokenLevel, withText } = this.options;
    if (vectors.length % dims !== 0) throw new UserError(`.h5: got ${vectors.length} values, not a multiple of dims ${dims}`);
    const n = vectors.length / dims;
    if (tokenLevel) {
      const total = items.reduce((s, it) => s + (it.tokens?.length ?? 0), 0);
      if (total !== n) throw new UserError(`.h5: ${n} token rows but the items list ${total} tokens`);
    } else if (items.length !== n) {
      throw new UserError(`.h5: ${n} rows but ${items.length} items`);
    }
    if (n > 0) {
      this.vectors.resize([this.rows + n, dims]);
      this.vectors.write_slice([[this.rows, this.rows + n], []], vectors);
      this.rows += n;
    }
    for (const it of items) {
      this.ids.push(it.id);
      this.paths.push(it.path);
      this.startLines.push(it.startLine);
      this.endLines.push(it.endLine);
      if (withText) this.texts.push(it.text ?? '');
      if (tokenLevel) {
        for (const t of it.tokens ?? []) {
          this.tokenText.push(t.text);
          this.tokenStart.push(t.start);
          this.tokenEnd.push(t.end);
        }
        this.tokenOffsets.push(this.tokenOffsets[this.tokenOffsets.length - 1] + (it.tokens?.length ?? 0));
      }
    }
  }

  /** Write per-item data and attributes, close, and publish the file atomically. */
  async close(): Promise<{ rows: number; items: number; path: string }> {
    if (this.closed) throw new Error('H5Writer already closed');
    this.closed = true;
    const f = this.file;
    const m = this.options.manifest;
    try {
      f.create_dataset({ name: 'ids', data: this.ids, shape: [this.ids.length] });
      const source = f.create_group('source');
      source.create_dataset({ name: 'path', data: this.paths, shape: [this.paths.length] });
      source.create_dataset({ name: 'start_line', data: this.startLines.view(), dtype: '<i' });
      source.create_dataset({ name: 'end_line', data: this.endLines.view(), dtype: '<i' });
      if (this.options.withText) f.create_dataset({ name: 'text', data: this.texts, shape: [this.texts.length] });
      if (this.options.tokenLevel) {
        f.create_dataset({ name: 'token_offsets', data: BigInt64Array.from(this.tokenOffsets.map(BigInt)), dtype: '<q' });
        f.create_dataset({ name: 'token_text', data: this.tokenText, shape: [this.tokenText.length] });
        f.create_dataset({ name: 'token_char_start', data: this.tokenStart.view(), dtype: '<i' });
        f.create_dataset({ name: 'token_char_end', data: this.tokenEnd.view(), dtype: '<i' });
      }
      // `count` is the vectors in the file, as in the `.json` beside it (tokens or words for a token-level file); `items` the texts.
      const manifest: EmbeddingManifest = { ...m, count: this.rows, dtype: 'float32' };
      const str = (name: string, v: string) => f.create_attribute(name, v);
      const int = (name: string, v: number) => f.create_attribute(name, v, null, '<i');
      const flag = (name: string, v: boolean) => f.create_attribute(name, v ? 1 : 0, null, '<b');
      str('tool', manifest.tool);
      str('tool_version', manifest.toolVersion);
      str('model', manifest.model);
      str('model_hash', manifest.modelHash);
      str('model_file', manifest.modelFile);
      str('layer', manifest.layer);
      f.create_attribute('layers', Int32Array.from(manifest.layers), [manifest.layers.length], '<i');
      str('layer_combine', manifest.layerCombine);
      str('pooling', manifest.pooling);
      if (manifest.wordPooling) str('word_pooling', manifest.wordPooling);
      flag('normalize', manifest.normalize);
      flag('exclude_special_tokens', manifest.excludeSpecialTokens);
      int('dims', manifest.dims);
      str('dtype', 'float32');
      int('count', this.rows);
      int('rows', this.rows);
      int('items', this.ids.length);
      str('row_unit', this.options.tokenLevel ? this.options.rowUnit ?? 'token' : 'item');
      str('created', manifest.createdAt);
      str('manifest_json', JSON.stringify(manifest));
    } catch (err) {
      this.file.close();
      await removeQuietly(this.tempPath);
      throw err;
    }
    this.file.close();
    try {
      const h = await fsp.open(this.tempPath, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      await commitTempFile(this.tempPath, this.finalPath);
    } catch (err) {
      await removeQuietly(this.tempPath);
      throw err;
    }
    return { rows: this.rows, items: this.ids.length, path: this.finalPath };
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } finally {
      await removeQuietly(this.tempPath);
    }
  }
}

export interface H5Contents {
  layout: 'pooled' | 'token';
  vectors: Float32Array;
  rows: number;
  dims: number;
  ids: string[];
  paths: string[];
  startLines: Int32Array;
  endLines: Int32Array;
  text?: string[];
  tokenOffsets?: number[];
  tokenText?: string[];
  attrs: Record<string, unknown>;
}

/** Read a file written by H5Writer (round-trip tests, export). */
export async function readH5(filePath: string): Promise<H5Contents> {
  const h5 = await loadH5();
  await fsp.access(filePath).catch(() => {
    throw new UserError(`No such file: ${filePath}`);
  });
  const f = new h5.File(filePath, 'r');
  try {
    const ds = (name: string) => f.get(name) as H5Dataset | null;
    const strings = (name: string) => (ds(name)?.json_value as string[] | null) ?? [];
    const token = ds('tokens') !== null;
    const vec = ds(token ? 'tokens' : 'embeddings');
    if (!vec) throw new UserError(`${filePath}: no /embeddings or /tokens dataset (not written by Embedding Lens?)`);
    const shape = vec.shape ?? [0, 0];
    const attrs: Record<string, unknown> = {};
    for (const [k, a] of Object.entries(f.attrs)) attrs[k] = a.json_value;
    const text = ds('text') ? strings('text') : undefined;
    return {
      layout: token ? 'token' : 'pooled',
      vectors: shape[0] === 0 ? new Float32Array(0) : (vec.value as Float32Array),
      rows: shape[0],
      dims: shape[1],
      ids: strings('ids'),
      paths: strings('source/path'),
      startLines: (ds('source/start_line')?.value as Int32Array) ?? new Int32Array(0),
      endLines: (ds('source/end_line')?.value as Int32Array) ?? new Int32Array(0),
      text,
      tokenOffsets: token ? Array.from(ds('token_offsets')!.value as BigInt64Array, Number) : undefined,
      tokenText: token ? strings('token_text') : undefined,
      attrs,
    };
  } finally {
    f.close();
  }
}

/**
 * Write one extraction (the engine's ExtractResult) to .h5: pooled modes → /embeddings, `none` → /tokens
 * per token, `words` → /tokens per word. Items get ids "0".."n-1"; the source group holds the
 * given `sources` (e.g. file and line range of each text) or empty paths and line 0.
 */
export async function writeHdf5Extraction(
  filePath: string,
  result: ExtractResult,
  options: {
    dtype?: OutputDType;
    texts?: string[];
    gzip?: number | false;
    sources?: { id?: string; path: string; startLine: number; endLine: number }[];
  } = {},
): Promise<{ rows: number; items: number; path: string }> {
  const pooling = result.manifest.pooling;
  const tokenLevel = !isVectorPooling(pooling);
  const writer = await H5Writer.create(filePath, {
    dims: result.dims,
    dtype: options.dtype,
    gzip: options.gzip,
    tokenLevel,
    rowUnit: pooling === 'words' ? 'word' : 'token',
    withText: options.texts !== undefined,
    manifest: result.manifest,
  });
  try {
    let expectedRow = 0;
    const items: H5Item[] = result.items.map((it, i) => {
      if (it.rowStart !== expectedRow) throw new Error(`.h5: item ${i} starts at row ${it.rowStart}, expected ${expectedRow}`);
      expectedRow += it.rowCount;
      const src = options.sources?.[i];
      const item: H5Item = {
        id: src?.id ?? String(i),
        path: src?.path ?? '',
        startLine: src?.startLine ?? 0,
        endLine: src?.endLine ?? 0,
        text: options.texts?.[i],
      };
      if (tokenLevel) {
        const units =
          pooling === 'words'
            ? (it.words ?? []).map((w) => ({ text: w.text, start: w.start, end: w.end }))
            : (it.tokens ?? []).map((t) => ({ text: t.token, start: t.start, end: t.end }));
        if (units.length !== it.rowCount) {
          throw new UserError(`.h5: item ${i} has ${it.rowCount} rows but ${units.length} ${pooling === 'words' ? 'words' : 'tokens'}`);
        }
        item.tokens = units;
      }
      return item;
    });
    // Rows of the result are in item order (rowStart ascending); write them in one go per item batch.
    await writer.append(result.data.subarray(0, result.rows * result.dims), items);
    return await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
