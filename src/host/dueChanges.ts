// What the next automatic refresh of each folder must look at (no `vscode` here, so it is tested in
// plain Node): the files the editor itself saved, created, deleted or renamed, named to the engine
// (it re-indexes just those, no folder walk), or the whole folder (`walk`) after a change from outside
// the editor, which a file-system watcher may report only in part (git checkout, formatters).
// A watcher event for a file the editor saved moments ago is that save's echo (or a tool rewriting the
// file right after it): it names the file again instead of asking for a walk.

/** A watcher event this soon after the editor saved the same file is that save's echo. */
export const SAVE_ECHO_MS = 5000;
/** More named files than this in one refresh: walk the folder instead. */
export const MAX_NAMED_PATHS = 256;

export interface Due {
  readonly named: ReadonlySet<string>;
  readonly walk: boolean;
}

export class DueChanges {
  private readonly due = new Map<string, { named: Set<string>; walk: boolean }>();
  /** When the editor last saved or moved each file (path → ms). */
  private readonly savedAt = new Map<string, number>();

  private of(folder: string): { named: Set<string>; walk: boolean } {
    let d = this.due.get(folder);
    if (!d) this.due.set(folder, (d = { named: new Set(), walk: false }));
    return d;
  }

  /** A file event in `folder`: from the editor's own operations, or from the file-system watcher. */
  fileEvent(folder: string, file: string, source: 'editor' | 'watcher', now = performance.now()): void {
    const d = this.of(folder);
    if (source === 'editor') this.savedAt.set(file, now);
    for (const [f, t] of this.savedAt) if (now - t > SAVE_ECHO_MS) this.savedAt.delete(f);
    if (source === 'editor' || this.savedAt.has(file)) d.named.add(file);
    else d.walk = true;
    if (d.named.size > MAX_NAMED_PATHS) d.walk = true;
  }

  /** The whole folder must be walked (e.g. a search found files changed since indexing). */
  walk(folder: string): void {
    this.of(folder).walk = true;
  }

  /** Takes what is due for `folder` (events from now on are due for the next refresh). */
  take(folder: string): Due | undefined {
    const d = this.due.get(folder);
    this.due.delete(folder);
    return d;
  }

  /** A refresh that took `due` did not finish: it is due again, with whatever came since. */
  putBack(folder: string, due: Due): void {
    const d = this.of(folder);
    due.named.forEach((p) => d.named.add(p));
    d.walk ||= due.walk;
  }

  /** The files to name to the engine for `due`, or undefined: walk the folder. */
  static namedFiles(due: Due | undefined): string[] | undefined {
    return due && !due.walk && due.named.size ? [...due.named] : undefined;
  }
}
