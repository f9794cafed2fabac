// The inspector webview script (bundled by esbuild.js to dist/media/inspector.js).
// Workspace text only ever enters the DOM through textContent / title — never as HTML — so code
// containing `<script>` shows as text. The view state (text, controls) is kept with setState and
// restored when the panel is hidden and shown again or the window reloads.
import type { TokenInfo } from '../src/core/types';
import type { FromPanel, HeatmapMetric, PanelInspection, PanelPooling, PanelViewState, ToPanel } from '../src/protocol/panel';
import {
  cosineToPooledMatrix, layerSimilarity, norm, normMatrix, poolLayer, range, vectorAsJson, vectorAsNumpy,
  type HiddenStatesView,
} from './inspectorMath';

interface VsCodeApi {
  postMessage(message: FromPanel): void;
  getState(): PanelViewState | undefined;
  setState(state: PanelViewState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
let state: PanelViewState = { metric: 'norm', pooling: 'mean', ...vscode.getState() };
let current: PanelInspection | undefined;

function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; title?: string; testid?: string } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title !== undefined) e.title = props.title;
  if (props.testid) e.dataset.testid = props.testid;
  for (const c of children) e.append(c);
  return e;
}

function saveState(patch: Partial<PanelViewState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}

function setStatus(text: string, kind: 'empty' | 'loading' | 'ready' | 'error'): void {
  $('status').textContent = text;
  $('app').dataset.state = kind;
}

function showSource(text: string | undefined, source: PanelViewState['source']): void {
  const section = $('source-section');
  section.hidden = text === undefined;
  $('source-text').textContent = text ?? '';
  const open = $('open-source') as HTMLButtonElement;
  open.hidden = !source;
  if (source) {
    open.textContent = `${source.label}:${source.startLine + 1}${source.endLine !== source.startLine ? `–${source.endLine + 1}` : ''}`;
    open.onclick = () => vscode.postMessage({ type: 'openSource', source });
  }
}

function onMessage(msg: ToPanel): void {
  switch (msg.type) {
    case 'loading':
      current = undefined;
      saveState({ text: msg.text, source: msg.source });
      showSource(msg.text, msg.source);
      $('error-section').hidden = true;
      $('results').hidden = true;
      setStatus('Running the model…', 'loading');
      return;
    case 'error':
      if (msg.text !== undefined) {
        saveState({ text: msg.text, source: msg.source });
        showSource(msg.text, msg.source);
      }
      $('error-text').textContent = msg.message;
      $('error-section').hidden = false;
      $('results').hidden = true;
      setStatus('The selection could not be inspected.', 'error');
      return;
    case 'inspection':
      current = msg.data;
      saveState({ text: msg.data.text, source: msg.data.source });
      showSource(msg.data.text, msg.data.source);
      $('error-section').hidden = true;
      setStatus(
        `${msg.data.model} · ${msg.data.tokenCount} tokens · ${msg.data.layers} hidden states · ${msg.data.dims} dims` +
          (msg.data.truncated ? ' · cut to the model\'s maximum length' : ''),
        'ready',
      );
      render();
      return;
    default: {
      const unknown: never = msg;
      vscode.postMessage({ type: 'webviewError', message: `unknown message ${JSON.stringify(unknown)}` });
    }
  }
}

// ---- rendering -------------------------------------------------------------------------------

function layerLabel(l: number): string {
  return l === 0 ? 'emb' : `L${l}`;
}

function select<T extends string>(label: string, value: T, options: readonly (readonly [T, string])[], onChange: (v: T) => void, testid: string): HTMLElement {
  const s = el('select', { testid });
  for (const [v, text] of options) {
    const o = el('option', { text });
    o.value = v;
    o.selected = v === value;
    s.append(o);
  }
  s.addEventListener('change', () => onChange(s.value as T));
  return el('label', { className: 'control' }, document.createTextNode(`${label} `), s);
}

function tokenStrip(tokens: TokenInfo[]): HTMLElement {
  const strip = el('div', { className: 'token-strip', testid: 'token-strip' });
  let group: HTMLElement | undefined;
  let groupWord: number | null = null;
  tokens.forEach((t, i) => {
    const piece = el('span', {
      className: `token${t.special ? ' special' : ''}`,
      text: t.token,
      title: `#${i} id ${t.id} · chars ${t.start}–${t.end}${t.special ? ' · special' : ''}${t.word !== null ? ` · word ${t.word}` : ''}`,
    });
    if (t.special || t.word === null) {
      group = undefined;
      groupWord = null;
      strip.append(piece);
      return;
    }
    if (!group || groupWord !== t.word) {
      group = el('span', { className: 'word' });
      groupWord = t.word;
      strip.append(group);
    }
    group.append(piece);
  });
  return strip;
}

/** A matrix as a table of coloured cells; `cellTitle` gives the hover text. */
function matrixTable(
  rows: number, cols: number, values: Float32Array, rowLabel: (r: number) => string, colLabel: (c: number) => string,
  cellTitle: (r: number, c: number, v: number) => string, testid: string,
): HTMLElement {
  const { min, max } = range(values);
  const span = max - min || 1;
  const table = el('table', { className: 'matrix', testid });
  const head = el('tr', {}, el('th'));
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
  return table;
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
  const color = getComputedStyle(document.body).getPropertyValue('--vscode-charts-blue').trim() || '#3794ff';
  ctx.fillStyle = color;
  const bw = width / v.length;
  for (let i = 0; i < v.length; i++) {
    const h = (v[i] / scale) * 38;
    ctx.fillRect(i * bw, h >= 0 ? 40 - h : 40, Math.max(1, bw - 0.5), Math.abs(h));
  }
  return canvas;
}

function render(): void {
  const data = current;
  const results = $('results');
  results.replaceChildren();
  if (!data) return;
  results.hidden = false;
  const h: HiddenStatesView = { layers: data.layers, tokens: data.tokenCount, dims: data.dims, data: data.hiddenStates };
  const include = data.tokens.map((t) => !t.special);
  const pooled = Array.from({ length: h.layers }, (_, l) => poolLayer(h, l, state.pooling, include));
  const layer = Math.min(state.layer ?? h.layers - 1, h.layers - 1);
  const layerOptions = Array.from({ length: h.layers }, (_, l) => [String(l), l === 0 ? '0 (embeddings)' : String(l)] as const);

  const controls = el('div', { className: 'controls' },
    select<PanelPooling>('Pooling', state.pooling, [['mean', 'mean'], ['max', 'max'], ['cls', 'first token'], ['last', 'last token']], (v) => {
      saveState({ pooling: v });
      render();
    }, 'pooling'),
    select<HeatmapMetric>('Heatmap', state.metric, [['norm', 'vector norm'], ['cosineToPooled', 'cosine to pooled']], (v) => {
      saveState({ metric: v });
      render();
    }, 'metric'),
    select<string>('Layer', String(layer), layerOptions, (v) => {
      saveState({ layer: Number(v) });
      render();
    }, 'layer'),
  );

  const heat = state.metric === 'norm' ? normMatrix(h) : cosineToPooledMatrix(h, pooled);
  const heatmap = matrixTable(h.layers, h.tokens, heat, layerLabel, (t) => data.tokens[t]?.token ?? String(t),
    (l, t, v) => `${layerLabel(l)} · ${data.tokens[t]?.token ?? t} · ${state.metric === 'norm' ? 'norm' : 'cos'} ${v.toFixed(4)}`, 'heatmap');
  const sim = matrixTable(h.layers, h.layers, layerSimilarity(pooled), layerLabel, layerLabel,
    (a, b, v) => `${layerLabel(a)} ↔ ${layerLabel(b)} · cos ${v.toFixed(4)}`, 'layer-similarity');

  const vec = pooled[layer];
  const copyJson = el('button', { text: 'Copy as JSON', testid: 'copy-json' });
  copyJson.onclick = () => vscode.postMessage({ type: 'copy', text: vectorAsJson(vec), what: 'the pooled vector as JSON' });
  const copyNp = el('button', { text: 'Copy as numpy', testid: 'copy-numpy' });
  copyNp.onclick = () => vscode.postMessage({ type: 'copy', text: vectorAsNumpy(vec), what: 'the pooled vector as a numpy array' });

  results.append(
    controls,
    el('h2', { text: 'Tokens' }), tokenStrip(data.tokens),
    el('h2', { text: `Layer × token (${state.metric === 'norm' ? 'vector norm' : 'cosine to the pooled vector'})` }), el('div', { className: 'scroll' }, heatmap),
    el('h2', { text: 'Layer-to-layer similarity of the pooled vectors' }), el('div', { className: 'scroll' }, sim),
    el('h2', { text: `Pooled vector · ${layerLabel(layer)} · ${state.pooling}` }),
    el('p', { className: 'meta', text: `${vec.length} dims · norm ${norm(vec).toFixed(4)}`, testid: 'pooled-meta' }),
    sparkline(vec),
    el('div', { className: 'buttons' }, copyJson, copyNp),
  );
}

window.addEventListener('message', (e: MessageEvent<ToPanel>) => {
  try {
    onMessage(e.data);
  } catch (err) {
    vscode.postMessage({ type: 'webviewError', message: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) });
  }
});
window.addEventListener('error', (e) => vscode.postMessage({ type: 'webviewError', message: e.message }));

// Restore what was shown before (the vectors themselves are not kept: the host re-inspects the text).
if (state.text !== undefined) {
  showSource(state.text, state.source);
  setStatus('Restoring…', 'loading');
}
vscode.postMessage({ type: 'ready', state });
