// Builds the extension's services and registers them with their owner (context.subscriptions).
// Activation must stay cheap: no model, no native module, no worker is started here — the engine
// worker starts on the first command that needs it. The time activation took is logged and exposed.
import * as vscode from 'vscode';
import type { RefreshSummary } from '../core/index/indexer';
import type { SearchMode } from '../core/search/search';
import type { EngineStatus } from '../protocol/worker';
import { commandBlocker, registerCommands } from './commands';
import type { CommandId } from './commandIds';
import { affectsEngine, engineProcessConfig, readConfig, SECTION, settingSource } from './config';
import { EngineAccess, storeSetting, windowScope } from './engineAccess';
import { EngineClient } from './engineClient';
import { IndexService } from './indexService';
import { InspectorPanel, registerInspector } from './inspectorPanel';
import { createLog } from './log';
import { ResultHighlighter, searchFolders } from './searchPick';
import { abortSignalOf } from './cancellation';
import { StatusBar } from './statusBar';
import { applySweepChoice } from './sweepCommand';

/** What `activate` returns (`vscode.extensions.getExtension(...).exports`). */
export interface EmbeddingLensApi {
  readonly version: string;
  /** Wall time of `activate`, in milliseconds. */
  readonly activationMs: number;
  /** Whether the engine process is running (it is not until a command needs it, nor after an idle stop). */
  engineStarted(): boolean;
  /** The engine process's id, if it runs. */
  enginePid(): number | undefined;
  /** Engine processes started and crashed so far in this window. */
  engineCounts(): { started: number; crashed: number; idleStops: number };
  /** Resident memory of the extension host and of the engine process (bytes). */
  memory(): { hostRssBytes: number; hostHeapUsedBytes: number; engineRssBytes?: number; enginePid?: number };
  /** Starts the worker if needed and asks it what it can do. */
  engineStatus(): Promise<EngineStatus>;
  /**
   * Indexes every workspace folder (what "Index Workspace" does, without its notification): for other
   * extensions and scripts. Cancelling the token stops after the current batch; finished files are kept.
   */
  index(options?: { rebuild?: boolean; token?: vscode.CancellationToken; onProgress?: (fraction: number, message: string) => void }): Promise<RefreshSummary[]>;
  /** Searches every folder's index with the current settings' recipe. */
  search(query: string, mode?: SearchMode): Promise<{ path: string; folder: string; startLine: number; endLine: number; score: number; preview: string; match?: { startLine: number; endLine: number }; partial?: boolean }[]>;
  /** Where a workspace folder's index is stored (by folder path or name). */
  storageDirFor(folder: string): string | undefined;
  /** The status bar's text, its index state and model in words, and its tooltip. */
  statusBar(): { text: string; state: string; kind: string; model: string; tooltip: string };
  /**
   * The range a search result highlighted last, if it is still highlighted (0-based lines), and the
   * matched piece inside it when the result is a whole function.
   */
  highlightedRange(): { uri: string; startLine: number; endLine: number; match?: { startLine: number; endLine: number } } | undefined;
  /** Whether a PostgreSQL password for the shared index of the settings is in VS Code's secret storage. */
  hasPostgresPassword(): Promise<boolean>;
  /** Why a command would refuse to run in a window with this trust and folder count (undefined: it runs). */
  commandBlocker(command: string, state: { trusted: boolean; folders: number }): string | undefined;
}

export function activateExtension(context: vscode.ExtensionContext): EmbeddingLensApi {
  const started = performance.now();
  const log = createLog();
  context.subscriptions.push(log);

  const engine = new EngineClient(vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath, log, {
    ...engineProcessConfig(),
    onCrash: (message) => {
      void vscode.window.showWarningMessage(`Embedding Lens: ${message}`, 'Show Log').then((c) => c && log.show(true));
    },
  });
  context.subscriptions.push({ dispose: () => void engine.dispose() });

  const statusBar = new StatusBar();
  context.subscriptions.push(statusBar);
  const access = new EngineAccess({
    engine,
    log,
    modelCacheDir: vscode.Uri.joinPath(context.globalStorageUri, 'models').fsPath,
    workspaceStorage: context.storageUri?.fsPath,
    globalStorage: context.globalStorageUri.fsPath,
    secrets: context.secrets,
  });
  const index = new IndexService(access, statusBar);
  index.watch();
  const highlighter = new ResultHighlighter();
  context.subscriptions.push(index, highlighter);
  // The status bar reads the settings exactly as the commands do (same scope), and shows where the
  // model setting comes from and which model the engine has loaded.
  const refreshConfig = () => {
    try {
      const cfg = readConfig(windowScope());
      statusBar.setConfig(cfg);
      const loaded = access.loaded;
      statusBar.setModel({ configured: cfg.model, source: settingSource('model', windowScope()), loaded: loaded && { model: loaded.model, folder: loaded.folder } });
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      statusBar.setConfig(undefined, message);
      log.warn(message);
    }
  };
  context.subscriptions.push(access.onDidLoad(() => refreshConfig()));
  refreshConfig();
  statusBar.setVisible((vscode.workspace.workspaceFolders?.length ?? 0) > 0);

  context.subscriptions.push(
    ...registerInspector({ extensionUri: context.extensionUri, access }),
    ...registerCommands({ extensionUri: context.extensionUri, log, engine, access, index, highlighter, memento: context.workspaceState }),
    InspectorPanel.onApplySweep((choice) => void applySweepChoice(choice, log).catch((err) => log.error(String(err)))),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      refreshConfig();
      if (['model', 'layer', 'pooling', 'wordPooling', 'normalize', 'store'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`))) index.recipeChanged();
      if (e.affectsConfiguration(`${SECTION}.engineIdleMinutes`) || e.affectsConfiguration(`${SECTION}.engineMemoryBudgetMB`)) engine.configure(engineProcessConfig());
      if (affectsEngine(e) && engine.started) {
        log.info('engine settings changed: the model will be reloaded on next use');
        access.forgetLoaded();
        void engine.request('unload', {}).catch(() => undefined);
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => statusBar.setVisible((vscode.workspace.workspaceFolders?.length ?? 0) > 0)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => log.info('workspace trusted: indexing and extraction enabled')),
  );

  const version = String(context.extension.packageJSON.version ?? '');
  const activationMs = performance.now() - started;
  log.info(`Embedding Lens ${version} activated in ${activationMs.toFixed(1)} ms (trusted: ${vscode.workspace.isTrusted}, folders: ${vscode.workspace.workspaceFolders?.length ?? 0})`);
  return {
    version,
    activationMs,
    engineStarted: () => engine.started,
    enginePid: () => engine.pid,
    engineCounts: () => ({ ...engine.counts }),
    memory: () => {
      const m = process.memoryUsage();
      return { hostRssBytes: m.rss, hostHeapUsedBytes: m.heapUsed, engineRssBytes: engine.residentBytes(), enginePid: engine.pid };
    },
    engineStatus: () => engine.request('status', {}),
    index: async (options = {}) => {
      const abort = options.token ? abortSignalOf(options.token) : undefined;
      try {
        return await index.run({ rebuild: options.rebuild, signal: abort?.signal, onProgress: options.onProgress });
      } finally {
        abort?.dispose();
      }
    },
    search: async (query, mode = 'hybrid') => {
      const hits = await searchFolders(access, query, mode, new AbortController().signal, index);
      return hits.map((h) => ({ path: h.path, folder: h.folder.name, startLine: h.startLine, endLine: h.endLine, score: h.score, preview: h.preview, ...(h.match ? { match: { startLine: h.match.startLine, endLine: h.match.endLine } } : {}), ...(h.partial ? { partial: true } : {}) }));
    },
    storageDirFor: (folder) => {
      const f = vscode.workspace.workspaceFolders?.find((w) => w.name === folder || w.uri.fsPath === folder);
      return f && access.storageDirFor(f);
    },
    statusBar: () => ({ text: statusBar.text, state: statusBar.describeState(), kind: statusBar.indexState.kind, model: statusBar.describeModel(), tooltip: statusBar.tooltipText }),
    highlightedRange: () => {
      const h = highlighter.highlighted;
      return h && { uri: h.uri.toString(), startLine: h.range.start.line, endLine: h.range.end.line, ...(h.match ? { match: { startLine: h.match.start.line, endLine: h.match.end.line } } : {}) };
    },
    commandBlocker: (command, state) => commandBlocker(command as CommandId, state),
    hasPostgresPassword: async () => {
      const url = storeSetting(readConfig(windowScope()));
      return !!url && (await access.hasStorePassword(url));
    },
  };
}
