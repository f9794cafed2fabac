// Reading hnswlib's saved index (the layout of HierarchicalNSW::saveIndex in hnswlib/hnswalg.h).
//
// Two uses:
//  1. Structural validation after a save: hnswlib writes with an unchecked std::ofstream, so a full
//     disk or a size limit can leave a silently truncated file. Walking the layout and comparing the
//     walked length with the file length catches that before the manifest commits the file.
//  2. Export to FAISS HNSW: hnswlib and FAISS build the same graph shape (2M links on level 0, M on the
//     upper levels, level multiplier 1/ln M), so the graph can be handed over as is.
//
// Layout: offsetLevel0 u64 | maxElements u64 | count u64 | sizeDataPerElement u64 | labelOffset u64
// | offsetData u64 | maxLevel i32 | entryPoint u32 | maxM u64 | maxM0 u64 | M u64 | mult f64
// | efConstruction u64 | count × level-0 record | per element: u32 byte size + upper-level link lists.
// Level-0 record: u16 link count, u8 flags (bit 0 = deleted), u8, maxM0 × u32 links, the vector
// (dims × f32), the label (u64). Upper-level list: u32 header (u16 count) + maxM × u32 links.

import * as fsp from 'node:fs/promises';
import { UserError } from '../errors';

const HEADER_BYTES = 96;

export interface HnswlibHeader {
  maxElements: number;
  count: number;
  sizeDataPerElement: number;
  labelOffset: number;
  offsetData: number;
  maxLevel: number;
  entryPoint: number;
  maxM: number;
  maxM0: number;
  M: number;
  efConstruction: number;
}

export interface HnswlibGraph extends HnswlibHeader {
  dims: number;
  labels: Float64Array;
  deleted: Uint8Array;
  /** Levels each element is on (top level + 1). */
  levels: Int32Array;
  /** neighbours[element][level] (internal ids). */
  neighbours: Int32Array[][];
  /** count × dims, as stored (normalized for the cosine space). */
  vectors: Float32Array;
}

function header(view: DataView, source: string): HnswlibHeader {
  if (view.byteLength < HEADER_BYTES) throw new UserError(`${source}: truncated HNSW file`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', file: source });
  const u64 = (off: number) => Number(view.getBigUint64(off, true));
  return {
    maxElements: u64(8),
    count: u64(16),
    sizeDataPerElement: u64(24),
    labelOffset: u64(32),
    offsetData: u64(40),
    maxLevel: view.getInt32(48, true),
    entryPoint: view.getUint32(52, true),
    maxM: u64(56),
    maxM0: u64(64),
    M: u64(72),
    efConstruction: u64(88),
  };
}

/** Throws a UserError unless the bytes are exactly one complete hnswlib index. Returns the header. */
export function validateHnswlibFile(buf: Uint8Array, source = 'HNSW index'): HnswlibHeader {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const h = header(view, source);
  let pos = HEADER_BYTES + h.count * h.sizeDataPerElement;
  for (let i = 0; i < h.count; i++) {
    if (pos + 4 > buf.length) throw new UserError(`${source}: truncated HNSW file (element ${i} of ${h.count})`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', file: source });
    pos += 4 + view.getUint32(pos, true);
  }
  if (pos !== buf.length) {
    throw new UserError(`${source}: HNSW file is ${buf.length} bytes, its layout says ${pos}`, 'Rebuild the index.', { code: 'INDEX_DAMAGED', file: source });
  }
  return h;
}

/**
 * What must hold before hnswlib may read a file whose checksum is still being checked (see VectorStore's
 * open): the header describes the graph the manifest names (dims, M, count, a bounded capacity) and the
 * upper-level link lists end exactly at the end of the file. hnswlib sizes its allocations from the header
 * and walks the link lists itself, so with these true a damaged byte elsewhere can only give wrong
 * neighbours or vectors, which no query sees: the checksum refuses the file before the first search.
 * Reads the header and the link lists (~1% of the file), not the level-0 records. Throws a plain Error.
 */
export async function checkHnswlibLayout(file: string, expect: { dims: number; M: number; count: number; capacity: number }): Promise<HnswlibHeader> {
  const handle = await fsp.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const head = new Uint8Array(HEADER_BYTES);
    if (size < HEADER_BYTES || (await handle.read(head, 0, HEADER_BYTES, 0)).bytesRead !== HEADER_BYTES) throw new Error('shorter than an HNSW header');
    const view = new DataView(head.buffer);
    const h = header(view, file);
    const offsetLevel0 = Number(view.getBigUint64(0, true));
    const maxM0 = 2 * expect.M;
    const offsetData = 4 + maxM0 * 4;
    const want = { offsetLevel0: 0, count: expect.count, maxM: expect.M, maxM0, M: expect.M, offsetData, labelOffset: offsetData + expect.dims * 4, sizeDataPerElement: offsetData + expect.dims * 4 + 8 };
    const got: Record<keyof typeof want, number> = { ...h, offsetLevel0 };
    for (const k of Object.keys(want) as (keyof typeof want)[]) {
      if (got[k] !== want[k]) throw new Error(`its header says ${k} ${got[k]}, expected ${want[k]}`);
    }
    if (h.maxElements < h.count || h.maxElements > 2 * Math.max(expect.capacity, h.count) + 1024) throw new Error(`its header says capacity ${h.maxElements} for ${h.count} points`);
    if (h.count > 0 ? h.maxLevel < 0 || h.maxLevel > 64 || h.entryPoint >= h.count : h.maxLevel !== -1) throw new Error('its header names an impossible entry point');
    const start = HEADER_BYTES + h.count * h.sizeDataPerElement;
    if (start + 4 * h.count > size) throw new Error(`${size} bytes, its layout needs at least ${start + 4 * h.count}`);
    const tail = new Uint8Array(size - start);
    if ((await handle.read(tail, 0, tail.length, start)).bytesRead !== tail.length) throw new Error('came out short while reading');
    const tv = new DataView(tail.buffer);
    const sizeLinks = h.maxM * 4 + 4;
    let pos = 0;
    for (let i = 0; i < h.count; i++) {
      if (pos + 4 > tail.length) throw new Error(`truncated (element ${i} of ${h.count})`);
      const bytes = tv.getUint32(pos, true);
      if (bytes % sizeLinks !== 0 || bytes / sizeLinks > h.maxLevel) throw new Error(`element ${i} has ${bytes} bytes of links`);
      pos += 4 + bytes;
    }
    if (pos !== tail.length) throw new Error(`${size} bytes, its layout says ${start + pos}`);
    return h;
  } finally {
    await handle.close();
  }
}

export function parseHnswlibFile(buf: Uint8Array, dims: number, source = 'HNSW index'): HnswlibGraph {
  const h = validateHnswlibFile(buf, source);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = h.count;
  const labels = new Float64Array(n);
  const deleted = new Uint8Array(n);
  const levels = new Int32Array(n);
  const neighbours: Int32Array[][] = new Array(n);
  const vectors = new Float32Array(n * dims);
  const sizeLinks = h.maxM * 4 + 4;
  let upper = HEADER_BYTES + n * h.sizeDataPerElement;
  for (let i = 0; i < n; i++) {
    const base = HEADER_BYTES + i * h.sizeDataPerElement;
    const cnt0 = view.getUint16(base, true);
    deleted[i] = view.getUint8(base + 2) & 1;
    const lists: Int32Array[] = [];
    const l0 = new Int32Array(cnt0);
    for (let j = 0; j < cnt0; j++) l0[j] = view.getUint32(base + 4 + 4 * j, true);
    lists.push(l0);
    for (let j = 0; j < dims; j++) vectors[i * dims + j] = view.getFloat32(base + h.offsetData + 4 * j, true);
    labels[i] = Number(view.getBigUint64(base + h.labelOffset, true));
    const bytes = view.getUint32(upper, true);
    const upperLevels = bytes / sizeLinks;
    for (let l = 0; l < upperLevels; l++) {
      const lb = upper + 4 + l * sizeLinks;
      const cnt = view.getUint16(lb, true);
      const list = new Int32Array(cnt);
      for (let j = 0; j < cnt; j++) list[j] = view.getUint32(lb + 4 + 4 * j, true);
      lists.push(list);
    }
    upper += 4 + bytes;
    levels[i] = 1 + upperLevels;
    neighbours[i] = lists;
  }
  return { ...h, dims, labels, deleted, levels, neighbours, vectors };
}
