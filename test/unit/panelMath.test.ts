// The inspector panel's math (media/inspectorMath.ts) on hand-computed cases: cosine per layer for
// the compare chart, 2-D PCA for the index scatter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparePoints, cosinePerLayer, pca2, projectPca } from '../../media/inspectorMath';

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

test('cosinePerLayer: one value per layer, hand-computed', () => {
  const a = [new Float32Array([1, 0]), new Float32Array([1, 1]), new Float32Array([3, 4])];
  const b = [new Float32Array([0, 2]), new Float32Array([2, 2]), new Float32Array([-3, -4])];
  const c = cosinePerLayer(a, b);
  assert.equal(c.length, 3);
  close(c[0], 0); // orthogonal
  close(c[1], 1); // same direction, other length
  close(c[2], -1); // opposite
});

test('cosinePerLayer: different models are an error', () => {
  assert.throws(() => cosinePerLayer([new Float32Array(2)], [new Float32Array(2), new Float32Array(2)]), /different models/);
  assert.throws(() => cosinePerLayer([new Float32Array(2)], [new Float32Array(3)]), /different models/);
});

test('pca2: axis-aligned case', () => {
  // (±2,0,0), (0,±1,0): covariance diag(2, 0.5, 0).
  const x = new Float32Array([2, 0, 0, -2, 0, 0, 0, 1, 0, 0, -1, 0]);
  const p = pca2(x, 4, 3);
  close(p.variances[0], 2);
  close(p.variances[1], 0.5);
  close(p.totalVariance, 2.5);
  assert.deepEqual(Array.from(p.components[0], (v) => Math.round(v * 1e6) / 1e6), [1, 0, 0]);
  assert.deepEqual(Array.from(p.components[1], (v) => Math.round(v * 1e6) / 1e6), [0, 1, 0]);
  const coords = Array.from(p.coords, (v) => Math.round(v * 1e6) / 1e6 + 0);
  assert.deepEqual(coords, [2, 0, -2, 0, 0, 1, 0, -1]);
  const [u, v] = projectPca(p, new Float32Array([1, 1, 5])); // the third axis carries no variance
  close(u, 1);
  close(v, 1);
});

test('pca2: rotated, off-centre case', () => {
  // Around (10, -3): (1,1), (-1,-1), (0.5,-0.5), (-0.5,0.5). Covariance [[0.625, 0.375], [0.375, 0.625]]:
  // eigenvalue 1 along (1,1)/√2, 0.25 along (1,-1)/√2.
  const pts = [[1, 1], [-1, -1], [0.5, -0.5], [-0.5, 0.5]].map(([a, b]) => [a + 10, b - 3]);
  const p = pca2(new Float32Array(pts.flat()), 4, 2);
  close(p.mean[0], 10);
  close(p.mean[1], -3);
  close(p.variances[0], 1);
  close(p.variances[1], 0.25);
  close(p.totalVariance, 1.25);
  close(Math.abs(p.components[0][0]), Math.SQRT1_2);
  close(p.components[0][0], p.components[0][1]);
  close(p.components[1][0], -p.components[1][1]);
  // Orthonormal.
  close(p.components[0][0] * p.components[1][0] + p.components[0][1] * p.components[1][1], 0);
  // |coordinates| along each axis, up to the (fixed) sign.
  close(Math.abs(p.coords[0]), Math.SQRT2); // (1,1) → (√2, 0)
  close(p.coords[1], 0);
  close(p.coords[4], 0); // (0.5,-0.5) → (0, ±√2/2)
  close(Math.abs(p.coords[5]), Math.SQRT1_2);
  // The mean projects to the origin; a point of the set projects to its own coordinates.
  const [u0, v0] = projectPca(p, new Float32Array([10, -3]));
  close(u0, 0);
  close(v0, 0);
  const [u1, v1] = projectPca(p, new Float32Array(pts[2]));
  close(u1, p.coords[4]);
  close(v1, p.coords[5]);
});

test('pca2: deterministic and degenerate inputs', () => {
  const rnd = (() => {
    let s = 7;
    return () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  })();
  const x = new Float32Array(Array.from({ length: 50 * 16 }, rnd));
  const a = pca2(x, 50, 16);
  assert.deepEqual(pca2(x, 50, 16).coords, a.coords, 'deterministic');
  // Against an independent reference: the top two eigenvectors of the covariance matrix by power
  // iteration with deflation (float64). Coordinates agree up to each axis's sign.
  const rows = 50, dims = 16;
  const mean = Array.from({ length: dims }, (_, j) => { let s = 0; for (let r = 0; r < rows; r++) s += x[r * dims + j]!; return s / rows; });
  const cov = Array.from({ length: dims }, (_, i) => Array.from({ length: dims }, (_, j) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += (x[r * dims + i]! - mean[i]!) * (x[r * dims + j]! - mean[j]!);
    return s / rows;
  }));
  const axes: number[][] = [];
  const eig: number[] = [];
  for (let c = 0; c < 2; c++) {
    let v = Array.from({ length: dims }, (_, j) => 1 + j * 0.01);
    let lambda = 0;
    for (let it = 0; it < 5000; it++) {
      const w = cov.map((row) => row.reduce((s, m, j) => s + m * v[j]!, 0));
      for (const u of axes) { const p = w.reduce((s, wi, j) => s + wi * u[j]!, 0); for (let j = 0; j < dims; j++) w[j] -= p * u[j]!; }
      lambda = Math.hypot(...w);
      v = w.map((wi) => wi / lambda);
    }
    axes.push(v);
    eig.push(lambda);
  }
  const scale = a.totalVariance / cov.reduce((s, row, i) => s + row[i]!, 0); // same normalization of variance as pca2
  // pca2 stops its power iteration after 200 steps (a map, not a solver): on this data, whose top
  // eigenvalues are close, that leaves ~1e-3 of error; the reference runs 5000 steps.
  for (let c = 0; c < 2; c++) {
    close(a.variances[c]!, eig[c]! * scale, 2e-3 * eig[c]! * scale);
    const proj = Array.from({ length: rows }, (_, r) => axes[c]!.reduce((s, u, j) => s + u * (x[r * dims + j]! - mean[j]!), 0));
    const ours = Array.from({ length: rows }, (_, r) => a.coords[r * 2 + c]!);
    const cos = Math.abs(proj.reduce((s, p, r) => s + p * ours[r]!, 0)) / (Math.hypot(...proj) * Math.hypot(...ours));
    assert.ok(cos > 0.999, `component ${c + 1}: |cos| to the reference ${cos}`);
  }
  assert.ok(a.variances[0] >= a.variances[1]);
  assert.ok(a.variances[0] + a.variances[1] <= a.totalVariance + 1e-9);
  // One point, or identical points: no variance, everything at the origin, no NaN.
  for (const p of [pca2(new Float32Array([1, 2, 3]), 1, 3), pca2(new Float32Array([1, 2, 1, 2]), 2, 2)]) {
    assert.deepEqual(p.variances, [0, 0]);
    assert.ok(Array.from(p.coords).every((c) => c === 0));
  }
  // Points on one line: the second component carries nothing.
  const line = pca2(new Float32Array([0, 0, 1, 2, 2, 4, 3, 6]), 4, 2);
  close(line.variances[1], 0, 1e-9);
  assert.throws(() => pca2(new Float32Array(5), 2, 3), /not 2 × 3/);
  assert.throws(() => projectPca(line, new Float32Array(3)), /3-dim/);
});

test('comparePoints: the last layer named once, as the lowest when it is (the real related pair of the README)', () => {
  const label = (l: number) => (l === 0 ? 'emb' : `L${l}`);
  assert.deepEqual(comparePoints(new Float32Array([0.87, 0.905, 0.915, 0.9196, 0.914, 0.902, 0.4683]), label), ['last layer 0.4683 (the lowest)', 'highest at L3 (0.9196)']);
  assert.deepEqual(comparePoints(new Float32Array([0.5, 0.2, 0.9]), label), ['last layer 0.9000 (the highest)', 'lowest at L1 (0.2000)']);
  assert.deepEqual(comparePoints(new Float32Array([0.5, 0.9, 0.2, 0.6]), label), ['last layer 0.6000', 'highest at L1 (0.9000)', 'lowest at L2 (0.2000)']);
  assert.deepEqual(comparePoints(new Float32Array([0.7]), label), ['last layer 0.7000 (the highest, the lowest)']);
});
