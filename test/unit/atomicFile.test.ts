// core/store/atomicFile.ts, the synchronous helpers used by caches without a writer lock: an atomic
// write leaves only the final file, a failed one leaves neither a temp file nor a changed final file,
// and the sweep removes only old temp files.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { sweepStaleTempFilesSync, tempPathFor, writeFileAtomicSync } from '../../src/core/store/atomicFile';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'el-atomic-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('writeFileAtomicSync', () => {
  test('writes the bytes under the final name and leaves no temp file', () => {
    const file = path.join(tmp, 'a.json');
    writeFileAtomicSync(file, '{"v":1}\n');
    writeFileAtomicSync(file, '{"v":2}\n');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"v":2}\n');
    assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.includes('a.json')), ['a.json']);
  });

  test('a write whose rename fails throws and leaves no temp file beside the other files', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ro-'));
    const file = path.join(dir, 'b.json');
    writeFileAtomicSync(file, 'old');
    // A final name that is a non-empty directory: the rename fails after the temp file was written.
    const blocked = path.join(dir, 'c');
    fs.mkdirSync(path.join(blocked, 'inside'), { recursive: true });
    assert.throws(() => writeFileAtomicSync(blocked, 'new'));
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['b.json', 'c']);
  });
});

describe('sweepStaleTempFilesSync', () => {
  test('removes temp files older than the age given, keeps fresh ones and every other file', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'sweep-'));
    const old = Date.now() / 1000 - 3600;
    const staleTemp = path.basename(tempPathFor(path.join(dir, 'x.json')));
    const staleLegacy = 'x.json.123.tmp';
    for (const name of [staleTemp, staleLegacy, 'x.json', 'notes.tmp']) {
      fs.writeFileSync(path.join(dir, name), '');
      fs.utimesSync(path.join(dir, name), old, old);
    }
    const freshTemp = path.basename(tempPathFor(path.join(dir, 'y.json')));
    fs.writeFileSync(path.join(dir, freshTemp), '');
    assert.equal(sweepStaleTempFilesSync(dir, 60_000, /^x\.json\.\d+\.tmp$/), 2);
    assert.deepEqual(fs.readdirSync(dir).sort(), [freshTemp, 'notes.tmp', 'x.json'].sort());
    assert.equal(sweepStaleTempFilesSync(path.join(dir, 'missing'), 0), 0, 'a folder that is not there: nothing to do');
  });
});
