// Extraction benchmark (numbers, not pass/fail): on the all-MiniLM-L6-v2-shaped fixture and real code,
// side by side and interleaved in one process on the same threads:
//   A    transformers.js pipeline('feature-extraction'), mean pooling, batches of 32 in file order
//   ours the engine with default settings (mean pooling, same output)
//   C    the runtime's limit: the same ONNX graph, pre-tokenized, length-sorted equal-length groups
//        (no padding at all), nothing but session.run in the timed loop
// then: layer 2 of 6 (graph cut) vs the full model, 1 vs 2 threads, fp32 vs quantized.
//
//   npm run bench:extract -- [--quick] [--threads N] [--rounds R] [--chunks N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { planBatches, paddingRatio, DEFAULT_LIMITS } from '../src/core/extract/batch';
import { Extractor } from '../src/core/extract/extractor';
import { ensureFixtureModel, MINILM_MODEL } from '../test/fixtures/generate';
import { buildCorpus, REPO_ROOT } from './corpus';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string' },
    chunks: { type: 'string' },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results-extract.json') },
  },
});
const threads = Number(args.threads);
const rounds = Number(args.rounds ?? (args.quick ? 1 : 2));
// The whole corpus is ~8,400 chunks (1.3 M tokens): a few thousand, sampled evenly across files, keep
// a full run (three methods × rounds + variants) near a quarter of an hour on 2 cores.
const LIMIT = Number(args.chunks ?? (args.quick ? 300 : 2500));

interface Timing { seconds: number[]; best: number }
const timing = (seconds: number[]): Timing => ({ seconds, best: Math.min(...seconds) });

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function minCosine(a: Float32Array, b: Float32Array, dims: number): number {
  let worst = 1;
  for (let r = 0; r < a.length / dims; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let d = 0; d < dims; d++) {
      const x = a[r * dims + d], y = b[r * dims + d];
      ab += x * y; aa += x * x; bb += y * y;
    }
    worst = Math.min(worst, ab / Math.sqrt(aa * bb));
  }
  return worst;
}

async function main() {
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const fixture = ensureFixtureModel(MINILM_MODEL);
  const modelDir = fixture.dir;
  const ours = await Extractor.load({ model: modelDir, threads });
  log(`model ${modelDir} (${ours.info.numLayers} layers, hidden ${ours.info.hiddenSize}), ${threads} threads`);

  const corpus = await buildCorpus((t) => ours.countTokens(t), LIMIT);
  let texts = corpus.chunks.map((c) => c.text);
  let lengths = await ours.countTokens(texts);
  // The pipeline truncates at the model's maximum while we window: compare on texts that fit.
  const fits = lengths.map((n) => n <= ours.info.maxLength);
  const dropped = fits.filter((f) => !f).length;
  texts = texts.filter((_, i) => fits[i]);
  lengths = lengths.filter((_, i) => fits[i]);
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  log(`corpus: ${texts.length} chunks from ${corpus.files} files, ${realTokens} tokens (mean ${(realTokens / texts.length).toFixed(0)}, max ${Math.max(...lengths)})${dropped ? `, ${dropped} chunks over ${ours.info.maxLength} tokens left out` : ''}`);

  // Baseline A: transformers.js pipeline, as editor extensions use it.
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  const pipe = await pipeline('feature-extraction', modelDir, {
    dtype: 'fp32',
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  } as never);
  const runA = async () => {
    const out = new Float32Array(texts.length * ours.info.hiddenSize);
    for (let i = 0; i < texts.length; i += 32) {
      const t = await pipe(texts.slice(i, i + 32), { pooling: 'mean', normalize: false });
      out.set(t.data as Float32Array, i * ours.info.hiddenSize);
    }
    return out;
  };
  const fileOrderBatches = Array.from({ length: Math.ceil(texts.length / 32) }, (_, b) => lengths.slice(b * 32, b * 32 + 32).map((_, k) => b * 32 + k));

  // Ours.
  const recipe = { layer: 'last', pool: 'mean' as const };
  const runOurs = async () => ours.extract(texts, recipe);

  // Limit C: equal-length groups, tensors built before the clock starts.
  const session = await ort.InferenceSession.create(path.join(modelDir, 'onnx', 'model.onnx'), {
    graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1, intraOpNumThreads: threads,
  });
  const encoded = await (await import('tokenizers')).Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json')).encodeBatch(texts);
  const groups = new Map<number, number[]>();
  lengths.forEach((n, i) => groups.set(n, [...(groups.get(n) ?? []), i]));
  const feedsC: Record<string, ort.Tensor>[] = [];
  for (const [len, members] of groups) {
    const per = Math.max(1, Math.min(DEFAULT_LIMITS.maxBatchSize, Math.floor(DEFAULT_LIMITS.maxTokens / len)));
    for (let s = 0; s < members.length; s += per) {
      const part = members.slice(s, s + per);
      const ids = new BigInt64Array(part.length * len);
      part.forEach((m, r) => encoded[m].getIds().forEach((id, k) => { ids[r * len + k] = BigInt(id); }));
      const shape = [part.length, len];
      feedsC.push({
        input_ids: new ort.Tensor('int64', ids, shape),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), shape),
        token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), shape),
      });
    }
  }
  const runC = async () => {
    for (const feeds of feedsC) await session.run(feeds);
  };

  // Warm-up (session creation, first-run allocations) outside the clock.
  await pipe(texts.slice(0, 4), { pooling: 'mean' });
  await ours.extract(texts.slice(0, 4), recipe);
  await session.run(feedsC[0]);

  const times = { A: [] as number[], ours: [] as number[], C: [] as number[] };
  // CPU seconds (user + system, all threads) as well as wall seconds: on a shared machine CPU time is
  // far less disturbed by other processes than wall time is.
  const cpu = { A: [] as number[], ours: [] as number[], C: [] as number[] };
  const cpuSeconds = (since: NodeJS.CpuUsage) => { const u = process.cpuUsage(since); return (u.user + u.system) / 1e6; };
  let outA: Float32Array = new Float32Array();
  let outOurs: Float32Array = new Float32Array();
  let oursStats = (await ours.extract(texts.slice(0, 1), recipe)).stats;
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    let c = process.cpuUsage();
    outA = await runA();
    times.A.push((performance.now() - t) / 1000);
    cpu.A.push(cpuSeconds(c));
    log(`round ${r + 1}: A ${times.A[r].toFixed(1)} s`);
    t = performance.now();
    c = process.cpuUsage();
    const res = await runOurs();
    times.ours.push((performance.now() - t) / 1000);
    cpu.ours.push(cpuSeconds(c));
    outOurs = res.data;
    oursStats = res.stats;
    log(`round ${r + 1}: ours ${times.ours[r].toFixed(1)} s`);
    t = performance.now();
    c = process.cpuUsage();
    await runC();
    times.C.push((performance.now() - t) / 1000);
    cpu.C.push(cpuSeconds(c));
    log(`round ${r + 1}: C ${times.C[r].toFixed(1)} s`);
  }
  const A = timing(times.A), O = timing(times.ours), C = timing(times.C);
  const agreement = maxAbsDiff(outA, outOurs);

  // Variants of ours (one run each, same process and corpus).
  const timed = async (f: () => Promise<unknown>) => { const t = performance.now(); await f(); return (performance.now() - t) / 1000; };
  const layer2 = await timed(() => ours.extract(texts, { layer: '2', pool: 'mean' }));
  const full = await timed(() => ours.extract(texts, recipe));
  const nodes = { layer2: await ours.nodeCount('2'), full: await ours.nodeCount('last') };
  const one = await Extractor.load({ model: modelDir, threads: 1 });
  await one.extract(texts.slice(0, 4), recipe);
  const oneThread = await timed(() => one.extract(texts, recipe));
  await one.dispose();
  const q8 = await Extractor.load({ model: modelDir, threads, quantized: true });
  await q8.extract(texts.slice(0, 4), recipe);
  let q8Out: Float32Array = new Float32Array();
  const quantized = await timed(async () => { q8Out = (await q8.extract(texts, recipe)).data; });
  await q8.dispose();

  const paddedOurs = paddingRatio(lengths, planBatches(lengths, DEFAULT_LIMITS));
  const paddedA = paddingRatio(lengths, fileOrderBatches);
  const n = texts.length;
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.arch()}` },
    config: { quick: args.quick, threads, rounds, model: 'minilm-l6 fixture (all-MiniLM-L6-v2 shape, random weights)', batchLimits: DEFAULT_LIMITS },
    corpus: { chunks: n, files: corpus.files, sources: corpus.sources, tokens: realTokens, leftOutOverMax: dropped },
    throughput: {
      A: { seconds: A.seconds, chunksPerS: n / A.best, tokensPerS: realTokens / A.best, paddedPerReal: paddedA },
      ours: { seconds: O.seconds, chunksPerS: n / O.best, tokensPerS: realTokens / O.best, paddedPerReal: paddedOurs, breakdownLastRun: oursStats },
      C: { seconds: C.seconds, chunksPerS: n / C.best, tokensPerS: realTokens / C.best, paddedPerReal: 1 },
    },
    ratios: { oursOverA: A.best / O.best, oursOverC: C.best / O.best },
    cpuSeconds: { A: cpu.A, ours: cpu.ours, C: cpu.C, oursOverA: Math.min(...cpu.A) / Math.min(...cpu.ours), oursOverC: Math.min(...cpu.C) / Math.min(...cpu.ours) },
    agreement: { maxAbsDiffAvsOurs: agreement },
    variants: {
      layer2of6: { seconds: layer2, fullSeconds: full, costRatio: layer2 / full, nodes },
      threads: { one: oneThread, two: full, speedup: oneThread / full },
      quantized: { seconds: quantized, fp32Seconds: full, speedup: full / quantized, minCosineVsFp32: minCosine(q8Out, outOurs, ours.info.hiddenSize) },
    },
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  await ours.dispose();
  await session.release();

  const f = (x: number, d = 1) => x.toFixed(d);
  const rows = [
    ['', 'chunks/s', 'tokens/s', 'padded/real', 'best s'],
    ['A  transformers.js pipeline (batches of 32, file order)', f(n / A.best), f(realTokens / A.best, 0), f(paddedA, 2), f(A.best, 2)],
    ['ours  Embedding Lens engine (defaults)', f(n / O.best), f(realTokens / O.best, 0), f(paddedOurs, 2), f(O.best, 2)],
    ['C  ONNX Runtime limit (equal-length groups)', f(n / C.best), f(realTokens / C.best, 0), '1.00', f(C.best, 2)],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`\nExtraction, ${n} chunks (${realTokens} tokens) of real code, minilm-l6 fixture, ${threads} threads, best of ${rounds}`);
  console.log(`machine: ${results.machine.cpu} × ${results.machine.cpus}, ${results.machine.memoryGiB} GiB, node ${process.version}\n`);
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  console.log(`\nours / A = ${f(results.ratios.oursOverA, 2)}×   ours / C = ${f(results.ratios.oursOverC, 2)}   max |A − ours| = ${agreement.toExponential(1)}`);
  console.log(`CPU seconds (less sensitive to other load): A ${f(Math.min(...cpu.A), 2)}, ours ${f(Math.min(...cpu.ours), 2)}, C ${f(Math.min(...cpu.C), 2)} → ours/A ${f(results.cpuSeconds.oursOverA, 2)}×, ours/C ${f(results.cpuSeconds.oursOverC, 2)}`);
  console.log(`ours, where the time went (last run): tokenize ${f(oursStats.tokenizeMs, 0)} ms, ONNX Runtime ${f(oursStats.modelMs, 0)} ms, everything else ${f(oursStats.totalMs - oursStats.tokenizeMs - oursStats.modelMs, 0)} ms, ${oursStats.batches} batches`);
  console.log(`layer 2 of 6 (graph cut, ${nodes.layer2}/${nodes.full} nodes): ${f(layer2, 2)} s vs full ${f(full, 2)} s = ${f(layer2 / full, 2)} of the cost`);
  console.log(`threads: 1 → ${f(oneThread, 2)} s, ${threads} → ${f(full, 2)} s (${f(oneThread / full, 2)}× faster)`);
  console.log(`quantized (MatMulInteger): ${f(quantized, 2)} s vs fp32 ${f(full, 2)} s (${f(full / quantized, 2)}×), min cosine to fp32 ${f(results.variants.quantized.minCosineVsFp32, 4)}`);
  console.log(`peak RSS ${results.peakRssMiB} MiB (whole process: all three methods and the variants)`);

  fs.writeFileSync(args.out!, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), args.out!)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
