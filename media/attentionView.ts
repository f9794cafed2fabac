// The inspector's attention view: a layers × heads overview (small multiples, plus the mean over heads),
// and for the chosen layer and head the token-to-token (or word-to-word) weights as a matrix: a whole-
// matrix strip with the focus window on it, and the focus window itself with labels, hover values and a
// keyboard cursor. Colours come from the theme. Full matrices are fetched from the host one at a time.
import type { AttentionMatrixRequest, AttentionMessage, AttentionUnitKind, PanelAttention } from '../src/protocol/panel';
import { el, layerLabel, select } from './dom';

export interface AttentionChoice {
  layer: number;
  head: number | 'mean';
  unit: AttentionUnitKind;
}

export interface AttentionViewHost {
  /** The saved choice (undefined: defaults). */
  choice(): AttentionChoice | undefined;
  saveChoice(choice: AttentionChoice): void;
  requestMatrix(req: AttentionMatrixRequest): void;
}

/** Largest focus window (units per side) drawn with labels. */
const WINDOW = 40;
const CELL = 15;
const THUMB_PX = 34;

let message: AttentionMessage | undefined;
const matrices = new Map<string, Float32Array>();
/** Matrices asked for and not yet arrived (asked once). */
const pending = new Set<string>();
let cursor = { q: 0, k: 0 };
let origin = { r: 0, c: 0 };

const keyOf = (c: AttentionMatrixRequest) => `${c.unit}:${c.layer}:${c.head}`;

export function setAttention(m: AttentionMessage): void {
  if (m.state !== 'ready' || message?.state !== 'ready' || message.data !== m.data) {
    matrices.clear();
    pending.clear();
    cursor = { q: 0, k: 0 };
    origin = { r: 0, c: 0 };
  }
  message = m;
}

export function addAttentionMatrix(text: string, req: AttentionMatrixRequest, values: Float32Array): boolean {
  if (message?.state !== 'ready' || message.data.text !== text) return false;
  matrices.set(keyOf(req), values);
  pending.delete(keyOf(req));
  return true;
}

export function clearAttention(): void {
  message = undefined;
  matrices.clear();
  pending.clear();
}

interface Rgb { r: number; g: number; b: number }

/** A theme colour as RGB (the canvas normalises any CSS colour it accepts). */
function themeRgb(variable: string, fallback: string): Rgb {
  const ctx = document.createElement('canvas').getContext('2d');
  const value = getComputedStyle(document.body).getPropertyValue(variable).trim() || fallback;
  if (!ctx) return { r: 128, g: 128, b: 128 };
  ctx.fillStyle = fallback;
  ctx.fillStyle = value;
  const s = String(ctx.fillStyle);
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(s);
  if (hex) return { r: parseInt(hex[1], 16), g: parseInt(hex[2], 16), b: parseInt(hex[3], 16) };
  const rgb = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/.exec(s);
  return rgb ? { r: +rgb[1], g: +rgb[2], b: +rgb[3] } : { r: 128, g: 128, b: 128 };
}

interface Palette { bg: Rgb; fg: Rgb; focus: string; text: string }

function palette(): Palette {
  const css = getComputedStyle(document.body);
  return {
    bg: themeRgb('--vscode-editor-background', '#1e1e1e'),
    fg: themeRgb('--vscode-charts-blue', '#3794ff'),
    focus: css.getPropertyValue('--vscode-focusBorder').trim() || '#007fd4',
    text: css.getPropertyValue('--vscode-descriptionForeground').trim() || '#999',
  };
}

/** Colour of a weight: background → accent by √weight (small weights stay visible; the legend says so). */
function shade(p: Palette, v: number): [number, number, number] {
  const a = Math.sqrt(Math.max(0, Math.min(1, v)));
  return [p.bg.r + (p.fg.r - p.bg.r) * a, p.bg.g + (p.fg.g - p.bg.g) * a, p.bg.b + (p.fg.b - p.bg.b) * a];
}

/** An n × n matrix drawn cell-per-pixel, scaled to `px` (nearest neighbour). */
function matrixImage(values: Float32Array, n: number, px: number, p: Palette, className: string): HTMLCanvasElement {
  const canvas = el('canvas', { className });
  canvas.width = px;
  canvas.height = px;
  const ctx = canvas.getContext('2d');
  if (!ctx || n === 0) return canvas;
  const src = document.createElement('canvas');
  src.width = n;
  src.height = n;
  const sctx = src.getContext('2d');
  if (!sctx) return canvas;
  const img = sctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, g, b] = shade(p, values[i]);
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(src, 0, 0, px, px);
  return canvas;
}

function short(label: string, max = 14): string {
  const s = label.replace(/\s+/g, ' ');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function defaults(d: PanelAttention): AttentionChoice {
  return { layer: d.layers - 1, head: 'mean', unit: d.tokens.length > 80 ? 'word' : 'token' };
}

function headLabel(h: number | 'mean'): string {
  return h === 'mean' ? 'mean of heads' : `head ${h + 1}`;
}

/** Renders the section into `host` (replacing what was there). */
export function renderAttention(host: HTMLElement, view: AttentionViewHost): void {
  const box = el('section', { className: 'card attention', testid: 'attention-section' }, el('h2', { text: 'Attention · what each token attends to' }));
  host.replaceChildren(box);
  const m = message;
  if (!m || m.state === 'loading') {
    box.append(el('p', { className: 'hint', text: 'Computing attention…' }));
    return;
  }
  if (m.state === 'error') {
    box.append(el('p', { className: 'error', text: m.message, testid: 'attention-error' }));
    return;
  }
  const d = m.data;
  const saved = view.choice();
  const choice: AttentionChoice = saved && saved.layer < d.layers && (saved.head === 'mean' || saved.head < d.heads) ? saved : defaults(d);
  const units = d.units[choice.unit];
  const n = units.length;
  const p = palette();
  const choose = (patch: Partial<AttentionChoice>) => {
    const next = { ...choice, ...patch };
    if (next.unit !== choice.unit) {
      cursor = { q: 0, k: 0 };
      origin = { r: 0, c: 0 };
    }
    view.saveChoice(next);
    renderAttention(host, view);
  };

  box.append(el('p', {
    className: 'meta', testid: 'attention-meta',
    text: `${d.layers} layers × ${d.heads} heads · ${d.tokens.length} tokens${choice.unit === 'word' ? `, ${n} words` : ''} · rows: query (attends from), columns: key (attends to); each row sums to 1`,
  }));
  if (d.truncated) {
    box.append(el('p', { className: 'notice', text: `Only the first ${d.tokens.length} of ${d.totalTokens} tokens: the model takes no more at once.` }));
  }

  const layerOptions = Array.from({ length: d.layers }, (_, l) => [String(l), layerLabel(l + 1)] as const);
  const headOptions = [['mean', 'mean of heads'] as const, ...Array.from({ length: d.heads }, (_, h) => [String(h), `head ${h + 1}`] as const)];
  box.append(el('div', { className: 'controls', testid: 'attention-controls' },
    select<AttentionUnitKind>('Show', choice.unit, [['token', 'tokens'], ['word', 'words (pieces merged)']], (v) => choose({ unit: v }), 'attention-unit'),
    select<string>('Layer', String(choice.layer), layerOptions, (v) => choose({ layer: Number(v) }), 'attention-layer'),
    select<string>('Head', String(choice.head), headOptions, (v) => choose({ head: v === 'mean' ? 'mean' : Number(v) }), 'attention-head'),
  ));

  box.append(overviewGrid(d, choice, p, choose));

  const req: AttentionMatrixRequest = { layer: choice.layer, head: choice.head, unit: choice.unit };
  const values = matrices.get(keyOf(req));
  const detail = el('div', { className: 'attention-detail', testid: 'attention-detail' });
  box.append(
    el('h3', { text: `${layerLabel(choice.layer + 1)} · ${headLabel(choice.head)} · ${choice.unit === 'word' ? 'words' : 'tokens'}`, testid: 'attention-title' }),
    detail,
  );
  if (!values) {
    detail.append(el('p', { className: 'hint', text: 'Loading the matrix…' }));
    if (!pending.has(keyOf(req))) {
      pending.add(keyOf(req));
      view.requestMatrix(req);
    }
    return;
  }
  renderDetail(detail, box, d, choice, units.map((u) => u.label), values, p);
  box.append(el('p', {
    className: 'hint',
    text: `Colour: √weight from 0 (background) to 1. Layer ${choice.layer + 1}, head h is output_attentions[${choice.layer}][:, h−1] in Hugging Face terms (embedding-lens extract --attention --layer ${choice.layer}). `
      + 'Keys: arrows move the cursor, Page Up/Down by a window, Home/End to the ends; in the overview, arrows choose the layer and head.',
  }));
}

/** Layers × (mean + heads) thumbnails; one roving tab stop, arrows move the choice. */
function overviewGrid(d: PanelAttention, choice: AttentionChoice, p: Palette, choose: (c: Partial<AttentionChoice>) => void): HTMLElement {
  const thumbs = d.thumbs[choice.unit];
  const S = thumbs.size;
  const cols = d.heads + 1;
  const table = el('table', { className: 'attention-overview', testid: 'attention-overview' });
  table.setAttribute('role', 'grid');
  table.setAttribute('aria-label', 'attention of every layer and head');
  const head = el('tr', {}, el('th'));
  head.append(el('th', { text: 'mean' }));
  for (let h = 0; h < d.heads; h++) head.append(el('th', { text: String(h + 1), title: `head ${h + 1}` }));
  table.append(el('thead', {}, head));
  const body = el('tbody');
  const col = (h: number | 'mean') => (h === 'mean' ? 0 : h + 1);
  const headOf = (c: number): number | 'mean' => (c === 0 ? 'mean' : c - 1);
  for (let l = 0; l < d.layers; l++) {
    const tr = el('tr', {}, el('th', { text: layerLabel(l + 1) }));
    for (let c = 0; c < cols; c++) {
      const h = headOf(c);
      const offset = (l * cols + (h === 'mean' ? d.heads : h)) * S * S;
      const img = matrixImage(thumbs.values.subarray(offset, offset + S * S), S, THUMB_PX, p, 'thumb');
      const selected = l === choice.layer && c === col(choice.head);
      const b = el('button', { className: `thumb-button${selected ? ' selected' : ''}${c === 0 ? ' mean' : ''}`, title: `${layerLabel(l + 1)} · ${headLabel(h)}` }, img);
      b.type = 'button';
      b.tabIndex = selected ? 0 : -1;
      b.dataset.testid = 'attention-thumb';
      b.dataset.layer = String(l);
      b.dataset.head = String(h);
      b.setAttribute('aria-label', `layer ${l + 1}, ${headLabel(h)}`);
      b.setAttribute('aria-pressed', String(selected));
      b.addEventListener('click', () => choose({ layer: l, head: h }));
      b.addEventListener('keydown', (e) => {
        const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
        const mv = moves[e.key];
        if (!mv) return;
        e.preventDefault();
        const nl = Math.max(0, Math.min(d.layers - 1, l + mv[0]));
        const nc = Math.max(0, Math.min(cols - 1, c + mv[1]));
        choose({ layer: nl, head: headOf(nc) });
        requestAnimationFrame(() => (document.querySelector('.thumb-button.selected') as HTMLElement | null)?.focus());
      });
      tr.append(el('td', {}, b));
    }
    body.append(tr);
  }
  table.append(body);
  return el('div', { className: 'scroll' }, table);
}

function renderDetail(detail: HTMLElement, box: HTMLElement, d: PanelAttention, choice: AttentionChoice, labels: string[], values: Float32Array, p: Palette): void {
  const n = labels.length;
  const W = Math.min(WINDOW, n);
  cursor = { q: Math.min(cursor.q, n - 1), k: Math.min(cursor.k, n - 1) };
  const clampOrigin = () => {
    origin.r = Math.max(0, Math.min(n - W, origin.r));
    origin.c = Math.max(0, Math.min(n - W, origin.c));
  };
  clampOrigin();

  const readout = el('p', { className: 'readout', testid: 'attention-readout' });
  readout.setAttribute('aria-live', 'polite');
  const top = el('p', { className: 'meta', testid: 'attention-top' });

  // The whole matrix, with the focus window drawn on it (shown when the window is smaller than it).
  const STRIP = Math.min(220, Math.max(120, n * 2));
  const strip = matrixImage(values, n, STRIP, p, 'attention-strip');
  strip.dataset.testid = 'attention-strip';
  strip.title = 'The whole matrix: click to move the focus window there';
  const stripBox = el('div', { className: 'attention-strip-box' }, strip);
  const frame = el('div', { className: 'attention-window' });
  stripBox.append(frame);

  // The focus window with labels.
  const ctxFont = getComputedStyle(document.body).getPropertyValue('--vscode-editor-font-family').trim() || 'monospace';
  const focus = el('canvas', { className: 'attention-focus', testid: 'attention-focus' });
  focus.tabIndex = 0;
  focus.setAttribute('role', 'img');
  focus.setAttribute('aria-label', 'attention matrix focus window; use the arrow keys to move the cursor');
  const measure = focus.getContext('2d');
  if (measure) measure.font = `11px ${ctxFont}`;
  const labelWidth = Math.min(120, Math.max(30, ...labels.map((l) => (measure ? measure.measureText(short(l)).width : 60)))) + 8;
  const size = W * CELL;
  const dpr = window.devicePixelRatio || 1;
  focus.width = Math.round((labelWidth + size + 4) * dpr);
  focus.height = Math.round((labelWidth + size + 4) * dpr);
  focus.style.width = `${labelWidth + size + 4}px`;
  focus.style.height = `${labelWidth + size + 4}px`;

  const draw = () => {
    const ctx = focus.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, focus.width, focus.height);
    ctx.font = `11px ${ctxFont}`;
    ctx.textBaseline = 'middle';
    for (let r = 0; r < W; r++) {
      for (let c = 0; c < W; c++) {
        const [R, G, B] = shade(p, values[(origin.r + r) * n + origin.c + c]);
        ctx.fillStyle = `rgb(${R | 0},${G | 0},${B | 0})`;
        ctx.fillRect(labelWidth + c * CELL, labelWidth + r * CELL, CELL - 1, CELL - 1);
      }
    }
    for (let r = 0; r < W; r++) {
      const q = origin.r + r;
      ctx.fillStyle = q === cursor.q ? p.focus : p.text;
      ctx.textAlign = 'right';
      ctx.fillText(short(labels[q]), labelWidth - 4, labelWidth + r * CELL + CELL / 2);
    }
    for (let c = 0; c < W; c++) {
      const k = origin.c + c;
      ctx.save();
      ctx.translate(labelWidth + c * CELL + CELL / 2, labelWidth - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillStyle = k === cursor.k ? p.focus : p.text;
      ctx.textAlign = 'left';
      ctx.fillText(short(labels[k]), 0, 0);
      ctx.restore();
    }
    if (cursor.q >= origin.r && cursor.q < origin.r + W && cursor.k >= origin.c && cursor.k < origin.c + W) {
      ctx.strokeStyle = p.focus;
      ctx.lineWidth = 2;
      ctx.strokeRect(labelWidth + (cursor.k - origin.c) * CELL - 1, labelWidth + (cursor.q - origin.r) * CELL - 1, CELL + 1, CELL + 1);
    }
    const scale = STRIP / n;
    frame.hidden = W >= n;
    frame.style.left = `${origin.c * scale}px`;
    frame.style.top = `${origin.r * scale}px`;
    frame.style.width = `${W * scale}px`;
    frame.style.height = `${W * scale}px`;
    const v = values[cursor.q * n + cursor.k];
    readout.textContent = `query #${cursor.q} “${labels[cursor.q]}” → key #${cursor.k} “${labels[cursor.k]}”: ${v.toFixed(4)}`;
    const row = Array.from(values.subarray(cursor.q * n, (cursor.q + 1) * n), (w, k) => ({ w, k })).sort((a, b) => b.w - a.w).slice(0, 5);
    top.textContent = `“${short(labels[cursor.q], 24)}” attends most to: ${row.map((x) => `${short(labels[x.k], 18)} ${x.w.toFixed(3)}`).join(' · ')}`;
  };
  const follow = () => {
    if (cursor.q < origin.r) origin.r = cursor.q;
    if (cursor.q >= origin.r + W) origin.r = cursor.q - W + 1;
    if (cursor.k < origin.c) origin.c = cursor.k;
    if (cursor.k >= origin.c + W) origin.c = cursor.k - W + 1;
    clampOrigin();
  };
  focus.addEventListener('keydown', (e) => {
    const clamp = (x: number) => Math.max(0, Math.min(n - 1, x));
    switch (e.key) {
      case 'ArrowUp': cursor.q = clamp(cursor.q - 1); break;
      case 'ArrowDown': cursor.q = clamp(cursor.q + 1); break;
      case 'ArrowLeft': cursor.k = clamp(cursor.k - 1); break;
      case 'ArrowRight': cursor.k = clamp(cursor.k + 1); break;
      case 'PageUp': cursor.q = clamp(cursor.q - W); break;
      case 'PageDown': cursor.q = clamp(cursor.q + W); break;
      case 'Home': cursor.q = 0; cursor.k = 0; break;
      case 'End': cursor.q = n - 1; cursor.k = n - 1; break;
      default: return;
    }
    e.preventDefault();
    follow();
    draw();
  });
  const cellAt = (e: MouseEvent) => {
    const rect = focus.getBoundingClientRect();
    const c = Math.floor((e.clientX - rect.left - labelWidth) / CELL);
    const r = Math.floor((e.clientY - rect.top - labelWidth) / CELL);
    return r >= 0 && r < W && c >= 0 && c < W ? { q: origin.r + r, k: origin.c + c } : undefined;
  };
  focus.addEventListener('mousemove', (e) => {
    const cell = cellAt(e);
    if (!cell) return;
    cursor = cell;
    draw();
  });
  strip.addEventListener('click', (e) => {
    const rect = strip.getBoundingClientRect();
    const q = Math.floor(((e.clientY - rect.top) / rect.height) * n);
    const k = Math.floor(((e.clientX - rect.left) / rect.width) * n);
    origin = { r: q - Math.floor(W / 2), c: k - Math.floor(W / 2) };
    clampOrigin();
    cursor = { q: Math.max(0, Math.min(n - 1, q)), k: Math.max(0, Math.min(n - 1, k)) };
    draw();
  });

  detail.append(
    el('div', { className: 'attention-panes' },
      el('div', { className: 'attention-overview-pane' }, el('p', { className: 'meta', text: n > W ? `whole matrix (${n} × ${n}); the box is the window →` : `whole matrix (${n} × ${n})` }), stripBox),
      el('div', { className: 'scroll' }, focus)),
  );
  box.append(readout, top);
  draw();
}
