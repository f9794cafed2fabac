// The benchmark corpus: real code, chunked the way the indexer chunks it — this repository's sources
// plus TypeScript's own lib.*.d.ts from node_modules (present on every machine after npm ci).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Chunker, calibrateTokenEstimator, type Chunk } from '../src/core/index/chunk';
import { discoverFiles } from '../src/core/index/files';

export const REPO_ROOT = path.resolve(__dirname, '..');

export interface Corpus {
  chunks: Chunk[];
  files: number;
  sources: string[];
}

export async function buildCorpus(countTokens: (texts: string[]) => Promise<number[]>, limit?: number): Promise<Corpus> {
  const repo = await discoverFiles(REPO_ROOT, { exclude: ['bench/models/**', 'test/fixtures/models/**', 'bench/results*.json'] });
  const tsLib = path.join(REPO_ROOT, 'node_modules', 'typescript', 'lib');
  const libFiles = fs.readdirSync(tsLib).filter((f) => /^lib\..*\.d\.ts$/.test(f)).sort();
  const texts: { path: string; text: string }[] = [];
  for (const f of repo.files) texts.push({ path: f.path, text: fs.readFileSync(f.absPath, 'utf8') });
  for (const f of libFiles) texts.push({ path: `node_modules/typescript/lib/${f}`, text: fs.readFileSync(path.join(tsLib, f), 'utf8') });

  const chunker = new Chunker({ maxTokens: 256 });
  const sample = texts.flatMap((t) => t.text.split(/\n\s*\n/).slice(0, 2)).slice(0, 64);
  chunker.setTokenEstimator((await calibrateTokenEstimator(countTokens, sample)).estimate);
  const chunks: Chunk[] = [];
  for (const t of texts) {
    for (const c of await chunker.chunk(t.path, t.text)) if (c.text.trim()) chunks.push(c);
  }
  // A quick run takes an even sample across files rather than the first files only.
  const picked = limit && chunks.length > limit ? chunks.filter((_, i) => i % Math.ceil(chunks.length / limit) === 0).slice(0, limit) : chunks;
  return { chunks: picked, files: texts.length, sources: ['this repository', 'node_modules/typescript/lib/lib.*.d.ts'] };
}
