import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadModel } from '../src/cli/index';
import { Workspace } from '../src/core/workspace/workspace';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
(async () => {
  const work = '/tmp/el-share'; fs.rmSync(work, { recursive: true, force: true });
  execFileSync('cp', ['-al', path.resolve('.cache/cli/37000'), work]);
  const repo = path.join(work, 'repo');
  const { extractor, embedder, chunkTokens } = await loadModel({ offline: true }, quiet);
  const ws = Workspace.at(repo, { logger: quiet });
  const rss = () => Math.round(process.memoryUsage().rss / 1048576);
  await ws.refresh(embedder, { chunkTokens });
  let t = performance.now(); await ws.search('parse the config cache', { embedder }); console.log('first search', Math.round(performance.now() - t), 'rss', rss());
  for (let i = 0; i < 4; i++) {
    const f = path.join(repo, `src/pkg${i}/mod${i}.ts`);
    const tmp = f + '.x'; fs.writeFileSync(tmp, fs.readFileSync(f, 'utf8') + `\nexport const edited${i} = ${i};\n`); fs.renameSync(tmp, f);
    t = performance.now(); await ws.refresh(embedder, { chunkTokens, paths: [f] }); const e = performance.now() - t;
    t = performance.now(); await ws.search('parse the config cache', { embedder }); const s1 = performance.now() - t;
    t = performance.now(); await ws.search('parse the config cache', { embedder }); const s2 = performance.now() - t;
    console.log(`edit ${Math.round(e)} search after ${Math.round(s1)} again ${Math.round(s2)} rss ${rss()}`);
  }
  // compaction, then search
  const id = embedder.identity;
  t = performance.now(); const c = await ws.compactIfNeeded(id); console.log('compact', c, Math.round(performance.now() - t));
  t = performance.now(); await ws.search('parse the config cache', { embedder }); console.log('search after compaction', Math.round(performance.now() - t), 'rss', rss());
  await extractor.dispose();
  fs.rmSync(work, { recursive: true, force: true });
})();
