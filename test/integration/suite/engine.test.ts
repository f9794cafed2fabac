// The engine worker started from the installed .vsix, inside the real extension host: it loads a
// fixture model and inspects a text. This is what the inspector panel and the commands build on.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, fixtureModel, recordMetric } from './helpers';

suite('Engine worker', () => {
  test('starts on demand in its own process and reports it', async () => {
    const { api } = await activatedApi();
    const t0 = performance.now();
    const status = await api.engineStatus();
    recordMetric('workerStartMs', Math.round(performance.now() - t0));
    assert.equal(api.engineStarted(), true);
    // What the engine process says about itself, against what the host knows of it.
    assert.equal(status.ownProcess, true, 'the engine runs in its own process (child_process.fork)');
    assert.equal(status.pid, api.enginePid(), 'the process the host started answered');
    assert.notEqual(status.pid, process.pid, 'not the extension host itself');
    assert.equal(status.node, process.version, 'forked with the extension host\'s Node');
    assert.ok(status.rssBytes > 10 * 2 ** 20 && status.heapUsedBytes > 0, `engine memory ${status.rssBytes} / ${status.heapUsedBytes}`);
  });

  test('native modules of the .vsix load in the extension host', async () => {
    const { ext } = await activatedApi();
    const req = require('node:module').createRequire(path.join(ext.extensionPath, 'package.json'));
    const { HierarchicalNSW } = req('hnswlib-node');
    const index = new HierarchicalNSW('cosine', 3);
    index.initIndex(4);
    index.addPoint([1, 0, 0], 0);
    index.addPoint([0, 1, 0], 1);
    assert.deepEqual(index.searchKnn([1, 0.1, 0], 1).neighbors, [0]);
    assert.equal(typeof req('onnxruntime-node').InferenceSession.create, 'function');
  });

  test('Inspect Selection runs the fixture model and opens the inspector', async () => {
    const cfg = vscode.workspace.getConfiguration('embeddingLens');
    await cfg.update('model', fixtureModel(), vscode.ConfigurationTarget.Global);
    try {
      const doc = await vscode.workspace.openTextDocument({ content: 'def hello():\n    return "<script>x</script>"\n', language: 'python' });
      const editor = await vscode.window.showTextDocument(doc);
      editor.selection = new vscode.Selection(0, 0, 1, 20);
      const t0 = performance.now();
      await vscode.commands.executeCommand('embeddingLens.inspectSelection');
      recordMetric('inspectCommandMs', Math.round(performance.now() - t0));
      // The tab model reaches the extension host a moment after the panel is created.
      let tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
      for (let i = 0; i < 50 && !tabs.some((t) => t.input instanceof vscode.TabInputWebview); i++) {
        await new Promise((r) => setTimeout(r, 100));
        tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
      }
      const viewTypes = tabs.map((t) => (t.input as { viewType?: string } | undefined)?.viewType ?? `(${t.label})`);
      assert.ok(viewTypes.some((v) => v.endsWith('embeddingLens.inspector')), `inspector tab not open; tabs: ${viewTypes.join(', ')}`);
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});
