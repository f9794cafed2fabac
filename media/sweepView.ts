// The layer sweep as a heatmap: rows = hidden states (and the mean of the last few), columns =
// poolings, colour = the chosen metric; the best cell and the usual default (last layer · mean) are
// outlined, the BM25 keyword baseline sits beside the table on the same colour scale.
import type { RetrievalMetrics } from '../src/core/sweep/metrics';
import type { SweepCell, SweepResult } from '../src/core/sweep/sweep';
import type { SweepMetric } from '../src/protocol/panel';
import { button, el, select, shortModelName } from './dom';

export const SWEEP_METRICS: readonly (readonly [SweepMetric, string])[] = [
  ['mrrAt10', 'MRR@10'],
  ['recallAt1', 'recall@1'],
  ['recallAt10', 'recall@10'],
];

const metricName = (m: SweepMetric) => SWEEP_METRICS.find(([k]) => k === m)?.[1] ?? m;

function metricsText(m: RetrievalMetrics): string {
  return `MRR@10 ${m.mrrAt10.toFixed(3)} · recall@1 ${m.recallAt1.toFixed(3)} · recall@10 ${m.recallAt10.toFixed(3)}`;
}

const same = (a: { row: number; col: number }, b: { row: number; col: number }) => a.row === b.row && a.col === b.col;

export interface SweepViewOptions {
  metric: SweepMetric;
  onMetric(metric: SweepMetric): void;
  /** The cell the Apply button writes; undefined = the recommendation (or the best cell). */
  chosen?: { row: number; col: number };
  onChoose(cell: { row: number; col: number }): void;
  onApply(choice: { layer: string; pool: string }): void;
}

export function renderSweep(result: SweepResult, o: SweepViewOptions): HTMLElement {
  const rec = result.recommendation;
  // Default choice: what the recommendation says (the best cell when it is clearly better, else the default).
  const recCell = result.cells.flat().find((c) => c.layer === rec.layer && c.pool === rec.pool) ?? result.best;
  const chosen: SweepCell = (o.chosen && result.cells[o.chosen.row]?.[o.chosen.col]) || recCell;

  const values = result.cells.flat().map((c) => c.metrics[o.metric]);
  const lexical = result.lexical.metrics[o.metric];
  const lo = Math.min(lexical, ...values);
  const hi = Math.max(lexical, ...values);
  const shade = (v: number) => ((v - lo) / (hi - lo || 1)).toFixed(3);

  const kinds = Object.entries(result.pairsByKind).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ');
  const header = el('p', { className: 'meta', testid: 'sweep-meta', title: result.model,
    text: `${shortModelName(result.model)} · ${result.numLayers} layers · ${result.hiddenSize} dims · ${result.pairs} query → code pairs mined from this workspace (${kinds || 'none'})` });

  const controls = el('div', { className: 'controls' },
    select<SweepMetric>('Colour by', o.metric, SWEEP_METRICS, o.onMetric, 'sweep-metric'),
    el('span', { className: 'legend' },
      el('span', { className: 'swatch best' }), document.createTextNode(' best (by MRR@10) '),
      el('span', { className: 'swatch default' }), document.createTextNode(' default (last layer · mean) '),
      el('span', { className: 'swatch chosen' }), document.createTextNode(' to apply (click a cell to choose)')),
  );

  const table = el('table', { className: 'matrix sweep', testid: 'sweep-table' });
  const head = el('tr', {}, el('th', { className: 'corner', text: 'layer', title: 'rows: hidden state · columns: pooling' }));
  for (const p of result.poolings) head.append(el('th', { className: 'pool', text: p }));
  head.append(el('th', { className: 'gap' }), el('th', { className: 'pool', text: 'BM25', title: 'keyword search (BM25) on the same pairs' }));
  table.append(el('thead', {}, head));
  const body = el('tbody');
  result.rows.forEach((row, r) => {
    const tr = el('tr', {}, el('th', { className: 'row', text: row.label }));
    result.cells[r]!.forEach((cell) => {
      const v = cell.metrics[o.metric];
      const isBest = same(cell, result.best);
      const isDefault = same(cell, result.baseline);
      const kindsText = Object.entries(cell.byKind).map(([k, m]) => `\n  ${k}: ${metricsText(m!)}`).join('');
      const td = el('td', {
        text: v.toFixed(3) + (isBest ? ' ★' : ''),
        title: `layer ${cell.layer} · ${cell.pool}${isBest ? ' (best)' : ''}${isDefault ? ' (default)' : ''}\n${metricsText(cell.metrics)}${kindsText}`,
      });
      td.classList.add('value');
      if (isBest) td.classList.add('best');
      if (isDefault) td.classList.add('default');
      if (same(cell, chosen)) td.classList.add('chosen');
      td.style.setProperty('--v', shade(v));
      td.dataset.layer = cell.layer;
      td.dataset.pool = cell.pool;
      td.addEventListener('click', () => o.onChoose({ row: cell.row, col: cell.col }));
      tr.append(td);
    });
    if (r === 0) {
      tr.append(el('td', { className: 'gap' }));
      const lex = el('td', {
        className: 'value lexical', text: lexical.toFixed(3), testid: 'sweep-lexical',
        title: `keyword search (BM25) on the same pairs\n${metricsText(result.lexical.metrics)}`,
      });
      lex.rowSpan = result.rows.length;
      lex.style.setProperty('--v', shade(lexical));
      tr.append(lex);
    }
    body.append(tr);
  });
  table.append(body);

  const recText = el('p', { className: `recommendation${rec.change ? ' change' : ''}`, text: rec.text, testid: 'sweep-recommendation' });
  const isCurrentDefault = same(chosen, result.baseline);
  const apply = button(`Apply layer ${chosen.layer} · ${chosen.pool}`, () => o.onApply({ layer: chosen.layer, pool: chosen.pool }), {
    testid: 'sweep-apply',
    secondary: isCurrentDefault && !rec.change,
    title: 'Write embeddingLens.layer and embeddingLens.pooling to the settings',
  });
  const s = result.stats;
  const stats = el('p', { className: 'meta stats',
    text: `${s.texts} texts · ${s.tokens} tokens in ${s.batches} model runs (one pass for all ${values.length} cells) · ${(s.totalMs / 1000).toFixed(1)} s` });

  return el('div', { className: 'sweep-view' },
    header, controls,
    el('h2', { text: `${metricName(o.metric)} by layer and pooling` }),
    el('div', { className: 'scroll' }, table),
    recText,
    el('div', { className: 'buttons' }, apply,
      el('span', { className: 'meta', text: ` chosen: ${metricsText(chosen.metrics)}` })),
    stats,
  );
}
