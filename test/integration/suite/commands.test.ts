// Every engine-backed command, run in the real extension host on a copy of
// test/fixtures/sample-workspace (the window's folder) with the bert-tiny fixture model (set in the
// profile's settings by runHost.mjs). Commands are run with executeCommand, as a keybinding would;
// QuickPicks are answered with the workbench's own "accept" command, as a user pressing Enter.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RefreshSummary } from '../../../src/core/index/indexer';
import type { SweepResult } from '../../../src/core/sweep/sweep';
import type { ExtractToFileResult } from '../../../src/protocol/worker';
import { activatedApi, recordMetric } from './helpers';
import { LONG_FUNCTION_LINES, longFunctionSource } from './longFunction';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function workspaceRoot(): string {
  const f = vscode.workspace.workspaceFolders?.[0];
  assert.ok(f, 'the test window has no workspace folder');
  return f.uri.fsPath;
}

/**
 * Waits for a command that shows a QuickPick: presses "accept" until the command settles (the list
 * fills in asynchronously; accepting an empty list does nothing).
 */
async function acceptUntilDone<T>(pending: Thenable<T>, firstDelayMs = 300, timeoutMs = 30_000): Promise<T> {
  let done = false;
  let value: T | undefined;
  const settled = Promise.resolve(pending).then((v) => ((done = true), (value = v)));
  const until = Date.now() + timeoutMs;
  // "Accept" with no list open would act on whatever quick input comes next (Quick Open, say): give a
  // list that appears only after a progress notification the time to appear first.
  await Promise.race([settled, sleep(firstDelayMs)]);
  while (!done && Date.now() < until) {
    await sleep(300);
    if (!done) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
  }
  await Promise.race([settled, sleep(100)]);
  assert.ok(done, 'the QuickPick command did not finish');
  return value as T;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function readNpyHeader(file: string): { descr: string; shape: number[] } {
  const buf = fs.readFileSync(file);
  assert.equal(buf.subarray(0, 6).toString('latin1'), '\x93NUMPY', 'not a .npy file');
  const major = buf[6]!;
  const len = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const header = buf.subarray(major === 1 ? 10 : 12, (major === 1 ? 10 : 12) + len).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { descr, shape };
}

suite('Commands on the sample workspace', () => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-out-'));
  let summary: RefreshSummary;

  suiteSetup(async () => {
    await activatedApi();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Index Workspace indexes every folder into private storage, not into the repository', async () => {
    const { api } = await activatedApi();
    const root = workspaceRoot();
    const before = fs.readdirSync(root).sort();
    const t0 = performance.now();
    const result = await vscode.commands.executeCommand<RefreshSummary[] | undefined>('embeddingLens.indexWorkspace');
    recordMetric('indexWorkspaceCommandMs', Math.round(performance.now() - t0));
    assert.ok(result?.length === 1, 'Index Workspace returned no summary (see the log)');
    summary = result[0]!;
    recordMetric('indexWorkspaceSummary', { files: summary.filesSeen, chunks: summary.chunksTotal, ms: Math.round(summary.ms), modelMs: Math.round(summary.modelMs) });
    assert.ok(summary.chunksTotal > 10, `only ${summary.chunksTotal} chunks`);
    assert.ok(summary.filesIndexed >= 5);
    const skipped = new Map(summary.skipped.map((s) => [s.path, s.reason]));
    assert.equal(skipped.get('data/records.raw'), 'binary');
    // The index lives in VS Code's workspace storage; the folder gained nothing.
    assert.deepEqual(fs.readdirSync(root).sort(), before);
    const storage = api.storageDirFor(path.basename(root));
    assert.ok(storage && !storage.startsWith(root + path.sep), `storage ${storage} is inside the workspace`);
    assert.ok(fs.readdirSync(path.join(storage, 'stores')).length === 1);
    const bar = api.statusBar();
    assert.match(bar.text, new RegExp(`${summary.chunksTotal} chunks · bert-tiny`));
  });

  test('Search Workspace lists hits and opens the chosen one at its range, highlighted', async () => {
    const { api } = await activatedApi();
    const expected = await api.search('send an HTTP request and parse the JSON response', 'vector');
    assert.ok(expected.length > 0, 'no vector hits');
    const t0 = performance.now();
    const opened = await acceptUntilDone(
      vscode.commands.executeCommand<{ path: string; startLine: number; endLine: number; match?: { startLine: number; endLine: number } } | undefined>('embeddingLens.searchWorkspace', {
        query: 'send an HTTP request and parse the JSON response',
        mode: 'vector',
      }),
    );
    recordMetric('searchToOpenMs', Math.round(performance.now() - t0));
    assert.ok(opened, 'no hit was opened');
    assert.equal(opened.path, expected[0]!.path);
    const editor = vscode.window.activeTextEditor;
    assert.ok(editor);
    assert.equal(path.relative(workspaceRoot(), editor.document.uri.fsPath).split(path.sep).join('/'), opened.path);
    // The hit's lines are selected, or, when the hit is a whole function of which one piece matched, that piece.
    const selected = opened.match ?? opened;
    assert.equal(editor.selection.start.line, selected.startLine - 1);
    assert.equal(editor.selection.end.line, selected.endLine - 1);
    assert.ok(editor.visibleRanges.some((r) => r.contains(new vscode.Position(selected.startLine - 1, 0))), 'the range is not scrolled into view');
    const hl = api.highlightedRange();
    assert.deepEqual(hl && [hl.uri, hl.startLine, hl.endLine], [editor.document.uri.toString(), opened.startLine - 1, opened.endLine - 1]);
  });

  test('lexical and hybrid modes find exact words', async () => {
    const { api } = await activatedApi();
    const lexical = await api.search('BoundedQueue capacity', 'lexical');
    const hybrid = await api.search('BoundedQueue capacity', 'hybrid');
    assert.ok(lexical.some((h) => h.path === 'src/nested/queue.rs'), JSON.stringify(lexical.map((h) => h.path)));
    assert.ok(hybrid.length > 0);
  });

  test('Find Similar to Selection lists other chunks and opens one', async () => {
    const doc = await vscode.workspace.openTextDocument(path.join(workspaceRoot(), 'src', 'math.ts'));
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, Math.min(6, doc.lineCount - 1), 0);
    const t0 = performance.now();
    const opened = await acceptUntilDone(vscode.commands.executeCommand<{ path: string; startLine: number; endLine: number; match?: { startLine: number; endLine: number } } | undefined>('embeddingLens.findSimilar'), 1500);
    recordMetric('findSimilarToOpenMs', Math.round(performance.now() - t0));
    assert.ok(opened, 'nothing opened');
    // The selection's own lines are left out of the results.
    assert.ok(!(opened.path === 'src/math.ts' && opened.startLine <= 6 && opened.endLine >= 1), `the selection itself came back: ${JSON.stringify(opened)}`);
    assert.equal(vscode.window.activeTextEditor?.selection.start.line, (opened.match ?? opened).startLine - 1);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('a piece of a long function: the whole function opens, the piece selected, scrolled into view and highlighted inside it', async () => {
    const { api } = await activatedApi();
    const file = path.join(workspaceRoot(), 'src', 'ledger.py');
    await vscode.workspace.fs.writeFile(vscode.Uri.file(file), Buffer.from(longFunctionSource()));
    try {
      const query = 'quarantine orphaned transactions';
      // The words are in the function's last lines only: the hit is the whole function, its match the last piece.
      const hit = await waitFor('the long function in the index', async () => (await api.search(query, 'lexical')).find((h) => h.path === 'src/ledger.py'));
      assert.deepEqual([hit.startLine, hit.endLine], [1, LONG_FUNCTION_LINES], 'the result is the whole function');
      const m = hit.match;
      assert.ok(m && m.startLine > 60 && m.endLine >= LONG_FUNCTION_LINES - 5 && m.endLine <= LONG_FUNCTION_LINES, `the match is the last piece: ${JSON.stringify(m)}`);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      const opened = await acceptUntilDone(vscode.commands.executeCommand<{ path: string; startLine: number; endLine: number; match?: { startLine: number; endLine: number } } | undefined>('embeddingLens.searchWorkspace', { query, mode: 'lexical' }));
      assert.deepEqual(opened && [opened.path, opened.startLine, opened.endLine, opened.match?.startLine, opened.match?.endLine], ['src/ledger.py', 1, LONG_FUNCTION_LINES, m.startLine, m.endLine]);
      // What the editor shows: the piece selected and on screen (the function, 87 lines, does not fit).
      const editor = vscode.window.activeTextEditor;
      assert.ok(editor && editor.document.uri.fsPath === file, 'the file is not the active editor');
      assert.deepEqual([editor.selection.start.line, editor.selection.end.line], [m.startLine - 1, m.endLine - 1], 'the matched piece is selected');
      const visible = editor.visibleRanges;
      assert.ok(visible.some((r) => r.contains(editor.selection)), `the piece is not on screen: visible ${JSON.stringify(visible.map((r) => [r.start.line, r.end.line]))}`);
      assert.ok(!visible.some((r) => r.contains(new vscode.Position(0, 0))), 'scrolled to the piece, not left at the top of the file');
      const hl = api.highlightedRange();
      assert.deepEqual(hl && [hl.uri, hl.startLine, hl.endLine, hl.match], [editor.document.uri.toString(), 0, LONG_FUNCTION_LINES - 1, { startLine: m.startLine - 1, endLine: m.endLine - 1 }]);
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      await vscode.workspace.fs.delete(vscode.Uri.file(file));
      await waitFor('the long function to leave the index', async () => ((await api.search('quarantine orphaned transactions', 'lexical')).some((x) => x.path === 'src/ledger.py') ? undefined : true));
    }
  });

  test('a new file is indexed after it is created (incremental re-index)', async () => {
    const { api } = await activatedApi();
    const file = path.join(workspaceRoot(), 'src', 'added_later.py');
    await vscode.workspace.fs.writeFile(vscode.Uri.file(file), Buffer.from('def frobnicate_zebra(x):\n    """Frobnicate a zebra."""\n    return x * 2\n'));
    const t0 = performance.now();
    const hits = await waitFor('the new file in the index', async () => {
      const h = await api.search('frobnicate_zebra', 'lexical');
      return h.some((x) => x.path === 'src/added_later.py') ? h : undefined;
    });
    recordMetric('reindexAfterCreateMs', Math.round(performance.now() - t0));
    assert.ok(hits.length > 0);
    await vscode.workspace.fs.delete(vscode.Uri.file(file));
    await waitFor('the deleted file to leave the index', async () => {
      const h = await api.search('frobnicate_zebra', 'lexical');
      return h.some((x) => x.path === 'src/added_later.py') ? undefined : true;
    });
  });

  test('Extract Embeddings writes .npy, .h5 and .faiss files with their manifests', async () => {
    const doc = await vscode.workspace.openTextDocument(path.join(workspaceRoot(), 'src', 'http_client.py'));
    const editor = await vscode.window.showTextDocument(doc);

    const npy = path.join(outDir, 'file.npy');
    const fileResult = await vscode.commands.executeCommand<ExtractToFileResult | undefined>('embeddingLens.extractFile', { output: npy, layer: 'last', pooling: 'mean' });
    assert.ok(fileResult, 'extractFile wrote nothing');
    assert.deepEqual(readNpyHeader(npy), { descr: '<f4', shape: [1, fileResult.dims] });
    const manifest = JSON.parse(fs.readFileSync(`${npy}.json`, 'utf8'));
    assert.equal(manifest.pooling, 'mean');
    assert.equal(manifest.count, 1);

    editor.selections = [new vscode.Selection(0, 0, 2, 0), new vscode.Selection(4, 0, 6, 0)];
    const h5 = path.join(outDir, 'selection.h5');
    const selResult = await vscode.commands.executeCommand<ExtractToFileResult | undefined>('embeddingLens.extractSelection', { output: h5, layer: '-2', pooling: 'cls' });
    assert.ok(selResult);
    assert.equal(selResult.texts, 2);
    assert.equal(fs.readFileSync(h5).subarray(0, 8).toString('latin1'), '\x89HDF\r\n\x1a\n');

    const tokens = path.join(outDir, 'tokens.npy');
    const tokResult = await vscode.commands.executeCommand<ExtractToFileResult | undefined>('embeddingLens.extractSelection', { output: tokens, layer: 'last', pooling: 'none' });
    assert.ok(tokResult && tokResult.rows > 2, 'per-token extraction gives one row per token');
    assert.deepEqual(readNpyHeader(tokens).shape, [tokResult.rows, tokResult.dims]);

    const faiss = path.join(outDir, 'workspace.faiss');
    const wsResult = await vscode.commands.executeCommand<ExtractToFileResult | undefined>('embeddingLens.extractWorkspace', { output: faiss, layer: 'last', pooling: 'mean' });
    assert.ok(wsResult);
    const labels = fs.readFileSync(`${faiss}.labels.txt`, 'utf8').trim().split('\n');
    assert.equal(wsResult.rows, labels.length);
    assert.ok(wsResult.rows >= 5 && wsResult.skipped >= 1, JSON.stringify(wsResult));
    assert.ok(labels.includes('src/http_client.py') && !labels.includes('data/records.raw'));
    assert.ok(fs.statSync(faiss).size > wsResult.rows * wsResult.dims * 4);

    // Refused with a message, nothing written: one vector per token cannot go into a FAISS index.
    const refused = await vscode.commands.executeCommand('embeddingLens.extractFile', { output: path.join(outDir, 'bad.faiss'), pooling: 'none' });
    assert.equal(refused, undefined);
    assert.ok(!fs.existsSync(path.join(outDir, 'bad.faiss')));

    // Empty selection: a message, no file.
    editor.selection = new vscode.Selection(0, 0, 0, 0);
    assert.equal(await vscode.commands.executeCommand('embeddingLens.extractSelection', { output: path.join(outDir, 'empty.npy') }), undefined);
    assert.ok(!fs.existsSync(path.join(outDir, 'empty.npy')));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    // A binary file open (VS Code shows it in its binary editor, not as text): a message, no file.
    await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(path.join(workspaceRoot(), 'data', 'records.raw')));
    await sleep(500);
    assert.equal(await vscode.commands.executeCommand('embeddingLens.extractFile', { output: path.join(outDir, 'binary.npy') }), undefined);
    assert.ok(!fs.existsSync(path.join(outDir, 'binary.npy')));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    // No editor at all: a message, no file.
    assert.equal(await vscode.commands.executeCommand('embeddingLens.extractFile', { output: path.join(outDir, 'none.npy') }), undefined);
  });

  test('Find the Best Layer runs the sweep and shows it in the inspector', async () => {
    const t0 = performance.now();
    const result = await vscode.commands.executeCommand<SweepResult | undefined>('embeddingLens.findBestLayer');
    recordMetric('sweepCommandMs', Math.round(performance.now() - t0));
    assert.ok(result, 'the sweep returned nothing (see the log)');
    assert.equal(result.rows.length, result.numLayers + 2);
    assert.ok(result.pairs >= 2);
    const tabs = await waitFor('the inspector tab', () => {
      const t = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((x) => x.input instanceof vscode.TabInputWebview);
      return t.length ? t : undefined;
    }, 10_000);
    assert.ok(tabs.some((t) => (t.input as vscode.TabInputWebview).viewType.endsWith('embeddingLens.inspector')));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Rebuild Index embeds everything again', async () => {
    const result = await vscode.commands.executeCommand<RefreshSummary[] | undefined>('embeddingLens.rebuildIndex');
    assert.ok(result?.[0]);
    assert.equal(result[0].chunksEmbedded, result[0].chunksTotal);
    assert.equal(result[0].chunksTotal, summary.chunksTotal);
  });

  test('an index of another recipe is named, with Rebuild offered, instead of a silent fallback', async () => {
    const { api } = await activatedApi();
    const cfg = vscode.workspace.getConfiguration('embeddingLens');
    await cfg.update('layer', '-2', vscode.ConfigurationTarget.Global);
    try {
      await assert.rejects(api.search('parse a url', 'vector'), (err: Error) => (err as { code?: string }).code === 'INDEX_MISSING' && /built with another recipe/.test(err.message) && /layer -2/.test(err.message));
    } finally {
      await cfg.update('layer', undefined, vscode.ConfigurationTarget.Global);
    }
    assert.ok((await api.search('parse a url', 'vector')).length > 0);
  });

  test('Clear Index removes the store', async () => {
    const { api } = await activatedApi();
    const storage = api.storageDirFor(path.basename(workspaceRoot()))!;
    assert.ok(fs.existsSync(path.join(storage, 'stores')));
    const removed = await vscode.commands.executeCommand<string[]>('embeddingLens.clearIndex');
    assert.ok(removed.length > 0);
    assert.ok(!fs.existsSync(path.join(storage, 'stores')));
    assert.match(api.statusBar().text, /no index/);
    // Searching now says what to do instead of failing quietly.
    await assert.rejects(api.search('anything', 'vector'), /no index yet/);
  });

  test('cancelling Index Workspace keeps finished files; indexing again completes', async () => {
    const { api } = await activatedApi();
    const bulk = path.join(workspaceRoot(), 'bulk');
    fs.mkdirSync(bulk);
    for (let i = 0; i < 300; i++) {
      fs.writeFileSync(path.join(bulk, `module_${i}.py`), `def handler_${i}(request):\n    """Handle request number ${i} and return status ${i % 7}."""\n    return {"id": ${i}, "ok": True}\n`);
    }
    try {
      const source = new vscode.CancellationTokenSource();
      let cancelledAt = '';
      // Whether the cancel lands before the last batch commits depends on the machine's speed (files are
      // read ahead of the model and chunks commit batch by batch), so both outcomes are accepted here and
      // the re-index must then complete the index. That a cancel keeps every finished file is checked
      // deterministically by test/unit/index.test.ts ('cancel mid-index, then resume').
      const outcome = await api.index({
        token: source.token,
        onProgress: (fraction, message) => {
          const m = /^(\d+)\/(\d+) files, (\d+) chunks embedded/.exec(message);
          if (!cancelledAt && m && Number(m[1]) >= 200 && Number(m[3]) >= 1 && Number(m[1]) < Number(m[2])) {
            cancelledAt = message;
            source.cancel();
          }
        },
      }).then(() => 'finished', (err: Error) => {
        if (err.name !== 'AbortError') throw err;
        return 'cancelled';
      });
      const t0 = performance.now();
      const again = await api.index();
      recordMetric('indexAfterCancel', { outcome, cancelledAt, ms: Math.round(performance.now() - t0), unchanged: again[0]!.filesUnchanged, reused: again[0]!.chunksReused });
      const s = again[0]!;
      if (outcome === 'finished') assert.equal(s.filesIndexed, 0, `a finished index was redone: ${JSON.stringify(s)}`);
      assert.equal(s.filesSeen, summary.filesSeen + 300);
      assert.ok(s.chunksTotal >= summary.chunksTotal + 300);
      assert.match(api.statusBar().text, new RegExp(`${s.chunksTotal} chunks`));
    } finally {
      fs.rmSync(bulk, { recursive: true, force: true });
    }
  });

  test('a model that does not load is reported (nothing indexed, the old index untouched)', async () => {
    const { api } = await activatedApi();
    const cfg = vscode.workspace.getConfiguration('embeddingLens');
    const missing = path.join(os.tmpdir(), 'no-such-model-folder');
    // Workspace level: it wins over the User settings that hold the fixture model.
    await cfg.update('model', missing, vscode.ConfigurationTarget.Workspace);
    try {
      await assert.rejects(api.index(), (err: Error) => err.name === 'ModelLoadError' && err.message.includes(missing));
      assert.equal(await vscode.commands.executeCommand('embeddingLens.indexWorkspace'), undefined);
      assert.match(api.statusBar().text, /index error/);
    } finally {
      await cfg.update('model', undefined, vscode.ConfigurationTarget.Workspace);
      fs.rmSync(path.join(workspaceRoot(), '.vscode'), { recursive: true, force: true });
    }
    assert.ok((await api.search('parse a url', 'vector')).length > 0, 'the index is still there');
  });

  test('untrusted workspace: indexing, extraction and the sweep refuse and say why; search and inspect do not', async () => {
    const { api } = await activatedApi();
    const untrusted = { trusted: false, folders: 1 };
    for (const id of ['indexWorkspace', 'rebuildIndex', 'extractSelection', 'extractFile', 'extractWorkspace', 'findBestLayer']) {
      assert.match(api.commandBlocker(`embeddingLens.${id}`, untrusted) ?? '', /untrusted workspace.*Trust this workspace/, id);
      assert.equal(api.commandBlocker(`embeddingLens.${id}`, { trusted: true, folders: 1 }), undefined, id);
    }
    for (const id of ['searchWorkspace', 'inspectSelection', 'showLog', 'chooseModel', 'clearIndex']) {
      assert.equal(api.commandBlocker(`embeddingLens.${id}`, untrusted), undefined, id);
    }
    assert.match(api.commandBlocker('embeddingLens.indexWorkspace', { trusted: true, folders: 0 }) ?? '', /needs an open folder/);
    // This window is trusted (code-server runs with --disable-workspace-trust).
    assert.equal(vscode.workspace.isTrusted, true);
  });
});
