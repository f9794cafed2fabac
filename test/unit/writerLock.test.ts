// One writer per index folder: a live holder is named in the error, a dead one's lock is taken over.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { acquireWriterLock } from '../../src/core/index/writerLock';
import { UserError } from '../../src/core/types';

describe('index writer lock', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-lock-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a second refresh in the same process is refused until the first releases', async () => {
    const release = await acquireWriterLock(dir);
    await assert.rejects(acquireWriterLock(dir), (e: Error) => e instanceof UserError && /already being updated by this process/.test(e.message));
    await release();
    const again = await acquireWriterLock(dir);
    await again();
  });

  test('a lock held by another live process names it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
      const { acquireWriterLock } = require(${JSON.stringify(path.resolve(__dirname, '../../src/core/index/writerLock.ts'))});
      acquireWriterLock(${JSON.stringify(dir)}).then(() => { console.log('locked'); setTimeout(() => {}, 60000); });
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d) => { if (String(d).includes('locked')) resolve(); });
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      await assert.rejects(acquireWriterLock(dir), (e: Error) => e instanceof UserError && new RegExp(`pid ${child.pid}`).test(e.message));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // Its owner was killed without releasing: the lock is stale and is taken over.
    const release = await acquireWriterLock(dir);
    await release();
  });

  test('a lock left by a process that no longer exists is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, 'writer.lock'), JSON.stringify({ pid: Number(dead.stdout.trim()), host: os.hostname(), since: new Date().toISOString() }));
    const release = await acquireWriterLock(dir);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'writer.lock'), 'utf8')).pid, process.pid);
    await release();
    assert.equal(fs.existsSync(path.join(dir, 'writer.lock')), false);
  });
});
