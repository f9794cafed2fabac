// Nearest chunks of a text at several layers, by re-embedding candidates on the fly.
//
// The index holds one layer's pooled vectors (its recipe). For other layers the candidates — the
// `candidates` nearest chunks at the index's layer, as "Find Similar" lists them (overlapping chunks of
// one file merged, the selection itself left out) — and the text itself are embedded again with the
// index's pooling at every asked layer in one forward pass (Extractor.extractMany shares it), and
// ranked by cosine there. So the lists are exact *among those candidates*; a chunk that is far at
// the index's layer but near at another cannot appear (the result says how many candidates there
// were). BENCHMARKS.md compares this with a multi-layer index (every chunk pooled at each layer when
// indexing): its cost in size and time, and how often the candidate lists miss a true neighbour.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Extractor } from '../extract/extractor';
import { UserError, type Recipe } from '../types';
import { cosine } from '../vectorMath';
import type { SearchHit, SimilarTarget, WorkspaceSearch } from './search';

export interface LayerNeighbourHit {
  path: string;
  startLine: number;
  endLine: number;
  score: number;
  /** Rank at the index's own layer (1-based), for "how the list forms". */
  indexRank: number;
}

export interface LayerNeighbours {
  /** Hidden-state indices, in the order asked. */
  layers: number[];
  hits: LayerNeighbourHit[][];
  /** The index's layer spec (where the candidates come from). */
  indexLayer: string;
  candidates: number;
  searchMs: number;
  embedMs: number;
}

export interface LayerNeighbourOptions {
  root: string;
  search: WorkspaceSearch;
  extractor: Extractor;
  /** The index's recipe: its pooling and normalisation are used at every layer. */
  recipe: Recipe;
  target: SimilarTarget;
  layers: number[];
  k?: number;
  /** Chunks taken from the index as candidates (default 100). */
  candidates?: number;
  prefix?: string;
  signal?: AbortSignal;
}

export async function neighboursPerLayer(o: LayerNeighbourOptions): Promise<LayerNeighbours> {
  const k = Math.max(1, Math.floor(o.k ?? 10));
  const C = Math.max(k, Math.floor(o.candidates ?? 100));
  if (!o.layers.length) throw new UserError('No layers asked for.');
  let started = performance.now();
  const found: SearchHit[] = await o.search.similar(o.target, { k: C, perFile: C, previewLines: 0, signal: o.signal });
  const searchMs = performance.now() - started;

  const files = new Map<string, Promise<string[] | null>>();
  const lines = (p: string) => {
    let f = files.get(p);
    if (!f) files.set(p, (f = fs.readFile(path.join(o.root, p), 'utf8').then((t) => t.split(/\r?\n/), () => null)));
    return f;
  };
  const candidates: { hit: SearchHit; text: string; rank: number }[] = [];
  for (const [i, hit] of found.entries()) {
    const file = await lines(hit.path);
    const text = file?.slice(hit.startLine - 1, hit.endLine).join('\n');
    if (text?.trim()) candidates.push({ hit, text, rank: i + 1 });
  }
  let query: string;
  if ('text' in o.target) query = o.target.text;
  else {
    const t = o.target;
    const file = await lines(t.path);
    if (!file) throw new UserError(`Cannot read ${t.path} under ${o.root}.`);
    query = file.slice(t.startLine - 1, t.endLine).join('\n');
  }

  started = performance.now();
  const recipes: Recipe[] = o.layers.map((l) => ({ ...o.recipe, layer: String(l) }));
  const results = await o.extractor.extractMany([query, ...candidates.map((c) => c.text)], recipes, { signal: o.signal, prefix: o.prefix, truncate: false });
  const embedMs = performance.now() - started;

  const hits = results.map((r) => {
    const row = (i: number) => r.data.subarray(i * r.dims, (i + 1) * r.dims);
    const q = row(0);
    return candidates
      .map((c, i) => ({ path: c.hit.path, startLine: c.hit.startLine, endLine: c.hit.endLine, indexRank: c.rank, score: cosine(q, row(i + 1), 0) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  });
  return { layers: o.layers, hits, indexLayer: o.recipe.layer, candidates: candidates.length, searchMs, embedMs };
}
