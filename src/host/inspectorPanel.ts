// The inspector webview panel (host side). One panel at a time; `show` reveals it or creates it.
// The webview script is dist/media/inspector.js (bundled from media/inspector.ts); messages are
// typed in src/protocol/panel.ts. Workspace text travels as data and the webview only ever puts it
// into the DOM as text.
//
// The panel keeps what it shows (the inspection, the pinned text "A", the index sample, a sweep) and
// replays it whenever the webview is recreated (hidden and shown again), so showing it again costs no
// model run. After a window reload the serializer restores it and the text is inspected again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readConfig } from './config';
import { Disposable } from './disposable';
import type { SweepResult } from '../core/sweep/sweep';
import { prefixesForModel } from '../core/search/prefixes';
import { AttentionData } from './attentionPanel';
import type { AttentionMessage, FromPanel, LayerNeighboursMessage, LayerNeighboursScope, IndexPointsMessage, PanelIndexPoints, PanelInspection, PanelViewState, TextSource, ToPanel } from '../protocol/panel';
import { parseLayerSpec } from '../core/extract/layers';
import { kindOfPath } from '../core/search/kinds';
import type { IndexPoints, MapProjection } from '../protocol/worker';
import { COMMANDS } from './commandIds';
import { hasCode } from '../core/errors';
import { storesDirOf } from '../core/workspace/layout';
import { diskFolders, type EngineAccess } from './engineAccess';
import { describeError } from './log';

export const INSPECTOR_VIEW_TYPE = 'embeddingLens.inspector';

/** Command contributed (package.json) and registered here, beside the panel it drives. */
export const PIN_SELECTION_COMMAND = 'embeddingLens.pinSelection';

/** Chunks sampled from the index for the PCA scatter: enough for a picture, cheap to send and to decompose. */
const PCA_SAMPLE = 800;
/** Fewer points than this get no UMAP (its 15-neighbour graph and the 10-NN measure need more). */
const UMAP_MIN_POINTS = 20;

export interface InspectorHost {
  log: vscode.LogOutputChannel;
  /** Called when a restored panel asks for the text it showed before (after a window reload). */
  reinspect(text: string, source: TextSource | undefined): void;
}

/** What the panel needs beyond an InspectorHost: set once by `registerInspector` at activation. */
interface InspectorServices {
  extensionUri: vscode.Uri;
  access: EngineAccess;
  /** Host for panels opened by `showSweep` before any inspection gave one. */
  defaultHost: InspectorHost;
  applySweep: vscode.EventEmitter<{ layer: string; pool: string }>;
}

let services: InspectorServices | undefined;

/**
 * Registers what belongs to the panel itself: the "Pin Selection for Comparison" command and the
 * services the PCA scatter and the sweep view use. Called once from activation.
 */
export function registerInspector(o: { extensionUri: vscode.Uri; access: EngineAccess }): vscode.Disposable[] {
  const applySweep = new vscode.EventEmitter<{ layer: string; pool: string }>();
  services = {
    extensionUri: o.extensionUri,
    access: o.access,
    applySweep,
    defaultHost: {
      log: o.access.log,
      reinspect: () => o.access.log.info('inspector: nothing to re-inspect (the panel was opened for a sweep)'),
    },
  };
  return [
    applySweep,
    vscode.commands.registerCommand(PIN_SELECTION_COMMAND, () => InspectorPanel.pinSelection()),
    { dispose: () => (services = undefined) },
  ];
}

const SHARED_NOTE = 'The map and the neighbours per layer read the local index; this workspace uses a shared PostgreSQL index (setting embeddingLens.store), which they do not read.';

/** Whether the folder's settings name a shared PostgreSQL index. */
function sharedIndexOf(folder: vscode.WorkspaceFolder): boolean {
  try {
    return !!readConfig(folder.uri).store;
  } catch {
    return false;
  }
}

/**
 * The folder whose local index the map and the neighbours per layer read: the selection's own folder,
 * else the first folder on disk; no folder when that one is not on disk.
 */
function localIndexFolder(data: PanelInspection): { sourceUri?: vscode.Uri; folder?: vscode.WorkspaceFolder } {
  const sourceUri = data.source ? vscode.Uri.parse(data.source.uri, true) : undefined;
  const folder = (sourceUri && vscode.workspace.getWorkspaceFolder(sourceUri)) || diskFolders()[0];
  return { sourceUri, folder: folder?.uri.scheme === 'file' ? folder : undefined };
}

/**
 * Changes whenever an index in `storageDir` is saved (every save rewrites a store's files), so a cached
 * index sample is never shown after the index changed. Cheap: a few stat calls, no file is read.
 */
function storesFingerprint(storageDir: string): string {
  const stores = storesDirOf(storageDir);
  let newest = 0;
  let bytes = 0;
  try {
    for (const store of fs.readdirSync(stores)) {
      for (const file of fs.readdirSync(path.join(stores, store))) {
        const st = fs.statSync(path.join(stores, store, file), { throwIfNoEntry: false });
        if (!st?.isFile()) continue;
        newest = Math.max(newest, st.mtimeMs);
        bytes += st.size;
      }
    }
  } catch {
    return 'none';
  }
  return `${newest}:${bytes}`;
}

function nonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 32; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}

export class InspectorPanel extends Disposable {
  private static current: InspectorPanel | undefined;
  /** The host given by the last `show` (the inspect command's), reused by `showSweep`. */
  private static lastHost: InspectorHost | undefined;
  /** Text of a selection that "Pin Selection for Comparison" sent to be inspected: pinned when it arrives. */
  private static pinOnArrival: string | undefined;

  private ready = false;
  /** What the panel shows now; replayed when the webview is recreated. */
  private content: ToPanel | undefined;
  private pinned: PanelInspection | undefined;
  private points: Extract<ToPanel, { type: 'indexPoints' }> | undefined;
  private sweep: SweepResult | undefined;
  /** Bumped for every index-points request, so a late answer for an older text is dropped. */
  private pointsGeneration = 0;
  private pointsCache: { key: string; value: IndexPoints; map?: Promise<MapProjection> } | undefined;
  /** Attention of the inspected text (kept here; the webview gets an overview and asks for matrices). */
  private attention: AttentionData | undefined;
  private attentionMessage: Extract<ToPanel, { type: 'attention' }> | undefined;
  private attentionGeneration = 0;
  private neighboursMessage: Extract<ToPanel, { type: 'layerNeighbours' }> | undefined;
  private neighboursGeneration = 0;

  static show(extensionUri: vscode.Uri, host: InspectorHost): InspectorPanel {
    InspectorPanel.lastHost = host;
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

  /**
   * Opens (or reveals) the panel on the layer-sweep heatmap of `result`. The "Apply" button there
   * fires `onApplySweep` with the chosen layer and pooling.
   */
  static showSweep(result: SweepResult): InspectorPanel {
    const s = InspectorPanel.services();
    const panel = InspectorPanel.show(s.extensionUri, InspectorPanel.lastHost ?? s.defaultHost);
    panel.sweep = result;
    panel.send({ type: 'sweep', result, reveal: true });
    return panel;
  }

  /** Fires when the user presses "Apply" in the sweep view. */
  static onApplySweep(listener: (choice: { layer: string; pool: string }) => void): vscode.Disposable {
    return InspectorPanel.services().applySweep.event(listener);
  }

  /** "Pin Selection for Comparison": inspects the selection and pins it as A when it arrives. */
  static async pinSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const text = editor?.document.getText(editor.selection) ?? '';
    if (!text.trim()) {
      void vscode.window.showWarningMessage('Embedding Lens: select the text to pin first; then select another text and run "Inspect Selection" to compare the two.');
      return;
    }
    InspectorPanel.pinOnArrival = text;
    await vscode.commands.executeCommand(COMMANDS.inspectSelection);
  }

  /** Restores a panel after a window reload (registered with registerWebviewPanelSerializer). */
  static serializer(extensionUri: vscode.Uri, host: InspectorHost): vscode.WebviewPanelSerializer<PanelViewState> {
    return {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: PanelViewState | undefined) {
        InspectorPanel.lastHost = host;
        panel.webview.options = { enableScripts: true, localResourceRoots: InspectorPanel.resourceRoots(extensionUri) };
        InspectorPanel.current?.dispose();
        InspectorPanel.current = new InspectorPanel(panel, extensionUri, host);
        host.log.info(`inspector panel restored${state?.text ? ' (re-inspecting its text)' : ''}`);
      },
    };
  }

  private static services(): InspectorServices {
    if (!services) throw new Error('The inspector panel is not registered (registerInspector runs at activation).');
    return services;
  }

  private static resourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
    return [vscode.Uri.joinPath(extensionUri, 'dist', 'media'), vscode.Uri.joinPath(extensionUri, 'media')];
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly host: InspectorHost,
  ) {
    super();
    // Owned first, so disposed last (newest first): its listeners go before the panel closes.
    this.own(panel);
    panel.webview.html = this.html();
    this.own(panel.webview.onDidReceiveMessage((msg: FromPanel) => this.onMessage(msg)));
    // A hidden webview is torn down (no retainContextWhenHidden): messages wait for its next 'ready'.
    this.own(panel.onDidChangeViewState(() => {
      if (!panel.visible) this.ready = false;
    }));
    this.own(panel.onDidDispose(() => this.dispose()));
  }

  /** Shows `message` (an inspection, its progress or failure). */
  post(message: ToPanel): void {
    switch (message.type) {
      case 'loading':
        this.content = message;
        break;
      case 'error':
        // An error without the text (a settings problem) does not replace what is shown.
        if (message.text !== undefined) this.content = message;
        if (message.text === InspectorPanel.pinOnArrival) InspectorPanel.pinOnArrival = undefined;
        break;
      case 'inspection':
        this.content = message;
        if (InspectorPanel.pinOnArrival !== undefined && message.data.text === InspectorPanel.pinOnArrival) {
          InspectorPanel.pinOnArrival = undefined;
          this.pinned = message.data;
          this.send({ type: 'pinned', data: this.pinned });
        }
        this.send(message);
        void this.loadIndexPoints(message.data);
        void this.loadAttention(message.data);
        this.neighboursGeneration++;
        this.neighboursMessage = undefined;
        return;
      case 'pinned':
        this.pinned = message.data;
        break;
      case 'indexPoints':
        this.points = message;
        break;
      case 'sweep':
        this.sweep = message.result;
        break;
      case 'attention':
        this.attentionMessage = message;
        break;
      case 'attentionMatrix':
        break;
      case 'layerNeighbours':
        this.neighboursMessage = message;
        break;
      default: {
        const unknown: never = message;
        throw new Error(`unknown panel message ${JSON.stringify(unknown)}`);
      }
    }
    this.send(message);
  }

  /** Posts now if the webview is live; otherwise the state above is replayed on its next 'ready'. */
  private send(message: ToPanel): void {
    if (this.ready) void this.panel.webview.postMessage(message);
  }

  private onMessage(msg: FromPanel): void {
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.replay(msg.state);
        return;
      case 'openSource':
        void this.openSource(msg.source);
        return;
      case 'copy':
        void vscode.env.clipboard.writeText(msg.text).then(() => vscode.window.setStatusBarMessage(`Embedding Lens: copied ${msg.what}`, 3000));
        return;
      case 'pin':
        if (this.content?.type === 'inspection') this.post({ type: 'pinned', data: this.content.data });
        return;
      case 'unpin':
        this.post({ type: 'pinned', data: undefined });
        return;
      case 'reloadIndexPoints':
        this.pointsCache = undefined;
        if (this.content?.type === 'inspection') void this.loadIndexPoints(this.content.data);
        return;
      case 'indexWorkspace':
        void Promise.resolve(vscode.commands.executeCommand(COMMANDS.indexWorkspace)).then(() => {
          this.pointsCache = undefined;
          if (this.content?.type === 'inspection') return this.loadIndexPoints(this.content.data);
        });
        return;
      case 'applySweep':
        InspectorPanel.services().applySweep.fire({ layer: msg.layer, pool: msg.pool });
        return;
      case 'attentionMatrix': {
        const data = this.attention;
        if (!data) return;
        const { type: _type, ...req } = msg;
        try {
          this.post({ type: 'attentionMatrix', ...req, text: data.wire.text, values: data.matrix(req) });
        } catch (err) {
          this.host.log.warn(`inspector: attention matrix ${JSON.stringify(req)}: ${describeError(err, this.host.log)}`);
        }
        return;
      }
      case 'layerNeighbours':
        if (this.content?.type === 'inspection') void this.loadLayerNeighbours(this.content.data, msg.scope);
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

  /** A (re)created webview gets everything it showed; after a window reload the host re-inspects its text. */
  private replay(state: PanelViewState | undefined): void {
    if (this.sweep) this.send({ type: 'sweep', result: this.sweep, reveal: false });
    if (this.pinned) this.send({ type: 'pinned', data: this.pinned });
    if (this.content) this.send(this.content);
    if (this.points) this.send(this.points);
    if (this.attentionMessage) this.send(this.attentionMessage);
    if (this.neighboursMessage) this.send(this.neighboursMessage);
    if (!this.content && state?.text) this.host.reinspect(state.text, state.source);
  }

  /**
   * The PCA scatter's data: a sample of the index of the selection's folder (current settings' recipe)
   * and the selection embedded with that recipe, as the indexer embeds a chunk.
   */
  private async loadIndexPoints(data: PanelInspection): Promise<void> {
    const generation = ++this.pointsGeneration;
    const show = (m: IndexPointsMessage) => {
      if (generation === this.pointsGeneration) this.post({ type: 'indexPoints', ...m });
    };
    const access = services?.access;
    const { folder } = localIndexFolder(data);
    if (!access || !folder) return show({ state: 'noFolder' });
    if (sharedIndexOf(folder)) return show({ state: 'noIndex', message: SHARED_NOTE });
    if (!access.hasStoredIndex(folder)) {
      return show({ state: 'noIndex', message: `${folder.name} has no index yet.` });
    }
    show({ state: 'loading' });
    try {
      const target = access.targetFor(folder);
      const model = await access.loadModel(folder.uri);
      const key = JSON.stringify([target.storageDir, target.recipe, model.modelHash, storesFingerprint(target.storageDir)]);
      let cache = this.pointsCache?.key === key ? this.pointsCache : undefined;
      if (!cache) {
        const value = await access.engine.request('indexPoints', { root: target.root, storageDir: target.storageDir, recipe: target.recipe, limit: PCA_SAMPLE });
        cache = this.pointsCache = { key, value };
      }
      const sample = cache.value;
      const prefix = prefixesForModel(model.model).passage || undefined;
      const own = await access.engine.request('extract', { texts: [data.text], recipe: target.recipe, options: { truncate: true, prefix } });
      const points: PanelIndexPoints['points'] = sample.records.map((r) => {
        const uri = vscode.Uri.joinPath(folder.uri, ...r.path.split('/'));
        return {
          source: { label: vscode.workspace.asRelativePath(uri, true), uri: uri.toString(), startLine: r.startLine - 1, endLine: r.endLine - 1 },
          preview: r.preview,
          group: r.path.includes('/') ? r.path.slice(0, r.path.indexOf('/')) : '',
          kind: kindOfPath(r.path),
        };
      });
      const r = target.recipe;
      const ready: PanelIndexPoints = {
        recipe: `${model.model.split(/[\\/]/).pop()} · layer ${r.layer} · ${r.pool}${r.normalize ? ' · normalized' : ''}`,
        dims: sample.dims,
        vectors: sample.vectors,
        points,
        selection: own.rows === 1 && own.dims === sample.dims ? own.data : undefined,
        total: sample.total,
      };
      show({ state: 'ready', data: ready });
      // The UMAP takes a few seconds: the PCA is shown first, the UMAP joins it when ready (computed once per index state).
      if (points.length < UMAP_MIN_POINTS) return show({ state: 'ready', data: { ...ready, umapError: `${points.length} chunks are too few for a UMAP (it needs ${UMAP_MIN_POINTS}).` } });
      // The vectors are copied: the worker takes the copy's buffer, the panel keeps the original.
      cache.map ??= access.engine.request('mapProjection', { vectors: sample.vectors.slice(), dims: sample.dims, k: 10 });
      try {
        const map = await cache.map;
        show({ state: 'ready', data: { ...ready, umap: { coords: map.umap, quality: map.quality, ms: map.umapMs } } });
      } catch (err) {
        if (cache.map) cache.map = undefined;
        show({ state: 'ready', data: { ...ready, umapError: `The UMAP could not be computed: ${describeError(err, this.host.log)}` } });
      }
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') return;
      if (err instanceof Error && hasCode(err, 'INDEX_MISSING')) return show({ state: 'noIndex', message: err.message });
      show({ state: 'error', message: `The index sample could not be loaded: ${describeError(err, this.host.log)}` });
    }
  }

  /** Attention of every layer and head of the inspected text, from the engine that inspected it. */
  private async loadAttention(data: PanelInspection): Promise<void> {
    const generation = ++this.attentionGeneration;
    const show = (m: AttentionMessage, value?: AttentionData) => {
      if (generation !== this.attentionGeneration) return;
      this.attention = value;
      this.post({ type: 'attention', ...m });
    };
    const access = services?.access;
    if (!access) return;
    show({ state: 'loading' });
    try {
      const wire = await access.engine.request('attention', { text: data.text });
      if (wire.model !== data.model) return show({ state: 'error', message: `The model changed (${wire.model}) since the text was inspected with ${data.model}: inspect it again.` });
      const value = new AttentionData(wire);
      show({ state: 'ready', data: value.overview() }, value);
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') return;
      show({ state: 'error', message: describeError(err, this.host.log) });
    }
  }

  /**
   * Nearest chunks of the inspected text at hidden states 1, middle and last ('some') or at every one
   * ('all'), among the index's nearest candidates re-embedded at each layer. A selection inside the
   * indexed folder is left out of its own neighbours (as "Find Similar" does).
   */
  private async loadLayerNeighbours(data: PanelInspection, scope: LayerNeighboursScope): Promise<void> {
    const generation = ++this.neighboursGeneration;
    const show = (m: LayerNeighboursMessage) => {
      if (generation === this.neighboursGeneration) this.post({ type: 'layerNeighbours', ...m });
    };
    const access = services?.access;
    const { sourceUri, folder } = localIndexFolder(data);
    if (!access || !folder) return show({ state: 'error', message: 'Open a folder with an index to see neighbours per layer.' });
    if (sharedIndexOf(folder)) return show({ state: 'error', message: SHARED_NOTE });
    if (!access.hasStoredIndex(folder)) return show({ state: 'error', message: `${folder.name} has no index yet: index the workspace first.` });
    show({ state: 'loading', scope });
    try {
      const target = access.targetFor(folder);
      const L = data.layers - 1;
      const layers = scope === 'all' ? Array.from({ length: L }, (_, i) => i + 1) : [...new Set([1, Math.ceil(L / 2), L])];
      const inFolder = sourceUri && data.source && vscode.workspace.getWorkspaceFolder(sourceUri) === folder;
      const where = inFolder
        ? { path: path.relative(folder.uri.fsPath, sourceUri.fsPath).split(path.sep).join('/'), startLine: data.source!.startLine + 1, endLine: data.source!.endLine + 1 }
        : { text: data.text };
      const result = await access.engine.request('layerNeighbours', { ...target, ...where, k: 10, layers, candidates: 100 });
      const spec = parseLayerSpec(target.recipe.layer, L);
      show({
        state: 'ready',
        data: {
          text: data.text,
          layers: result.layers,
          indexLayer: result.indexLayer,
          indexLayerIndex: spec.combine === 'single' ? spec.layers[0] : undefined,
          candidates: result.candidates,
          searchMs: result.searchMs,
          embedMs: result.embedMs,
          hits: result.hits.map((list) => list.map((h) => {
            const uri = vscode.Uri.joinPath(folder.uri, ...h.path.split('/'));
            return { score: h.score, indexRank: h.indexRank, source: { label: vscode.workspace.asRelativePath(uri, true), uri: uri.toString(), startLine: h.startLine - 1, endLine: h.endLine - 1 } };
          })),
        },
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') return;
      show({ state: 'error', message: describeError(err, this.host.log) });
    }
  }

  private async openSource(source: TextSource): Promise<void> {
    try {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(source.uri, true));
      const end = doc.lineAt(Math.min(source.endLine, doc.lineCount - 1)).range.end;
      const range = new vscode.Range(Math.min(source.startLine, end.line), 0, end.line, end.character);
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
    <nav id="tabs" role="tablist" hidden>
      <button id="tab-selection" class="tab" type="button" role="tab" data-testid="tab-selection">Selection</button>
      <button id="tab-sweep" class="tab" type="button" role="tab" data-testid="tab-sweep">Layer sweep</button>
    </nav>
  </header>
  <div id="view-selection">
    <p id="status" role="status">Select text in an editor and run “Embedding Lens: Inspect Selection”.</p>
    <p id="notice" class="notice" role="note" hidden></p>
    <section id="source-section" hidden>
      <h2>Selection <button id="open-source" class="link" type="button" hidden></button></h2>
      <pre id="source-text"></pre>
    </section>
    <section id="error-section" hidden><p id="error-text" class="error"></p></section>
    <div id="results" hidden></div>
  </div>
  <div id="view-sweep" hidden></div>
</main>
<script nonce="${n}" src="${script}"></script>
</body>
</html>`;
  }

  protected override onDispose(): void {
    if (InspectorPanel.current === this) InspectorPanel.current = undefined;
  }
}
