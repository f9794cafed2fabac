// Lexical retrieval (BM25, via MiniSearch) over the same chunks as the vector store: exact identifiers
// matter in code, and a vector search alone blurs them. Terms are code-aware: `parseHttpURL` and
// `parse_http_url` both also index `parse`, `http`, `url`, and the whole identifier is kept as well.
import * as fs from 'node:fs/promises';
import MiniSearch from 'minisearch';
import { writeFileAtomic } from '../store/atomicFile';

export const LEXICAL_FORMAT_VERSION = 1;

/** Splits text into identifier-ish words; each word is later expanded into its parts. */
export function tokenizeCode(text: string): string[] {
  return text.match(/[\p{L}\p{N}_$]+/gu) ?? [];
}

/** One word → the lowercased word plus its camelCase / snake_case parts (2+ chars). */
export function expandTerm(term: string): string[] {
  const lower = term.toLowerCase();
  const parts = term
    .split(/[_$]+/)
    .flatMap((p) => p.split(/(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[a-zA-Z])(?=[0-9])/))
    .map((p) => p.toLowerCase())
    .filter((p) => p.length >= 2 && p !== lower);
  return lower.length >= 2 || parts.length ? [...new Set([lower, ...parts])].filter((t) => t.length >= 1) : [];
}

const OPTIONS = {
  fields: ['text', 'path'],
  storeFields: [] as string[],
  tokenize: (text: string) => tokenizeCode(text),
  processTerm: (term: string) => expandTerm(term),
  searchOptions: { boost: { path: 0.5 }, prefix: false, fuzzy: false, combineWith: 'OR' as const },
};

interface LexicalDoc {
  id: string;
  text: string;
  path: string;
}

export interface LexicalHit {
  id: string;
  score: number;
}

export class LexicalIndex {
  /** Changed since it was loaded or saved. */
  dirty = false;

  private constructor(private readonly mini: MiniSearch<LexicalDoc>) {}

  static empty(): LexicalIndex {
    const index = new LexicalIndex(new MiniSearch<LexicalDoc>(OPTIONS));
    index.dirty = true;
    return index;
  }

  /** Loads a saved index; a missing, unreadable or foreign file gives null (the caller rebuilds). */
  static async load(file: string): Promise<LexicalIndex | null> {
    let raw: string;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch {
      return null;
    }
    try {
      const saved = JSON.parse(raw) as { formatVersion: number; index: unknown };
      if (saved.formatVersion !== LEXICAL_FORMAT_VERSION) return null;
      return new LexicalIndex(MiniSearch.loadJS<LexicalDoc>(saved.index as never, OPTIONS));
    } catch {
      return null;
    }
  }

  async save(file: string): Promise<void> {
    await writeFileAtomic(file, JSON.stringify({ formatVersion: LEXICAL_FORMAT_VERSION, index: this.mini.toJSON() }));
    this.dirty = false;
  }

  has(id: string): boolean {
    return this.mini.has(id);
  }

  get size(): number {
    return this.mini.documentCount;
  }

  add(id: string, path: string, text: string): void {
    if (this.mini.has(id)) return;
    this.mini.add({ id, path, text });
    this.dirty = true;
  }

  remove(id: string): void {
    if (this.mini.has(id)) {
      this.mini.discard(id);
      this.dirty = true;
    }
  }

  ids(): string[] {
    // MiniSearch keeps ids internally; read them through its serialized form's document ids map.
    const json = this.mini.toJSON() as unknown as { documentIds: Record<string, string> };
    return Object.values(json.documentIds);
  }

  search(query: string, limit: number): LexicalHit[] {
    if (!query.trim()) return [];
    return this.mini.search(query).slice(0, limit).map((r) => ({ id: String(r.id), score: r.score }));
  }
}
