// The bert-tiny fixture model (npm run fixtures) with the recipe the indexer tests embed with.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Extractor } from '../../src/core/extract/extractor';
import type { TextEmbedder } from '../../src/core/types';

export const FIXTURE_MODEL = path.resolve(__dirname, '../fixtures/models/bert-tiny');

/** The fixture model, loaded offline, and its last-layer mean-pooled normalized embedder. */
export async function loadFixtureEmbedder(): Promise<{ extractor: Extractor; embedder: TextEmbedder }> {
  const extractor = await Extractor.load({ model: FIXTURE_MODEL, offline: true });
  return { extractor, embedder: extractor.embedder({ layer: 'last', pool: 'mean', normalize: true }) };
}

/** Disposes the model and removes the folders a test file made. */
export async function releaseFixture(extractor: Extractor | undefined, folders: string[]): Promise<void> {
  await extractor?.dispose();
  for (const d of folders) await fs.rm(d, { recursive: true, force: true });
}
