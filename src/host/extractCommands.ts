// Extract Embeddings of Selection / Current File / Workspace: texts from the editor (or every
// indexable file of a folder, read by the worker), a recipe from the settings or picked on the way,
// a file from the save dialog (.npy, .h5, .faiss), written by the engine's writeExtraction in the
// worker, with a cancellable progress notification and a "Reveal in Explorer" button at the end.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PoolingMode, Recipe, WordPooling } from '../core/types';
import type { ExtractSource, ExtractToFileResult } from '../protocol/worker';
import { abortSignalOf } from './cancellation';
import { extensionsOfFormat, OUTPUT_FORMAT_NAMES, outputFormatOfName, type OutputFormat } from '../core/outputFormats';
import { describeRecipe, POOLING_MODES, WORD_POOLINGS } from '../core/recipe';
import { readConfig, recipeOf } from './config';
import { diskFolders, excludeGlobs, showFailure, type EngineAccess } from './engineAccess';
import { plural } from './statusBar';

export type ExtractKind = 'selection' | 'file' | 'workspace';

/**
 * Arguments the extract commands accept (from keybindings, tasks or other extensions); each one
 * given skips the matching question.
 */
export interface ExtractArgs {
  /** Absolute path of the output (.npy, .h5, .faiss). */
  output?: string;
  layer?: string;
  pooling?: PoolingMode;
  wordPooling?: WordPooling;
  /** Workspace extraction: the folder (its name or path) in a multi-root workspace. */
  folder?: string;
}

/** The save dialog's choices, from core's one extension → format map. */
const SAVE_FILTERS: Record<string, string[]> = Object.fromEntries((Object.keys(OUTPUT_FORMAT_NAMES) as OutputFormat[]).map((f) => {
  const exts = extensionsOfFormat(f);
  return [`${OUTPUT_FORMAT_NAMES[f]} (${exts.map((e) => `.${e}`).join(', ')})`, exts];
}));

/** Why the active editor has no text to embed, or undefined when it has. */
export function activeTextProblem(): string | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor) {
    return editor.document.getText().includes('\u0000')
      ? `${path.basename(editor.document.fileName)} looks binary (it contains NUL bytes): Embedding Lens embeds text only.`
      : undefined;
  }
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom ? input.uri : undefined;
  if (uri) return `${path.basename(uri.fsPath)} is not open as text (binary, or an unsupported encoding): Embedding Lens embeds text only.`;
  return 'Open a file first.';
}

/** The layer / pooling picks shared by "Choose Layer and Pooling" and extraction. Undefined = cancelled. */
export async function pickRecipeParts(current: { layer: string; pooling: string }, forExtraction: boolean): Promise<{ layer: string; pooling: PoolingMode; wordPooling?: WordPooling } | undefined> {
  const layers: (vscode.QuickPickItem & { value?: string })[] = [
    { label: 'last', detail: 'the last layer (what most embedding models use)', value: 'last' },
    { label: '-2', detail: 'the second-to-last layer', value: '-2' },
    { label: 'middle', detail: 'the middle layer', value: 'middle' },
    { label: 'first', detail: 'the first transformer layer', value: 'first' },
    { label: 'embeddings', detail: 'the embeddings output, before any layer (0)', value: 'embeddings' },
    { label: 'mean(-4..-1)', detail: 'element-wise mean of the last four layers', value: 'mean(-4..-1)' },
    { label: '-1,-2', detail: 'last two layers concatenated', value: '-1,-2' },
    ...(forExtraction ? [{ label: 'all', detail: 'every hidden state, concatenated', value: 'all' }] : []),
    { label: 'Other…', detail: 'type a layer spec' },
  ];
  for (const l of layers) if (l.value === current.layer) l.description = 'current';
  const layerPick = await vscode.window.showQuickPick(layers, { title: 'Embedding Lens: Layer (1/2)', placeHolder: `Current: ${current.layer}` });
  if (!layerPick) return undefined;
  const layer = layerPick.value ?? (await vscode.window.showInputBox({ title: 'Layer spec', value: current.layer, placeHolder: 'e.g. 3, -2, mean(-4..-1), -1,-2' }))?.trim();
  if (!layer) return undefined;
  const poolPick = await vscode.window.showQuickPick(
    POOLING_MODES.map((p) => ({ label: p, description: p === current.pooling ? 'current' : undefined })),
    { title: 'Embedding Lens: Pooling (2/2)', placeHolder: `Current: ${current.pooling}` },
  );
  if (!poolPick) return undefined;
  const pooling = poolPick.label as PoolingMode;
  let wordPooling: WordPooling | undefined;
  if (pooling === 'words') {
    wordPooling = (await vscode.window.showQuickPick(WORD_POOLINGS.map((w) => ({ label: w })), { title: 'Embedding Lens: Word pooling' }))?.label as WordPooling | undefined;
    if (!wordPooling) return undefined;
  }
  return { layer, pooling, wordPooling };
}

async function chooseRecipe(scope: vscode.Uri | undefined, args: ExtractArgs): Promise<Recipe | undefined> {
  const cfg = readConfig(scope);
  const fromSettings = recipeOf(cfg);
  if (args.layer || args.pooling) {
    const pool = args.pooling ?? fromSettings.pool;
    return { ...fromSettings, layer: args.layer ?? fromSettings.layer, pool, wordPool: pool === 'words' ? args.wordPooling ?? cfg.wordPooling : undefined };
  }
  const describe = describeRecipe(fromSettings);
  const pick = await vscode.window.showQuickPick(
    [
      { label: '$(settings-gear) Use the settings', description: describe, value: 'settings' as const },
      { label: '$(layers) Choose layer and pooling…', description: 'for this extraction only', value: 'choose' as const },
    ],
    { title: 'Embedding Lens: Extract — recipe', placeHolder: `Model: ${cfg.model}` },
  );
  if (!pick) return undefined;
  if (pick.value === 'settings') return fromSettings;
  const parts = await pickRecipeParts({ layer: cfg.layer, pooling: cfg.pooling }, true);
  return parts && { ...fromSettings, layer: parts.layer, pool: parts.pooling, wordPool: parts.wordPooling };
}

async function chooseFolder(args: ExtractArgs): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = diskFolders();
  if (args.folder) return folders.find((f) => f.name === args.folder || f.uri.fsPath === args.folder);
  if (folders.length <= 1) return folders[0];
  return vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which folder to extract?' });
}

/** `<source>.<layer>-<pooling>.embeddings.npy`, e.g. `app.py.last-mean.embeddings.npy`. */
export function defaultOutputName(source: string, recipe: Recipe): string {
  const safe = (t: string) => t.replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '') || 'x';
  return `${safe(source)}.${safe(recipe.layer)}-${recipe.pool}.embeddings.npy`;
}

/** Runs one extract command; resolves with what was written, or undefined (cancelled / told the user why not). */
export async function runExtract(access: EngineAccess, kind: ExtractKind, args: ExtractArgs = {}): Promise<ExtractToFileResult | undefined> {
  let source: ExtractSource;
  let scope: vscode.Uri | undefined;
  let what: string;
  let defaultDir: vscode.Uri | undefined;
  /** What the output is named after: the file, the selection's file and lines, or the folder. */
  let baseName: string;
  const editor = vscode.window.activeTextEditor;
  if (kind === 'workspace') {
    const folder = await chooseFolder(args);
    if (!folder) {
      if (!diskFolders().length) void vscode.window.showWarningMessage('Embedding Lens: open a folder first (there is no folder on disk to extract).');
      return undefined;
    }
    const cfg = readConfig(folder.uri);
    source = { kind: 'folder', root: folder.uri.fsPath, include: cfg.include, exclude: excludeGlobs(cfg) };
    scope = folder.uri;
    what = `the files of ${folder.name}`;
    defaultDir = folder.uri;
    baseName = folder.name;
  } else {
    const problem = activeTextProblem();
    if (problem) {
      void vscode.window.showWarningMessage(`Embedding Lens: ${problem}`);
      return undefined;
    }
    const doc = editor!.document;
    scope = doc.uri;
    const label = doc.isUntitled ? doc.fileName : vscode.workspace.asRelativePath(doc.uri, true);
    if (kind === 'selection') {
      const selections = editor!.selections.filter((s) => doc.getText(s).trim());
      if (!selections.length) {
        void vscode.window.showWarningMessage('Embedding Lens: select some text first (the selection is empty).');
        return undefined;
      }
      source = {
        kind: 'texts',
        texts: selections.map((s) => doc.getText(s)),
        labels: selections.map((s) => `${label}:${s.start.line + 1}-${s.end.line + 1}`),
      };
      what = selections.length > 1 ? `${selections.length} selections` : 'the selection';
      const first = selections[0]!;
      baseName = `${path.basename(doc.fileName)}.L${first.start.line + 1}-${first.end.line + 1}`;
    } else {
      const text = doc.getText();
      if (!text.trim()) {
        void vscode.window.showWarningMessage(`Embedding Lens: ${path.basename(doc.fileName)} is empty.`);
        return undefined;
      }
      source = { kind: 'texts', texts: [text], labels: [label] };
      what = path.basename(doc.fileName);
      baseName = path.basename(doc.fileName);
    }
    defaultDir = vscode.workspace.getWorkspaceFolder(doc.uri)?.uri ?? (doc.uri.scheme === 'file' ? vscode.Uri.file(path.dirname(doc.uri.fsPath)) : diskFolders()[0]?.uri);
  }

  let recipe: Recipe | undefined;
  try {
    recipe = await chooseRecipe(scope, args);
  } catch (err) {
    void showFailure(err, access.log, 'extraction');
    return undefined;
  }
  if (!recipe) return undefined;

  let output = args.output;
  if (!output) {
    const picked = await vscode.window.showSaveDialog({
      title: `Embedding Lens: save the embeddings of ${what}`,
      // Named after its source, with `.embeddings.` in the name: the indexer leaves such files out (OWN_OUTPUT_GLOBS).
      defaultUri: defaultDir ? vscode.Uri.joinPath(defaultDir, defaultOutputName(baseName, recipe)) : undefined,
      filters: SAVE_FILTERS,
      saveLabel: 'Extract',
    });
    if (!picked) return undefined;
    output = picked.fsPath;
  }
  if (!outputFormatOfName(output)) {
    void vscode.window.showWarningMessage(`Embedding Lens: "${path.basename(output)}" is not a .npy, .h5 or .faiss file; choose one of those.`);
    return undefined;
  }

  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Embedding Lens: extracting ${what}`, cancellable: true },
      async (progress, token) => {
        const abort = abortSignalOf(token);
        try {
          progress.report({ message: 'loading the model…' });
          await access.loadModel(scope, abort.signal, progress);
          let reported = 0;
          return await access.engine.request('extractToFile', { source, recipe: recipe!, file: output! }, {
            signal: abort.signal,
            onProgress: (p) => {
              let message: string;
              let pct = reported;
              if (p.phase === 'read') {
                message = `reading files ${p.filesDone}/${p.filesTotal}`;
                pct = p.filesTotal ? (10 * p.filesDone) / p.filesTotal : 0;
              } else if (p.phase === 'embed') {
                message = `${p.itemsDone}/${p.itemsTotal} texts`;
                pct = 10 + (p.tokensTotal ? (85 * p.tokensDone) / p.tokensTotal : 0);
              } else {
                message = 'writing…';
                pct = 95;
              }
              progress.report({ message, increment: Math.max(0, pct - reported) });
              reported = Math.max(reported, pct);
            },
          });
        } finally {
          abort.dispose();
        }
      },
    );
    access.log.info(`extracted ${result.texts} ${plural(result.texts, 'text')} → ${result.rows}×${result.dims} to ${result.files.join(', ')}`);
    const target = vscode.Uri.file(result.files[0]!);
    void vscode.window
      .showInformationMessage(
        `Embedding Lens: wrote ${result.rows} ${plural(result.rows, 'vector')} × ${result.dims} dims to ${path.basename(result.files[0]!)}${result.skipped ? ` (${result.skipped} ${plural(result.skipped, 'file')} skipped: binary, too large or minified)` : ''}.`,
        'Reveal in Explorer',
      )
      .then((c) => {
        if (!c) return;
        // Inside the workspace: the Explorer view; elsewhere: the OS file manager.
        if (vscode.workspace.getWorkspaceFolder(target)) void vscode.commands.executeCommand('revealInExplorer', target);
        else void vscode.commands.executeCommand('revealFileInOS', target);
      });
    return result;
  } catch (err) {
    void showFailure(err, access.log, 'extraction');
    return undefined;
  }
}
