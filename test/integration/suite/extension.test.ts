// Activation, contributed commands, settings and the log channel, inside a real extension host
// running the installed .vsix.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, recordMetric } from './helpers';

suite('Extension', () => {
  test('activates quickly without starting the engine', async () => {
    const { ext, api } = await activatedApi();
    assert.equal(ext.isActive, true);
    assert.equal(api.version, ext.packageJSON.version);
    assert.ok(api.activationMs >= 0 && api.activationMs < 500, `activation took ${api.activationMs} ms`);
    assert.equal(api.engineStarted(), false, 'activation must not start the engine worker');
    recordMetric('activationMs', Number(api.activationMs.toFixed(2)));
  });

  test('is the packaged build (dist bundles, no sources)', async () => {
    const { ext } = await activatedApi();
    assert.ok(fs.existsSync(path.join(ext.extensionPath, 'dist', 'extension.js')));
    assert.ok(fs.existsSync(path.join(ext.extensionPath, 'dist', 'worker.js')));
    assert.ok(!fs.existsSync(path.join(ext.extensionPath, 'src')), 'the .vsix must not carry src/');
  });

  test('registers every contributed command, each in the "Embedding Lens" category', async () => {
    const { ext } = await activatedApi();
    const contributed: { command: string; category: string }[] = ext.packageJSON.contributes.commands;
    assert.ok(contributed.length >= 12);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of contributed) {
      assert.equal(c.category, 'Embedding Lens', c.command);
      assert.ok(registered.has(c.command), `${c.command} is contributed but not registered`);
    }
    const ours = [...registered].filter((c) => c.startsWith('embeddingLens.'));
    for (const id of ours) assert.ok(contributed.some((c) => c.command === id), `${id} is registered but not contributed`);
  });

  test('declares every setting with a description', async () => {
    const { ext } = await activatedApi();
    const props: Record<string, { description?: string; markdownDescription?: string; scope?: string }> =
      ext.packageJSON.contributes.configuration.properties;
    for (const key of ['model', 'allowDownloads', 'layer', 'pooling', 'wordPooling', 'normalize', 'maxTokensPerBatch', 'threads', 'include', 'exclude', 'indexOnSave', 'storageLocation']) {
      const p = props[`embeddingLens.${key}`];
      assert.ok(p, `embeddingLens.${key} missing`);
      assert.ok(p.description || p.markdownDescription, `embeddingLens.${key} has no description`);
    }
    // Scopes that take effect from the User settings in every host (desktop, remote, code-server): a
    // machine(-overridable) setting in the User tab is ignored in a remote window (issue 13).
    assert.equal(props['embeddingLens.allowDownloads'].scope, 'application');
    assert.equal(props['embeddingLens.model'].scope, 'window');
    assert.equal(props['embeddingLens.storageLocation'].scope, 'window');
    for (const [key, p] of Object.entries(props)) assert.ok(!/^machine/.test(p.scope ?? ''), `${key} has scope ${p.scope}`);
    const cfg = vscode.workspace.getConfiguration('embeddingLens');
    assert.equal(cfg.get('pooling'), 'mean');
    assert.equal(cfg.get('layer'), 'last');
  });

  test('Show Log opens the log channel', async () => {
    await vscode.commands.executeCommand('embeddingLens.showLog');
    // The LogOutputChannel writes a file under the window's log folder; its first line is the activation.
    const text = await waitForLog(/Embedding Lens .* activated in [\d.]+ ms/);
    assert.match(text, /Embedding Lens .* activated in [\d.]+ ms/);
  });

  test('commands without an editor or selection answer with a message, not an error', async () => {
    // The command wrapper catches every error (and shows it), so the command's result cannot tell a
    // refusal from a failure: the log can. Each refusal is logged as "not run: <why>"; a failure would
    // log an error (or a warning for a UserError) and no refusal.
    const before = readLog().length;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    assert.equal(await vscode.commands.executeCommand('embeddingLens.inspectSelection'), undefined);
    await waitForLog(/Inspect Selection: not run: (Open a file|The active tab)/, before);
    const doc = await vscode.workspace.openTextDocument({ content: 'some text', language: 'plaintext' });
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, 0, 0);
    await vscode.commands.executeCommand('embeddingLens.inspectSelection');
    await vscode.commands.executeCommand('embeddingLens.findSimilar');
    await waitForLog(/Inspect Selection: not run: Select some text first \(the selection is empty\)/, before);
    // Find Similar needs a folder: without one it is refused for that reason, else for the empty selection.
    const added = await waitForLog(/Find Similar to Selection: not run: (Select some text first|"Find Similar to Selection" needs an open folder)/, before);
    assert.doesNotMatch(added, /\[(error|warning)\]/, `the commands logged a failure:\n${added}`);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});

/** The extension's log file(s) as written so far (runHost.mjs sets EL_LOGS_DIR to the window's log folder). */
function readLog(): string {
  const logsRoot = process.env.EL_LOGS_DIR;
  assert.ok(logsRoot, 'EL_LOGS_DIR is not set (runHost.mjs sets it)');
  const files = (fs.readdirSync(logsRoot, { recursive: true }) as string[]).filter((f) => f.endsWith('Embedding Lens.log')).sort();
  return files.map((f) => fs.readFileSync(path.join(logsRoot, f), 'utf8')).join('\n');
}

/** Waits (up to 10 s: the channel writes its file asynchronously) for `pattern` in the log after offset `from`; returns that part. */
async function waitForLog(pattern: RegExp, from = 0): Promise<string> {
  let text = '';
  for (let i = 0; i < 100; i++) {
    text = readLog().slice(from);
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the log never showed ${pattern}; it has:\n${text.slice(-2000)}`);
}
