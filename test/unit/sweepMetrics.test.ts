// The sweep's metrics on hand-made vectors whose ranks are known, and the BM25 baseline.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { metricsFromRanks, pairedStandardError, ranksByBm25, ranksByInnerProduct } from '../../src/core/sweep/metrics';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);

describe('sweep metrics', () => {
  test('ranks by inner product, ties counted against the pair', () => {
    // Targets: east, north, west. Query 0 points east (rank 1); query 1 leans east, so its target
    // (north) comes second; query 2 points north, so west scores 0 and ties with east (row 0, ranked
    // above on the tie) while north beats it: rank 3.
    const targets = Float32Array.from([1, 0, 0, 1, -1, 0]);
    const queries = Float32Array.from([1, 0, 0.8, 0.6, 0, 1]);
    const ranks = ranksByInnerProduct(queries, targets, 2);
    assert.deepEqual([...ranks], [1, 2, 3]);
    const m = metricsFromRanks(ranks);
    close(m.recallAt1, 1 / 3);
    close(m.recallAt10, 1);
    close(m.mrrAt10, (1 + 1 / 2 + 1 / 3) / 3);
    assert.equal(m.count, 3);
  });

  test('the @10 cutoff: identical vectors rank 1..n, and ranks past 10 count 0', () => {
    const n = 12;
    const same = new Float32Array(n * 3).fill(1 / Math.sqrt(3));
    const ranks = ranksByInnerProduct(same, same, 3);
    assert.deepEqual([...ranks], Array.from({ length: n }, (_, i) => i + 1));
    const m = metricsFromRanks(ranks);
    close(m.recallAt1, 1 / n);
    close(m.recallAt10, 10 / n);
    let rr = 0;
    for (let r = 1; r <= 10; r++) rr += 1 / r;
    close(m.mrrAt10, rr / n);
  });

  test('metrics of a subset, and rank 0 means not found', () => {
    const ranks = [1, 0, 4, 11];
    const all = metricsFromRanks(ranks);
    close(all.recallAt1, 0.25);
    close(all.recallAt10, 0.5);
    close(all.mrrAt10, (1 + 0.25) / 4);
    const sub = metricsFromRanks(ranks, [2, 3]);
    assert.equal(sub.count, 2);
    close(sub.mrrAt10, 0.125);
    assert.deepEqual(metricsFromRanks([], []), { recallAt1: 0, recallAt10: 0, mrrAt10: 0, count: 0 });
  });

  test('BM25 ranks: shared words find the target, no shared word is rank 0', () => {
    const targets = ['function parseHttpUrl(url) { return url.split("/"); }', 'the queue rejects items when full', 'const answer = 42;'];
    const queries = ['parse http url', 'queue full', 'zebra'];
    assert.deepEqual([...ranksByBm25(queries, targets)], [1, 1, 0]);
  });

  test('paired standard error: zero for equal rankings, positive when they differ', () => {
    assert.equal(pairedStandardError([1, 2, 3], [1, 2, 3]), 0);
    const se = pairedStandardError([1, 1, 1, 1], [1, 2, 0, 1]);
    // differences in reciprocal rank: 0, 0.5, 1, 0 → mean 0.375, sample sd 0.4787 → se 0.2394
    close(Math.round(se * 1e4) / 1e4, 0.2394);
  });
});
