// The extension as a user lives with it (issue 13), in the real extension host: the model comes from
// the User settings file (runHost.mjs writes no Machine/Remote settings), a search while indexing
// says it is partial, a cancel leaves a "partial" status bar, a recipe round trip keeps re-index on
// save working, a file rewritten from outside the editor is re-indexed, the engine runs in its own
// process and a killed engine is replaced on the next search. Memory of the extension host and of the
// engine is recorded (test-results/host-metrics.json).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, fixtureModel, recordMetric } from './helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (b: number | undefined) => (b === undefined ? undefined : Math.round(b / 1048576));

function workspaceRoot(): string {
  const f = vscode.workspace.workspaceFolders?.[0];
  assert.ok(f, 'the test window has no workspace folder');
  return f.uri.fsPath;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : last})` : ''}`);
    await sleep(250);
  }
}

function memory(api: Awaited<ReturnType<typeof activatedApi>>['api']) {
  const m = api.memory();
  return { hostRssMB: MB(m.hostRssBytes), hostHeapMB: MB(m.hostHeapUsedBytes), engineRssMB: MB(m.engineRssBytes) };
}

function bulkFiles(dir: string, n: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(path.join(dir, `module_${i}.py`), `def handler_${i}(request):\n    """Handle request number ${i} and return status ${i % 7}."""\n    return {"id": ${i}, "ok": True}\n`);
  }
}

suite('Living with the extension (issue 13)', () => {
  const memorySamples: Record<string, unknown> = {};

  suiteSetup(async () => {
    await activatedApi();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  suiteTeardown(() => recordMetric('memoryMB', memorySamples));

  test('the model set in the User settings is the one the engine loads, and the status bar says so', async () => {
    const { api } = await activatedApi();
    const inspect = vscode.workspace.getConfiguration('embeddingLens').inspect<string>('model');
    // runHost.mjs wrote it into the User settings file only (the User tab of the settings editor).
    assert.equal(inspect?.globalValue, fixtureModel());
    assert.equal(inspect?.workspaceValue, undefined);
    memorySamples.beforeIndexing = memory(api);
    const summaries = await api.index();
    assert.equal(summaries.length, 1);
    memorySamples.afterIndexing = memory(api);
    const bar = api.statusBar();
    assert.equal(bar.kind, 'ready', bar.state);
    assert.match(bar.text, /chunks · bert-tiny/);
    assert.ok(bar.model.includes(fixtureModel()) && /User/.test(bar.model) && /in use, loaded from/.test(bar.model), bar.model);

    // Another model through the User settings (as the settings editor's User tab writes it): the next
    // command loads it, the status bar names it.
    const cfg = vscode.workspace.getConfiguration('embeddingLens');
    await cfg.update('model', fixtureModel('distilbert-tiny'), vscode.ConfigurationTarget.Global);
    try {
      await waitFor('the status bar to name the new model', () => /distilbert-tiny/.test(api.statusBar().text) || undefined);
      await api.index();
      const after = api.statusBar();
      assert.match(after.text, /distilbert-tiny/);
      assert.ok(after.model.includes(`${fixtureModel('distilbert-tiny')} (User`) && /in use, loaded from/.test(after.model), after.model);
    } finally {
      await cfg.update('model', fixtureModel(), vscode.ConfigurationTarget.Global);
    }
    await waitFor('bert-tiny back in the status bar', () => api.statusBar().kind === 'ready' && /bert-tiny/.test(api.statusBar().text) && !/distilbert/.test(api.statusBar().text) || undefined);
  });

  test('a search while indexing answers from what is indexed, marked partial; a cancel leaves a "partial index" status bar', async () => {
    const { api } = await activatedApi();
    const bulk = path.join(workspaceRoot(), 'bulk2');
    bulkFiles(bulk, 300);
    try {
      const source = new vscode.CancellationTokenSource();
      let progressSeen = '';
      const run = api.index({ token: source.token, onProgress: (_f, message) => (progressSeen = message) });
      const indexing = await waitFor('the status bar to show indexing with a file count', () => (api.statusBar().kind === 'indexing' && /\d+\/\d+/.test(api.statusBar().text) ? api.statusBar() : undefined), 60_000);
      const hits = await api.search('send an HTTP request and parse the JSON response', 'vector');
      assert.ok(hits.length > 0, 'no hits from the files already indexed');
      assert.ok(hits.every((h) => h.partial === true), 'hits during indexing are not marked partial');
      recordMetric('searchWhileIndexing', { statusBar: indexing.text, hits: hits.length, progress: progressSeen });
      source.cancel();
      await assert.rejects(run, (err: Error) => err.name === 'AbortError');
      const bar = await waitFor('a partial status bar', () => (api.statusBar().kind === 'partial' ? api.statusBar() : undefined));
      assert.match(bar.text, /partial index/);
      assert.match(bar.state, /indexing stopped at \d+ of \d+ files/);
      const partialHits = await api.search('send an HTTP request and parse the JSON response', 'vector');
      assert.ok(partialHits.length > 0 && partialHits.every((h) => h.partial), 'search on a partial index is not marked partial');
      recordMetric('afterCancel', { statusBar: bar.text, state: bar.state });
    } finally {
      fs.rmSync(bulk, { recursive: true, force: true });
    }
    const done = await api.index();
    assert.ok(done[0]!.filesRemoved >= 0);
    assert.equal(api.statusBar().kind, 'ready');
  });

  test('a recipe change and back: the status bar names the other recipe, then a save is re-indexed again', async () => {
    const { api } = await activatedApi();
    const written = await vscode.commands.executeCommand<{ target: string } | undefined>('embeddingLens.chooseRecipe', { layer: '-2', pooling: 'mean', target: 'user' });
    assert.equal(written?.target, 'user');
    // Nothing was written into the repository.
    assert.ok(!fs.existsSync(path.join(workspaceRoot(), '.vscode', 'settings.json')), '.vscode/settings.json was written');
    try {
      const mismatch = await waitFor('the status bar to say the index is of another recipe', () => (api.statusBar().kind === 'mismatch' ? api.statusBar() : undefined));
      assert.match(mismatch.text, /another recipe/);
      await assert.rejects(api.search('parse a url', 'vector'), (err: Error) => (err as { code?: string }).code === 'INDEX_MISSING');
    } finally {
      await vscode.commands.executeCommand('embeddingLens.chooseRecipe', { layer: 'last', pooling: 'mean', target: 'user' });
    }
    await waitFor('the status bar to be ready again', () => api.statusBar().kind === 'ready' || undefined);

    // A save in the editor is re-indexed (the marker becomes findable).
    const file = path.join(workspaceRoot(), 'src', 'math.ts');
    const doc = await vscode.workspace.openTextDocument(file);
    const editor = await vscode.window.showTextDocument(doc);
    await editor.edit((e) => e.insert(new vscode.Position(0, 0), '// quuxmarker_roundtrip checks re-index on save\n'));
    await doc.save();
    const t0 = performance.now();
    await waitFor('the saved marker in the index', async () => (await api.search('quuxmarker_roundtrip', 'lexical')).some((h) => h.path === 'src/math.ts') || undefined);
    recordMetric('reindexAfterRecipeRoundTripMs', Math.round(performance.now() - t0));
    await editor.edit((e) => e.delete(new vscode.Range(0, 0, 1, 0)));
    await doc.save();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('a file rewritten outside the editor is re-indexed (file watcher change events)', async () => {
    const { api } = await activatedApi();
    const file = path.join(workspaceRoot(), 'docs', 'guide.md');
    const original = fs.readFileSync(file, 'utf8');
    try {
      // As git checkout or a formatter would: plain node:fs, no editor involved.
      fs.writeFileSync(file, `${original}\n\nZorblax frobnication happens outside the editor.\n`);
      const t0 = performance.now();
      const hits = await waitFor('the rewritten file in the index', async () => {
        const h = await api.search('Zorblax frobnication', 'lexical');
        return h.some((x) => x.path === 'docs/guide.md' && !x.preview.includes('\u0000')) ? h : undefined;
      }, 40_000);
      recordMetric('reindexAfterOutsideChangeMs', Math.round(performance.now() - t0));
      assert.ok(!hits.find((h) => h.path === 'docs/guide.md')?.preview.includes('stale'));
    } finally {
      fs.writeFileSync(file, original);
    }
    await waitFor('the restored file in the index', async () => !(await api.search('Zorblax frobnication', 'lexical')).some((x) => x.path === 'docs/guide.md') || undefined, 40_000);
  });

  test('the engine runs in its own process; killed, the next search starts a new one and the index is intact', async () => {
    const { api } = await activatedApi();
    const before = await api.search('send an HTTP request and parse the JSON response', 'vector');
    const status = await api.engineStatus();
    assert.equal(status.ownProcess, true);
    assert.notEqual(status.pid, process.pid, 'the engine runs inside the extension host');
    const pid = api.enginePid();
    assert.equal(pid, status.pid);
    memorySamples.engineBeforeKill = memory(api);
    const crashed = api.engineCounts().crashed;
    process.kill(pid!, 'SIGKILL');
    await waitFor('the client to notice the engine is gone', () => api.engineCounts().crashed === crashed + 1 || undefined, 10_000);
    const t0 = performance.now();
    const after = await api.search('send an HTTP request and parse the JSON response', 'vector');
    recordMetric('searchAfterEngineKillMs', Math.round(performance.now() - t0));
    assert.notEqual(api.enginePid(), pid);
    assert.deepEqual(after.map((h) => [h.path, h.startLine, h.score.toFixed(5)]), before.map((h) => [h.path, h.startLine, h.score.toFixed(5)]));
    assert.equal(api.statusBar().kind, 'ready');
  });

  test('extraction outputs are named after their source and left out of the index', async () => {
    const { api } = await activatedApi();
    const doc = await vscode.workspace.openTextDocument(path.join(workspaceRoot(), 'src', 'http_client.py'));
    await vscode.window.showTextDocument(doc);
    const out = path.join(workspaceRoot(), 'http_client.py.last-mean.embeddings.npy');
    try {
      const r = await vscode.commands.executeCommand<{ files: string[] } | undefined>('embeddingLens.extractFile', { output: out, layer: 'last', pooling: 'mean' });
      assert.ok(r && fs.existsSync(`${out}.json`) && fs.existsSync(`${out}.labels.txt`));
      const s = await api.index();
      const paths = new Set(s[0]!.skipped.map((x) => x.path));
      assert.ok(!paths.has('http_client.py.last-mean.embeddings.npy.json'));
      const hits = await api.search('http_client.py', 'lexical');
      assert.ok(!hits.some((h) => h.path.includes('.embeddings.')), JSON.stringify(hits.map((h) => h.path)));
    } finally {
      for (const f of [out, `${out}.json`, `${out}.labels.txt`]) fs.rmSync(f, { force: true });
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });

  test('memory of the extension host and the engine after inspecting and the sweep', async () => {
    const { api } = await activatedApi();
    const doc = await vscode.workspace.openTextDocument(path.join(workspaceRoot(), 'src', 'http_client.py'));
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, doc.lineCount - 1, 0);
    await vscode.commands.executeCommand('embeddingLens.inspectSelection');
    memorySamples.afterInspecting = memory(api);
    await vscode.commands.executeCommand('embeddingLens.findBestLayer');
    memorySamples.afterSweep = memory(api);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    assert.ok((memorySamples.afterSweep as { engineRssMB?: number }).engineRssMB! > 0);
  });
});
