// The one place the worker touches the engine (src/core). Everything else in the worker speaks the
// protocol types; this file adapts the engine's Extractor to them.
import { Extractor } from '../core/extract/extractor';
import type { Logger, ProgressEvent, Recipe } from '../core/types';
import type {
  DownloadProgress,
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
export const engineAvailability: { available: boolean; reason?: string } = { available: true };

export async function openEngine(
  options: EngineLoadOptions,
  log: Logger,
  onDownloadProgress: (p: DownloadProgress) => void,
  signal: AbortSignal,
): Promise<Engine> {
  const started = performance.now();
  const extractor = await Extractor.load({
    model: options.model,
    offline: options.offline,
    cacheDir: options.cacheDir,
    threads: options.threads > 0 ? options.threads : undefined,
    maxTokensPerBatch: options.maxTokensPerBatch,
    logger: log,
    onDownloadProgress,
  });
  if (signal.aborted) {
    await extractor.dispose();
    signal.throwIfAborted();
  }
  const i = extractor.info;
  const info: LoadedModelInfo = {
    model: i.model,
    folder: i.folder,
    modelHash: i.modelHash,
    modelType: i.modelType,
    hiddenStates: i.numLayers + 1,
    hiddenSize: i.hiddenSize,
    maxTokens: i.maxLength,
    loadMs: performance.now() - started,
  };
  log.info(`engine: loaded ${i.model} (${i.modelType}, ${i.numLayers} layers, ${i.hiddenSize} wide, hidden states: ${i.hiddenStateSource}) in ${info.loadMs.toFixed(0)} ms`);
  return {
    info,
    extract: (texts, recipe, o) => extractor.extract(texts, recipe, o),
    async inspect(text, abort) {
      const r = await extractor.inspect(text, { signal: abort });
      return {
        text: r.text,
        model: r.model,
        tokens: r.tokens,
        words: r.words,
        truncated: r.truncated,
        layers: r.numLayers + 1,
        tokenCount: r.tokens.length,
        dims: r.hiddenSize,
        hiddenStates: r.hiddenStates,
      };
    },
    dispose: () => extractor.dispose(),
  };
}

/**
 * A Float32Array whose buffer can be transferred without taking other data with it: if the array is
 * a view into a larger (or shared) buffer, copy it once into its own buffer.
 */
export function ownBuffer(a: Float32Array): Float32Array {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer) return a;
  return a.slice();
}
