// VS Code entry point. No logic here: src/host/activate.ts builds the services; everything they
// own is disposed through context.subscriptions when the extension deactivates.
import type * as vscode from 'vscode';
import { activateExtension, type EmbeddingLensApi } from './host/activate';

export function activate(context: vscode.ExtensionContext): EmbeddingLensApi {
  return activateExtension(context);
}

export function deactivate(): void {
  // Nothing beyond context.subscriptions.
}
