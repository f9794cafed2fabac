// What every engine-backed command needs before its request: the settings of a scope, the model
// loaded in the worker, the storage folder of a workspace folder, and messages for the failures a
// user can fix (a model that does not load, a missing index, an index of another recipe).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isVectorPooling, listChoices, VECTOR_POOLINGS, type Recipe } from '../core/recipe';
import { hasCode, UserError } from '../core/errors';
import { storesDirOf } from '../core/workspace/layout';
import type { IndexTarget, LoadedModelInfo } from '../protocol/worker';
import { COMMANDS } from './commandIds';
import { engineLoadOptions, readConfig, recipeOf, SECTION, setLoadedOwnRecipe, type ExtensionConfig } from './config';
import type { EngineClient } from './engineClient';

/**
 * The editor's action for an index problem (core/errors.ts codes): a damaged index, or one built with
 * another recipe, is rebuilt; a missing one is built. Undefined for errors that are not about the index.
 */
export function indexAction(err: unknown): { label: 'Rebuild Index' | 'Index Workspace'; command: string } | undefined {
  // A shared index of another recipe is not rebuilt from an editor (it is the team's): see storeActions.
  if (hasCode(err, 'RECIPE_MISMATCH') && (err as UserError).facts.store) return undefined;
  if (hasCode(err, 'INDEX_DAMAGED', 'RECIPE_MISMATCH', 'INDEX_NEWER') || (hasCode(err, 'INDEX_MISSING') && (err as UserError).facts.others?.length)) {
    return { label: 'Rebuild Index', command: COMMANDS.rebuildIndex };
  }
  if (hasCode(err, 'INDEX_MISSING')) return { label: 'Index Workspace', command: COMMANDS.indexWorkspace };
  return undefined;
}

/** Button label → what it runs, for the problems of a shared PostgreSQL index (core/errors.ts codes). */
export function storeActions(err: unknown): { label: string; command: string; args?: unknown[] }[] {
  const settings = { label: 'Open Settings', command: 'workbench.action.openSettings', args: [`${SECTION}.store`] };
  if (hasCode(err, 'STORE_AUTH')) return [{ label: 'Set PostgreSQL Password', command: COMMANDS.setPostgresPassword }, settings];
  if (hasCode(err, 'STORE_UNREACHABLE')) return [settings, { label: 'Show Log', command: COMMANDS.showLog }];
  if (hasCode(err, 'RECIPE_MISMATCH') && (err as UserError).facts.store) {
    const fields = ((err as UserError).facts.differences ?? []).map((d) => d.field);
    const model = fields.some((f) => /model/.test(f));
    return [
      model ? { label: 'Choose Model', command: COMMANDS.chooseModel } : { label: 'Choose Layer and Pooling', command: COMMANDS.chooseRecipe },
      settings,
    ];
  }
  return [];
}

/**
 * The password of a shared index lives in VS Code's secret storage (never in settings.json), one per
 * user, host and port: a connection string pointed at another server never gets it.
 */
export function passwordKey(url: string): string {
  const u = new URL(url);
  return `postgres-password:${decodeURIComponent(u.username)}@${u.hostname.toLowerCase()}:${u.port || '5432'}`;
}

/** Error raised when the model does not load; the message says which model and why. */
export class ModelLoadError extends Error {
  constructor(readonly model: string, readonly cause: Error) {
    super(`The model "${model}" could not be loaded: ${cause.message}`);
    this.name = cause.name === 'AbortError' ? 'AbortError' : 'ModelLoadError';
  }
}

export interface EngineAccessOptions {
  engine: EngineClient;
  log: vscode.LogOutputChannel;
  /** Where downloaded models are cached (global storage). */
  modelCacheDir: string;
  /** VS Code's private storage for this workspace (context.storageUri), if there is one. */
  workspaceStorage: string | undefined;
  /** Global storage, used when VS Code gives no workspace storage. */
  globalStorage: string;
  /** Where the PostgreSQL password is kept (context.secrets). */
  secrets: vscode.SecretStorage;
}

export class EngineAccess {
  private loadedInfo: LoadedModelInfo | undefined;
  private readonly loadedEmitter = new vscode.EventEmitter<LoadedModelInfo | undefined>();
  /** Fires when the engine has loaded a model (or was told to drop it). */
  readonly onDidLoad = this.loadedEmitter.event;

  /** Passwords read from the secret storage, by passwordKey (undefined: none saved). */
  private readonly passwords = new Map<string, string | undefined>();

  constructor(private readonly o: EngineAccessOptions) {
    o.secrets.onDidChange((e) => {
      if (e.key.startsWith('postgres-password:')) this.passwords.delete(e.key);
    });
  }

  /** Reads the shared index's password from the secret storage (before targetFor, which is synchronous). */
  async loadStorePassword(scope?: vscode.ConfigurationScope): Promise<void> {
    const url = storeSetting(readConfig(scope ?? windowScope()));
    if (!url) return;
    const key = passwordKey(url);
    if (!this.passwords.has(key)) this.passwords.set(key, await this.o.secrets.get(key));
  }

  /** Saves (or, with an empty password, deletes) the password for the shared index's user and server. */
  async setStorePassword(url: string, password: string): Promise<void> {
    const key = passwordKey(url);
    if (password) await this.o.secrets.store(key, password);
    else await this.o.secrets.delete(key);
    this.passwords.set(key, password || undefined);
  }

  async hasStorePassword(url: string): Promise<boolean> {
    return (await this.o.secrets.get(passwordKey(url))) !== undefined;
  }

  /** The connection string the engine uses: the setting's, with the saved password (if any) put in. */
  storeFor(cfg: ExtensionConfig): string | undefined {
    const url = storeSetting(cfg);
    if (!url) return undefined;
    const password = this.passwords.get(passwordKey(url));
    if (!password) return url; // the engine may still find PGPASSWORD or ~/.pgpass
    const u = new URL(url);
    u.password = encodeURIComponent(password);
    return u.toString();
  }

  /** The model the engine loaded last (it loads it again by itself after an idle stop or a crash). */
  get loaded(): LoadedModelInfo | undefined {
    return this.loadedInfo;
  }

  /** The engine was told to drop its model (settings changed). */
  forgetLoaded(): void {
    this.loadedInfo = undefined;
    setLoadedOwnRecipe(undefined, undefined);
    this.loadedEmitter.fire(undefined);
  }

  get engine(): EngineClient {
    return this.o.engine;
  }

  get log(): vscode.LogOutputChannel {
    return this.o.log;
  }

  /** Loads the model of the settings (of `scope`) into the worker; a failure is a ModelLoadError. */
  async loadModel(scope: vscode.ConfigurationScope | undefined, signal?: AbortSignal, progress?: vscode.Progress<{ message?: string }>): Promise<LoadedModelInfo> {
    const cfg = readConfig(scope ?? windowScope());
    await this.loadStorePassword(scope);
    try {
      const info = await this.o.engine.request('load', engineLoadOptions(cfg, vscode.workspace.isTrusted, this.o.modelCacheDir), {
        signal,
        onDownloadProgress: (p) => progress?.report({ message: `downloading ${p.file}${p.total ? ` ${Math.round((100 * p.loaded) / p.total)}%` : ''}` }),
      });
      setLoadedOwnRecipe(info.model, info.ownRecipe);
      if (this.loadedInfo?.model !== info.model || this.loadedInfo.folder !== info.folder) {
        this.loadedInfo = info;
        this.loadedEmitter.fire(info);
      }
      return info;
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw err;
      throw new ModelLoadError(cfg.model, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * The folder holding a workspace folder's index: `<storageLocation or VS Code's workspace storage>/
   * <folder name>-<hash of its URI>`. Never inside the folder itself unless the user points the
   * storageLocation setting there.
   */
  storageDirFor(folder: vscode.WorkspaceFolder, cfg: ExtensionConfig = readConfig(folder.uri)): string {
    const base = cfg.storageLocation
      ? path.resolve(cfg.storageLocation.replace(/^~(?=$|[/\\])/, process.env.HOME ?? '~'))
      : path.join(this.o.workspaceStorage ?? path.join(this.o.globalStorage, 'workspaces'), 'index');
    const slug = folder.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').slice(0, 40) || 'folder';
    const hash = createHash('sha256').update(folder.uri.toString()).digest('hex').slice(0, 8);
    return path.join(base, `${slug}-${hash}`);
  }

  /** Root, storage and recipe of a folder's index, from that folder's settings. */
  targetFor(folder: vscode.WorkspaceFolder): IndexTarget & { cfg: ExtensionConfig; exclude: string[] } {
    const cfg = readConfig(folder.uri);
    const store = this.storeFor(cfg);
    return { root: folder.uri.fsPath, storageDir: this.storageDirFor(folder, cfg), recipe: searchRecipe(cfg), cfg, exclude: excludeGlobs(cfg), ...(store ? { store } : {}) };
  }

  /**
   * Whether a folder has an index (any recipe): on disk, a cheap check that needs no model; with a
   * shared index set, assumed (its state is asked of the database when the model is loaded).
   */
  hasStoredIndex(folder: vscode.WorkspaceFolder): boolean {
    try {
      if (storeSetting(readConfig(folder.uri))) return true;
    } catch {
      return false;
    }
    try {
      return fs.readdirSync(storesDirOf(this.storageDirFor(folder))).length > 0;
    } catch {
      return false;
    }
  }
}

/**
 * The recipe an index is built with: the settings' layer and pooling. Per-token poolings (none, words)
 * give no single vector per chunk, so they are refused for indexing with a message that says so.
 */
export function searchRecipe(cfg: ExtensionConfig): Recipe {
  const recipe = recipeOf(cfg);
  if (!isVectorPooling(recipe.pool)) {
    throw new SettingsError(
      `Pooling "${recipe.pool}" gives one vector per token or word, which an index cannot search.`,
      `Set ${SECTION}.pooling to ${listChoices(VECTOR_POOLINGS)} for indexing and search ("Embedding Lens: Choose Layer and Pooling").`,
    );
  }
  return recipe;
}

/**
 * The shared-index setting, checked: empty = the local index. A password in it is refused (settings.json
 * is plain text and often committed): it belongs in the secret storage.
 */
export function storeSetting(cfg: ExtensionConfig): string | undefined {
  if (!cfg.store) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(cfg.store);
  } catch { /* below */ }
  if (!u || !/^postgres(ql)?:$/i.test(u.protocol) || !u.hostname) {
    throw new SettingsError(
      `Setting ${SECTION}.store is not a PostgreSQL connection string ("${cfg.store.replace(/:[^:@/]*@/, ':***@')}").`,
      'Write postgres://user@host:port/database (TLS: add ?sslmode=require), or leave it empty for the local index.',
    );
  }
  if (u.password) {
    throw new SettingsError(
      `Setting ${SECTION}.store contains a password. Settings are stored as plain text: remove it from the connection string.`,
      'Then run "Embedding Lens: Set PostgreSQL Password", which keeps it in VS Code\'s secret storage.',
    );
  }
  return cfg.store;
}

/** A settings value that makes a command impossible; shown with an "Open Settings" button. */
export class SettingsError extends Error {
  constructor(message: string, readonly hint: string) {
    super(`${message}\n${hint}`);
    this.name = 'UserError';
  }
}

/**
 * Files the extension writes itself and never indexes: extraction outputs are named
 * `<source>.embeddings.<ext>` (with `.json` manifest and `.labels.txt` beside them).
 */
export const OWN_OUTPUT_GLOBS: readonly string[] = ['**/*.embeddings.*'];

/** The exclude globs of a folder: the setting's, and the extension's own outputs. */
export function excludeGlobs(cfg: ExtensionConfig): string[] {
  return [...cfg.exclude, ...OWN_OUTPUT_GLOBS];
}

/** The scope settings are read with when no file or folder is in question: the first folder on disk. */
export function windowScope(): vscode.Uri | undefined {
  return diskFolders()[0]?.uri;
}

/** Workspace folders whose files live on disk (the engine reads files with node:fs). */
export function diskFolders(): readonly vscode.WorkspaceFolder[] {
  return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
}

/**
 * Shows an error with the actions that fix it. Messages are not awaited by callers that must finish
 * (their promise settles only when the user dismisses the notification).
 */
export async function showFailure(err: unknown, log: vscode.LogOutputChannel, context: string): Promise<void> {
  if (err instanceof Error && err.name === 'AbortError') {
    log.info(`${context}: cancelled`);
    void vscode.window.showInformationMessage(`Embedding Lens: ${context} cancelled. Nothing finished was lost.`);
    return;
  }
  if (err instanceof ModelLoadError) {
    log.error(`${err.message}\n${err.cause.stack ?? ''}`);
    const choice = await vscode.window.showErrorMessage(
      `Embedding Lens: ${err.message.split('\n')[0]} Choose another model, or fix the embeddingLens.model setting (a Hugging Face id with ONNX weights, or a local model folder).`,
      'Choose Model',
      'Open Settings',
    );
    if (choice === 'Choose Model') await vscode.commands.executeCommand(COMMANDS.chooseModel);
    else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.model`);
    return;
  }
  const buttons = storeActions(err);
  if (buttons.length && err instanceof Error) {
    log.warn(err.message);
    const choice = await vscode.window.showErrorMessage(`Embedding Lens: ${err.message.replace(/\n/g, ' ')}`, ...buttons.map((b) => b.label));
    const b = buttons.find((x) => x.label === choice);
    if (b) await vscode.commands.executeCommand(b.command, ...(b.args ?? []));
    return;
  }
  const action = indexAction(err);
  if (action && err instanceof Error) {
    log.warn(err.message);
    const show = hasCode(err, 'INDEX_MISSING') ? vscode.window.showWarningMessage : vscode.window.showErrorMessage;
    const choice = await show(`Embedding Lens: ${err.message.replace(/\n/g, ' ')}`, action.label);
    if (choice === action.label) await vscode.commands.executeCommand(action.command);
    return;
  }
  if (err instanceof SettingsError) {
    log.warn(err.message);
    const choice = await vscode.window.showWarningMessage(`Embedding Lens: ${err.message.replace(/\n/g, ' ')}`, 'Open Settings');
    if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Error && err.name === 'UserError') log.warn(message);
  else log.error(err instanceof Error ? err.stack ?? message : message);
  void vscode.window.showErrorMessage(`Embedding Lens: ${message.replace(/\n/g, ' ')}`);
}
