// The engine in its own process (src/host/engineClient.ts + the bundled dist/worker.js): it is not
// the test's process; killing it fails the request in flight with a clear message, and the next
// request works again with the same model and the same numbers; an idle engine stops and comes back.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ENGINE_CRASHED, EngineClient } from '../../src/host/engineClient';
import type { EngineLoadOptions } from '../../src/protocol/worker';
import { fixtureModelDir } from '../fixtures/generate';
import { suiteRequiring } from '../skip';

const WORKER = path.resolve(__dirname, '../../dist/worker.js');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const RECIPE = { layer: 'last', pool: 'mean', normalize: true } as const;

function loadOptions(): EngineLoadOptions {
  return { model: fixtureModelDir('bert-tiny'), offline: true, threads: 1, maxTokensPerBatch: 512 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

suiteRequiring('engine process', !fs.existsSync(WORKER) && 'dist/worker.js missing (npm run build)', () => {
  test('runs in its own process; a killed engine fails the request in flight with a clear error, the next one works with the same model', async () => {
    const crashes: string[] = [];
    const client = new EngineClient(WORKER, quiet, { idleMs: 0, onCrash: (m) => crashes.push(m) });
    try {
      const status = await client.request('status', {});
      assert.equal(status.ownProcess, true);
      assert.notEqual(status.pid, process.pid);
      assert.equal(status.pid, client.pid);
      assert.ok(status.rssBytes > 10e6, `rss ${status.rssBytes}`);
      await client.request('load', loadOptions());
      const first = await client.request('extract', { texts: ['open the file and read every line'], recipe: RECIPE });
      assert.ok(first.data instanceof Float32Array && first.data.length === first.dims);

      // A long request, then the process is killed from outside (as a native crash would end it).
      const long = client.request('extract', { texts: Array.from({ length: 400 }, (_, i) => `text number ${i} `.repeat(40)), recipe: RECIPE });
      await sleep(150);
      const pid = client.pid!;
      process.kill(pid, 'SIGKILL');
      await assert.rejects(long, (err: Error) => err.name === ENGINE_CRASHED && /SIGKILL/.test(err.message) && /index on disk is unchanged/.test(err.message));
      assert.equal(crashes.length, 1);
      assert.equal(client.started, false);

      // The next request starts a new process, which loads the same model again by itself.
      const again = await client.request('extract', { texts: ['open the file and read every line'], recipe: RECIPE });
      assert.notEqual(client.pid, pid);
      assert.deepEqual(Array.from(again.data), Array.from(first.data));
      assert.equal(client.counts.started, 2);
      assert.equal(client.counts.crashed, 1);
    } finally {
      await client.dispose();
    }
  });

  test('the memory budget: sized from the open indexes unless the user set one; an engine over it is stopped', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'el-budget-'));
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(root, `m${i}.ts`), `export function f${i}(x: number): number {\n  return x + ${i};\n}\n`);
    const target = { root, storageDir: path.join(root, '.embedding-lens'), recipe: RECIPE };
    const logs: string[] = [];
    const log = { ...quiet, info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
    // A 1 GB machine: the automatic budget is 1024 MB (75% of it, never under 1024).
    const client = new EngineClient(WORKER, log, { idleMs: 0, machineMb: 1024 });
    try {
      assert.deepEqual(client.budget, { mb: 1024, neededMb: 512, capped: false, auto: true, chunks: 0 });
      await client.request('load', loadOptions());
      const summary = await client.request('index', target);
      assert.ok(summary.chunksTotal >= 6);
      // Built in this process: 4 KB a chunk (a handful of chunks: still the 512 MB base).
      assert.equal(client.budget.chunks, summary.chunksTotal);
      assert.equal(client.budget.auto, true);
      assert.equal(client.budget.neededMb, 512 + Math.ceil((summary.chunksTotal * 4096) / 2 ** 20));
      const status = await client.request('indexStatus', target);
      assert.equal(status.chunks, summary.chunksTotal);
      assert.equal(client.budget.chunks, summary.chunksTotal, 'the same index counted once');
      assert.ok(logs.some((l) => /memory budget 1024 MB, sized for the open indexes/.test(l)) || logs.some((l) => /ready in .* \(memory budget 1024 MB, sized/.test(l)), logs.join('\n'));

      // The user's budget wins; one below the engine's resident size stops it once the request is done.
      client.configure({ idleMs: 0, memoryBudgetMb: 64 });
      assert.deepEqual(client.budget, { mb: 64, neededMb: 64, capped: false, auto: false, chunks: summary.chunksTotal });
      const before = client.counts.idleStops;
      const rss = (await client.request('status', {})).rssBytes;
      assert.ok(rss > 64 * 2 ** 20, `${rss}`);
      await sleep(300);
      assert.equal(client.counts.idleStops, before + 1, `stopped at ${(rss / 2 ** 20).toFixed(0)} MB resident`);
      assert.equal(client.started, false);
      assert.ok(logs.some((l) => /over the 64 MB budget: stopping it now .*raise the setting embeddingLens\.engineMemoryBudgetMB, or remove it/.test(l)), logs.join('\n'));
      client.configure({ idleMs: 0, memoryBudgetMb: undefined });
      assert.equal(client.budget.auto, true);
    } finally {
      await client.dispose();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('an idle engine stops (its memory released) and starts again on the next request', async () => {
    const client = new EngineClient(WORKER, quiet, { idleMs: 300 });
    try {
      await client.request('load', loadOptions());
      const pid = client.pid;
      assert.ok(pid);
      await sleep(1200);
      assert.equal(client.started, false, 'the idle engine is still running');
      assert.equal(client.counts.idleStops, 1);
      assert.throws(() => process.kill(pid!, 0), 'the idle engine process still exists');
      const r = await client.request('extract', { texts: ['hello'], recipe: RECIPE });
      assert.equal(r.rows, 1);
      assert.equal(client.counts.crashed, 0);
    } finally {
      await client.dispose();
    }
  });
});
