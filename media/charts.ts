// SVG charts of the inspector: the per-layer similarity line chart (compare) and the PCA scatter.
// Colours come from CSS classes that use VS Code's theme variables (media/inspector.css).
import { el, svg, svgText, svgTitle } from './dom';

/** Ticks for [lo, hi] at a step from 1/2/2.5/5 × 10^k, about `count` of them. */
function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

/**
 * Cosine similarity of two texts at every layer: a line with one point per layer.
 * Hovering a point shows its value in the readout line (and as a native tooltip).
 */
export function layerLineChart(values: Float32Array, labels: string[], testid: string): HTMLElement {
  const W = 640, H = 240, left = 44, right = 12, top = 12, bottom = 34;
  // Zoomed to the data (similar texts differ in the second decimal), at least [0.9, 1]; the axis says where it starts.
  const lo = Math.min(0.9, Math.floor(Math.min(...values) * 10) / 10);
  const hi = 1;
  const x = (i: number) => left + (values.length === 1 ? (W - left - right) / 2 : (i * (W - left - right)) / (values.length - 1));
  const y = (v: number) => top + ((hi - v) * (H - top - bottom)) / (hi - lo || 1);

  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart line-chart', role: 'img', 'aria-label': 'cosine similarity per layer' });
  chart.dataset.testid = testid;
  for (const t of ticks(lo, hi, 5)) {
    chart.append(svg('line', { x1: left, x2: W - right, y1: y(t), y2: y(t), class: t === 0 ? 'axis' : 'grid' }));
    chart.append(svgText(t.toFixed(2), { x: left - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }));
  }
  const every = Math.ceil(values.length / 24);
  labels.forEach((label, i) => {
    if (i % every === 0 || i === labels.length - 1) chart.append(svgText(label, { x: x(i), y: H - bottom + 16, class: 'tick', 'text-anchor': 'middle' }));
  });
  chart.append(svgText('layer', { x: (left + W - right) / 2, y: H - 4, class: 'axis-title', 'text-anchor': 'middle' }));

  const points = Array.from(values, (v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  chart.append(svg('polyline', { points, class: 'series' }));
  const guide = svg('line', { x1: 0, x2: 0, y1: top, y2: H - bottom, class: 'guide', visibility: 'hidden' });
  chart.append(guide);

  const readout = el('p', { className: 'readout', text: 'Hover a point to see its value.', testid: `${testid}-readout` });
  values.forEach((v, i) => {
    const text = `${labels[i]}: cosine ${v.toFixed(4)}`;
    const dot = svg('circle', { cx: x(i), cy: y(v), r: 4, class: 'point' }, svgTitle(text));
    dot.dataset.layer = String(i);
    dot.dataset.testid = `${testid}-point`;
    // A larger transparent target so the point is easy to hit.
    const hit = svg('circle', { cx: x(i), cy: y(v), r: 10, class: 'hit' }, svgTitle(text));
    hit.dataset.testid = `${testid}-hit`;
    hit.dataset.layer = String(i);
    const enter = () => {
      readout.textContent = text;
      guide.setAttribute('x1', String(x(i)));
      guide.setAttribute('x2', String(x(i)));
      guide.setAttribute('visibility', 'visible');
      dot.classList.add('active');
    };
    const leave = () => {
      guide.setAttribute('visibility', 'hidden');
      dot.classList.remove('active');
    };
    // The visible dot ignores the pointer (CSS); the larger circle around it takes the hover.
    hit.addEventListener('mouseenter', enter);
    hit.addEventListener('mouseleave', leave);
    chart.append(dot, hit);
  });
  return el('div', { className: 'chart-box' }, chart, readout);
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** Hover text. */
  title: string;
  /** Colour group 0–5 (the theme's six chart colours), 6 for "other" (see media/mapView.ts). */
  group: number;
}

/**
 * A scatter of the index sample with one highlighted point (the selection). Clicking a point calls
 * `onClick(index)`; hovering shows its title in the readout line.
 */
export function pcaScatter(
  points: ScatterPoint[], selection: { x: number; y: number; title: string } | undefined, axes: [string, string],
  onClick: (index: number) => void, testid: string, label = 'PCA of the indexed chunks',
): HTMLElement {
  const W = 640, H = 420, pad = 28;
  const xs = points.map((p) => p.x).concat(selection ? [selection.x] : []);
  const ys = points.map((p) => p.y).concat(selection ? [selection.y] : []);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (v: number) => pad + ((v - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  // Screen y grows downwards: PC2 up.
  const sy = (v: number) => H - pad - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * pad);

  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart scatter', role: 'img', 'aria-label': label });
  chart.dataset.testid = testid;
  chart.append(svg('rect', { x: 0.5, y: 0.5, width: W - 1, height: H - 1, class: 'frame' }));
  if (x0 < 0 && x1 > 0) chart.append(svg('line', { x1: sx(0), x2: sx(0), y1: pad / 2, y2: H - pad / 2, class: 'grid' }));
  if (y0 < 0 && y1 > 0) chart.append(svg('line', { x1: pad / 2, x2: W - pad / 2, y1: sy(0), y2: sy(0), class: 'grid' }));
  chart.append(svgText(axes[0], { x: W - pad, y: H - 8, class: 'axis-title', 'text-anchor': 'end' }));
  chart.append(svgText(axes[1], { x: 8, y: pad - 10, class: 'axis-title' }));

  const readout = el('p', { className: 'readout', text: 'Hover a point to see the chunk; click it to open it.', testid: `${testid}-readout` });
  points.forEach((p, i) => {
    const dot = svg('circle', { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 4, class: `point g${Math.min(p.group, 6)}` }, svgTitle(p.title));
    dot.dataset.testid = `${testid}-point`;
    dot.dataset.index = String(i);
    dot.addEventListener('mouseenter', () => (readout.textContent = p.title));
    dot.addEventListener('click', () => onClick(i));
    chart.append(dot);
  });
  if (selection) {
    const cx = sx(selection.x), cy = sy(selection.y), r = 8;
    const mark = svg('g', { class: 'selection-mark' },
      svg('path', { d: `M ${cx} ${cy - r} L ${cx + r} ${cy} L ${cx} ${cy + r} L ${cx - r} ${cy} Z` }),
      svgTitle(selection.title));
    mark.dataset.testid = `${testid}-selection`;
    mark.addEventListener('mouseenter', () => (readout.textContent = selection.title));
    const anchorEnd = cx > W - 120;
    chart.append(mark, svgText('selection', { x: anchorEnd ? cx - 12 : cx + 12, y: cy + 4, class: 'selection-label', 'text-anchor': anchorEnd ? 'end' : 'start' }));
  }
  return el('div', { className: 'chart-box' }, chart, readout);
}
