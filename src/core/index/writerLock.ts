// One writer per index folder. Two processes refreshing the same index (a CLI run and a VS Code
// window, two windows on one folder) would delete each other's temporary files mid-save. The lock is
// a file created with O_EXCL holding the owner's pid and host; a lock whose process is gone (a crash,
// a kill) is taken over, so a crash never leaves an index locked.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../types';

const LOCK_NAME = 'writer.lock';

interface LockInfo { pid: number; host: string; since: string }

function alive(info: LockInfo): boolean {
  if (info.host !== os.hostname()) return true; // another machine's process: we cannot tell, assume alive
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of `dir` or throws a UserError naming the process that holds it. Returns the release function. */
export async function acquireWriterLock(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_NAME);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o644);
      try {
        await handle.writeFile(JSON.stringify(mine));
      } finally {
        await handle.close();
      }
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: LockInfo | undefined;
      try {
        holder = JSON.parse(await fs.readFile(file, 'utf8')) as LockInfo;
      } catch {
        holder = undefined; // half-written by a process killed at that instant: stale
      }
      if (holder && holder.pid !== process.pid && alive(holder)) {
        throw new UserError(
          `Another Embedding Lens process (pid ${holder.pid} on ${holder.host}, since ${holder.since}) is updating the index in ${dir}.`,
          'Wait for it to finish (or stop it), then run the command again.',
          { code: 'INDEX_BUSY', dir, pid: holder.pid, host: holder.host },
        );
      }
      if (holder?.pid === process.pid) {
        throw new UserError(`This index (${dir}) is already being updated by this process.`, 'Wait for the running refresh to finish.', { code: 'INDEX_BUSY', dir, pid: process.pid });
      }
      await fs.rm(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new UserError(`Could not lock the index in ${dir}.`, 'Another process keeps taking it: run the command again.', { code: 'INDEX_BUSY', dir });
}
