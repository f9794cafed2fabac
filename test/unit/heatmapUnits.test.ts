// The inspector heatmap's columns at real sizes (media/heatmapView.ts): words from subword pieces
// (special tokens stay columns of their own), a word's value is the mean of its pieces, and the zoom
// window holds as many columns as fit the panel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TokenInfo, WordInfo } from '../../src/core/types';
import { columnsThatFit, unitMatrix, unitsOf } from '../../media/heatmapView';

const tok = (token: string, word: number | null, special = false): TokenInfo => ({ token, id: 0, start: 0, end: 0, special, word });

test('words group their pieces; special tokens stay alone; values are means of the pieces', () => {
  const tokens = [tok('[CLS]', null, true), tok('get', 0), tok('##user', 0), tok('##name', 0), tok('(', 1), tok('[SEP]', null, true)];
  const words: WordInfo[] = [{ text: 'getusername', start: 0, end: 11, firstToken: 1, lastToken: 3 }, { text: '(', start: 11, end: 12, firstToken: 4, lastToken: 4 }];
  const units = unitsOf(tokens, words, 'words');
  assert.deepEqual(units.map((u) => u.label), ['[CLS]', 'getusername', '(', '[SEP]']);
  assert.deepEqual(unitsOf(tokens, words, 'tokens').length, 6);
  // 2 rows × 6 tokens
  const values = new Float32Array([1, 2, 4, 6, 8, 9, 10, 20, 40, 60, 80, 90]);
  const m = unitMatrix(values, 2, 6, units);
  assert.deepEqual(Array.from(m), [1, 4, 8, 9, 10, 40, 80, 90]);
});

test('the zoom window fits the panel: a 521 px panel shows 28 columns of 16 px beside the labels', () => {
  assert.equal(columnsThatFit(521), 28);
  assert.equal(columnsThatFit(100), 8);
});
