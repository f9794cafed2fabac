// Tree-sitter grammars for code-aware chunking, from @vscode/tree-sitter-wasm (the prebuilt runtime and
// grammars VS Code itself ships). The runtime's JS is bundled with our code by esbuild; the .wasm files
// are not, so they are located at run time: an explicit folder, then `tree-sitter/` beside the bundle
// (where a packaging step copies them), then the package in node_modules.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Language, Parser } from '@vscode/tree-sitter-wasm';
import { UserError } from '../types';

/** File extension → grammar name (the part after `tree-sitter-` in the .wasm file name). */
const GRAMMAR_BY_EXTENSION: Record<string, string> = {
  ts: 'typescript', mts: 'typescript', cts: 'typescript', tsx: 'tsx',
  js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascript',
  py: 'python', pyi: 'python', go: 'go', rs: 'rust', java: 'java', cs: 'c-sharp',
  c: 'cpp', h: 'cpp', cc: 'cpp', cpp: 'cpp', cxx: 'cpp', hpp: 'cpp', hh: 'cpp',
  rb: 'ruby', php: 'php', sh: 'bash', bash: 'bash', css: 'css', ps1: 'powershell',
};

export function grammarForPath(filePath: string): string | undefined {
  const base = filePath.slice(filePath.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? GRAMMAR_BY_EXTENSION[base.slice(dot + 1).toLowerCase()] : undefined;
}

function candidateDirs(explicit?: string): string[] {
  const dirs: string[] = [];
  if (explicit) dirs.push(explicit);
  if (typeof __dirname !== 'undefined') dirs.push(path.join(__dirname, 'tree-sitter'));
  try {
    const req = createRequire(typeof __filename !== 'undefined' ? __filename : path.join(process.cwd(), 'noop.js'));
    dirs.push(path.join(path.dirname(req.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm'));
  } catch {
    // package not resolvable from here (bundled without node_modules): the other candidates decide
  }
  return dirs;
}

/** Finds the folder holding `tree-sitter.wasm` and the grammars; throws a UserError naming what was searched. */
export function locateTreeSitterWasm(explicitDir?: string): string {
  const dirs = candidateDirs(explicitDir);
  for (const dir of dirs) {
    if (fs.existsSync(path.join(dir, 'tree-sitter.wasm'))) return dir;
  }
  throw new UserError(
    `Tree-sitter's wasm files were not found (looked in: ${dirs.join(', ') || 'nowhere'}).`,
    'Install the npm package @vscode/tree-sitter-wasm, or copy its wasm/ folder to a "tree-sitter" folder beside the bundle.',
  );
}

type TreeSitterModule = typeof import('@vscode/tree-sitter-wasm');

/** Loads the runtime once and grammars on demand; one instance per process is enough. */
export class TreeSitterGrammars {
  private readonly languages = new Map<string, Promise<Language | null>>();
  private parser: Parser | null = null;

  private constructor(private readonly ts: TreeSitterModule, readonly wasmDir: string) {}

  static async load(explicitDir?: string): Promise<TreeSitterGrammars> {
    const wasmDir = locateTreeSitterWasm(explicitDir);
    const mod = (await import('@vscode/tree-sitter-wasm')) as TreeSitterModule & { default?: TreeSitterModule };
    const ts = (mod.Parser ? mod : mod.default) as TreeSitterModule;
    await ts.Parser.init({ locateFile: (file: string) => path.join(wasmDir, file) });
    return new TreeSitterGrammars(ts, wasmDir);
  }

  /** The grammar for a grammar name, or null when no such .wasm exists. */
  language(name: string): Promise<Language | null> {
    let pending = this.languages.get(name);
    if (!pending) {
      const file = path.join(this.wasmDir, `tree-sitter-${name}.wasm`);
      pending = fs.existsSync(file) ? this.ts.Language.load(file) : Promise.resolve(null);
      this.languages.set(name, pending);
    }
    return pending;
  }

  /** A parser set to `language`; shared, so callers must not hold it across awaits. */
  parserFor(language: Language): Parser {
    this.parser ??= new this.ts.Parser();
    this.parser.setLanguage(language);
    return this.parser;
  }
}
