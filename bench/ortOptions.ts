// ONNX Runtime CPU options on the texts a full index embeds (bench/indexTokens.ts --texts): one model
// graph, the same token-budget batches as the engine (planBatches, per embed call of the indexer), each
// variant timed in wall and CPU seconds of this process, and every variant's mean-pooled vectors compared
// with the first variant's (a faster variant that gives other numbers is reported, never hidden).
//
//   tsx bench/ortOptions.ts --texts <file> [--onnx models/all-MiniLM-L6-v2/onnx/model.onnx]
//       [--sample 600] [--variants t2,t1,2x1,t2-nospin] [--optimized <file>] [--json <file>]
//
// Variants: `tN` one session with N intra-op threads; `PxN` P sessions of N threads each, the batches
// dealt round-robin and run concurrently (onnxruntime-node runs session.run off the main thread);
// suffix `-nospin` sets session.intra_op.allow_spinning = 0; `-bK` a token budget of K per batch
// (default 1024, the engine's); `-noarena` disables the CPU memory arena.
// --optimized writes the graph as ORT optimises it (level all) and prints its op types.
//
//   tsx bench/ortOptions.ts --texts <file> --graphs fp32=<model.onnx>,int8=<model.onnx> [--rounds 12]
//
// --graphs compares model graphs instead of options: one session each with the first variant's
// options (default t2, the engine's), timed in interleaved rounds (the order flips every round, so a
// change in the machine's load falls on all of them); per graph the total and the fastest round, wall
// and CPU, and the ratio to the first graph; the vectors are compared with the first graph's.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { planBatches, DEFAULT_LIMITS } from '../src/core/extract/batch';
import { decodeModel } from '../src/core/model/onnxGraph';
import { TextTokenizer } from '../src/core/model/tokenizer';

const REPO = path.resolve(__dirname, '..');

interface Variant { name: string; sessions: number; threads: number; spin: boolean; budget: number; arena: boolean }

function parseVariant(name: string): Variant {
  const m = /^(?:t(\d+)|(\d+)x(\d+))((?:-nospin|-b\d+|-noarena)*)$/.exec(name);
  if (!m) throw new Error(`Variant "${name}": use tN or PxN with -nospin / -bK / -noarena suffixes.`);
  const sessions = m[1] ? 1 : Number(m[2]);
  const threads = m[1] ? Number(m[1]) : Number(m[3]);
  const budget = /-b(\d+)/.exec(m[4])?.[1];
  return { name, sessions, threads, spin: !m[4].includes('-nospin'), budget: budget ? Number(budget) : DEFAULT_LIMITS.maxTokens, arena: !m[4].includes('-noarena') };
}

const H = 384;

/** Runs one padded batch and adds each text's mean-pooled, normalised vector into `pooled`; returns the padded token count. */
async function runPooled(session: ort.InferenceSession, batch: number[], enc: Array<{ ids: Int32Array }>, lens: number[], pooled: Float32Array): Promise<number> {
  const T = Math.max(...batch.map((i) => lens[i]));
  const ids = new BigInt64Array(batch.length * T);
  const mask = new BigInt64Array(batch.length * T);
  batch.forEach((i, b) => {
    for (let t = 0; t < lens[i]; t++) { ids[b * T + t] = BigInt(enc[i].ids[t]); mask[b * T + t] = 1n; }
  });
  const shape = [batch.length, T];
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, shape), attention_mask: new ort.Tensor('int64', mask, shape) };
  if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(batch.length * T), shape);
  const out = await session.run(feeds);
  const h = out[session.outputNames[0]].data as Float32Array;
  batch.forEach((i, b) => {
    const row = pooled.subarray(i * H, (i + 1) * H);
    row.fill(0);
    for (let t = 0; t < lens[i]; t++) for (let d = 0; d < H; d++) row[d] += h[(b * T + t) * H + d];
    let n = 0;
    for (let d = 0; d < H; d++) n += row[d] * row[d];
    n = Math.sqrt(n) || 1;
    for (let d = 0; d < H; d++) row[d] /= n;
  });
  return T * batch.length;
}

/** Batches per group of 128 texts (the indexer's embed calls), as the engine plans them. */
function indexerBatches(lens: number[], budget: number): number[][] {
  const batches: number[][] = [];
  for (let g = 0; g < lens.length; g += 128) {
    const idx = Array.from({ length: Math.min(128, lens.length - g) }, (_, k) => g + k);
    for (const b of planBatches(idx.map((i) => lens[i]), { maxTokens: budget, maxBatchSize: DEFAULT_LIMITS.maxBatchSize })) batches.push(b.map((k) => idx[k]));
  }
  return batches;
}

function sessionOptions(v: Variant): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1, intraOpNumThreads: v.threads,
    enableCpuMemArena: v.arena,
    ...(v.spin ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  };
}

/** --graphs: each graph in turn, round after round, the order flipped every round. */
async function compareGraphs(spec: string, rounds: number, v: Variant, picked: string[], tokenizer: TextTokenizer): Promise<Array<Record<string, unknown>>> {
  const graphs = spec.split(',').map((g) => { const [label, file] = g.split('='); return { label: label!, file: path.resolve(file!) }; });
  const enc = await tokenizer.encode(picked);
  const lens = enc.map((e) => Math.min(e.ids.length, 512));
  const tokens = lens.reduce((a, b) => a + b, 0);
  const batches = indexerBatches(lens, v.budget);
  const runs = await Promise.all(graphs.map(async (g) => ({
    ...g, session: await ort.InferenceSession.create(fs.readFileSync(g.file), sessionOptions(v)), pooled: new Float32Array(picked.length * H),
    wall: [] as number[], cpu: [] as number[],
  })));
  for (const r of runs) await runPooled(r.session, [batches[batches.length - 1][0]], enc, lens, r.pooled); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const r of round % 2 ? [...runs].reverse() : runs) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (const b of batches) await runPooled(r.session, b, enc, lens, r.pooled);
      r.wall.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(cpu0);
      r.cpu.push((c.user + c.system) / 1e6);
    }
  }
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const base = runs[0];
  const results = runs.map((r) => {
    let minCos = 1, meanCos = 0;
    for (let i = 0; i < picked.length; i++) {
      let dot = 0;
      for (let d = 0; d < H; d++) dot += base.pooled[i * H + d] * r.pooled[i * H + d];
      minCos = Math.min(minCos, dot);
      meanCos += dot / picked.length;
    }
    return {
      graph: r.label, file: path.relative(REPO, r.file), variant: v.name, texts: picked.length, tokens, batches: batches.length, rounds,
      wall: +sum(r.wall).toFixed(2), cpu: +sum(r.cpu).toFixed(2), tokensPerSecond: Math.round(tokens * rounds / sum(r.wall)), tokensPerCpuSecond: Math.round(tokens * rounds / sum(r.cpu)),
      speedupWall: +(sum(base.wall) / sum(r.wall)).toFixed(3), speedupCpu: +(sum(base.cpu) / sum(r.cpu)).toFixed(3),
      speedupFastestRound: +(Math.min(...base.wall) / Math.min(...r.wall)).toFixed(3),
      roundRatiosWall: r.wall.map((w, i) => +(base.wall[i] / w).toFixed(2)),
      minCosineToFirst: +minCos.toFixed(5), meanCosineToFirst: +meanCos.toFixed(5),
    };
  });
  await Promise.all(runs.map((r) => r.session.release()));
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      texts: { type: 'string' },
      onnx: { type: 'string', default: path.join(REPO, 'models/all-MiniLM-L6-v2/onnx/model.onnx') },
      tokenizer: { type: 'string' },
      sample: { type: 'string', default: '600' },
      variants: { type: 'string', default: 't2,t1,2x1,t2-nospin' },
      optimized: { type: 'string' },
      json: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      graphs: { type: 'string' },
      rounds: { type: 'string', default: '12' },
    },
  });
  const onnxFile = path.resolve(values.onnx!);
  const tokenizerFile = values.tokenizer ?? path.join(path.dirname(path.dirname(onnxFile)), 'tokenizer.json');
  const tokenizer = TextTokenizer.load(tokenizerFile);
  const bytes = fs.readFileSync(onnxFile);

  if (values.optimized) {
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: values.optimized });
    await s.release();
    const ops = new Map<string, number>();
    for (const n of decodeModel(fs.readFileSync(values.optimized)).graph!.node) ops.set(`${n.domain ? n.domain + ':' : ''}${n.opType}`, (ops.get(`${n.domain ? n.domain + ':' : ''}${n.opType}`) ?? 0) + 1);
    console.log(`Optimised graph (${values.optimized}): ${[...ops].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (!values.texts) return;
  }
  if (!values.texts) throw new Error('--texts <file> (from bench/indexTokens.ts --texts) is required.');

  // Sample: every k-th text of the index, in the indexer's call order (calls of ≤128 texts kept).
  const calls: string[][] = JSON.parse(fs.readFileSync(values.texts, 'utf8'));
  const all = calls.flat();
  const want = Math.min(all.length, Number(values.sample));
  const step = all.length / want;
  const picked: string[] = [];
  for (let i = 0; i < want; i++) picked.push(all[Math.floor(i * step)]);
  if (values.graphs) {
    const results = await compareGraphs(values.graphs, Number(values.rounds), parseVariant(values.variants!.split(',')[0]!), picked, tokenizer);
    for (const r of results) console.log(JSON.stringify(r));
    if (values.json) fs.writeFileSync(values.json, JSON.stringify({ results }, null, 2) + '\n');
    return;
  }
  const enc = await tokenizer.encode(picked);
  const MAX = 512;
  const lens = enc.map((e) => Math.min(e.ids.length, MAX));
  const tokens = lens.reduce((a, b) => a + b, 0);

  const results: Array<Record<string, unknown>> = [];
  let reference: Float32Array | undefined;
  for (const name of values.variants!.split(',')) {
    const v = parseVariant(name);
    const sessions = await Promise.all(Array.from({ length: v.sessions }, () => ort.InferenceSession.create(bytes, sessionOptions(v))));
    const batches = indexerBatches(lens, v.budget);
    const pooled = new Float32Array(picked.length * H);
    let padded = 0;
    const runBatch = async (session: ort.InferenceSession, batch: number[]) => { padded += await runPooled(session, batch, enc, lens, pooled); };
    // Warm-up: one short batch per session (first-run allocations), not timed.
    await Promise.all(sessions.map((s) => runBatch(s, [batches[batches.length - 1][0]])));
    pooled.fill(0);
    padded = 0;
    const repeat = Number(values.repeat);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < repeat; r++) {
      if (r) pooled.fill(0);
      if (v.sessions === 1) {
        for (const b of batches) await runBatch(sessions[0], b);
      } else {
        // Each session takes the next batch when it is free (a shared queue), so the lanes stay busy.
        let next = 0;
        await Promise.all(sessions.map(async (s) => { while (next < batches.length) await runBatch(s, batches[next++]); }));
      }
    }
    const wall = (performance.now() - t0) / 1000 / repeat;
    const c = process.cpuUsage(cpu0);
    const cpu = (c.user + c.system) / 1e6 / repeat;
    let minCos = 1;
    if (!reference) reference = pooled.slice();
    else {
      for (let i = 0; i < picked.length; i++) {
        let dot = 0;
        for (let d = 0; d < H; d++) dot += reference[i * H + d] * pooled[i * H + d];
        minCos = Math.min(minCos, dot);
      }
    }
    const r = { variant: name, texts: picked.length, tokens, paddedTokens: padded / repeat, batches: batches.length, wall: +wall.toFixed(2), cpu: +cpu.toFixed(2), tokensPerSecond: Math.round(tokens / wall), tokensPerCpuSecond: Math.round(tokens / cpu), minCosineToFirst: +minCos.toFixed(6) };
    results.push(r);
    console.log(JSON.stringify(r));
    await Promise.all(sessions.map((s) => s.release()));
  }
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ onnx: path.relative(REPO, onnxFile), results }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
