// Pure parts of the engine: layer specs, batch planning, window planning.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { paddingRatio, planBatches } from '../../src/core/extract/batch';
import { parseLayerSpec, selectionDims } from '../../src/core/extract/layers';
import { planWindows, specialFrame } from '../../src/core/extract/windows';
import { UserError } from '../../src/core/types';

describe('layer specs (6-layer model: hidden states 0..6)', () => {
  const cases: [string, number[], string][] = [
    ['embeddings', [0], 'single'],
    ['first', [1], 'single'],
    ['middle', [3], 'single'],
    ['last', [6], 'single'],
    ['-1', [6], 'single'],
    ['-7', [0], 'single'],
    ['4', [4], 'single'],
    ['-1,-2', [6, 5], 'concat'],
    ['mean(-4..-1)', [3, 4, 5, 6], 'mean'],
    ['mean(1, 3, 5)', [1, 3, 5], 'mean'],
    ['all', [0, 1, 2, 3, 4, 5, 6], 'concat'],
    [' LAST ', [6], 'single'],
  ];
  for (const [spec, layers, combine] of cases) {
    test(`"${spec}" → [${layers}] ${combine}`, () => {
      const s = parseLayerSpec(spec, 6);
      assert.deepEqual(s.layers, layers);
      assert.equal(s.combine, combine);
      assert.equal(s.deepest, Math.max(...layers));
    });
  }
  test('middle of an odd depth rounds up (⌈L/2⌉)', () => {
    assert.deepEqual(parseLayerSpec('middle', 5).layers, [3]);
  });
  test('dims: concat multiplies, mean does not', () => {
    assert.equal(selectionDims(parseLayerSpec('-1,-2,-3', 6), 384), 1152);
    assert.equal(selectionDims(parseLayerSpec('mean(-4..-1)', 6), 384), 384);
  });
  test('a layer that does not exist says what exists', () => {
    assert.throws(() => parseLayerSpec('9', 6), (e: Error) => e instanceof UserError && /layer 9 does not exist: this model has layers 0 \(embeddings\) to 6/.test(e.message));
    assert.throws(() => parseLayerSpec('-8', 6), /layer -8 does not exist/);
    assert.throws(() => parseLayerSpec('penultimate', 6), /Unknown layer "penultimate"/);
    assert.throws(() => parseLayerSpec('', 6), /empty/);
    assert.throws(() => parseLayerSpec('1,,2', 6), /empty entry/);
  });
});

describe('batch planning', () => {
  const lengths = [5, 120, 7, 64, 64, 3, 200, 9, 15, 128, 33, 31];
  const limits = { maxTokens: 256, maxBatchSize: 4 };
  const batches = planBatches(lengths, limits);

  test('every sequence is planned exactly once', () => {
    assert.deepEqual(batches.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  });
  test('each batch stays under the token budget and the batch size (a single long sequence may exceed it alone)', () => {
    for (const b of batches) {
      const longest = Math.max(...b.map((i) => lengths[i]));
      assert.ok(b.length <= limits.maxBatchSize);
      assert.ok(b.length === 1 || b.length * longest <= limits.maxTokens, `batch ${b} pads to ${b.length * longest}`);
    }
  });
  test('sorting by length keeps padding low compared with file order', () => {
    const sorted = paddingRatio(lengths, batches);
    const fileOrder = [];
    for (let i = 0; i < lengths.length; i += 4) fileOrder.push(lengths.slice(i, i + 4).map((_, k) => i + k));
    assert.ok(sorted < paddingRatio(lengths, fileOrder), `${sorted} vs ${paddingRatio(lengths, fileOrder)}`);
    assert.ok(sorted < 1.35, `padding ratio ${sorted}`);
  });
});

describe('window planning', () => {
  test('an input that fits is one window', () => {
    const p = planWindows(10, 1, 1, 32, undefined, false);
    assert.equal(p.windows.length, 1);
    assert.equal(p.truncated, false);
  });
  test('windows keep the special tokens, overlap as asked, and cover every token', () => {
    const p = planWindows(100, 1, 1, 32, 10, false);
    for (const w of p.windows) {
      assert.ok(w.length <= 32);
      assert.equal(w[0], 0);
      assert.equal(w[w.length - 1], 99);
    }
    assert.equal(p.windows[1][1] - p.windows[0][1], 20, 'stride = width - overlap');
    const covered = new Set(p.windows.flatMap((w) => Array.from(w)));
    assert.equal(covered.size, 100);
    p.owner.forEach((w, t) => assert.equal(p.windows[w][p.ownerPosition[t]], t));
  });
  test('truncate keeps only the first window and says so', () => {
    const p = planWindows(100, 1, 1, 32, undefined, true);
    assert.equal(p.windows.length, 1);
    assert.equal(p.truncated, true);
    assert.equal(p.owner[50], -1);
  });
  test('special frame', () => {
    assert.deepEqual(specialFrame(Uint8Array.from([1, 0, 0, 1])), { prefix: 1, suffix: 1 });
    assert.deepEqual(specialFrame(Uint8Array.from([1, 1, 0, 1])), { prefix: 2, suffix: 1 });
  });
});
