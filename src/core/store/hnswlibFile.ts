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
