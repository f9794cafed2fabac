// The host's one way to release what an object holds (event subscriptions, decorations, panels,
// status bar items): register each with own(), dispose() releases them newest first, exactly once,
// and every one of them even when another throws. Written by hand because it is a dozen lines; VS
// Code's own DisposableStore is internal to the editor and not part of the extension API.
import type * as vscode from 'vscode';

/** Disposes each (newest first); all are disposed even if some throw, then the first error is thrown. */
export function disposeAll(items: vscode.Disposable[]): void {
  const errors: unknown[] = [];
  while (items.length) {
    try {
      items.pop()!.dispose();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} disposables failed to dispose`);
}

export abstract class Disposable implements vscode.Disposable {
  private readonly owned: vscode.Disposable[] = [];
  private disposedAlready = false;

  /** Registers `d` to be disposed with this object (at once if this object is already disposed). */
  protected own<T extends vscode.Disposable>(d: T): T {
    if (this.disposedAlready) d.dispose();
    else this.owned.push(d);
    return d;
  }

  get isDisposed(): boolean {
    return this.disposedAlready;
  }

  /** Cleanup of the subclass's own (timers, abort controllers), run before the owned disposables. */
  protected onDispose(): void {}

  dispose(): void {
    if (this.disposedAlready) return;
    this.disposedAlready = true;
    try {
      this.onDispose();
    } finally {
      disposeAll(this.owned);
    }
  }
}
