// The engine's automatic memory budget (src/core/store/memoryBudget.ts), with numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoEngineBudget, engineMemoryNeededMb } from '../../src/core/store/memoryBudget';

const GB = 1024;

test('what open indexes need: 0.5 GB plus 2 KB a chunk for search, 4 KB for an index built in this process', () => {
  assert.equal(engineMemoryNeededMb([]), 512);
  assert.equal(engineMemoryNeededMb([{ chunks: 37_000, builtHere: false }]), 512 + Math.ceil(37_000 * 2048 / 2 ** 20)); // 585
  assert.equal(engineMemoryNeededMb([{ chunks: 1_000_000, builtHere: false }]), 2466); // 512 + 1953.1
  assert.equal(engineMemoryNeededMb([{ chunks: 1_000_000, builtHere: true }]), 4419); // 512 + 3906.25
  assert.equal(engineMemoryNeededMb([{ chunks: 500_000, builtHere: true }, { chunks: 500_000, builtHere: false }]), 3442); // 512 + 1953.1 + 976.6
});

test('the budget: at least the 2048 MB default, what the indexes need above that, at most 75% of the machine', () => {
  const machine = 32 * GB;
  assert.deepEqual(autoEngineBudget([], machine), { mb: 2048, neededMb: 512, capped: false });
  assert.deepEqual(autoEngineBudget([{ chunks: 700_000, builtHere: false }], machine), { mb: 2048, neededMb: 1880, capped: false });
  assert.deepEqual(autoEngineBudget([{ chunks: 1_000_000, builtHere: false }], machine), { mb: 2466, neededMb: 2466, capped: false });
  assert.deepEqual(autoEngineBudget([{ chunks: 1_000_000, builtHere: true }], machine), { mb: 4419, neededMb: 4419, capped: false });
  // A 4 GB machine: the 1M first index is capped at 3 GB (and says so).
  assert.deepEqual(autoEngineBudget([{ chunks: 1_000_000, builtHere: true }], 4 * GB), { mb: 3072, neededMb: 4419, capped: true });
  // A 1 GB machine: not below 1024 MB, even under the default.
  assert.deepEqual(autoEngineBudget([], 1 * GB), { mb: 1024, neededMb: 512, capped: false });
});
