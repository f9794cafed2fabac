// The extension host's side of the engine worker (src/worker/engineWorker.ts, bundled to
// dist/worker.js). The worker is started on the first request, not at activation, and restarted on
// the next request if it dies. Requests are typed against `EngineMethods`; results carrying vectors
// arrive with their buffers transferred, not copied.
//
// Deliberately free of `vscode`: cancellation is an AbortSignal (the host adapts CancellationToken
// with `abortSignalOf`), logging goes through the engine's Logger interface.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/types';
import { fromWire } from '../core/errors';
import type { DownloadProgress, EngineMethod, EngineMethods, FromWorker, ToWorker, WireError } from '../protocol/worker';

export interface RequestOptions<P = unknown> {
  signal?: AbortSignal;
  /** Progress events of this request; their shape is the method's `progress` in EngineMethods. */
  onProgress?: (progress: P) => void;
  onDownloadProgress?: (progress: DownloadProgress) => void;
}

interface Pending {
  method: EngineMethod;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onProgress?: (progress: never) => void;
  onDownloadProgress?: (progress: DownloadProgress) => void;
  cleanup: () => void;
}

/** Rebuilds an Error from the wire so that `instanceof UserError`, its `code` and `name === 'AbortError'` still work. */
export const fromWireError = (e: WireError): Error => fromWire(e);

export class EngineClient {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;

  constructor(private readonly workerPath: string, private readonly log: Logger) {}

  /** Whether a worker thread is running now (false until the first request). */
  get started(): boolean {
    return this.worker !== undefined;
  }

  request<M extends EngineMethod>(
    method: M,
    params: EngineMethods[M]['params'],
    options: RequestOptions<EngineMethods[M]['progress']> = {},
  ): Promise<EngineMethods[M]['result']> {
    if (this.disposed) return Promise.reject(new Error('The engine client has been disposed.'));
    const { signal, onProgress, onDownloadProgress } = options;
    if (signal?.aborted) return Promise.reject(abortError());
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<EngineMethods[M]['result']>((resolve, reject) => {
      const onAbort = () => this.post(worker, { type: 'cancel', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        method,
        resolve: resolve as (value: unknown) => void,
        reject,
        onProgress: onProgress as ((progress: never) => void) | undefined,
        onDownloadProgress,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      // The union type of ToWorker cannot be narrowed from a generic M; the table guarantees the pairing.
      this.post(worker, { type: 'request', id, method, params } as ToWorker);
    });
  }

  /** Stops the worker (and with it the model); pending requests fail. A later request starts a new one. */
  async stop(reason = 'The engine was stopped.'): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error(reason));
    if (worker) await worker.terminate();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop('The extension is shutting down.');
  }

  private post(worker: Worker, message: ToWorker): void {
    worker.postMessage(message);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const started = performance.now();
    const worker = new Worker(this.workerPath, { name: 'embedding-lens-engine' });
    this.worker = worker;
    worker.on('message', (msg: FromWorker) => this.onMessage(msg, started));
    worker.on('error', (err) => {
      this.log.error(`engine worker crashed: ${err.stack ?? err.message}`);
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new Error(`The engine worker crashed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) {
        this.worker = undefined;
        if (code !== 0) this.log.warn(`engine worker exited with code ${code}`);
        this.failAll(new Error(`The engine worker stopped (exit code ${code}).`));
      }
    });
    return worker;
  }

  private onMessage(msg: FromWorker, started: number): void {
    switch (msg.type) {
      case 'ready':
        this.log.info(`engine worker ready in ${(performance.now() - started).toFixed(0)} ms`);
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
        this.log.warn(`engine worker sent an unknown message: ${JSON.stringify(unknown)}`);
      }
    }
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      p.cleanup();
    }
    return p;
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
