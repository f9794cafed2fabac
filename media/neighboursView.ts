// "Nearest chunks per layer" in the inspector: for the inspected text, its 10 nearest indexed chunks at
// layers 1, middle and last (or every layer), side by side, so one sees the list form through the
// layers. A chunk that is in the last column's list is marked in every column; hovering a chunk
// highlights it wherever it appears; a click (or Enter) opens it.
import type { LayerNeighboursMessage, LayerNeighboursScope, PanelLayerNeighbours, TextSource } from '../src/protocol/panel';
import { button, el, layerLabel } from './dom';

export interface NeighboursViewHost {
  request(scope: LayerNeighboursScope): void;
  open(source: TextSource): void;
  sourceLabel(source: TextSource): string;
}

const keyOf = (s: TextSource) => `${s.uri}#${s.startLine}-${s.endLine}`;

export function renderNeighbours(host: HTMLElement, m: LayerNeighboursMessage | undefined, view: NeighboursViewHost): void {
  const box = el('section', { className: 'card neighbours', testid: 'neighbours-section' }, el('h2', { text: 'Nearest chunks per layer' }));
  host.replaceChildren(box);
  const buttons = el('div', { className: 'buttons' },
    button('Layers 1, middle, last', () => view.request('some'), { testid: 'neighbours-some', secondary: m?.state === 'ready' }),
    button('Every layer', () => view.request('all'), { testid: 'neighbours-all', secondary: true }));
  if (!m) {
    box.append(el('p', { className: 'hint', text: 'How the selection’s nearest chunks in the index change from layer to layer: the 100 chunks nearest at the index’s layer are embedded again at each layer and ranked there.' }), buttons);
    return;
  }
  if (m.state === 'loading') {
    box.append(el('p', { className: 'hint', text: `Embedding the candidates at ${m.scope === 'all' ? 'every layer' : 'layers 1, middle and last'}…`, testid: 'neighbours-loading' }));
    return;
  }
  if (m.state === 'error') {
    box.append(el('p', { className: 'error', text: m.message, testid: 'neighbours-error' }), buttons);
    return;
  }
  box.append(table(m.data, view), buttons);
}

function table(d: PanelLayerNeighbours, view: NeighboursViewHost): HTMLElement {
  const last = d.hits[d.hits.length - 1] ?? [];
  const final = new Set(last.map((h) => keyOf(h.source)));
  const meta = el('p', {
    className: 'meta', testid: 'neighbours-meta',
    text: `Among the ${d.candidates} chunks nearest at the index’s layer (${d.indexLayer}), embedded again at each layer with the index’s pooling: exact among them, but a chunk far at the index’s layer cannot appear at another (on this repository’s own index such lists hold about two thirds of the true 10 nearest at layers 1 and 3; BENCHMARKS.md) · search ${Math.round(d.searchMs)} ms, re-embedding ${(d.embedMs / 1000).toFixed(1)} s · ● in the ${layerLabel(d.layers[d.layers.length - 1])} list, italics: new in that column.`,
  });
  const grid = el('table', { className: 'neighbours-table', testid: 'neighbours-table' });
  const head = el('tr', {}, el('th', { text: '#' }));
  d.layers.forEach((l) => head.append(el('th', { text: `${layerLabel(l)}${l === d.indexLayerIndex ? ' (index)' : ''}` })));
  grid.append(el('thead', {}, head));
  const body = el('tbody');
  const rows = Math.max(...d.hits.map((h) => h.length));
  const cells = new Map<string, HTMLElement[]>();
  for (let r = 0; r < rows; r++) {
    const tr = el('tr', {}, el('th', { text: String(r + 1) }));
    d.hits.forEach((list, c) => {
      const h = list[r];
      if (!h) {
        tr.append(el('td'));
        return;
      }
      const key = keyOf(h.source);
      const seenBefore = c > 0 && d.hits[c - 1].some((x) => keyOf(x.source) === key);
      const label = view.sourceLabel(h.source);
      const b = button(`${final.has(key) ? '● ' : ''}${label}`, () => view.open(h.source), {
        secondary: true,
        title: `${label}\ncosine ${h.score.toFixed(4)} at ${layerLabel(d.layers[c])} · rank ${h.indexRank} at the index’s layer${seenBefore ? '' : c > 0 ? ' · new in this column' : ''}`,
        testid: 'neighbours-hit',
      });
      b.classList.add('neighbour');
      if (final.has(key)) b.classList.add('final');
      if (!seenBefore && c > 0) b.classList.add('new');
      const list2 = cells.get(key) ?? [];
      list2.push(b);
      cells.set(key, list2);
      const mark = (on: boolean) => cells.get(key)?.forEach((x) => x.classList.toggle('same', on));
      b.addEventListener('mouseenter', () => mark(true));
      b.addEventListener('mouseleave', () => mark(false));
      b.addEventListener('focus', () => mark(true));
      b.addEventListener('blur', () => mark(false));
      tr.append(el('td', {}, b, el('span', { className: 'score', text: h.score.toFixed(3) })));
    });
    body.append(tr);
  }
  const overlap = el('tr', { className: 'overlap' }, el('th', { text: 'kept' }));
  d.hits.forEach((list) => {
    const shared = list.filter((h) => final.has(keyOf(h.source))).length;
    overlap.append(el('td', { text: `${shared}/${last.length} in the ${layerLabel(d.layers[d.layers.length - 1])} list` }));
  });
  body.append(overlap);
  grid.append(body);
  return el('div', {}, meta, el('div', { className: 'scroll' }, grid));
}
