// The sample workspace of the indexer tests, with what git cannot hold.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export const FIXTURE = path.resolve(__dirname, '../fixtures/sample-workspace');

/** A fresh copy of the sample workspace, plus what git cannot hold: a huge file, links, node_modules. */
export async function makeWorkspace(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'el-ws-'));
  await fs.cp(FIXTURE, dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'data/huge.txt'), 'x = 1\n'.repeat(400_000)); // 2.4 MB
  // A data file over the 32 KiB data limit and an SVG icon: left out as data; a small JSON stays.
  await fs.writeFile(path.join(dir, 'data/vocab.json'), JSON.stringify(Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`word${i}`, i])), null, 1));
  await fs.writeFile(path.join(dir, 'data/icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">\n<path d="M1 1h14v14H1z"/>\n</svg>\n');
  await fs.writeFile(path.join(dir, 'data/settings.json'), '{\n  "name": "demo",\n  "retries": 3\n}\n');
  await fs.mkdir(path.join(dir, 'node_modules/dep'), { recursive: true });
  await fs.writeFile(path.join(dir, 'node_modules/dep/index.js'), 'module.exports = 1;\n');
  await fs.symlink('..', path.join(dir, 'src/nested/loop')); // a directory link back up: a loop
  await fs.symlink('does-not-exist.ts', path.join(dir, 'src/broken.ts'));
  // A git worktree's (or submodule's) .git is a file naming the real repository, not a folder.
  await fs.writeFile(path.join(dir, '.git'), 'gitdir: /elsewhere/repo/.git/worktrees/ws\n');
  await fs.mkdir(path.join(dir, 'vendor/sub'), { recursive: true });
  await fs.writeFile(path.join(dir, 'vendor/sub/.git'), 'gitdir: ../../.git/modules/sub\n');
  return dir;
}
