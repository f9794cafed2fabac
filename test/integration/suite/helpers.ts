import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EmbeddingLensApi } from '../../../src/host/activate';

export const EXTENSION_ID = 'embedding-lens.embedding-lens';

export async function activatedApi(): Promise<{ ext: vscode.Extension<EmbeddingLensApi>; api: EmbeddingLensApi }> {
  const ext = vscode.extensions.getExtension<EmbeddingLensApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not installed`);
  const api = ext.isActive ? ext.exports : await ext.activate();
  return { ext, api };
}

/** Folder for numbers and files the runner collects (set by runHost.mjs in code-server's environment). */
export function resultsDir(): string | undefined {
  return process.env.EL_TEST_RESULTS;
}

export function recordMetric(name: string, value: unknown): void {
  const dir = resultsDir();
  if (!dir) return;
  const file = path.join(dir, 'host-metrics.json');
  const current = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  current[name] = value;
  fs.writeFileSync(file, JSON.stringify(current, null, 2));
}

export function fixtureModel(name = 'bert-tiny'): string {
  const root = process.env.EL_REPO_ROOT;
  if (!root) throw new Error('EL_REPO_ROOT is not set (runHost.mjs sets it)');
  return path.join(root, 'test', 'fixtures', 'models', name);
}
