// The status bar item: index state, model and chunk count; a click opens Search Workspace.
import * as vscode from 'vscode';
import { Disposable } from './disposable';
import { describeRecipe } from '../core/recipe';
import { recipeOf, type ExtensionConfig } from './config';
import { COMMANDS } from './commandIds';

export type IndexState =
  | { kind: 'none' }
  | { kind: 'indexing'; done?: number; total?: number }
  | { kind: 'ready'; chunks: number }
  /** An index exists on disk (from an earlier session); it is checked on first use. */
  | { kind: 'stored' }
  /** Indexing stopped before the end (cancelled, failed): search answers from the files finished so far. */
  | { kind: 'partial'; chunks?: number; files?: number; done?: number; total?: number }
  /** No index for the current model and recipe; there is one of another recipe (search refuses it). */
  | { kind: 'mismatch'; others: string[] }
  | { kind: 'error'; message: string };

/** The model of the settings, where the value comes from, and the model the engine has loaded. */
export interface ModelInUse {
  /** As the settings give it (hub id or folder). */
  configured: string;
  /** Which settings layer the value comes from (User, Workspace, …, or default). */
  source: string;
  /** The model the engine loaded last, if any (its folder on disk). */
  loaded?: { model: string; folder: string };
}

export class StatusBar extends Disposable {
  private readonly item = this.own(vscode.window.createStatusBarItem('embeddingLens.status', vscode.StatusBarAlignment.Right, 100));
  private state: IndexState = { kind: 'none' };
  private model: ModelInUse | undefined;
  private recipe = '';
  private configProblem: string | undefined;

  constructor() {
    super();
    this.item.name = 'Embedding Lens';
    this.render();
  }

  setConfig(cfg: ExtensionConfig | undefined, problem?: string): void {
    this.configProblem = cfg ? undefined : problem ?? 'the settings are invalid';
    this.recipe = cfg ? describeRecipe(recipeOf(cfg)) : '';
    this.render();
  }

  setModel(model: ModelInUse | undefined): void {
    this.model = model;
    this.render();
  }

  setIndexState(state: IndexState): void {
    this.state = state;
    this.render();
  }

  get indexState(): IndexState {
    return this.state;
  }

  /** Shown only when there is a workspace folder to index. */
  setVisible(visible: boolean): void {
    if (visible) this.item.show();
    else this.item.hide();
  }

  /** Short name of the model shown: the one loaded when it is the configured one, else the configured one. */
  private modelShort(): string {
    const m = this.model;
    if (!m) return '?';
    return shortModelName(m.configured);
  }

  private render(): void {
    const s = this.state;
    const model = this.modelShort();
    this.item.command = COMMANDS.searchWorkspace;
    this.item.backgroundColor = undefined;
    switch (s.kind) {
      case 'none':
        this.item.text = '$(database) EL: no index';
        this.item.command = COMMANDS.indexWorkspace;
        break;
      case 'indexing':
        this.item.text = s.total ? `$(sync~spin) EL: indexing ${s.done ?? 0}/${s.total}` : '$(sync~spin) EL: indexing';
        break;
      case 'ready':
        this.item.text = `$(database) EL: ${s.chunks} ${plural(s.chunks, 'chunk')} · ${model}`;
        break;
      case 'stored':
        this.item.text = `$(database) EL: indexed · ${model}`;
        break;
      case 'partial':
        this.item.text = `$(warning) EL: partial index${s.done !== undefined && s.total ? ` ${s.done}/${s.total}` : ''} · ${model}`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        this.item.command = COMMANDS.indexWorkspace;
        break;
      case 'mismatch':
        this.item.text = `$(warning) EL: index of another recipe · ${model}`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        this.item.command = COMMANDS.rebuildIndex;
        break;
      case 'error':
        this.item.text = '$(error) EL: index error';
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        this.item.command = COMMANDS.showLog;
        break;
      default: {
        const unknown: never = s;
        throw new Error(`unknown index state ${JSON.stringify(unknown)}`);
      }
    }
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = false;
    md.appendMarkdown('**Embedding Lens**\n\n');
    md.appendText(this.describeModel() + '\n');
    if (this.recipe) md.appendText(`Recipe: ${this.recipe}\n`);
    md.appendText(`Index: ${this.describeState()}\n`);
    const click = { none: 'index the workspace', partial: 'finish indexing (Index Workspace)', mismatch: 'rebuild the index for this recipe', error: 'show the log' }[s.kind as string] ?? 'search the workspace';
    md.appendMarkdown(`\nClick to ${click}.`);
    this.item.tooltip = md;
  }

  /** The model in words: the setting, where it comes from, and what the engine has loaded. */
  describeModel(): string {
    const m = this.model;
    if (this.configProblem) return `Model: setting problem: ${this.configProblem}`;
    if (!m) return 'Model: ?';
    let line = `Model: ${m.configured} (${m.source})`;
    if (!m.loaded) line += '; not loaded yet (loads on first use)';
    else if (m.loaded.model === m.configured) line += `; in use, loaded from ${m.loaded.folder}`;
    else line += `; the engine still has ${m.loaded.model} loaded (the new one loads on next use)`;
    return line;
  }

  /** The index state in words (tooltip; tests read it through the extension's API). */
  describeState(): string {
    const s = this.state;
    switch (s.kind) {
      case 'none': return 'not indexed yet';
      case 'indexing': return s.total ? `indexing, ${s.done ?? 0} of ${s.total} files (search answers from the files indexed so far)` : 'indexing';
      case 'ready': return `${s.chunks} ${plural(s.chunks, 'chunk')}, complete`;
      case 'stored': return 'an index is on disk (checked on first use)';
      case 'partial':
        return `partial: indexing stopped${s.done !== undefined && s.total ? ` at ${s.done} of ${s.total} files` : ''}${s.chunks !== undefined ? `; ${s.chunks} ${plural(s.chunks, 'chunk')} searchable` : ''}. Search answers from those only; saves are not indexed until "Index Workspace" finishes it.`;
      case 'mismatch': return `no index for the current model and recipe; the stored one is of another recipe (${s.others.join('; ')}). Search refuses it, saves are not indexed: "Rebuild Index" builds one for the current settings, or change the settings back.`;
      case 'error': return `error: ${s.message}`;
    }
  }

  get text(): string {
    return this.item.text;
  }

  get tooltipText(): string {
    const t = this.item.tooltip;
    return typeof t === 'string' ? t : t?.value ?? '';
  }

}

/** `1 chunk`, `2 chunks`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return n === 1 ? word : many;
}

/** Last path segment of a folder, or the hub id's name. */
export function shortModelName(model: string): string {
  return model.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? model;
}
