// The inspector webview script (bundled by esbuild.js to dist/media/inspector.js).
// Workspace text only ever enters the DOM through textContent / title — never as HTML — so code
// containing `<script>` shows as text. The view state (text, controls, tab) is kept with setState;
// the host replays its data when the panel is shown again, and re-inspects the text after a reload.
import type { SweepResult } from '../src/core/sweep/sweep';
import type {
  FromPanel, HeatmapMetric, IndexPointsMessage, LayerNeighboursMessage, PanelInspection, PanelPooling, PanelView, PanelViewState,
  SweepMetric, TextSource, ToPanel,
} from '../src/protocol/panel';
import { DEFAULT_RECIPE, POOLING_LABELS, VECTOR_POOLINGS } from '../src/core/recipe';
import { addAttentionMatrix, clearAttention, renderAttention, setAttention, type AttentionViewHost } from './attentionView';
import { layerLineChart } from './charts';
import { renderMap } from './mapView';
import { renderNeighbours } from './neighboursView';
import { button, el, layerLabel, select, shortModelName } from './dom';
import {
  comparePoints, cosinePerLayer, cosineToPooledMatrix, layerSimilarity, norm, normMatrix, range, vectorAsJson,
  vectorAsNumpy, type HiddenStatesView,
} from './inspectorMath';
import { heatmapView, tokenStrip, unitMatrix, unitsOf, type HeatmapUnits } from './heatmapView';
import { renderSweep } from './sweepView';

interface VsCodeApi {
  postMessage(message: FromPanel): void;
  getState(): PanelViewState | undefined;
  setState(state: PanelViewState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
let state: PanelViewState = { metric: 'norm', pooling: DEFAULT_RECIPE.pool, ...vscode.getState() };
let current: PanelInspection | undefined;
let pinned: PanelInspection | undefined;
let indexPoints: IndexPointsMessage | undefined;
let layerNeighbours: LayerNeighboursMessage | undefined;
let sweep: SweepResult | undefined;
let chosenSweepCell: { row: number; col: number } | undefined;
/** Heatmap columns (subword tokens or words) and the first column of its zoom window. */
let heatUnits: HeatmapUnits = 'tokens';
let heatStart = 0;

function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

function saveState(patch: Partial<PanelViewState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}

/** A model folder is shown by its name (the full path is in the tooltip); a hub id as it is. */
function modelName(model: string): string {
  $('status').title = model;
  return shortModelName(model);
}

function setStatus(text: string, kind: 'empty' | 'loading' | 'ready' | 'error'): void {
  $('status').textContent = text;
  $('app').dataset.state = kind;
}

function sourceLabel(source: TextSource): string {
  return `${source.label}:${source.startLine + 1}${source.endLine !== source.startLine ? `–${source.endLine + 1}` : ''}`;
}

function showSource(text: string | undefined, source: TextSource | undefined): void {
  $('source-section').hidden = text === undefined;
  $('source-text').textContent = text ?? '';
  const open = $('open-source') as HTMLButtonElement;
  open.hidden = !source;
  if (source) {
    open.textContent = sourceLabel(source);
    open.title = 'Open the selection in the editor';
    open.onclick = () => vscode.postMessage({ type: 'openSource', source });
  }
}

function showView(view: PanelView): void {
  saveState({ view });
  applyView(view);
}

/** Shows one tab (the sweep tab only once there is a sweep); does not touch the saved state. */
function applyView(view: PanelView): void {
  const v: PanelView = view === 'sweep' && !sweep ? 'selection' : view;
  $('view-selection').hidden = v !== 'selection';
  $('view-sweep').hidden = v !== 'sweep';
  $('tabs').hidden = !sweep;
  for (const [id, name] of [['tab-selection', 'selection'], ['tab-sweep', 'sweep']] as const) {
    const tab = $(id);
    tab.classList.toggle('active', v === name);
    tab.setAttribute('aria-selected', String(v === name));
  }
}

function onMessage(msg: ToPanel): void {
  switch (msg.type) {
    case 'loading':
      current = undefined;
      layerNeighbours = undefined;
      clearAttention();
      saveState({ text: msg.text, source: msg.source });
      showSource(msg.text, msg.source);
      $('error-section').hidden = true;
      $('notice').hidden = true;
      setStatus('Running the model…', 'loading');
      renderSelection();
      if (state.view !== 'selection') showView('selection');
      return;
    case 'error':
      if (msg.text !== undefined) {
        saveState({ text: msg.text, source: msg.source });
        showSource(msg.text, msg.source);
      }
      current = undefined;
      $('error-text').textContent = msg.message;
      $('error-section').hidden = false;
      $('notice').hidden = true;
      setStatus('The selection could not be inspected.', 'error');
      renderSelection();
      return;
    case 'inspection': {
      const d = msg.data;
      if (current?.text !== d.text) heatStart = 0;
      if (current?.text !== d.text) layerNeighbours = undefined;
      current = d;
      saveState({ text: d.text, source: d.source });
      showSource(d.text, d.source);
      $('error-section').hidden = true;
      setStatus(`${modelName(d.model)} · ${d.tokenCount} tokens · ${d.layers} hidden states · ${d.dims} dims`, 'ready');
      const notice = $('notice');
      notice.hidden = !d.truncated;
      notice.textContent = d.truncated
        ? `The selection is longer than the model's maximum input: only its first ${d.tokenCount} tokens were inspected (and are shown below).`
        : '';
      renderSelection();
      return;
    }
    case 'pinned':
      pinned = msg.data;
      renderSelection();
      return;
    case 'indexPoints': {
      const { type: _type, ...rest } = msg;
      indexPoints = rest;
      renderPca();
      return;
    }
    case 'attention': {
      const { type: _type, ...rest } = msg;
      setAttention(rest);
      renderAttentionSection();
      return;
    }
    case 'layerNeighbours': {
      const { type: _type, ...rest } = msg;
      layerNeighbours = rest;
      renderNeighboursSection();
      return;
    }
    case 'attentionMatrix': {
      const { type: _type, text, values, ...req } = msg;
      if (addAttentionMatrix(text, req, values)) renderAttentionSection();
      return;
    }
    case 'sweep':
      if (sweep !== msg.result) chosenSweepCell = undefined;
      sweep = msg.result;
      renderSweepView();
      showView(msg.reveal ? 'sweep' : state.view ?? 'selection');
      return;
    default: {
      const unknown: never = msg;
      vscode.postMessage({ type: 'webviewError', message: `unknown message ${JSON.stringify(unknown)}` });
    }
  }
}

// ---- the selection view ----------------------------------------------------------------------

const pooledCache = new WeakMap<PanelInspection, Map<PanelPooling, Float32Array[]>>();

/**
 * Pooled vector of every layer of an inspection, as the engine computed it in core (the numbers
 * `extract` writes for the same recipe): this view only splits the rows, it never pools.
 */
function pooledLayers(data: PanelInspection, pooling: PanelPooling): Float32Array[] {
  let byPooling = pooledCache.get(data);
  if (!byPooling) pooledCache.set(data, (byPooling = new Map()));
  let pooled = byPooling.get(pooling);
  if (!pooled) {
    const rows = data.pooled[pooling];
    pooled = Array.from({ length: data.layers }, (_, l) => rows.subarray(l * data.dims, (l + 1) * data.dims));
    byPooling.set(pooling, pooled);
  }
  return pooled;
}

/** How the pooled vector was made, in the words of the extract command that writes the same numbers. */
function pooledRecipeWords(data: PanelInspection): string {
  const r = data.pooledRecipe;
  return `${r.normalize ? 'L2-normalized' : 'not normalized'}, special tokens ${r.excludeSpecialTokens ? 'left out' : 'included'} (as extract writes it${data.truncated ? ' with --truncate' : ''})`;
}

function view(data: PanelInspection): HiddenStatesView {
  return { layers: data.layers, tokens: data.tokenCount, dims: data.dims, data: data.hiddenStates };
}

const POOLINGS: readonly (readonly [PanelPooling, string])[] = VECTOR_POOLINGS.map((p) => [p, POOLING_LABELS[p]] as const);

/** A matrix as a table of coloured cells; `cellTitle` gives the hover text. */
function matrixTable(
  rows: number, cols: number, values: Float32Array, rowLabel: (r: number) => string, colLabel: (c: number) => string,
  cellTitle: (r: number, c: number, v: number) => string, testid: string,
): HTMLElement {
  const { min, max } = range(values);
  const span = max - min || 1;
  const table = el('table', { className: 'matrix', testid });
  const head = el('tr', {}, el('th', { className: 'corner' }));
  for (let c = 0; c < cols; c++) head.append(el('th', { className: 'col', text: colLabel(c) }));
  table.append(el('thead', {}, head));
  const body = el('tbody');
  for (let r = 0; r < rows; r++) {
    const tr = el('tr', {}, el('th', { className: 'row', text: rowLabel(r) }));
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c];
      const td = el('td', { title: cellTitle(r, c, v) });
      td.style.setProperty('--v', ((v - min) / span).toFixed(3));
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  return el('div', { className: 'matrix-box' }, table, scaleLegend(min, max));
}

function scaleLegend(min: number, max: number): HTMLElement {
  return el('div', { className: 'scale' },
    el('span', { text: min.toFixed(3) }), el('span', { className: 'ramp' }), el('span', { text: max.toFixed(3) }));
}

function sparkline(v: Float32Array): HTMLCanvasElement {
  const canvas = el('canvas', { className: 'sparkline', testid: 'pooled-sparkline' });
  const width = Math.max(300, Math.min(1200, v.length * 2));
  canvas.width = width;
  canvas.height = 80;
  const ctx = canvas.getContext('2d');
  if (!ctx) return canvas;
  const { min, max } = range(v);
  const scale = Math.max(Math.abs(min), Math.abs(max)) || 1;
  const styles = getComputedStyle(document.body);
  ctx.strokeStyle = styles.getPropertyValue('--vscode-panel-border').trim() || '#8886';
  ctx.beginPath();
  ctx.moveTo(0, 40.5);
  ctx.lineTo(width, 40.5);
  ctx.stroke();
  ctx.fillStyle = styles.getPropertyValue('--vscode-charts-blue').trim() || '#3794ff';
  const bw = width / v.length;
  for (let i = 0; i < v.length; i++) {
    const h = (v[i] / scale) * 38;
    ctx.fillRect(i * bw, h >= 0 ? 40 - h : 40, Math.max(1, bw - 0.5), Math.abs(h));
  }
  return canvas;
}

function section(title: string, testid: string, ...children: Node[]): HTMLElement {
  const s = el('section', { className: 'card', testid }, el('h2', { text: title }), ...children);
  return s;
}

function pin(): void {
  vscode.postMessage({ type: 'pin' });
}

function sameText(a: PanelInspection, b: PanelInspection): boolean {
  return a.text === b.text && a.model === b.model && a.source?.uri === b.source?.uri && a.source?.startLine === b.source?.startLine;
}

function describeText(d: PanelInspection): string {
  const first = d.text.trim().split('\n')[0] ?? '';
  const preview = first.length > 60 ? `${first.slice(0, 59)}…` : first;
  return `${d.source ? `${sourceLabel(d.source)} — ` : ''}“${preview}”`;
}

/** Compare with a pinned text: cosine of the two pooled vectors at every layer. */
function compareSection(): HTMLElement {
  const box = section('Compare with a pinned selection', 'compare');
  if (!pinned) {
    box.append(
      el('p', { className: 'hint', text: 'Pin this text as A, then inspect another selection: the chart shows how similar the two are at every layer.' }),
      el('div', { className: 'buttons' }, button('Pin as A', pin, { testid: 'pin' })),
    );
    return box;
  }
  const pinnedLine = el('p', { className: 'pinned-line' },
    el('span', { className: 'tag a', text: 'A' }), el('span', { className: 'desc', text: describeText(pinned), testid: 'pinned-desc' }));
  const unpin = button('Unpin', () => vscode.postMessage({ type: 'unpin' }), { testid: 'unpin', secondary: true });
  if (!current || sameText(pinned, current)) {
    box.append(pinnedLine,
      el('p', { className: 'hint', text: current ? 'This text is pinned. Select another text and run “Embedding Lens: Inspect Selection” to compare it with A.' : 'Inspect a selection to compare it with A.' }),
      el('div', { className: 'buttons' }, unpin));
    return box;
  }
  const bLine = el('p', { className: 'pinned-line' }, el('span', { className: 'tag b', text: 'B' }), el('span', { className: 'desc', text: describeText(current) }));
  let chart: HTMLElement;
  try {
    const values = cosinePerLayer(pooledLayers(pinned, state.pooling), pooledLayers(current, state.pooling));
    const labels = Array.from({ length: values.length }, (_, l) => layerLabel(l));
    chart = layerLineChart(values, labels, 'compare-chart');
    const text = [`cosine of the ${state.pooling}-pooled vectors`, ...comparePoints(values, layerLabel)].join(' · ');
    chart.prepend(el('p', { className: 'meta', text, testid: 'compare-meta' }));
  } catch (err) {
    chart = el('p', { className: 'error', text: `Cannot compare: ${err instanceof Error ? err.message : err}. Pin a text inspected with the current model.` });
  }
  box.append(pinnedLine, bLine, chart, el('div', { className: 'buttons' }, button('Pin B as A', pin, { testid: 'pin', secondary: true }), unpin));
  return box;
}

function renderSelection(): void {
  const results = $('results');
  const data = current;
  results.replaceChildren();
  results.hidden = !data && !pinned;
  if (!data) {
    if (pinned) results.append(compareSection());
    return;
  }
  const h = view(data);
  const pooled = pooledLayers(data, state.pooling);
  const layer = Math.min(state.layer ?? h.layers - 1, h.layers - 1);
  const layerOptions = Array.from({ length: h.layers }, (_, l) => [String(l), l === 0 ? '0 (embeddings)' : l === h.layers - 1 ? `${l} (last)` : String(l)] as const);

  const controls = el('div', { className: 'controls sticky', testid: 'controls' },
    select<PanelPooling>('Pooling', state.pooling, POOLINGS, (v) => {
      saveState({ pooling: v });
      renderSelection();
    }, 'pooling'),
    select<HeatmapMetric>('Heatmap', state.metric, [['norm', 'vector norm'], ['cosineToPooled', 'cosine to pooled']], (v) => {
      saveState({ metric: v });
      renderSelection();
    }, 'metric'),
    select<string>('Layer', String(layer), layerOptions, (v) => {
      saveState({ layer: Number(v) });
      renderSelection();
    }, 'layer'),
  );

  const heat = state.metric === 'norm' ? normMatrix(h) : cosineToPooledMatrix(h, pooled);
  // Columns: subword tokens or words; an overview of all of them and a zoom window that fits the panel.
  const units = unitsOf(data.tokens, data.words ?? [], heatUnits);
  const unitHeat = heatUnits === 'tokens' ? heat : unitMatrix(heat, h.layers, h.tokens, units);
  const strip = tokenStrip(data.tokens, units, (u) => heatmap.reveal(u));
  const heatmap = heatmapView({
    rows: h.layers, units, values: unitHeat, rowLabel: layerLabel, start: heatStart,
    cellTitle: (l, c, v) => `${layerLabel(l)} · #${c} ${units[c]!.label} · ${state.metric === 'norm' ? 'norm' : 'cosine to pooled'}${heatUnits === 'words' ? ' (mean of the word\'s pieces)' : ''} ${v.toFixed(4)}`,
    onWindow: (first, last) => {
      heatStart = first;
      strip.mark(first, last);
    },
  });
  const unitsSelect = select<HeatmapUnits>('Columns', heatUnits, [['tokens', 'subword tokens'], ['words', 'words']], (v) => {
    heatUnits = v;
    heatStart = 0;
    renderSelection();
  }, 'heatmap-units');
  const sim = matrixTable(h.layers, h.layers, layerSimilarity(pooled), layerLabel, layerLabel,
    (a, b, v) => `${layerLabel(a)} ↔ ${layerLabel(b)} · cosine ${v.toFixed(4)}`, 'layer-similarity');

  const vec = pooled[layer];
  const copyJson = button('Copy as JSON', () => vscode.postMessage({ type: 'copy', text: vectorAsJson(vec), what: 'the pooled vector as JSON' }), { testid: 'copy-json', secondary: true });
  const copyNp = button('Copy as numpy', () => vscode.postMessage({ type: 'copy', text: vectorAsNumpy(vec), what: 'the pooled vector as a numpy array' }), { testid: 'copy-numpy', secondary: true });
  const pooledTitle = `Pooled vector · ${layerLabel(layer)} · ${POOLINGS.find(([p]) => p === state.pooling)?.[1]}`;

  results.append(
    controls,
    compareSection(),
    section(`Tokens (${h.tokens}${data.words?.length ? ` · ${data.words.length} words` : ''})`, 'tokens', strip.element),
    attentionHost(),
    section(`Layer × ${heatUnits === 'words' ? 'word' : 'token'} · ${state.metric === 'norm' ? 'vector norm' : 'cosine to the pooled vector'}`, 'heatmap-section',
      el('div', { className: 'controls' }, unitsSelect), heatmap.element),
    section('Layer-to-layer similarity of the pooled vectors', 'similarity-section', el('div', { className: 'scroll' }, sim)),
    section(pooledTitle, 'pooled',
      el('p', { className: 'meta', text: `${vec.length} dims · norm ${norm(vec).toFixed(4)} · ${pooledRecipeWords(data)}`, testid: 'pooled-meta' }),
      sparkline(vec),
      el('div', { className: 'buttons' }, copyJson, copyNp)),
    neighboursHost(),
    pcaHost(),
  );
  renderAttentionSection();
  renderNeighboursSection();
  renderPca();
}

// ---- neighbours per layer (media/neighboursView.ts) --------------------------------------------

function neighboursHost(): HTMLElement {
  const d = el('div');
  d.id = 'neighbours';
  return d;
}

function renderNeighboursSection(): void {
  const host = document.getElementById('neighbours');
  if (!host) return;
  renderNeighbours(host, layerNeighbours, {
    request: (scope) => vscode.postMessage({ type: 'layerNeighbours', scope }),
    open: (source) => vscode.postMessage({ type: 'openSource', source }),
    sourceLabel,
  });
}

// ---- attention (media/attentionView.ts) -------------------------------------------------------

function attentionHost(): HTMLElement {
  const d = el('div');
  d.id = 'attention';
  return d;
}

const attentionView: AttentionViewHost = {
  choice: () => state.attention,
  saveChoice: (choice) => saveState({ attention: choice }),
  requestMatrix: (req) => vscode.postMessage({ type: 'attentionMatrix', ...req }),
};

function renderAttentionSection(): void {
  const host = document.getElementById('attention');
  if (host) renderAttention(host, attentionView);
}

// ---- the PCA scatter -------------------------------------------------------------------------

function pcaHost(): HTMLElement {
  const d = el('div');
  d.id = 'pca';
  return d;
}

function renderPca(): void {
  const host = document.getElementById('pca');
  if (!host) return;
  const box = section('Among your code · a map of the index', 'pca-section');
  host.replaceChildren(box);
  const m = indexPoints;
  const reload = () => button('Reload', () => vscode.postMessage({ type: 'reloadIndexPoints' }), { testid: 'pca-reload', secondary: true });
  if (!m || m.state === 'loading') {
    box.append(el('p', { className: 'hint', text: 'Loading a sample of the index…' }));
    return;
  }
  switch (m.state) {
    case 'noFolder':
      box.append(el('p', { className: 'hint', text: 'Open a folder to see the selection among your code.' }));
      return;
    case 'noIndex':
      box.append(
        el('p', { className: 'hint', text: 'Index the workspace to see the selection among your code.', testid: 'pca-no-index' }),
        el('p', { className: 'meta', text: m.message }),
        el('div', { className: 'buttons' }, button('Index Workspace', () => vscode.postMessage({ type: 'indexWorkspace' }), { testid: 'pca-index' }), reload()),
      );
      return;
    case 'error':
      box.append(el('p', { className: 'error', text: m.message }), el('div', { className: 'buttons' }, reload()));
      return;
    case 'ready':
      break;
    default: {
      const unknown: never = m;
      throw new Error(`unknown index state ${JSON.stringify(unknown)}`);
    }
  }
  const d = m.data;
  const n = d.points.length;
  if (n < 2) {
    box.append(el('p', { className: 'hint', text: `The index holds ${n} chunk${n === 1 ? '' : 's'}: too few for a map.` }), el('div', { className: 'buttons' }, reload()));
    return;
  }
  renderMap(box, d, {
    projection: state.map ?? 'umap',
    grouping: state.mapGroup ?? 'folder',
    onProjection: (map) => {
      saveState({ map });
      renderPca();
    },
    onGrouping: (mapGroup) => {
      saveState({ mapGroup });
      renderPca();
    },
    open: (source) => vscode.postMessage({ type: 'openSource', source }),
    sourceLabel,
    selectionLabel: `the selection${current?.source ? ` (${sourceLabel(current.source)})` : ''}`,
  });
  box.append(el('div', { className: 'buttons' }, reload()));
}

// ---- the sweep view --------------------------------------------------------------------------

function renderSweepView(): void {
  const host = $('view-sweep');
  if (!sweep) {
    host.replaceChildren();
    return;
  }
  host.replaceChildren(renderSweep(sweep, {
    metric: state.sweepMetric ?? 'mrrAt10',
    onMetric: (m: SweepMetric) => {
      saveState({ sweepMetric: m });
      renderSweepView();
    },
    chosen: chosenSweepCell,
    onChoose: (cell) => {
      chosenSweepCell = cell;
      renderSweepView();
    },
    onApply: (choice) => vscode.postMessage({ type: 'applySweep', ...choice }),
  }));
}

// ---- wiring ----------------------------------------------------------------------------------

$('tab-selection').addEventListener('click', () => showView('selection'));
$('tab-sweep').addEventListener('click', () => showView('sweep'));

window.addEventListener('message', (e: MessageEvent<ToPanel>) => {
  try {
    onMessage(e.data);
  } catch (err) {
    vscode.postMessage({ type: 'webviewError', message: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) });
  }
});
window.addEventListener('error', (e) => vscode.postMessage({ type: 'webviewError', message: e.message }));

// Restore what was shown before (the vectors themselves are not kept: the host replays or re-inspects).
if (state.text !== undefined) {
  showSource(state.text, state.source);
  setStatus('Restoring…', 'loading');
}
applyView('selection');
vscode.postMessage({ type: 'ready', state });
