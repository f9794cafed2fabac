// A small binary container for the store's segment files (base metadata, delta segments, lexical
// postings): a header, a table of sections, then the sections, each 8-byte aligned so that typed arrays
// can view them in place (no parsing: opening a segment is one read plus a few `new Uint32Array(...)`).
//
//   bytes 0..7    magic (8 ASCII bytes, names the kind of segment)
//   u32           container version (1)
//   u32           section count S
//   S × 16 bytes  section table: u64 offset, u64 length (little endian)
//   ...           sections
//
// Strings are stored as a column: u32 offsets[n+1] (into the bytes section) + UTF-8 bytes.
// Why not JSON: JSON must be parsed whole before the first lookup, and rewritten whole by every save.
// Measured in one run (bench/segments.ts, 37k chunks × 384, BENCHMARKS.md): opening the store, lexical
// index and catalog took 25.0 s with the JSON formats against 0.68 s with segments on a heavily loaded
// machine (0.32 s CPU in a later run, most of it reading and sha256-checking the files), and a one-file
// edit wrote 100 MB against 39 KB. A section view is O(1); a record is decoded only when asked for.
// Why by hand: it is ~150 lines; msgpack / flatbuffers would still parse or need a schema compiler,
// and the checksum / atomic-commit rules of this folder apply either way.

const CONTAINER_VERSION = 1;
const HEADER = 16;

export class SegmentWriter {
  private sections: Uint8Array[] = [];

  /** Adds a section; returns its index. Typed arrays are copied as their raw little-endian bytes. */
  add(data: Uint8Array | Int32Array | Uint32Array | Float32Array | Float64Array): number {
    this.sections.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return this.sections.length - 1;
  }

  /** Adds a string column as two sections (offsets, bytes); returns the index of the first. */
  addStrings(values: readonly string[]): number {
    const enc = new TextEncoder();
    const parts = values.map((v) => enc.encode(v));
    const offsets = new Uint32Array(values.length + 1);
    let total = 0;
    parts.forEach((p, i) => {
      total += p.byteLength;
      offsets[i + 1] = total;
    });
    const bytes = new Uint8Array(total);
    parts.forEach((p, i) => bytes.set(p, offsets[i]));
    const first = this.add(offsets);
    this.add(bytes);
    return first;
  }

  encode(magic: string): Uint8Array {
    if (magic.length !== 8) throw new Error('segment magic must be 8 characters');
    const table = this.sections.length * 16;
    let offset = align8(HEADER + table);
    const offsets: number[] = [];
    for (const s of this.sections) {
      offsets.push(offset);
      offset = align8(offset + s.byteLength);
    }
    const out = new Uint8Array(offset);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) out[i] = magic.charCodeAt(i);
    view.setUint32(8, CONTAINER_VERSION, true);
    view.setUint32(12, this.sections.length, true);
    this.sections.forEach((s, i) => {
      view.setBigUint64(HEADER + i * 16, BigInt(offsets[i]), true);
      view.setBigUint64(HEADER + i * 16 + 8, BigInt(s.byteLength), true);
      out.set(s, offsets[i]);
    });
    return out;
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** A string column viewed in place; `get(i)` decodes one string. */
export class StringColumn {
  private static readonly decoder = new TextDecoder();
  constructor(
    private readonly offsets: Uint32Array,
    private readonly bytes: Uint8Array,
  ) {}
  get length(): number {
    return this.offsets.length - 1;
  }
  get(i: number): string {
    return StringColumn.decoder.decode(this.bytes.subarray(this.offsets[i], this.offsets[i + 1]));
  }
  /** Byte-order comparison of `key` (UTF-8) with string i, without decoding it. */
  compare(key: Uint8Array, i: number): number {
    return Buffer.compare(key, this.bytes.subarray(this.offsets[i], this.offsets[i + 1]));
  }
  /**
   * Binary search for `key` (UTF-8) in a column sorted by byte order (through `order`, row numbers in
   * sorted order, or the column itself when omitted). Returns the row, or -1.
   */
  find(key: Uint8Array, order?: Uint32Array): number {
    let lo = 0;
    let hi = (order ? order.length : this.length) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const row = order ? order[mid] : mid;
      const c = this.compare(key, row);
      if (c === 0) return row;
      if (c > 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

/** UTF-8 bytes of each string, and the indices sorted by byte order (the order `find` searches). */
export function sortedByBytes(values: readonly string[]): { bytes: Buffer[]; order: Uint32Array } {
  const bytes = values.map((v) => Buffer.from(v, 'utf8'));
  const order = Uint32Array.from(values.keys()).sort((a, b) => Buffer.compare(bytes[a], bytes[b]));
  return { bytes, order };
}

export class SegmentReader {
  private readonly table: { offset: number; length: number }[] = [];

  /**
   * Parses the header of `bytes` (already checksum-verified by the caller). Throws a plain Error with
   * `what` on a wrong magic or a section outside the file (the caller turns it into a damage report).
   */
  constructor(
    private readonly bytes: Uint8Array,
    magic: string,
    what: string,
  ) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const got = String.fromCharCode(...bytes.subarray(0, 8));
    if (bytes.byteLength < HEADER || got !== magic) throw new Error(`${what} is not a ${magic} segment`);
    if (view.getUint32(8, true) !== CONTAINER_VERSION) throw new Error(`${what}: unknown segment container version ${view.getUint32(8, true)}`);
    const n = view.getUint32(12, true);
    if (HEADER + n * 16 > bytes.byteLength) throw new Error(`${what}: section table past the end`);
    for (let i = 0; i < n; i++) {
      const offset = Number(view.getBigUint64(HEADER + i * 16, true));
      const length = Number(view.getBigUint64(HEADER + i * 16 + 8, true));
      if (offset + length > bytes.byteLength || offset % 8 !== 0) throw new Error(`${what}: section ${i} outside the file`);
      this.table.push({ offset, length });
    }
    // Typed-array views need the section offsets aligned in memory too: copy once if the buffer is not.
    if (bytes.byteOffset % 8 !== 0) this.bytes = bytes.slice();
  }

  get sectionCount(): number {
    return this.table.length;
  }

  raw(i: number): Uint8Array {
    const s = this.section(i);
    return this.bytes.subarray(s.offset, s.offset + s.length);
  }
  u32(i: number): Uint32Array {
    const s = this.section(i);
    return new Uint32Array(this.bytes.buffer, this.bytes.byteOffset + s.offset, s.length / 4);
  }
  i32(i: number): Int32Array {
    const s = this.section(i);
    return new Int32Array(this.bytes.buffer, this.bytes.byteOffset + s.offset, s.length / 4);
  }
  f32(i: number): Float32Array {
    const s = this.section(i);
    return new Float32Array(this.bytes.buffer, this.bytes.byteOffset + s.offset, s.length / 4);
  }
  f64(i: number): Float64Array {
    const s = this.section(i);
    return new Float64Array(this.bytes.buffer, this.bytes.byteOffset + s.offset, s.length / 8);
  }
  strings(first: number): StringColumn {
    return new StringColumn(this.u32(first), this.raw(first + 1));
  }

  private section(i: number): { offset: number; length: number } {
    const s = this.table[i];
    if (!s) throw new Error(`segment section ${i} is missing`);
    return s;
  }
}
