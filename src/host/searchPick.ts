// The result list of Search Workspace and Find Similar to Selection: a QuickPick whose items are
// `file:line` with the chunk's first lines as detail; accepting one opens the file at the chunk's
// range, reveals it and highlights it. Search Workspace queries as the user types (debounced, the
// previous query cancelled) and has buttons that switch vector / lexical / hybrid and filter by kind
// (all / code / docs / tests).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Disposable, disposeAll } from './disposable';
import type { ChunkKind } from '../core/search/kinds';
import { ELIDED_LINES, hitPreviewLines } from '../core/search/hitPreview';
import type { SearchMode } from '../core/search/search';
import type { WireSearchHit } from '../protocol/worker';
import { COMMANDS } from './commandIds';
import { hasCode } from '../core/errors';
import { diskFolders, indexAction, ModelLoadError, type EngineAccess } from './engineAccess';
import type { IndexProgressState } from './indexService';
import type { IndexState } from './statusBar';

/** What search needs to know about indexing (IndexService implements it). */
export interface IndexInfo {
  progressOf(folder: vscode.WorkspaceFolder): IndexProgressState | undefined;
  stateOf(folder: vscode.WorkspaceFolder): IndexState;
  refreshSoon(folder: vscode.WorkspaceFolder): void;
  readonly onDidChange: vscode.Event<void>;
}

/** Name of the error "nothing is searchable yet: indexing is running". */
export const INDEXING_NOT_READY = 'IndexingNotReadyError';

export const SEARCH_MODES: readonly SearchMode[] = ['hybrid', 'vector', 'lexical'];
const MODE_ICONS: Record<SearchMode, string> = { hybrid: 'combine', vector: 'sparkle', lexical: 'whole-word' };
const MODE_TEXT: Record<SearchMode, string> = {
  hybrid: 'hybrid (meaning + exact words)',
  vector: 'vector (by meaning)',
  lexical: 'lexical (exact words, BM25)',
};
/** The kind filter's steps: everything, then code only, docs only, tests only. */
export const KIND_FILTERS: ReadonlyArray<{ label: string; kinds?: ChunkKind[]; icon: string }> = [
  { label: 'all files', icon: 'filter' },
  { label: 'code only', kinds: ['code'], icon: 'code' },
  { label: 'docs only', kinds: ['docs'], icon: 'book' },
  { label: 'tests only', kinds: ['tests'], icon: 'beaker' },
];
const QUERY_DELAY_MS = 250;
const RESULTS = 20;

/** A hit and the workspace folder whose index it came from. */
export interface FolderHit extends WireSearchHit {
  folder: vscode.WorkspaceFolder;
  /** Absolute URI of the file. */
  uri: vscode.Uri;
  /** The folder's index is being built or was stopped before the end: other files may match too. */
  partial?: boolean;
}

/**
 * Why results may be incomplete, in words, or undefined when every folder's index is complete:
 * "indexing 42 of 227 files" / "the index is partial (stopped at 43 of 229 files)".
 */
export function partialNote(index: IndexInfo | undefined, folders: readonly vscode.WorkspaceFolder[] = diskFolders()): string | undefined {
  if (!index) return undefined;
  const notes: string[] = [];
  for (const f of folders) {
    const p = index.progressOf(f);
    const prefix = folders.length > 1 ? `${f.name}: ` : '';
    if (p) {
      notes.push(p.total ? `${prefix}indexing is running, ${p.done} of ${p.total} files` : `${prefix}indexing is running (finding files)`);
      continue;
    }
    const s = index.stateOf(f);
    if (s.kind === 'partial') notes.push(`${prefix}the index is partial${s.done !== undefined && s.total ? ` (indexing stopped at ${s.done} of ${s.total} files)` : ''}`);
  }
  return notes.length ? notes.join('; ') : undefined;
}

type Item = vscode.QuickPickItem & { hit?: FolderHit; command?: string };

/**
 * Highlights an opened result's range until the user moves the cursor elsewhere. When the result is a
 * whole function of which one piece matched, the piece is highlighted more strongly inside it and
 * labelled at the end of its first line ("matched lines a–b").
 */
export class ResultHighlighter extends Disposable {
  private readonly decoration = this.own(vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
    isWholeLine: true,
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.findMatchForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Center,
  }));
  private readonly pieceDecoration = this.own(vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('editor.findMatchHighlightBackground'),
    isWholeLine: true,
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.findMatchForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Full,
  }));
  private readonly pieceLabel = this.own(vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorCodeLens.foreground'), fontStyle: 'italic', margin: '0 0 0 2em' },
  }));
  private current: { editor: vscode.TextEditor; range: vscode.Range; match?: vscode.Range } | undefined;

  constructor() {
    super();
    this.own(vscode.window.onDidChangeTextEditorSelection((e) => {
      const c = this.current;
      if (!c || e.textEditor !== c.editor || e.kind === vscode.TextEditorSelectionChangeKind.Command) return;
      if (!e.selections.some((s) => c.range.intersection(s) !== undefined)) this.clear();
    }));
  }

  highlight(editor: vscode.TextEditor, range: vscode.Range, match?: vscode.Range): void {
    this.clear();
    editor.setDecorations(this.decoration, [range]);
    if (match) {
      editor.setDecorations(this.pieceDecoration, [match]);
      const first = editor.document.lineAt(match.start.line).range;
      editor.setDecorations(this.pieceLabel, [{ range: new vscode.Range(first.end, first.end), renderOptions: { after: { contentText: matchedText(match.start.line + 1, match.end.line + 1) } } }]);
    }
    this.current = { editor, range, ...(match ? { match } : {}) };
  }

  /** The range highlighted now, and the matched piece inside it (tests and the inspector read it). */
  get highlighted(): { uri: vscode.Uri; range: vscode.Range; match?: vscode.Range } | undefined {
    return this.current && { uri: this.current.editor.document.uri, range: this.current.range, ...(this.current.match ? { match: this.current.match } : {}) };
  }

  clear(): void {
    const editor = this.current?.editor;
    if (editor) for (const d of [this.decoration, this.pieceDecoration, this.pieceLabel]) editor.setDecorations(d, []);
    this.current = undefined;
  }

  protected override onDispose(): void {
    this.clear();
  }
}

/** "matched lines 12–15" (1-based), as the result list and the editor say it. */
export function matchedText(startLine: number, endLine: number): string {
  return startLine === endLine ? `matched line ${startLine}` : `matched lines ${startLine}–${endLine}`;
}

/** Whole lines first..last (1-based, clamped to the document), as a range. */
function lineRange(doc: vscode.TextDocument, startLine: number, endLine: number): vscode.Range {
  const last = Math.min(Math.max(endLine, startLine), doc.lineCount) - 1;
  const first = Math.max(0, Math.min(startLine - 1, last));
  return new vscode.Range(first, 0, last, doc.lineAt(last).range.end.character);
}

/**
 * Opens a hit's file with its lines selected, scrolled into view and highlighted. A hit that is a whole
 * function with a matched piece (`match`) selects the piece and highlights both: the function is shown
 * whole when it fits the editor, otherwise from its first line when the piece is near it, otherwise
 * the piece is centred.
 */
export async function openHit(hit: { uri: vscode.Uri; startLine: number; endLine: number; match?: { startLine: number; endLine: number } }, highlighter: ResultHighlighter): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument(hit.uri);
  const range = lineRange(doc, hit.startLine, hit.endLine);
  const piece = hit.match && range.intersection(lineRange(doc, hit.match.startLine, hit.match.endLine));
  const selected = piece ?? range;
  const editor = await vscode.window.showTextDocument(doc, { selection: new vscode.Selection(selected.start, selected.end), preview: true });
  const visible = editor.visibleRanges[0];
  const height = visible ? visible.end.line - visible.start.line : 0;
  if (!piece || range.end.line - range.start.line < height) {
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  } else if (piece.end.line - range.start.line < height) {
    editor.revealRange(new vscode.Range(range.start, range.start), vscode.TextEditorRevealType.AtTop);
  } else {
    editor.revealRange(piece, vscode.TextEditorRevealType.InCenter);
  }
  highlighter.highlight(editor, range, piece);
  return editor;
}

function relLabel(hit: FolderHit, multiRoot: boolean): string {
  return `${multiRoot ? `${hit.folder.name}/` : ''}${hit.path}:${hit.startLine}`;
}

/**
 * Code as a QuickPick detail, shown as it is. The workbench renders a detail with codicons (`$(name)`
 * becomes an icon unless written `\$(`) and shows it again in a Markdown hover (`__name__` became
 * bold "name"). A zero-width space on both sides of `_` and `\`` makes each one a run of its own that
 * cannot open or close emphasis (an underscore between non-punctuation never does). `*` and `~` may
 * open between any non-whitespace characters, so they get a hair space (U+200A, Unicode whitespace,
 * almost invisible) on both sides instead: a delimiter with whitespace on both sides never does.
 */
export function plainDetail(text: string): string {
  return text
    .replace(/\$\(/g, '\\$(')
    .replace(/[_`]/g, (c) => `\u200b${c}\u200b`)
    .replace(/[*~]/g, (c) => `\u200a${c}\u200a`);
}

/**
 * What a result's detail shows (hitPreviewLines), trimmed lines joined by `⏎`; for a function of which a
 * later piece matched: its first line `⋯` the matched lines.
 */
export function detailText(hit: Pick<WireSearchHit, 'preview' | 'startLine' | 'match'>): string {
  const lines = hitPreviewLines(hit).map((l) => l.trim()).filter(Boolean);
  return lines.join('  ⏎  ').replace(`  ⏎  ${ELIDED_LINES}  ⏎  `, `  ${ELIDED_LINES}  `);
}

/**
 * A result row: `path:line` and `lines a–b · score` on the first line, the chunk's text on the second.
 * A matched piece of a longer function is named at the start of the second line ("matched lines c–d:
 * def f(…)  ⋯  the matched lines"): the first line's description comes after the path and is cut off
 * first when the path is long, the second line starts at the row's left edge.
 */
export function hitItem(hit: FolderHit, multiRoot: boolean, mode: SearchMode | 'similar'): Item {
  const score = mode === 'hybrid' ? `fused score ${hit.score.toFixed(3)}` : mode === 'lexical' ? `BM25 ${hit.score.toFixed(2)}` : `cosine ${hit.score.toFixed(3)}`;
  const matched = hit.match ? `${matchedText(hit.match.startLine, hit.match.endLine)}:  ` : '';
  return {
    label: `$(file-code) ${relLabel(hit, multiRoot)}`,
    description: `lines ${hit.startLine}–${hit.endLine} · ${score}${hit.stale ? ' · changed since indexing' : ''}`,
    detail: matched + (plainDetail(detailText(hit).slice(0, 240)) || '(empty lines)'),
    hit,
    // The list holds results of the typed query: they must not be filtered again by the QuickPick.
    alwaysShow: mode !== 'similar',
  };
}

/** An item that explains why there are no results, and what accepting it does. */
function problemItem(err: unknown): Item {
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  const action = indexAction(err);
  if (action) {
    return {
      label: action.label === 'Rebuild Index' ? '$(refresh) Rebuild Index' : '$(database) Index Workspace',
      detail: message,
      command: action.command,
      alwaysShow: true,
    };
  }
  if (err instanceof Error && err.name === INDEXING_NOT_READY) {
    return { label: '$(sync~spin) Indexing is running', detail: message, alwaysShow: true };
  }
  if (err instanceof ModelLoadError) {
    return { label: '$(symbol-class) Choose Model', detail: message, command: COMMANDS.chooseModel, alwaysShow: true };
  }
  return { label: `$(warning) ${message}`, detail: err instanceof Error ? err.message.split('\n').slice(1).join(' ') || undefined : undefined, alwaysShow: true };
}

/**
 * Searches every folder's index; hits of all folders merged by score. Missing indexes are reported,
 * not thrown, unless all are. A folder being indexed is searched as far as it is indexed (its hits are
 * marked `partial`); hits of files changed since indexing make their folder refresh soon.
 */
export async function searchFolders(access: EngineAccess, query: string, mode: SearchMode, signal: AbortSignal, index?: IndexInfo, kinds?: ChunkKind[]): Promise<FolderHit[]> {
  const folders = diskFolders();
  await access.loadModel(folders[0]?.uri, signal);
  const hits: FolderHit[] = [];
  const problems: unknown[] = [];
  for (const folder of folders) {
    const t = access.targetFor(folder);
    const running = index?.progressOf(folder);
    const partial = running !== undefined || index?.stateOf(folder).kind === 'partial';
    try {
      const found = await access.engine.request('search', { root: t.root, storageDir: t.storageDir, recipe: t.recipe, query, mode, k: RESULTS, ...(kinds ? { kinds } : {}), ...(t.store ? { store: t.store } : {}) }, { signal });
      hits.push(...found.map((h) => ({ ...h, folder, uri: vscode.Uri.file(path.join(t.root, h.path)), ...(partial ? { partial: true } : {}) })));
      if (found.some((h) => h.stale)) index?.refreshSoon(folder);
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw err;
      if (running && hasCode(err, 'INDEX_MISSING')) {
        const e = new Error(`Indexing is running (${running.done} of ${running.total || '?'} files): nothing is searchable yet. Finished files become searchable as they are saved, every few seconds.`);
        e.name = INDEXING_NOT_READY;
        problems.push(e);
      } else {
        problems.push(err);
      }
    }
  }
  if (!hits.length && problems.length) throw problems[0];
  for (const p of problems) access.log.warn(`search: ${p instanceof Error ? p.message : String(p)}`);
  return hits.sort((a, b) => b.score - a.score).slice(0, RESULTS);
}

export interface SearchPickOptions {
  /** Indexing state: partial results are said to be partial, and the list refreshes when indexing ends. */
  index?: IndexInfo;
  query?: string;
  mode?: SearchMode;
  onModeChange?: (mode: SearchMode) => void;
}

/**
 * Search Workspace. Resolves with the hit that was opened, or undefined when the list was closed
 * (or an action item such as "Index Workspace" was taken).
 */
export function showSearchPick(access: EngineAccess, highlighter: ResultHighlighter, options: SearchPickOptions = {}): Promise<FolderHit | undefined> {
  const qp = vscode.window.createQuickPick<Item>();
  let mode: SearchMode = options.mode ?? 'hybrid';
  let filter = 0;
  const multiRoot = diskFolders().length > 1;
  const modeButton = (): vscode.QuickInputButton => {
    const next = SEARCH_MODES[(SEARCH_MODES.indexOf(mode) + 1) % SEARCH_MODES.length]!;
    return { iconPath: new vscode.ThemeIcon(MODE_ICONS[mode]), tooltip: `Mode: ${MODE_TEXT[mode]} — click for ${next}` };
  };
  const kindButton = (): vscode.QuickInputButton => {
    const f = KIND_FILTERS[filter]!;
    return { iconPath: new vscode.ThemeIcon(f.icon), tooltip: `Showing ${f.label} — click for ${KIND_FILTERS[(filter + 1) % KIND_FILTERS.length]!.label}` };
  };
  const setTitle = (note?: string) => {
    qp.title = `Embedding Lens: Search Workspace — ${MODE_TEXT[mode]}${filter ? `, ${KIND_FILTERS[filter]!.label}` : ''}${note ? ` — partial: ${note}` : ''}`;
    qp.buttons = [modeButton(), kindButton()];
  };
  setTitle(partialNote(options.index));
  qp.placeholder = 'Describe what you are looking for, or type code or words';
  qp.matchOnDescription = false;
  qp.matchOnDetail = false;

  let seq = 0;
  /** The list on show came from an index still being built (or stopped): refresh it when that ends. */
  let shownPartial = false;
  /** The list on show has hits of files changed since indexing; re-asked once after their refresh. */
  let shownStale = false;
  let staleRequeried = false;
  let running: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  const runQuery = async (query: string) => {
    running?.abort();
    const mine = ++seq;
    if (!query.trim()) {
      qp.items = [];
      qp.busy = false;
      return;
    }
    const controller = (running = new AbortController());
    qp.busy = true;
    try {
      const hits = await searchFolders(access, query, mode, controller.signal, options.index, KIND_FILTERS[filter]!.kinds);
      if (mine !== seq) return;
      const note = partialNote(options.index);
      shownPartial = note !== undefined;
      shownStale = hits.some((h) => h.stale);
      setTitle(note);
      const header: Item[] = note ? [{ label: `partial results: ${note}`, kind: vscode.QuickPickItemKind.Separator }] : [];
      qp.items = hits.length
        ? [...header, ...hits.map((h) => hitItem(h, multiRoot, mode))]
        : note
          ? [{ label: '$(sync~spin) No results yet', detail: `Nothing matched in the files indexed so far (${note}). The list updates when indexing finishes.`, alwaysShow: true }]
          : [{ label: 'No results', detail: `Nothing matched in ${mode} mode; try another mode or other words.`, alwaysShow: true }];
      qp.activeItems = qp.items.filter((i) => i.kind !== vscode.QuickPickItemKind.Separator).slice(0, 1);
      // The best hit is the active one, so Enter opens it (also known to this side before any key is pressed).
    } catch (err) {
      if (mine !== seq || (err instanceof Error && err.name === 'AbortError')) return;
      qp.items = [problemItem(err)];
      access.log.warn(`search failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (mine === seq) qp.busy = false;
    }
  };
  const schedule = (query: string, delay = QUERY_DELAY_MS) => {
    clearTimeout(timer);
    timer = setTimeout(() => void runQuery(query), delay);
  };

  return new Promise<FolderHit | undefined>((resolve) => {
    let settled = false;
    let accepting = false;
    const finish = (hit: FolderHit | undefined) => {
      if (settled) return;
      settled = true;
      resolve(hit);
    };
    const subs = [
      qp.onDidChangeValue((v) => schedule(v)),
      // Indexing finished (or stopped) while a partial list is open: ask again, now from the whole index.
      // A complete list is never replaced under the user's cursor.
      // Likewise once, when the list showed hits of files changed since indexing (their refresh ran).
      ...(options.index ? [options.index.onDidChange(() => {
        if ((shownPartial && !partialNote(options.index)) || (shownStale && !staleRequeried)) {
          staleRequeried ||= shownStale;
          schedule(qp.value, 0);
        }
      })] : []),
      qp.onDidTriggerButton((button) => {
        if (button === qp.buttons[1]) {
          filter = (filter + 1) % KIND_FILTERS.length;
        } else {
          mode = SEARCH_MODES[(SEARCH_MODES.indexOf(mode) + 1) % SEARCH_MODES.length]!;
          options.onModeChange?.(mode);
        }
        setTitle();
        schedule(qp.value, 0);
      }),
      qp.onDidAccept(async () => {
        const item = qp.selectedItems[0] ?? qp.activeItems[0];
        if (!item || (!item.hit && !item.command)) return;
        accepting = true;
        qp.hide();
        if (item.command) {
          finish(undefined);
          await vscode.commands.executeCommand(item.command);
          return;
        }
        try {
          await openHit(item.hit!, highlighter);
          finish(item.hit);
        } catch (err) {
          finish(undefined);
          void vscode.window.showErrorMessage(`Embedding Lens: cannot open ${item.hit!.path}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
      qp.onDidHide(() => {
        clearTimeout(timer);
        running?.abort();
        // Accepting hides the list before the file opens: then the accept handler settles the promise.
        if (!accepting) finish(undefined);
        disposeAll([qp, ...subs]);
      }),
    ];
    qp.show();
    if (options.query) {
      qp.value = options.query;
      schedule(options.query, 0);
    }
  });
}

/** Find Similar to Selection: a fixed list of hits (the QuickPick filters it as the user types). */
export function showHitsPick(title: string, hits: FolderHit[], highlighter: ResultHighlighter): Promise<FolderHit | undefined> {
  const multiRoot = diskFolders().length > 1;
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = title;
  qp.placeholder = hits.length ? 'Filter the results by file name' : 'No similar chunks in the index';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.items = hits.map((h) => hitItem(h, multiRoot, 'similar'));
  return new Promise((resolve) => {
    let settled = false;
    let accepting = false;
    const finish = (hit: FolderHit | undefined) => {
      if (!settled) resolve(hit);
      settled = true;
    };
    const subs = [
      qp.onDidAccept(async () => {
        const hit = (qp.selectedItems[0] ?? qp.activeItems[0])?.hit;
        if (!hit) return;
        accepting = true;
        qp.hide();
        try {
          await openHit(hit, highlighter);
          finish(hit);
        } catch (err) {
          finish(undefined);
          void vscode.window.showErrorMessage(`Embedding Lens: cannot open ${hit.path}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
      qp.onDidHide(() => {
        if (!accepting) finish(undefined);
        disposeAll([qp, ...subs]);
      }),
    ];
    qp.show();
    // The most similar chunk is the active one, so Enter opens it.
    qp.activeItems = qp.items.slice(0, 1);
  });
}
