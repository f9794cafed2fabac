// Bulk load into PostgreSQL with COPY … FROM STDIN (FORMAT binary): the rows go as one stream instead of
// one INSERT statement per batch, and every value in its binary form (no text parsing on the server; a
// float32 vector arrives bit for bit).
//
// pg-copy-streams moves the bytes over the `pg` connection. The encoding is written here because it is
// short and fixed (PostgreSQL manual, COPY, "Binary Format": an 11-byte signature, flags and header
// extension length, then per row the field count and each field as int32 length + bytes, then -1), and
// because no encoder package knows pgvector's binary `vector` (vector_recv in pgvector's src/vector.c:
// int16 dims, int16 0, then each element as a big-endian float4).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Bytes handed to the stream at a time. */
const BLOCK = 1 << 20;

/** Field writers for one binary COPY stream; `rows()` yields the encoded blocks. */
export class BinaryCopyWriter {
  private buf = Buffer.allocUnsafe(BLOCK);
  private off = 0;
  private readonly done: Buffer[] = [];

  constructor() {
    this.ensure(SIGNATURE.length + 8);
    SIGNATURE.copy(this.buf, 0);
    this.off = SIGNATURE.length;
    this.int32Raw(0); // flags: no OIDs
    this.int32Raw(0); // header extension length
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  private flush(): void {
    if (this.off) this.done.push(Buffer.from(this.buf.subarray(0, this.off)));
    this.off = 0;
  }

  private int32Raw(v: number): void {
    this.off = this.buf.writeInt32BE(v, this.off);
  }

  /** Starts a row of `fields` fields. */
  row(fields: number): this {
    this.ensure(2);
    this.off = this.buf.writeInt16BE(fields, this.off);
    return this;
  }

  text(s: string): this {
    const len = Buffer.byteLength(s, 'utf8');
    this.ensure(4 + len);
    this.int32Raw(len);
    this.off += this.buf.write(s, this.off, 'utf8');
    return this;
  }

  int16(v: number): this {
    this.ensure(6);
    this.int32Raw(2);
    this.off = this.buf.writeInt16BE(v, this.off);
    return this;
  }

  int32(v: number): this {
    this.ensure(8);
    this.int32Raw(4);
    this.int32Raw(v);
    return this;
  }

  int64(v: bigint): this {
    this.ensure(12);
    this.int32Raw(8);
    this.off = this.buf.writeBigInt64BE(v, this.off);
    return this;
  }

  /** pgvector `vector` in its binary form. */
  vector(v: Float32Array): this {
    this.ensure(8 + 4 * v.length);
    this.int32Raw(4 + 4 * v.length);
    this.off = this.buf.writeInt16BE(v.length, this.off);
    this.off = this.buf.writeInt16BE(0, this.off);
    for (let i = 0; i < v.length; i++) this.off = this.buf.writeFloatBE(v[i]!, this.off);
    return this;
  }

  /** Encoded blocks so far (taken: the writer continues with the next rows). */
  take(): Buffer[] {
    if (this.off >= BLOCK / 2) this.flush();
    return this.done.splice(0);
  }

  /** Adds the trailer and returns the remaining blocks. */
  end(): Buffer[] {
    this.ensure(2);
    this.off = this.buf.writeInt16BE(-1, this.off);
    this.flush();
    return this.done.splice(0);
  }
}

/**
 * Streams rows into `table (columns)` with binary COPY. `write(w, i)` encodes row i; rows are encoded
 * as the stream asks for them, so memory stays at a few blocks whatever the row count. Returns the
 * server's row count.
 */
export async function copyBinary(client: pg.Client, table: string, columns: string[], count: number, write: (w: BinaryCopyWriter, i: number) => void): Promise<number> {
  const w = new BinaryCopyWriter();
  function* blocks(): Generator<Buffer> {
    for (let i = 0; i < count; i++) {
      write(w, i);
      yield* w.take();
    }
    yield* w.end();
  }
  const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`));
  await pipeline(Readable.from(blocks(), { objectMode: false }), stream);
  return stream.rowCount;
}
