// The two segment kinds of the vector store (see vectorStore.ts for how they make a generation):
//
//   metadata.<g>.bin  base metadata: one row per live chunk of the base HNSW file, sorted by label, with
//                     three lookup orders stored beside it (by label, by id, by path), so `open` reads
//                     the file and views it in place; a record is decoded only when asked for.
//   delta.<g>.seg     one delta: the chunks added since the previous generation (records + vectors) and
//                     the labels deleted (tombstones). Small; decoded whole when the store opens.
import type { ChunkRecord } from './vectorStore';
import { SegmentReader, SegmentWriter, sortedByBytes, type StringColumn } from './segmentFile';

const BASE_MAGIC = 'ELBMETA1';
const DELTA_MAGIC = 'ELDELTA1';

export interface LabeledRecord {
  label: number;
  rec: ChunkRecord;
}

/** Encodes the base metadata; `rows` must be sorted by label. */
export function encodeBaseMeta(rows: readonly LabeledRecord[]): Uint8Array {
  const n = rows.length;
  const labels = new Int32Array(n);
  const start = new Uint32Array(n);
  const end = new Uint32Array(n);
  const pathIdx = new Uint32Array(n);
  const unique = [...new Set(rows.map((r) => r.rec.path))];
  const paths = [...sortedByBytes(unique).order].map((i) => unique[i]);
  const pathNo = new Map(paths.map((p, i) => [p, i]));
  rows.forEach((r, i) => {
    if (i > 0 && r.label <= rows[i - 1].label) throw new Error('encodeBaseMeta: rows not sorted by label');
    labels[i] = r.label;
    start[i] = r.rec.startLine;
    end[i] = r.rec.endLine;
    pathIdx[i] = pathNo.get(r.rec.path)!;
  });
  const idOrder = sortedByBytes(rows.map((r) => r.rec.id)).order;
  // Rows grouped by path (label order inside a path): pathStart[p]..pathStart[p+1] in pathOrder.
  const pathStart = new Uint32Array(paths.length + 1);
  for (let i = 0; i < n; i++) pathStart[pathIdx[i] + 1]++;
  for (let p = 0; p < paths.length; p++) pathStart[p + 1] += pathStart[p];
  const fill = pathStart.slice(0, paths.length);
  const pathOrder = new Uint32Array(n);
  for (let i = 0; i < n; i++) pathOrder[fill[pathIdx[i]]++] = i;
  const w = new SegmentWriter();
  w.add(labels); // 0
  w.add(start); // 1
  w.add(end); // 2
  w.add(pathIdx); // 3
  w.addStrings(rows.map((r) => r.rec.id)); // 4, 5
  w.addStrings(rows.map((r) => r.rec.contentHash)); // 6, 7
  w.addStrings(paths); // 8, 9
  w.add(idOrder); // 10
  w.add(pathStart); // 11
  w.add(pathOrder); // 12
  return w.encode(BASE_MAGIC);
}

/** The base metadata viewed in place. */
export class BaseMeta {
  readonly labels: Int32Array;
  private readonly start: Uint32Array;
  private readonly end: Uint32Array;
  private readonly pathIdx: Uint32Array;
  private readonly ids: StringColumn;
  private readonly hashes: StringColumn;
  private readonly pathNames: StringColumn;
  private readonly idOrder: Uint32Array;
  private readonly pathStart: Uint32Array;
  private readonly pathOrder: Uint32Array;

  constructor(bytes: Uint8Array, what: string) {
    const r = new SegmentReader(bytes, BASE_MAGIC, what);
    this.labels = r.i32(0);
    this.start = r.u32(1);
    this.end = r.u32(2);
    this.pathIdx = r.u32(3);
    this.ids = r.strings(4);
    this.hashes = r.strings(6);
    this.pathNames = r.strings(8);
    this.idOrder = r.u32(10);
    this.pathStart = r.u32(11);
    this.pathOrder = r.u32(12);
    const n = this.labels.length;
    if (this.start.length !== n || this.end.length !== n || this.pathIdx.length !== n || this.ids.length !== n
      || this.hashes.length !== n || this.idOrder.length !== n || this.pathOrder.length !== n
      || this.pathStart.length !== this.pathNames.length + 1) {
      throw new Error(`${what}: column lengths disagree`);
    }
  }

  static empty(): BaseMeta {
    return new BaseMeta(encodeBaseMeta([]), 'empty metadata');
  }

  get rows(): number {
    return this.labels.length;
  }
  get pathCount(): number {
    return this.pathNames.length;
  }
  pathAt(p: number): string {
    return this.pathNames.get(p);
  }
  /** Rows of path number `p`, in label order. */
  rowsOfPathNo(p: number): Uint32Array {
    return this.pathOrder.subarray(this.pathStart[p], this.pathStart[p + 1]);
  }

  record(row: number): ChunkRecord {
    return {
      id: this.ids.get(row),
      path: this.pathNames.get(this.pathIdx[row]),
      startLine: this.start[row],
      endLine: this.end[row],
      contentHash: this.hashes.get(row),
    };
  }
  idAt(row: number): string {
    return this.ids.get(row);
  }

  rowOfLabel(label: number): number {
    let lo = 0;
    let hi = this.labels.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.labels[mid];
      if (v === label) return mid;
      if (v < label) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  rowOfId(id: string): number {
    return this.ids.find(Buffer.from(id, 'utf8'), this.idOrder);
  }

  pathNo(p: string): number {
    return this.pathNames.find(Buffer.from(p, 'utf8'));
  }
}

export interface DeltaContent {
  labels: Int32Array;
  records: ChunkRecord[];
  /** rows × dims, as stored in the HNSW space (normalized for cosine). */
  vectors: Float32Array;
  tombstones: Int32Array;
}

export function encodeDelta(d: DeltaContent, dims: number): Uint8Array {
  if (d.vectors.length !== d.records.length * dims || d.labels.length !== d.records.length) throw new Error('encodeDelta: sizes disagree');
  const w = new SegmentWriter();
  w.add(d.labels); // 0
  w.add(Uint32Array.from(d.records, (r) => r.startLine)); // 1
  w.add(Uint32Array.from(d.records, (r) => r.endLine)); // 2
  w.addStrings(d.records.map((r) => r.id)); // 3, 4
  w.addStrings(d.records.map((r) => r.path)); // 5, 6
  w.addStrings(d.records.map((r) => r.contentHash)); // 7, 8
  w.add(d.tombstones); // 9
  w.add(d.vectors); // 10
  w.add(Uint32Array.of(dims)); // 11
  return w.encode(DELTA_MAGIC);
}

export function decodeDelta(bytes: Uint8Array, dims: number, what: string): DeltaContent {
  const r = new SegmentReader(bytes, DELTA_MAGIC, what);
  const labels = r.i32(0);
  const start = r.u32(1);
  const end = r.u32(2);
  const ids = r.strings(3);
  const paths = r.strings(5);
  const hashes = r.strings(7);
  const tombstones = r.i32(9);
  const vectors = r.f32(10);
  const n = labels.length;
  if (r.u32(11)[0] !== dims) throw new Error(`${what}: written for ${r.u32(11)[0]} dims, the store has ${dims}`);
  if (start.length !== n || end.length !== n || ids.length !== n || paths.length !== n || hashes.length !== n || vectors.length !== n * dims) {
    throw new Error(`${what}: column lengths disagree`);
  }
  const records: ChunkRecord[] = [];
  for (let i = 0; i < n; i++) records.push({ id: ids.get(i), path: paths.get(i), startLine: start[i], endLine: end[i], contentHash: hashes.get(i) });
  return { labels: labels.slice(), records, vectors: vectors.slice(), tombstones: tombstones.slice() };
}
