// What a CLI command loads before it is used: `search` and `index` must not load the PostgreSQL client
// (`pg` and its TLS and network modules, ~50 ms of every process) unless --store names a database.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';

const REPO = path.resolve(__dirname, '..', '..');

test('search and index load no PostgreSQL client until --store is used', () => {
  const probe = `require('./src/cli/search.ts'); require('./src/cli/index.ts');
    const pg = Object.keys(require.cache).filter((k) => /node_modules[\\\\/](pg|pg-protocol|pg-pool|pg-copy-streams)[\\\\/]/.test(k));
    require('./src/cli/postgres.ts').checkConnection('postgres://nobody@127.0.0.1:1/none').catch(() => {
      const after = Object.keys(require.cache).filter((k) => /node_modules[\\\\/]pg[\\\\/]/.test(k));
      console.log(JSON.stringify({ before: pg.length, after: after.length }));
    });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', probe], { cwd: REPO, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(before, 0, 'pg loaded by merely loading the commands');
  assert.ok(after > 0, 'pg loads when a database is used (the probe can see it)');
});
