// Export a vector store to the interchange formats: .npy, .h5, .faiss (Flat or HNSW).
// Every export writes `<out>.json` beside the file: the store's recipe, and per row its label (the id in
// the FAISS IndexIDMap), chunk id, path and line range, so rows can be mapped back to code.

import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import hnswlib from 'hnswlib-node';
import { TOOL_VERSION, UserError, type EmbeddingManifest } from '../types';
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

/** A manifest in the engine's shape, from what a store knows (layers etc. are not stored there). */
function manifestOf(store: VectorStore): EmbeddingManifest {
  const r = store.recipe;
  return {
    tool: 'embedding-lens',
    toolVersion: TOOL_VERSION,
    model: r.model,
    modelHash: r.modelHash,
    modelFile: '',
    layer: r.layer,
    layers: [],
    layerCombine: 'single',
    pooling: r.pooling,
    wordPooling: r.wordPooling,
    normalize: r.normalize,
    excludeSpecialTokens: false,
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

export async function exportStore(dir: string, options: ExportOptions): Promise<{ rows: number; files: string[] }> {
  const store = await VectorStore.open(dir);
  const dims = store.dims;
  const metric = faissMetricOf(store.metric);
  let labels: ArrayLike<number>;
  let records: { id: string; path: string; startLine: number; endLine: number; contentHash: string }[];
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
      const w = await H5Writer.create(options.out, { dims, dtype: options.dtype, gzip: options.gzip, manifest: manifestOf(store) });
      try {
        await w.append(snap.vectors, snap.records);
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
  return { rows: labels.length, files: [options.out, side] };
}
