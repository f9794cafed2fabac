// .npy files: a streaming writer and a reader.
//
// Written by hand because no maintained npm package streams .npy (the ones on the registry build the
// whole array in memory) and the format is tiny: magic, version, header length, a Python dict literal
// padded with spaces to a multiple of 64 bytes, then the raw C-order data.
// Spec: numpy/lib/format.py ("NEP 1"). We write v1.0 (uint16 header length) and switch to v2.0
// (uint32 header length) only if the header would not fit 65535 bytes.
//
// Streaming: rows are appended as they come; the row count is unknown until `close()`, so the header
// is written first with room for the largest possible count (20 digits) and rewritten in place with
// the real shape at the end. The file lives under a temporary name until then (see atomicFile.ts).

import { endianness } from 'node:os';
import * as fsp from 'node:fs/promises';
import { UserError, type OutputDType } from '../types';
import { AtomicFileWriter } from './atomicFile';
import { fromFloat16Array, toFloat16Array } from './float16';

if (endianness() !== 'LE') throw new Error('Embedding Lens stores little-endian data and needs a little-endian CPU');

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;
const MAX_COUNT_DIGITS = 20; // enough for any 64-bit row count

function descrOf(dtype: OutputDType): string {
  return dtype === 'float16' ? '<f2' : '<f4';
}

function headerDict(descr: string, shape: number[]): string {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
}

/**
 * Build the full preamble (magic + version + length + dict + padding + '\n').
 * `minDictLength` reserves room so a later rewrite with a longer shape keeps the same total size.
 */
function buildPreamble(descr: string, shape: number[], minDictLength = 0): Uint8Array {
  const dict = headerDict(descr, shape);
  const dictLen = Math.max(dict.length, minDictLength);
  let version = 1;
  let prefix = 10; // magic(6) + version(2) + uint16 length
  let total = Math.ceil((prefix + dictLen + 1) / ALIGN) * ALIGN;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = 12; // uint32 length
    total = Math.ceil((prefix + dictLen + 1) / ALIGN) * ALIGN;
  }
  const headerLen = total - prefix;
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const text = dict.padEnd(headerLen - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i); // the dict is ASCII
  return out;
}

export interface NpyWriterOptions {
  dims: number;
  /** Storage type; rows are always given as float32 and converted (round to nearest even) for float16. */
  dtype?: OutputDType;
}

/** Appends float32 rows to a 2-D `.npy` file of shape [rows, dims] without keeping them in memory. */
export class NpyWriter {
  private rowCount = 0;
  private readonly descr: string;
  private readonly reserved: number;

  private constructor(
    private readonly file: AtomicFileWriter,
    readonly dims: number,
    readonly dtype: OutputDType,
  ) {
    this.descr = descrOf(dtype);
    this.reserved = headerDict(this.descr, [10 ** MAX_COUNT_DIGITS - 1, dims]).length;
  }

  static async create(filePath: string, options: NpyWriterOptions): Promise<NpyWriter> {
    const { dims } = options;
    if (!Number.isInteger(dims) || dims <= 0) throw new UserError(`.npy: dims must be a positive integer, got ${dims}`);
    const file = await AtomicFileWriter.open(filePath);
    const writer = new NpyWriter(file, dims, options.dtype ?? 'float32');
    await file.write(buildPreamble(writer.descr, [0, dims], writer.reserved));
    return writer;
  }

  get rows(): number {
    return this.rowCount;
  }

  /** Append `rows.length / dims` rows (row-major). */
  async append(rows: Float32Array): Promise<void> {
    if (rows.length % this.dims !== 0) {
      throw new UserError(`.npy: got ${rows.length} values, not a multiple of dims ${this.dims}`);
    }
    const data = this.dtype === 'float16' ? toFloat16Array(rows) : rows;
    await this.file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.rowCount += rows.length / this.dims;
  }

  /** Rewrite the header with the final shape and publish the file under its name. */
  async close(): Promise<{ rows: number; dims: number; path: string }> {
    const preamble = buildPreamble(this.descr, [this.rowCount, this.dims], this.reserved);
    await this.file.writeAt(preamble, 0);
    await this.file.commit();
    return { rows: this.rowCount, dims: this.dims, path: this.file.finalPath };
  }

  /** Give up: the temporary file is removed, nothing appears under the target name. */
  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/** Write a whole matrix at once (convenience over `NpyWriter`). */
export async function writeNpy(
  filePath: string,
  data: Float32Array,
  dims: number,
  dtype: OutputDType = 'float32',
): Promise<void> {
  const writer = await NpyWriter.create(filePath, { dims, dtype });
  try {
    await writer.append(data);
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Write an N-dimensional array at once (e.g. attention [layers, heads, tokens, tokens]), atomically. */
export async function writeNpyArray(filePath: string, data: Float32Array, shape: number[], dtype: OutputDType = 'float32'): Promise<void> {
  const count = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || count !== data.length) {
    throw new UserError(`.npy: shape [${shape.join(', ')}] does not hold ${data.length} values`);
  }
  const file = await AtomicFileWriter.open(filePath);
  try {
    await file.write(buildPreamble(descrOf(dtype), shape));
    const values = dtype === 'float16' ? toFloat16Array(data) : data;
    await file.write(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

export interface NpyArray {
  shape: number[];
  dtype: OutputDType;
  /** Values as float32 (float16 files are widened exactly). */
  data: Float32Array;
}

/** The preamble (magic, version, header) of a C-order 2-D or 1-D array, for writers that place rows themselves. */
export function npyPreamble(dtype: OutputDType, shape: number[]): Uint8Array {
  return buildPreamble(descrOf(dtype), shape);
}

export interface NpyHeader {
  shape: number[];
  dtype: OutputDType;
  /** Byte offset of the first value. */
  dataOffset: number;
}

/** Parse the preamble of a .npy (little-endian float32/float16, C order); `buf` needs only the first bytes. */
export function parseNpyHeader(buf: Uint8Array, source = '.npy'): NpyHeader {
  const bad = (why: string) => new UserError(`${source}: not a readable .npy file (${why})`);
  if (buf.length < 10 || !MAGIC.every((b, i) => buf[i] === b)) throw bad('bad magic');
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let prefix: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    prefix = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    prefix = 12;
  } else throw bad(`format version ${major}`);
  if (prefix + headerLen > buf.length) throw bad('truncated header');
  const header = new TextDecoder('latin1').decode(buf.subarray(prefix, prefix + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad('unparsable header');
  if (fortran === 'True') throw bad('Fortran order is not supported');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  let dtype: OutputDType;
  if (descr === '<f4') dtype = 'float32';
  else if (descr === '<f2') dtype = 'float16';
  else throw bad(`dtype ${descr} (only <f4 and <f2 are read)`);
  return { shape, dtype, dataOffset: prefix + headerLen };
}

/** Parse a .npy holding little-endian float32/float16 in C order (what we write; enough for export and tests). */
export function parseNpy(buf: Uint8Array, source = '.npy'): NpyArray {
  const bad = (why: string) => new UserError(`${source}: not a readable .npy file (${why})`);
  const { shape, dtype, dataOffset: start } = parseNpyHeader(buf, source);
  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = dtype === 'float16' ? 2 : 4;
  if (buf.length - start < count * itemSize) throw bad(`truncated data: ${count} values announced`);
  const bytes = new Uint8Array(buf.subarray(start, start + count * itemSize)); // a copy: aligned, own buffer (Buffer#slice would share)
  const data =
    dtype === 'float16' ? fromFloat16Array(new Uint16Array(bytes.buffer, 0, count)) : new Float32Array(bytes.buffer, 0, count);
  return { shape, dtype, data };
}

export async function readNpy(filePath: string): Promise<NpyArray> {
  return parseNpy(await fsp.readFile(filePath), filePath);
}
