// Lexical retrieval (BM25) over the same chunks as the vector store: exact identifiers matter in code,
// and a vector search alone blurs them. Terms are code-aware: `parseHttpURL` and `parse_http_url` both
// also index `parse`, `http`, `url`, and the whole identifier is kept as well.
//
// Storage: segments, like the vector store. `lexical.json` (the manifest: generation, segment files with
// sha256 and size, live totals) names `lexical.<g>.seg` files, oldest first. Each segment holds the
// documents added in one save (ids, paths, field lengths), a sorted term dictionary with postings, and
// tombstones (ids deleted from older segments). A save writes one new segment with the change; opening
// reads the segments and views them in place (segmentFile.ts), so nothing is parsed as a whole; a
// search looks up its terms by binary search and reads only their postings. `compactIfNeeded` merges
// the segments into one when there are many or when deleted documents pile up.
//
// Scoring is MiniSearch 7's BM25+ (k 1.2, b 0.7, d 0.5; fields text and path, path boosted 0.5; field
// length = distinct words; a document's score times the number of distinct query terms it matched), the
// library this index used before: the unit test checks the scores against MiniSearch itself.
// Why not keep MiniSearch: its index loads only from one JSON of the whole index, parsed on every open
// and rewritten on every save (12 MB at 37k chunks in the measurement of a real repository).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { digestBytes, removeQuietly, sweepUnreferenced, writeFileAtomic } from '../store/atomicFile';
import { readChecked } from '../store/checkedRead';
import { SegmentReader, SegmentWriter, sortedByBytes, type StringColumn } from '../store/segmentFile';
import { indexDamaged, UserError } from '../errors';

// 3: stop words dropped and terms stemmed (expandTerm); 4: documents hold the enclosing declaration
// names (lexicalTextOf). Older indexes are rebuilt from the files (no re-embedding).
export const LEXICAL_FORMAT_VERSION = 4;
const LEXICAL_FORMAT = 'embedding-lens-lexical';
const SEGMENT_MAGIC = 'ELLEXSG1';
const BM25 = { k: 1.2, b: 0.7, d: 0.5 };
const FIELD_BOOST = [1, 0.5]; // text, path
const TF_MAX = 0xffff;
const REPAIR_HINT = 'Index the folder again: it repairs the lexical index from the files (no re-embedding).';

/** Splits text into identifier-ish words; each word is later expanded into its parts. */
export function tokenizeCode(text: string): string[] {
  return text.match(/[\p{L}\p{N}_$]+/gu) ?? [];
}

/**
 * English function words: in a question ("where do we …", "how is … handled") they match nearly every
 * chunk and drown the words that matter. Dropped on both sides (documents and queries).
 */
const STOP_WORDS = new Set(('a an and are as at be been by can could did do does doing done for from had has have how i if ' +
  'in into is it its me my of on or our so than that the their them then there these they this those to us was we were what ' +
  'when where which while who whom why will with would you your').split(' '));

/**
 * A light suffix stripper (a small subset of Porter's rules), so `parses`, `parsed`, `parsing` and
 * `parse` meet: plural -s/-es/-ies, -ing, -ed, then a final -e. Short words are left alone.
 * Hand-written because the rules needed are a few lines and the registry's stemmers are natural-
 * language packages far larger than this.
 */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 3 || /\d/.test(w)) return w;
  if (w.endsWith('ies') && w.length > 4) w = w.slice(0, -3) + 'y';
  else if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (/(x|z|ch|sh|ss)es$/.test(w)) w = w.slice(0, -2);
  else if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) w = w.slice(0, -1);
  if (w.endsWith('ing') && w.length > 6) w = w.slice(0, -3);
  else if (w.endsWith('ed') && w.length > 4) w = w.slice(0, -2);
  else if (w.endsWith('e') && w.length > 3) w = w.slice(0, -1);
  // running → runn → run
  if (w.length > 3 && /([bdfgmnprt])\1$/.test(w)) w = w.slice(0, -1);
  return w;
}

/** One word → the lowercased word plus the stems of its camelCase / snake_case parts (2+ chars); stop words give nothing. */
export function expandTerm(term: string): string[] {
  const lower = term.toLowerCase();
  if (STOP_WORDS.has(lower)) return [];
  const parts = term
    .split(/[_$]+/)
    .flatMap((p) => p.split(/(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[a-zA-Z])(?=[0-9])/))
    .map((p) => p.toLowerCase())
    .filter((p) => p.length >= 2 && !STOP_WORDS.has(p))
    .map(stem);
  if (lower.length < 2 && !parts.length) return [];
  return [...new Set([lower, ...parts])];
}

export interface LexicalHit {
  id: string;
  score: number;
}

/** The processed terms of a query, in order, duplicates kept (each is scored; matches count once). */
export function queryTerms(query: string): string[] {
  return tokenizeCode(query).flatMap((t) => expandTerm(t)).filter((t) => !!t);
}

/**
 * BM25+ of one term in one field (0 text, 1 path) of one document, with the field boost: `matching`
 * documents of `n` have the term in that field; `length` is the document's field length.
 * Shared with the PostgreSQL store (src/core/store/postgresLexical.ts), so both rank alike.
 */
export function bm25FieldScore(field: number, tf: number, matching: number, n: number, length: number, avgLength: number): number {
  const idf = Math.log(1 + (n - matching + 0.5) / (matching + 0.5));
  return FIELD_BOOST[field] * idf * (BM25.d + (tf * (BM25.k + 1)) / (tf + BM25.k * (1 - BM25.b + (BM25.b * length) / avgLength)));
}

/** A document not yet in a segment: field lengths and term frequencies per field. */
export interface PendingDoc {
  path: string;
  lengths: [number, number];
  tf: Map<string, [number, number]>;
}

/** Field lengths (distinct words of the text and of the path) and term frequencies of one chunk. */
export function analyze(path: string, text: string): PendingDoc {
  const tf = new Map<string, [number, number]>();
  const lengths: [number, number] = [0, 0];
  [text, path].forEach((value, field) => {
    const tokens = tokenizeCode(value);
    lengths[field] = new Set(tokens).size;
    for (const token of tokens) {
      for (const term of expandTerm(token)) {
        let e = tf.get(term);
        if (!e) tf.set(term, (e = [0, 0]));
        e[field]++;
      }
    }
  });
  return { path, lengths, tf };
}

interface SegmentEntry {
  name: string;
  sha256: string;
  crc32?: number;
  bytes: number;
  docs: number;
  tombstones: number;
}

interface LexicalManifest {
  format: typeof LEXICAL_FORMAT;
  formatVersion: number;
  generation: number;
  segments: SegmentEntry[];
}

/** One committed segment viewed in place, with a bitmap of its documents deleted since. */
class Segment {
  readonly ids: StringColumn;
  readonly paths: StringColumn;
  readonly textLen: Uint32Array;
  readonly pathLen: Uint32Array;
  private readonly terms: StringColumn;
  private readonly termStart: Uint32Array;
  private readonly postDoc: Uint32Array;
  private readonly postTf: Uint32Array;
  private readonly idOrder: Uint32Array;
  readonly tombstones: StringColumn;
  readonly dead: Uint8Array;

  constructor(readonly entry: SegmentEntry, bytes: Uint8Array, what: string) {
    const r = new SegmentReader(bytes, SEGMENT_MAGIC, what);
    this.ids = r.strings(0);
    this.paths = r.strings(2);
    this.textLen = r.u32(4);
    this.pathLen = r.u32(5);
    this.terms = r.strings(6);
    this.termStart = r.u32(8);
    this.postDoc = r.u32(9);
    this.postTf = r.u32(10);
    this.idOrder = r.u32(11);
    this.tombstones = r.strings(12);
    const n = this.ids.length;
    if (this.paths.length !== n || this.textLen.length !== n || this.pathLen.length !== n || this.idOrder.length !== n
      || this.termStart.length !== this.terms.length + 1 || this.postDoc.length !== this.postTf.length
      || this.termStart[this.terms.length] !== this.postDoc.length) {
      throw new Error(`${what}: column lengths disagree`);
    }
    this.dead = new Uint8Array(n);
  }

  get docs(): number {
    return this.ids.length;
  }

  rowOf(key: Uint8Array): number {
    return this.ids.find(key, this.idOrder);
  }

  /** Postings of `term`, or null. */
  postings(term: Uint8Array): { docs: Uint32Array; tfs: Uint32Array } | null {
    const t = this.terms.find(term);
    if (t < 0) return null;
    return { docs: this.postDoc.subarray(this.termStart[t], this.termStart[t + 1]), tfs: this.postTf.subarray(this.termStart[t], this.termStart[t + 1]) };
  }

  /** Every term with its postings, in term order (for merging segments). */
  *allTerms(): Iterable<[string, Uint32Array, Uint32Array]> {
    for (let t = 0; t < this.terms.length; t++) {
      yield [this.terms.get(t), this.postDoc.subarray(this.termStart[t], this.termStart[t + 1]), this.postTf.subarray(this.termStart[t], this.termStart[t + 1])];
    }
  }
}

interface SegmentDoc {
  id: string;
  path: string;
  lengths: [number, number];
}

/** Encodes documents (in the given order) and tombstones as one segment. */
function encodeSegment(docs: SegmentDoc[], postings: Map<string, [number, number][]>, tombstones: string[]): Uint8Array {
  const unsorted = [...postings.keys()];
  const terms = [...sortedByBytes(unsorted).order].map((i) => unsorted[i]);
  const termStart = new Uint32Array(terms.length + 1);
  let total = 0;
  terms.forEach((t, i) => {
    total += postings.get(t)!.length;
    termStart[i + 1] = total;
  });
  const postDoc = new Uint32Array(total);
  const postTf = new Uint32Array(total);
  let k = 0;
  for (const t of terms) {
    for (const [doc, tf] of postings.get(t)!) {
      postDoc[k] = doc;
      postTf[k++] = tf;
    }
  }
  const idOrder = sortedByBytes(docs.map((d) => d.id)).order;
  const w = new SegmentWriter();
  w.addStrings(docs.map((d) => d.id)); // 0, 1
  w.addStrings(docs.map((d) => d.path)); // 2, 3
  w.add(Uint32Array.from(docs, (d) => d.lengths[0])); // 4
  w.add(Uint32Array.from(docs, (d) => d.lengths[1])); // 5
  w.addStrings(terms); // 6, 7
  w.add(termStart); // 8
  w.add(postDoc); // 9
  w.add(postTf); // 10
  w.add(idOrder); // 11
  w.addStrings(tombstones); // 12, 13
  return w.encode(SEGMENT_MAGIC);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

const packTf = (text: number, p: number) => ((Math.min(text, TF_MAX) << 16) | Math.min(p, TF_MAX)) >>> 0;

export interface LexicalLoadOptions {
  /** Leave out a segment that fails its checksum (its documents are then missing; the indexer re-adds them). */
  repair?: boolean;
}

export class LexicalIndex {
  /** Changed since it was loaded or saved. */
  dirty = false;
  private segments: Segment[] = [];
  private generation = 0;
  private pending = new Map<string, PendingDoc>();
  /** Ids deleted from committed segments since the last save. */
  private pendingTombstones: string[] = [];
  /** Live ids of the committed segments (see has); null until needed. */
  private committedIds: Set<string> | null = null;
  private docs = 0;
  private lengthTotals: [number, number] = [0, 0];
  /** Segments left out by a load with `repair` (file name and why). */
  readonly dropped: { file: string; reason: string }[] = [];

  private constructor() {}

  static empty(): LexicalIndex {
    const index = new LexicalIndex();
    index.dirty = true;
    return index;
  }

  /**
   * Loads a saved index. A missing file or one of an older format gives null (the caller rebuilds it from
   * the catalog's chunks); a damaged one is an error naming the file, unless `repair` leaves its segment out.
   */
  static async load(file: string, options: LexicalLoadOptions = {}): Promise<LexicalIndex | null> {
    let raw: string;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new UserError(`Cannot read the lexical index ${file}: ${(err as Error).message}`, undefined, { code: 'IO_FAILED', file });
    }
    let m: LexicalManifest;
    try {
      m = JSON.parse(raw) as LexicalManifest;
    } catch {
      if (options.repair) return null;
      throw indexDamaged(`The lexical index ${file} is corrupt (not valid JSON).`, { file, repair: 'refresh' }, REPAIR_HINT);
    }
    if (m.formatVersion !== LEXICAL_FORMAT_VERSION || m.format !== LEXICAL_FORMAT) {
      if (typeof m.formatVersion === 'number' && m.formatVersion > LEXICAL_FORMAT_VERSION) {
        throw new UserError(`The lexical index ${file} was written by a newer Embedding Lens (format ${m.formatVersion}).`, 'Update Embedding Lens, or rebuild the index with this version.', { code: 'INDEX_NEWER', file });
      }
      return null; // formats 1-2 (MiniSearch JSON; terms before stemming): rebuilt from the chunks by the next index run
    }
    const index = new LexicalIndex();
    index.generation = m.generation;
    const dir = path.dirname(file);
    // Every segment read and checked at once (large ones off the main thread: checkedRead.ts), then attached in order.
    const reads = m.segments.map((entry) => readChecked(path.join(dir, entry.name), entry));
    for (const [i, entry] of m.segments.entries()) {
      const p = path.join(dir, entry.name);
      try {
        const checked = await reads[i]!;
        if (!checked.ok) {
          const problem = checked.problem;
          if (problem.kind === 'missing') throw new Error(problem.code === 'ENOENT' ? `${p} is missing` : `${p} could not be read (${problem.code})`);
          if (problem.kind === 'size') throw new Error(`${p} is truncated or damaged (${problem.size} bytes, the manifest says ${entry.bytes})`);
          throw new Error(`${p} is corrupt (checksum mismatch)`);
        }
        index.attach(new Segment(entry, checked.bytes!, p));
      } catch (err) {
        const reason = (err as Error).message;
        if (!options.repair) throw indexDamaged(`The lexical index is damaged: ${reason}.`, { file: p, repair: 'refresh' }, REPAIR_HINT);
        index.dropped.push({ file: entry.name, reason });
        index.dirty = true;
      }
    }
    return index;
  }

  /** Adds a committed segment: its tombstones kill older copies, its documents count. */
  private attach(seg: Segment): void {
    for (let t = 0; t < seg.tombstones.length; t++) this.killCommitted(seg.tombstones.get(t), this.segments.length);
    this.segments.push(seg);
    for (let r = 0; r < seg.docs; r++) this.count(seg.textLen[r], seg.pathLen[r], 1);
  }

  private count(textLen: number, pathLen: number, sign: 1 | -1): void {
    this.docs += sign;
    this.lengthTotals[0] += sign * textLen;
    this.lengthTotals[1] += sign * pathLen;
  }

  /** Marks the live copy of `id` in segments before `before` dead; returns true if there was one. */
  private killCommitted(id: string, before: number): boolean {
    const key = Buffer.from(id, 'utf8');
    for (let s = before - 1; s >= 0; s--) {
      const seg = this.segments[s];
      const row = seg.rowOf(key);
      if (row >= 0 && !seg.dead[row]) {
        seg.dead[row] = 1;
        this.committedIds?.delete(id);
        this.count(seg.textLen[row], seg.pathLen[row], -1);
        return true;
      }
    }
    return false;
  }

  private committedHas(id: string): boolean {
    const key = Buffer.from(id, 'utf8');
    for (let s = this.segments.length - 1; s >= 0; s--) {
      const row = this.segments[s].rowOf(key);
      if (row >= 0 && !this.segments[s].dead[row]) return true;
    }
    return false;
  }

  has(id: string): boolean {
    if (this.pending.has(id)) return true;
    // With several segments a writer asks a lot (every chunk it adds): answer from a set of the live
    // committed ids, built on first use (one decode per document) and kept up to date.
    if (this.segments.length > 2) {
      if (!this.committedIds) this.committedIds = new Set(this.committedLiveIds());
      return this.committedIds.has(id);
    }
    return this.committedHas(id);
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  private committedLiveIds(): string[] {
    const out: string[] = [];
    for (const seg of this.segments) for (let r = 0; r < seg.docs; r++) if (!seg.dead[r]) out.push(seg.ids.get(r));
    return out;
  }

  get size(): number {
    return this.docs;
  }

  add(id: string, path: string, text: string): void {
    if (this.has(id)) return;
    const doc = analyze(path, text);
    this.pending.set(id, doc);
    this.count(doc.lengths[0], doc.lengths[1], 1);
    this.dirty = true;
  }

  remove(id: string): void {
    const doc = this.pending.get(id);
    if (doc) {
      this.pending.delete(id);
      this.count(doc.lengths[0], doc.lengths[1], -1);
      this.dirty = true;
      return;
    }
    if (this.killCommitted(id, this.segments.length)) {
      this.pendingTombstones.push(id);
      this.dirty = true;
    }
  }

  ids(): string[] {
    return [...this.committedLiveIds(), ...this.pending.keys()];
  }

  search(query: string, limit: number): LexicalHit[] {
    if (!query.trim() || this.docs === 0) return [];
    const terms = queryTerms(query);
    const distinct = new Map<string, number>();
    for (const t of terms) if (!distinct.has(t)) distinct.set(t, distinct.size);
    const words = Math.ceil(distinct.size / 32) || 1; // bitmask words per document: which distinct terms it matched
    const avg = [this.lengthTotals[0] / this.docs, this.lengthTotals[1] / this.docs];
    const n = this.docs;
    // Scores accumulate in typed arrays per segment (allocated when a term hits it); pending documents,
    // few, in a map. Per term: count the live documents that have it per field (the idf), then add each
    // field's score in MiniSearch's order (all text scores, then all path scores).
    const segScores: (Float64Array | null)[] = this.segments.map(() => null);
    const segMasks: (Uint32Array | null)[] = this.segments.map(() => null);
    const pendingHits = new Map<string, { score: number; mask: Uint32Array }>();
    for (const term of terms) {
      const bit = distinct.get(term)!;
      const termKey = Buffer.from(term, 'utf8');
      const posts = this.segments.map((seg) => seg.postings(termKey));
      const pend: [string, PendingDoc, [number, number]][] = [];
      for (const [id, doc] of this.pending) {
        const tf = doc.tf.get(term);
        if (tf) pend.push([id, doc, tf]);
      }
      const matching = [0, 0];
      posts.forEach((p, s) => {
        if (!p) return;
        const dead = this.segments[s].dead;
        for (let i = 0; i < p.docs.length; i++) {
          if (dead[p.docs[i]]) continue;
          if (p.tfs[i] >>> 16) matching[0]++;
          if (p.tfs[i] & 0xffff) matching[1]++;
        }
      });
      for (const [, , tf] of pend) {
        if (tf[0]) matching[0]++;
        if (tf[1]) matching[1]++;
      }
      for (let field = 0; field < 2; field++) {
        if (matching[field] === 0) continue;
        posts.forEach((p, s) => {
          if (!p) return;
          const seg = this.segments[s];
          const scores = (segScores[s] ??= new Float64Array(seg.docs));
          const masks = (segMasks[s] ??= new Uint32Array(seg.docs * words));
          const lengths = field === 0 ? seg.textLen : seg.pathLen;
          for (let i = 0; i < p.docs.length; i++) {
            const row = p.docs[i];
            if (seg.dead[row]) continue;
            const tf = field === 0 ? p.tfs[i] >>> 16 : p.tfs[i] & 0xffff;
            if (tf === 0) continue;
            scores[row] += bm25FieldScore(field, tf, matching[field], n, lengths[row], avg[field]);
            masks[row * words + (bit >> 5)] |= 1 << (bit & 31);
          }
        });
        for (const [id, doc, tf] of pend) {
          if (tf[field] === 0) continue;
          let h = pendingHits.get(id);
          if (!h) pendingHits.set(id, (h = { score: 0, mask: new Uint32Array(words) }));
          h.score += bm25FieldScore(field, tf[field], matching[field], n, doc.lengths[field], avg[field]);
          h.mask[bit >> 5] |= 1 << (bit & 31);
        }
      }
    }
    // Final score = sum × number of distinct query terms matched (MiniSearch's "quality").
    const hits: { seg: number; row: number; id?: string; score: number }[] = [];
    const matched = (masks: Uint32Array, at: number) => {
      let c = 0;
      for (let w = 0; w < words; w++) c += popcount(masks[at + w]);
      return c;
    };
    // Only documents that can be in the top `limit` become objects to sort (with their ids for ties): a
    // term in most documents made the full sort of every match ~160 ms of a query at 100k chunks. The
    // cut-off is the limit-th best final score; every document at or above it is kept, so the order and
    // the ties come out exactly as from sorting them all.
    const finals: Float64Array[] = segScores.map((scores, s) => {
      if (!scores) return new Float64Array(0);
      const masks = segMasks[s]!;
      const f = new Float64Array(scores.length);
      for (let row = 0; row < scores.length; row++) f[row] = scores[row] * matched(masks, row * words);
      return f;
    });
    const pendingFinal = [...pendingHits].map(([id, h]) => ({ seg: -1, row: -1, id, score: h.score * matched(h.mask, 0) }));
    let cutoff = 0;
    const positive = finals.reduce((c, f) => c + f.reduce((k, v) => k + (v > 0 ? 1 : 0), 0), 0) + pendingFinal.length;
    if (positive > limit) {
      const all = new Float64Array(positive);
      let i = 0;
      for (const f of finals) for (const v of f) if (v > 0) all[i++] = v;
      for (const h of pendingFinal) all[i++] = h.score;
      all.sort();
      cutoff = all[positive - Math.max(1, limit)];
    }
    finals.forEach((f, s) => {
      for (let row = 0; row < f.length; row++) if (f[row] > 0 && f[row] >= cutoff) hits.push({ seg: s, row, score: f[row] });
    });
    for (const h of pendingFinal) if (h.score > 0 && h.score >= cutoff) hits.push(h);
    const idOf = (h: { seg: number; row: number; id?: string }) => (h.id ??= this.segments[h.seg].ids.get(h.row));
    hits.sort((a, b) => b.score - a.score || (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0));
    return hits.slice(0, limit).map((h) => ({ id: idOf(h), score: h.score }));
  }

  /** True when merging the segments into one is due: many segments, or many deleted documents. */
  needsCompaction(): boolean {
    let dead = 0;
    let total = 0;
    for (const seg of this.segments) {
      total += seg.docs;
      for (let r = 0; r < seg.docs; r++) dead += seg.dead[r];
    }
    const first = this.segments[0]?.docs ?? 0;
    return this.segments.length > 16 || dead > 0.25 * Math.max(total, 1) || (this.segments.length > 1 && total - first > 0.1 * first + 2048);
  }

  /**
   * Commit the pending change as a new segment (`compact`: every live document as one segment) and
   * `file` as the manifest naming it, atomically; then delete segment files no manifest names.
   */
  async save(file: string, options: { compact?: boolean } = {}): Promise<void> {
    const compact = options.compact === true;
    if (!compact && !this.dirty) return;
    const dir = path.dirname(file);
    const g = this.generation + 1;
    const name = `lexical.${g}.seg`;
    let bytes: Uint8Array | null = null;
    if (compact) {
      bytes = this.encodeAll();
    } else if (this.pending.size > 0 || this.pendingTombstones.length > 0) {
      const docs: SegmentDoc[] = [];
      const postings = new Map<string, [number, number][]>();
      this.appendPending(docs, postings);
      bytes = encodeSegment(docs, postings, this.pendingTombstones);
    }
    const kept = compact ? [] : this.segments.map((s) => s.entry);
    let entry: SegmentEntry | null = null;
    if (bytes) {
      await writeFileAtomic(path.join(dir, name), bytes);
      entry = { name, ...digestBytes(bytes), docs: compact ? this.docs : this.pending.size, tombstones: compact ? 0 : this.pendingTombstones.length };
    }
    const manifest: LexicalManifest = { format: LEXICAL_FORMAT, formatVersion: LEXICAL_FORMAT_VERSION, generation: g, segments: entry ? [...kept, entry] : kept };
    try {
      await writeFileAtomic(file, JSON.stringify(manifest, null, 1));
    } catch (err) {
      if (entry) await removeQuietly(path.join(dir, name));
      throw err;
    }
    // Committed: swap memory to the new segments (the bytes just written, viewed in place).
    this.generation = g;
    if (compact) this.segments = [];
    if (bytes && entry) {
      const seg = new Segment(entry, bytes, name);
      if (compact) {
        this.segments = [seg];
      } else {
        this.segments.push(seg);
      }
    }
    if (this.committedIds) for (const id of this.pending.keys()) this.committedIds.add(id);
    this.pending = new Map();
    this.pendingTombstones = [];
    this.dirty = false;
    // Totals: recount from the segments (exact, cheap next to a save).
    this.docs = 0;
    this.lengthTotals = [0, 0];
    for (const seg of this.segments) for (let r = 0; r < seg.docs; r++) if (!seg.dead[r]) this.count(seg.textLen[r], seg.pathLen[r], 1);
    await sweepUnreferenced(dir, /^lexical\.\d+\.seg$/, new Set(manifest.segments.map((s) => s.name)));
  }

  /** Merge when due (see needsCompaction); returns true when it did. */
  async compactIfNeeded(file: string): Promise<boolean> {
    if (!this.needsCompaction()) return false;
    await this.save(file, { compact: true });
    return true;
  }

  /** Every live document (segments and pending) as one segment. */
  private encodeAll(): Uint8Array {
    const docs: SegmentDoc[] = [];
    const postings = new Map<string, [number, number][]>();
    const remap: Int32Array[] = this.segments.map((seg) => {
      const m = new Int32Array(seg.docs).fill(-1);
      for (let r = 0; r < seg.docs; r++) {
        if (seg.dead[r]) continue;
        m[r] = docs.length;
        docs.push({ id: seg.ids.get(r), path: seg.paths.get(r), lengths: [seg.textLen[r], seg.pathLen[r]] });
      }
      return m;
    });
    this.segments.forEach((seg, s) => {
      for (const [term, pd, pt] of seg.allTerms()) {
        let list: [number, number][] | undefined;
        for (let i = 0; i < pd.length; i++) {
          const to = remap[s][pd[i]];
          if (to < 0) continue;
          if (!list) {
            list = postings.get(term);
            if (!list) postings.set(term, (list = []));
          }
          list.push([to, pt[i]]);
        }
      }
    });
    this.appendPending(docs, postings);
    return encodeSegment(docs, postings, []);
  }

  /** Appends the pending documents and their postings (document numbers continue `docs`). */
  private appendPending(docs: SegmentDoc[], postings: Map<string, [number, number][]>): void {
    for (const [id, doc] of this.pending) {
      const no = docs.length;
      docs.push({ id, path: doc.path, lengths: doc.lengths });
      for (const [term, [a, b]] of doc.tf) {
        let list = postings.get(term);
        if (!list) postings.set(term, (list = []));
        list.push([no, packTf(a, b)]);
      }
    }
  }
}
