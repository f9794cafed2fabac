// Export a vector store to the interchange formats: .npy, .h5, .faiss (Flat or HNSW).
// Every export writes `<out>.json` beside the file: the store's recipe, and per row its label (the id in
// the FAISS IndexIDMap), chunk id, path and line range, so rows can be mapped back to code.

import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import hnswlib from 'hnswlib-node';
import { TOOL_VERSION, UserError, type EmbeddingManifest } from '../types';
import { Catalog } from '../index/catalog';
import { hashText } from '../index/files';
import { CATALOG_FILE } from '../workspace/layout';
import { writeFileAtomic } from './atomicFile';
import { encodeFaissFlat, encodeFaissHnswFlat, writeFaissFile, type FaissMetric } from './faiss';
import { H5Writer } from './hdf5';
import { parseHnswlibFile, type HnswlibGraph } from './hnswlibFile';
import { writeNpy } from './npy';
import { VectorStore, readStoreGraph, type StoreMetric } from './vectorStore';

export type ExportFormat = 'npy' | 'h5' | 'faiss' | 'faiss-hnsw';

export interface ExportOptions {
  format: ExportFormat;
  out: string;
  dtype?: 'float32' | 'float16';
  gzip?: number;
}

function faissMetricOf(metric: StoreMetric): FaissMetric {
  // hnswlib's cosine space stores normalized vectors and ranks by inner product: FAISS IP on the same vectors.
  return metric === 'l2' ? 'l2' : 'ip';
}

/**
 * A manifest in the engine's shape, from the store's recipe. The resolved layers, their combination and
 * the ONNX file are recorded with the recipe since they were added; a store indexed before that is
 * refused rather than exported with empty or guessed attributes.
 */
function manifestOf(store: VectorStore, dir: string): EmbeddingManifest {
  const r = store.recipe;
  if (!r.layers?.length || !r.layerCombine || !r.modelFile) {
    throw new UserError(
      `The index in ${dir} was built before it recorded its resolved layers and model file, which an .h5 export carries.`,
      'Rebuild the index, then export again (.npy and .faiss exports do not need them).',
      { code: 'INDEX_DAMAGED', repair: 'rebuild', dir },
    );
  }
  return {
    tool: 'embedding-lens',
    toolVersion: TOOL_VERSION,
    model: r.model,
    modelHash: r.modelHash,
    modelFile: r.modelFile,
    layer: r.layer,
    layers: [...r.layers],
    layerCombine: r.layerCombine,
    pooling: r.pooling,
    wordPooling: r.wordPooling,
    normalize: r.normalize,
    excludeSpecialTokens: !!r.excludeSpecialTokens,
    dims: r.dims,
    dtype: 'float32',
    count: store.count,
    createdAt: new Date().toISOString(),
  };
}

/** The store's HNSW graph with internal ids 0..n-1 and no deleted nodes (rebuilt in memory if needed). */
async function liveGraph(dir: string, store: VectorStore): Promise<HnswlibGraph> {
  const { graph } = await readStoreGraph(dir);
  // The base graph alone is the store only when no delta rows are waiting for a compaction.
  if (!graph.deleted.some((d) => d === 1) && store.stats().deltaRows === 0) return graph;
  // FAISS HNSW has no deletion marks and no delta rows: rebuild from the live vectors, as compaction would.
  const snap = store.snapshot();
  const s = store.stats();
  const index = new hnswlib.HierarchicalNSW(s.metric, s.dims);
  index.initIndex(Math.max(16, snap.labels.length), s.M, s.efConstruction, 100);
  snap.labels.forEach((label, i) => index.addPoint(Array.from(snap.vectors.subarray(i * s.dims, (i + 1) * s.dims)), label));
  const tmp = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'el-export-')), 'index.hnsw');
  try {
    index.writeIndexSync(tmp);
    return parseHnswlibFile(await fsp.readFile(tmp), s.dims, tmp);
  } finally {
    await fsp.rm(path.dirname(tmp), { recursive: true, force: true });
  }
}

/** `textUnavailable` (.h5): chunks whose file changed since indexing (their /text is empty). */
export async function exportStore(dir: string, options: ExportOptions): Promise<{ rows: number; files: string[]; textUnavailable?: number }> {
  const store = await VectorStore.open(dir);
  const dims = store.dims;
  const metric = faissMetricOf(store.metric);
  let labels: ArrayLike<number>;
  let records: { id: string; path: string; startLine: number; endLine: number; contentHash: string }[];
  let textUnavailable: number | undefined;
  switch (options.format) {
    case 'npy': {
      const snap = store.snapshot();
      ({ labels, records } = snap);
      await writeNpy(options.out, snap.vectors, dims, options.dtype ?? 'float32');
      break;
    }
    case 'h5': {
      const snap = store.snapshot();
      ({ labels, records } = snap);
      const manifest = manifestOf(store, dir);
      const texts = await chunkTexts(dir, store, snap.records);
      textUnavailable = texts.filter((t) => t === undefined).length;
      const w = await H5Writer.create(options.out, { dims, dtype: options.dtype, gzip: options.gzip, manifest, withText: true });
      try {
        await w.append(snap.vectors, snap.records.map((r, i) => ({ ...r, text: texts[i] ?? '' })));
        await w.close();
      } catch (err) {
        await w.abort();
        throw err;
      }
      break;
    }
    case 'faiss': {
      const snap = store.snapshot();
      ({ labels, records } = snap);
      await writeFaissFile(options.out, encodeFaissFlat({ vectors: snap.vectors, dims, ids: snap.labels, metric }));
      break;
    }
    case 'faiss-hnsw': {
      const g = await liveGraph(dir, store);
      labels = Array.from(g.labels);
      records = Array.from(g.labels, (l) => {
        const r = store.recordOfLabel(l);
        if (!r) throw new UserError(`The store in ${dir} is inconsistent (label ${l} has no metadata).`, 'Rebuild the index.');
        return r;
      });
      const bytes = encodeFaissHnswFlat({
        vectors: g.vectors,
        dims,
        ids: labels,
        metric,
        efSearch: store.stats().efSearch,
        graph: { M: g.M, levels: g.levels, neighbours: g.neighbours, entryPoint: g.entryPoint, maxLevel: g.maxLevel, efConstruction: g.efConstruction },
      });
      await writeFaissFile(options.out, bytes);
      break;
    }
    default:
      throw new UserError(`Unknown export format "${options.format as string}" (npy, h5, faiss, faiss-hnsw).`);
  }
  const side = `${options.out}.json`;
  await writeFileAtomic(
    side,
    JSON.stringify(
      {
        tool: 'embedding-lens',
        toolVersion: TOOL_VERSION,
        source: path.resolve(dir),
        recipe: store.recipe,
        metric: store.metric,
        faissMetric: options.format.startsWith('faiss') ? metric : undefined,
        vectorsNormalized: store.metric === 'cosine',
        rows: Array.from(labels, (label, i) => ({ label, ...records[i] })),
      },
      null,
      1,
    ) + '\n',
  );
  return { rows: labels.length, files: [options.out, side], ...(textUnavailable !== undefined ? { textUnavailable } : {}) };
}

/**
 * Each chunk's text, from the indexed folder (the catalog names it): the lines the chunk covers,
 * kept only when they still hash to the chunk's content hash (undefined otherwise: the file changed
 * since indexing, or is gone), so /text never shows other text than the vector was made from.
 */
async function chunkTexts(dir: string, store: VectorStore, chunks: { path: string; startLine: number; endLine: number; contentHash: string }[]): Promise<(string | undefined)[]> {
  let root: string | undefined;
  try {
    root = (await Catalog.open(path.join(dir, CATALOG_FILE), { identity: store.recipe, root: '' })).catalog.root || undefined;
  } catch {
    root = undefined;
  }
  if (!root) return chunks.map(() => undefined);
  const files = new Map<string, Promise<string[] | null>>();
  return Promise.all(chunks.map(async (c) => {
    let lines = files.get(c.path);
    if (!lines) files.set(c.path, (lines = fsp.readFile(path.join(root, c.path), 'utf8').then((t) => t.split(/\r?\n/), () => null)));
    const text = (await lines)?.slice(c.startLine - 1, c.endLine).join('\n');
    return text !== undefined && hashText(text) === c.contentHash ? text : undefined;
  }));
}
