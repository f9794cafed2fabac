// Entry of the engine (bundled to dist/worker.js). src/host/engineClient.ts starts it in its own
// process (child_process.fork, IPC with structured-clone serialization), so a crash in native code
// (ONNX Runtime, hnswlib) ends this process only, never the extension host that other extensions
// run in, and its memory goes back to the system when it stops. It also still runs in a worker_thread
// (scripts/package.mjs's load probe, tools). The model and its native modules live only here.
import { parentPort } from 'node:worker_threads';
import { toWire } from '../core/errors';
import type { Logger } from '../core/types';
import type {
  EngineMethod,
  EngineMethods,
  FromWorker,
  LogLevel,
  ToWorker,
  WireError,
  WorkerRequest,
} from '../protocol/worker';
import { projectMap } from '../core/map/neighbourMap';
import { clearStorage, openEngine, ownBuffer, type Engine, type Run } from './engine';

/** The channel to the host: a worker_thread's port, or a forked process's IPC channel. */
interface HostPort {
  post(message: FromWorker, transfer: ArrayBuffer[]): void;
  onMessage(listener: (msg: ToWorker) => void): void;
}

function hostPort(): HostPort {
  const thread = parentPort;
  if (thread) {
    return { post: (m, transfer) => thread.postMessage(m, transfer), onMessage: (l) => thread.on('message', l) };
  }
  const send = process.send?.bind(process);
  if (!send) throw new Error('engineWorker must run in a worker_thread or a forked process (child_process.fork)');
  // The host went away (closed window, crashed host): nothing is left to answer to.
  process.on('disconnect', () => process.exit(0));
  // IPC with `serialization: 'advanced'` clones typed arrays; there is no transfer list across processes.
  return { post: (m) => void send(m), onMessage: (l) => process.on('message', l as (m: unknown) => void) };
}
const port = hostPort();

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.post(message, transfer);
}

function send(level: LogLevel, message: string): void {
  post({ type: 'log', level, message });
}
const log: Logger = {
  info: (m) => send('info', m),
  warn: (m) => send('warn', m),
  error: (m) => send('error', m),
  debug: (m) => send('debug', m),
};

let engine: Engine | undefined;
/** The load in flight, so concurrent requests wait for one load instead of starting several. */
let loading: Promise<Engine> | undefined;
const running = new Map<number, AbortController>();

function requireEngine(): Engine {
  if (!engine) {
    const e = new Error('No model is loaded in the engine worker (send `load` first).');
    e.name = 'NoModelError';
    throw e;
  }
  return engine;
}

const toWireError = (err: unknown): WireError => toWire(err);

/** The abort signal of a request and a sink that sends its progress events to the host. */
function runOf<P extends EngineMethods[EngineMethod]['progress']>(id: number, signal: AbortSignal): Run<P> {
  return { signal, onProgress: (progress) => post({ type: 'progress', id, progress }) };
}

type Handled<M extends EngineMethod> = { result: EngineMethods[M]['result']; transfer?: ArrayBuffer[] };

async function handle(req: WorkerRequest, signal: AbortSignal): Promise<Handled<EngineMethod>> {
  switch (req.method) {
    case 'status': {
      const mem = process.memoryUsage();
      return {
        result: {
          node: process.version,
          model: engine?.info.model,
          pid: process.pid,
          ownProcess: !parentPort,
          rssBytes: mem.rss,
          heapUsedBytes: mem.heapUsed,
        },
      };
    }
    case 'load': {
      if (engine && engine.info.model === req.params.model) return { result: engine.info };
      const previous = engine;
      engine = undefined;
      // `loading` is set before the first await: requests that arrive in the same IPC chunk wait for it.
      loading = (async () => {
        await previous?.dispose();
        return openEngine(req.params, log, (progress) => post({ type: 'downloadProgress', id: req.id, progress }), signal);
      })();
      try {
        engine = await loading;
      } finally {
        loading = undefined;
      }
      return { result: engine.info };
    }
    case 'extract': {
      if (loading) await loading;
      const result = await requireEngine().extract(req.params.texts, req.params.recipe, {
        ...req.params.options,
        signal,
        onProgress: (progress) => post({ type: 'progress', id: req.id, progress }),
      });
      const data = ownBuffer(result.data);
      return { result: { ...result, data }, transfer: [data.buffer as ArrayBuffer] };
    }
    case 'inspect': {
      if (loading) await loading;
      const result = await requireEngine().inspect(req.params.text, req.params.recipe, signal);
      const hiddenStates = ownBuffer(result.hiddenStates);
      const pooled = Object.fromEntries(Object.entries(result.pooled).map(([p, v]) => [p, ownBuffer(v)])) as typeof result.pooled;
      return { result: { ...result, hiddenStates, pooled }, transfer: [hiddenStates.buffer as ArrayBuffer, ...Object.values(pooled).map((v) => v.buffer as ArrayBuffer)] };
    }
    case 'attention': {
      if (loading) await loading;
      const result = await requireEngine().attention(req.params.text, signal);
      const probs = ownBuffer(result.probs);
      return { result: { ...result, probs }, transfer: [probs.buffer as ArrayBuffer] };
    }
    case 'index': {
      if (loading) await loading;
      return { result: await requireEngine().index(req.params, runOf(req.id, signal)) };
    }
    case 'search': {
      if (loading) await loading;
      return { result: await requireEngine().search(req.params, signal) };
    }
    case 'similar': {
      if (loading) await loading;
      return { result: await requireEngine().similar(req.params, signal) };
    }
    case 'indexStatus': {
      if (loading) await loading;
      return { result: await requireEngine().indexStatus(req.params) };
    }
    case 'layerNeighbours': {
      if (loading) await loading;
      return { result: await requireEngine().layerNeighbours(req.params, signal) };
    }
    case 'indexPoints': {
      if (loading) await loading;
      const result = await requireEngine().indexPoints(req.params);
      const vectors = ownBuffer(result.vectors);
      return { result: { ...result, vectors }, transfer: [vectors.buffer as ArrayBuffer] };
    }
    case 'mapProjection': {
      const { vectors, dims, k } = req.params;
      const result = projectMap(vectors, dims, k);
      return { result, transfer: [result.umap.buffer as ArrayBuffer] };
    }
    case 'clearIndex': {
      // Clearing every recipe needs no model; clearing one needs the model to name its store.
      if (req.params.recipe && loading) await loading;
      const identity = req.params.recipe ? requireEngine().identity(req.params.recipe) : undefined;
      engine?.dropOpenIndexes();
      return { result: { removed: await clearStorage(req.params.storageDir, identity) } };
    }
    case 'extractToFile': {
      if (loading) await loading;
      return { result: await requireEngine().extractToFile(req.params, runOf(req.id, signal)) };
    }
    case 'sweep': {
      if (loading) await loading;
      return { result: await requireEngine().sweep(req.params, runOf(req.id, signal)) };
    }
    case 'unload': {
      const had = engine !== undefined;
      await engine?.dispose();
      engine = undefined;
      return { result: { unloaded: had } };
    }
    default: {
      const unknown: never = req;
      throw new Error(`unknown request ${JSON.stringify(unknown)}`);
    }
  }
}

port.onMessage((msg: ToWorker) => {
  switch (msg.type) {
    case 'cancel':
      running.get(msg.id)?.abort();
      return;
    case 'request': {
      const controller = new AbortController();
      running.set(msg.id, controller);
      handle(msg, controller.signal).then(
        ({ result, transfer }) => post({ type: 'result', id: msg.id, method: msg.method, result }, transfer),
        (err: unknown) => post({ type: 'error', id: msg.id, error: toWireError(err) }),
      ).finally(() => running.delete(msg.id));
      return;
    }
    default: {
      const unknown: never = msg;
      log.error(`engine worker: unknown message ${JSON.stringify(unknown)}`);
    }
  }
});

post({ type: 'ready' });
