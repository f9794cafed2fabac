// Sharded extraction as a scheduler runs it: N = 4 CLI processes (the built bundle), one SIGKILLed
// mid-shard and restarted, then `merge`; the result is compared with a plain one-process `extract`.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { resolveShard, runShard, shardRange, parseShardSpec } from '../../src/core/extract/shard';
import { mergeShards } from '../../src/core/extract/shardMerge';
import { readNpy } from '../../src/core/store/npy';
import { readFaissIndex } from '../../src/core/store/faiss';
import { ensureFixtureModels, fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'embedding-lens.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cliAsync(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Deterministic texts of varied length (a seeded LCG over a small vocabulary). */
function makeTexts(n: number): string[] {
  const words = 'the user name returns parse http url function value list map reduce sort index query store vector layer model token cache retry socket'.split(' ');
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, (_, i) => {
    const len = 2 + Math.floor(next() * 24);
    return `${i} ` + Array.from({ length: len }, () => words[Math.floor(next() * words.length)]).join(' ');
  });
}

describe('shard ranges and scheduler variables', () => {
  test('every input index lands in exactly one shard', () => {
    for (const n of [0, 1, 7, 100, 2999]) {
      for (const count of [1, 2, 3, 4, 13]) {
        const seen = new Array<number>(n).fill(0);
        for (let k = 0; k < count; k++) {
          const r = shardRange(n, { index: k, count });
          for (let i = r.start; i < r.end; i++) seen[i]!++;
        }
        assert.ok(seen.every((c) => c === 1), `n=${n} N=${count}`);
      }
    }
  });
  test('--shard, Slurm arrays and Kubernetes Indexed Jobs', () => {
    assert.deepEqual(parseShardSpec('2/4'), { index: 2, count: 4 });
    assert.throws(() => parseShardSpec('4/4'), /outside 0\.\.3/);
    assert.throws(() => parseShardSpec('1of4'), /expects K\/N/);
    assert.equal(resolveShard(undefined, undefined, {}), null);
    assert.deepEqual(resolveShard(undefined, '4', { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 3, count: 4 });
    assert.deepEqual(resolveShard(undefined, '4', { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '4' }), { index: 3, count: 4 });
    assert.throws(() => resolveShard(undefined, '4', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '8' }), /SLURM_ARRAY_TASK_COUNT=8/);
    assert.deepEqual(resolveShard(undefined, '5', { JOB_COMPLETION_INDEX: '0' }), { index: 0, count: 5 });
    assert.throws(() => resolveShard(undefined, '5', { JOB_COMPLETION_INDEX: '5' }), /JOB_COMPLETION_INDEX=5.*outside/);
    assert.throws(() => resolveShard(undefined, '5', {}), /without a shard number/);
    assert.throws(() => resolveShard('1/4', '5', {}), /disagree/);
  });
});

suiteRequiring('sharded extract + merge (CLI processes)', !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) && 'dist/cli.js missing: run `npm run build` first', () => {
  let tmp: string;
  let model: string;
  let input: string;
  const N = 4;
  const texts = makeTexts(2000);
  const common = () => ['--model', model, '--input', input, '--layer', '-2', '--pool', 'mean', '--normalize', '--quiet'];
  const part = (k: number, base = 'emb') => path.join(tmp, `${base}.shard-${String(k).padStart(5, '0')}-of-${String(N).padStart(5, '0')}.npy`);

  before(() => {
    ensureFixtureModels();
    model = fixtureModelDir('bert-tiny');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-shard-'));
    input = path.join(tmp, 'in.txt');
    fs.writeFileSync(input, texts.join('\n') + '\n');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('4 shard processes, one killed with SIGKILL and restarted, merge equal to one process', async () => {
    const single = path.join(tmp, 'single.npy');
    const out = path.join(tmp, 'emb.npy');
    const [ref, ...others] = await Promise.all([
      cliAsync(['extract', ...common(), '--out', single]),
      ...[1, 2, 3].map((k) => cliAsync(['extract', ...common(), '--out', out, '--shard', `${k}/${N}`])),
    ]);
    assert.equal(ref.code, 0, ref.stderr);
    others.forEach((r) => assert.equal(r.code, 0, r.stderr));

    // Shard 0: killed once some checkpoints are on disk, then run again.
    const progressFile = `${part(0)}.progress.json`;
    const child = spawn(process.execPath, [BIN, 'extract', ...common(), '--out', out, '--shard', `0/${N}`, '--checkpoint-every', '25'], { cwd: ROOT });
    let killedAt = -1;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          const p = JSON.parse(fs.readFileSync(progressFile, 'utf8')) as { rowsDone: number };
          if (p.rowsDone >= 100) {
            killedAt = p.rowsDone;
            child.kill('SIGKILL');
            clearInterval(timer);
          }
        } catch { /* not there yet, or being replaced */ }
      }, 5);
      child.on('close', (code, signal) => {
        clearInterval(timer);
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`shard 0 ended (code ${code}) before it could be killed; killedAt=${killedAt}`));
      });
    });
    assert.ok(killedAt >= 100 && killedAt < 500, `killed at ${killedAt}`);
    assert.ok(!fs.existsSync(`${part(0)}.json`), 'no manifest after the kill');
    assert.ok(!fs.existsSync(part(0)), 'no published shard after the kill');
    const resumed = cli(['extract', ...common().filter((a) => a !== '--quiet'), '--out', out, '--shard', `0/${N}`, '--checkpoint-every', '25']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const m = /resuming after (\d+) of 500 rows/.exec(resumed.stderr);
    assert.ok(m, resumed.stderr);
    assert.ok(Number(m[1]) >= killedAt, `resumed from ${m[1]}, last checkpoint seen ${killedAt}`);
    assert.ok(!fs.existsSync(`${part(0)}.progress.json`));

    const merged = path.join(tmp, 'merged.npy');
    const r = cli(['merge', '--out', merged, ...[3, 1, 0, 2].map((k) => part(k))]);
    assert.equal(r.code, 0, r.stderr);
    const a = await readNpy(single);
    const b = await readNpy(merged);
    assert.deepEqual(b.shape, a.shape);
    assert.deepEqual(b.shape, [2000, 32]);
    let worst = 0;
    for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!));
    assert.ok(worst < 1e-5, `max abs difference ${worst}`);
    const manifest = JSON.parse(fs.readFileSync(`${merged}.json`, 'utf8'));
    assert.equal(manifest.count, 2000);
    assert.deepEqual(manifest.items.map((it: { index: number }) => it.index), texts.map((_, i) => i));
    assert.deepEqual(manifest.items.map((it: { rowStart: number }) => it.rowStart), texts.map((_, i) => i));
    assert.equal(manifest.layer, '-2');
    assert.equal(manifest.dims, 32);

    // Same rows into a FAISS flat index (ids = input index).
    const faiss = path.join(tmp, 'merged.faiss');
    await mergeShards({ out: faiss, shards: [0, 1, 2, 3].map((k) => part(k)), blockRows: 333 });
    const f = await readFaissIndex(faiss);
    assert.equal(f.ntotal, 2000);
    assert.deepEqual(Array.from(f.vectors), Array.from(b.data));
    assert.deepEqual(Array.from(f.ids!, Number), texts.map((_, i) => i));
  });

  test('one text per model call: the merged shards equal one process bit for bit', async () => {
    // The same batching on both sides (--max-tokens 1: every text alone; --threads 1): nothing may differ.
    const few = path.join(tmp, 'few.txt');
    fs.writeFileSync(few, texts.slice(0, 300).join('\n') + '\n');
    const args = ['--model', model, '--input', few, '--layer', '-2', '--pool', 'mean', '--normalize', '--quiet', '--max-tokens', '1', '--threads', '1'];
    const single = path.join(tmp, 'exact-single.npy');
    const out = path.join(tmp, 'exact.npy');
    const runs = await Promise.all([cliAsync(['extract', ...args, '--out', single]), ...[0, 1, 2].map((k) => cliAsync(['extract', ...args, '--out', out, '--shard', `${k}/3`]))]);
    runs.forEach((r) => assert.equal(r.code, 0, r.stderr));
    const merged = path.join(tmp, 'exact-merged.npy');
    const r = cli(['merge', '--out', merged, ...[2, 0, 1].map((k) => path.join(tmp, `exact.shard-${String(k).padStart(5, '0')}-of-00003.npy`))]);
    assert.equal(r.code, 0, r.stderr);
    const a = await readNpy(single);
    const b = await readNpy(merged);
    assert.deepEqual(b.shape, [300, 32]);
    const bits = (d: typeof a.data) => new Uint32Array(d.buffer, d.byteOffset, d.length);
    assert.deepEqual(bits(b.data), bits(a.data));
  });

  async function assertNothingWritten(out: string) {
    assert.ok(!fs.existsSync(out), `${out} was written`);
    assert.ok(!fs.existsSync(`${out}.json`), `${out}.json was written`);
    assert.deepEqual(fs.readdirSync(path.dirname(out)).filter((f) => f.includes(path.basename(out))), [], 'temp files left');
  }

  test('bad merges: missing, doubled, two recipes, truncated, damaged, unfinished — a clear error and nothing written', async () => {
    const bad = fs.mkdtempSync(path.join(tmp, 'bad-'));
    const out = path.join(bad, 'out.npy');
    const all = [0, 1, 2, 3].map((k) => part(k));
    const merge = (shards: string[]) => mergeShards({ out, shards });

    await assert.rejects(merge([all[0]!, all[2]!, all[3]!]), /missing shard 1\/4 \(input rows 500–999\)/);
    await assertNothingWritten(out);
    await assert.rejects(merge([...all, all[2]!]), /shard 2\/4 is given 2 times/);
    await assertNothingWritten(out);

    // Shard 1 made with another layer (in this process: the same code path as the CLI's).
    const ex = await Extractor.load({ model });
    try {
      await runShard(ex, { texts, recipe: { layer: '-1', pool: 'mean', normalize: true }, spec: { index: 1, count: N }, out: path.join(tmp, 'other.npy'), dtype: 'float32' });
      await assert.rejects(merge([all[0]!, part(1, 'other'), all[2]!, all[3]!]), /differ in layer: "-2" vs "-1"/);
      await assertNothingWritten(out);
      // A scheduler retry of a finished shard does nothing; with another recipe it is refused, naming the field.
      const again = await runShard(ex, { texts, recipe: { layer: '-2', pool: 'mean', normalize: true }, spec: { index: 0, count: N }, out: path.join(tmp, 'emb.npy'), dtype: 'float32' });
      assert.equal(again.alreadyComplete, true);
      await assert.rejects(
        runShard(ex, { texts, recipe: { layer: '-2', pool: 'max', normalize: true }, spec: { index: 2, count: N }, out: path.join(tmp, 'emb.npy'), dtype: 'float32' }),
        /made with pooling "mean", this run asks for "max"/,
      );
    } finally {
      await ex.dispose();
    }

    // A truncated copy of shard 3.
    const copies = all.map((f) => {
      const dest = path.join(bad, path.basename(f));
      for (const suffix of ['', '.json', '.items.jsonl']) fs.copyFileSync(f + suffix, dest + suffix);
      return dest;
    });
    fs.truncateSync(copies[3]!, fs.statSync(copies[3]!).size - 128);
    await assert.rejects(merge(copies), /emb\.shard-00003-of-00004\.npy has \d+ bytes, its manifest says \d+: the file is truncated/);
    await assertNothingWritten(out);

    // Same size, one byte changed: caught by the checksum while streaming; the half-written output is removed.
    fs.copyFileSync(all[3]!, copies[3]!);
    const fd = fs.openSync(copies[3]!, 'r+');
    fs.writeSync(fd, Buffer.from([0x7f]), 0, 1, 4000);
    fs.closeSync(fd);
    await assert.rejects(merge(copies), /does not match the checksum/);
    await assertNothingWritten(out);

    // A shard whose run was killed (no manifest yet) is named as unfinished; through the CLI, exit code 1.
    fs.renameSync(`${copies[1]}.json`, `${copies[1]}.progress.json`);
    const r = cli(['merge', '--out', out, ...copies]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /emb\.shard-00001-of-00004\.npy is not finished: its run stopped part-way/);
    await assertNothingWritten(out);
  });
});
