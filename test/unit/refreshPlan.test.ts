// The refresh plan (core/index/refreshPlan.ts), on hand-made folders and catalogs: what is read, what is
// redone although unchanged, what is removed, and when the whole index is checked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRefresh, type IndexView } from '../../src/core/index/refreshPlan';

type Entry = { size: number; mtimeMs: number; chunks: { id: string }[] };

function view(entries: Record<string, Entry>, opts: { complete?: boolean; partsLost?: boolean; stored?: string[] } = {}): IndexView & { lookups: number } {
  const stored = new Set(opts.stored ?? Object.values(entries).flatMap((e) => e.chunks.map((c) => c.id)));
  const v = {
    lookups: 0,
    complete: opts.complete ?? true,
    partsLost: opts.partsLost ?? false,
    paths: () => Object.keys(entries),
    get: (p: string) => entries[p],
    stored: (id: string) => (v.lookups++, stored.has(id)),
  };
  return v;
}

const entry = (size: number, mtimeMs: number, ...ids: string[]): Entry => ({ size, mtimeMs, chunks: ids.map((id) => ({ id })) });
const file = (path: string, size: number, mtimeMs: number) => ({ path, size, mtimeMs });

test('new, resized and touched files are read; unchanged ones are not; gone ones are removed', () => {
  const index = view({ 'a.ts': entry(10, 1, 'a#1'), 'b.ts': entry(20, 2, 'b#1'), 'c.ts': entry(30, 3, 'c#1'), 'gone.ts': entry(5, 5, 'g#1') });
  const files = [file('a.ts', 10, 1), file('b.ts', 21, 2), file('c.ts', 30, 4), file('new.ts', 1, 1)];
  const plan = planRefresh(files, index);
  assert.deepEqual(plan.todo.map((f) => f.path), ['b.ts', 'c.ts', 'new.ts']);
  assert.deepEqual(plan.removed, ['gone.ts']);
  assert.equal(plan.mayLack, false);
  assert.equal(plan.dirty.size, 0);
  assert.equal(index.lookups, 0, 'after a complete refresh no chunk is looked up');
  assert.equal(plan.todo[0], files[1], 'the caller\'s own file objects come back');
});

test('after an unfinished refresh every chunk is checked: a file with a missing chunk is redone though its stat matches', () => {
  const entries = { 'a.ts': entry(10, 1, 'a#1', 'a#2'), 'b.ts': entry(20, 2, 'b#1') };
  const files = [file('a.ts', 10, 1), file('b.ts', 20, 2)];
  const index = view(entries, { complete: false, stored: ['a#1', 'b#1'] });
  const plan = planRefresh(files, index);
  assert.equal(plan.mayLack, true);
  assert.deepEqual([...plan.dirty], ['a.ts']);
  assert.deepEqual(plan.todo.map((f) => f.path), ['a.ts']);
  assert.equal(index.lookups, 3);
});

test('a dropped damaged part is checked like an unfinished refresh', () => {
  const entries = { 'a.ts': entry(10, 1, 'a#1'), 'b.ts': entry(20, 2, 'b#1') };
  const plan = planRefresh([file('a.ts', 10, 1), file('b.ts', 20, 2)], view(entries, { partsLost: true, stored: ['a#1'] }));
  assert.equal(plan.mayLack, true);
  assert.deepEqual(plan.todo.map((f) => f.path), ['b.ts']);
  // A complete index that claims a chunk the store lacks is not checked: the plan trusts a complete refresh.
  const trusted = planRefresh([file('a.ts', 10, 1), file('b.ts', 20, 2)], view(entries, { stored: ['a#1'] }));
  assert.deepEqual(trusted.todo, []);
});

test('an empty folder removes everything; an empty index reads everything', () => {
  assert.deepEqual(planRefresh([], view({ 'a.ts': entry(1, 1, 'a#1') })).removed, ['a.ts']);
  const files = [file('x.md', 3, 3), file('y.md', 4, 4)];
  assert.deepEqual(planRefresh(files, view({})).todo, files);
});
