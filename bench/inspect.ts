// The inspector's maps and neighbours per layer, measured on a real index (the real all-MiniLM-L6-v2
// over a folder, built beforehand with `embedding-lens index`):
//
//  1. Map quality: on the panel's sample of the index (800 evenly spaced chunks, as src/worker/engine.ts
//     samples), how many of each chunk's 10 nearest neighbours (cosine, full dims) stay among its 10
//     nearest on the map (k-NN preservation) and trustworthiness T(10), for the 2-D PCA and for UMAP
//     (src/core/map/neighbourMap.ts), with the CPU time of each.
//  2. Neighbours per layer, two ways:
//     a. multi-layer index: every chunk pooled at layers first / middle / last in one pass
//        (Extractor.extractMany) — its extra time over pooling one layer, and its size;
//     b. on the fly (what the panel does, src/core/search/layerNeighbours.ts): the C nearest chunks at
//        the index's layer re-embedded at each layer — its time per query, and how many of the exact
//        10 nearest at layers first / middle (from a) it finds among its candidates.
//
//   tsx bench/inspect.ts --root <folder> --storage <dir> [--model <folder>] [--sample 800]
//                        [--timing-chunks 200] [--queries 40] [--candidates 100] [--out bench/results-inspect.json]
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Extractor } from '../src/core/extract/extractor';
import { mapQuality, umap2 } from '../src/core/map/neighbourMap';
import { pca2 } from '../src/core/map/pca';
import { VectorStore } from '../src/core/store/vectorStore';
import type { Recipe } from '../src/core/types';
import { sampleIndices } from '../src/core/workspace/workspace';

const REPO = path.resolve(__dirname, '..');

/** Wall and CPU seconds of `fn` (CPU = user + system of this process, all threads). */
async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

function topK(vectors: Float32Array, dims: number, query: number, k: number, among?: number[]): number[] {
  const q = vectors.subarray(query * dims, (query + 1) * dims);
  const ids = among ?? Array.from({ length: vectors.length / dims }, (_, i) => i);
  const scored = ids.filter((i) => i !== query).map((i) => {
    let s = 0;
    for (let d = 0; d < dims; d++) s += q[d] * vectors[i * dims + d];
    return { i, s };
  });
  return scored.sort((a, b) => b.s - a.s).slice(0, k).map((x) => x.i);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      storage: { type: 'string' },
      model: { type: 'string', default: path.resolve(REPO, '..', 'shared', 'models', 'all-MiniLM-L6-v2') },
      sample: { type: 'string', default: '800' },
      'timing-chunks': { type: 'string', default: '200' },
      queries: { type: 'string', default: '40' },
      candidates: { type: 'string', default: '100' },
      'fly-queries': { type: 'string', default: '3' },
      out: { type: 'string', default: path.join(REPO, 'bench', 'results-inspect.json') },
    },
  });
  if (!values.root || !values.storage) {
    console.error('Give --root <indexed folder> and --storage <its index folder> (build it with `embedding-lens index <folder> --model <model> --storage <dir>`).');
    process.exitCode = 1;
    return;
  }
  const stores = path.join(values.storage, 'stores');
  const storeName = (await fs.readdir(stores))[0];
  const store = await VectorStore.open(path.join(stores, storeName));
  const manifest = JSON.parse(await fs.readFile(path.join(stores, storeName, 'manifest.json'), 'utf8'));
  const snap = store.snapshot();
  const dims = store.dims;
  const N = snap.records.length;
  console.error(`index: ${N} chunks × ${dims} (${manifest.recipe.model}, layer ${manifest.recipe.layer}, ${manifest.recipe.pooling})`);

  // 1. Map quality on the panel's sample.
  const picked = sampleIndices(N, Number(values.sample));
  const n = picked.length;
  const sample = new Float32Array(n * dims);
  picked.forEach((idx, row) => sample.set(snap.vectors.subarray(idx * dims, (idx + 1) * dims), row * dims));
  const pca = await timed(() => pca2(sample, n, dims));
  const umap = await timed(() => umap2(sample, dims));
  const qPca = mapQuality(sample, dims, pca.value.coords, 10);
  const qUmap = mapQuality(sample, dims, umap.value, 10);
  const variance = (pca.value.variances[0] + pca.value.variances[1]) / pca.value.totalVariance;
  console.error(`map (${n} of ${N}): PCA kept ${qPca.kept.toFixed(3)} trust ${qPca.trust.toFixed(3)} (${pca.cpu.toFixed(2)} s CPU) · UMAP kept ${qUmap.kept.toFixed(3)} trust ${qUmap.trust.toFixed(3)} (${umap.cpu.toFixed(2)} s CPU)`);

  // 2. Layers.
  const extractor = await Extractor.load({ model: values.model!, offline: true });
  const L = extractor.info.numLayers;
  const layers = [1, Math.ceil(L / 2), L];
  const base: Recipe = { layer: 'last', pool: manifest.recipe.pooling, normalize: manifest.recipe.normalize };
  const files = new Map<string, string[]>();
  const texts: string[] = [];
  for (const r of snap.records) {
    let lines = files.get(r.path);
    if (!lines) files.set(r.path, (lines = (await fs.readFile(path.join(values.root, r.path), 'utf8')).split(/\r?\n/)));
    texts.push(lines.slice(r.startLine - 1, r.endLine).join('\n'));
  }
  const recipes = layers.map((l) => ({ ...base, layer: String(l) }));
  await extractor.prepare(base);
  await extractor.extractMany(texts.slice(0, 4), recipes); // sessions built before timing

  // 2a. Cost of pooling three layers instead of one, on the same chunks.
  const T = Math.min(N, Number(values['timing-chunks']));
  const timingTexts = sampleIndices(N, T).map((i) => texts[i]);
  const one = await timed(() => extractor.extract(timingTexts, base));
  const three = await timed(() => extractor.extractMany(timingTexts, recipes));
  console.error(`multi-layer: ${T} chunks, last only ${one.wall.toFixed(1)} s (${one.cpu.toFixed(1)} s CPU), layers ${layers.join('/')} ${three.wall.toFixed(1)} s (${three.cpu.toFixed(1)} s CPU)`);

  // Every chunk at the three layers: the multi-layer index's vectors, and the ground truth below.
  const all = await timed(() => extractor.extractMany(texts, recipes));
  const byLayer = all.value.map((r) => r.data);
  const lastVectors = byLayer[2];
  // The re-embedded last layer must be the index's own vectors (same recipe): a check of the pipeline.
  let worst = 0;
  for (let i = 0; i < N * dims; i++) worst = Math.max(worst, Math.abs(lastVectors[i] - snap.vectors[i]));

  // 2b. Candidates from the index's layer vs the exact neighbours at each layer.
  const Q = Math.min(N, Number(values.queries));
  const C = Number(values.candidates);
  const recall = layers.map(() => 0);
  for (const q of sampleIndices(N, Q)) {
    const candidates = topK(lastVectors, dims, q, C);
    layers.forEach((_, li) => {
      const exact = topK(byLayer[li], dims, q, 10);
      const fly = new Set(topK(byLayer[li], dims, q, 10, candidates));
      recall[li] += exact.filter((i) => fly.has(i)).length / 10;
    });
  }
  const recallAt10 = recall.map((r) => r / Q);
  console.error(`on the fly, ${C} candidates: recall@10 vs exact at layers ${layers.join('/')}: ${recallAt10.map((r) => r.toFixed(3)).join(' / ')}`);

  // Time of one on-the-fly query: embed the text and its C candidates at the three layers.
  const flyQueries = sampleIndices(N, Number(values['fly-queries']));
  const flyTimes: { wall: number; cpu: number }[] = [];
  for (const q of flyQueries) {
    const candidates = topK(lastVectors, dims, q, C);
    const t = await timed(() => extractor.extractMany([texts[q], ...candidates.map((i) => texts[i])], recipes));
    flyTimes.push({ wall: t.wall, cpu: t.cpu });
  }
  const flyWall = flyTimes.reduce((a, t) => a + t.wall, 0) / flyTimes.length;
  const flyCpu = flyTimes.reduce((a, t) => a + t.cpu, 0) / flyTimes.length;
  await extractor.dispose();

  const result = {
    command: `tsx bench/inspect.ts --root ${values.root} --storage ${values.storage} --model ${values.model} --sample ${values.sample} --timing-chunks ${values['timing-chunks']} --queries ${values.queries} --candidates ${values.candidates}`,
    date: new Date().toISOString(),
    index: { chunks: N, dims, model: manifest.recipe.model, layer: manifest.recipe.layer, pooling: manifest.recipe.pooling, reembeddedMaxAbsDiff: worst },
    map: {
      points: n, of: N, k: 10,
      pca: { ...qPca, cpuS: pca.cpu, wallS: pca.wall, varianceExplained2: variance },
      umap: { ...qUmap, cpuS: umap.cpu, wallS: umap.wall },
    },
    multiLayer: {
      layers,
      timingChunks: T,
      oneLayer: { wallS: one.wall, cpuS: one.cpu },
      threeLayers: { wallS: three.wall, cpuS: three.cpu },
      allChunksThreeLayers: { wallS: all.wall, cpuS: all.cpu },
      bytesPerLayer: N * dims * 4,
      bytesThreeLayers: 3 * N * dims * 4,
    },
    onTheFly: { candidates: C, queries: Q, recallAt10: Object.fromEntries(layers.map((l, i) => [`layer${l}`, recallAt10[i]])), perQuery: { wallS: flyWall, cpuS: flyCpu } },
  };
  await fs.writeFile(values.out!, JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
