// The code bases of the search-quality benchmark and their questions.
//
// Each code base is copied into bench/.cache/quality/<name>/ (a fixed snapshot, so numbers stay
// comparable while the repository moves on), then mined questions are made from it:
//   doc      a doc comment / docstring → the function it documents; the comment is DELETED from the copy
//   heading  a Markdown heading → its section; the heading line is deleted from the copy
//   test     a test's name (`TestParseQuery`, `test_urlsplit_…`) → the function it tests (unique name)
// and the hand-written questions of bench/quality/questions/<name>.json (written before any result was
// seen) are resolved against the copy: `path` + `symbol` (`Class.method`, Go `Type.method`; a list =
// any of them answers). Targets are line ranges found with tree-sitter after the copy was stripped.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import { grammarForPath, TreeSitterGrammars } from '../../src/core/index/treeSitter';
import { commentText, DECLARATIONS, docstringOf, leadingComments, nameOf, outerOf, splitIdentifier, stringLiteralText } from '../../src/core/sweep/pairs';
import { seededRandom } from '../../src/core/random';

export const BENCH_DIR = path.resolve(__dirname, '..');
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
// Outside bench/ (which tsc checks): the copies hold other projects' .ts files.
export const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'bench-quality');

export type QuestionKind = 'hand' | 'doc' | 'heading' | 'test';
export const QUESTION_KINDS: QuestionKind[] = ['hand', 'doc', 'heading', 'test'];

export interface Range { start: number; end: number }

export interface Question {
  kind: QuestionKind;
  q: string;
  path: string;
  /** 1-based inclusive line ranges in the prepared copy; a hit on any of them answers. */
  targets: Range[];
}

export interface CodeBase {
  name: string;
  describe: string;
  root: string;
  files: number;
  questions: Question[];
}

interface Source { rel: string; text: string }

/** The baseline snapshot of this repository that the hand-written questions were written against. */
export const REPO_SNAPSHOT = 'd1c02d8';
const GO_PACKAGES = ['net/url', 'encoding/csv', 'bufio', 'text/tabwriter', 'flag', 'container/list', 'container/heap', 'encoding/hex', 'mime', 'mime/multipart', 'mime/quotedprintable'];
const PY_FILES = ['json/__init__.py', 'json/decoder.py', 'json/encoder.py', 'json/scanner.py', 'json/tool.py', 'csv.py', 'textwrap.py', 'shlex.py', 'urllib/parse.py', 'http/cookies.py',
  'fnmatch.py', 'glob.py', 'shutil.py', 'tempfile.py', 'configparser.py', 'gzip.py',
  'test/test_textwrap.py', 'test/test_shlex.py', 'test/test_urlparse.py', 'test/test_fnmatch.py', 'test/test_glob.py', 'test/test_http_cookies.py'];

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function sourcesOf(name: string): { describe: string; sources: Source[] } | { skip: string } {
  if (name === 'repo') {
    let tar: Buffer;
    try {
      tar = execFileSync('git', ['archive', REPO_SNAPSHOT], { cwd: REPO_ROOT, maxBuffer: 1 << 28 });
    } catch {
      return { skip: `git archive ${REPO_SNAPSHOT} failed (not a clone with that commit)` };
    }
    const tmp = fs.mkdtempSync(path.join(CACHE_DIR, 'tmp-'));
    try {
      execFileSync('tar', ['-x', '-C', tmp], { input: tar });
      const sources: Source[] = [];
      const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const abs = path.join(dir, e.name);
          if (e.isDirectory()) walk(abs);
          else if (e.isFile()) sources.push({ rel: path.relative(tmp, abs).split(path.sep).join('/'), text: fs.readFileSync(abs, 'utf8') });
        }
      };
      walk(tmp);
      return { describe: `this repository at ${REPO_SNAPSHOT} (TypeScript, Markdown)`, sources };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (name === 'go') {
    let goroot: string;
    try {
      goroot = run('go', ['env', 'GOROOT']);
    } catch {
      return { skip: 'no `go` on PATH' };
    }
    const sources: Source[] = [];
    for (const pkg of GO_PACKAGES) {
      const dir = path.join(goroot, 'src', pkg);
      if (!fs.existsSync(dir)) return { skip: `${dir} is missing` };
      for (const f of fs.readdirSync(dir).sort()) {
        if (f.endsWith('.go')) sources.push({ rel: `${pkg}/${f}`, text: fs.readFileSync(path.join(dir, f), 'utf8') });
      }
    }
    return { describe: `Go ${run('go', ['env', 'GOVERSION'])} standard library: ${GO_PACKAGES.join(', ')}`, sources };
  }
  if (name === 'python') {
    let stdlib: string;
    try {
      stdlib = run('python3', ['-c', 'import sysconfig;print(sysconfig.get_paths()["stdlib"])']);
    } catch {
      return { skip: 'no `python3` on PATH' };
    }
    const sources: Source[] = [];
    for (const f of PY_FILES) {
      const abs = path.join(stdlib, f);
      if (!fs.existsSync(abs)) return { skip: `${abs} is missing` };
      sources.push({ rel: f, text: fs.readFileSync(abs, 'utf8') });
    }
    return { describe: `Python ${run('python3', ['-c', 'import sys;print(sys.version.split()[0])'])} standard library: ${PY_FILES.length} modules and tests`, sources };
  }
  return { skip: `unknown code base "${name}"` };
}

interface Decl {
  /** Qualified name: `Class.method`, Go `Type.Method`, nested `outer.inner`. */
  qname: string;
  name: string;
  node: SyntaxNode;
  outer: SyntaxNode;
  /** 0-based rows of the declaration (without its leading comments). */
  startRow: number;
  endRow: number;
  functionLike: boolean;
}

function goReceiverType(node: SyntaxNode): string | null {
  const recv = node.childForFieldName('receiver');
  if (!recv) return null;
  const m = /([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*\)\s*$/.exec(recv.text);
  return m ? m[1]! : null;
}

function declarations(root: SyntaxNode): Decl[] {
  const out: Decl[] = [];
  const visit = (node: SyntaxNode, scope: string[], depth: number) => {
    if (depth > 60) return;
    for (const child of node.namedChildren) {
      if (!child) continue;
      let inner = scope;
      if (DECLARATIONS.has(child.type)) {
        const name = nameOf(child);
        const value = child.type === 'variable_declarator' ? child.childForFieldName('value') : null;
        if (name && (child.type !== 'variable_declarator' || (value && /function/.test(value.type)))) {
          const recv = child.type === 'method_declaration' ? goReceiverType(child) : null;
          const qname = [...scope, ...(recv ? [recv] : []), name].join('.');
          const outer = outerOf(child);
          out.push({
            qname, name, node: child, outer, startRow: outer.startPosition.row, endRow: outer.endPosition.row,
            functionLike: /function|method/.test(child.type) || !!value,
          });
          inner = [...scope, name];
        }
      }
      visit(child, inner, depth + 1);
    }
  };
  visit(root, [], 0);
  return out;
}

const isTestPath = (rel: string) => /(^|\/)test_[^/]*\.py$|_test\.go$|\.test\.[tj]s$|(^|\/)tests?\//.test(rel);

interface Parsed { src: Source; decls: Decl[]; tree: { delete(): void } | null }

async function parseAll(grammars: TreeSitterGrammars, sources: Source[]): Promise<Parsed[]> {
  const out: Parsed[] = [];
  for (const src of sources) {
    const grammar = grammarForPath(src.rel);
    const language = grammar ? await grammars.language(grammar) : null;
    if (!language) { out.push({ src, decls: [], tree: null }); continue; }
    const tree = grammars.parserFor(language).parse(src.text);
    out.push({ src, decls: tree ? declarations(tree.rootNode) : [], tree });
  }
  return out;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function firstSentence(text: string, max = 220): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text);
  let s = (m ? m[1]! : text).trim();
  if (s.length > max) s = s.slice(0, s.lastIndexOf(' ', max) > max / 2 ? s.lastIndexOf(' ', max) : max);
  return s;
}

interface HandSpec { q: string; path: string; symbol: string | string[] }

/** Builds (or reuses) the prepared copy of a code base and its questions. */
export async function prepareCodeBase(name: string, options: { perKind: number; seed: number; grammars: TreeSitterGrammars }): Promise<CodeBase | { name: string; skip: string }> {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const got = sourcesOf(name);
  if ('skip' in got) return { name, skip: got.skip };
  const handFile = path.join(BENCH_DIR, 'quality', 'questions', `${name}.json`);
  const hand = JSON.parse(fs.readFileSync(handFile, 'utf8')) as HandSpec[];
  const handTargets = new Set(hand.flatMap((h) => (Array.isArray(h.symbol) ? h.symbol : [h.symbol]).map((s) => `${h.path}::${s}`)));
  const random = seededRandom(options.seed);
  const parsed = await parseAll(options.grammars, got.sources);

  // Lines to delete per file, and the mined questions (resolved after deletion).
  const deletions = new Map<string, Set<number>>();
  const del = (rel: string, from: number, to: number) => {
    let set = deletions.get(rel);
    if (!set) deletions.set(rel, (set = new Set()));
    for (let r = from; r <= to; r++) set.add(r);
  };
  const mined: Array<{ kind: QuestionKind; q: string; path: string; symbol?: string; section?: { headingRow: number; endRow: number } }> = [];

  // doc: functions with a comment or docstring, unique name in their file, ≥ 3 lines, not a hand target.
  const docCandidates: Array<{ p: Parsed; d: Decl; rows: [number, number]; query: string }> = [];
  for (const p of parsed) {
    if (isTestPath(p.src.rel)) continue;
    const count = new Map<string, number>();
    for (const d of p.decls) count.set(d.qname, (count.get(d.qname) ?? 0) + 1);
    for (const d of p.decls) {
      if (!d.functionLike || count.get(d.qname) !== 1 || handTargets.has(`${p.src.rel}::${d.qname}`)) continue;
      if (d.endRow - d.startRow < 3) continue;
      const comments = leadingComments(d.outer);
      let rows: [number, number] | null = null;
      let raw = '';
      if (comments.length) {
        rows = [comments[0]!.startPosition.row, comments[comments.length - 1]!.endPosition.row];
        raw = comments.map((c) => c.text).join('\n');
      } else {
        const doc = docstringOf(d.node);
        if (doc && doc.startPosition.row > d.startRow) {
          rows = [doc.startPosition.row, doc.endPosition.row];
          raw = stringLiteralText(doc.text);
        }
      }
      if (!rows) continue;
      let query = commentText(raw);
      // Go doc comments start with the name: that alone would give the answer away to keyword search.
      if (query.startsWith(d.name + ' ')) query = query.slice(d.name.length + 1);
      query = firstSentence(query);
      if ((query.match(/\p{L}/gu) ?? []).length < 12) continue;
      docCandidates.push({ p, d, rows, query });
    }
  }
  for (const c of shuffle(docCandidates, random).slice(0, options.perKind)) {
    del(c.p.src.rel, c.rows[0], c.rows[1]);
    mined.push({ kind: 'doc', q: c.query, path: c.p.src.rel, symbol: c.d.qname });
  }

  // test: a test's name → the one non-test function of that name in the code base.
  const byName = new Map<string, Array<{ p: Parsed; d: Decl }>>();
  for (const p of parsed) {
    if (isTestPath(p.src.rel)) continue;
    for (const d of p.decls) {
      if (!d.functionLike) continue;
      const list = byName.get(d.name) ?? [];
      list.push({ p, d });
      byName.set(d.name, list);
    }
  }
  const testCandidates: Array<{ q: string; path: string; symbol: string }> = [];
  const seenTargets = new Set<string>();
  for (const p of parsed) {
    if (!isTestPath(p.src.rel)) continue;
    for (const d of p.decls) {
      const m = /^(?:Test|test_)(.+)$/.exec(d.name);
      if (!m || !d.functionLike) continue;
      const rest = m[1]!;
      const tries = p.src.rel.endsWith('.go')
        ? [rest, rest.split('_')[0]!]
        : rest.split('_').map((_, i, parts) => parts.slice(0, parts.length - i).join('_'));
      for (const t of tries) {
        const hits = byName.get(t) ?? byName.get(t.charAt(0).toLowerCase() + t.slice(1));
        if (t.length < 4 || !hits || hits.length !== 1) continue;
        const target = hits[0]!;
        const key = `${target.p.src.rel}::${target.d.qname}`;
        if (seenTargets.has(key) || handTargets.has(key)) break;
        seenTargets.add(key);
        testCandidates.push({ q: splitIdentifier(rest), path: target.p.src.rel, symbol: target.d.qname });
        break;
      }
    }
  }
  for (const c of shuffle(testCandidates, random).slice(0, options.perKind)) mined.push({ kind: 'test', ...c });

  // heading: Markdown headings of two or more words over a section of ≥ 3 non-blank lines.
  const headingCandidates: Array<{ rel: string; row: number; end: number; q: string }> = [];
  for (const p of parsed) {
    if (!/\.(md|markdown)$/i.test(p.src.rel) || p.src.rel.startsWith('test/fixtures/')) continue;
    const lines = p.src.text.split(/\r?\n/);
    let inFence = false;
    const heads: Array<{ row: number; level: number; text: string }> = [];
    lines.forEach((l, i) => {
      if (/^\s*(```|~~~)/.test(l)) inFence = !inFence;
      const m = !inFence && /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(l);
      if (m) heads.push({ row: i, level: m[1]!.length, text: m[2]!.replace(/[`*_]/g, '') });
    });
    heads.forEach((h, k) => {
      const next = heads.slice(k + 1).find((o) => o.level <= h.level);
      let end = (next ? next.row : lines.length) - 1;
      // The section proper: up to the first sub-heading (what a reader sees under this heading).
      const sub = heads[k + 1];
      if (sub && sub.row <= end) end = sub.row - 1;
      while (end > h.row && !lines[end]!.trim()) end--;
      const body = lines.slice(h.row + 1, end + 1).filter((l) => l.trim()).length;
      if (body >= 3 && h.text.split(/\s+/).length >= 2) headingCandidates.push({ rel: p.src.rel, row: h.row, end, q: h.text });
    });
  }
  for (const c of shuffle(headingCandidates, random).slice(0, options.perKind)) {
    del(c.rel, c.row, c.row);
    mined.push({ kind: 'heading', q: c.q, path: c.rel, section: { headingRow: c.row, endRow: c.end } });
  }
  for (const p of parsed) p.tree?.delete();

  // Write the stripped copy (only when it changed: a stable copy keeps file times, so reruns are cheap).
  const root = path.join(CACHE_DIR, 'corpora', name);
  const rowMaps = new Map<string, number[]>();
  const kept = new Set<string>();
  for (const src of got.sources) {
    const gone = deletions.get(src.rel);
    const lines = src.text.split('\n');
    const map: number[] = [];
    const out: string[] = [];
    lines.forEach((l, i) => { map[i] = out.length; if (!gone?.has(i)) out.push(l); });
    rowMaps.set(src.rel, map);
    const abs = path.join(root, src.rel);
    const text = out.join('\n');
    kept.add(abs);
    if (!fs.existsSync(abs) || fs.readFileSync(abs, 'utf8') !== text) {
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, text);
    }
  }
  const prune = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) { prune(abs); if (!fs.readdirSync(abs).length) fs.rmdirSync(abs); } else if (!kept.has(abs)) fs.rmSync(abs);
    }
  };
  prune(root);

  // Resolve every question against the stripped copy.
  const stripped = await parseAll(options.grammars, got.sources.map((s) => ({ rel: s.rel, text: fs.readFileSync(path.join(root, s.rel), 'utf8') })));
  const declsOf = new Map(stripped.map((p) => [p.src.rel, p.decls]));
  // Several definitions of one name (Python's `if os.name == 'nt': def f…` / `else: def f…`) all answer.
  const resolve = (rel: string, symbol: string): Range[] => {
    const decls = declsOf.get(rel);
    if (!decls) throw new Error(`${name}: no file ${rel}`);
    const found = decls.filter((d) => d.qname === symbol || (!symbol.includes('.') && d.name === symbol && !d.qname.includes('.')));
    const exact = found.length > 1 ? found.filter((d) => d.qname === symbol) : found;
    if (!exact.length || new Set(exact.map((d) => d.qname)).size !== 1) throw new Error(`${name}: ${rel} has ${exact.length} declarations named ${symbol} (${decls.filter((d) => d.name === symbol.split('.').pop()).map((d) => d.qname).join(', ') || 'none like it'})`);
    return exact.map((d) => ({ start: d.startRow + 1, end: d.endRow + 1 }));
  };
  const questions: Question[] = hand.map((h) => ({
    kind: 'hand', q: h.q, path: h.path, targets: (Array.isArray(h.symbol) ? h.symbol : [h.symbol]).flatMap((s) => resolve(h.path, s)),
  }));
  for (const m of mined) {
    if (m.section) {
      const map = rowMaps.get(m.path)!;
      // The heading row itself is gone: the section starts where it was.
      questions.push({ kind: 'heading', q: m.q, path: m.path, targets: [{ start: map[m.section.headingRow]! + 1, end: map[m.section.endRow]! + 1 }] });
    } else {
      questions.push({ kind: m.kind, q: m.q, path: m.path, targets: resolve(m.path, m.symbol!) });
    }
  }
  for (const p of stripped) p.tree?.delete();
  return { name, describe: got.describe, root, files: got.sources.length, questions };
}
