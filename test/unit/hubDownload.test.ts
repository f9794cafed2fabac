// A Hub id is downloaded once into the cache, then used offline. The "Hub" is a local HTTP server that
// serves a model folder in the Hub's URL layout (<owner>/<name>/resolve/main/<file>), so the real
// download path (transformers.js's fetch, the cache layout, resolveModel's checks) runs end to end.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Extractor } from '../../src/core/extract/extractor';
import { resolveModel } from '../../src/core/model/modelSource';
import { UserError } from '../../src/core/types';
import { fixtureModelDir } from '../fixtures/generate';

describe('model download from a Hub (local server in the Hub URL layout)', () => {
  const served = fixtureModelDir('bert-tiny');
  const requests: string[] = [];
  let server: http.Server;
  let hubUrl = '';
  let cacheDir = '';

  before(async () => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-hub-'));
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const m = /^\/test-owner\/tiny-bert\/resolve\/main\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
      const file = m && path.join(served, m[1]!);
      if (!file || !file.startsWith(served + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404).end('Entry not found');
        return;
      }
      const body = fs.readFileSync(file);
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  test('first use downloads into the cache; the model then runs and equals the served folder', async () => {
    const resolved = await resolveModel('test-owner/tiny-bert', { cacheDir, hubUrl });
    assert.equal(resolved.fromHub, true);
    assert.equal(resolved.folder, path.join(cacheDir, 'test-owner', 'tiny-bert'));
    assert.ok(requests.some((r) => r.endsWith('/onnx/model.onnx')), `the graph was fetched (${requests.join(', ')})`);
    assert.deepEqual(fs.readFileSync(resolved.onnxFile), fs.readFileSync(path.join(served, 'onnx', 'model.onnx')), 'the cached graph is byte-identical');
    const fromHub = await Extractor.load({ model: 'test-owner/tiny-bert', cacheDir, offline: true });
    const local = await Extractor.load({ model: served });
    try {
      const a = await fromHub.extract(['def add(a, b): return a + b'], { layer: 'last', pool: 'mean' });
      const b = await local.extract(['def add(a, b): return a + b'], { layer: 'last', pool: 'mean' });
      assert.deepEqual(Array.from(a.data), Array.from(b.data));
    } finally {
      await fromHub.dispose();
      await local.dispose();
    }
  });

  test('a cached model needs no server; an unknown one says it is not cached and downloads are off', async () => {
    const before = requests.length;
    await resolveModel('test-owner/tiny-bert', { cacheDir, hubUrl, offline: true });
    assert.equal(requests.length, before, 'no request for a cached model');
    await assert.rejects(resolveModel('test-owner/other', { cacheDir, offline: true }), (err: unknown) => err instanceof UserError && /not in the cache/.test(err.message));
  });

  test('a model the server does not have is a clear error naming the id, not another model', async () => {
    await assert.rejects(resolveModel('test-owner/missing', { cacheDir, hubUrl }), (err: unknown) => err instanceof UserError && /test-owner\/missing/.test(err.message));
  });
});
