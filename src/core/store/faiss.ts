// FAISS index files written and read in FAISS's own binary format.
//
// Written by hand because there is no FAISS for Node (faiss-node is an unmaintained native module tied
// to one Node ABI, which the extension host cannot load reliably). The layout below was read from
// faiss/impl/index_write.cpp (write_index, write_index_header, write_HNSW) and io_macros.h:
//
//   index header  : fourcc u32 | d i32 | ntotal i64 | dummy i64 (1<<20) | dummy i64 | is_trained u8
//                   | metric_type i32 (0 = inner product, 1 = L2) [| metric_arg f32 if metric > 1]
//   vector<T>     : count u64 | count × T
//   IndexFlat     : "IxFI" (IP) or "IxF2" (L2) + header + codes as a float vector (count = ntotal·d)
//   IndexIDMap    : "IxMp" + header + inner index + id_map (vector<i64>)
//   IndexHNSWFlat : "IHNf" + header + HNSW + storage (an IndexFlat)
//   HNSW          : assign_probas vector<f64> | cum_nneighbor_per_level vector<i32> | levels vector<i32>
//                   | offsets vector<u64> | neighbors vector<i32> | entry_point i32 | max_level i32
//                   | efConstruction i32 | efSearch i32 | upper_beam i32 (deprecated, 1)
//
// All little-endian (FAISS writes native PODs; every platform it ships on is little-endian).
// The interop test checks byte equality with files written by faiss itself, and that
// faiss.read_index + search returns our exact-search neighbours.

import * as fsp from 'node:fs/promises';
import { UserError } from '../types';
import { AtomicFileWriter } from './atomicFile';

export type FaissMetric = 'ip' | 'l2';

const METRIC_INNER_PRODUCT = 0;
const METRIC_L2 = 1;
const HEADER_DUMMY = 1n << 20n;
/** fourcc(4) + d(4) + ntotal(8) + dummy(8) + dummy(8) + is_trained(1) + metric(4) */
const HEADER_BYTES = 37;

function metricCode(metric: FaissMetric): number {
  return metric === 'ip' ? METRIC_INNER_PRODUCT : METRIC_L2;
}

/** Little-endian byte builder. */
class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  fourcc(code: string): void {
    this.ensure(4);
    for (let i = 0; i < 4; i++) this.buf[this.length + i] = code.charCodeAt(i);
    this.length += 4;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  i64(v: bigint | number): void {
    this.ensure(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(data: ArrayBufferView): void {
    this.ensure(data.byteLength);
    this.buf.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), this.length);
    this.length += data.byteLength;
  }
  /** vector<T>: element count, then the elements' bytes. */
  vector(data: ArrayBufferView & { length: number }): void {
    this.i64(data.length);
    this.bytes(data);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeHeader(w: ByteWriter, fourcc: string, d: number, ntotal: number, metric: FaissMetric): void {
  w.fourcc(fourcc);
  w.i32(d);
  w.i64(ntotal);
  w.i64(HEADER_DUMMY);
  w.i64(HEADER_DUMMY);
  w.u8(1); // is_trained
  w.i32(metricCode(metric));
}

function flatFourcc(metric: FaissMetric): string {
  return metric === 'ip' ? 'IxFI' : 'IxF2';
}

function toIds(ids: ArrayLike<number | bigint>): BigInt64Array {
  const out = new BigInt64Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = BigInt(ids[i]);
  return out;
}

function checkMatrix(vectors: Float32Array, dims: number, what: string): number {
  if (!Number.isInteger(dims) || dims <= 0) throw new UserError(`${what}: dims must be a positive integer`);
  if (vectors.length % dims !== 0) throw new UserError(`${what}: ${vectors.length} values is not a multiple of dims ${dims}`);
  return vectors.length / dims;
}

export interface FaissFlatInput {
  vectors: Float32Array;
  dims: number;
  /** 64-bit ids, one per row (kept by the IndexIDMap wrapper). Default: 0..n-1. */
  ids?: ArrayLike<number | bigint>;
  metric: FaissMetric;
}

/** IndexIDMap(IndexFlatIP | IndexFlatL2) as bytes. */
export function encodeFaissFlat(input: FaissFlatInput): Uint8Array {
  const n = checkMatrix(input.vectors, input.dims, 'FAISS');
  const ids = input.ids ? toIds(input.ids) : toIds(Array.from({ length: n }, (_, i) => i));
  if (ids.length !== n) throw new UserError(`FAISS: ${ids.length} ids for ${n} vectors`);
  const w = new ByteWriter();
  writeHeader(w, 'IxMp', input.dims, n, input.metric);
  writeHeader(w, flatFourcc(input.metric), input.dims, n, input.metric);
  w.vector(input.vectors);
  w.vector(ids);
  return w.result();
}

/**
 * Streams IndexIDMap(IndexFlat) to disk: the counts in both headers and the code-vector length are
 * patched at the end; ids (8 bytes a row) are kept in memory and written after the vectors.
 */
export class FaissFlatWriter {
  private rows = 0;
  private ids: bigint[] = [];

  private constructor(
    private readonly file: AtomicFileWriter,
    readonly dims: number,
    readonly metric: FaissMetric,
  ) {}

  static async create(filePath: string, options: { dims: number; metric: FaissMetric }): Promise<FaissFlatWriter> {
    checkMatrix(new Float32Array(0), options.dims, 'FAISS');
    const file = await AtomicFileWriter.open(filePath);
    const w = new ByteWriter();
    writeHeader(w, 'IxMp', options.dims, 0, options.metric);
    writeHeader(w, flatFourcc(options.metric), options.dims, 0, options.metric);
    w.i64(0); // code count, patched
    await file.write(w.result());
    return new FaissFlatWriter(file, options.dims, options.metric);
  }

  async append(vectors: Float32Array, ids?: ArrayLike<number | bigint>): Promise<void> {
    const n = checkMatrix(vectors, this.dims, 'FAISS');
    if (ids && ids.length !== n) throw new UserError(`FAISS: ${ids.length} ids for ${n} vectors`);
    await this.file.write(new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength));
    for (let i = 0; i < n; i++) this.ids.push(ids ? BigInt(ids[i]) : BigInt(this.rows + i));
    this.rows += n;
  }

  async close(): Promise<{ rows: number; path: string }> {
    const tail = new ByteWriter();
    tail.vector(BigInt64Array.from(this.ids));
    await this.file.write(tail.result());
    const patch = new Uint8Array(8);
    const view = new DataView(patch.buffer);
    view.setBigInt64(0, BigInt(this.rows), true);
    await this.file.writeAt(patch, 8); // outer ntotal
    await this.file.writeAt(patch, HEADER_BYTES + 8); // inner ntotal
    view.setBigInt64(0, BigInt(this.rows * this.dims), true);
    await this.file.writeAt(patch, 2 * HEADER_BYTES); // code vector length (in floats)
    await this.file.commit();
    return { rows: this.rows, path: this.file.finalPath };
  }

  async abort(): Promise<void> {
    await this.file.abort();
  }
}

/** An HNSW graph in FAISS's terms (hnswlib and FAISS share the structure: 2M links on level 0, M above). */
export interface HnswGraph {
  M: number;
  /** Number of levels each node is on (hnswlib level + 1), one per node. */
  levels: Int32Array;
  /** neighbours[node][level] = node ids. */
  neighbours: Int32Array[][];
  entryPoint: number;
  maxLevel: number;
  efConstruction: number;
}

export interface FaissHnswInput extends FaissFlatInput {
  graph: HnswGraph;
  efSearch?: number;
}

/** FAISS's HNSW::set_default_probas, extended so that every level the graph uses has a slot. */
function defaultLevelTables(M: number, levelsNeeded: number): { probas: Float64Array; cum: Int32Array } {
  const levelMult = 1 / Math.log(M);
  const probas: number[] = [];
  const cum = [0];
  let nn = 0;
  for (let level = 0; ; level++) {
    const p = Math.exp(-level / levelMult) * (1 - Math.exp(-1 / levelMult));
    if (p < 1e-9 && level >= levelsNeeded) break;
    probas.push(p);
    nn += level === 0 ? 2 * M : M;
    cum.push(nn);
  }
  return { probas: Float64Array.from(probas), cum: Int32Array.from(cum) };
}

/** IndexIDMap(IndexHNSWFlat) as bytes. Node i of the graph is row i of `vectors`. */
export function encodeFaissHnswFlat(input: FaissHnswInput): Uint8Array {
  const { dims, metric, graph } = input;
  const n = checkMatrix(input.vectors, dims, 'FAISS');
  if (graph.levels.length !== n || graph.neighbours.length !== n) throw new UserError('FAISS HNSW: graph size differs from vector count');
  const ids = input.ids ? toIds(input.ids) : toIds(Array.from({ length: n }, (_, i) => i));
  let maxLevels = 1;
  for (const l of graph.levels) maxLevels = Math.max(maxLevels, l);
  const { probas, cum } = defaultLevelTables(graph.M, maxLevels);
  const offsets = new BigUint64Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = BigInt(total);
    total += cum[graph.levels[i]];
  }
  offsets[n] = BigInt(total);
  const neighbors = new Int32Array(total).fill(-1);
  for (let i = 0; i < n; i++) {
    const base = Number(offsets[i]);
    for (let l = 0; l < graph.levels[i]; l++) {
      const list = graph.neighbours[i][l] ?? new Int32Array(0);
      const room = cum[l + 1] - cum[l];
      if (list.length > room) throw new UserError(`FAISS HNSW: node ${i} has ${list.length} links on level ${l}, room for ${room}`);
      neighbors.set(list, base + cum[l]);
    }
  }
  const w = new ByteWriter();
  writeHeader(w, 'IxMp', dims, n, metric);
  writeHeader(w, 'IHNf', dims, n, metric);
  w.vector(probas);
  w.vector(cum);
  w.vector(graph.levels);
  w.vector(offsets);
  w.vector(neighbors);
  w.i32(n === 0 ? -1 : graph.entryPoint);
  w.i32(n === 0 ? -1 : graph.maxLevel);
  w.i32(graph.efConstruction);
  w.i32(input.efSearch ?? 16);
  w.i32(1); // upper_beam (deprecated field, FAISS writes 1)
  writeHeader(w, flatFourcc(metric), dims, n, metric);
  w.vector(input.vectors);
  w.vector(ids);
  return w.result();
}

// ---------------------------------------------------------------------------------------------
// Reader (for our own files and for FAISS-written files of the same kinds; used by tests and export)

export interface FaissIndexData {
  kind: 'flat' | 'hnsw';
  metric: FaissMetric;
  dims: number;
  ntotal: number;
  vectors: Float32Array;
  /** Present when wrapped in IndexIDMap. */
  ids?: BigInt64Array;
  hnsw?: {
    assignProbas: Float64Array;
    cumNeighbours: Int32Array;
    levels: Int32Array;
    offsets: BigUint64Array;
    neighbors: Int32Array;
    entryPoint: number;
    maxLevel: number;
    efConstruction: number;
    efSearch: number;
  };
}

class ByteReader {
  private view: DataView;
  pos = 0;
  constructor(private readonly buf: Uint8Array, private readonly source: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new UserError(`${this.source}: truncated FAISS index file`);
  }
  fourcc(): string {
    this.need(4);
    const s = String.fromCharCode(...this.buf.subarray(this.pos, this.pos + 4));
    this.pos += 4;
    return s;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i64(): number {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return Number(v);
  }
  f32(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private raw(count: number, size: number): ArrayBuffer {
    this.need(count * size);
    // Copy (Node's Buffer#slice would share memory, and typed arrays need an aligned, own buffer).
    const out = new Uint8Array(this.buf.subarray(this.pos, this.pos + count * size)).buffer;
    this.pos += count * size;
    return out;
  }
  vecF32(): Float32Array {
    const n = this.i64();
    return new Float32Array(this.raw(n, 4));
  }
  vecF64(): Float64Array {
    const n = this.i64();
    return new Float64Array(this.raw(n, 8));
  }
  vecI32(): Int32Array {
    const n = this.i64();
    return new Int32Array(this.raw(n, 4));
  }
  vecI64(): BigInt64Array {
    const n = this.i64();
    return new BigInt64Array(this.raw(n, 8));
  }
  vecU64(): BigUint64Array {
    const n = this.i64();
    return new BigUint64Array(this.raw(n, 8));
  }
  get done(): boolean {
    return this.pos === this.buf.length;
  }
}

interface Header {
  d: number;
  ntotal: number;
  metric: FaissMetric;
}

function readHeader(r: ByteReader, source: string): Header {
  const d = r.i32();
  const ntotal = r.i64();
  r.i64();
  r.i64();
  r.u8();
  const m = r.i32();
  if (m > 1) r.f32();
  if (m !== METRIC_INNER_PRODUCT && m !== METRIC_L2) throw new UserError(`${source}: FAISS metric ${m} is not supported`);
  return { d, ntotal, metric: m === 0 ? 'ip' : 'l2' };
}

function readIndex(r: ByteReader, source: string): FaissIndexData {
  const code = r.fourcc();
  if (code === 'IxFI' || code === 'IxF2') {
    const h = readHeader(r, source);
    const vectors = r.vecF32();
    if (vectors.length !== h.d * h.ntotal) throw new UserError(`${source}: flat index holds ${vectors.length} values, expected ${h.d * h.ntotal}`);
    return { kind: 'flat', metric: h.metric, dims: h.d, ntotal: h.ntotal, vectors };
  }
  if (code === 'IxMp') {
    const h = readHeader(r, source);
    const inner = readIndex(r, source);
    const ids = r.vecI64();
    if (ids.length !== h.ntotal || inner.ntotal !== h.ntotal) throw new UserError(`${source}: id map size differs from index size`);
    return { ...inner, ids };
  }
  if (code === 'IHNf') {
    const h = readHeader(r, source);
    const assignProbas = r.vecF64();
    const cumNeighbours = r.vecI32();
    const levels = r.vecI32();
    const offsets = r.vecU64();
    const neighbors = r.vecI32();
    const entryPoint = r.i32();
    const maxLevel = r.i32();
    const efConstruction = r.i32();
    const efSearch = r.i32();
    r.i32(); // upper_beam
    const storage = readIndex(r, source);
    return {
      kind: 'hnsw',
      metric: h.metric,
      dims: h.d,
      ntotal: h.ntotal,
      vectors: storage.vectors,
      hnsw: { assignProbas, cumNeighbours, levels, offsets, neighbors, entryPoint, maxLevel, efConstruction, efSearch },
    };
  }
  throw new UserError(`${source}: FAISS index type "${code}" is not supported (IxMp, IxFI, IxF2, IHNf are)`);
}

export function parseFaissIndex(buf: Uint8Array, source = 'FAISS index'): FaissIndexData {
  const r = new ByteReader(buf, source);
  const data = readIndex(r, source);
  if (!r.done) throw new UserError(`${source}: trailing bytes after the index`);
  return data;
}

export async function readFaissIndex(filePath: string): Promise<FaissIndexData> {
  return parseFaissIndex(await fsp.readFile(filePath), filePath);
}

/** Write bytes produced by `encodeFaiss*` atomically. */
export async function writeFaissFile(filePath: string, bytes: Uint8Array): Promise<void> {
  const file = await AtomicFileWriter.open(filePath);
  try {
    await file.write(bytes);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}
