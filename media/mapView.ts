// The map of the index in the inspector: UMAP (keeps neighbours) or PCA (keeps global directions), how
// well each keeps every chunk's 10 nearest neighbours, colours for the six largest groups (top folder,
// or code / docs / tests) and "other" for the rest, and whether the map is a sample of the index.
import type { MapGrouping, MapProjectionKind, PanelIndexPoints, TextSource } from '../src/protocol/panel';
import { pcaScatter } from './charts';
import { el, select } from './dom';
import { pca2, projectPca, type Pca2 } from './inspectorMath';
import { cosine } from '../src/core/vectorMath';
import { groupPoints } from '../src/core/map/neighbourMap';

export interface MapViewOptions {
  projection: MapProjectionKind;
  grouping: MapGrouping;
  onProjection(p: MapProjectionKind): void;
  onGrouping(g: MapGrouping): void;
  open(source: TextSource): void;
  sourceLabel(source: TextSource): string;
  selectionLabel: string;
}

const pcaCache = new WeakMap<PanelIndexPoints, Pca2>();

const count = (n: number) => n.toLocaleString('en-US');

/** Where the selection goes on a UMAP: the mean position of its k most similar sampled chunks. */
function placeAmongNeighbours(d: PanelIndexPoints, coords: Float32Array, v: Float32Array, k = 10): [number, number] {
  const n = d.points.length;
  const sims = Array.from({ length: n }, (_, i) => ({ i, s: cosine(v, d.vectors.subarray(i * d.dims, (i + 1) * d.dims), 0) }));
  sims.sort((a, b) => b.s - a.s);
  const near = sims.slice(0, Math.min(k, n));
  return [near.reduce((a, x) => a + coords[2 * x.i], 0) / near.length, near.reduce((a, x) => a + coords[2 * x.i + 1], 0) / near.length];
}

export function renderMap(box: HTMLElement, d: PanelIndexPoints, o: MapViewOptions): void {
  const n = d.points.length;
  let p = pcaCache.get(d);
  if (!p) {
    // The same points arrive again with their UMAP: reuse the PCA of the first arrival.
    p = pca2(d.vectors, n, d.dims);
    pcaCache.set(d, p);
  }
  const projection: MapProjectionKind = o.projection === 'umap' && d.umap ? 'umap' : 'pca';
  const names = d.points.map((pt) => (o.grouping === 'kind' ? pt.kind : pt.group ? `${pt.group}/` : '(root)'));
  const groups = groupPoints(names);
  const coords = projection === 'umap' ? d.umap!.coords : p.coords;
  const points = d.points.map((pt, i) => {
    const preview = pt.preview.split('\n').slice(0, 4).join('\n');
    // First line: the chunk's label alone (file:lines), as the readout shows it; the group goes last.
    return { x: coords[2 * i], y: coords[2 * i + 1], title: `${o.sourceLabel(pt.source)}\n${preview}\n(${names[i]})`, group: groups.index[i] };
  });
  let selection: { x: number; y: number; title: string } | undefined;
  if (d.selection && d.selection.length === d.dims) {
    const [x, y] = projection === 'umap' ? placeAmongNeighbours(d, d.umap!.coords, d.selection) : projectPca(p, d.selection);
    selection = { x, y, title: `${o.selectionLabel}${projection === 'umap' ? ' (placed at the mean of its 10 most similar chunks)' : ''}` };
  }
  const pct = (v: number) => `${((100 * v) / (p.totalVariance || 1)).toFixed(1)} %`;
  const sample = d.total && d.total > n ? `${count(n)} of ${count(d.total)} chunks (an evenly spaced sample)` : `all ${count(n)} chunks`;

  const controls = el('div', { className: 'controls', testid: 'map-controls' },
    select<MapProjectionKind>('Map', projection, d.umap ? [['umap', 'UMAP (keeps neighbours)'], ['pca', 'PCA (2 principal components)']] : [['pca', 'PCA (2 principal components)']], o.onProjection, 'map-projection'),
    select<MapGrouping>('Colour by', o.grouping, [['folder', 'top folder'], ['kind', 'code / docs / tests']], o.onGrouping, 'map-grouping'),
  );
  const q = d.umap?.quality;
  const keeps = q
    ? `Of each chunk's 10 nearest neighbours (cosine, full ${d.dims} dims) the map keeps ${(100 * q.umap.kept).toFixed(0)} % with UMAP and ${(100 * q.pca.kept).toFixed(0)} % with PCA (trustworthiness ${q.umap.trust.toFixed(3)} vs ${q.pca.trust.toFixed(3)}; UMAP took ${(d.umap!.ms / 1000).toFixed(1)} s).`
    : d.umapError ?? 'Computing the UMAP and how well each map keeps neighbours…';
  const axes: [string, string] = projection === 'umap' ? ['UMAP 1', 'UMAP 2'] : [`PC1 (${pct(p.variances[0])})`, `PC2 (${pct(p.variances[1])})`];
  const legend = el('p', { className: 'legend', testid: 'map-legend' });
  for (const g of groups.legend) legend.append(el('span', { className: `dot g${g.colour}` }), document.createTextNode(` ${g.name} ${count(g.count)}   `));

  box.append(
    controls,
    el('p', {
      className: 'meta', testid: 'pca-meta',
      text: `${sample} · ${d.recipe}${projection === 'pca' ? ` · PC1 ${pct(p.variances[0])}, PC2 ${pct(p.variances[1])} of the variance` : ''}${selection ? '' : ' · the selection could not be embedded with this recipe'}`,
    }),
    el('p', { className: 'meta', text: keeps, testid: 'map-quality' }),
    pcaScatter(points, selection, axes, (i) => o.open(d.points[i].source), 'pca', projection === 'umap' ? 'UMAP of the indexed chunks' : 'PCA of the indexed chunks'),
    legend,
  );
}
