// Builds the extension's services and registers them with their owner (context.subscriptions).
// Activation must stay cheap: no model, no native module, no worker is started here — the engine
// worker starts on the first command that needs it. The time activation took is logged and exposed.
import * as vscode from 'vscode';
import type { EngineStatus } from '../protocol/worker';
import { registerCommands } from './commands';
import { affectsEngine, readConfig, SECTION } from './config';
import { EngineClient } from './engineClient';
import { createLog } from './log';
import { StatusBar } from './statusBar';

/** What `activate` returns (`vscode.extensions.getExtension(...).exports`). */
export interface EmbeddingLensApi {
  readonly version: string;
  /** Wall time of `activate`, in milliseconds. */
  readonly activationMs: number;
  /** Whether the engine worker thread has been started (it is not, until a command needs it). */
  engineStarted(): boolean;
  /** Starts the worker if needed and asks it what it can do. */
  engineStatus(): Promise<EngineStatus>;
}

export function activateExtension(context: vscode.ExtensionContext): EmbeddingLensApi {
  const started = performance.now();
  const log = createLog();
  context.subscriptions.push(log);

  const engine = new EngineClient(vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath, log);
  context.subscriptions.push({ dispose: () => void engine.dispose() });

  const statusBar = new StatusBar();
  context.subscriptions.push(statusBar);
  const refreshConfig = () => {
    try {
      statusBar.setConfig(readConfig());
    } catch (err) {
      statusBar.setConfig(undefined);
      log.warn(err instanceof Error ? err.message : String(err));
    }
  };
  refreshConfig();
  statusBar.setVisible((vscode.workspace.workspaceFolders?.length ?? 0) > 0);

  context.subscriptions.push(
    ...registerCommands({
      extensionUri: context.extensionUri,
      modelCacheDir: vscode.Uri.joinPath(context.globalStorageUri, 'models').fsPath,
      log,
      engine,
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      refreshConfig();
      if (affectsEngine(e) && engine.started) {
        log.info('engine settings changed: the model will be reloaded on next use');
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
    engineStatus: () => engine.request('status', {}),
  };
}
