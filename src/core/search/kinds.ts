// What a chunk is, from its file's path: code, docs (prose) or tests. Search can be limited to some
// kinds ("a question about code should find code"): the CLI's --kind and the search QuickPick's filter;
// the inspector's map colours its points by it.
import { UserError } from '../types';

export type ChunkKind = 'code' | 'docs' | 'tests';
export const CHUNK_KINDS: readonly ChunkKind[] = ['code', 'docs', 'tests'];

const DOC_EXTENSIONS = /\.(md|markdown|mdx|rst|txt|adoc|asciidoc|org|text|rdoc|pod|tex)$/i;
/** A project's prose files that often have no extension (README, LICENSE, CHANGELOG...). */
const DOC_NAMES = /(^|\/)(readme|changelog|changes|history|license|licence|copying|contributing|authors|notice)$/i;
/** Test folders and the test-file conventions of the languages we chunk by syntax. */
const TEST_PATH = /(^|\/)(tests?|__tests__|spec|specs|testing)\/|(^|\/)test_[^/]+$|[._-](test|spec|tests)\.[a-z0-9]+$|_test\.go$|(^|\/)conftest\.py$/i;

export function kindOfPath(path: string): ChunkKind {
  const p = path.replace(/\\/g, '/');
  if (TEST_PATH.test(p)) return 'tests';
  if (DOC_EXTENSIONS.test(p) || DOC_NAMES.test(p) || /(^|\/)(docs?|documentation)\//i.test(p) && !/\.[cm]?[jt]sx?$|\.py$|\.go$/.test(p)) return 'docs';
  return 'code';
}

/** Configuration and data files (package.json, YAML, lock files, CSV): indexed, but rarely what a question is about. */
const DATA_PATH = /\.(json|jsonc|json5|jsonl|ndjson|ya?ml|toml|xml|csv|tsv|lock|ini|cfg|conf|properties|plist|svg)$|(^|\/)\.[^/]*rc$/i;

export function isDataPath(path: string): boolean {
  return DATA_PATH.test(path);
}

/**
 * Data and configuration chunks rank below code and prose of equal score: their scores are multiplied by
 * this (a package.json or a fixture matched many questions' words without answering any). Chosen on
 * the quality benchmark (BENCHMARKS.md).
 */
export const DATA_SCORE_FACTOR = 0.8;

/**
 * Test chunks likewise, a little more: a question is most often about the code, and a test that calls
 * the code repeats its words. Hand-written questions, hybrid MRR@10 on repo / Go / Python: × 1 → × 0.8
 * 0.512 / 0.564 / 0.721 → 0.526 / 0.606 / 0.738; with the `mix` fusion and header chunks standing for
 * their files, × 0.8 → × 0.7 0.586 / 0.636 / 0.777 → 0.587 / 0.643 / 0.777, and mined doc questions on
 * the repository reach keyword search's (BENCHMARKS.md). `--kind tests` still finds tests first.
 */
export const TEST_SCORE_FACTOR = 0.7;

/** How much a chunk's score counts by what it is (1 for code and prose). */
export function scoreFactorOfPath(path: string): number {
  if (isDataPath(path)) return DATA_SCORE_FACTOR;
  return kindOfPath(path) === 'tests' ? TEST_SCORE_FACTOR : 1;
}

/** `code,tests` → kinds; an unknown word is a clear error naming the choices. */
export function parseKinds(spec: string): ChunkKind[] {
  const kinds = spec.split(',').map((k) => k.trim().toLowerCase()).filter(Boolean);
  for (const k of kinds) {
    if (!(CHUNK_KINDS as readonly string[]).includes(k)) {
      throw new UserError(`Unknown kind "${k}".`, `Choose from ${CHUNK_KINDS.join(', ')} (comma-separated, e.g. --kind code,tests).`);
    }
  }
  if (!kinds.length) throw new UserError('No kind given.', `Choose from ${CHUNK_KINDS.join(', ')}.`);
  return [...new Set(kinds)] as ChunkKind[];
}
