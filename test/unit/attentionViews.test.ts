// The attention view's reductions (src/core/inspect/attentionViews.ts) on hand-made numbers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aggregateUnits, attentionMatrix, attentionThumbnails, thumbnail, tokenUnits, wordUnits } from '../../src/core/inspect/attentionViews';
import type { TokenInfo, WordInfo } from '../../src/core/types';

const tok = (token: string, word: number | null): TokenInfo => ({ token, id: 0, start: 0, end: 0, special: word === null, word });
// [CLS] get ##user name [SEP]: words "getuser" (tokens 1–2) and "name" (3).
const tokens = [tok('[CLS]', null), tok('get', 0), tok('##user', 0), tok('name', 1), tok('[SEP]', null)];
const words: WordInfo[] = [
  { text: 'getuser', start: 0, end: 7, firstToken: 1, lastToken: 2 },
  { text: 'name', start: 8, end: 12, firstToken: 3, lastToken: 3 },
];

/** A random row-stochastic T × T matrix. */
function stochastic(T: number, seed: number): Float32Array {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const m = new Float32Array(T * T);
  for (let q = 0; q < T; q++) {
    let z = 0;
    for (let k = 0; k < T; k++) z += (m[q * T + k] = rand() + 0.01);
    for (let k = 0; k < T; k++) m[q * T + k] /= z;
  }
  return m;
}

describe('attention views', () => {
  test('word units merge pieces; special tokens stay alone', () => {
    assert.deepEqual(wordUnits(tokens, words).map((u) => [u.label, u.first, u.last]), [['[CLS]', 0, 0], ['getuser', 1, 2], ['name', 3, 3], ['[SEP]', 4, 4]]);
    assert.equal(tokenUnits(tokens).length, 5);
  });

  test('words: attention to a word is the sum over its pieces, from a word the mean; rows still sum to 1', () => {
    const m = stochastic(5, 7);
    const units = wordUnits(tokens, words);
    const w = aggregateUnits(m, 5, units);
    // row "getuser" (tokens 1, 2) → column "getuser" (keys 1, 2)
    const expected = ((m[1 * 5 + 1] + m[1 * 5 + 2]) + (m[2 * 5 + 1] + m[2 * 5 + 2])) / 2;
    assert.ok(Math.abs(w[1 * 4 + 1] - expected) < 1e-6);
    for (let r = 0; r < 4; r++) {
      const sum = w.subarray(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-6, `row ${r} sums to ${sum}`);
    }
  });

  test('the head mean is the mean of the heads; one head is its own slice', () => {
    const T = 3;
    const a = { layers: 2, heads: 2, tokens: T, probs: new Float32Array([...stochastic(T, 1), ...stochastic(T, 2), ...stochastic(T, 3), ...stochastic(T, 4)]) };
    const mean = attentionMatrix(a, 1, 'mean');
    const h0 = attentionMatrix(a, 1, 0);
    const h1 = attentionMatrix(a, 1, 1);
    assert.deepEqual(Array.from(h0), Array.from(stochastic(T, 3)));
    for (let i = 0; i < T * T; i++) assert.ok(Math.abs(mean[i] - (h0[i] + h1[i]) / 2) < 1e-7);
    assert.throws(() => attentionMatrix(a, 2, 0), RangeError);
  });

  test('thumbnails are block means (and the matrix itself when small)', () => {
    const m = Float32Array.from({ length: 16 }, (_, i) => i);
    const t = thumbnail(m, 4, 2);
    assert.deepEqual(Array.from(t.values), [(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4, (8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]);
    assert.deepEqual(thumbnail(m, 4, 8).size, 4);
    const a = { layers: 1, heads: 2, tokens: 4, probs: new Float32Array([...m, ...m]) };
    const all = attentionThumbnails(a, undefined, 2);
    assert.equal(all.values.length, 1 * 3 * 4); // heads + the mean
    assert.deepEqual(Array.from(all.values.subarray(8, 12)), Array.from(t.values));
  });
});
