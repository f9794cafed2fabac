// The status bar item: index state, model and chunk count; a click opens Search Workspace.
import * as vscode from 'vscode';
import { describeRecipe } from '../core/recipe';
import { recipeOf, type ExtensionConfig } from './config';
import { COMMANDS } from './commandIds';

export type IndexState =
  | { kind: 'none' }
  | { kind: 'indexing'; done?: number; total?: number }
  | { kind: 'ready'; chunks: number }
  /** An index exists on disk (from an earlier session); its size is known after the next run. */
  | { kind: 'stored' }
  | { kind: 'error'; message: string };

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('embeddingLens.status', vscode.StatusBarAlignment.Right, 100);
  private state: IndexState = { kind: 'none' };
  private model = '';
  private modelShort = '';
  private recipe = '';

  constructor() {
    this.item.name = 'Embedding Lens';
    this.item.command = COMMANDS.searchWorkspace;
    this.render();
  }

  setConfig(cfg: ExtensionConfig | undefined): void {
    this.model = cfg?.model ?? '(model setting invalid)';
    this.modelShort = cfg ? cfg.model.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? cfg.model : '?';
    this.recipe = cfg ? describeRecipe(recipeOf(cfg)) : '';
    this.render();
  }

  setIndexState(state: IndexState): void {
    this.state = state;
    this.render();
  }

  /** Shown only when there is a workspace folder to index. */
  setVisible(visible: boolean): void {
    if (visible) this.item.show();
    else this.item.hide();
  }

  private render(): void {
    const s = this.state;
    switch (s.kind) {
      case 'none':
        this.item.text = '$(database) EL: no index';
        break;
      case 'indexing':
        this.item.text = s.total ? `$(sync~spin) EL: ${s.done ?? 0}/${s.total}` : '$(sync~spin) EL: indexing';
        break;
      case 'ready':
        this.item.text = `$(database) EL: ${s.chunks} chunks · ${this.modelShort}`;
        break;
      case 'stored':
        this.item.text = `$(database) EL: indexed · ${this.modelShort}`;
        break;
      case 'error':
        this.item.text = '$(warning) EL: index error';
        break;
      default: {
        const unknown: never = s;
        throw new Error(`unknown index state ${JSON.stringify(unknown)}`);
      }
    }
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = false;
    md.appendMarkdown('**Embedding Lens**\n\n');
    md.appendText(`Model: ${this.model}\n`);
    if (this.recipe) md.appendText(`Recipe: ${this.recipe}\n`);
    if (s.kind === 'error') md.appendText(`Index: ${s.message}\n`);
    else md.appendText(`Index: ${this.describeState()}\n`);
    md.appendMarkdown('\nClick to search the workspace.');
    this.item.tooltip = md;
  }

  /** The index state in words (tooltip; tests read it through the extension's API). */
  describeState(): string {
    const s = this.state;
    switch (s.kind) {
      case 'none': return 'not indexed yet';
      case 'indexing': return s.total ? `indexing, ${s.done ?? 0} of ${s.total} files` : 'indexing';
      case 'ready': return `${s.chunks} chunks`;
      case 'stored': return 'indexed (size known after the next refresh)';
      case 'error': return `error: ${s.message}`;
    }
  }

  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
