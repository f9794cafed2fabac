// The status bar item: index state, model and chunk count; a click opens Search Workspace.
import * as vscode from 'vscode';
import type { ExtensionConfig } from './config';
import { COMMANDS } from './commandIds';

export type IndexState =
  | { kind: 'none' }
  | { kind: 'indexing'; done?: number; total?: number }
  | { kind: 'ready'; chunks: number }
  | { kind: 'error'; message: string };

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('embeddingLens.status', vscode.StatusBarAlignment.Right, 100);
  private state: IndexState = { kind: 'none' };
  private model = '';
  private recipe = '';

  constructor() {
    this.item.name = 'Embedding Lens';
    this.item.command = COMMANDS.searchWorkspace;
    this.render();
  }

  setConfig(cfg: ExtensionConfig | undefined): void {
    this.model = cfg?.model ?? '(model setting invalid)';
    this.recipe = cfg ? `layer ${cfg.layer}, ${cfg.pooling}${cfg.pooling === 'words' ? `/${cfg.wordPooling}` : ''}${cfg.normalize ? ', normalized' : ''}` : '';
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
        this.item.text = `$(database) EL: ${s.chunks} chunks`;
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
    md.appendMarkdown('\nClick to search the workspace.');
    this.item.tooltip = md;
  }

  dispose(): void {
    this.item.dispose();
  }
}
