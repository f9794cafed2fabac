// Crash safety of the vector store: a child process saves over and over; we SIGKILL it at random
// instants, many times, and after every kill the store must load (checksums pass) with a count equal to
// one of the generations the child had committed — never a mix, never a broken store.
// Also: a write that fails part-way (a file-size limit, the same short write a full disk gives) leaves
// the previous generation in place.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { VectorStore } from '../../src/core/store/vectorStore';

const KILLS = Number(process.env.STORE_CRASH_KILLS ?? 32);
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

/** The child: open (or create) the store, then add BATCH vectors and save, forever, reporting each commit. */
function childScript(dir: string): string {
  const storeModule = JSON.stringify(path.resolve('src/core/store/vectorStore.ts'));
  return `
import { VectorStore } from ${storeModule};
(async () => {
  const recipe = ${JSON.stringify(recipe)};
  const s = await VectorStore.openOrCreate(${JSON.stringify(dir)}, recipe, { compactMinDeleted: 50, compactRatio: 0.2 });
  console.log('OPEN ' + s.count);
  let seed = s.count + 1;
  for (;;) {
    const v = new Float32Array(${BATCH} * ${DIMS});
    for (let i = 0; i < v.length; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; v[i] = seed / 2147483648 - 0.5; }
    const base = s.count;
    // replace a few existing ids and delete one path now and then, so compaction also gets killed
    const recs = Array.from({ length: ${BATCH} }, (_, i) => ({ id: 'c' + (base + i), path: 'p' + ((base + i) % 13), startLine: i, endLine: i, contentHash: '' }));
    s.upsert(recs, v);
    if (base % 4 === 0 && base > 0) { const removed = s.deleteByPath('p' + (base % 13)); s.upsert(recs.slice(0, removed).map((r, i) => ({ ...r, id: 'r' + base + '-' + i })), v.subarray(0, removed * ${DIMS})); }
    console.log('SAVING ' + s.count);
    await s.save();
    console.log('SAVED ' + s.count + ' ' + s.generation);
  }
})();
`;
}

describe('vector store crash safety', () => {
  it(`survives ${KILLS} SIGKILLs at random points of repeated saves`, { timeout: 180_000 }, async () => {
    const dir = path.join(tmp, 'store');
    const script = path.join(tmp, 'saver.ts');
    fs.writeFileSync(script, childScript(dir));
    let midSave = 0;
    let killedDuringSave = 0;
    for (let k = 0; k < KILLS; k++) {
      const committed = new Set<number>();
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      // Wait until the child is in its save loop, then let it run a random while before the kill.
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (out.includes('OPEN ')) {
            clearInterval(t);
            resolve();
          }
        }, 5);
        child.on('exit', () => {
          clearInterval(t);
          reject(new Error(`child exited early: ${err}`));
        });
      });
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 400));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      child.removeAllListeners('exit');
      // Counts the child committed: the one it opened, every SAVED line, and the save in flight (its
      // manifest may have been renamed just before the kill, before the SAVED line was printed).
      const lines = out.split('\n');
      const opened = Number(lines.find((l) => l.startsWith('OPEN '))!.slice(5));
      committed.add(opened);
      for (const l of lines) if (l.startsWith('SAVED ')) committed.add(Number(l.split(' ')[1]));
      const lastLine = lines.filter((l) => l.length > 0).pop() ?? '';
      if (lastLine.startsWith('SAVING ')) killedDuringSave++;
      const store = await VectorStore.open(dir, recipe); // throws if any file is torn or mismatched
      if (!committed.has(store.count)) {
        // Allowed only if it is exactly the state of the save that was in flight when the kill came.
        const inFlight = lines.filter((l) => l.startsWith('SAVING ')).pop();
        assert.equal(store.count, Number(inFlight?.slice(7)), `count ${store.count} not among committed ${[...committed]}`);
        midSave++;
      }
      // The loaded store is internally consistent and searchable.
      const s = store.stats();
      assert.equal(s.count, store.count);
      if (store.count > 0) assert.equal(store.query(new Float32Array(DIMS).fill(0.1), 5).length, 5);
      // No stray files beyond the committed generation (leftovers are swept by the next save).
      assert.ok(fs.existsSync(path.join(dir, `index.${store.generation}.hnsw`)));
    }
    // Informational: how often the kill landed after the manifest rename but before the report.
    console.log(`crash test: ${KILLS} kills, ${killedDuringSave} during a save, ${midSave} after the commit but before the report`);
    assert.ok(killedDuringSave > 0, 'no kill landed during a save: the test did not test anything');
  });

  it('a short write during save (file-size limit, as on a full disk) keeps the previous generation', async (t) => {
    if (process.platform === 'win32') return t.skip('needs ulimit');
    const dir = path.join(tmp, 'limited');
    const s = await VectorStore.create(dir, recipe);
    s.upsert(
      Array.from({ length: 200 }, (_, i) => ({ id: `c${i}`, path: 'p', startLine: i, endLine: i, contentHash: '' })),
      Float32Array.from({ length: 200 * DIMS }, (_, i) => Math.sin(i)),
    );
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
        try { await s.save(); console.log('SAVED'); } catch (e) { console.log('ERROR ' + e.message); }
      })();`,
    );
    // ulimit -f counts 1024-byte blocks: room for the old generation's size, not for the new one.
    const blocks = Math.ceil((size * 2) / 1024);
    const r = spawnSync('bash', ['-c', `ulimit -f ${blocks} && exec "${process.execPath}" --import tsx "${script}"`], { encoding: 'utf8' });
    console.log(`size-limit save: ${r.stdout.trim().split('\n')[0]}`);
    assert.match(r.stdout, /ERROR Saving the index in .* failed .*previous version \(generation \d+\) is intact/, r.stdout + r.stderr);
    const again = await VectorStore.open(dir);
    assert.equal(again.generation, gen);
    assert.equal(again.count, 200);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort(),
      [`index.${gen}.hnsw`, 'manifest.json', `metadata.${gen}.json`],
    );
  });
});
