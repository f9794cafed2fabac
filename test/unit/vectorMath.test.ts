// core/vectorMath.ts: cosine against hand-computed values, and the zero-vector case each caller states
// (the encoder's batch-independence check counts two zero rows as the same numbers, 1; search, the
// layer neighbours and the inspector count a zero vector as having no direction, 0).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cosine } from '../../src/core/vectorMath';

const f = (...v: number[]) => Float32Array.from(v);

describe('cosine', () => {
  test('hand-computed values', () => {
    assert.equal(cosine(f(1, 0), f(0, 1), 0), 0);
    assert.equal(cosine(f(1, 2, 3), f(2, 4, 6), 0), 1);
    assert.equal(cosine(f(1, 2, 3), f(-1, -2, -3), 0), -1);
    // (3,4)·(4,3) = 24, |a||b| = 25
    assert.ok(Math.abs(cosine(f(3, 4), f(4, 3), 1) - 24 / 25) < 1e-12);
    // Plain arrays too (the tests' references are number[]).
    assert.ok(Math.abs(cosine([1, 1], [1, 0], 0) - Math.SQRT1_2) < 1e-12);
  });

  test('two zero vectors give what the caller states; one zero vector gives 0 either way', () => {
    assert.equal(cosine(f(0, 0, 0), f(0, 0, 0), 1), 1);
    assert.equal(cosine(f(0, 0, 0), f(0, 0, 0), 0), 0);
    for (const bothZero of [0, 1] as const) {
      assert.equal(cosine(f(0, 0), f(1, 2), bothZero), 0);
      assert.equal(cosine(f(1, 2), f(0, 0), bothZero), 0);
    }
  });

  test('vectors of different lengths are refused, not compared on their common prefix', () => {
    assert.throws(() => cosine(f(1, 2), f(1, 2, 3), 0), /different lengths \(2 and 3\)/);
  });
});
