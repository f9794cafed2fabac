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
  /** hashText(text): equal content gets equal hashes wherever it lives (renames reuse vectors). */
  contentHash: string;
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
  /** Lines repeated when a cut falls inside a declaration. Default 2. */
  overlapLines?: number;
  estimateTokens?: TokenEstimator;
  /** Parse code with tree-sitter when a grammar exists. Default true. */
  useTreeSitter?: boolean;
  /** Folder of tree-sitter's .wasm files (see locateTreeSitterWasm). */
  treeSitterDir?: string;
  logger?: Logger;
}

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
/** Added to a break between a comment (or decorator) and the declaration right below it. */
const GLUED_PENALTY = 6;
/** Added to a break that would leave the chunk under 40% of its budget (tiny chunks search badly). */
const SMALL_CHUNK_PENALTY = 3;

/** Break depths from a syntax tree: a node starting a line sets the depth of that line's boundary. */
export function syntaxBreaks(root: SyntaxNode, lines: string[]): number[] {
  const depth = indentationBreaks(lines).map((d) => (d === NO_BREAK ? NO_BREAK : 20 + d));
  const visit = (node: SyntaxNode, level: number): void => {
    if (level > 8) return;
    const children = node.namedChildren;
    for (let k = 0; k < children.length; k++) {
      const child = children[k];
      if (!child) continue;
      const row = child.startPosition.row;
      const line = lines[row];
      // Only a node that is the first thing on its line makes a clean boundary.
      if (line !== undefined && child.startPosition.column <= indentOf(line)) {
        const prev = k > 0 ? children[k - 1] : null;
        // A comment or decorator right above a declaration belongs to it: cutting between them is worse.
        const glued = prev && COMMENT_TYPES.test(prev.type) && prev.endPosition.row >= row - 1 ? GLUED_PENALTY : 0;
        depth[row] = Math.min(depth[row]!, level * 2 + glued);
      }
      if (child.endPosition.row > child.startPosition.row) visit(child, level + 1);
    }
  };
  visit(root, 0);
  return depth;
}

/** Packs lines into chunks: the greedy, shallowest-break-in-reach rule described above. */
export function packLines(
  lines: string[],
  breaks: number[],
  budget: number,
  estimate: TokenEstimator,
  overlapLines: number,
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
      // The cheapest break in reach wins (the latest among equals): cost = depth, plus a penalty for
      // leaving the chunk small.
      let best = Infinity;
      let filled = 0;
      const fill: number[] = [];
      for (let i = start; i < reach; i++) { filled += tokens[i]!; fill[i - start] = filled; }
      for (let i = reach; i > start; i--) {
        if (breaks[i]! >= NO_BREAK) continue;
        const cost = breaks[i]! + (fill[i - 1 - start]! < budget * 0.4 ? SMALL_CHUNK_PENALTY : 0);
        if (cost < best) { best = cost; cut = i; }
      }
    }
    let end = cut - 1;
    while (end > start && isBlank(end)) end--;
    ranges.push({ start, end });
    if (cut >= lines.length) break;
    // Cut inside a structure (not at a top-level boundary): repeat a few lines for context.
    // Bounded by lines and by 15% of the budget, and never back to where this chunk started.
    let next = cut;
    if ((breaks[cut] ?? NO_BREAK) > 0) {
      let overlapTokens = 0;
      while (next > start + 1 && cut - next < overlapLines && overlapTokens + tokens[next - 1]! <= budget * 0.15) {
        overlapTokens += tokens[--next]!;
      }
    }
    start = next;
  }
  return ranges;
}

export function chunkId(path: string, startLine: number, endLine: number, contentHash: string): string {
  return `${path}#L${startLine}-L${endLine}@${contentHash}`;
}

/** Turns 0-based line ranges into chunks. */
function toChunks(path: string, lines: string[], ranges: Array<{ start: number; end: number }>): Chunk[] {
  return ranges.map(({ start, end }) => {
    const text = lines.slice(start, end + 1).join('\n');
    const contentHash = hashText(text);
    return { id: chunkId(path, start + 1, end + 1, contentHash), path, startLine: start + 1, endLine: end + 1, text, contentHash };
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
    this.overlapLines = options.overlapLines ?? 2;
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
    if (strategy === 'prose') breaks = proseBreaks(lines);
    else if (strategy.startsWith('syntax:')) {
      const grammars = await this.loadGrammars();
      const language = grammars ? await grammars.language(strategy.slice(7)) : null;
      if (grammars && language) {
        const tree = grammars.parserFor(language).parse(text);
        if (tree) {
          try {
            breaks = syntaxBreaks(tree.rootNode, lines);
          } finally {
            tree.delete();
          }
        }
      }
    }
    breaks ??= indentationBreaks(lines);
    return toChunks(path, lines, packLines(lines, breaks, this.maxTokens, this.estimate, this.overlapLines));
  }
}
