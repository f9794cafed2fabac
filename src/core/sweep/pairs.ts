// Query → target pairs mined from a workspace, with no labels: what a user might type next to the text
// that answers it. Four kinds, all taken from the code's own structure:
//
//   doc      a doc comment / docstring → the declaration it documents (the comment removed from it)
//   name     a function or class name split into words (`getUserName` → "get user name") → its body
//   heading  a Markdown heading → its section
//   test     a test's name (`test('…')`, `it('…')`, `def test_…`, `func TestX`) → the test body
//
// Declarations are found with the same tree-sitter grammars the chunker uses (core/index/treeSitter).
// Pairs are deduplicated, trivial ones (the target contains the query verbatim) dropped, and a seeded
// round-robin over files picks at most N, so one big file cannot fill the sample.
import type { Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import { proseBreaks } from '../index/chunk';
import { discoverFiles, readIndexableText, type DiscoverOptions } from '../index/files';
import { grammarForPath, TreeSitterGrammars } from '../index/treeSitter';
import { UserError, type Logger } from '../types';
import { seededRandom } from '../random';

export type PairKind = 'doc' | 'name' | 'heading' | 'test';
export const PAIR_KINDS: readonly PairKind[] = ['doc', 'name', 'heading', 'test'];

export interface Pair {
  kind: PairKind;
  query: string;
  target: string;
  /** File of the target, relative to the root, `/`-separated. */
  path: string;
  /** 1-based, inclusive: the lines the target was taken from (before the comment was removed). */
  startLine: number;
  endLine: number;
}

export interface MineOptions {
  /** At most this many pairs (default 300). */
  maxPairs?: number;
  /** Seed of the sample (default 1): the same seed on the same files gives the same pairs. */
  seed?: number;
  /** Targets longer than this are cut at a line boundary (default 1000 characters, about a 256-token chunk). */
  maxTargetChars?: number;
  /** Queries longer than this are cut at a word boundary (default 300 characters). */
  maxQueryChars?: number;
  discovery?: Omit<DiscoverOptions, 'signal' | 'logger'>;
  /** Folder of tree-sitter's .wasm files (see locateTreeSitterWasm). */
  treeSitterDir?: string;
  signal?: AbortSignal;
  onProgress?: (event: { filesDone: number; filesTotal: number }) => void;
  logger?: Logger;
}

export type KindCounts = Record<PairKind, number>;

export interface MinedPairs {
  pairs: Pair[];
  /** Usable pairs per kind before the cap (after dedupe and the trivial filter). */
  found: KindCounts;
  /** Pairs per kind in `pairs`. */
  used: KindCounts;
  /** Dropped because the target contains the query verbatim. */
  droppedTrivial: number;
  /** Dropped because the query or the target was already taken by another pair. */
  droppedDuplicate: number;
  /** Text files read, and how many of them gave at least one pair. */
  filesScanned: number;
  filesWithPairs: number;
  seed: number;
}

export const DEFAULT_MAX_PAIRS = 300;
const MIN_QUERY_LETTERS = 3;
/** Targets with fewer non-space characters say too little to be found by anything. */
const MIN_TARGET_CHARS = 20;
const MARKDOWN_EXTENSIONS = new Set(['md', 'markdown', 'mdx']);

/** `getUserName`, `get_user_name`, `HTTPServer2` → "get user name", "http server 2". */
export function splitIdentifier(name: string): string {
  return name
    .replace(/[$_\-.]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .replace(/([a-zA-Z])([0-9])/g, '$1 $2')
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ');
}

/** Lowercased, whitespace collapsed: how queries and targets are compared. */
function normalizeForCompare(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** True when the target contains the query verbatim (case-insensitive, whitespace-insensitive). */
export function isTrivialPair(query: string, target: string): boolean {
  return normalizeForCompare(target).includes(normalizeForCompare(query));
}

// ---------------------------------------------------------------------------------------------------
// Comments

const DIRECTIVE = /^(eslint|@ts-|prettier-|istanbul|c8 |noqa|type:|pylint|nolint|todo\b|fixme\b|xxx\b|hack\b|region\b|endregion\b|#region|#endregion|!)/i;

/** The words of a comment: markers, JSDoc tags and directives removed; '' when nothing is left. */
export function commentText(raw: string): string {
  const lines = raw
    .replace(/^\s*\/\*+!?/, '')
    .replace(/\*+\/\s*$/, '')
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^(\/\/[/!]?|#+!?|\*+|--)\s?/, '').trim());
  const kept: string[] = [];
  for (const line of lines) {
    if (/^@\w/.test(line)) break; // JSDoc / Javadoc tags: the description comes before them
    kept.push(line);
  }
  const text = kept.join(' ').replace(/\s+/g, ' ').trim();
  return DIRECTIVE.test(text) ? '' : text;
}

/** The text of a Python string literal without prefix and quotes. */
export function stringLiteralText(raw: string): string {
  const m = /^[rRuUbBfF]*("""|'''|"|'|`)([\s\S]*)\1$/.exec(raw.trim());
  return m ? m[2]! : raw;
}

// ---------------------------------------------------------------------------------------------------
// Declarations

/** Node types of documented, named things across the grammars we ship. */
export const DECLARATIONS = new Set([
  'function_declaration', 'generator_function_declaration', 'function_definition', 'function_item',
  'method_definition', 'method_declaration', 'method', 'singleton_method', 'constructor_declaration',
  'class_declaration', 'abstract_class_declaration', 'class_definition', 'class', 'module',
  'interface_declaration', 'enum_declaration', 'struct_declaration', 'record_declaration',
  'trait_item', 'struct_item', 'enum_item', 'mod_item', 'type_spec', 'variable_declarator',
]);
/** Wrappers whose comment sits above them, not above the declaration inside. */
const WRAPPERS = new Set([
  'export_statement', 'decorated_definition', 'lexical_declaration', 'variable_declaration',
  'type_declaration', 'ambient_declaration',
]);
const FUNCTION_VALUES = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);
const COMMENT = /comment/;
const SKIPPABLE_BETWEEN = /decorator|attribute|annotation/;

interface Candidate extends Pair {
  /** Identity of the declaration (path + byte range): one pair per declaration. */
  declaration: string;
}

export function nameOf(node: SyntaxNode): string | null {
  const name = node.childForFieldName('name');
  if (!name) return null;
  const text = name.text.trim();
  return /^[\p{L}_$][\p{L}\p{N}_$]*$/u.test(text) ? text : null;
}

/** The node whose preceding siblings hold the declaration's comment (export, decorators, `const`). */
export function outerOf(node: SyntaxNode): SyntaxNode {
  let outer = node;
  while (outer.parent && WRAPPERS.has(outer.parent.type)) {
    // `const a = () => 1, b = () => 2`: a comment above belongs to the statement, not to `a`.
    if (outer.type === 'variable_declarator' && outer.parent.namedChildren.filter((c) => c?.type === 'variable_declarator').length > 1) break;
    outer = outer.parent;
  }
  return outer;
}

/** Comment nodes right above `node` (contiguous, decorators allowed in between), top first. */
export function leadingComments(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  let row = node.startPosition.row;
  let prev = node.previousNamedSibling;
  while (prev) {
    const endRow = prev.endPosition.row - (prev.text.endsWith('\n') ? 1 : 0);
    if (endRow < row - 1) break;
    if (COMMENT.test(prev.type)) out.unshift(prev);
    else if (!SKIPPABLE_BETWEEN.test(prev.type)) break;
    row = prev.startPosition.row;
    prev = prev.previousNamedSibling;
  }
  return out;
}

/** A Python docstring: the first statement of the body when it is a string. */
export function docstringOf(node: SyntaxNode): SyntaxNode | null {
  const body = node.childForFieldName('body');
  const first = body?.namedChildren[0];
  if (!first || first.type !== 'expression_statement') return null;
  const str = first.namedChildren[0];
  return str && str.type === 'string' && first.namedChildren.length === 1 ? first : null;
}

function isFunctionLike(node: SyntaxNode): boolean {
  return /function|method/.test(node.type);
}

/** The string a test call names its test with, or null (template strings with substitutions do not count). */
function testCallName(call: SyntaxNode): { name: string; body: SyntaxNode } | null {
  const fn = call.childForFieldName('function');
  if (!fn) return null;
  const callee = fn.type === 'member_expression' ? fn.childForFieldName('object') : fn;
  if (!callee || !/^(test|it)$/.test(callee.text)) return null;
  const args = call.childForFieldName('arguments')?.namedChildren ?? [];
  const [title, callback] = [args[0], args[1]];
  if (!title || !callback || !FUNCTION_VALUES.has(callback.type)) return null;
  if (title.type !== 'string' && !(title.type === 'template_string' && !title.namedChildren.some((c) => c?.type === 'template_substitution'))) return null;
  const body = callback.childForFieldName('body');
  return body ? { name: stringLiteralText(title.text), body } : null;
}

/** Test function names: `test_parses_url`, `testParsesUrl`, Go's `TestParsesURL`. */
function testFunctionWords(name: string): string | null {
  const m = /^test_?(.+)$/i.exec(name);
  if (!m || !/^[A-Z_]/.test(m[1]!) && !name.startsWith('test_')) return null;
  return splitIdentifier(m[1]!);
}

interface Source {
  path: string;
  text: string;
  /** Byte (UTF-16 index) of each line start, for line numbers of sliced ranges. */
  lineStarts: number[];
}

function lineOfIndex(src: Source, index: number): number {
  let lo = 0;
  let hi = src.lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (src.lineStarts[mid]! <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/** `text` without the range [cut0, cut1), and without the blank line the cut would leave. */
function cutOut(text: string, cut0: number, cut1: number): string {
  const before = text.slice(0, cut0).replace(/[ \t]+$/, '');
  const after = text.slice(cut1).replace(/^[ \t]*\r?\n/, '');
  return before + (before.endsWith('\n') || !before ? '' : '\n') + after.replace(/^\s*\n/, '');
}

function codeCandidates(src: Source, root: SyntaxNode): Candidate[] {
  const out: Candidate[] = [];
  const add = (kind: PairKind, query: string, start: number, end: number, target: string, declaration: SyntaxNode) => {
    out.push({
      kind,
      query,
      target,
      path: src.path,
      startLine: lineOfIndex(src, start),
      endLine: lineOfIndex(src, Math.max(start, end - 1)),
      declaration: `${src.path}@${declaration.startIndex}-${declaration.endIndex}`,
    });
  };
  const visit = (node: SyntaxNode, depth: number): void => {
    if (depth > 40) return;
    for (const child of node.namedChildren) {
      if (!child) continue;
      if (child.type === 'call_expression') {
        const t = testCallName(child);
        if (t) add('test', t.name, t.body.startIndex, t.body.endIndex, t.body.text, child);
      }
      if (DECLARATIONS.has(child.type)) declaration(child);
      visit(child, depth + 1);
    }
  };
  const declaration = (node: SyntaxNode): void => {
    if (node.type === 'variable_declarator' && !FUNCTION_VALUES.has(node.childForFieldName('value')?.type ?? '')) return;
    const outer = outerOf(node);
    const name = nameOf(node);
    // doc → the declaration without its comment
    const comments = leadingComments(outer);
    if (comments.length) {
      const query = commentText(comments.map((c) => c.text).join('\n'));
      if (query) add('doc', query, outer.startIndex, outer.endIndex, outer.text, node);
    } else {
      const doc = docstringOf(node);
      const query = doc ? commentText(stringLiteralText(doc.text)) : '';
      if (doc && query) {
        const base = outer.startIndex;
        add('doc', query, base, outer.endIndex, cutOut(outer.text, doc.startIndex - base, doc.endIndex - base), node);
      }
    }
    if (!name || name.startsWith('__') || name === 'constructor') return;
    const value = node.type === 'variable_declarator' ? node.childForFieldName('value') : node;
    const body = value?.childForFieldName('body') ?? (node.type === 'type_spec' ? node.childForFieldName('type') : null);
    if (!body) return;
    const testWords = isFunctionLike(value ?? node) || node.type === 'variable_declarator' ? testFunctionWords(name) : null;
    if (testWords) add('test', testWords, body.startIndex, body.endIndex, body.text, node);
    else add('name', splitIdentifier(name), body.startIndex, body.endIndex, body.text, node);
  };
  visit(root, 0);
  return out;
}

/** Markdown: each heading → the text under it, up to the next heading (code fences respected). */
export function headingCandidates(path: string, text: string): Candidate[] {
  const lines = text.split(/\r?\n/);
  const breaks = proseBreaks(lines);
  const headings: number[] = [];
  breaks.forEach((d, i) => { if (d < 6) headings.push(i); });
  return headings.map((row, k) => {
    const end = (headings[k + 1] ?? lines.length) - 1;
    const query = lines[row]!.trim().replace(/^#{1,6}\s+/, '').replace(/\s+#+\s*$/, '').trim();
    let last = end;
    while (last > row && !lines[last]!.trim()) last--;
    const target = lines.slice(row + 1, last + 1).join('\n').replace(/^\s*\n/, '');
    return { kind: 'heading' as const, query, target, path, startLine: row + 2, endLine: last + 1, declaration: `${path}#${row}` };
  });
}

function extensionOf(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

/** Cuts at the last line (or, for a single long line, word) boundary before `max` characters. */
function clip(text: string, max: number, at: '\n' | ' '): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(at, max);
  return (cut > max / 2 ? text.slice(0, cut) : text.slice(0, max)).trimEnd();
}

function letters(text: string): number {
  return (text.match(/\p{L}/gu) ?? []).length;
}

// ---------------------------------------------------------------------------------------------------
// Sampling


function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function emptyCounts(): KindCounts {
  return { doc: 0, name: 0, heading: 0, test: 0 };
}

/** Kinds preferred when one declaration yields several pairs (natural language first). */
const KIND_PRIORITY: Record<PairKind, number> = { doc: 0, heading: 0, test: 1, name: 2 };

/**
 * Cleans, filters and samples candidates (in file order). One pair per declaration: a doc pair and a
 * name pair of the same function would have near-identical targets and blur each other's ranks.
 */
export function selectPairs(candidates: Candidate[], options: { maxPairs: number; seed: number; maxTargetChars: number; maxQueryChars: number }): Omit<MinedPairs, 'filesScanned'> {
  if (!Number.isInteger(options.maxPairs) || options.maxPairs < 1) {
    throw new UserError(`The number of pairs must be a positive integer, got ${options.maxPairs}.`);
  }
  const byDeclaration = new Map<string, Candidate>();
  let droppedTrivial = 0;
  for (const c of candidates) {
    const query = clip(c.query.replace(/\s+/g, ' ').trim(), options.maxQueryChars, ' ');
    const target = clip(c.target.replace(/\s+$/, ''), options.maxTargetChars, '\n');
    if (letters(query) < MIN_QUERY_LETTERS || target.replace(/\s/g, '').length < MIN_TARGET_CHARS) continue;
    if (isTrivialPair(query, target)) { droppedTrivial++; continue; }
    const held = byDeclaration.get(c.declaration);
    if (!held || KIND_PRIORITY[c.kind] < KIND_PRIORITY[held.kind]) byDeclaration.set(c.declaration, { ...c, query, target });
  }
  const seenQuery = new Set<string>();
  const seenTarget = new Set<string>();
  const perFile = new Map<string, Candidate[]>();
  const found = emptyCounts();
  let droppedDuplicate = 0;
  for (const c of byDeclaration.values()) {
    const q = normalizeForCompare(c.query);
    const t = normalizeForCompare(c.target);
    if (seenQuery.has(q) || seenTarget.has(t)) { droppedDuplicate++; continue; }
    seenQuery.add(q);
    seenTarget.add(t);
    found[c.kind]++;
    let list = perFile.get(c.path);
    if (!list) perFile.set(c.path, (list = []));
    list.push(c);
  }
  // Seeded round-robin over files: every file gives one pair before any gives a second.
  const random = seededRandom(options.seed);
  const files = shuffle([...perFile.keys()].sort(), random).map((p) => shuffle(perFile.get(p)!, random));
  const pairs: Pair[] = [];
  for (let round = 0; pairs.length < options.maxPairs; round++) {
    let took = false;
    for (const list of files) {
      const c = list[round];
      if (!c) continue;
      took = true;
      const { declaration: _declaration, ...pair } = c;
      pairs.push(pair);
      if (pairs.length >= options.maxPairs) break;
    }
    if (!took) break;
  }
  const used = emptyCounts();
  for (const p of pairs) used[p.kind]++;
  return { pairs, found, used, droppedTrivial, droppedDuplicate, filesWithPairs: perFile.size, seed: options.seed };
}

/** Raw candidates of one file (before cleaning and sampling); `grammars` null = Markdown only. */
export async function fileCandidates(path: string, text: string, grammars: TreeSitterGrammars | null): Promise<Candidate[]> {
  if (MARKDOWN_EXTENSIONS.has(extensionOf(path))) return headingCandidates(path, text);
  const grammar = grammarForPath(path);
  if (!grammar || !grammars) return [];
  const language = await grammars.language(grammar);
  if (!language) return [];
  const tree = grammars.parserFor(language).parse(text);
  if (!tree) return [];
  try {
    const lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
    return codeCandidates({ path, text, lineStarts }, tree.rootNode);
  } finally {
    tree.delete();
  }
}

/** Mines query → target pairs from the text files under `root` (ignore rules as the indexer's). */
export async function minePairs(root: string, options: MineOptions = {}): Promise<MinedPairs> {
  const maxPairs = options.maxPairs ?? DEFAULT_MAX_PAIRS;
  if (!Number.isInteger(maxPairs) || maxPairs < 1) throw new UserError(`The number of pairs must be a positive integer, got ${maxPairs}.`);
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw new UserError(`The seed must be an integer, got ${seed}.`);
  const discovery = await discoverFiles(root, { ...options.discovery, signal: options.signal, logger: options.logger });
  const wanted = discovery.files.filter((f) => MARKDOWN_EXTENSIONS.has(extensionOf(f.path)) || grammarForPath(f.path));
  let grammars: TreeSitterGrammars | null = null;
  if (wanted.some((f) => grammarForPath(f.path))) {
    try {
      grammars = await TreeSitterGrammars.load(options.treeSitterDir);
    } catch (err) {
      // Not silent: Markdown pairs are still mined, and the log says why code gave none.
      options.logger?.warn(`Tree-sitter unavailable, no pairs from code: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const candidates: Candidate[] = [];
  let filesScanned = 0;
  for (const [i, file] of wanted.entries()) {
    options.signal?.throwIfAborted();
    const read = await readIndexableText(file.absPath, { maxFileBytes: options.discovery?.maxFileBytes });
    if (read.ok) {
      filesScanned++;
      candidates.push(...(await fileCandidates(file.path, read.text, grammars)));
    }
    options.onProgress?.({ filesDone: i + 1, filesTotal: wanted.length });
  }
  const selected = selectPairs(candidates, {
    maxPairs,
    seed,
    maxTargetChars: options.maxTargetChars ?? 1000,
    maxQueryChars: options.maxQueryChars ?? 300,
  });
  if (!selected.pairs.length) {
    throw new UserError(
      `No query → target pairs found under "${root}" (${filesScanned} code or Markdown files read).`,
      'The sweep needs documented functions, named functions or classes, Markdown sections or tests; point it at a folder with source code.',
    );
  }
  return { ...selected, filesScanned };
}
