// Resolves what the user named as a model — a local folder or a Hugging Face hub id — to a folder on
// disk in the usual layout, downloading hub models through transformers.js into a cache folder.
// Every missing piece is named in the error, so the user knows what to fetch or export.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError, type Logger } from '../types';

export interface ModelSourceOptions {
  /** Forbid the network: a hub id must already be in the cache. */
  offline?: boolean;
  /** Where downloaded models are kept. Default: ~/.cache/embedding-lens/models */
  cacheDir?: string;
  /** Which weights file: transformers.js's dtype names (see MODEL_DTYPES). Default fp32. */
  modelDtype?: ModelDtype;
  /** Alias of `modelDtype: 'q8'` (onnx/model_quantized.onnx), kept for older callers and `--quantized`. */
  quantized?: boolean;
  logger?: Logger;
  /** Download progress, per file, bytes. */
  onDownloadProgress?: (event: DownloadProgress) => void;
  /**
   * Base URL of the Hub (default: $HF_ENDPOINT, else https://huggingface.co): a mirror, or a local
   * server serving folders as `<owner>/<name>/resolve/main/<file>`.
   */
  hubUrl?: string;
}

export interface DownloadProgress {
  file: string;
  loaded: number;
  total: number;
  status: 'downloading' | 'done';
}

/**
 * The weight variants a model folder may hold, named as transformers.js names them (its `dtype` option)
 * and with the file names its exports use (`onnx/model_<suffix>.onnx`).
 */
export const MODEL_DTYPES = {
  fp32: ['model.onnx'],
  fp16: ['model_fp16.onnx'],
  q8: ['model_quantized.onnx', 'model_q8.onnx'],
  int8: ['model_int8.onnx'],
  uint8: ['model_uint8.onnx'],
  q4: ['model_q4.onnx'],
  q4f16: ['model_q4f16.onnx'],
  bnb4: ['model_bnb4.onnx'],
} as const;
export type ModelDtype = keyof typeof MODEL_DTYPES;

/** Checks a model dtype given by the user (`flag` names where it came from, for the message). */
export function parseModelDtype(value: string | undefined, flag: string): ModelDtype | undefined {
  if (value === undefined || value === '') return undefined;
  if (value in MODEL_DTYPES) return value as ModelDtype;
  throw new UserError(`Unknown ${flag} "${value}".`, `Use one of: ${Object.keys(MODEL_DTYPES).join(', ')} (transformers.js's names; q8 is onnx/model_quantized.onnx).`);
}

/** The dtype asked for, with `quantized` as the alias of q8; both given and different is an error. */
export function requestedDtype(options: { modelDtype?: ModelDtype; quantized?: boolean }): ModelDtype {
  if (options.quantized && options.modelDtype && options.modelDtype !== 'q8') {
    throw new UserError(`The quantized model means model dtype q8, but model dtype ${options.modelDtype} was also asked for.`, 'Ask for one of the two.');
  }
  return options.modelDtype ?? (options.quantized ? 'q8' : 'fp32');
}

/** The dtypes whose files the folder has (onnx/ or the folder itself). */
export function availableDtypes(folder: string): ModelDtype[] {
  return (Object.keys(MODEL_DTYPES) as ModelDtype[]).filter((d) => MODEL_DTYPES[d].some((f) => fs.existsSync(path.join(folder, 'onnx', f)) || fs.existsSync(path.join(folder, f))));
}

export interface ResolvedModel {
  /** What the user gave (hub id or folder). */
  spec: string;
  folder: string;
  onnxFile: string;
  configFile: string;
  tokenizerFile: string;
  tokenizerConfigFile?: string;
  fromHub: boolean;
  modelDtype: ModelDtype;
}

export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'embedding-lens', 'models');
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * The model that ships inside the package (the repository's models/ folder, copied into the .vsix):
 * sentence-transformers/all-MiniLM-L6-v2, so search works with nothing to download. Its name is the
 * default model of the CLI and the extension; see models/all-MiniLM-L6-v2/README.md for provenance.
 */
export const DEFAULT_MODEL = 'all-MiniLM-L6-v2';

/** The package folder holding `models/<name>/config.json`, searched upwards from this file (src/core/model or dist/). */
function findBundledModel(name: string): string {
  const start = typeof __dirname !== 'undefined' ? __dirname : process.cwd();
  let dir = start;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'models', name);
    if (fs.existsSync(path.join(candidate, 'config.json'))) return candidate;
    dir = path.dirname(dir);
  }
  return path.join(start, '..', 'models', name);
}

export const BUNDLED_MODEL_DIR = findBundledModel(DEFAULT_MODEL);

/** The dtype whose file an index records (RecipeIdentity.modelFile, e.g. `onnx/model_int8.onnx`), if it is one of MODEL_DTYPES's. */
export function dtypeOfFile(modelFile: string | undefined): ModelDtype | undefined {
  if (!modelFile) return undefined;
  const base = modelFile.replace(/\\/g, '/').split('/').pop();
  return (Object.keys(MODEL_DTYPES) as ModelDtype[]).find((d) => (MODEL_DTYPES[d] as readonly string[]).includes(base ?? ''));
}

function onnxCandidates(dtype: ModelDtype): string[] {
  return [...MODEL_DTYPES[dtype].map((f) => `onnx/${f}`), ...MODEL_DTYPES[dtype]];
}

/** Checks a folder for the files a model needs and says which one is missing. */
export function inspectModelFolder(folder: string, spec: string, dtype: ModelDtype = 'fp32'): ResolvedModel {
  const stat = fs.statSync(folder, { throwIfNoEntry: false });
  if (!stat) throw new UserError(`Model folder "${folder}" does not exist.`, undefined, { code: 'MODEL_UNAVAILABLE', model: spec });
  if (!stat.isDirectory()) throw new UserError(`"${folder}" is a file, not a model folder.`, 'Give the folder that holds config.json, tokenizer.json and onnx/model.onnx.', { code: 'MODEL_UNAVAILABLE', model: spec });
  const need = (name: string, why: string) => {
    const file = path.join(folder, name);
    if (!fs.existsSync(file)) {
      throw new UserError(`The model folder "${folder}" has no ${name} (${why}).`, 'A model folder needs config.json, tokenizer.json and onnx/model.onnx, as Hugging Face ONNX exports have (e.g. Xenova/* or onnx-community/* models).', { code: 'MODEL_INVALID', model: spec });
    }
    return file;
  };
  const configFile = need('config.json', 'the model configuration');
  const tokenizerFile = need('tokenizer.json', 'the fast tokenizer; export it with tokenizer.save_pretrained()');
  const onnxName = onnxCandidates(dtype).find((n) => fs.existsSync(path.join(folder, n)));
  if (!onnxName) {
    const wanted = onnxCandidates(dtype)[0];
    const present = availableDtypes(folder);
    // The repository and the .vsix carry one graph of the built-in model (fp32); its int8 graph is made.
    const madeNotShipped = path.resolve(folder) === path.resolve(BUNDLED_MODEL_DIR) && dtype === 'int8'
      ? 'The built-in model ships its fp32 graph only; the int8 graph is made from it: run `npm run model:int8` in a clone of the embedding-lens repository (Python with scripts/requirements-int8.txt) and use the model folder it writes to, or ask for fp32. '
      : '';
    throw new UserError(
      `The model folder "${folder}" has no ${wanted} (the ${dtype} ONNX graph).`,
      madeNotShipped + (present.length
        ? `It has: ${present.map((d) => `${d} (${onnxCandidates(d).find((n) => fs.existsSync(path.join(folder, n)))})`).join(', ')}. Ask for one of these model dtypes.`
        : 'Export the model to ONNX (e.g. with optimum-cli export onnx) into onnx/model.onnx.'),
      { code: 'MODEL_INVALID', model: spec },
    );
  }
  const tokenizerConfig = path.join(folder, 'tokenizer_config.json');
  return {
    spec,
    folder,
    onnxFile: path.join(folder, onnxName),
    configFile,
    tokenizerFile,
    tokenizerConfigFile: fs.existsSync(tokenizerConfig) ? tokenizerConfig : undefined,
    fromHub: false,
    modelDtype: dtype,
  };
}

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('~') || /^[A-Za-z]:[\\/]/.test(spec) || spec.includes('\\');
}

export async function resolveModel(spec: string, options: ModelSourceOptions = {}): Promise<ResolvedModel> {
  const trimmed = spec.trim();
  if (!trimmed) throw new UserError('No model given.', 'Name a Hugging Face model id (e.g. Xenova/all-MiniLM-L6-v2) or a local model folder.');
  if (trimmed === DEFAULT_MODEL) {
    if (!fs.existsSync(BUNDLED_MODEL_DIR)) {
      throw new UserError(`The built-in model ${DEFAULT_MODEL} is missing from this installation (${BUNDLED_MODEL_DIR}).`, 'Reinstall embedding-lens, or name another model (a Hugging Face id such as Xenova/all-MiniLM-L6-v2, or a local model folder).', { code: 'MODEL_UNAVAILABLE', model: trimmed });
    }
    return inspectModelFolder(BUNDLED_MODEL_DIR, trimmed, requestedDtype(options));
  }
  const expanded = trimmed.startsWith('~') ? path.join(os.homedir(), trimmed.slice(1)) : trimmed;
  if (fs.existsSync(expanded) || looksLikePath(trimmed) || !HUB_ID.test(trimmed)) {
    if (!fs.existsSync(expanded) && !looksLikePath(trimmed) && !HUB_ID.test(trimmed)) {
      throw new UserError(`"${trimmed}" is neither an existing model folder nor a Hugging Face model id (owner/name).`, undefined, { code: 'MODEL_UNAVAILABLE', model: trimmed });
    }
    return inspectModelFolder(path.resolve(expanded), trimmed, requestedDtype(options));
  }

  // A hub id: use the cached copy when it is complete, download otherwise.
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const folder = path.join(cacheDir, ...trimmed.split('/'));
  try {
    return { ...inspectModelFolder(folder, trimmed, requestedDtype(options)), fromHub: true };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
  }
  if (options.offline) {
    throw new UserError(
      `Model "${trimmed}" is not in the cache (${folder}) and downloads are off.`,
      'Allow downloads once, or use a local model folder with config.json, tokenizer.json and onnx/model.onnx.',
      { code: 'MODEL_UNAVAILABLE', model: trimmed },
    );
  }
  await downloadFromHub(trimmed, cacheDir, options);
  return { ...inspectModelFolder(folder, trimmed, requestedDtype(options)), fromHub: true };
}

/** Downloads config, tokenizer and ONNX graph of a hub model into `cacheDir/<owner>/<name>/` via transformers.js. */
async function downloadFromHub(id: string, cacheDir: string, options: ModelSourceOptions): Promise<void> {
  // transformers.js is loaded only here: it is large and only needed for downloads.
  const transformers = await import('@huggingface/transformers');
  const { env, AutoConfig, AutoTokenizer, AutoModel } = transformers;
  env.allowRemoteModels = true;
  env.allowLocalModels = false;
  env.useFSCache = true;
  env.cacheDir = cacheDir;
  const endpoint = options.hubUrl ?? process.env.HF_ENDPOINT;
  if (endpoint) env.remoteHost = endpoint.endsWith('/') ? endpoint : `${endpoint}/`;
  const progress_callback = (info: { status: string; file?: string; loaded?: number; total?: number }) => {
    if (!info.file) return;
    if (info.status === 'progress') options.onDownloadProgress?.({ file: info.file, loaded: info.loaded ?? 0, total: info.total ?? 0, status: 'downloading' });
    if (info.status === 'done') options.onDownloadProgress?.({ file: info.file, loaded: info.total ?? 0, total: info.total ?? 0, status: 'done' });
  };
  options.logger?.info(`Downloading ${id} from ${env.remoteHost} into ${cacheDir}`);
  try {
    await AutoConfig.from_pretrained(id, { progress_callback } as never);
    await AutoTokenizer.from_pretrained(id, { progress_callback } as never);
    // AutoModel fetches onnx/model(.quantized).onnx into the cache; we load it ourselves afterwards.
    const model = await AutoModel.from_pretrained(id, {
      progress_callback,
      dtype: requestedDtype(options),
      device: 'cpu',
    } as never);
    await (model as { dispose?: () => Promise<unknown> }).dispose?.();
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const network = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network/i.test(message + String((err as { cause?: unknown }).cause ?? ''));
    throw new UserError(
      network
        ? `Could not reach the Hugging Face Hub to download "${id}" (${message}).`
        : `Could not download "${id}" from the Hugging Face Hub: ${message}`,
      'To work offline, use a local model folder that holds config.json, tokenizer.json and onnx/model.onnx. No other model is used in its place.',
      { code: 'MODEL_UNAVAILABLE', model: id },
    );
  }
}
