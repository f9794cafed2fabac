// BM25 for the PostgreSQL store from stored term statistics (postings per term, field lengths per chunk,
// corpus totals), with the local lexical index's own analysis and scoring functions
// (src/core/search/lexical.ts), so a shared index and a local one rank the same chunks the same way
// (ties by chunk id). test/unit/postgres.test.ts checks the rankings against the local index.
import { analyze, bm25FieldScore, queryTerms } from '../search/lexical';

export { queryTerms };

export interface TermRow {
  term: string;
  /** 0 text, 1 path. */
  field: number;
  tf: number;
}

/** Term rows and the two field lengths of one chunk (its text and its path). */
export function documentTerms(path: string, text: string): { rows: TermRow[]; textLength: number; pathLength: number } {
  const doc = analyze(path, text);
  const rows: TermRow[] = [];
  for (const [term, tf] of doc.tf) {
    for (let field = 0; field < 2; field++) if (tf[field]! > 0) rows.push({ term, field, tf: tf[field]! });
  }
  return { rows, textLength: doc.lengths[0], pathLength: doc.lengths[1] };
}

export interface Posting {
  term: string;
  field: number;
  /** Chunk id. */
  doc: string;
  tf: number;
  textLength: number;
  pathLength: number;
}

export interface CorpusStats {
  docCount: number;
  textLengthTotal: number;
  pathLengthTotal: number;
}

/** Scores chunks for the query terms from their postings; best first (ties: chunk id order, as locally). */
export function scoreBm25(terms: string[], postings: Posting[], stats: CorpusStats): { doc: string; score: number }[] {
  if (!stats.docCount) return [];
  const avg = [stats.textLengthTotal / stats.docCount, stats.pathLengthTotal / stats.docCount];
  const byTerm = new Map<string, Posting[][]>();
  for (const p of postings) {
    let fields = byTerm.get(p.term);
    if (!fields) byTerm.set(p.term, (fields = [[], []]));
    fields[p.field]!.push(p);
  }
  const results = new Map<string, { score: number; terms: Set<string> }>();
  for (const term of terms) {
    const fields = byTerm.get(term);
    if (!fields) continue;
    fields.forEach((list, field) => {
      for (const p of list) {
        const s = bm25FieldScore(field, p.tf, list.length, stats.docCount, field === 0 ? p.textLength : p.pathLength, avg[field]!);
        const r = results.get(p.doc);
        if (r) {
          r.score += s;
          r.terms.add(term);
        } else results.set(p.doc, { score: s, terms: new Set([term]) });
      }
    });
  }
  return [...results]
    .map(([doc, r]) => ({ doc, score: r.score * r.terms.size }))
    .sort((a, b) => b.score - a.score || (a.doc < b.doc ? -1 : a.doc > b.doc ? 1 : 0));
}
