// The one place the extension reads its settings (`embeddingLens.*`, declared in package.json).
// Everything downstream gets plain objects: the engine worker gets EngineLoadOptions, the extractor a
// Recipe. Invalid values are reported, never silently replaced.
import * as vscode from 'vscode';
import { DEFAULT_RECIPE, POOLING_MODES, WORD_POOLINGS, type PoolingMode, type Recipe, type WordPooling } from '../core/recipe';
import { UserError } from '../core/errors';
import type { EngineLoadOptions, LoadedModelInfo } from '../protocol/worker';

export const SECTION = 'embeddingLens';

export { POOLING_MODES, WORD_POOLINGS };

export interface ExtensionConfig {
  /** Hub id or model folder. */
  model: string;
  allowDownloads: boolean;
  /** Layer spec, e.g. `last`, `-2`, `mean(-4..-1)`. */
  layer: string;
  pooling: PoolingMode;
  wordPooling: WordPooling;
  normalize: boolean;
  maxTokensPerBatch: number;
  /** 0 = the engine decides. */
  threads: number;
  include: string[];
  exclude: string[];
  indexOnSave: boolean;
  /** Folder for index files; empty = VS Code's storage for this workspace. */
  storageLocation: string;
  /** Weights variant (transformers.js dtype name); fp32 = onnx/model.onnx. */
  modelDtype: string;
  /** A shared index in PostgreSQL (`postgres://user@host:port/db`, no password); empty = the local index. */
  store: string;
  /**
   * Which recipe settings the person set (in any settings tab). The others follow the model's own
   * recipe once it is loaded (LoadedModelInfo.ownRecipe), else the defaults.
   */
  explicit: { layer: boolean; pooling: boolean; normalize: boolean };
}

/** Keys, for `affectsConfiguration` checks and for tests. */
export const CONFIG_KEYS = [
  'model', 'allowDownloads', 'layer', 'pooling', 'wordPooling', 'normalize', 'maxTokensPerBatch',
  'threads', 'include', 'exclude', 'indexOnSave', 'storageLocation', 'modelDtype', 'store',
] as const satisfies readonly (keyof ExtensionConfig)[];

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserError(
    `Setting ${SECTION}.${key} is "${value}", which is not one of: ${allowed.join(', ')}.`,
    'Fix it in Settings (search for "Embedding Lens").',
  );
}

function positiveInt(key: string, value: number, min: number): number {
  if (Number.isInteger(value) && value >= min) return value;
  throw new UserError(`Setting ${SECTION}.${key} must be a whole number ≥ ${min} (it is ${value}).`);
}

/**
 * Reads the settings for a resource (a workspace folder or file; undefined = the window).
 * In an untrusted workspace VS Code itself ignores workspace values of the settings listed in
 * package.json `capabilities.untrustedWorkspaces.restrictedConfigurations` (model, storage, globs).
 */
export function readConfig(scope?: vscode.ConfigurationScope): ExtensionConfig {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const model = c.get<string>('model', '').trim();
  if (!model) {
    throw new UserError(`Setting ${SECTION}.model is empty.`, 'Run "Embedding Lens: Choose Model" or set a Hugging Face id or a model folder.');
  }
  return {
    model,
    allowDownloads: c.get<boolean>('allowDownloads', true),
    layer: c.get<string>('layer', DEFAULT_RECIPE.layer).trim() || DEFAULT_RECIPE.layer,
    pooling: oneOf('pooling', c.get<string>('pooling', DEFAULT_RECIPE.pool), POOLING_MODES),
    wordPooling: oneOf('wordPooling', c.get<string>('wordPooling', DEFAULT_RECIPE.wordPool), WORD_POOLINGS),
    normalize: c.get<boolean>('normalize', DEFAULT_RECIPE.normalize),
    maxTokensPerBatch: positiveInt('maxTokensPerBatch', c.get<number>('maxTokensPerBatch', 1024), 16),
    threads: positiveInt('threads', c.get<number>('threads', 0), 0),
    include: c.get<string[]>('include', []),
    exclude: c.get<string[]>('exclude', []),
    indexOnSave: c.get<boolean>('indexOnSave', true),
    storageLocation: c.get<string>('storageLocation', '').trim(),
    store: c.get<string>('store', '').trim(),
    modelDtype: oneOf('modelDtype', c.get<string>('modelDtype', 'fp32'), MODEL_DTYPE_NAMES),
    explicit: { layer: isSet(c, 'layer'), pooling: isSet(c, 'pooling'), normalize: isSet(c, 'normalize') },
  };
}

const MODEL_DTYPE_NAMES = ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;

/** Whether a setting has a value in some settings tab (not only its default). */
function isSet(c: vscode.WorkspaceConfiguration, key: string): boolean {
  const i = c.inspect(key);
  return !!i && [i.globalValue, i.workspaceValue, i.workspaceFolderValue].some((v) => v !== undefined);
}

/** The loaded model's own recipe (LoadedModelInfo.ownRecipe), set by EngineAccess when a model loads. */
let loadedOwnRecipe: { model: string; recipe: NonNullable<LoadedModelInfo['ownRecipe']> } | undefined;

export function setLoadedOwnRecipe(model: string | undefined, recipe: LoadedModelInfo['ownRecipe']): void {
  loadedOwnRecipe = model !== undefined && recipe ? { model, recipe } : undefined;
}

/**
 * The recipe of the settings: each of layer / pooling / normalize the person set, and for the others
 * the model's own recipe once that model is loaded (its sentence-transformers files), else the defaults.
 * Every reader (index, search, status bar, extraction) goes through here, so they never disagree.
 */
export function recipeOf(cfg: ExtensionConfig): Recipe {
  const own = loadedOwnRecipe?.model === cfg.model ? loadedOwnRecipe.recipe : undefined;
  const layer = own && !cfg.explicit.layer ? own.layer : cfg.layer;
  const pool = own && !cfg.explicit.pooling ? own.pool : cfg.pooling;
  return {
    layer,
    pool,
    wordPool: pool === 'words' ? cfg.wordPooling : undefined,
    normalize: own && !cfg.explicit.normalize ? own.normalize : cfg.normalize,
  };
}

/**
 * Which settings layer the model value comes from, as VS Code's settings editor shows it (from
 * `inspect`, the same resolution `get` uses). In a remote window (code-server, SSH, containers) the
 * User tab and the Remote tab are merged into `globalValue` for a window-scoped setting.
 */
export function settingSource(key: keyof ExtensionConfig, scope?: vscode.ConfigurationScope): string {
  const i = vscode.workspace.getConfiguration(SECTION, scope).inspect(key);
  if (!i) return 'unknown';
  if (i.workspaceFolderValue !== undefined) return 'Folder settings';
  if (i.workspaceValue !== undefined) return 'Workspace settings';
  if (i.globalValue !== undefined) return vscode.env.remoteName ? 'User or Remote settings' : 'User settings';
  return 'default';
}

/**
 * The engine process's life cycle: minutes of idle before it stops (0 = never) and its memory budget
 * (undefined for 0, the default, or an invalid value: the engine client sizes it from the open indexes).
 */
export function engineProcessConfig(): { idleMs: number; memoryBudgetMb: number | undefined } {
  const c = vscode.workspace.getConfiguration(SECTION);
  const minutes = c.get<number>('engineIdleMinutes', 5);
  const mb = c.get<number>('engineMemoryBudgetMB', 0); // 0, the default: automatic
  return {
    idleMs: Number.isFinite(minutes) && minutes > 0 ? minutes * 60_000 : 0,
    memoryBudgetMb: Number.isInteger(mb) && mb >= 256 ? mb : undefined,
  };
}

export type SettingsTargetName = 'user' | 'workspace';

/**
 * Asks where a setting chosen from a command goes: User settings (every workspace) or Workspace
 * settings (this workspace only, written into the repository's .vscode/settings.json — said so).
 * With no folder open it is the User settings, unasked. Undefined: the user closed the question.
 */
export async function pickSettingsTarget(what: string, given?: SettingsTargetName): Promise<vscode.ConfigurationTarget | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (given === 'user' || !folders.length) return vscode.ConfigurationTarget.Global;
  if (given === 'workspace') return vscode.ConfigurationTarget.Workspace;
  const file = vscode.workspace.workspaceFile && vscode.workspace.workspaceFile.scheme === 'file'
    ? vscode.workspace.workspaceFile.fsPath
    : folders.length === 1 ? `${folders[0]!.uri.fsPath}/.vscode/settings.json` : 'the workspace file';
  type Item = vscode.QuickPickItem & { target: vscode.ConfigurationTarget };
  const items: Item[] = [
    { label: '$(account) User settings', description: 'every workspace', detail: `Nothing is written into the repository.`, target: vscode.ConfigurationTarget.Global },
    { label: '$(folder) Workspace settings', description: 'this workspace only', detail: `Writes ${file}.`, target: vscode.ConfigurationTarget.Workspace },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: `Embedding Lens: where should ${what} be saved?`, placeHolder: 'User settings or Workspace settings' });
  return pick?.target;
}

/** Downloads need both the setting and a trusted workspace. */
export function engineLoadOptions(cfg: ExtensionConfig, trusted: boolean, cacheDir: string): EngineLoadOptions {
  return {
    model: cfg.model,
    offline: !cfg.allowDownloads || !trusted,
    threads: cfg.threads,
    maxTokensPerBatch: cfg.maxTokensPerBatch,
    cacheDir,
    ...(cfg.modelDtype !== 'fp32' ? { modelDtype: cfg.modelDtype } : {}),
  };
}

/** Whether a configuration change touches settings the engine was loaded with. */
export function affectsEngine(e: vscode.ConfigurationChangeEvent): boolean {
  return ['model', 'allowDownloads', 'threads', 'maxTokensPerBatch', 'modelDtype'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
}
