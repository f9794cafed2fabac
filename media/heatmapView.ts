// The layer × token heatmap and the token strip at real sizes (a 300-token selection in a 500 px
// panel). The heatmap is an OVERVIEW (a canvas as wide as the panel: every column is drawn, however
// many) with a ZOOM window below it: a table of as many columns as fit, moved with the ◀ ▶ buttons,
// the arrow keys, or a click / drag on the overview. Columns are subword tokens or words (a word's
// value is the mean of its pieces' values). The token strip highlights the zoom window's tokens; a
// click on a token moves the window there. Text enters the DOM through textContent / title only.
import type { TokenInfo, WordInfo } from '../src/core/types';
import { el } from './dom';
import { range } from './inspectorMath';

export type HeatmapUnits = 'tokens' | 'words';

/** One heatmap column: a token, or a word (its tokens' span). */
export interface Unit {
  label: string;
  firstToken: number;
  lastToken: number;
}

/** Columns for the chosen units: one per token, or one per word (special tokens stay columns of their own). */
export function unitsOf(tokens: TokenInfo[], words: WordInfo[], units: HeatmapUnits): Unit[] {
  if (units === 'tokens' || !words.length) return tokens.map((t, i) => ({ label: t.token, firstToken: i, lastToken: i }));
  const out: Unit[] = [];
  const byFirst = new Map(words.map((w) => [w.firstToken, w]));
  for (let i = 0; i < tokens.length; ) {
    const w = byFirst.get(i);
    if (w && !tokens[i]!.special) {
      out.push({ label: w.text, firstToken: w.firstToken, lastToken: w.lastToken });
      i = w.lastToken + 1;
    } else {
      out.push({ label: tokens[i]!.token, firstToken: i, lastToken: i });
      i++;
    }
  }
  return out;
}

/** rows × units matrix from rows × tokens: each unit is the mean of its tokens' values. */
export function unitMatrix(values: Float32Array, rows: number, tokens: number, units: Unit[]): Float32Array {
  const out = new Float32Array(rows * units.length);
  for (let r = 0; r < rows; r++) {
    units.forEach((u, c) => {
      let s = 0;
      for (let t = u.firstToken; t <= u.lastToken; t++) s += values[r * tokens + t]!;
      out[r * units.length + c] = s / (u.lastToken - u.firstToken + 1);
    });
  }
  return out;
}

/** Width of one zoomed column and of the row labels, in CSS px (the table's CSS uses the same). */
const CELL_PX = 16;
const LABEL_PX = 64;

/** How many columns fit a width. */
export function columnsThatFit(width: number): number {
  return Math.max(8, Math.floor((width - LABEL_PX) / CELL_PX));
}

export interface HeatmapViewOptions {
  rows: number;
  units: Unit[];
  /** rows × units, row-major. */
  values: Float32Array;
  rowLabel: (r: number) => string;
  cellTitle: (r: number, c: number, v: number) => string;
  /** The zoom window moved: [first, last] units (the token strip highlights them). */
  onWindow?: (first: number, last: number) => void;
  /** Column to start the window at. */
  start?: number;
}

export interface HeatmapView {
  element: HTMLElement;
  /** Moves the zoom window so that `unit` is in it (centred when it has to move). */
  reveal(unit: number): void;
}

export function heatmapView(o: HeatmapViewOptions): HeatmapView {
  const cols = o.units.length;
  const { min, max } = range(o.values);
  const span = max - min || 1;
  const norm01 = (v: number) => (v - min) / span;
  let start = Math.max(0, Math.min(o.start ?? 0, cols - 1));
  let size = cols;

  const overview = el('canvas', { className: 'heatmap-overview', testid: 'heatmap-overview', title: 'Every column at once: click or drag to move the zoomed window' });
  const rangeLabel = el('span', { className: 'meta', testid: 'heatmap-range' });
  const prev = el('button', { className: 'secondary', text: '◀', title: 'Previous columns (←)', testid: 'heatmap-prev' });
  const next = el('button', { className: 'secondary', text: '▶', title: 'Next columns (→)', testid: 'heatmap-next' });
  const bar = el('div', { className: 'zoom-bar' }, prev, next, rangeLabel);
  const tableBox = el('div', { className: 'zoom-table' });
  const root = el('div', { className: 'heatmap-view', testid: 'heatmap-view' }, overview, bar, tableBox, scale(min, max));
  root.tabIndex = 0;

  const colour = (() => {
    const styles = getComputedStyle(document.body);
    const parse = (c: string, fallback: [number, number, number]): [number, number, number] => {
      const m = /^#([0-9a-f]{6})/i.exec(c.trim());
      if (!m) return fallback;
      const n = parseInt(m[1]!, 16);
      return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    };
    const hi = parse(styles.getPropertyValue('--vscode-charts-blue'), [55, 148, 255]);
    const lo = parse(styles.getPropertyValue('--vscode-editor-background'), [30, 30, 30]);
    return (t: number) => `rgb(${lo.map((l, i) => Math.round(l + (hi[i]! - l) * t)).join(',')})`;
  })();

  function drawOverview(): void {
    const width = Math.max(100, Math.floor(root.clientWidth || 400));
    const rowPx = Math.max(3, Math.min(8, Math.floor(120 / Math.max(1, o.rows))));
    const dpr = window.devicePixelRatio || 1;
    overview.style.width = `${width}px`;
    overview.style.height = `${rowPx * o.rows}px`;
    overview.width = Math.round(width * dpr);
    overview.height = Math.round(rowPx * o.rows * dpr);
    overview.dataset.columns = String(cols);
    const ctx = overview.getContext('2d');
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    const colPx = width / cols;
    for (let r = 0; r < o.rows; r++) {
      for (let c = 0; c < cols; c++) {
        ctx.fillStyle = colour(norm01(o.values[r * cols + c]!));
        ctx.fillRect(c * colPx, r * rowPx, Math.max(colPx, 1) + 0.5, rowPx);
      }
    }
    ctx.strokeStyle = getComputedStyle(document.body).getPropertyValue('--vscode-focusBorder').trim() || '#f80';
    ctx.lineWidth = 2;
    ctx.strokeRect(start * colPx + 1, 1, Math.max(2, size * colPx - 2), rowPx * o.rows - 2);
  }

  function drawTable(): void {
    const end = Math.min(cols, start + size);
    const table = el('table', { className: 'matrix', testid: 'heatmap' });
    const head = el('tr', {}, el('th', { className: 'corner' }));
    for (let c = start; c < end; c++) head.append(el('th', { className: 'col', text: o.units[c]!.label, title: `#${c} ${o.units[c]!.label}` }));
    table.append(el('thead', {}, head));
    const body = el('tbody');
    for (let r = 0; r < o.rows; r++) {
      const tr = el('tr', {}, el('th', { className: 'row', text: o.rowLabel(r) }));
      for (let c = start; c < end; c++) {
        const v = o.values[r * cols + c]!;
        const td = el('td', { title: o.cellTitle(r, c, v) });
        td.style.setProperty('--v', norm01(v).toFixed(3));
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    tableBox.replaceChildren(table);
    rangeLabel.textContent = size >= cols ? `all ${cols} columns` : `columns ${start + 1}–${end} of ${cols}`;
    prev.disabled = start === 0;
    next.disabled = end >= cols;
    bar.hidden = size >= cols;
    o.onWindow?.(start, end - 1);
  }

  function layout(): void {
    const available = root.clientWidth || 400;
    size = Math.min(cols, columnsThatFit(available));
    start = Math.max(0, Math.min(start, cols - size));
    drawOverview();
    drawTable();
    // columnsThatFit assumes the CSS sizes; fonts and borders can make the real table wider, so
    // shrink the window until the rendered table fits (a few iterations at most).
    while (size > 8 && tableBox.scrollWidth > available) {
      size -= Math.max(1, Math.ceil((tableBox.scrollWidth - available) / CELL_PX));
      size = Math.max(8, size);
      start = Math.max(0, Math.min(start, cols - size));
      drawOverview();
      drawTable();
    }
  }

  function moveTo(first: number): void {
    const s = Math.max(0, Math.min(Math.round(first), cols - size));
    if (s === start) return;
    start = s;
    drawOverview();
    drawTable();
  }

  prev.addEventListener('click', () => moveTo(start - size));
  next.addEventListener('click', () => moveTo(start + size));
  root.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') moveTo(start - Math.max(1, Math.floor(size / 2)));
    else if (e.key === 'ArrowRight') moveTo(start + Math.max(1, Math.floor(size / 2)));
    else return;
    e.preventDefault();
  });
  let dragging = false;
  const fromPointer = (e: PointerEvent) => {
    const rect = overview.getBoundingClientRect();
    const unit = ((e.clientX - rect.left) / rect.width) * cols;
    moveTo(unit - size / 2);
  };
  overview.addEventListener('pointerdown', (e) => {
    dragging = true;
    overview.setPointerCapture(e.pointerId);
    fromPointer(e);
  });
  overview.addEventListener('pointermove', (e) => dragging && fromPointer(e));
  overview.addEventListener('pointerup', () => (dragging = false));

  // Fits the panel as it is and as it is resized.
  let lastWidth = -1;
  const observer = new ResizeObserver(() => {
    const w = root.clientWidth;
    if (w && w !== lastWidth) {
      lastWidth = w;
      layout();
    }
  });
  observer.observe(root);
  queueMicrotask(layout);

  return {
    element: root,
    reveal(unit: number) {
      if (unit >= start && unit < start + size) return;
      moveTo(unit - size / 2);
    },
  };
}

function scale(min: number, max: number): HTMLElement {
  return el('div', { className: 'scale' },
    el('span', { text: min.toFixed(3) }), el('span', { className: 'ramp' }), el('span', { text: max.toFixed(3) }));
}

/**
 * The tokens (or words) as a wrapping strip in a scrolling box: every token is there, the ones in the
 * heatmap's zoom window are marked, and a click moves that window to the token.
 */
export function tokenStrip(tokens: TokenInfo[], units: Unit[], onPick: (unit: number) => void): { element: HTMLElement; mark(first: number, last: number): void } {
  const strip = el('div', { className: 'token-strip', testid: 'token-strip' });
  const unitOfToken = new Int32Array(tokens.length);
  units.forEach((u, c) => {
    for (let t = u.firstToken; t <= u.lastToken; t++) unitOfToken[t] = c;
  });
  const pieces: HTMLElement[] = [];
  let group: HTMLElement | undefined;
  let groupWord: number | null = null;
  tokens.forEach((t, i) => {
    const piece = el('span', {
      className: `token${t.special ? ' special' : ''}`,
      text: t.token,
      title: `#${i} id ${t.id} · chars ${t.start}–${t.end}${t.special ? ' · special' : ''}${t.word !== null ? ` · word ${t.word}` : ''}`,
    });
    piece.addEventListener('click', () => onPick(unitOfToken[i]!));
    pieces.push(piece);
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
  let marked: [number, number] = [-1, -2];
  return {
    element: strip,
    mark(first, last) {
      const from = units[first]?.firstToken ?? 0;
      const to = units[last]?.lastToken ?? -1;
      for (let t = Math.max(0, marked[0]); t <= marked[1] && t < pieces.length; t++) pieces[t]!.classList.remove('in-window');
      for (let t = from; t <= to && t < pieces.length; t++) pieces[t]!.classList.add('in-window');
      marked = [from, to];
    },
  };
}
