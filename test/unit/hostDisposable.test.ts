// The host's Disposable base (src/host/disposable.ts), which replaced the hand-rolled dispose loops of
// IndexService, InspectorPanel, ResultHighlighter and StatusBar: order, once only, late registration,
// and every disposable released even when one throws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Disposable, disposeAll } from '../../src/host/disposable';

class Owner extends Disposable {
  readonly log: string[] = [];
  add(name: string, fail = false) {
    return this.own({ dispose: () => { this.log.push(name); if (fail) throw new Error(`${name} failed`); } });
  }
  protected override onDispose(): void {
    this.log.push('own cleanup');
  }
}

test('dispose: own cleanup first, then the owned newest first, exactly once', () => {
  const o = new Owner();
  o.add('a');
  o.add('b');
  o.add('c');
  assert.equal(o.isDisposed, false);
  o.dispose();
  o.dispose();
  assert.deepEqual(o.log, ['own cleanup', 'c', 'b', 'a']);
  assert.equal(o.isDisposed, true);
});

test('something owned after dispose is disposed at once', () => {
  const o = new Owner();
  o.dispose();
  o.add('late');
  assert.deepEqual(o.log, ['own cleanup', 'late']);
});

test('one failing disposable does not keep the others alive; the error still surfaces', () => {
  const o = new Owner();
  o.add('a');
  o.add('b', true);
  o.add('c');
  assert.throws(() => o.dispose(), /b failed/);
  assert.deepEqual(o.log, ['own cleanup', 'c', 'b', 'a']);
  const seen: string[] = [];
  const items = [1, 2, 3].map((i) => ({ dispose: () => { seen.push(`d${i}`); if (i !== 2) throw new Error(`d${i}`); } }));
  assert.throws(() => disposeAll(items), (e: unknown) => e instanceof AggregateError && e.errors.length === 2);
  assert.deepEqual(seen, ['d3', 'd2', 'd1']);
  assert.equal(items.length, 0);
});
