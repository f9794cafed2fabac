// The one place the worker touches the engine (src/core). Everything else in the worker speaks the
// protocol types; this file adapts the engine's API to them.
//
// The engine's Extractor (src/core/extract/extractor.ts) is not in the tree yet. Until it is,
// `openEngine` refuses with a clear message; when it lands, replace the body of `openEngine` with
// `Extractor.load(...)` and map `extract` / `inspect` (see the TODO markers).
import type { Logger, ProgressEvent, Recipe } from '../core/types';
import { UserError } from '../core/types';
import type {
  EngineLoadOptions,
  ExtractRequestOptions,
  LoadedModelInfo,
  WireExtractResult,
  WireInspectResult,
} from '../protocol/worker';

export interface Engine {
  readonly info: LoadedModelInfo;
  extract(
    texts: string[],
    recipe: Recipe,
    options: ExtractRequestOptions & { signal: AbortSignal; onProgress: (p: ProgressEvent) => void },
  ): Promise<WireExtractResult>;
  inspect(text: string, signal: AbortSignal): Promise<WireInspectResult>;
  dispose(): Promise<void>;
}

/** Whether the engine can be used in this build; reported by the worker's `status` request. */
export const engineAvailability: { available: boolean; reason?: string } = {
  available: false,
  reason: 'the extraction engine (src/core/extract/extractor.ts) is not part of this build yet',
};

export async function openEngine(options: EngineLoadOptions, log: Logger): Promise<Engine> {
  // TODO(engine): const extractor = await Extractor.load({ model, offline, threads, maxTokensPerBatch, logger: log });
  log.info(`engine: load requested for ${options.model} (offline=${options.offline})`);
  throw new UserError(
    'Embedding Lens: the extraction engine is not available in this version yet.',
    'Model loading, extraction and inspection arrive with the engine; the rest of the extension works.',
  );
}

/**
 * A Float32Array whose buffer can be transferred without taking other data with it: if the array is
 * a view into a larger (or shared) buffer, copy it once into its own buffer.
 */
export function ownBuffer(a: Float32Array): Float32Array {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer) return a;
  return a.slice();
}
