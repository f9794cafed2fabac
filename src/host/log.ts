// The extension's LogOutputChannel ("Embedding Lens" in the Output view). It implements the engine's
// Logger interface as is, so the same object is handed to the worker client.
import * as vscode from 'vscode';

export const LOG_CHANNEL_NAME = 'Embedding Lens';

export function createLog(): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel(LOG_CHANNEL_NAME, { log: true });
}

/** Message for the user from any thrown value; the stack goes to the log, not to a notification. */
export function describeError(err: unknown, log: vscode.LogOutputChannel): string {
  if (err instanceof Error) {
    if (err.name === 'UserError' || err.name === 'AbortError') log.warn(err.message);
    else log.error(err.stack ?? err.message);
    return err.name === 'AbortError' ? 'Cancelled.' : err.message;
  }
  log.error(String(err));
  return String(err);
}
