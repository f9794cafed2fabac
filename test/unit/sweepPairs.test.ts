// The layer sweep's pair miner: what it finds on a workspace, what it strips and drops, and that a
// seed gives the same sample. No model needed.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { commentText, isTrivialPair, minePairs, splitIdentifier, type Pair } from '../../src/core/sweep/pairs';
import { UserError } from '../../src/core/types';

const REPO = path.resolve(__dirname, '../..');
const SWEEP_WS = path.join(REPO, 'test/fixtures/sweep-workspace');
const SAMPLE_WS = path.join(REPO, 'test/fixtures/sample-workspace');

function find(pairs: Pair[], query: string): Pair {
  const p = pairs.find((x) => x.query === query);
  assert.ok(p, `no pair with query "${query}" in:\n${pairs.map((x) => `  ${x.kind}: ${x.query}`).join('\n')}`);
  return p;
}

describe('sweep pairs: helpers', () => {
  test('identifiers split into lowercase words', () => {
    assert.equal(splitIdentifier('getUserName'), 'get user name');
    assert.equal(splitIdentifier('parse_http_url'), 'parse http url');
    assert.equal(splitIdentifier('HTTPServer2'), 'http server 2');
    assert.equal(splitIdentifier('RunningAverage'), 'running average');
  });

  test('comment markers, JSDoc tags and directives are removed', () => {
    assert.equal(commentText('/**\n * Joins names.\n * @param user the user\n */'), 'Joins names.');
    assert.equal(commentText('/// A bounded queue.\n/// Second line.'), 'A bounded queue. Second line.');
    assert.equal(commentText('# Parses a week.'), 'Parses a week.');
    assert.equal(commentText('// eslint-disable-next-line no-console'), '');
    assert.equal(commentText('// TODO: remove'), '');
  });

  test('a pair is trivial when the target holds the query verbatim, any case or spacing', () => {
    assert.ok(isTrivialPair('Say  Hello', "const g = 'say hello';"));
    assert.ok(!isTrivialPair('get user name', 'return getUserName(u);'));
  });
});

describe('sweep pairs: mining a workspace', () => {
  test('finds every kind, with the expected queries and targets', async () => {
    const mined = await minePairs(SWEEP_WS);
    const { pairs } = mined;
    assert.deepEqual(mined.used, { doc: 5, name: 3, heading: 2, test: 2 });
    assert.deepEqual(mined.found, mined.used, 'all found pairs fit under the default cap');
    assert.equal(mined.filesScanned, 6);

    const doc = find(pairs, 'Joins the first and the last name with one space.');
    assert.equal(doc.kind, 'doc');
    assert.equal(doc.path, 'src/users.ts');
    assert.ok(doc.target.startsWith('export function getUserName(user: User): string {'), doc.target);
    assert.deepEqual([doc.startLine, doc.endLine], [12, 14]);

    assert.equal(find(pairs, 'Remembers a user under its identifier, replacing an older entry.').target.split('\n')[0], 'register(id: string, user: User): void {');
    assert.equal(find(pairs, 'Formats a date as year-month-day.').target, 'export const formatDate = (d: Date): string => d.toISOString().slice(0, 10);');
    assert.equal(find(pairs, 'Parses an ISO week string such as 2024-W07 into year and week.').target.split('\n')[0], 'def parse_iso_week(text):');

    assert.equal(find(pairs, 'user directory').kind, 'name');
    assert.ok(find(pairs, 'user directory').target.startsWith('{\n  private readonly byId'));
    assert.equal(find(pairs, 'format date').kind, 'name');

    const heading = find(pairs, 'Installing the tools');
    assert.equal(heading.kind, 'heading');
    assert.equal(heading.target, 'Download the archive, unpack it anywhere and put its bin folder on your PATH.');
    assert.ok(!pairs.some((p) => p.query.includes('Not a heading')), 'a # line inside a code fence is not a heading');
    assert.ok(!pairs.some((p) => p.query === 'Guide'), 'a heading with nothing under it gives no pair');

    assert.equal(find(pairs, 'joins first and last name').kind, 'test');
    assert.ok(find(pairs, 'joins first and last name').target.includes("'Ada Lovelace'"));
    const pyTest = find(pairs, 'days between counts backwards');
    assert.equal(pyTest.kind, 'test');
    assert.ok(pyTest.target.startsWith('a = datetime.date(2024, 1, 10)'));
  });

  test('comments and docstrings are removed from their targets', async () => {
    const { pairs } = await minePairs(SWEEP_WS);
    for (const p of pairs.filter((x) => x.kind === 'doc')) {
      assert.ok(!p.target.includes(p.query), `${p.path}:${p.startLine}: target still holds its comment`);
      assert.ok(!/^\s*(\/\/|\/\*|#|""")/.test(p.target), `${p.path}:${p.startLine}: target starts with a comment:\n${p.target}`);
    }
    const days = find(pairs, 'Whole days from start to end, negative when end comes first.');
    assert.equal(days.target, 'def days_between(start, end):\n    delta = end - start\n    return delta.days');
  });

  test('trivial and duplicate pairs are dropped and counted', async () => {
    const mined = await minePairs(SWEEP_WS);
    // sayHello's body holds 'say hello'; a test body repeats its own title.
    assert.ok(!mined.pairs.some((p) => p.query === 'say hello'));
    assert.ok(!mined.pairs.some((p) => p.query === 'empty names stay empty'));
    assert.equal(mined.droppedTrivial, 2);
    // format_date is defined in two files: the query would have two right answers, so one is dropped.
    assert.equal(mined.pairs.filter((p) => p.query === 'format date').length, 1);
    assert.equal(mined.droppedDuplicate, 1);
    for (const p of mined.pairs) assert.ok(!isTrivialPair(p.query, p.target), `${p.query} is trivial`);
  });

  test('one pair per declaration: a documented function is not also a name pair', async () => {
    const { pairs } = await minePairs(SWEEP_WS);
    assert.ok(!pairs.some((p) => p.query === 'get user name'));
    const keys = pairs.map((p) => `${p.path}:${p.startLine}`);
    assert.equal(new Set(keys).size, keys.length);
  });

  test('the cap samples across files, and a seed reproduces the sample', async () => {
    const a = await minePairs(SWEEP_WS, { maxPairs: 4, seed: 7 });
    const b = await minePairs(SWEEP_WS, { maxPairs: 4, seed: 7 });
    assert.equal(a.pairs.length, 4);
    assert.deepEqual(a.pairs, b.pairs);
    assert.equal(new Set(a.pairs.map((p) => p.path)).size, 4, 'four pairs come from four different files');
    assert.equal(Object.values(a.used).reduce((x, y) => x + y, 0), 4);
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5]) orders.add(JSON.stringify((await minePairs(SWEEP_WS, { maxPairs: 4, seed })).pairs.map((p) => p.query)));
    assert.ok(orders.size > 1, 'different seeds give different samples');
  });

  test('the sample workspace: docs, docstrings, Rust doc comments, headings', async () => {
    const { pairs } = await minePairs(SAMPLE_WS);
    const gcd = find(pairs, "Greatest common divisor by Euclid's algorithm.");
    assert.ok(gcd.target.startsWith('export function computeGreatestCommonDivisor'));
    const url = find(pairs, 'Split a URL into scheme, host and path.');
    assert.ok(url.target.startsWith('def parse_http_url(url):\n    scheme, rest'), url.target);
    assert.ok(!url.target.includes('"""'));
    const client = find(pairs, 'Fetches URLs, retrying on failure.');
    assert.ok(client.target.startsWith('class RetryingClient:\n    def __init__'), client.target);
    assert.ok(find(pairs, 'Pushes an item; returns false when the queue is full.').target.startsWith('pub fn push('));
    assert.equal(find(pairs, 'healthHandler answers load balancer probes.').path, 'src/server.go');
    assert.equal(find(pairs, 'Health checks').kind, 'heading');
    assert.ok(!pairs.some((p) => p.path.startsWith('ignored-folder/')), '.gitignore is honoured');
  });

  test('bad input is a clear user error', async () => {
    await assert.rejects(minePairs(path.join(SWEEP_WS, 'missing')), (e: unknown) => e instanceof UserError && /does not exist/.test(e.message));
    await assert.rejects(minePairs(SWEEP_WS, { maxPairs: 0 }), (e: unknown) => e instanceof UserError && /positive integer/.test(e.message));
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'el-sweep-empty-'));
    try {
      await fs.writeFile(path.join(empty, 'notes.txt'), 'just some words\n');
      await assert.rejects(minePairs(empty), (e: unknown) => e instanceof UserError && /No query → target pairs/.test(e.message));
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  test('cancellation stops mining', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(minePairs(SWEEP_WS, { signal: controller.signal }), (e: unknown) => (e as Error).name === 'AbortError');
  });
});
