// The engine in its own process (src/host/engineClient.ts + the bundled dist/worker.js): it is not
// the test's process; killing it fails the request in flight with a clear message, and the next
// request works again with the same model and the same numbers; an idle engine stops and comes back.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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
