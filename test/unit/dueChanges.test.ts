// What the extension's next automatic refresh looks at (src/host/dueChanges.ts): the files the editor
// saved, named to the engine, or a walk of the folder after a change from outside the editor.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DueChanges, MAX_NAMED_PATHS, SAVE_ECHO_MS } from '../../src/host/dueChanges';

test('saves are named; the watcher echo of a save names it again; any other watcher event walks', () => {
  const d = new DueChanges();
  d.fileEvent('A', '/w/a.ts', 'editor', 1000);
  d.fileEvent('A', '/w/a.ts', 'watcher', 1200); // the save's own change event
  d.fileEvent('A', '/w/b.ts', 'editor', 1300); // a rename's new path, a created file
  assert.deepEqual(DueChanges.namedFiles(d.take('A')), ['/w/a.ts', '/w/b.ts']);
  assert.equal(d.take('A'), undefined, 'taken');

  d.fileEvent('A', '/w/a.ts', 'watcher', 1000 + SAVE_ECHO_MS + 1); // long after the save: someone else wrote it
  assert.equal(DueChanges.namedFiles(d.take('A')), undefined, 'walk');
  d.fileEvent('A', '/w/c.ts', 'watcher', 9000); // git checkout, a formatter in a terminal
  d.fileEvent('A', '/w/a.ts', 'editor', 9001);
  const due = d.take('A')!;
  assert.equal(due.walk, true);
  assert.equal(DueChanges.namedFiles(due), undefined);
});

test('folders are kept apart; a search that found changed files walks; too many files walk', () => {
  const d = new DueChanges();
  d.fileEvent('A', '/a/x.ts', 'editor', 0);
  d.fileEvent('B', '/b/y.ts', 'editor', 0);
  d.walk('B');
  assert.deepEqual(DueChanges.namedFiles(d.take('A')), ['/a/x.ts']);
  assert.equal(DueChanges.namedFiles(d.take('B')), undefined);
  for (let i = 0; i <= MAX_NAMED_PATHS; i++) d.fileEvent('A', `/a/f${i}.ts`, 'editor', 10);
  assert.equal(DueChanges.namedFiles(d.take('A')), undefined);
});

test('a refresh that failed puts what it took back, merged with what came since', () => {
  const d = new DueChanges();
  d.fileEvent('A', '/a/x.ts', 'editor', 0);
  const taken = d.take('A')!;
  d.fileEvent('A', '/a/y.ts', 'editor', 10);
  d.putBack('A', taken);
  assert.deepEqual(DueChanges.namedFiles(d.take('A'))!.sort(), ['/a/x.ts', '/a/y.ts']);
  d.walk('A');
  const walk = d.take('A')!;
  d.fileEvent('A', '/a/z.ts', 'editor', 20);
  d.putBack('A', walk);
  assert.equal(DueChanges.namedFiles(d.take('A')), undefined, 'still a walk');
});
