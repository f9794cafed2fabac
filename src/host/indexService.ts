// Owns the workspace index from the host's side: full runs (Index Workspace / Rebuild Index, with a
// cancellable notification), quiet incremental runs after saves, creates, changes (also from outside
// the editor: git checkout, formatters, generators), deletes and renames, Clear Index, and the status
// bar's index state. Runs are serialized: the engine never refreshes one store twice at the same time.
// Cancelling keeps every finished file (the indexer checkpoints), so the next run only does what is left.
//
// The status bar tells the truth about the index search would use: indexing (n of m files), complete
// (chunk count), partial (cancelled or interrupted: search answers from the finished files), of
// another recipe (search refuses it: Rebuild Index), or an error. After a model or recipe change the
// state is checked again (is there an index for the new recipe?), and a save re-indexes whenever the
// current recipe's index exists and is complete — also after changing the recipe and changing it back.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Disposable } from './disposable';
import { DueChanges } from './dueChanges';
import type { RefreshSummary } from '../core/index/indexer';
import type { IndexState as EngineIndexState } from '../protocol/worker';
import { abortSignalOf } from './cancellation';
import { readConfig } from './config';
import { diskFolders, showFailure, type EngineAccess } from './engineAccess';
import { plural, type IndexState, type StatusBar } from './statusBar';

/** Quiet period after the last save / create / change / delete before a folder is refreshed. */
const AUTO_REFRESH_DELAY_MS = 1500;
/** …but a stream of events never postpones the refresh by more than this. */
const AUTO_REFRESH_MAX_WAIT_MS = 10_000;
/** While indexing, finished files are saved (and become searchable) at least this often. */
export const INDEX_CHECKPOINT_MS = 10_000;
/** At most this many skipped files are listed in the log after a run. */
const SKIPPED_LISTED = 200;

export interface IndexRunOptions {
  rebuild?: boolean;
  /** Which folders; default every folder on disk. */
  folders?: readonly vscode.WorkspaceFolder[];
}

/** Indexing progress of a folder, in files. */
export interface IndexProgressState {
  done: number;
  total: number;
}

/** Whether the folder's settings name a shared PostgreSQL index. */
function isShared(folder: vscode.WorkspaceFolder): boolean {
  try {
    return !!readConfig(folder.uri).store;
  } catch {
    return false;
  }
}

export class IndexService extends Disposable {
  private chain: Promise<unknown> = Promise.resolve();
  /** Index state per folder (by URI); the status bar shows their sum. */
  private readonly states = new Map<string, IndexState>();
  /** Folders being indexed now, with their progress. */
  private readonly running = new Map<string, IndexProgressState>();
  /** Folders with an index on disk (any recipe): only these are refreshed automatically. */
  private readonly indexed = new Set<string>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; since: number }>();
  /** What the next automatic refresh of each folder must look at: named files, or a walk (./dueChanges.ts). */
  private readonly due = new DueChanges();
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly autoAbort = new AbortController();
  private readonly changed = this.own(new vscode.EventEmitter<void>());
  /** Fires after every index change (a run finished or stopped, an index was cleared, a state was checked). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly access: EngineAccess, private readonly statusBar: StatusBar) {
    super();
    for (const folder of diskFolders()) {
      if (access.hasStoredIndex(folder)) {
        this.indexed.add(folder.uri.toString());
        this.states.set(folder.uri.toString(), { kind: 'stored' });
      }
    }
    this.updateStatus();
  }

  /** Starts listening for saves and file events (incremental re-index). */
  watch(): void {
    // Change events too: files rewritten outside the editor (git checkout, formatters, generators).
    const watcher = vscode.workspace.createFileSystemWatcher('**/*', false, false, false);
    for (const d of [
      watcher,
      watcher.onDidCreate((uri) => this.onFileEvent(uri, 'watcher')),
      watcher.onDidChange((uri) => this.onFileEvent(uri, 'watcher')),
      watcher.onDidDelete((uri) => this.onFileEvent(uri, 'watcher')),
      // The editor's own file operations name their files: the engine re-indexes just those.
      vscode.workspace.onDidSaveTextDocument((doc) => this.onFileEvent(doc.uri, 'editor')),
      vscode.workspace.onDidCreateFiles((e) => e.files.forEach((uri) => this.onFileEvent(uri, 'editor'))),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((uri) => this.onFileEvent(uri, 'editor'))),
      vscode.workspace.onDidRenameFiles((e) => e.files.forEach((f) => (this.onFileEvent(f.oldUri, 'editor'), this.onFileEvent(f.newUri, 'editor')))),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.updateStatus()),
    ]) this.own(d);
  }

  /**
   * The model or the recipe changed: the states belonged to the old recipe's index. Each folder with
   * an index is checked again for the new recipe (after a short pause: a command writes several
   * settings in a row). A save never quietly embeds the whole workspace with a new recipe; it does
   * re-index when the new recipe's index exists (also when the settings were changed back).
   */
  recipeChanged(): void {
    for (const key of this.indexed) this.states.set(key, { kind: 'stored' });
    this.updateStatus();
    clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => void this.checkAll(), 400);
  }

  /** Checks every folder with an index against the current settings (loads the model if needed). */
  async checkAll(): Promise<void> {
    for (const folder of diskFolders()) {
      if (!this.hasIndex(folder)) continue;
      await this.exclusive(() => this.check(folder)).catch(() => undefined);
    }
  }

  /** Whether a folder has an index of any recipe (made in this window or found on disk at start). */
  hasIndex(folder: vscode.WorkspaceFolder): boolean {
    return this.indexed.has(folder.uri.toString());
  }

  /** Progress of the folder's indexing, if it is being indexed now. */
  progressOf(folder: vscode.WorkspaceFolder): IndexProgressState | undefined {
    return this.running.get(folder.uri.toString());
  }

  /** The folder's index state (as the status bar sums it). */
  stateOf(folder: vscode.WorkspaceFolder): IndexState {
    const key = folder.uri.toString();
    const p = this.running.get(key);
    if (p) return { kind: 'indexing', done: p.done, total: p.total };
    return this.states.get(key) ?? { kind: 'none' };
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
      const out: RefreshSummary[] = [];
      for (const [n, folder] of folders.entries()) {
        const key = folder.uri.toString();
        try {
          await this.access.loadModel(folder.uri, signal);
          out.push(await this.indexFolder(folder, options.rebuild ?? false, signal, (fraction, message) =>
            options.onProgress?.((n + fraction) / folders.length, folders.length > 1 ? `${folder.name}: ${message}` : message)));
        } catch (err) {
          await this.afterFailure(folder, key, err);
          throw err;
        }
      }
      return out;
    });
  }

  /** A run stopped (cancel, crash, error): the folder's state says so; what was saved stays searchable. */
  private async afterFailure(folder: vscode.WorkspaceFolder, key: string, err: unknown): Promise<void> {
    const progress = this.running.get(key);
    this.running.delete(key);
    const aborted = err instanceof Error && err.name === 'AbortError';
    if (!aborted) {
      this.states.set(key, { kind: 'error', message: (err instanceof Error ? err.message : String(err)).split('\n')[0]! });
    } else {
      this.states.set(key, { kind: 'partial', done: progress?.done, total: progress?.total });
      // What is searchable now (the finished files were saved): ask the engine, quietly.
      const s = await this.engineState(folder).catch(() => undefined);
      if (s?.exists) {
        this.indexed.add(key);
        this.states.set(key, s.complete
          ? { kind: 'ready', chunks: s.chunks ?? 0 }
          : { kind: 'partial', done: progress?.done, total: progress?.total, chunks: s.chunks, files: s.files });
      }
    }
    this.updateStatus();
    this.changed.fire();
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
      this.access.log.info(`indexed ${files} ${plural(files, 'file')}: ${chunks} ${plural(chunks, 'chunk')} (${embedded} embedded now), ${skipped} skipped, ${secs.toFixed(1)} s`);
      void vscode.window
        .showInformationMessage(
          `Embedding Lens: ${chunks} ${plural(chunks, 'chunk')} from ${files} ${plural(files, 'file')} indexed in ${secs.toFixed(1)} s (${embedded} embedded now${skipped ? `, ${skipped} ${plural(skipped, 'file')} skipped: see the log` : ''}).`,
          'Search Workspace',
        )
        .then((c) => c && vscode.commands.executeCommand('embeddingLens.searchWorkspace'));
      return summaries;
    } catch (err) {
      void showFailure(err, this.access.log, options.rebuild ? 'rebuilding the index' : 'indexing');
      return undefined;
    }
  }

  /** One folder's refresh (of only the `named` files when given); progress as a fraction of the folder and a line of text. */
  private async indexFolder(
    folder: vscode.WorkspaceFolder,
    rebuild: boolean,
    signal: AbortSignal,
    report: (fraction: number, message: string) => void,
    named?: readonly string[],
  ): Promise<RefreshSummary> {
    const target = this.access.targetFor(folder);
    const { cfg } = target;
    const key = folder.uri.toString();
    this.running.set(key, { done: 0, total: 0 });
    this.updateStatus();
    this.access.log.info(`indexing ${folder.uri.fsPath} into ${cfg.store ? `the shared index ${cfg.store}` : target.storageDir}${rebuild ? ' (rebuild)' : ''}`);
    const summary = await this.access.engine.request(
      'index',
      {
        root: target.root, storageDir: target.storageDir, recipe: target.recipe, include: cfg.include, exclude: target.exclude, rebuild,
        checkpointMs: INDEX_CHECKPOINT_MS, ...(target.store ? { store: target.store } : {}), ...(named?.length ? { paths: [...named] } : {}),
      },
      {
        signal,
        onProgress: (p) => {
          if (p.phase === 'discover') report(0, 'finding files…');
          else if (p.phase === 'save') report(p.filesTotal ? p.filesDone / p.filesTotal : 1, 'saving…');
          else if (p.phase === 'index') {
            report(p.filesTotal ? p.filesDone / p.filesTotal : 0, `${p.filesDone}/${p.filesTotal} files, ${p.chunksEmbedded} chunks embedded`);
            this.running.set(key, { done: p.filesDone, total: p.filesTotal });
            this.updateStatus();
          }
        },
      },
    );
    this.running.delete(key);
    this.indexed.add(key);
    this.states.set(key, { kind: 'ready', chunks: summary.chunksTotal });
    this.logSkipped(folder, summary);
    this.updateStatus();
    this.changed.fire();
    return summary;
  }

  /** The log names every skipped file and why (up to SKIPPED_LISTED). */
  private logSkipped(folder: vscode.WorkspaceFolder, summary: RefreshSummary): void {
    const n = summary.skipped.length;
    if (!n) return;
    const lines = summary.skipped.slice(0, SKIPPED_LISTED).map((s) => `  ${s.path}: ${s.reason}${s.detail ? ` (${s.detail})` : ''}`);
    if (n > SKIPPED_LISTED) lines.push(`  … and ${n - SKIPPED_LISTED} more`);
    this.access.log.info(`${folder.name}: ${n} ${plural(n, 'file')} skipped:\n${lines.join('\n')}`);
  }

  /** The engine's view of the folder's index for the current settings (loads the model). */
  private async engineState(folder: vscode.WorkspaceFolder, signal?: AbortSignal): Promise<EngineIndexState> {
    await this.access.loadModel(folder.uri, signal);
    const t = this.access.targetFor(folder);
    return this.access.engine.request('indexStatus', { root: t.root, storageDir: t.storageDir, recipe: t.recipe, ...(t.store ? { store: t.store } : {}) }, { signal });
  }

  /** Sets a folder's state from the engine's view (inside `exclusive`). Returns that view. */
  private async check(folder: vscode.WorkspaceFolder, signal?: AbortSignal): Promise<EngineIndexState | undefined> {
    const key = folder.uri.toString();
    let s: EngineIndexState;
    try {
      s = await this.engineState(folder, signal);
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw err;
      this.states.set(key, { kind: 'error', message: (err instanceof Error ? err.message : String(err)).split('\n')[0]! });
      this.updateStatus();
      this.changed.fire();
      return undefined;
    }
    const before = this.states.get(key);
    let next: IndexState;
    if (s.exists && s.complete) next = { kind: 'ready', chunks: s.chunks ?? 0 };
    else if (s.exists) next = before?.kind === 'partial' ? { ...before, chunks: s.chunks, files: s.files } : { kind: 'partial', chunks: s.chunks, files: s.files };
    else if (s.others.length) next = { kind: 'mismatch', others: s.others };
    else next = { kind: 'none' };
    this.states.set(key, next);
    if (!s.exists && !s.others.length) this.indexed.delete(key);
    this.updateStatus();
    this.changed.fire();
    return s;
  }

  /** Clear Index: removes every store of every folder (all recipes). */
  async clear(folders: readonly vscode.WorkspaceFolder[] = diskFolders()): Promise<string[]> {
    return this.exclusive(async () => {
      const removed: string[] = [];
      for (const folder of folders) {
        if (isShared(folder)) {
          this.access.log.info(`${folder.name}: the shared PostgreSQL index is not removed from the editor (it is the team's); only local indexes are cleared`);
        }
        const storageDir = this.access.storageDirFor(folder);
        const r = await this.access.engine.request('clearIndex', { storageDir });
        removed.push(...r.removed);
        this.states.delete(folder.uri.toString());
        this.indexed.delete(folder.uri.toString());
      }
      this.access.log.info(`cleared the index: ${removed.length ? removed.join(', ') : 'nothing was there'}`);
      this.updateStatus();
      this.changed.fire();
      return removed;
    });
  }

  /** Search found hits of files changed since indexing: bring the folder up to date soon (a walk). */
  refreshSoon(folder: vscode.WorkspaceFolder): void {
    if (isShared(folder)) return;
    if (this.hasIndex(folder) && !this.running.has(folder.uri.toString())) {
      this.due.walk(folder.uri.toString());
      this.schedule(folder, false);
    }
  }

  /**
   * A file was saved, created, changed, deleted or renamed: refresh its folder after a quiet period.
   * What the editor did (`editor`) names its files to the engine; a watcher event (`watcher`) makes the
   * refresh walk the folder (git checkout, formatters, generators: a watcher may report such changes
   * only in part), unless it is the echo of a save the editor just made, which names that file again.
   */
  private onFileEvent(uri: vscode.Uri, source: 'editor' | 'watcher'): void {
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
    // A shared index is the team's: a member's unsaved or uncommitted edits are not written into it
    // behind their back. "Index Workspace" updates it on request.
    if (cfg.store) return;
    // The index's own files (when the storage folder is inside the workspace) never trigger a refresh.
    const storage = this.access.storageDirFor(folder, cfg);
    if (p === storage || p.startsWith(storage + path.sep)) return;
    this.due.fileEvent(folder.uri.toString(), p, source);
    this.schedule(folder);
  }

  /**
   * Refreshes the folder after a quiet period: each event restarts the wait, but never past
   * AUTO_REFRESH_MAX_WAIT_MS after the first one (a file rewritten every second must not starve it).
   * `restart: false` (search found stale hits) never postpones a refresh already waiting.
   */
  private schedule(folder: vscode.WorkspaceFolder, restart = true): void {
    const key = folder.uri.toString();
    const pending = this.timers.get(key);
    if (pending && (!restart || performance.now() - pending.since > AUTO_REFRESH_MAX_WAIT_MS)) return;
    clearTimeout(pending?.timer);
    this.timers.set(key, {
      since: pending?.since ?? performance.now(),
      timer: setTimeout(() => {
        this.timers.delete(key);
        void this.autoRefresh(folder);
      }, AUTO_REFRESH_DELAY_MS),
    });
  }

  private async autoRefresh(folder: vscode.WorkspaceFolder): Promise<void> {
    const key = folder.uri.toString();
    try {
      await this.exclusive(async () => {
        if (this.autoAbort.signal.aborted || !this.hasIndex(folder)) return;
        // Only an index of the current recipe that ran to the end is refreshed quietly: a new recipe
        // would embed everything, a partial one would resume the run the user stopped.
        const s = await this.check(folder, this.autoAbort.signal);
        if (!s?.exists || !s.complete) {
          const why = !s ? 'the index state could not be read' : !s.exists ? (s.others.length ? 'the index is of another recipe (Rebuild Index)' : 'there is no index') : 'the index is partial (Index Workspace finishes it)';
          this.access.log.info(`a file changed in ${folder.name}; not re-indexed: ${why}`);
          return;
        }
        // What was due until now is taken: events from here on are due for the next refresh.
        const due = this.due.take(key);
        const named = DueChanges.namedFiles(due);
        try {
          const summary = await this.indexFolder(folder, false, this.autoAbort.signal, () => undefined, named);
          const scope = summary.onlyPaths !== undefined ? `${summary.onlyPaths} saved ${plural(summary.onlyPaths, 'file')} looked at` : 'folder walked';
          this.access.log.info(`re-indexed ${folder.name} after a change (${scope}): ${summary.filesIndexed} ${plural(summary.filesIndexed, 'file')}, ${summary.chunksEmbedded} ${plural(summary.chunksEmbedded, 'chunk')} embedded, ${summary.filesRemoved} removed (${summary.ms.toFixed(0)} ms)`);
        } catch (err) {
          // Not done: what was due stays due (merged with what came since).
          if (due) this.due.putBack(key, due);
          await this.afterFailure(folder, key, err);
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') return;
      // Quiet: a background refresh logs and marks the status bar; the next explicit command shows the message.
      this.access.log.warn(`re-indexing ${folder.name} after a change failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Status bar: the folders' states summed (indexing first, then problems, then what is searchable). */
  private updateStatus(): void {
    const folders = diskFolders();
    const states = folders.map((f) => this.stateOf(f));
    const pick = (kind: IndexState['kind']) => states.filter((s) => s.kind === kind);
    const indexing = pick('indexing') as Extract<IndexState, { kind: 'indexing' }>[];
    if (indexing.length) {
      this.statusBar.setIndexState({ kind: 'indexing', done: indexing.reduce((a, s) => a + (s.done ?? 0), 0), total: indexing.reduce((a, s) => a + (s.total ?? 0), 0) });
      return;
    }
    const first = pick('error')[0] ?? pick('mismatch')[0] ?? pick('partial')[0];
    if (first) {
      this.statusBar.setIndexState(first);
      return;
    }
    const ready = pick('ready') as Extract<IndexState, { kind: 'ready' }>[];
    if (ready.length && ready.length === states.filter((s) => s.kind !== 'none').length) {
      this.statusBar.setIndexState({ kind: 'ready', chunks: ready.reduce((a, s) => a + s.chunks, 0) });
    } else if (states.some((s) => s.kind !== 'none')) {
      this.statusBar.setIndexState({ kind: 'stored' });
    } else {
      this.statusBar.setIndexState({ kind: 'none' });
    }
  }

  protected override onDispose(): void {
    this.autoAbort.abort();
    clearTimeout(this.checkTimer);
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
  }
}
