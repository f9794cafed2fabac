// Attention probabilities of one text as a file: `.npy` of [heads, T, T] (one layer) or
// [layers, heads, T, T] (all), plus `<file>.json`, a manifest like the hidden states' one (model,
// hash, layers, tokens with offsets), or both as one JSON document for `--out -`.
import { writeFileAtomic } from '../store/atomicFile';
import { writeNpyArray } from '../store/npy';
import { TOOL_VERSION, UserError, type OutputDType, type TokenInfo, type WordInfo } from '../types';
import type { EncoderInfo } from '../model/encoder';
import type { TextAttention } from './extractor';

export interface AttentionManifest {
  tool: 'embedding-lens';
  toolVersion: string;
  kind: 'attention';
  model: string;
  modelHash: string;
  modelFile: string;
  /** The layer spec as given. */
  layer: string;
  /** Attention layers in the file, Hugging Face output_attentions numbering (0 = first encoder layer). */
  layers: number[];
  heads: number;
  tokenCount: number;
  /** Shape of the array: [heads, query, key] for one layer, [layers, heads, query, key] for all. */
  shape: number[];
  axes: string[];
  dtype: OutputDType;
  /** True when the text was cut to the model's maximum (--truncate). */
  truncated: boolean;
  tokens: TokenInfo[];
  words: WordInfo[];
  createdAt: string;
}

/** The array and manifest of one text's attention (the text must fit one window). */
export function attentionArray(info: EncoderInfo, att: TextAttention, spec: string, all: boolean, dtype: OutputDType): { manifest: AttentionManifest; data: Float32Array } {
  if (att.windows.length !== 1) {
    throw new UserError(
      `The text has ${att.tokenCount} tokens, more than the ${info.maxLength} this model takes, so its attention would be one matrix per window.`,
      'Give --truncate to keep the first tokens (reported in the manifest), or shorten the text.',
    );
  }
  const w = att.windows[0];
  const T = w.tokens.length;
  const shape = all ? [att.layers.length, att.heads, T, T] : [att.heads, T, T];
  return {
    data: w.probs,
    manifest: {
      tool: 'embedding-lens',
      toolVersion: TOOL_VERSION,
      kind: 'attention',
      model: info.model,
      modelHash: info.modelHash,
      modelFile: info.modelFile,
      layer: spec,
      layers: att.layers,
      heads: att.heads,
      tokenCount: T,
      shape,
      axes: all ? ['layer', 'head', 'query', 'key'] : ['head', 'query', 'key'],
      dtype,
      truncated: att.truncated,
      tokens: w.tokens,
      words: w.words,
      createdAt: new Date().toISOString(),
    },
  };
}

export async function writeAttentionNpy(file: string, manifest: AttentionManifest, data: Float32Array): Promise<string[]> {
  await writeNpyArray(file, data, manifest.shape, manifest.dtype);
  const manifestFile = `${file}.json`;
  await writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 1) + '\n');
  return [file, manifestFile];
}

/** Nested arrays in the array's own shape, for JSON output. */
export function nestedArray(data: Float32Array, shape: number[]): unknown {
  const build = (offset: number, dim: number): unknown => {
    if (dim === shape.length - 1) return Array.from(data.subarray(offset, offset + shape[dim]));
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: shape[dim] }, (_, i) => build(offset + i * stride, dim + 1));
  };
  return build(0, 0);
}
