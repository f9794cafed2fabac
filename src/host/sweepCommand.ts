// "Find the Best Layer for This Workspace": mines query → target pairs from a folder, scores every
// layer × pooling on them in the worker (one model pass), shows the table in the inspector panel,
// and — when the panel's button is pressed — writes the chosen layer and pooling to the settings
// and offers to re-index (an index is tied to its recipe).
import * as vscode from 'vscode';
import type { SweepResult } from '../core/sweep/sweep';
import { abortSignalOf } from './cancellation';
import { COMMANDS } from './commandIds';
import { pickSettingsTarget, SECTION, type SettingsTargetName } from './config';
import { diskFolders, showFailure, type EngineAccess } from './engineAccess';
import { InspectorPanel } from './inspectorPanel';

export interface SweepArgs {
  /** Folder name or path in a multi-root workspace. */
  folder?: string;
  maxPairs?: number;
}

export async function runSweepCommand(access: EngineAccess, args: SweepArgs): Promise<SweepResult | undefined> {
  const folders = diskFolders();
  const folder = args.folder
    ? folders.find((f) => f.name === args.folder || f.uri.fsPath === args.folder)
    : folders.length > 1
      ? await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which folder should the layers be measured on?' })
      : folders[0];
  if (!folder) return undefined;
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Embedding Lens: measuring every layer on ${folder.name}`, cancellable: true },
      async (progress, token) => {
        const abort = abortSignalOf(token);
        try {
          progress.report({ message: 'loading the model…' });
          await access.loadModel(folder.uri, abort.signal, progress);
          const t = access.targetFor(folder);
          let reported = 0;
          const to = (pct: number, message: string) => {
            progress.report({ message, increment: Math.max(0, pct - reported) });
            reported = Math.max(reported, pct);
          };
          return await access.engine.request('sweep', { root: t.root, maxPairs: args.maxPairs, include: t.cfg.include, exclude: t.exclude }, {
            signal: abort.signal,
            onProgress: (p) => {
              if (p.phase === 'mine') to(p.filesTotal ? (15 * p.filesDone) / p.filesTotal : 0, `finding query → code pairs: ${p.filesDone}/${p.filesTotal} files`);
              else if (p.phase === 'embed') to(15 + (p.tokensTotal ? (75 * p.tokensDone) / p.tokensTotal : 0), `embedding ${p.itemsDone}/${p.itemsTotal} texts (all layers in one pass)`);
              else to(90 + (10 * p.cellsDone) / p.cellsTotal, `scoring ${p.cellsDone}/${p.cellsTotal} layer × pooling cells`);
            },
          });
        } finally {
          abort.dispose();
        }
      },
    );
    access.log.info(`sweep on ${folder.name}: ${result.pairs} pairs, ${result.stats.batches} model runs, ${(result.stats.totalMs / 1000).toFixed(1)} s. ${result.recommendation.text}`);
    InspectorPanel.showSweep(result);
    return result;
  } catch (err) {
    void showFailure(err, access.log, 'the layer sweep');
    return undefined;
  }
}

/** The panel's "apply" button: ask where, write the layer and pooling, then offer to re-index with them. */
export async function applySweepChoice(choice: { layer: string; pool: string }, log: vscode.LogOutputChannel, given?: SettingsTargetName): Promise<boolean> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const target = await pickSettingsTarget(`layer ${choice.layer} and pooling ${choice.pool}`, given);
  if (target === undefined) return false;
  await cfg.update('layer', choice.layer, target);
  await cfg.update('pooling', choice.pool, target);
  const where = target === vscode.ConfigurationTarget.Global ? 'User settings' : 'Workspace settings';
  log.info(`sweep applied: layer ${choice.layer}, pooling ${choice.pool} (${where})`);
  void vscode.window.showInformationMessage(
    `Embedding Lens: layer "${choice.layer}" and pooling "${choice.pool}" are now in the ${where}. The index is built per layer and pooling: index the workspace again to search with them.`,
    'Re-index Now',
  ).then((pick) => pick && vscode.commands.executeCommand(COMMANDS.indexWorkspace));
  return true;
}
