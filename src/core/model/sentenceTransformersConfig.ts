// Reads the sentence-transformers recipe of a model folder: how the model was trained to be used.
//
//   modules.json                      the pipeline: Transformer → Pooling → [Dense] → [Normalize]
//   <pooling path>/config.json        pooling_mode_cls_token / _mean_tokens / _max_tokens / _lasttoken ...
//   config_sentence_transformers.json prompts (query / document), default_prompt_name, similarity_fn_name
//   sentence_bert_config.json         max_seq_length, do_lower_case
//
// Pure: it reads files and returns plain data with, for every value, the file and key it came from.
// It decides nothing about what the engine does with it; anything it cannot represent is listed in
// `unsupported` (with the file and key) so the caller can refuse, naming it, unless the user chose.
// Written by hand because no npm package reads these files (they are Python-side conventions of the
// sentence-transformers library; the field names below are the ones it writes, v2.x–v5.x).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VectorPooling } from '../recipe';

/** Pooling modes the engine can reproduce, in the engine's vocabulary (`last` = sentence-transformers' `lasttoken`). */
export type SentenceTransformersPooling = VectorPooling;

/** A value with where it came from: `file` relative to the model folder, and the key in it. */
export interface Sourced<T> {
  value: T;
  file: string;
  key?: string;
}

export interface SentenceTransformersModule {
  /** Last segment of the module's Python type (`Transformer`, `Pooling`, `Normalize`, `Dense`, ...). */
  kind: string;
  type: string;
  path: string;
}

export interface SentenceTransformersConfig {
  folder: string;
  /** True when the folder has a modules.json (a sentence-transformers model). */
  hasModules: boolean;
  modules: SentenceTransformersModule[];
  pooling?: Sourced<SentenceTransformersPooling>;
  /** Present (value true) when modules.json has a Normalize module; absent without modules.json. */
  normalize?: Sourced<boolean>;
  /** Prompt prepended to queries (`prompts.query`, or `search_query` as some models name it). */
  queryPrompt?: Sourced<string>;
  /** Prompt prepended to documents (`prompts.document`, `passage`, `search_document`, `corpus`). */
  documentPrompt?: Sourced<string>;
  /** Every prompt the model declares, by name, as written. */
  prompts: Record<string, string>;
  defaultPromptName?: Sourced<string>;
  maxSeqLength?: Sourced<number>;
  doLowerCase?: Sourced<boolean>;
  similarity?: Sourced<string>;
  /** Things in these files the engine cannot reproduce, each naming the file and key. Empty when all is understood. */
  unsupported: string[];
}

const MODULES = 'modules.json';
const ST_CONFIG = 'config_sentence_transformers.json';
const SBERT_CONFIG = 'sentence_bert_config.json';

const QUERY_PROMPT_NAMES = ['query', 'search_query'];
const DOCUMENT_PROMPT_NAMES = ['document', 'passage', 'search_document', 'corpus'];

/** Module kinds that change nothing the engine computes (the transformer itself is the ONNX graph). */
const UNDERSTOOD_MODULES = new Set(['Transformer', 'Pooling', 'Normalize']);

/** Error from reading the files themselves (unreadable JSON): the message names the file. */
export class SentenceTransformersConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SentenceTransformersConfigError';
  }
}

function readJson(folder: string, file: string): Record<string, unknown> | unknown[] | undefined {
  const full = path.join(folder, file);
  let text: string;
  try {
    text = fs.readFileSync(full, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SentenceTransformersConfigError(`Cannot read ${full}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown> | unknown[];
  } catch (err) {
    throw new SentenceTransformersConfigError(`${full} is not valid JSON (${(err as Error).message}).`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pooling flags sentence-transformers writes, and what each means for the engine. */
const POOLING_FLAGS: { key: string; mode?: SentenceTransformersPooling }[] = [
  { key: 'pooling_mode_cls_token', mode: 'cls' },
  { key: 'pooling_mode_mean_tokens', mode: 'mean' },
  { key: 'pooling_mode_max_tokens', mode: 'max' },
  { key: 'pooling_mode_lasttoken', mode: 'last' },
  { key: 'pooling_mode_mean_sqrt_len_tokens' },
  { key: 'pooling_mode_weightedmean_tokens' },
];
/** The string form newer configs may carry (`pooling_mode: "lasttoken"`). */
const POOLING_NAMES: Record<string, SentenceTransformersPooling> = { mean: 'mean', cls: 'cls', max: 'max', lasttoken: 'last' };

function readPooling(folder: string, modulePath: string, out: SentenceTransformersConfig): void {
  const file = path.posix.join(modulePath.replace(/\\/g, '/'), 'config.json');
  const json = readJson(folder, file);
  if (!isObject(json)) {
    out.unsupported.push(`${MODULES} names a Pooling module at "${modulePath}" but ${file} is ${json === undefined ? 'missing' : 'not a JSON object'}`);
    return;
  }
  const on = POOLING_FLAGS.filter((f) => json[f.key] === true);
  if (typeof json.pooling_mode === 'string' && on.length === 0) {
    const mode = POOLING_NAMES[json.pooling_mode];
    if (mode) out.pooling = { value: mode, file, key: 'pooling_mode' };
    else out.unsupported.push(`${file}: pooling_mode "${json.pooling_mode}"`);
  } else if (on.length === 1 && on[0].mode) {
    out.pooling = { value: on[0].mode, file, key: on[0].key };
  } else if (on.length === 0) {
    out.unsupported.push(`${file}: no pooling_mode_* flag is true`);
  } else {
    // Several modes on means sentence-transformers concatenates them; one mode without an engine equivalent is named.
    out.unsupported.push(`${file}: ${on.map((f) => f.key).join(' + ')}${on.length > 1 ? ' (several pooling modes concatenated)' : ''}`);
  }
  if (json.include_prompt === false) {
    out.unsupported.push(`${file}: include_prompt false (the prompt's tokens left out of pooling)`);
  }
}

/**
 * Reads the sentence-transformers files of `folder`. Missing files give absent fields (a plain
 * Hugging Face folder gives `hasModules: false` and nothing else); unreadable JSON throws, naming the file.
 */
export function readSentenceTransformersConfig(folder: string): SentenceTransformersConfig {
  const out: SentenceTransformersConfig = { folder, hasModules: false, modules: [], prompts: {}, unsupported: [] };

  const modules = readJson(folder, MODULES);
  if (modules !== undefined) {
    if (!Array.isArray(modules)) {
      out.unsupported.push(`${MODULES}: not a list of modules`);
    } else {
      out.hasModules = true;
      const entries = modules
        .filter(isObject)
        .map((m, i) => ({ idx: typeof m.idx === 'number' ? m.idx : i, type: String(m.type ?? ''), path: String(m.path ?? '') }))
        .sort((a, b) => a.idx - b.idx);
      for (const m of entries) {
        const kind = m.type.split('.').pop() ?? m.type;
        out.modules.push({ kind, type: m.type, path: m.path });
        if (kind === 'Pooling') readPooling(folder, m.path, out);
        else if (kind === 'Normalize') out.normalize = { value: true, file: MODULES, key: `${m.type} (${m.path || 'no folder'})` };
        else if (!UNDERSTOOD_MODULES.has(kind)) out.unsupported.push(`${MODULES}: module ${m.type}${m.path ? ` at "${m.path}"` : ''}`);
      }
      if (out.modules[0] && out.modules[0].kind !== 'Transformer') {
        out.unsupported.push(`${MODULES}: the first module is ${out.modules[0].type}, not a Transformer`);
      }
      if (!out.modules.some((m) => m.kind === 'Pooling')) {
        out.unsupported.push(`${MODULES}: no Pooling module`);
      }
      // Without a Normalize module sentence-transformers does not normalize: say so, with its source.
      if (!out.normalize) out.normalize = { value: false, file: MODULES, key: 'no Normalize module' };
    }
  }

  const st = readJson(folder, ST_CONFIG);
  if (isObject(st)) {
    if (isObject(st.prompts)) {
      for (const [name, prompt] of Object.entries(st.prompts)) {
        if (typeof prompt === 'string') out.prompts[name] = prompt;
      }
      const pick = (names: string[]) => {
        const name = names.find((n) => n in out.prompts);
        return name === undefined ? undefined : { value: out.prompts[name], file: ST_CONFIG, key: `prompts.${name}` };
      };
      out.queryPrompt = pick(QUERY_PROMPT_NAMES);
      out.documentPrompt = pick(DOCUMENT_PROMPT_NAMES);
    }
    if (typeof st.default_prompt_name === 'string') {
      out.defaultPromptName = { value: st.default_prompt_name, file: ST_CONFIG, key: 'default_prompt_name' };
    }
    if (typeof st.similarity_fn_name === 'string') {
      out.similarity = { value: st.similarity_fn_name, file: ST_CONFIG, key: 'similarity_fn_name' };
      if (st.similarity_fn_name !== 'cosine' && st.similarity_fn_name !== 'dot') {
        out.unsupported.push(`${ST_CONFIG}: similarity_fn_name "${st.similarity_fn_name}"`);
      }
    }
  } else if (st !== undefined) {
    out.unsupported.push(`${ST_CONFIG}: not a JSON object`);
  }

  const sbert = readJson(folder, SBERT_CONFIG);
  if (isObject(sbert)) {
    if (typeof sbert.max_seq_length === 'number' && Number.isInteger(sbert.max_seq_length) && sbert.max_seq_length > 0) {
      out.maxSeqLength = { value: sbert.max_seq_length, file: SBERT_CONFIG, key: 'max_seq_length' };
    }
    if (typeof sbert.do_lower_case === 'boolean') {
      out.doLowerCase = { value: sbert.do_lower_case, file: SBERT_CONFIG, key: 'do_lower_case' };
      // The tokenizer (tokenizer.json) lowercases on its own where the model needs it; sentence-transformers'
      // extra flag lowercases the text before tokenizing, which the engine does not do.
      if (sbert.do_lower_case) out.unsupported.push(`${SBERT_CONFIG}: do_lower_case true (text lowercased before tokenizing)`);
    }
  } else if (sbert !== undefined) {
    out.unsupported.push(`${SBERT_CONFIG}: not a JSON object`);
  }
  return out;
}

/** "pooling cls, from the model's 1_Pooling/config.json" — how a value is told to the user. */
export function describeSource(s: Sourced<unknown>): string {
  return `from the model's ${s.file}${s.key && s.file !== MODULES ? ` (${s.key})` : ''}`;
}
