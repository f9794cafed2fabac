// Owns the workspace index from the host's side: full runs (Index Workspace / Rebuild Index, with a
// cancellable notification), quiet incremental runs after saves, creates, deletes and renames, Clear
// Index, and the status bar's index state. Runs are serialized: the engine never refreshes one store
// twice at the same time. Cancelling keeps every finished file (the indexer checkpoints), so the next
// run only does what is left.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RefreshSummary } from '../core/index/indexer';
import { abortSignalOf } from './cancellation';
import { readConfig } from './config';
import { diskFolders, showFailure, type EngineAccess } from './engineAccess';
import type { StatusBar } from './statusBar';

/** Quiet period after the last save / create / delete before a folder is refreshed. */
const AUTO_REFRESH_DELAY_MS = 1500;

export interface IndexRunOptions {
  rebuild?: boolean;
  /** Which folders; default every folder on disk. */
  folders?: readonly vscode.WorkspaceFolder[];
}

export class IndexService implements vscode.Disposable {
  private chain: Promise<unknown> = Promise.resolve();
  /** Last summary per folder (by URI), for the status bar's chunk count. */
  private readonly summaries = new Map<string, RefreshSummary>();
  /** Folders with an index on disk: only these are refreshed automatically. */
  private readonly indexed = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly autoAbort = new AbortController();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after every index change (a run finished, an index was cleared). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly access: EngineAccess, private readonly statusBar: StatusBar) {
    this.disposables.push(this.changed);
    for (const folder of diskFolders()) if (access.hasStoredIndex(folder)) this.indexed.add(folder.uri.toString());
    this.updateStatus();
  }

  /** Starts listening for saves and file events (incremental re-index). */
  watch(): void {
    const watcher = vscode.workspace.createFileSystemWatcher('**/*', false, true, false);
    this.disposables.push(
      watcher,
      watcher.onDidCreate((uri) => this.onFileEvent(uri)),
      watcher.onDidDelete((uri) => this.onFileEvent(uri)),
      vscode.workspace.onDidSaveTextDocument((doc) => this.onFileEvent(doc.uri)),
      vscode.workspace.onDidRenameFiles((e) => e.files.forEach((f) => (this.onFileEvent(f.oldUri), this.onFileEvent(f.newUri)))),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.updateStatus()),
    );
  }

  /**
   * The model or the recipe changed: the chunk counts and the automatic refresh belonged to the old
   * recipe's index (a save must not quietly embed the whole workspace with the new one).
   */
  recipeChanged(): void {
    this.summaries.clear();
    this.indexed.clear();
    this.updateStatus();
  }

  /** Whether a folder has an index (made in this window or found on disk at start). */
  hasIndex(folder: vscode.WorkspaceFolder): boolean {
    return this.indexed.has(folder.uri.toString());
  }

  /** Runs `fn` after every earlier index operation has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Indexes the folders one after the other (after any run in flight). Progress is a fraction of all
   * folders and a line of text. The programmatic entry (the extension's API); the commands add the
   * notification around it.
   */
  async run(options: IndexRunOptions & { signal?: AbortSignal; onProgress?: (fraction: number, message: string) => void }): Promise<RefreshSummary[]> {
    const folders = options.folders ?? diskFolders();
    const signal = options.signal ?? new AbortController().signal;
    return this.exclusive(async () => {
      options.onProgress?.(0, 'loading the model…');
      await this.access.loadModel(folders[0]?.uri, signal);
      const out: RefreshSummary[] = [];
      for (const [n, folder] of folders.entries()) {
        out.push(await this.indexFolder(folder, options.rebuild ?? false, signal, (fraction, message) =>
          options.onProgress?.((n + fraction) / folders.length, folders.length > 1 ? `${folder.name}: ${message}` : message)));
      }
      return out;
    }).catch((err: unknown) => {
      this.updateStatus(err instanceof Error && err.name !== 'AbortError' ? err.message : undefined);
      throw err;
    });
  }

  /**
   * Index Workspace / Rebuild Index: every folder, in a cancellable notification. Returns the
   * summaries, or undefined when it was cancelled or failed (the user has been told).
   */
  async runWithProgress(options: IndexRunOptions = {}): Promise<RefreshSummary[] | undefined> {
    const folders = options.folders ?? diskFolders();
    if (!folders.length) {
      void vscode.window.showWarningMessage('Embedding Lens: there is no folder on disk to index (open a folder first).');
      return undefined;
    }
    const title = options.rebuild ? 'Embedding Lens: rebuilding the index' : 'Embedding Lens: indexing';
    try {
      const summaries = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          const abort = abortSignalOf(token);
          let reported = 0;
          try {
            return await this.run({
              ...options,
              folders,
              signal: abort.signal,
              onProgress: (fraction, message) => {
                progress.report({ message, increment: Math.max(0, fraction * 100 - reported) });
                reported = Math.max(reported, fraction * 100);
              },
            });
          } finally {
            abort.dispose();
          }
        },
      );
      const chunks = summaries.reduce((a, s) => a + s.chunksTotal, 0);
      const embedded = summaries.reduce((a, s) => a + s.chunksEmbedded, 0);
      const skipped = summaries.reduce((a, s) => a + s.skipped.length, 0);
      const secs = summaries.reduce((a, s) => a + s.ms, 0) / 1000;
      const files = summaries.reduce((a, s) => a + s.filesSeen, 0);
      this.access.log.info(`indexed ${files} files: ${chunks} chunks (${embedded} embedded now), ${skipped} skipped, ${secs.toFixed(1)} s`);
      void vscode.window
        .showInformationMessage(
          `Embedding Lens: ${chunks} chunks from ${files} files indexed in ${secs.toFixed(1)} s (${embedded} embedded now${skipped ? `, ${skipped} files skipped` : ''}).`,
          'Search Workspace',
        )
        .then((c) => c && vscode.commands.executeCommand('embeddingLens.searchWorkspace'));
      return summaries;
    } catch (err) {
      void showFailure(err, this.access.log, options.rebuild ? 'rebuilding the index' : 'indexing');
      return undefined;
    }
  }

  /** One folder's refresh; progress as a fraction of the folder and a line of text. */
  private async indexFolder(
    folder: vscode.WorkspaceFolder,
    rebuild: boolean,
    signal: AbortSignal,
    report: (fraction: number, message: string) => void,
  ): Promise<RefreshSummary> {
    const target = this.access.targetFor(folder);
    const { cfg } = target;
    this.statusBar.setIndexState({ kind: 'indexing' });
    this.access.log.info(`indexing ${folder.uri.fsPath} into ${target.storageDir}${rebuild ? ' (rebuild)' : ''}`);
    const summary = await this.access.engine.request(
      'index',
      { root: target.root, storageDir: target.storageDir, recipe: target.recipe, include: cfg.include, exclude: cfg.exclude, rebuild },
      {
        signal,
        onProgress: (p) => {
          if (p.phase === 'discover') report(0, 'finding files…');
          else if (p.phase === 'save') report(p.filesTotal ? p.filesDone / p.filesTotal : 1, 'saving…');
          else if (p.phase === 'index') {
            report(p.filesTotal ? p.filesDone / p.filesTotal : 0, `${p.filesDone}/${p.filesTotal} files, ${p.chunksEmbedded} chunks embedded`);
            this.statusBar.setIndexState({ kind: 'indexing', done: p.filesDone, total: p.filesTotal });
          }
        },
      },
    );
    this.summaries.set(folder.uri.toString(), summary);
    this.indexed.add(folder.uri.toString());
    this.updateStatus();
    this.changed.fire();
    return summary;
  }

  /** Clear Index: removes every store of every folder (all recipes). */
  async clear(folders: readonly vscode.WorkspaceFolder[] = diskFolders()): Promise<string[]> {
    return this.exclusive(async () => {
      const removed: string[] = [];
      for (const folder of folders) {
        const storageDir = this.access.storageDirFor(folder);
        const r = await this.access.engine.request('clearIndex', { storageDir });
        removed.push(...r.removed);
        this.summaries.delete(folder.uri.toString());
        this.indexed.delete(folder.uri.toString());
      }
      this.access.log.info(`cleared the index: ${removed.length ? removed.join(', ') : 'nothing was there'}`);
      this.updateStatus();
      this.changed.fire();
      return removed;
    });
  }

  /** A file was saved, created, deleted or renamed: refresh its folder after a quiet period. */
  private onFileEvent(uri: vscode.Uri): void {
    if (uri.scheme !== 'file' || !vscode.workspace.isTrusted) return;
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    if (!folder || !this.hasIndex(folder)) return;
    const p = uri.fsPath;
    if (/[\\/](\.git|node_modules)([\\/]|$)/.test(p)) return;
    let cfg;
    try {
      cfg = readConfig(folder.uri);
    } catch {
      return; // invalid settings: the next explicit command says so
    }
    if (!cfg.indexOnSave) return;
    // The index's own files (when the storage folder is inside the workspace) never trigger a refresh.
    const storage = this.access.storageDirFor(folder, cfg);
    if (p === storage || p.startsWith(storage + path.sep)) return;
    const key = folder.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      void this.autoRefresh(folder);
    }, AUTO_REFRESH_DELAY_MS));
  }

  private async autoRefresh(folder: vscode.WorkspaceFolder): Promise<void> {
    try {
      await this.exclusive(async () => {
        if (this.autoAbort.signal.aborted || !this.hasIndex(folder)) return;
        await this.access.loadModel(folder.uri, this.autoAbort.signal);
        const s = await this.indexFolder(folder, false, this.autoAbort.signal, () => undefined);
        this.access.log.info(`re-indexed ${folder.name} after a change: ${s.filesIndexed} files, ${s.chunksEmbedded} chunks embedded, ${s.filesRemoved} removed (${s.ms.toFixed(0)} ms)`);
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') return;
      // Quiet: a background refresh logs and marks the status bar; the next explicit command shows the message.
      this.access.log.warn(`re-indexing ${folder.name} after a change failed: ${err instanceof Error ? err.message : String(err)}`);
      this.updateStatus(err instanceof Error ? err.message : String(err));
    }
  }

  /** Status bar: total chunks over the folders indexed in this window, or that an index exists. */
  private updateStatus(error?: string): void {
    if (error) {
      this.statusBar.setIndexState({ kind: 'error', message: error.split('\n')[0]! });
      return;
    }
    if (this.summaries.size) {
      let chunks = 0;
      for (const s of this.summaries.values()) chunks += s.chunksTotal;
      this.statusBar.setIndexState({ kind: 'ready', chunks });
    } else if (this.indexed.size || diskFolders().some((f) => this.access.hasStoredIndex(f))) {
      this.statusBar.setIndexState({ kind: 'stored' });
    } else {
      this.statusBar.setIndexState({ kind: 'none' });
    }
  }

  dispose(): void {
    this.autoAbort.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
