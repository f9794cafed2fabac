// Chunking: a file's text → chunks with exact 1-based line ranges, bounded by a token budget.
//
// Every line boundary gets a "break depth": how deep in the structure a cut there would fall
// (0 = between top-level declarations). Code uses the syntax tree (tree-sitter) when a grammar exists,
// otherwise indentation, brackets and blank lines; Markdown uses heading levels and paragraphs.
// Chunks are then packed greedily: grow until the budget, cut at the shallowest break in reach (the
// latest among equals), so whole declarations stay together and small ones share a chunk. A cut that
// falls inside a declaration repeats a few lines in the next chunk (overlap) so no context is lost.
import type { Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import type { Logger } from '../types';
import { hashText } from './files';
import { grammarForPath, TreeSitterGrammars } from './treeSitter';

export interface Chunk {
  /** Stable id: path, line range and content hash. */
  id: string;
  path: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
  text: string;
  /** hashText(text): what the file's lines must hash to for the chunk to be current. */
  contentHash: string;
  /**
   * Short header embedded (and keyword-indexed) with the text, never shown: the file path, then the
   * enclosing declarations (`Class > method`) for code or the heading trail for prose.
   */
  context: string;
  /** When the chunk is a piece of one named function or method: that declaration's lines (1-based), its comments included. */
  unit?: { startLine: number; endLine: number };
  /** True when the chunk lies in the file's header (its leading comments, imports, package line, module docstring) above the first code, or is the first chunk of several and opens with the file's description (2+ comment lines). */
  header?: true;
}

export type TokenEstimator = (text: string) => number;

/** Rough token count of BERT-like tokenizers: punctuation is one token each, words one or more. */
export function roughTokenCount(text: string): number {
  let count = 0;
  let wordLen = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127;
    if (alnum) {
      wordLen++;
      continue;
    }
    if (wordLen) { count += 1 + Math.floor((wordLen - 1) / 6); wordLen = 0; }
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) count++;
  }
  if (wordLen) count += 1 + Math.floor((wordLen - 1) / 6);
  return count;
}

/**
 * A token estimator calibrated against the model's own tokenizer: one countTokens call on samples,
 * then a linear scale of roughTokenCount (kept conservative by 10%).
 */
export async function calibrateTokenEstimator(
  countTokens: (texts: string[]) => Promise<number[]>,
  samples: string[],
): Promise<{ estimate: TokenEstimator; scale: number }> {
  const picked = samples.filter((s) => s.trim()).slice(0, 64).map((s) => s.slice(0, 4000));
  let scale = 1.15;
  if (picked.length) {
    const exact = await countTokens(picked);
    let exactSum = 0;
    let roughSum = 0;
    picked.forEach((s, i) => { exactSum += Math.max(0, exact[i]! - 2); roughSum += roughTokenCount(s); });
    if (roughSum > 0 && exactSum > 0) scale = Math.min(4, Math.max(0.25, (exactSum / roughSum) * 1.1));
  }
  return { scale, estimate: (text) => Math.ceil(roughTokenCount(text) * scale) };
}

export interface ChunkOptions {
  /** Token budget of one chunk (model tokens, special tokens excluded). Default 256. */
  maxTokens?: number;
  /** Lines repeated when a cut falls inside a structure. Default 0 (overlapping results repeat lines). */
  overlapLines?: number;
  estimateTokens?: TokenEstimator;
  /** Parse code with tree-sitter when a grammar exists. Default true. */
  useTreeSitter?: boolean;
  /** Folder of tree-sitter's .wasm files (see locateTreeSitterWasm). */
  treeSitterDir?: string;
  /** What the context header holds: `path` (file path + enclosing names, default), `names` (enclosing names only), `none`. */
  context?: ChunkContext;
  /** Add the file's own description (its leading comment or module docstring, first sentence) to every code chunk's header. */
  fileSummary?: boolean;
  logger?: Logger;
}

export type ChunkContext = 'path' | 'names' | 'none';

const NO_BREAK = 1000;
const PROSE_EXTENSIONS = new Set(['md', 'markdown', 'mdx', 'txt', 'rst', 'adoc', 'org', 'text']);

function extensionOf(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

function indentOf(line: string): number {
  let n = 0;
  for (const ch of line) {
    if (ch === ' ') n++;
    else if (ch === '\t') n += 4;
    else break;
  }
  return n;
}

/** Break depths from indentation, brackets and blank lines (any language). */
export function indentationBreaks(lines: string[]): number[] {
  const depth = new Array<number>(lines.length).fill(NO_BREAK);
  const indents = lines.filter((l) => l.trim()).map(indentOf).filter((n) => n > 0);
  const unit = indents.length ? Math.max(1, Math.min(...indents)) : 2;
  let prevBlank = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const trimmed = line.trim();
    if (!trimmed) { prevBlank = true; continue; }
    // Never cut just before a closing bracket or an `end`/`else` that belongs to the lines above.
    if (!/^[)\]}]|^(end|else|elif|except|finally|catch)\b/.test(trimmed)) {
      depth[i] = Math.round(indentOf(line) / unit) * 2 + (prevBlank ? 0 : 1);
    }
    prevBlank = false;
  }
  return depth;
}

/** Break depths for Markdown-like prose: headings by level, then paragraphs, then lines. */
export function proseBreaks(lines: string[]): number[] {
  const depth = new Array<number>(lines.length).fill(NO_BREAK);
  let prevBlank = true;
  let inFence = false;
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i]!.trim();
    if (/^(```|~~~)/.test(trimmed)) {
      if (!inFence) depth[i] = prevBlank ? 8 : 9;
      inFence = !inFence;
      prevBlank = false;
      continue;
    }
    if (!trimmed) { prevBlank = true; continue; }
    const heading = !inFence && /^(#{1,6})\s/.exec(trimmed);
    if (heading) depth[i] = heading[1]!.length - 1;
    else if (inFence) depth[i] = prevBlank ? 9 : 12;
    else depth[i] = prevBlank ? 8 : 10;
    prevBlank = false;
  }
  return depth;
}

const COMMENT_TYPES = /comment|decorator|attribute|annotation/;

// Break costs of syntax-aware chunking (lower = a better place to cut). Between declarations is best,
// the shallower the better; between statements of a module or class body is next; inside a function
// body is a last resort, taken only when one function alone is over the budget. A comment or decorator
// run is glued to what follows it (the cut goes above the comment), so a declaration keeps its doc.
const DECLARATION_TYPES = new Set([
  'function_declaration', 'generator_function_declaration', 'function_definition', 'function_item',
  'method_definition', 'method_declaration', 'method', 'singleton_method', 'constructor_declaration',
  'class_declaration', 'abstract_class_declaration', 'class_definition', 'class', 'module',
  'interface_declaration', 'enum_declaration', 'struct_declaration', 'record_declaration', 'impl_item',
  'trait_item', 'struct_item', 'enum_item', 'mod_item', 'type_alias_declaration', 'type_declaration',
  'namespace_declaration', 'internal_module', 'decorated_definition', 'public_field_definition',
]);
/** Nodes that wrap a declaration (export, const = arrow function, ...): the wrapper is the unit. */
const WRAPPER_TYPES = new Set(['export_statement', 'lexical_declaration', 'variable_declaration', 'ambient_declaration', 'expression_statement']);
const FUNCTION_TYPES = /function|method|arrow|lambda|constructor/;
const COST_DECLARATION = 0;
const COST_STATEMENT = 6;
const COST_PER_NESTING = 10;
const COST_IN_FUNCTION = 100;
const COST_FALLBACK = 300;

/**
 * Nodes whose children are statements or members (a file, a class body, a function body): only their
 * children's starts are clean cuts. Children of expressions (array items, arguments, union members)
 * are not, and keep the fallback cost.
 */
const BLOCK_LIKE = /(^|_)(program|module|source_file|translation_unit|compilation_unit|block|body|suite|declaration_list|compound_statement)$/;

function isDeclaration(node: SyntaxNode): boolean {
  if (DECLARATION_TYPES.has(node.type)) return true;
  if (!WRAPPER_TYPES.has(node.type)) return false;
  // `export function f`, `export class C`, `const f = () => {…}`, `module.exports.f = function…`
  for (const child of node.namedChildren) {
    if (!child) continue;
    if (DECLARATION_TYPES.has(child.type)) return true;
    if (child.type === 'variable_declarator' || child.type === 'assignment_expression') {
      const value = child.childForFieldName('value') ?? child.childForFieldName('right');
      if (value && FUNCTION_TYPES.test(value.type)) return true;
    }
    if (WRAPPER_TYPES.has(child.type) && isDeclaration(child)) return true;
  }
  return false;
}

/** Break costs from a syntax tree, per line boundary (the cost of starting a chunk at that line). */
export function syntaxBreaks(root: SyntaxNode, lines: string[]): number[] {
  // Background: indentation rules, far costlier than any syntax boundary (long literals, odd trees).
  const cost = indentationBreaks(lines).map((d) => (d === NO_BREAK ? NO_BREAK : COST_FALLBACK + d));
  const startsLine = (n: SyntaxNode) => {
    const line = lines[n.startPosition.row];
    return line !== undefined && n.startPosition.column <= indentOf(line);
  };
  const visit = (node: SyntaxNode, nesting: number, inFunction: boolean, depth: number): void => {
    if (depth > 40) return;
    const children = node.namedChildren.filter((c): c is SyntaxNode => !!c);
    const statements = depth === 0 || BLOCK_LIKE.test(node.type) || WRAPPER_TYPES.has(node.type);
    for (let k = 0; k < children.length; k++) {
      const child = children[k]!;
      const row = child.startPosition.row;
      if (statements && COMMENT_TYPES.test(child.type)) {
        // Part of the lead of the next sibling that starts on the next line (or right after): no cut
        // between them. A comment with nothing below it costs like a statement.
        const next = children[k + 1];
        if (next && next.startPosition.row <= child.endPosition.row + 1 && startsLine(child)) {
          cost[next.startPosition.row] = NO_BREAK;
          for (let r = row + 1; r <= child.endPosition.row; r++) cost[r] = NO_BREAK;
        }
      }
      // The lead: contiguous comments / decorators above this child (the cut goes above them).
      let lead = k;
      while (lead > 0) {
        const prev = children[lead - 1]!;
        if (!COMMENT_TYPES.test(prev.type) || !startsLine(prev) || prev.endPosition.row < children[lead]!.startPosition.row - 1) break;
        lead--;
      }
      const leadNode = children[lead]!;
      const decl = isDeclaration(child);
      const base = inFunction
        ? COST_IN_FUNCTION + COST_PER_NESTING * nesting
        : COST_PER_NESTING * nesting + (decl ? COST_DECLARATION : COST_STATEMENT);
      if (statements && (!COMMENT_TYPES.test(child.type) || lead !== k)) {
        const at = leadNode.startPosition.row;
        if (startsLine(leadNode) && at > 0) {
          const blankBefore = !lines[at - 1]!.trim();
          cost[at] = Math.min(cost[at]!, base + (blankBefore ? 0 : 1));
        }
      }
      if (child.endPosition.row > child.startPosition.row) {
        const fn = FUNCTION_TYPES.test(child.type) && !/class/.test(child.type);
        const isDeclNode = DECLARATION_TYPES.has(child.type) && child.type !== 'decorated_definition';
        visit(child, nesting + (isDeclNode ? 1 : 0), inFunction || fn, depth + 1);
      }
    }
  };
  visit(root, 0, false, 0);
  cost[0] = 0;
  return cost;
}

/** Packs lines into chunks: grow to the budget, cut at the cheapest break in reach (the latest among equals). */
export function packLines(
  lines: string[],
  breaks: number[],
  budget: number,
  estimate: TokenEstimator,
  overlapLines = 0,
): Array<{ start: number; end: number }> {
  const tokens = lines.map((l) => estimate(l) + 1);
  const ranges: Array<{ start: number; end: number }> = [];
  const isBlank = (i: number) => !lines[i]!.trim();
  let start = 0;
  while (start < lines.length) {
    while (start < lines.length && isBlank(start)) start++;
    if (start >= lines.length) break;
    // Furthest end within the budget (always at least one line).
    let sum = tokens[start]!;
    let reach = start + 1;
    while (reach < lines.length && sum + tokens[reach]! <= budget) sum += tokens[reach++]!;
    let cut = reach; // chunk is [start, cut)
    if (reach < lines.length) {
      let best = Infinity;
      for (let i = reach; i > start; i--) {
        if (breaks[i]! >= NO_BREAK) continue;
        if (breaks[i]! < best) { best = breaks[i]!; cut = i; }
      }
    }
    let end = cut - 1;
    while (end > start && isBlank(end)) end--;
    ranges.push({ start, end });
    if (cut >= lines.length) break;
    // Optional overlap for line-based text (never used for code: overlapping results repeat lines).
    let next = cut;
    if (overlapLines > 0 && (breaks[cut] ?? NO_BREAK) > 0) {
      let overlapTokens = 0;
      while (next > start + 1 && cut - next < overlapLines && overlapTokens + tokens[next - 1]! <= budget * 0.15) {
        overlapTokens += tokens[--next]!;
      }
    }
    start = next;
  }
  return mergeTinyRanges(ranges, lines);
}

/** Chunks of fewer than MIN_CHUNK_LINES non-blank lines join a neighbour (the smaller one). */
const MIN_CHUNK_LINES = 3;

function mergeTinyRanges(ranges: Array<{ start: number; end: number }>, lines: string[]): Array<{ start: number; end: number }> {
  const size = (r: { start: number; end: number }) => lines.slice(r.start, r.end + 1).filter((l) => l.trim()).length;
  const out = ranges.map((r) => ({ ...r }));
  for (let i = 0; i < out.length && out.length > 1;) {
    if (size(out[i]!) >= MIN_CHUNK_LINES || out[i]!.start < (out[i - 1]?.end ?? -1)) { i++; continue; }
    const prev = out[i - 1];
    const next = out[i + 1];
    // Join the following chunk (a small lead-in belongs to what comes after) unless there is none.
    if (next && (!prev || size(next) <= size(prev) || lines[out[i]!.start]!.search(/\S/) <= lines[next.start]!.search(/\S/))) {
      next.start = out[i]!.start;
    } else if (prev) {
      prev.end = out[i]!.end;
    } else { i++; continue; }
    out.splice(i, 1);
  }
  return out;
}

export function chunkId(path: string, startLine: number, endLine: number, contentHash: string, unit?: { startLine: number; endLine: number }, header?: boolean): string {
  return `${path}#L${startLine}-L${endLine}${header ? '~H' : ''}${unit ? `~L${unit.startLine}-L${unit.endLine}` : ''}@${contentHash}`;
}

/** Whether a chunk id is of a header chunk (chunkId's `~H`): the file's leading comments and imports, or a first chunk that opens with the file's description. */
export function isHeaderId(id: string): boolean {
  return /~H(~L\d+-L\d+)?@[^@]*$/.test(id);
}

/**
 * The declaration a chunk is a piece of, from its id (chunkId's `~L<start>-L<end>`), or null. Kept in the
 * id so every store (local segments, PostgreSQL) carries it without a field of its own.
 */
export function unitOfId(id: string): { startLine: number; endLine: number } | null {
  const m = /~L(\d+)-L(\d+)@[^@]*$/.exec(id);
  return m ? { startLine: Number(m[1]), endLine: Number(m[2]) } : null;
}

/** The hash part of a chunk id: of what was embedded (context header + text), so equal hashes mean equal vectors. */
export function embedHashOfId(id: string): string {
  return id.slice(id.lastIndexOf('@') + 1);
}

/** What the model and the keyword index see: the context header, then the chunk's own lines. */
export function embedTextOf(chunk: Pick<Chunk, 'context' | 'text'>): string {
  return chunk.context ? `${chunk.context}\n${chunk.text}` : chunk.text;
}

/**
 * What the keyword index sees: the names of the declarations the chunk sits in (or the heading trail
 * of prose), then the chunk's own lines. The path is its own field of the keyword index. A method's
 * later chunks then still match its class and method names (hand-written questions, BM25 MRR@10
 * 0.333 → 0.391 on this repository; BENCHMARKS.md).
 */
export function lexicalTextOf(chunk: Pick<Chunk, 'path' | 'context' | 'text'>): string {
  const trail = chunk.context.split('\n')[0] ?? '';
  const names = (trail.startsWith(chunk.path) ? trail.slice(chunk.path.length) : trail).split(' > ').filter((n) => n.trim());
  return names.length ? `${names.join(' ')}\n${chunk.text}` : chunk.text;
}

/**
 * Named functions and methods (with their leading comments and decorators), 0-based rows: a chunk that
 * is a piece of one of them (a long function cut under the budget, or its doc comment alone) is shown
 * as the whole declaration in search results (see unitOfId).
 */
function functionSpans(root: SyntaxNode, lines: string[]): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  const named = (node: SyntaxNode) => {
    if (/^(function_declaration|generator_function_declaration|function_definition|function_item|method_definition|method_declaration|method|singleton_method|constructor_declaration)$/.test(node.type)) return true;
    // `const f = () => {…}`, `f = function…`, `{ f: () => … }`, class fields holding a function.
    return FUNCTION_TYPES.test(node.type) && !!node.parent && /^(variable_declarator|assignment_expression|pair|public_field_definition|field_definition)$/.test(node.parent.type);
  };
  const visit = (node: SyntaxNode, depth: number) => {
    if (depth > 60) return;
    for (const child of node.namedChildren) {
      if (!child) continue;
      if (child.endPosition.row > child.startPosition.row && named(child)) {
        let outer = child;
        while (outer.parent && (WRAPPER_TYPES.has(outer.parent.type) || /^(decorated_definition|variable_declarator|assignment_expression|pair|public_field_definition|field_definition)$/.test(outer.parent.type))) outer = outer.parent;
        let start = outer.startPosition.row;
        for (let prev = outer.previousNamedSibling; prev && COMMENT_TYPES.test(prev.type) && prev.endPosition.row >= start - 1; prev = prev.previousNamedSibling) {
          const line = lines[prev.startPosition.row];
          if (line === undefined || prev.startPosition.column > indentOf(line)) break;
          start = prev.startPosition.row;
        }
        out.push({ start, end: child.endPosition.row });
      }
      visit(child, depth + 1);
    }
  };
  visit(root, 0);
  return out;
}

/** Top-level nodes that make a file's header: comments, imports and the package line. */
const HEADER_TYPES = /comment|^(import_statement|import_from_statement|future_import_statement|import_declaration|package_clause|package_declaration|use_declaration|preproc_include|using_directive|extern_crate_declaration|shebang|hash_bang_line)$/;

/**
 * The first row (0-based) of a file's code: above it only comments, imports, the package line and
 * string statements (a module docstring, 'use strict'). Chunks that end above it are header chunks.
 */
export function headerEndRow(root: SyntaxNode): number {
  for (const child of root.namedChildren) {
    if (!child || HEADER_TYPES.test(child.type)) continue;
    if (child.type === 'expression_statement' && child.namedChildren.length === 1 && /^string$/.test(child.namedChildren[0]?.type ?? '')) continue;
    return child.startPosition.row;
  }
  return Infinity;
}

/** Lines of the comment run or docstring a file opens with (0 when it opens with anything else). */
export function leadingCommentLines(root: SyntaxNode): number {
  const children = root.namedChildren.filter((c): c is SyntaxNode => !!c);
  const first = children[0];
  if (!first || !(/comment/.test(first.type) || (first.type === 'expression_statement' && first.namedChildren[0]?.type === 'string'))) return 0;
  let end = first.endPosition.row;
  if (/comment/.test(first.type)) {
    for (const c of children.slice(1)) {
      if (!/comment/.test(c.type) || c.startPosition.row > end + 1) break;
      end = c.endPosition.row;
    }
  }
  return end - first.startPosition.row + 1;
}

/** Spans of named declarations (0-based rows), outermost first: the enclosing names of a chunk. */
interface NamedSpan { start: number; end: number; name: string }

function namedSpans(root: SyntaxNode): NamedSpan[] {
  const out: NamedSpan[] = [];
  const visit = (node: SyntaxNode, depth: number) => {
    if (depth > 40) return;
    for (const child of node.namedChildren) {
      if (!child || child.endPosition.row === child.startPosition.row) continue;
      if (DECLARATION_TYPES.has(child.type) && child.type !== 'decorated_definition') {
        const name = child.childForFieldName('name')?.text;
        if (name && name.length <= 80 && !/\s/.test(name)) out.push({ start: child.startPosition.row, end: child.endPosition.row, name });
      }
      visit(child, depth + 1);
    }
  };
  visit(root, 0);
  return out;
}

/** Markdown heading trail above each line: the headings a reader passed to get there. */
function headingTrails(lines: string[]): Array<string[]> {
  const trail: Array<{ level: number; text: string }> = [];
  const out: Array<string[]> = [];
  let inFence = false;
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (/^(```|~~~)/.test(trimmed)) inFence = !inFence;
    const m = !inFence && /^(#{1,6})\s+(.+?)\s*#*$/.exec(trimmed);
    // A heading's own trail: the headings above it of a higher level (it is in the text itself).
    if (m) while (trail.length && trail[trail.length - 1]!.level >= m[1]!.length) trail.pop();
    out[i] = trail.map((h) => h.text);
    if (m) trail.push({ level: m[1]!.length, text: m[2]!.replace(/[`*_]/g, '') });
  });
  return out;
}

const NOT_A_DESCRIPTION = /copyright|licen[cs]e|spdx|all rights reserved|generated by|do not edit|eslint|@ts-|prettier|^!|^\s*$|^(go:|\+build|nolint|line \d|type:|pylint|noqa|flake8|mypy)/i;

/**
 * What a code file says it is: the first sentence of its leading comment block or module docstring
 * (license headers, tool directives and shebangs skipped), at most ~160 characters; '' when it has none.
 */
export function fileDescription(lines: string[]): string {
  let i = 0;
  while (i < lines.length && i < 200) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#!') || /^['"]use strict['"];?$/.test(line) || /^#.*-\*-.*-\*-/.test(line)) { i++; continue; }
    let text: string;
    const doc = /^[rRuUbB]?("""|''')/.exec(line);
    if (doc) {
      // A Python module docstring.
      const quote = doc[1]!;
      const first = line.slice(line.indexOf(quote) + 3);
      const parts = [first.includes(quote) ? first.slice(0, first.indexOf(quote)) : first];
      if (!first.includes(quote)) {
        for (i++; i < lines.length && !lines[i]!.includes(quote); i++) parts.push(lines[i]!);
        if (i < lines.length) parts.push(lines[i]!.slice(0, lines[i]!.indexOf(quote)));
      }
      i++;
      text = parts.join(' ');
    } else if (line.startsWith('/*')) {
      // A block comment, to its end (inner lines need no marker).
      const parts: string[] = [];
      for (; i < lines.length; i++) {
        const l = lines[i]!;
        parts.push(l.trim().replace(/^\/\*+!?|^\*+(?!\/)/, '').replace(/\*+\/.*$/, ''));
        if (l.includes('*/') && (i > 0 || l.indexOf('*/') > l.indexOf('/*'))) { i++; break; }
      }
      text = parts.join(' ');
    } else if (/^(\/\/|#|\*|--)/.test(line)) {
      const parts: string[] = [];
      for (; i < lines.length && /^\s*(\/\/|#|\/\*|\*|--)/.test(lines[i]!); i++) {
        parts.push(lines[i]!.trim().replace(/^(\/\/[/!]?|#+|\/\*+!?|\*+\/?|--)\s?/, '').replace(/\*+\/\s*$/, ''));
      }
      text = parts.join(' ');
    } else {
      return '';
    }
    text = text.replace(/\s+/g, ' ').trim();
    if (!NOT_A_DESCRIPTION.test(text)) {
      const m = /^(.+?[.!?])(\s|$)/.exec(text);
      let sentence = m ? m[1]! : text;
      if (sentence.length > 160) sentence = sentence.slice(0, sentence.lastIndexOf(' ', 160) > 80 ? sentence.lastIndexOf(' ', 160) : 160);
      return sentence;
    }
  }
  return '';
}

/** Turns 0-based line ranges into chunks with their context header. */
function toChunks(path: string, lines: string[], ranges: Array<{ start: number; end: number }>, contextOf: (start: number) => string[], mode: ChunkContext, description = '', units: Array<{ start: number; end: number }> = [], codeRow = Infinity, leadLines = 0): Chunk[] {
  return ranges.map(({ start, end }) => {
    // The innermost function that holds the whole chunk and more than it.
    let unit: { start: number; end: number } | undefined;
    for (const u of units) {
      if (u.start <= start && end <= u.end && (u.start < start || end < u.end) && (!unit || u.end - u.start < unit.end - unit.start)) unit = u;
    }
    const text = lines.slice(start, end + 1).join('\n');
    const contentHash = hashText(text);
    const trail = (mode === 'none' ? [] : mode === 'names' ? contextOf(start) : [path, ...contextOf(start)]).join(' > ');
    const context = description ? (trail ? `${trail}\n${description}` : description) : trail;
    const shown = unit ? { startLine: unit.start + 1, endLine: unit.end + 1 } : undefined;
    // A header chunk only when code follows (a file of comments alone is its own subject): one above the
    // first code, or the first chunk of several when it opens with the file's own description (a leading
    // comment or docstring of 2+ lines), whose words then speak for the whole file.
    const header = codeRow !== Infinity && (end < codeRow || (ranges.length > 1 && start === ranges[0]!.start && leadLines >= 2));
    const chunk: Chunk = { id: chunkId(path, start + 1, end + 1, context ? hashText(`${context}\n${text}`) : contentHash, shown, header), path, startLine: start + 1, endLine: end + 1, text, contentHash, context };
    if (shown) chunk.unit = shown;
    if (header) chunk.header = true;
    return chunk;
  });
}

/** Splits file texts into chunks; holds the tree-sitter grammars (loaded once, on first use). */
export class Chunker {
  readonly maxTokens: number;
  readonly overlapLines: number;
  private estimate: TokenEstimator;
  private grammars: Promise<TreeSitterGrammars | null> | null = null;

  constructor(private readonly options: ChunkOptions = {}) {
    this.maxTokens = options.maxTokens ?? 256;
    this.overlapLines = options.overlapLines ?? 0;
    this.estimate = options.estimateTokens ?? roughTokenCount;
  }

  setTokenEstimator(estimate: TokenEstimator): void {
    this.estimate = estimate;
  }

  private loadGrammars(): Promise<TreeSitterGrammars | null> {
    this.grammars ??= TreeSitterGrammars.load(this.options.treeSitterDir).catch((err: unknown) => {
      // Not silent: chunking still works (indentation rules), and the log says why quality is lower.
      this.options.logger?.warn(`Tree-sitter unavailable, chunking by indentation instead: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    });
    return this.grammars;
  }

  /** How a file will be split: `syntax:<grammar>`, `prose` or `lines`. */
  strategyFor(path: string): string {
    if (PROSE_EXTENSIONS.has(extensionOf(path))) return 'prose';
    const grammar = this.options.useTreeSitter === false ? undefined : grammarForPath(path);
    return grammar ? `syntax:${grammar}` : 'lines';
  }

  async chunk(path: string, text: string): Promise<Chunk[]> {
    const lines = text.split(/\r?\n/);
    const strategy = this.strategyFor(path);
    let breaks: number[] | null = null;
    let contextOf: (start: number) => string[] = () => [];
    let units: Array<{ start: number; end: number }> = [];
    let codeRow = Infinity;
    let leadLines = 0;
    if (strategy === 'prose') {
      breaks = proseBreaks(lines);
      const trails = headingTrails(lines);
      contextOf = (start) => trails[start] ?? [];
    } else if (strategy.startsWith('syntax:')) {
      const grammars = await this.loadGrammars();
      const language = grammars ? await grammars.language(strategy.slice(7)) : null;
      if (grammars && language) {
        const tree = grammars.parserFor(language).parse(text);
        if (tree) {
          try {
            breaks = syntaxBreaks(tree.rootNode, lines);
            const spans = namedSpans(tree.rootNode);
            units = functionSpans(tree.rootNode, lines);
            codeRow = headerEndRow(tree.rootNode);
            leadLines = leadingCommentLines(tree.rootNode);
            // Declarations that started above the chunk and are still open at its first line.
            contextOf = (start) => spans.filter((s) => s.start < start && s.end >= start).map((s) => s.name);
          } finally {
            tree.delete();
          }
        }
      }
    }
    breaks ??= indentationBreaks(lines);
    // The header is embedded with the chunk: leave room for it in the budget.
    const mode = this.options.context ?? 'path';
    const description = mode !== 'none' && this.options.fileSummary && strategy !== 'prose' ? fileDescription(lines) : '';
    // The description is left out of the budget: chunks are cut where they would be without it, and the
    // model (512 positions) reads the few extra tokens.
    const budget = mode === 'none' ? this.maxTokens : Math.max(16, this.maxTokens - (mode === 'path' ? this.estimate(path) : 0) - 8);
    return toChunks(path, lines, packLines(lines, breaks, budget, this.estimate, this.overlapLines), contextOf, mode, description, units, codeRow, leadLines);
  }
}
