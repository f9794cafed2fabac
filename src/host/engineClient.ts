// The extension host's side of the engine (src/worker/engineWorker.ts, bundled to dist/worker.js).
// The engine runs in its OWN PROCESS (child_process.fork with structured-clone IPC), not as a thread
// of the extension host: a crash in native code (ONNX Runtime, hnswlib) ends that process only, and
// the memory of models, sessions and caches goes back to the system when it stops.
//
// Life cycle: started on the first request (not at activation); stopped after `idleMs` without a
// request (the model is loaded again, from disk, on the next one); restarted on the next request
// after a crash, with the model it had loaded, and `onCrash` says so once. Its memory budget: the
// V8 heap is capped at `memoryBudgetMb`, and when the process's resident memory (native memory
// included) is over that budget once it is idle, it is stopped at once instead of after `idleMs`.
// Without a budget from the user it is sized from the indexes the engine holds open (their chunk
// counts, from the answers to index and indexStatus requests; core/store/memoryBudget.ts), capped by
// the machine's memory.
// Requests are typed against `EngineMethods`.
//
// Deliberately free of `vscode`: cancellation is an AbortSignal (the host adapts CancellationToken
// with `abortSignalOf`), logging goes through the engine's Logger interface.
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { autoEngineBudget, DEFAULT_ENGINE_BUDGET_MB, type EngineBudget, type OpenIndexSize } from '../core/store/memoryBudget';
import type { Logger } from '../core/types';
import { fromWire } from '../core/errors';
import type { RefreshSummary } from '../core/index/indexer';
import type { DownloadProgress, EngineLoadOptions, EngineMethod, EngineMethods, FromWorker, IndexState, IndexTarget, ToWorker, WireError } from '../protocol/worker';

/** Defaults of the engine process's life cycle (the settings embeddingLens.engine* override them). */
export const ENGINE_DEFAULTS = { idleMs: 5 * 60_000, memoryBudgetMb: DEFAULT_ENGINE_BUDGET_MB } as const;

export interface EngineClientOptions {
  /** Stop the process after this long without a request, releasing its memory; 0 = never. */
  idleMs?: number;
  /**
   * Memory budget of the engine process (MB): V8 heap cap, and the resident size above which an idle
   * engine is stopped at once. Absent: sized from the open indexes (see `budget`).
   */
  memoryBudgetMb?: number;
  /** The machine's memory in MB (caps an automatic budget); default os.totalmem(). */
  machineMb?: number;
  /** The process ended without being asked to (crash, killed). Requests in flight have failed with EngineCrashedError. */
  onCrash?: (message: string) => void;
}

/** Name of the error requests in flight fail with when the engine process dies. */
export const ENGINE_CRASHED = 'EngineCrashedError';

export interface RequestOptions<P = unknown> {
  signal?: AbortSignal;
  /** Progress events of this request; their shape is the method's `progress` in EngineMethods. */
  onProgress?: (progress: P) => void;
  onDownloadProgress?: (progress: DownloadProgress) => void;
}

interface Pending {
  method: EngineMethod;
  params: unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onProgress?: (progress: never) => void;
  onDownloadProgress?: (progress: DownloadProgress) => void;
  cleanup: () => void;
}

/** Rebuilds an Error from the wire so that `instanceof UserError`, its `code` and `name === 'AbortError'` still work. */
export const fromWireError = (e: WireError): Error => fromWire(e);

export class EngineClient {
  private child: ChildProcess | undefined;
  /** The process being stopped on purpose (idle, budget, dispose): its exit is not a crash. */
  private readonly stopping = new WeakSet<ChildProcess>();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** The last model loaded, loaded again first thing when a new process starts (after idle or a crash). */
  private lastLoad: EngineLoadOptions | undefined;
  private stderrTail = '';
  private idleMs: number;
  /** The user's budget (MB); undefined: automatic. */
  private memoryBudgetMb: number | undefined;
  /** Indexes the engine holds open (by folder, storage folder and recipe), for the automatic budget. */
  private readonly openIndexes = new Map<string, OpenIndexSize>();
  private lastBudgetMb: number | undefined;
  /** How many processes were started, and how many of them crashed (tests and the log read these). */
  readonly counts = { started: 0, crashed: 0, idleStops: 0 };

  constructor(private readonly workerPath: string, private readonly log: Logger, private readonly options: EngineClientOptions = {}) {
    this.idleMs = options.idleMs ?? ENGINE_DEFAULTS.idleMs;
    this.memoryBudgetMb = options.memoryBudgetMb;
  }

  /**
   * The memory budget now: the user's, else sized from the open indexes (at least the default, at most
   * 75% of the machine; core/store/memoryBudget.ts).
   */
  get budget(): EngineBudget & { auto: boolean; chunks: number } {
    const chunks = [...this.openIndexes.values()].reduce((a, i) => a + i.chunks, 0);
    if (this.memoryBudgetMb !== undefined) return { mb: this.memoryBudgetMb, neededMb: this.memoryBudgetMb, capped: false, auto: false, chunks };
    return { ...autoEngineBudget([...this.openIndexes.values()], this.options.machineMb ?? os.totalmem() / 1048576), auto: true, chunks };
  }

  /** New life-cycle settings (memoryBudgetMb undefined: automatic): the idle time applies from now on, the heap cap from the next process. */
  configure(options: { idleMs: number; memoryBudgetMb: number | undefined }): void {
    this.idleMs = options.idleMs;
    this.memoryBudgetMb = options.memoryBudgetMb;
    if (!this.pending.size) this.scheduleIdle();
  }

  /** Whether an engine process is running now (false until the first request, and after an idle stop). */
  get started(): boolean {
    return this.child !== undefined;
  }

  /** Process id of the running engine, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  request<M extends EngineMethod>(
    method: M,
    params: EngineMethods[M]['params'],
    options: RequestOptions<EngineMethods[M]['progress']> = {},
  ): Promise<EngineMethods[M]['result']> {
    if (this.disposed) return Promise.reject(new Error('The engine client has been disposed.'));
    const { signal, onProgress, onDownloadProgress } = options;
    if (signal?.aborted) return Promise.reject(abortError());
    clearTimeout(this.idleTimer);
    const fresh = !this.child;
    const child = this.ensureProcess();
    // A new process after an idle stop or a crash: give it back the model it had, before this request
    // (the engine handles requests in order and waits for a load in flight).
    if (fresh && this.lastLoad && method !== 'load' && method !== 'status' && method !== 'unload') {
      const again = this.lastLoad;
      this.log.info(`engine: loading ${again.model} again in the new process`);
      void this.send(child, 'load', again, {}).catch((err: unknown) => this.log.warn(`engine: loading ${again.model} again failed: ${err instanceof Error ? err.message : String(err)}`));
    }
    if (method === 'unload') this.lastLoad = undefined;
    const result = this.send(child, method, params, { signal, onProgress, onDownloadProgress });
    if (method === 'load') {
      void result.then((_) => (this.lastLoad = params as EngineLoadOptions), () => undefined);
    }
    return result;
  }

  private send<M extends EngineMethod>(
    child: ChildProcess,
    method: M,
    params: EngineMethods[M]['params'],
    { signal, onProgress, onDownloadProgress }: RequestOptions<EngineMethods[M]['progress']>,
  ): Promise<EngineMethods[M]['result']> {
    const id = this.nextId++;
    return new Promise<EngineMethods[M]['result']>((resolve, reject) => {
      const onAbort = () => this.post(child, { type: 'cancel', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        method,
        params,
        resolve: resolve as (value: unknown) => void,
        reject,
        onProgress: onProgress as ((progress: never) => void) | undefined,
        onDownloadProgress,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      // The union type of ToWorker cannot be narrowed from a generic M; the table guarantees the pairing.
      this.post(child, { type: 'request', id, method, params } as ToWorker);
    });
  }

  /** Stops the process (and with it the model); pending requests fail. A later request starts a new one. */
  async stop(reason = 'The engine was stopped.'): Promise<void> {
    clearTimeout(this.idleTimer);
    const child = this.child;
    this.child = undefined;
    this.failAll(new Error(reason));
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.stopping.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop('The extension is shutting down.');
  }

  /** Resident memory of the engine process in bytes (Linux: /proc; elsewhere undefined), without asking it. */
  residentBytes(): number | undefined {
    const pid = this.child?.pid;
    if (!pid) return undefined;
    try {
      const pages = Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
      return Number.isFinite(pages) ? pages * 4096 : undefined;
    } catch {
      return undefined;
    }
  }

  private post(child: ChildProcess, message: ToWorker): void {
    if (!child.connected) return; // gone: its exit handler fails what was pending
    child.send(message, (err) => {
      if (err) this.log.warn(`engine: could not send ${message.type} to the engine process: ${err.message}`);
    });
  }

  private ensureProcess(): ChildProcess {
    if (this.child) return this.child;
    const started = performance.now();
    const child = fork(this.workerPath, [], {
      // Structured clone over IPC: Float32Array results arrive as Float32Array.
      serialization: 'advanced',
      // Not the host's execArgv (inspector flags and the like); a V8 heap cap from the memory budget.
      execArgv: [`--max-old-space-size=${this.budget.mb}`],
      // In VS Code desktop process.execPath is Electron: run it as plain Node.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    this.counts.started++;
    this.stderrTail = '';
    child.stdout?.on('data', (d: Buffer) => this.log.info(`engine stdout: ${d.toString().trimEnd()}`));
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      this.stderrTail = (this.stderrTail + text).slice(-4000);
      this.log.warn(`engine stderr: ${text.trimEnd()}`);
    });
    child.on('message', (msg: FromWorker) => this.onMessage(msg, started));
    child.on('error', (err) => {
      this.log.error(`engine process error: ${err.stack ?? err.message}`);
      if (this.child === child) {
        this.child = undefined;
        this.failAll(new Error(`The engine process could not be started or reached: ${err.message}`));
      }
    });
    child.on('exit', (code, sig) => {
      // A new process builds nothing until it indexes: its indexes are reopened at search rates.
      for (const [k, v] of this.openIndexes) this.openIndexes.set(k, { ...v, builtHere: false });
      if (this.stopping.has(child) || this.disposed) return;
      if (this.child === child) this.child = undefined;
      this.counts.crashed++;
      const how = sig ? `killed by ${sig}` : `exit code ${code}`;
      const message = `The Embedding Lens engine process stopped unexpectedly (${how}). It starts again on the next request; the index on disk is unchanged (its files are replaced atomically, never written in place).`;
      this.log.error(`${message}${this.stderrTail ? `\nlast engine output:\n${this.stderrTail}` : ''}`);
      const err = new Error(message);
      err.name = ENGINE_CRASHED;
      this.failAll(err);
      this.options.onCrash?.(message);
    });
    return child;
  }

  private onMessage(msg: FromWorker, started: number): void {
    switch (msg.type) {
      case 'ready':
        this.log.info(`engine process ${this.child?.pid ?? '?'} ready in ${(performance.now() - started).toFixed(0)} ms (memory budget ${this.describeBudget()}, stops after ${Math.round(this.idleMs / 1000)} s idle)`);
        return;
      case 'log':
        (msg.level === 'debug' ? this.log.debug ?? this.log.info : this.log[msg.level]).call(this.log, msg.message);
        return;
      case 'progress':
        // The worker sends the progress shape of the request's method (EngineMethods[M]['progress']).
        this.pending.get(msg.id)?.onProgress?.(msg.progress as never);
        return;
      case 'downloadProgress':
        this.pending.get(msg.id)?.onDownloadProgress?.(msg.progress);
        return;
      case 'result': {
        // Index sizes first: the budget check runs as the last request in flight is taken.
        const pending = this.pending.get(msg.id);
        if (pending) this.noteIndexSize(pending.method, pending.params, msg.result);
        const p = this.take(msg.id);
        p?.resolve(msg.result);
        return;
      }
      case 'error': {
        const p = this.take(msg.id);
        p?.reject(fromWireError(msg.error));
        return;
      }
      default: {
        const unknown: never = msg;
        this.log.warn(`engine sent an unknown message: ${JSON.stringify(unknown)}`);
      }
    }
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      p.cleanup();
      if (!this.pending.size) this.scheduleIdle();
    }
    return p;
  }

  /** What an answer says about the size of an index the engine now holds open (local indexes only). */
  private noteIndexSize(method: EngineMethod, params: unknown, result: unknown): void {
    const key = (t: IndexTarget) => JSON.stringify([t.root, t.storageDir, t.recipe]);
    if (method === 'index' || method === 'indexStatus') {
      const t = params as IndexTarget;
      if (t.store) return; // a shared PostgreSQL index lives in the database, not in the engine
      const before = this.openIndexes.get(key(t));
      if (method === 'index') {
        const s = result as RefreshSummary;
        this.openIndexes.set(key(t), { chunks: s.chunksTotal, builtHere: !!before?.builtHere || (s.chunksTotal > 0 && s.chunksEmbedded * 10 >= s.chunksTotal) });
      } else {
        const s = result as IndexState;
        if (s.exists) this.openIndexes.set(key(t), { chunks: s.chunks ?? 0, builtHere: !!before?.builtHere });
      }
    } else if (method === 'clearIndex') {
      const dir = (params as { storageDir: string }).storageDir;
      for (const [k, v] of this.openIndexes) if (JSON.parse(k)[1] === dir) this.openIndexes.set(k, { ...v, chunks: 0 });
    } else {
      return;
    }
    const b = this.budget;
    if (b.auto && b.mb !== this.lastBudgetMb) this.log.info(`engine: memory budget ${this.describeBudget()}`);
    this.lastBudgetMb = b.mb;
  }

  private describeBudget(): string {
    const b = this.budget;
    if (!b.auto) return `${b.mb} MB (embeddingLens.engineMemoryBudgetMB)`;
    return `${b.mb} MB, sized for the open indexes (${b.chunks} chunks need about ${b.neededMb} MB${b.capped ? `; capped by the machine's memory` : ''})`;
  }

  /** Nothing in flight: stop after the idle time, or at once when the process is over its memory budget. */
  private scheduleIdle(): void {
    clearTimeout(this.idleTimer);
    if (!this.child || this.disposed) return;
    const rss = this.residentBytes();
    const budget = this.budget;
    if (rss !== undefined && rss > budget.mb * 1024 * 1024) {
      const advice = budget.auto
        ? budget.capped
          ? `the open indexes need about ${budget.neededMb} MB, more than this machine's memory allows (the budget takes at most 75% of it)`
          : 'the budget is sized from the open indexes; set embeddingLens.engineMemoryBudgetMB to give it more'
        : 'a large index needs a larger budget: raise the setting embeddingLens.engineMemoryBudgetMB, or remove it to size the budget from the index';
      this.log.warn(`engine: ${(rss / 1048576).toFixed(0)} MB resident, over the ${budget.mb} MB budget: stopping it now (it starts again on the next request, loading the model and the index again; ${advice}; searching takes about 2 KB per indexed chunk and a first index about 4 KB, plus about 0.5 GB: e.g. 4,400 MB for a first index of 1M chunks)`);
      this.idleTimer = setTimeout(() => void this.stopIdle('over its memory budget'), 0);
      return;
    }
    if (this.idleMs > 0) this.idleTimer = setTimeout(() => void this.stopIdle(`idle for ${Math.round(this.idleMs / 1000)} s`), this.idleMs);
    this.idleTimer?.unref?.();
  }

  private async stopIdle(why: string): Promise<void> {
    if (this.pending.size || !this.child) return;
    const rss = this.residentBytes();
    this.counts.idleStops++;
    this.log.info(`engine: stopping the engine process (${why})${rss ? `, releasing ${(rss / 1048576).toFixed(0)} MB` : ''}; the model loads again on the next request`);
    await this.stop('The engine was stopped while idle.');
  }

  private failAll(err: Error): void {
    for (const id of [...this.pending.keys()]) this.take(id)?.reject(err);
  }
}

function abortError(): Error {
  const e = new Error('Cancelled.');
  e.name = 'AbortError';
  return e;
}
