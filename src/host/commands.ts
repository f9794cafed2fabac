// Command handlers. Every command of package.json is registered here (an integration test checks it).
// Each handler returns what it did (the opened hit, the files written, the index summaries), so
// keybindings, other extensions and the in-host tests can use `executeCommand`'s result.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEFAULT_RECIPE } from '../core/recipe';
import { DEFAULT_MODEL } from '../core/model/modelSource';
import type { SearchMode } from '../core/search/search';
import { UserError, type PoolingMode } from '../core/types';
import type { TextSource } from '../protocol/panel';
import { abortSignalOf } from './cancellation';
import { COMMANDS, type CommandId } from './commandIds';
import { pickSettingsTarget, POOLING_MODES, readConfig, recipeOf, SECTION, type SettingsTargetName } from './config';
import type { EngineClient } from './engineClient';
import { diskFolders, showFailure, storeSetting, windowScope, type EngineAccess } from './engineAccess';
import { activeTextProblem, pickRecipeParts, runExtract, type ExtractArgs } from './extractCommands';
import type { IndexService } from './indexService';
import { InspectorPanel, type InspectorHost } from './inspectorPanel';
import { describeError } from './log';
import { SEARCH_MODES, showHitsPick, showSearchPick, type FolderHit, type ResultHighlighter } from './searchPick';
import { runSweepCommand } from './sweepCommand';

export interface CommandContext {
  extensionUri: vscode.Uri;
  log: vscode.LogOutputChannel;
  engine: EngineClient;
  access: EngineAccess;
  index: IndexService;
  highlighter: ResultHighlighter;
  /** Remembers the search mode between searches. */
  memento: vscode.Memento;
}

/** Commands that need a trusted workspace (they read workspace files and write files). */
const NEEDS_TRUST: ReadonlySet<CommandId> = new Set([
  COMMANDS.indexWorkspace, COMMANDS.rebuildIndex, COMMANDS.extractSelection, COMMANDS.extractFile, COMMANDS.extractWorkspace, COMMANDS.findBestLayer,
]);
const NEEDS_FOLDER: ReadonlySet<CommandId> = new Set([
  COMMANDS.indexWorkspace, COMMANDS.rebuildIndex, COMMANDS.clearIndex, COMMANDS.searchWorkspace, COMMANDS.findSimilar, COMMANDS.extractWorkspace, COMMANDS.findBestLayer,
]);

export const TITLES: Record<CommandId, string> = {
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
  [COMMANDS.findBestLayer]: 'Find the Best Layer for This Workspace',
  [COMMANDS.setPostgresPassword]: 'Set PostgreSQL Password',
};

/**
 * Why a command cannot run in this window, or undefined when it can: no folder open, or (for the
 * commands that read workspace files and write files) a workspace that is not trusted.
 */
export function commandBlocker(id: CommandId, state: { trusted: boolean; folders: number }): string | undefined {
  if (NEEDS_FOLDER.has(id) && state.folders === 0) {
    return `"${TITLES[id]}" needs an open folder or workspace. Open a folder first (File: Open Folder…).`;
  }
  if (NEEDS_TRUST.has(id) && !state.trusted) {
    return `indexing, extraction and the layer sweep are off in an untrusted workspace: they read its files and run a model on them. Trust this workspace (Workspaces: Manage Workspace Trust) to use "${TITLES[id]}".`;
  }
  return undefined;
}

/** Checks shared by all commands; returns false (after telling the user) when the command cannot run. */
function preconditions(id: CommandId, log: vscode.LogOutputChannel): boolean {
  const blocker = commandBlocker(id, { trusted: vscode.workspace.isTrusted, folders: diskFolders().length });
  if (blocker) {
    log.info(`${TITLES[id]}: not run: ${blocker}`);
    const actions = blocker.includes('untrusted') ? ['Manage Workspace Trust'] : [];
    void vscode.window.showWarningMessage(`Embedding Lens: ${blocker}`, ...actions).then((c) => {
      if (c) void vscode.commands.executeCommand('workbench.trust.manage');
    });
    return false;
  }
  return true;
}

/** The selection of the active editor as text + where it came from, or a message why not. */
function currentSelection(): { text: string; source: TextSource } | string {
  const editor = vscode.window.activeTextEditor;
  if (!editor) return activeTextProblem() ?? 'Open a file and select some text first.';
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
  const { log, engine, access } = ctx;

  async function inspect(text: string, source: TextSource | undefined): Promise<void> {
    const panel = InspectorPanel.show(ctx.extensionUri, inspectorHost);
    panel.post({ type: 'loading', text, source });
    try {
      const data = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Embedding Lens: inspecting the selection', cancellable: true },
        async (progress, token) => {
          const abort = abortSignalOf(token);
          try {
            const scope = source ? vscode.Uri.parse(source.uri) : windowScope();
            await access.loadModel(scope, abort.signal, progress);
            // The pooled vectors follow the settings' recipe (normalization as index and extract apply it).
            const { normalize, excludeSpecialTokens } = recipeOf(readConfig(scope));
            return await engine.request('inspect', { text, recipe: { normalize, excludeSpecialTokens } }, { signal: abort.signal });
          } finally {
            abort.dispose();
          }
        },
      );
      panel.post({ type: 'inspection', data: { ...data, source } });
    } catch (err) {
      const message = describeError(err, log);
      panel.post({ type: 'error', message, text, source });
      if (!(err instanceof Error && err.name === 'AbortError')) void showFailure(err, log, 'inspecting');
    }
  }

  const inspectorHost: InspectorHost = { log, reinspect: (text, source) => void inspect(text, source) };

  /**
   * A command that cannot run on what is open says why (a warning, not awaited: its promise settles
   * only when dismissed) and logs it, so the log tells a refusal from a failure.
   */
  function notRun(id: CommandId, why: string): undefined {
    log.info(`${TITLES[id]}: not run: ${why}`);
    void vscode.window.showWarningMessage(`Embedding Lens: ${why}`);
    return undefined;
  }

  async function findSimilar(): Promise<FolderHit | undefined> {
    const sel = currentSelection();
    if (typeof sel === 'string') return notRun(COMMANDS.findSimilar, sel);
    const doc = vscode.window.activeTextEditor!.document;
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri);
    // A saved file of a folder: compare with its lines (and leave the selection's own chunk out);
    // anything else (unsaved edits, untitled, outside the workspace): compare with the text.
    const byRange = folder && folder.uri.scheme === 'file' && doc.uri.scheme === 'file' && !doc.isDirty;
    const folders = byRange ? [folder] : diskFolders();
    let hits: FolderHit[];
    try {
      hits = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Embedding Lens: finding similar code', cancellable: true },
        async (progress, token) => {
          const abort = abortSignalOf(token);
          try {
            await access.loadModel(doc.uri, abort.signal, progress);
            const out: FolderHit[] = [];
            let firstError: unknown;
            for (const f of folders) {
              const t = access.targetFor(f);
              const where = byRange
                ? { path: path.relative(f.uri.fsPath, doc.uri.fsPath).split(path.sep).join('/'), startLine: sel.source.startLine + 1, endLine: sel.source.endLine + 1 }
                : { text: sel.text };
              try {
                const found = await engine.request('similar', { root: t.root, storageDir: t.storageDir, recipe: t.recipe, k: 20, ...where, ...(t.store ? { store: t.store } : {}) }, { signal: abort.signal });
                out.push(...found.map((h) => ({ ...h, folder: f, uri: vscode.Uri.file(path.join(t.root, h.path)) })));
              } catch (err) {
                if (err instanceof Error && err.name === 'AbortError') throw err;
                firstError ??= err;
              }
            }
            if (!out.length && firstError) throw firstError;
            return out.sort((a, b) => b.score - a.score).slice(0, 20);
          } finally {
            abort.dispose();
          }
        },
      );
    } catch (err) {
      void showFailure(err, log, 'finding similar code');
      return undefined;
    }
    const where = `${sel.source.label}:${sel.source.startLine + 1}-${sel.source.endLine + 1}`;
    return showHitsPick(`Embedding Lens: similar to ${where}`, hits, ctx.highlighter);
  }

  const handlers: Record<CommandId, (...args: any[]) => unknown> = {
    [COMMANDS.showLog]: () => log.show(true),
    [COMMANDS.inspectSelection]: () => {
      const sel = currentSelection();
      if (typeof sel === 'string') return notRun(COMMANDS.inspectSelection, sel);
      return inspect(sel.text, sel.source);
    },
    [COMMANDS.chooseModel]: () => chooseModel(log),
    [COMMANDS.chooseRecipe]: (args?: { layer?: string; pooling?: string; target?: SettingsTargetName }) => chooseRecipe(args ?? {}),
    [COMMANDS.indexWorkspace]: () => ctx.index.runWithProgress(),
    [COMMANDS.rebuildIndex]: () => ctx.index.runWithProgress({ rebuild: true }),
    [COMMANDS.clearIndex]: async () => {
      const removed = await ctx.index.clear();
      const shared = diskFolders().some((f) => { try { return !!readConfig(f.uri).store; } catch { return false; } });
      void vscode.window.showInformationMessage(
        (removed.length ? 'Embedding Lens: the index was removed. "Index Workspace" builds it again.' : 'Embedding Lens: there was no index to remove.') +
          (shared ? ' The shared PostgreSQL index (embeddingLens.store) is kept: it is the team\'s, and is removed in the database.' : ''),
      );
      return removed;
    },
    [COMMANDS.searchWorkspace]: (args?: { query?: string; mode?: SearchMode }) =>
      showSearchPick(access, ctx.highlighter, {
        index: ctx.index,
        query: typeof args?.query === 'string' ? args.query : undefined,
        mode: args?.mode && SEARCH_MODES.includes(args.mode) ? args.mode : ctx.memento.get<SearchMode>(MODE_KEY, 'hybrid'),
        onModeChange: (m) => void ctx.memento.update(MODE_KEY, m),
      }),
    [COMMANDS.findSimilar]: () => findSimilar(),
    [COMMANDS.extractSelection]: (args?: ExtractArgs) => runExtract(access, 'selection', args ?? {}),
    [COMMANDS.extractFile]: (args?: ExtractArgs) => runExtract(access, 'file', args ?? {}),
    [COMMANDS.extractWorkspace]: (args?: ExtractArgs) => runExtract(access, 'workspace', args ?? {}),
    [COMMANDS.findBestLayer]: (args?: { folder?: string; maxPairs?: number }) => runSweepCommand(access, args ?? {}),
    [COMMANDS.setPostgresPassword]: (args?: { password?: string }) => setPostgresPassword(access, ctx.index, args ?? {}),
  };

  const disposables = (Object.keys(handlers) as CommandId[]).map((id) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      if (!preconditions(id, log)) return undefined;
      log.debug(`command ${id}`);
      try {
        // Arguments come from keybindings, other extensions or tests; a non-object first argument
        // (a context-menu URI) is not ours.
        const first = args[0];
        return await handlers[id](first && typeof first === 'object' && !(first instanceof vscode.Uri) ? first : undefined);
      } catch (err) {
        void showFailure(err, log, TITLES[id]);
        return undefined;
      }
    }),
  );
  disposables.push(vscode.window.registerWebviewPanelSerializer('embeddingLens.inspector', InspectorPanel.serializer(ctx.extensionUri, inspectorHost)));
  return disposables;
}

const MODE_KEY = 'embeddingLens.searchMode';

/**
 * Set PostgreSQL Password: asks for the password of the shared index's user (a password box) and keeps
 * it in VS Code's secret storage, keyed by user, host and port; an empty answer deletes it. A
 * `password` argument (scripts, tests) skips the question. Returns whether one is saved now.
 */
async function setPostgresPassword(access: EngineAccess, index: IndexService, args: { password?: string }): Promise<{ saved: boolean; who: string } | undefined> {
  const url = storeSetting(readConfig(windowScope()));
  if (!url) {
    const choice = await vscode.window.showWarningMessage(
      `Embedding Lens: no shared index is set. Put its connection string (postgres://user@host:port/database, without the password) in ${SECTION}.store first.`,
      'Open Settings',
    );
    if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.store`);
    return undefined;
  }
  const u = new URL(url);
  const who = `${decodeURIComponent(u.username) || '(default user)'}@${u.hostname}:${u.port || '5432'}`;
  const password = typeof args.password === 'string' ? args.password : await vscode.window.showInputBox({
    title: 'Embedding Lens: PostgreSQL password',
    prompt: `Password of ${who} for the shared index. Kept in VS Code's secret storage, never in settings. Empty: forget the saved one.`,
    password: true,
    ignoreFocusOut: true,
  });
  if (password === undefined) return undefined;
  await access.setStorePassword(url, password);
  access.log.info(password ? `saved the PostgreSQL password of ${who} in the secret storage` : `removed the PostgreSQL password of ${who} from the secret storage`);
  void vscode.window.showInformationMessage(password ? `Embedding Lens: the password of ${who} is saved in VS Code's secret storage.` : `Embedding Lens: the saved password of ${who} was removed.`);
  index.recipeChanged(); // the index state is read again with the new credentials
  return { saved: !!password, who };
}

const SUGGESTED_MODELS = [
  { id: 'all-MiniLM-L6-v2', detail: 'built in (no download): sentence-transformers MiniLM, 6 layers, 384 dims' },
  { id: 'Xenova/all-MiniLM-L6-v2', detail: 'sentence-transformers MiniLM from the Hub (fp32 and int8 graphs)' },
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
  if (model !== DEFAULT_MODEL && path.isAbsolute(model) === false && !/^[\w.-]+\/[\w.-]+$/.test(model)) throw new UserError(`"${model}" is neither a model folder nor a hub id.`);
  await vscode.workspace.getConfiguration(SECTION).update('model', model, vscode.ConfigurationTarget.Global);
  log.info(`model set to ${model}`);
}

/**
 * Choose Layer and Pooling: the two picks, then where to save them (User or Workspace settings).
 * Arguments (keybindings, tests) skip the matching questions. Returns what was written, or undefined.
 */
async function chooseRecipe(args: { layer?: string; pooling?: string; target?: SettingsTargetName }): Promise<{ layer: string; pooling: string; target: string } | undefined> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const parts = args.layer && args.pooling && (POOLING_MODES as readonly string[]).includes(args.pooling)
    ? { layer: args.layer, pooling: args.pooling as PoolingMode, wordPooling: undefined }
    : await pickRecipeParts({ layer: cfg.get<string>('layer', DEFAULT_RECIPE.layer), pooling: cfg.get<string>('pooling', DEFAULT_RECIPE.pool) }, false);
  if (!parts) return undefined;
  const target = await pickSettingsTarget(`layer ${parts.layer} and pooling ${parts.pooling}`, args.target);
  if (target === undefined) return undefined;
  await cfg.update('layer', parts.layer, target);
  await cfg.update('pooling', parts.pooling, target);
  if (parts.wordPooling) await cfg.update('wordPooling', parts.wordPooling, target);
  return { layer: parts.layer, pooling: parts.pooling, target: target === vscode.ConfigurationTarget.Global ? 'user' : 'workspace' };
}
