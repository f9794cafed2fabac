// The inspector webview panel (host side). One panel at a time; `show` reveals it or creates it.
// The webview script is dist/media/inspector.js (bundled from media/inspector.ts); messages are
// typed in src/protocol/panel.ts. Workspace text travels as data and the webview only ever puts it
// into the DOM as text.
import * as vscode from 'vscode';
import type { FromPanel, PanelViewState, TextSource, ToPanel } from '../protocol/panel';

export const INSPECTOR_VIEW_TYPE = 'embeddingLens.inspector';

export interface InspectorHost {
  log: vscode.LogOutputChannel;
  /** Called when a restored panel (or a shown-again one) asks for the text it showed before. */
  reinspect(text: string, source: TextSource | undefined): void;
}

function nonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 32; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}

export class InspectorPanel implements vscode.Disposable {
  private static current: InspectorPanel | undefined;
  private ready = false;
  private readonly queue: ToPanel[] = [];
  private readonly subscriptions: vscode.Disposable[] = [];
  /** The last message that set the panel's content, replayed if the webview is recreated. */
  private lastContent: ToPanel | undefined;

  static show(extensionUri: vscode.Uri, host: InspectorHost): InspectorPanel {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    if (InspectorPanel.current) {
      InspectorPanel.current.panel.reveal(column, true);
      return InspectorPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(INSPECTOR_VIEW_TYPE, 'Embedding Inspector', { viewColumn: column, preserveFocus: true }, {
      enableScripts: true,
      localResourceRoots: InspectorPanel.resourceRoots(extensionUri),
    });
    return (InspectorPanel.current = new InspectorPanel(panel, extensionUri, host));
  }

  /** The panel open now, if any. */
  static get instance(): InspectorPanel | undefined {
    return InspectorPanel.current;
  }

  /** Restores a panel after a window reload (registered with registerWebviewPanelSerializer). */
  static serializer(extensionUri: vscode.Uri, host: InspectorHost): vscode.WebviewPanelSerializer<PanelViewState> {
    return {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: PanelViewState | undefined) {
        panel.webview.options = { enableScripts: true, localResourceRoots: InspectorPanel.resourceRoots(extensionUri) };
        InspectorPanel.current?.dispose();
        InspectorPanel.current = new InspectorPanel(panel, extensionUri, host);
        host.log.info(`inspector panel restored${state?.text ? ' (re-inspecting its text)' : ''}`);
      },
    };
  }

  private static resourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
    return [vscode.Uri.joinPath(extensionUri, 'dist', 'media'), vscode.Uri.joinPath(extensionUri, 'media')];
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly host: InspectorHost,
  ) {
    panel.webview.html = this.html();
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((msg: FromPanel) => this.onMessage(msg)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  post(message: ToPanel): void {
    if (message.type !== 'error' || message.text !== undefined) this.lastContent = message;
    if (!this.ready) {
      this.queue.push(message);
      return;
    }
    void this.panel.webview.postMessage(message);
  }

  private onMessage(msg: FromPanel): void {
    switch (msg.type) {
      case 'ready': {
        this.ready = true;
        const queued = this.queue.splice(0);
        for (const m of queued) void this.panel.webview.postMessage(m);
        if (queued.length === 0 && msg.state?.text) this.host.reinspect(msg.state.text, msg.state.source);
        return;
      }
      case 'openSource':
        void this.openSource(msg.source);
        return;
      case 'copy':
        void vscode.env.clipboard.writeText(msg.text).then(() => vscode.window.setStatusBarMessage(`Embedding Lens: copied ${msg.what}`, 3000));
        return;
      case 'webviewError':
        this.host.log.error(`inspector webview: ${msg.message}`);
        return;
      default: {
        const unknown: never = msg;
        this.host.log.warn(`inspector: unknown message ${JSON.stringify(unknown)}`);
      }
    }
  }

  private async openSource(source: TextSource): Promise<void> {
    try {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(source.uri, true));
      const end = doc.lineAt(Math.min(source.endLine, doc.lineCount - 1)).range.end;
      const range = new vscode.Range(source.startLine, 0, end.line, end.character);
      await vscode.window.showTextDocument(doc, { selection: range, viewColumn: vscode.ViewColumn.One });
    } catch (err) {
      void vscode.window.showWarningMessage(`Embedding Lens: cannot open ${source.label}: ${err instanceof Error ? err.message : err}`);
    }
  }

  private html(): string {
    const webview = this.panel.webview;
    const n = nonce();
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'media', 'inspector.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'inspector.css'));
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `img-src ${webview.cspSource} data:`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${n}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>Embedding Inspector</title>
</head>
<body>
<main id="app" data-state="empty">
  <header id="header">
    <h1>Embedding Inspector</h1>
    <p id="status" role="status">Select text in an editor and run “Embedding Lens: Inspect Selection”.</p>
  </header>
  <section id="source-section" hidden>
    <h2>Selection <button id="open-source" class="link" type="button" hidden></button></h2>
    <pre id="source-text"></pre>
  </section>
  <section id="error-section" hidden><p id="error-text" class="error"></p></section>
  <section id="results" hidden></section>
</main>
<script nonce="${n}" src="${script}"></script>
</body>
</html>`;
  }

  dispose(): void {
    if (InspectorPanel.current === this) InspectorPanel.current = undefined;
    while (this.subscriptions.length) this.subscriptions.pop()?.dispose();
    this.panel.dispose();
  }
}
