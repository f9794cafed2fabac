// Errors the engine reports to people, with a machine-readable `code` and the facts as fields.
//
// Core says WHAT is wrong (and, in words, what would fix it); it never names a CLI flag or an editor
// setting. Each front end maps the code to its own action: the CLI prints the flag or command that
// exists (src/cli/errors.ts), the editor offers a button ("Rebuild Index", "Index Workspace", "Choose
// Model": src/host/engineAccess.ts). Nothing tells errors apart by their message text.
//
// Plain data only (no vscode, no native modules): the worker sends `code` and `facts` across the
// thread boundary and the host rebuilds the error with `fromWire`.

/** What kind of problem, and so which action fixes it. */
export type ErrorCode =
  /** The request is wrong (a value out of range, an empty query, a file that is not text...). */
  | 'BAD_INPUT'
  /** There is no index for this folder and recipe. Fix: build it. Facts: root, storageDir, recipe, others. */
  | 'INDEX_MISSING'
  /** Index files are missing, truncated or corrupt. Fix: rebuild. Facts: dir, file. */
  | 'INDEX_DAMAGED'
  /** The index was written by a newer version. Fix: update, or rebuild with this version. */
  | 'INDEX_NEWER'
  /** Another process is writing the index. Fix: wait. Facts: dir, pid, host. */
  | 'INDEX_BUSY'
  /** Vectors of another model or recipe. Fix: use the index's recipe, or rebuild. Facts: differences. */
  | 'RECIPE_MISMATCH'
  /** The model cannot be found or fetched (not downloaded, offline, no such folder). Facts: model. */
  | 'MODEL_UNAVAILABLE'
  /** The model was found but cannot be used (unsupported graph, broken files). Facts: model. */
  | 'MODEL_INVALID'
  /** Reading or writing a file failed (disk full, permissions). Facts: path. */
  | 'IO_FAILED'
  /** Not enough memory for one sequence. */
  | 'OUT_OF_MEMORY'
  /** A shared index's database refused the credentials (password, user). Facts: store. */
  | 'STORE_AUTH'
  /** A shared index's database cannot be reached or has no such database (host, port, TLS, name). Facts: store. */
  | 'STORE_UNREACHABLE';

export const ERROR_CODES: readonly ErrorCode[] = [
  'BAD_INPUT', 'INDEX_MISSING', 'INDEX_DAMAGED', 'INDEX_NEWER', 'INDEX_BUSY', 'RECIPE_MISMATCH',
  'MODEL_UNAVAILABLE', 'MODEL_INVALID', 'IO_FAILED', 'OUT_OF_MEMORY', 'STORE_AUTH', 'STORE_UNREACHABLE',
];

/** Facts an error carries, for front ends and tests (never parsed out of the message). */
export interface ErrorFacts {
  /** The folder that was indexed. */
  root?: string;
  /** The folder holding the indexes of a folder (one per recipe). */
  storageDir?: string;
  /** One index (store) folder. */
  dir?: string;
  /** The file that is damaged, missing or could not be written. */
  file?: string;
  /** Model id or folder as given. */
  model?: string;
  /** Descriptions of the indexes that do exist (INDEX_MISSING). */
  others?: readonly string[];
  /** Field-by-field differences (RECIPE_MISMATCH). */
  differences?: readonly { field: string; index: unknown; request: unknown }[];
  /** Process holding the writer lock (INDEX_BUSY). */
  pid?: number;
  host?: string;
  /** A shared index (PostgreSQL), by its connection string without the password. */
  store?: string;
  /** INDEX_DAMAGED: what repairs it — indexing again (`refresh`: only the damaged part is redone) or a rebuild. Default rebuild. */
  repair?: 'refresh' | 'rebuild';
}

/**
 * An error whose message is meant for the user: the CLI prints only the message, the host shows it.
 * `message` is the statement followed by the hint on its own line (when there is one).
 */
export class UserError extends Error {
  readonly code: ErrorCode;
  readonly facts: Readonly<ErrorFacts>;
  /** The statement alone (the message without the hint). */
  readonly statement: string;

  constructor(message: string, readonly hint?: string, details: { code?: ErrorCode } & ErrorFacts = {}) {
    super(hint ? `${message}\n${hint}` : message);
    this.name = 'UserError';
    const { code, ...facts } = details;
    this.code = code ?? 'BAD_INPUT';
    this.facts = facts;
    this.statement = message;
  }
}

/** Shorthands, so a throw site reads as what happened. */
export const indexDamaged = (message: string, facts: ErrorFacts, hint = 'Rebuild the index; the damaged files cannot be repaired in place.'): UserError =>
  new UserError(message, hint, { code: 'INDEX_DAMAGED', ...facts });

export const indexMissing = (message: string, facts: ErrorFacts, hint = 'Build the index first.'): UserError =>
  new UserError(message, hint, { code: 'INDEX_MISSING', ...facts });

/** The code of any thrown value (`undefined` for errors that are not ours: bugs, aborts). */
export function errorCode(err: unknown): ErrorCode | undefined {
  if (err instanceof UserError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return (err as { name?: unknown } | null)?.name === 'UserError' && typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)
    ? (code as ErrorCode)
    : undefined;
}

export function hasCode(err: unknown, ...codes: ErrorCode[]): boolean {
  const c = errorCode(err);
  return c !== undefined && codes.includes(c);
}

/** An error as plain data, for postMessage (worker → host). */
export interface ErrorWire {
  name: string;
  message: string;
  stack?: string;
  hint?: string;
  code?: ErrorCode;
  facts?: ErrorFacts;
}

export function toWire(err: unknown): ErrorWire {
  if (err instanceof UserError) {
    return { name: err.name, message: err.message, stack: err.stack, hint: err.hint, code: err.code, facts: { ...err.facts } };
  }
  if (err instanceof Error) {
    const hint = (err as { hint?: unknown }).hint;
    return { name: err.name, message: err.message, stack: err.stack, hint: typeof hint === 'string' ? hint : undefined };
  }
  return { name: 'Error', message: String(err) };
}

/** Rebuilds an error from the wire so that `instanceof UserError`, `code` and `name === 'AbortError'` still work. */
export function fromWire(e: ErrorWire): Error {
  let err: Error;
  if (e.name === 'UserError') {
    const statement = e.hint && e.message.endsWith(`\n${e.hint}`) ? e.message.slice(0, -e.hint.length - 1) : e.message;
    err = new UserError(statement, e.hint, { code: e.code, ...(e.facts ?? {}) });
  } else {
    err = new Error(e.message);
    err.name = e.name;
  }
  if (e.stack) err.stack = e.stack;
  return err;
}

export function abortError(message = 'The operation was cancelled.'): Error {
  const err = new Error(message);
  err.name = 'AbortError';
  return err;
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
