// The layer sweep end to end on the real bert-tiny model (random weights: the tests check the shape,
// the ranges and the cost — one model pass — not which layer wins).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatSweepTable } from '../../src/cli/sweep';
import { Extractor } from '../../src/core/extract/extractor';
import { minePairs, type Pair } from '../../src/core/sweep/pairs';
import { runSweep, SWEEP_POOLINGS, sweepRows, type SweepExtractor, type SweepResult } from '../../src/core/sweep/sweep';
import { UserError } from '../../src/core/types';

const REPO = path.resolve(__dirname, '../..');
const MODEL = path.join(REPO, 'test/fixtures/models/bert-tiny');

let extractor: Extractor;
let pairs: Pair[];
let result: SweepResult;

before(async () => {
  // A small token budget so the pass takes several batches.
  extractor = await Extractor.load({ model: MODEL, offline: true, maxTokensPerBatch: 256 });
  const a = await minePairs(path.join(REPO, 'test/fixtures/sweep-workspace'));
  const b = await minePairs(path.join(REPO, 'test/fixtures/sample-workspace'));
  pairs = [...a.pairs, ...b.pairs];
  result = await runSweep({ extractor, pairs });
});
after(async () => {
  await extractor?.dispose();
});

describe('layer sweep on bert-tiny', () => {
  test('the table: every hidden state 0..L and the mean of the last 4, × mean/max/cls/last', () => {
    const L = extractor.info.numLayers;
    assert.equal(result.numLayers, L);
    assert.deepEqual(result.rows.map((r) => r.layer), [...Array.from({ length: L }, (_, i) => String(i)), 'last', 'mean(-4..-1)']);
    assert.deepEqual(result.poolings, SWEEP_POOLINGS);
    assert.equal(result.cells.length, L + 2);
    for (const [r, row] of result.cells.entries()) {
      assert.equal(row.length, 4);
      for (const [c, cell] of row.entries()) {
        assert.deepEqual([cell.row, cell.col, cell.layer, cell.pool], [r, c, result.rows[r]!.layer, SWEEP_POOLINGS[c]]);
        for (const v of [cell.metrics.recallAt1, cell.metrics.recallAt10, cell.metrics.mrrAt10]) assert.ok(v >= 0 && v <= 1, `${cell.layer}/${cell.pool}: ${v}`);
        assert.ok(cell.metrics.recallAt1 <= cell.metrics.mrrAt10 + 1e-12 && cell.metrics.mrrAt10 <= cell.metrics.recallAt10 + 1e-12);
        assert.equal(cell.metrics.count, pairs.length);
        const perKind = Object.values(cell.byKind).reduce((n, m) => n + m!.count, 0);
        assert.equal(perKind, pairs.length);
      }
    }
    for (const v of Object.values(result.lexical.metrics)) assert.ok(v >= 0);
    assert.ok(result.lexical.metrics.mrrAt10 <= 1);
  });

  test('best cell, baseline and recommendation are consistent', () => {
    const all = result.cells.flat();
    const top = Math.max(...all.map((c) => c.metrics.mrrAt10));
    assert.equal(result.best.metrics.mrrAt10, top);
    assert.deepEqual([result.baseline.layer, result.baseline.pool], ['last', 'mean']);
    const rec = result.recommendation;
    assert.ok(Math.abs(rec.margin - (result.best.metrics.mrrAt10 - result.baseline.metrics.mrrAt10)) < 1e-12);
    assert.ok(rec.margin >= 0);
    assert.ok(Number.isFinite(rec.standardError) && rec.standardError >= 0);
    assert.equal(rec.confident, rec.margin > 2 * rec.standardError && result.best !== result.baseline);
    assert.equal(JSON.parse(JSON.stringify(result)).cells[0][0].metrics.count, pairs.length, 'plain JSON: it can cross a worker or a webview as it is');
    if (rec.change) assert.deepEqual([rec.layer, rec.pool], [result.best.layer, result.best.pool]);
    else assert.deepEqual([rec.layer, rec.pool], ['last', 'mean']);
    assert.ok(rec.text.length > 20);
    assert.equal(result.pairs, pairs.length);
    assert.equal(Object.values(result.pairsByKind).reduce((a, b) => a + b, 0), pairs.length);
  });

  test('single pass: as many model runs as one plain extraction of the same texts', async () => {
    const texts = [...pairs.map((p) => p.query), ...pairs.map((p) => p.target)];
    const plain = await extractor.extract(texts, { layer: 'last', pool: 'mean' });
    assert.ok(plain.stats.batches > 1, `the budget should split the pass (${plain.stats.batches} batch)`);
    assert.equal(result.stats.batches, plain.stats.batches, 'the model ran once per batch, not once per layer or pooling');
    assert.equal(result.stats.texts, texts.length);
    // And only one extraction call is made, whatever the number of cells.
    let calls = 0;
    const counting: SweepExtractor = {
      info: extractor.info,
      extractMany: (...args: Parameters<Extractor['extractMany']>) => { calls++; return extractor.extractMany(...args); },
    };
    const again = await runSweep({ extractor: counting, pairs: pairs.slice(0, 6) });
    assert.equal(calls, 1);
    assert.equal(again.cells.flat().length, sweepRows(extractor.info.numLayers).length * 4);
  });

  test('same pairs, same numbers', async () => {
    const again = await runSweep({ extractor, pairs });
    assert.deepEqual(again.cells.flat().map((c) => c.metrics), result.cells.flat().map((c) => c.metrics));
  });

  test('progress reports embedding then scoring; cancellation stops the sweep', async () => {
    const phases: string[] = [];
    await runSweep({ extractor, pairs: pairs.slice(0, 8), onProgress: (e) => { if (phases.at(-1) !== e.phase) phases.push(e.phase); } });
    assert.deepEqual(phases, ['embed', 'score']);

    const controller = new AbortController();
    await assert.rejects(
      runSweep({ extractor, pairs, signal: controller.signal, onProgress: (e) => { if (e.phase === 'embed' && e.itemsDone > 0) controller.abort(); } }),
      (e: unknown) => (e as Error).name === 'AbortError',
    );
    const scoring = new AbortController();
    await assert.rejects(
      runSweep({ extractor, pairs, signal: scoring.signal, onProgress: (e) => { if (e.phase === 'score') scoring.abort(); } }),
      (e: unknown) => (e as Error).name === 'AbortError',
    );
  });

  test('fewer than two pairs is a user error', async () => {
    await assert.rejects(runSweep({ extractor, pairs: pairs.slice(0, 1) }), (e: unknown) => e instanceof UserError && /at least 2 pairs/.test(e.message));
  });

  test('the printed table: one row per layer, the best cell marked once, BM25 beside', () => {
    const text = formatSweepTable(JSON.parse(JSON.stringify(result)) as SweepResult); // as a worker or --json would pass it
    const lines = text.split('\n');
    assert.match(lines[0]!, /^MRR@10 by layer/);
    assert.equal((text.match(/\*/g) ?? []).length, 2, 'one * in the legend, one on the best cell');
    for (const row of result.rows) assert.ok(lines.some((l) => l.startsWith(row.label)), row.label);
    assert.match(text, /lexical \(BM25\)\s+\d\.\d{3}/);
    assert.match(formatSweepTable(result, 'r10'), /^recall@10/);
  });
});
