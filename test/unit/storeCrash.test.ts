// Crash safety of the vector store: a child process commits delta segments and compactions over and
// over; we SIGKILL it at random instants inside a delta save or inside a compaction, many times, and
// after every kill the store must load (checksums pass) holding exactly an id set the child had
// committed: no chunk lost, none duplicated, never a mix, never a broken store.
// Also: a compaction that fails part-way (a file-size limit, the same short write a full disk gives)
// leaves the previous generation in place and the message says so.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { VectorStore } from '../../src/core/store/vectorStore';

const KILLS = Number(process.env.STORE_CRASH_KILLS ?? 20);
const BATCH = 40; // vectors added per save (small, so that most of the child's time is spent saving)
const DIMS = 32;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-crash-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const recipe = { model: 'crash', modelHash: '0', layer: 'last', pooling: 'mean' as const, normalize: false, dims: DIMS };

/**
 * The child: open (or create) the store, then forever: add BATCH vectors (replacing a few, deleting a
 * path now and then), save (a delta segment), and every few saves run a compaction (a new base).
 * Before each commit it prints the digest of the id set that commit will hold; after it, the same.
 */
function childScript(dir: string): string {
  const storeModule = JSON.stringify(path.resolve('src/core/store/vectorStore.ts'));
  return `
import { createHash } from 'node:crypto';
import { VectorStore } from ${storeModule};
const digest = (s) => createHash('sha256').update(s.snapshot().records.map((r) => r.id).sort().join(',')).digest('hex').slice(0, 16);
(async () => {
  const recipe = ${JSON.stringify(recipe)};
  const s = await VectorStore.openOrCreate(${JSON.stringify(dir)}, recipe,
    { compactMinDeleted: 50, compactRatio: 0.2, deltaMinRows: 120, deltaShare: 0.2, maxDeltaSegments: 6 });
  console.log('OPEN ' + digest(s));
  let seed = s.count + 1;
  for (let round = 1; ; round++) {
    const v = new Float32Array(${BATCH} * ${DIMS});
    for (let i = 0; i < v.length; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; v[i] = seed / 2147483648 - 0.5; }
    const base = s.count + round * 100000;
    const recs = Array.from({ length: ${BATCH} }, (_, i) => ({ id: 'c' + (base + i), path: 'p' + ((base + i) % 13), startLine: i, endLine: i, contentHash: '' }));
    s.upsert(recs, v);
    if (round % 3 === 0) { const removed = s.deleteByPath('p' + (round % 13)); s.upsert(recs.slice(0, removed).map((r, i) => ({ ...r, id: 'r' + base + '-' + i })), v.subarray(0, removed * ${DIMS})); }
    console.log('SAVING ' + digest(s));
    await s.save();
    console.log('SAVED ' + digest(s));
    if (s.needsCompaction()) {
      console.log('COMPACTING ' + digest(s));
      await s.compactIfNeeded();
      console.log('COMPACTED ' + digest(s));
    }
  }
})();
`;
}

function idDigest(store: VectorStore): string {
  return createHash('sha256').update(store.snapshot().records.map((r) => r.id).sort().join(',')).digest('hex').slice(0, 16);
}

describe('vector store crash safety', () => {
  it(`survives ${KILLS} SIGKILLs at random points of delta saves and of compactions`, { timeout: 240_000 }, async () => {
    const dir = path.join(tmp, 'store');
    const script = path.join(tmp, 'saver.ts');
    fs.writeFileSync(script, childScript(dir));
    const landed = { SAVING: 0, COMPACTING: 0 };
    for (let k = 0; k < KILLS; k++) {
      // Half of the kills aim at a compaction, half at a delta save; the instant inside is random.
      const target = k % 2 === 0 ? 'COMPACTING ' : 'SAVING ';
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (out.includes('OPEN ') && out.slice(out.indexOf('OPEN ')).includes(target)) {
            clearInterval(t);
            resolve();
          }
        }, 1);
        child.on('exit', () => {
          clearInterval(t);
          reject(new Error(`child exited early: ${err}`));
        });
      });
      await new Promise((r) => setTimeout(r, Math.random() * (target === 'SAVING ' ? 15 : 60)));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      child.removeAllListeners('exit');
      // The id sets the child committed: the one it opened and every SAVED / COMPACTED line; and the
      // commit in flight (its manifest may have been renamed just before the kill, before the report).
      const lines = out.split('\n').filter((l) => l.length > 0);
      const committed = new Set(lines.filter((l) => /^(OPEN|SAVED|COMPACTED) /.test(l)).map((l) => l.split(' ')[1]));
      const last = lines[lines.length - 1];
      const inFlight = /^(SAVING|COMPACTING) /.test(last) ? last.split(' ')[1] : undefined;
      if (inFlight) landed[last.split(' ')[0] as 'SAVING' | 'COMPACTING']++;
      const store = await VectorStore.open(dir, recipe); // throws if any file is torn or mismatched
      const snap = store.snapshot();
      // No chunk duplicated: every id once, every label once, and the count agrees.
      assert.equal(new Set(snap.records.map((r) => r.id)).size, snap.records.length);
      assert.equal(snap.records.length, store.count);
      // No chunk lost: the id set is exactly one that the child committed (or the one in flight).
      const got = idDigest(store);
      assert.ok(committed.has(got) || got === inFlight, `the store holds an id set (${got}) that was never committed`);
      if (store.count > 0) assert.equal(store.query(new Float32Array(DIMS).fill(0.1), 5).length, 5);
      for (const r of snap.records.slice(0, 50)) assert.equal(store.get(r.id)?.path, r.path);
      const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      for (const f of [m.files.index.name, m.files.metadata.name, ...m.deltas.map((d: { name: string }) => d.name)]) assert.ok(fs.existsSync(path.join(dir, f)), f);
    }
    console.log(`crash test: ${KILLS} kills, ${landed.SAVING} inside a delta save, ${landed.COMPACTING} inside a compaction`);
    assert.ok(landed.SAVING > 0, 'no kill landed during a delta save: the test did not test anything');
    assert.ok(landed.COMPACTING > 0, 'no kill landed during a compaction: the test did not test anything');
  });

  it('a reader opening while another process commits deltas and compactions always gets a committed generation', { timeout: 120_000 }, async () => {
    // Probabilistic: an open that overlaps a commit's sweep is what this catches (how often one does
    // depends on the machine's load); it fails whenever a reader reports a generation's files as damage.
    const dir = path.join(tmp, 'readers');
    const script = path.join(tmp, 'writer.ts');
    fs.writeFileSync(script, childScript(dir));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      while (!/COMPACTED/.test(out)) await new Promise((r) => setTimeout(r, 20));
      // At least 40 opens, and more until the writer has committed in between: on a loaded machine the
      // writer's commits can be further apart than 40 opens (bounded by the time limit below).
      const generations = new Set<number>();
      const until = Date.now() + 60_000;
      let opens = 0;
      while (opens < 40 || (generations.size < 2 && Date.now() < until)) {
        const store = await VectorStore.open(dir, recipe); // a sweep of the generation being read is retried, never reported
        generations.add(store.generation);
        const snap = store.snapshot();
        assert.equal(new Set(snap.records.map((r) => r.id)).size, store.count);
        opens++;
      }
      console.log(`concurrent readers: ${opens} opens saw ${generations.size} generations`);
      assert.ok(generations.size > 1, 'the writer did not commit while the reader opened: the test did not test anything');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a short write during a compaction (file-size limit, as on a full disk) keeps the previous generation and says so', async (t) => {
    if (process.platform === 'win32') return t.skip('needs ulimit');
    const dir = path.join(tmp, 'limited');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(
      Array.from({ length: 200 }, (_, i) => ({ id: `c${i}`, path: 'p', startLine: i, endLine: i, contentHash: '' })),
      Float32Array.from({ length: 200 * DIMS }, (_, i) => Math.sin(i)),
    );
    s.compact();
    await s.save();
    const gen = s.generation;
    const size = fs.statSync(path.join(dir, `index.${gen}.hnsw`)).size;
    const script = path.join(tmp, 'grow.ts');
    fs.writeFileSync(
      script,
      `import { VectorStore } from ${JSON.stringify(path.resolve('src/core/store/vectorStore.ts'))};
      process.on('SIGXFSZ', () => {}); // get EFBIG / short writes instead of being killed
      (async () => {
        const s = await VectorStore.open(${JSON.stringify(dir)});
        s.upsert(Array.from({ length: 2000 }, (_, i) => ({ id: 'n' + i, path: 'q', startLine: 0, endLine: 0, contentHash: '' })),
          Float32Array.from({ length: 2000 * ${DIMS} }, (_, i) => Math.cos(i)));
        s.compact(); // a compaction: the big write, where a full disk hits
        try { await s.save(); console.log('SAVED'); } catch (e) { console.log('ERROR ' + e.message); }
      })();`,
    );
    // ulimit -f counts 1024-byte blocks: room for the old generation's size, not for the new one.
    const blocks = Math.ceil((size * 2) / 1024);
    const r = spawnSync('bash', ['-c', `ulimit -f ${blocks} && exec "${process.execPath}" --import tsx "${script}"`], { encoding: 'utf8' });
    console.log(`size-limit save (a refusal is the expected outcome): ${r.stdout.trim().split("\n")[0]!.replace(/^ERROR /, "refused: ")}`);
    assert.match(r.stdout, /ERROR Saving the index in .* failed .*previous version \(generation \d+\) is intact/, r.stdout + r.stderr);
    const again = await VectorStore.open(dir);
    assert.equal(again.generation, gen);
    assert.equal(again.count, 200);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort(),
      [`index.${gen}.hnsw`, 'manifest.json', `metadata.${gen}.bin`],
    );
  });
});
