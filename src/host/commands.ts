// Command handlers. Every command of package.json is registered here (an integration test checks it).
// Commands whose engine part is not wired yet answer with a clear "not available yet" message.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { UserError } from '../core/types';
import type { TextSource } from '../protocol/panel';
import { abortSignalOf } from './cancellation';
import { COMMANDS, type CommandId } from './commandIds';
import { engineLoadOptions, POOLING_MODES, readConfig, SECTION, WORD_POOLINGS } from './config';
import type { EngineClient } from './engineClient';
import { InspectorPanel, type InspectorHost } from './inspectorPanel';
import { describeError } from './log';

export interface CommandContext {
  extensionUri: vscode.Uri;
  /** Where downloaded models are cached (global storage). */
  modelCacheDir: string;
  log: vscode.LogOutputChannel;
  engine: EngineClient;
}

/** Commands that need a trusted workspace (they read workspace files and write files). */
const NEEDS_TRUST: ReadonlySet<CommandId> = new Set([
  COMMANDS.indexWorkspace, COMMANDS.rebuildIndex, COMMANDS.extractSelection, COMMANDS.extractFile, COMMANDS.extractWorkspace,
]);
const NEEDS_FOLDER: ReadonlySet<CommandId> = new Set([
  COMMANDS.indexWorkspace, COMMANDS.rebuildIndex, COMMANDS.clearIndex, COMMANDS.searchWorkspace, COMMANDS.findSimilar, COMMANDS.extractWorkspace,
]);

const TITLES: Record<CommandId, string> = {
  [COMMANDS.indexWorkspace]: 'Index Workspace',
  [COMMANDS.searchWorkspace]: 'Search Workspace',
  [COMMANDS.findSimilar]: 'Find Similar to Selection',
  [COMMANDS.inspectSelection]: 'Inspect Selection',
  [COMMANDS.extractSelection]: 'Extract Embeddings of Selection',
  [COMMANDS.extractFile]: 'Extract Embeddings of Current File',
  [COMMANDS.extractWorkspace]: 'Extract Embeddings of Workspace',
  [COMMANDS.chooseModel]: 'Choose Model',
  [COMMANDS.chooseRecipe]: 'Choose Layer and Pooling',
  [COMMANDS.rebuildIndex]: 'Rebuild Index',
  [COMMANDS.clearIndex]: 'Clear Index',
  [COMMANDS.showLog]: 'Show Log',
};

/** Checks shared by all commands; returns false (after telling the user) when the command cannot run. */
function preconditions(id: CommandId): boolean {
  if (NEEDS_FOLDER.has(id) && !vscode.workspace.workspaceFolders?.length) {
    void vscode.window.showWarningMessage(`Embedding Lens: "${TITLES[id]}" needs an open folder or workspace.`);
    return false;
  }
  if (NEEDS_TRUST.has(id) && !vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage(
      `Embedding Lens: indexing and extraction are off in an untrusted workspace. Trust this workspace (Workspaces: Manage Workspace Trust) to use "${TITLES[id]}".`,
    );
    return false;
  }
  return true;
}

function notAvailableYet(id: CommandId): void {
  void vscode.window.showInformationMessage(`Embedding Lens: "${TITLES[id]}" is not available yet in this version.`);
}

/** The selection of the active editor as text + where it came from, or a message why not. */
function currentSelection(): { text: string; source: TextSource } | string {
  const editor = vscode.window.activeTextEditor;
  if (!editor) return 'Open a file and select some text first.';
  const sel = editor.selection;
  const text = editor.document.getText(sel);
  if (!text.trim()) return 'Select some text first (the selection is empty).';
  const doc = editor.document;
  return {
    text,
    source: {
      label: doc.isUntitled ? doc.fileName : vscode.workspace.asRelativePath(doc.uri, true),
      uri: doc.uri.toString(),
      startLine: sel.start.line,
      // A selection ending at the start of a line does not include that line.
      endLine: sel.end.character === 0 && sel.end.line > sel.start.line ? sel.end.line - 1 : sel.end.line,
    },
  };
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const { log, engine } = ctx;

  async function inspect(text: string, source: TextSource | undefined): Promise<void> {
    const panel = InspectorPanel.show(ctx.extensionUri, inspectorHost);
    panel.post({ type: 'loading', text, source });
    try {
      const cfg = readConfig(source ? vscode.Uri.parse(source.uri) : undefined);
      const data = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Embedding Lens: inspecting the selection', cancellable: true },
        async (_progress, token) => {
          const abort = abortSignalOf(token);
          try {
            await engine.request('load', engineLoadOptions(cfg, vscode.workspace.isTrusted, ctx.modelCacheDir), { signal: abort.signal });
            return await engine.request('inspect', { text }, { signal: abort.signal });
          } finally {
            abort.dispose();
          }
        },
      );
      panel.post({ type: 'inspection', data: { ...data, source } });
    } catch (err) {
      const message = describeError(err, log);
      panel.post({ type: 'error', message, text, source });
      if (!(err instanceof Error && err.name === 'AbortError')) void vscode.window.showErrorMessage(message);
    }
  }

  const inspectorHost: InspectorHost = { log, reinspect: (text, source) => void inspect(text, source) };

  const handlers: Record<CommandId, () => unknown> = {
    [COMMANDS.showLog]: () => log.show(true),
    [COMMANDS.inspectSelection]: () => {
      const sel = currentSelection();
      // Messages are not awaited: their promise settles only when the user dismisses them.
      if (typeof sel === 'string') return void vscode.window.showWarningMessage(`Embedding Lens: ${sel}`);
      return inspect(sel.text, sel.source);
    },
    [COMMANDS.chooseModel]: () => chooseModel(log),
    [COMMANDS.chooseRecipe]: () => chooseRecipe(),
    [COMMANDS.indexWorkspace]: () => notAvailableYet(COMMANDS.indexWorkspace),
    [COMMANDS.searchWorkspace]: () => notAvailableYet(COMMANDS.searchWorkspace),
    [COMMANDS.findSimilar]: () => notAvailableYet(COMMANDS.findSimilar),
    [COMMANDS.extractSelection]: () => notAvailableYet(COMMANDS.extractSelection),
    [COMMANDS.extractFile]: () => notAvailableYet(COMMANDS.extractFile),
    [COMMANDS.extractWorkspace]: () => notAvailableYet(COMMANDS.extractWorkspace),
    [COMMANDS.rebuildIndex]: () => notAvailableYet(COMMANDS.rebuildIndex),
    [COMMANDS.clearIndex]: () => notAvailableYet(COMMANDS.clearIndex),
  };

  const disposables = (Object.keys(handlers) as CommandId[]).map((id) =>
    vscode.commands.registerCommand(id, async () => {
      if (!preconditions(id)) return;
      log.debug(`command ${id}`);
      try {
        await handlers[id]();
      } catch (err) {
        void vscode.window.showErrorMessage(describeError(err, log));
      }
    }),
  );
  disposables.push(vscode.window.registerWebviewPanelSerializer('embeddingLens.inspector', InspectorPanel.serializer(ctx.extensionUri, inspectorHost)));
  return disposables;
}

/** Where a setting chosen from a command is written: the workspace if one is open, else the user settings. */
function recipeTarget(): vscode.ConfigurationTarget {
  return vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
}

const SUGGESTED_MODELS = [
  { id: 'Xenova/all-MiniLM-L6-v2', detail: 'sentence-transformers MiniLM, 6 layers, 384 dims' },
  { id: 'Xenova/bge-small-en-v1.5', detail: 'BGE small, 12 layers, 384 dims' },
  { id: 'Xenova/bert-base-uncased', detail: 'BERT base, 12 layers, 768 dims' },
  { id: 'Xenova/distilbert-base-uncased', detail: 'DistilBERT, 6 layers, 768 dims' },
];

async function chooseModel(log: vscode.LogOutputChannel): Promise<void> {
  const current = vscode.workspace.getConfiguration(SECTION).get<string>('model', '');
  type Item = vscode.QuickPickItem & { value?: string; action?: 'folder' | 'hub' };
  const items: Item[] = [
    ...SUGGESTED_MODELS.map((m) => ({ label: m.id, detail: m.detail, description: m.id === current ? 'current' : undefined, value: m.id })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Model folder…', detail: 'config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx', action: 'folder' },
    { label: '$(cloud) Other Hugging Face id…', action: 'hub' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'Embedding Lens: Choose Model', placeHolder: `Current: ${current}` });
  if (!pick) return;
  let model = pick.value;
  if (pick.action === 'folder') {
    const folder = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this model folder' });
    model = folder?.[0]?.fsPath;
  } else if (pick.action === 'hub') {
    model = (await vscode.window.showInputBox({
      title: 'Hugging Face model id', placeHolder: 'owner/name (the repository needs ONNX weights in onnx/)', value: current,
      validateInput: (v) => (/^[\w.-]+\/[\w.-]+$/.test(v.trim()) ? undefined : 'Expected owner/name'),
    }))?.trim();
  }
  if (!model) return;
  if (path.isAbsolute(model) === false && !/^[\w.-]+\/[\w.-]+$/.test(model)) throw new UserError(`"${model}" is neither a model folder nor a hub id.`);
  await vscode.workspace.getConfiguration(SECTION).update('model', model, vscode.ConfigurationTarget.Global);
  log.info(`model set to ${model}`);
}

async function chooseRecipe(): Promise<void> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const layers: (vscode.QuickPickItem & { value?: string })[] = [
    { label: 'last', detail: 'the last layer (what most embedding models use)', value: 'last' },
    { label: '-2', detail: 'the second-to-last layer', value: '-2' },
    { label: 'middle', detail: 'the middle layer', value: 'middle' },
    { label: 'first', detail: 'the first transformer layer', value: 'first' },
    { label: 'embeddings', detail: 'the embeddings output, before any layer (0)', value: 'embeddings' },
    { label: 'mean(-4..-1)', detail: 'element-wise mean of the last four layers', value: 'mean(-4..-1)' },
    { label: '-1,-2', detail: 'last two layers concatenated', value: '-1,-2' },
    { label: 'Other…', detail: 'type a layer spec' },
  ];
  const currentLayer = cfg.get<string>('layer', 'last');
  for (const l of layers) if (l.value === currentLayer) l.description = 'current';
  const layerPick = await vscode.window.showQuickPick(layers, { title: 'Embedding Lens: Layer (1/2)', placeHolder: `Current: ${currentLayer}` });
  if (!layerPick) return;
  const layer = layerPick.value ?? (await vscode.window.showInputBox({ title: 'Layer spec', value: currentLayer, placeHolder: 'e.g. 3, -2, mean(-4..-1), -1,-2' }))?.trim();
  if (!layer) return;
  const currentPool = cfg.get<string>('pooling', 'mean');
  const poolPick = await vscode.window.showQuickPick(
    POOLING_MODES.map((p) => ({ label: p, description: p === currentPool ? 'current' : undefined })),
    { title: 'Embedding Lens: Pooling (2/2)', placeHolder: `Current: ${currentPool}` },
  );
  if (!poolPick) return;
  let wordPool: string | undefined;
  if (poolPick.label === 'words') {
    wordPool = (await vscode.window.showQuickPick(WORD_POOLINGS.map((w) => ({ label: w })), { title: 'Embedding Lens: Word pooling' }))?.label;
    if (!wordPool) return;
  }
  const target = recipeTarget();
  await cfg.update('layer', layer, target);
  await cfg.update('pooling', poolPick.label, target);
  if (wordPool) await cfg.update('wordPooling', wordPool, target);
}
