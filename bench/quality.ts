// Search-quality benchmark: real code bases, mined and hand-written questions, MRR@10 / recall@1 /
// recall@10 for vector, lexical and hybrid search, per model and per kind of question.
//
//   npm run bench:quality                          every code base, fp32 and the built-in model's int8 graph
//   npm run bench:quality -- --bases repo --models int8 --label try-x
//
// Experiments (measured in BENCHMARKS.md, none is the default): --embed-text split (identifiers split
// into words in every text the model reads), --file-summary (the file's own description in every code
// chunk's header), --late <window tokens> (late chunking: chunk vectors pooled from the whole file's
// token states), --layer / --pool (another recipe), --context path|names|none, --chunk-tokens <n>,
// --fusions, --per-file; --ranks <file> (every question's rank per mode), --dump <file> (every question's two candidate lists).
//
// The index is built by the real WorkspaceIndexer and queried through WorkspaceSearch, exactly as the
// CLI does; only the model calls are cached on disk (.cache/bench-quality), keyed by model, recipe and
// text, so a re-run after a chunking or search change embeds only what changed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Extractor } from '../src/core/extract/extractor';
import { BUNDLED_MODEL_DIR, type ModelDtype } from '../src/core/model/modelSource';
import { WorkspaceIndexer } from '../src/core/index/indexer';
import { TreeSitterGrammars } from '../src/core/index/treeSitter';
import { DEFAULT_FUSION, parseFusion, WorkspaceSearch, type Candidate, type Fusion, type SearchHit } from '../src/core/search/search';
import type { ChunkContext } from '../src/core/index/chunk';
import { chunkTokensFor } from '../src/core/workspace/workspace';
import type { Recipe } from '../src/core/types';
import { CachedEmbedder } from './quality/cachedEmbedder';
import { lateChunkingEmbedder } from './quality/lateChunking';
import { splitIdentifier } from '../src/core/sweep/pairs';
import { CACHE_DIR, BENCH_DIR, prepareCodeBase, QUESTION_KINDS, type CodeBase, type Question } from './quality/corpora';

const SHARED_MODEL = path.resolve(BENCH_DIR, '..', '..', 'shared', 'models', 'all-MiniLM-L6-v2');

interface ModelSpec { label: string; folder: string; quantized: boolean; batched?: boolean; modelDtype?: ModelDtype }

// fp32: ../shared's fp32 graph (the same bytes as models/all-MiniLM-L6-v2/onnx/model.onnx); int8: the
// built-in model's int8 graph (models/all-MiniLM-L6-v2/onnx/model_int8.onnx); q8 / q8-batched: the
// transformers.js int8 export (one scale per tensor: one text per call, or batched, batch-dependent).
function modelSpecs(list: string): ModelSpec[] {
  return list.split(',').map((m) => m.trim()).filter(Boolean).map((m) => {
    if (m === 'fp32' || m === 'q8' || m === 'q8-batched') return { label: m, folder: SHARED_MODEL, quantized: m !== 'fp32', batched: m === 'q8-batched' };
    if (m === 'int8') return { label: m, folder: BUNDLED_MODEL_DIR, quantized: false, modelDtype: 'int8' };
    const [label, folder, q] = m.split('=');
    return { label: label!, folder: path.resolve(folder ?? label!), quantized: q === 'int8' };
  });
}

export interface Metrics { n: number; mrr10: number; r1: number; r10: number }

/** Rank (1-based) of the first hit that answers the question, or 0. */
export function rankOf(hits: Array<Pick<SearchHit, 'path' | 'startLine' | 'endLine'>>, q: Question): number {
  for (let i = 0; i < hits.length; i++) {
    const h = hits[i]!;
    if (h.path !== q.path) continue;
    for (const t of q.targets) {
      const overlap = Math.min(h.endLine, t.end) - Math.max(h.startLine, t.start) + 1;
      // The hit shows the answer: at least half of the smaller of (hit, target) is shared.
      if (overlap > 0 && overlap >= 0.5 * Math.min(h.endLine - h.startLine + 1, t.end - t.start + 1)) return i + 1;
    }
  }
  return 0;
}

function metrics(ranks: number[]): Metrics {
  const n = ranks.length;
  if (!n) return { n: 0, mrr10: NaN, r1: NaN, r10: NaN };
  return {
    n,
    mrr10: ranks.reduce((s, r) => s + (r > 0 && r <= 10 ? 1 / r : 0), 0) / n,
    r1: ranks.filter((r) => r === 1).length / n,
    r10: ranks.filter((r) => r > 0 && r <= 10).length / n,
  };
}

/** Experiment: identifiers split into words (camelCase, snake_case) in every text the model sees. */
function splitIdentifiersEmbedder(inner: CachedEmbedder): CachedEmbedder {
  const split = (t: string) => t.replace(/[A-Za-z][A-Za-z0-9]*(?:[_$]+[A-Za-z0-9]+)+|[A-Za-z]*[a-z0-9][A-Z][A-Za-z0-9]*/g, (w) => splitIdentifier(w));
  return new Proxy(inner, {
    get(target, prop, recv) {
      if (prop === 'embed') return (texts: string[], o?: Parameters<CachedEmbedder['embed']>[1]) => target.embed(texts.map(split), o);
      const v = Reflect.get(target, prop, recv);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bases: { type: 'string', default: 'repo,go,python' },
      models: { type: 'string', default: 'int8,fp32' },
      'per-kind': { type: 'string', default: '25' },
      seed: { type: 'string', default: '1' },
      label: { type: 'string', default: 'current' },
      out: { type: 'string', default: path.join(BENCH_DIR, 'results-quality.json') },
      misses: { type: 'boolean', default: false },
      ranks: { type: 'string' },
      dump: { type: 'string' },
      threads: { type: 'string' },
      fusions: { type: 'string' },
      context: { type: 'string' },
      'chunk-tokens': { type: 'string' },
      speed: { type: 'string' },
      'per-file': { type: 'string' },
      'embed-text': { type: 'string', default: 'plain' },
      'file-summary': { type: 'boolean', default: false },
      late: { type: 'string' },
      layer: { type: 'string', default: 'last' },
      pool: { type: 'string', default: 'mean' },
    },
  });
  const grammars = await TreeSitterGrammars.load();
  const bases: CodeBase[] = [];
  for (const name of values.bases!.split(',')) {
    const b = await prepareCodeBase(name.trim(), { perKind: Number(values['per-kind']), seed: Number(values.seed), grammars });
    if ('skip' in b) { console.log(`skipped ${b.name}: ${b.skip}`); continue; }
    const counts = QUESTION_KINDS.map((k) => `${k} ${b.questions.filter((q) => q.kind === k).length}`).join(', ');
    console.log(`${b.name}: ${b.describe}; ${b.files} files; questions: ${counts}`);
    bases.push(b);
  }
  const specs = modelSpecs(values.models!);
  if (values.speed) {
    await speed(specs, bases, Number(values.speed), values.threads ? Number(values.threads) : undefined);
    return;
  }
  // --layer / --pool: another recipe (e.g. the layer sweep's runner-up), cached apart by recipe.
  const recipe: Recipe = { layer: values.layer!, pool: values.pool as Recipe['pool'], normalize: true };
  const fusions: Array<{ label: string; fusion: Fusion }> = values.fusions
    ? values.fusions.split(',').map((f) => ({ label: `hybrid ${f}`, fusion: parseFusion(f) }))
    : [{ label: 'hybrid', fusion: DEFAULT_FUSION }];
  // --per-file 2,4: the first value for every mode, the others as extra hybrid columns.
  const perFiles = (values['per-file'] ?? '2').split(',').map(Number);
  const modes: Array<{ label: string; mode: 'vector' | 'lexical' | 'hybrid'; fusion?: Fusion; perFile: number }> = [
    { label: 'vector', mode: 'vector', perFile: perFiles[0]! },
    { label: 'lexical', mode: 'lexical', perFile: perFiles[0]! },
    ...fusions.map((f) => ({ ...f, mode: 'hybrid' as const, perFile: perFiles[0]! })),
    ...perFiles.slice(1).flatMap((n) => fusions.map((f) => ({ ...f, label: `${f.label} per-file ${n}`, mode: 'hybrid' as const, perFile: n }))),
  ];
  const rows: Array<{ model: string; base: string; mode: string; kind: string } & Metrics> = [];
  const corpus: Array<Record<string, unknown>> = [];
  // --ranks <file>: every question's rank per mode (JSON lines), to see which questions a change moved.
  const rankLines: string[] = [];
  for (const spec of specs) {
    if (!fs.existsSync(spec.folder)) { console.log(`skipped model ${spec.label}: ${spec.folder} is missing`); continue; }
    const extractor = await Extractor.load({ model: spec.folder, quantized: spec.quantized, modelDtype: spec.modelDtype, batchDynamicQuantization: spec.batched, threads: values.threads ? Number(values.threads) : undefined });
    // The model's own prompts and max_seq_length (sentence-transformers files), the recipe fixed to
    // what all-MiniLM-L6-v2 declares (last layer, mean, normalised) so cached vectors stay comparable.
    const own = extractor.modelRecipe();
    const cached = new CachedEmbedder(extractor.embedder(recipe, own.prefixes), path.join(CACHE_DIR, 'embeddings'), spec.label);
    const plainEmbedder = values['embed-text'] === 'split' ? splitIdentifiersEmbedder(cached) : cached;
    try {
      for (const base of bases) {
        const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-quality-'));
        // --late <window tokens>: chunk vectors pooled from the whole file's token states (queries as usual).
        const embedder = values.late
          ? new CachedEmbedder(lateChunkingEmbedder(extractor, plainEmbedder, base.root, Number(values.late)), path.join(CACHE_DIR, 'embeddings'), `${spec.label}-late${values.late}`)
          : plainEmbedder;
        try {
          const m0 = embedder.modelMs; const c0 = embedder.cpuMs; const x0 = embedder.misses;
          const t0 = performance.now();
          const indexer = await WorkspaceIndexer.open({ root: base.root, storageDir, embedder, chunkTokens: values['chunk-tokens'] ? Number(values['chunk-tokens']) : chunkTokensFor(extractor.info.maxLength, own.maxSeqLength), chunkContext: values.context as ChunkContext | undefined, chunkFileSummary: values['file-summary'] });
          const summary = await indexer.refresh();
          const indexMs = performance.now() - t0;
          const search = await WorkspaceSearch.open({ root: base.root, storageDir, embedder });
          // Chunk shape: tiny chunks and overlapping ranges are what the issue calls out.
          const recs = indexer.catalog.paths().flatMap((p) => indexer.catalog.get(p)!.chunks.map((c) => ({ path: p, ...c })));
          const fileLines = new Map<string, number>();
          for (const p of indexer.catalog.paths()) fileLines.set(p, fs.readFileSync(path.join(base.root, p), 'utf8').split(/\r?\n/).length);
          const tiny = recs.filter((r) => r.endLine - r.startLine + 1 < 3 && (fileLines.get(r.path) ?? 0) >= 3).length;
          let overlapping = 0;
          const byPath = new Map<string, typeof recs>();
          for (const r of recs) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
          for (const list of byPath.values()) {
            list.sort((a, b) => a.startLine - b.startLine);
            for (let i = 1; i < list.length; i++) if (list[i]!.startLine <= list[i - 1]!.endLine) overlapping++;
          }
          corpus.push({ model: spec.label, base: base.name, files: summary.filesSeen, chunks: summary.chunksTotal, tinyChunks: tiny, overlappingChunks: overlapping, embedded: embedder.misses - x0, modelMs: Math.round(embedder.modelMs - m0), cpuMs: Math.round(embedder.cpuMs - c0), indexMs: Math.round(indexMs) });
          console.log(`[${spec.label}] ${base.name}: ${summary.filesSeen} files, ${summary.chunksTotal} chunks (${tiny} under 3 lines, ${overlapping} overlapping), embedded ${embedder.misses - x0} new in ${((embedder.modelMs - m0) / 1000).toFixed(1)} s`);
          if (values.dump) {
            // --dump <file>: each question's two candidate lists (JSON lines), to study fusion offline.
            const s = search as unknown as { embedQuery(t: string, p: string): Promise<Float32Array>; vectorCandidates(v: Float32Array, d: number): Candidate[]; lexicalCandidates(q: string, d: number): Candidate[]; prefixes: { query: string } };
            const out = base.questions.map(async (q) => {
              const row = (c: Candidate) => [c.rec.id, c.rec.path, c.rec.startLine, c.rec.endLine, +c.score.toFixed(5)];
              const v = s.vectorCandidates(await s.embedQuery(q.q, s.prefixes.query), 160).map(row);
              const l = s.lexicalCandidates(q.q, 160).map(row);
              return JSON.stringify({ base: base.name, kind: q.kind, q: q.q, path: q.path, targets: q.targets, v, l });
            });
            fs.appendFileSync(values.dump, (await Promise.all(out)).join('\n') + '\n');
          }
          for (const { label: modeLabel, mode, fusion, perFile } of modes) {
            const ranks: Array<{ q: Question; rank: number }> = [];
            for (const q of base.questions) {
              const hits = await search.search(q.q, { k: 10, mode, fusion, perFile });
              ranks.push({ q, rank: rankOf(hits, q) });
              if (values.ranks) rankLines.push(JSON.stringify({ model: spec.label, base: base.name, mode: modeLabel, kind: q.kind, q: q.q, rank: rankOf(hits, q), top: hits.slice(0, 3).map((h) => `${h.path}:${h.startLine}-${h.endLine}`) }));
              if (values.misses && modeLabel === modes[2]!.label && q.kind === 'hand' && rankOf(hits, q) !== 1) {
                console.log(`  miss(${rankOf(hits, q)}) "${q.q}" → want ${q.path}:${q.targets.map((t) => `${t.start}-${t.end}`).join('|')}; got ${hits.slice(0, 3).map((h) => `${h.path}:${h.startLine}-${h.endLine}`).join(', ')}`);
              }
            }
            for (const kind of ['all', ...QUESTION_KINDS]) {
              const sel = ranks.filter((r) => kind === 'all' || r.q.kind === kind).map((r) => r.rank);
              if (sel.length) rows.push({ model: spec.label, base: base.name, mode: modeLabel, kind, ...metrics(sel) });
            }
          }
        } finally {
          if (embedder !== plainEmbedder) embedder.close();
          fs.rmSync(storageDir, { recursive: true, force: true });
        }
      }
    } finally {
      cached.close();
      await extractor.dispose();
    }
  }

  // Tables: one per model; rows = code base × kind; columns = MRR@10 / R@1 / R@10 per mode.
  const lines: string[] = [];
  for (const spec of specs) {
    const mine = rows.filter((r) => r.model === spec.label);
    if (!mine.length) continue;
    lines.push('', `### ${spec.label} (${values.label})`, '', `| code base | questions | n | ${modes.map((m, i) => (i ? m.label : `${m.label} MRR@10 / R@1 / R@10`)).join(' | ')} |`, `|---|---|---|${modes.map(() => '---|').join('')}`);
    for (const base of bases) {
      for (const kind of ['hand', 'doc', 'heading', 'test', 'all']) {
        const cells = modes.map((m) => mine.find((r) => r.base === base.name && r.kind === kind && r.mode === m.label));
        if (!cells[0]) continue;
        lines.push(`| ${base.name} | ${kind} | ${cells[0].n} | ${cells.map((c) => `${f3(c!.mrr10)} / ${f3(c!.r1)} / ${f3(c!.r10)}`).join(' | ')} |`);
      }
    }
  }
  console.log(lines.join('\n'));
  if (values.ranks) fs.writeFileSync(values.ranks, rankLines.join('\n') + '\n');
  let saved: Record<string, unknown> = {};
  try { saved = JSON.parse(fs.readFileSync(values.out!, 'utf8')); } catch { /* first run */ }
  saved[values.label!] = { at: new Date().toISOString(), options: { models: values.models, fusions: values.fusions ?? null, context: values.context ?? null, chunkTokens: values['chunk-tokens'] ?? null, perFile: values['per-file'] ?? null }, bases: bases.map((b) => ({ name: b.name, describe: b.describe, files: b.files })), corpus, rows };
  fs.writeFileSync(values.out!, JSON.stringify(saved, null, 1) + '\n');
  console.log(`\nresults saved under "${values.label}" in ${path.relative(process.cwd(), values.out!)}`);
}

/**
 * Model speed on the same chunks, no cache: wall and CPU time per model (int8 runs one text per call,
 * which makes its vectors independent of the batch; `int8-batched` shows what that costs).
 */
async function speed(specs: ModelSpec[], bases: CodeBase[], n: number, threads?: number): Promise<void> {
  const { Chunker } = await import('../src/core/index/chunk');
  const { discoverFiles } = await import('../src/core/index/files');
  const chunker = new Chunker({ maxTokens: 240 });
  const texts: string[] = [];
  for (const base of bases) {
    const found = await discoverFiles(base.root);
    for (const f of found.files) {
      for (const c of await chunker.chunk(f.path, fs.readFileSync(f.absPath, 'utf8'))) texts.push(`${c.context}\n${c.text}`);
    }
  }
  // An even sample across the code bases.
  const step = Math.max(1, Math.floor(texts.length / n));
  const sample = texts.filter((_, i) => i % step === 0).slice(0, n);
  const recipe: Recipe = { layer: 'last', pool: 'mean', normalize: true };
  const runs: Array<{ label: string; folder: string; quantized: boolean; maxBatchSize?: number; batched?: boolean }> = [];
  for (const s of specs) {
    runs.push({ label: s.label, folder: s.folder, quantized: s.quantized });
    if (s.quantized) runs.push({ label: `${s.label}-batched`, folder: s.folder, quantized: true, batched: true });
  }
  const out: Array<Record<string, unknown>> = [];
  for (const r of runs) {
    const ex = await Extractor.load({ model: r.folder, quantized: r.quantized, threads, batchDynamicQuantization: r.batched });
    try {
      const emb = ex.embedder(recipe);
      await emb.embed(sample.slice(0, 4));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await emb.embed(sample);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1000;
      out.push({ model: r.label, chunks: sample.length, wallS: +(wall / 1000).toFixed(2), cpuS: +(cpu / 1000).toFixed(2), chunksPerS: +(sample.length / wall * 1000).toFixed(1), oneTextPerCall: ex.info.dynamicQuantization && !r.batched });
      console.log(`${r.label}: ${sample.length} chunks in ${(wall / 1000).toFixed(1)} s wall, ${(cpu / 1000).toFixed(1)} s CPU (${(sample.length / wall * 1000).toFixed(1)} chunks/s)${ex.info.dynamicQuantization && !r.batched ? ', one text per call' : ''}`);
    } finally {
      await ex.dispose();
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
