// The one place that talks to ONNX Runtime: loads an encoder, exposes its hidden states (see
// onnxGraph.ts), keeps one session per set of requested layers (each cut after its deepest layer),
// and runs padded batches.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError, type Logger } from '../types';
import { findAttentionProbs, type AttentionMap } from './attentionGraph';
import { buildVariant, configuredLayerCount, decodeModel, findHiddenStates, loadOnnxModel, summarize, usesExternalData, type HiddenStateMap, type OnnxModel } from './onnxGraph';
import type { ResolvedModel } from './modelSource';
import { TextTokenizer } from './tokenizer';

export interface EncoderInfo {
  /** Hub id or folder, as the user gave it. */
  model: string;
  folder: string;
  modelFile: string;
  /** sha256 of the ONNX file, first 16 hex characters. */
  modelHash: string;
  modelType: string;
  numLayers: number;
  hiddenSize: number;
  /** Longest sequence the model takes, special tokens included. */
  maxLength: number;
  padId: number;
  vocabSize: number;
  inputs: string[];
  /** How the hidden states were located. */
  hiddenStateSource: HiddenStateMap['source'];
}

export interface EncoderOptions {
  /** Intra-op threads for ONNX Runtime (0 or undefined: ORT's default, one per core). */
  threads?: number;
  logger?: Logger;
}

/** A right-padded batch: row-major [batch, seqLen]. */
export interface PaddedBatch {
  batch: number;
  seqLen: number;
  ids: Int32Array;
  typeIds: Int32Array;
  mask: Int32Array;
}

const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);
const DECODER_TYPES = /^(gpt|llama|mistral|mixtral|qwen|phi|gemma|opt|bloom|falcon|codegen|starcoder|t5|bart|mbart|whisper|marian)/i;
// Families whose position ids start after the padding id (HF's create_position_ids_from_input_ids).
const OFFSET_POSITION_FAMILIES = new Set(['roberta', 'xlm-roberta', 'camembert', 'longformer', 'mpnet', 'xlm-roberta-xl']);

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function numberField(obj: Record<string, unknown>, keys: string[]): number | undefined {
  for (const k of keys) {
    const v = obj[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

export class EncoderModel {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly inputTypes: Map<string, 'int64' | 'int32'>;
  private attentionMap?: AttentionMap;

  private constructor(
    readonly info: EncoderInfo,
    readonly tokenizer: TextTokenizer,
    private readonly onnx: OnnxModel,
    private readonly hidden: HiddenStateMap,
    private readonly sessionOptions: ort.InferenceSession.SessionOptions,
    private readonly outputName: string,
    private readonly positionOffset: number,
    private readonly logger?: Logger,
  ) {
    this.inputTypes = new Map(
      onnx.proto.graph!.input.map((i) => {
        const elem = i.type?.value.case === 'tensorType' ? i.type.value.value.elemType : 7;
        return [i.name, elem === 6 ? 'int32' : 'int64'];
      }),
    );
  }

  static async load(resolved: ResolvedModel, options: EncoderOptions = {}): Promise<EncoderModel> {
    const config = readJson(resolved.configFile);
    const tokenizerConfig = resolved.tokenizerConfigFile ? readJson(resolved.tokenizerConfigFile) : {};
    const modelType = String(config.model_type ?? 'unknown');
    const architectures = Array.isArray(config.architectures) ? config.architectures.map(String) : [];
    if (config.is_decoder === true || DECODER_TYPES.test(modelType) || architectures.some((a) => /ForCausalLM|ForConditionalGeneration|LMHeadModel/.test(a))) {
      throw new UserError(
        `"${resolved.spec}" is a ${modelType} model (${architectures.join(', ') || 'decoder'}), not an encoder.`,
        'Embedding Lens reads hidden states of encoder models: BERT, RoBERTa, DistilBERT, MPNet, XLM-R, MiniLM, E5, BGE, ...',
      );
    }

    const bytes = fs.readFileSync(resolved.onnxFile);
    const modelHash = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const onnx = loadOnnxModel(bytes);
    const proto = onnx.proto;
    const summary = summarize(proto);
    const unknown = summary.inputs.filter((n) => !KNOWN_INPUTS.has(n));
    if (unknown.length) {
      throw new UserError(
        `The ONNX model takes inputs Embedding Lens cannot provide: ${unknown.join(', ')}.`,
        'It is not a plain encoder export (inputs must be a subset of input_ids, attention_mask, token_type_ids, position_ids).',
      );
    }
    if (!summary.inputs.includes('input_ids')) {
      throw new UserError('The ONNX model has no input_ids input, so it is not a text encoder export.');
    }
    const outputName = summary.outputs.includes('last_hidden_state') ? 'last_hidden_state' : undefined;
    if (!outputName) {
      throw new UserError(
        `The ONNX model has no "last_hidden_state" output (it outputs: ${summary.outputs.join(', ')}).`,
        'Export the base model (e.g. optimum-cli export onnx --task feature-extraction), not a head for classification or generation.',
      );
    }
    const hidden = findHiddenStates(proto, outputName, configuredLayerCount(config));

    const hiddenSize = numberField(config, ['hidden_size', 'dim', 'd_model']);
    if (!hiddenSize) throw new UserError(`${resolved.configFile} has no hidden_size (or dim / d_model).`);
    const vocabSize = numberField(config, ['vocab_size']) ?? Number.MAX_SAFE_INTEGER;
    const tokenizer = TextTokenizer.load(resolved.tokenizerFile);
    const padToken = typeof tokenizerConfig.pad_token === 'string' ? tokenizerConfig.pad_token : undefined;
    const padId = numberField(config, ['pad_token_id']) ?? (padToken ? tokenizer.tokenToId(padToken) : undefined) ?? 0;
    const positionOffset = OFFSET_POSITION_FAMILIES.has(modelType) ? padId + 1 : 0;
    const maxPositions = numberField(config, ['max_position_embeddings', 'n_positions']);
    const tokenizerMax = numberField(tokenizerConfig, ['model_max_length']);
    const limits = [maxPositions !== undefined ? maxPositions - positionOffset : undefined, tokenizerMax !== undefined && tokenizerMax < 1e6 ? tokenizerMax : undefined]
      .filter((v): v is number => v !== undefined && v > 0);
    const maxLength = limits.length ? Math.min(...limits) : 512;

    const sessionOptions: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(options.threads && options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
    };
    if (usesExternalData(proto)) {
      // Initializers stored beside the graph: hand ORT the files by name when creating from a buffer.
      const files = new Set(proto.graph!.initializer.flatMap((t) => t.externalData.filter((e) => e.key === 'location').map((e) => e.value)));
      sessionOptions.externalData = [...files].map((f) => ({ path: f, data: path.join(path.dirname(resolved.onnxFile), f) }));
    }

    const info: EncoderInfo = {
      model: resolved.spec,
      folder: resolved.folder,
      modelFile: path.relative(resolved.folder, resolved.onnxFile),
      modelHash,
      modelType,
      numLayers: hidden.numLayers,
      hiddenSize,
      maxLength,
      padId,
      vocabSize,
      inputs: summary.inputs,
      hiddenStateSource: hidden.source,
    };
    options.logger?.info(`Loaded ${resolved.spec}: ${modelType}, ${hidden.numLayers} layers, hidden ${hiddenSize}, max ${maxLength} tokens, hidden states found from the ${hidden.source}.`);
    return new EncoderModel(info, tokenizer, onnx, hidden, sessionOptions, outputName, positionOffset, options.logger);
  }

  /** Number of graph nodes of the session that computes `layers` (to verify the cut). */
  async nodeCount(layers: number[]): Promise<number> {
    return decodeModel(this.variantBytes(layers)).graph!.node.length;
  }

  private outputTensors(layers: number[]): string[] {
    return [...new Set(layers)].sort((a, b) => a - b).map((l) => this.hidden.tensors[l]);
  }

  private variantBytes(layers: number[]): Uint8Array {
    const outputs = this.outputTensors(layers);
    // Only the model's own output asked for: the original file is already that graph.
    if (outputs.length === 1 && outputs[0] === this.outputName) return this.onnx.bytes;
    return buildVariant(this.onnx, outputs);
  }

  /** Creates (and caches) the session for `layers` ahead of the first batch. */
  async prepare(layers: number[]): Promise<void> {
    await this.session(layers);
  }

  private session(layers: number[]): Promise<ort.InferenceSession> {
    return this.sessionFor(this.outputTensors(layers), () => this.variantBytes(layers), `hidden states [${[...new Set(layers)].sort((a, b) => a - b).join(', ')}]`);
  }

  private sessionFor(outputs: string[], bytes: () => Uint8Array, what: string): Promise<ort.InferenceSession> {
    const key = outputs.join('\n');
    let session = this.sessions.get(key);
    if (!session) {
      const started = performance.now();
      session = ort.InferenceSession.create(bytes(), this.sessionOptions).then(
        (s) => {
          this.logger?.debug?.(`ONNX session for ${what} ready in ${(performance.now() - started).toFixed(0)} ms`);
          return s;
        },
        (err: Error) => {
          this.sessions.delete(key);
          throw new UserError(`ONNX Runtime could not load the model: ${err.message}`);
        },
      );
      this.sessions.set(key, session);
    }
    return session;
  }

  /**
   * Runs one padded batch and returns, for each requested hidden-state index (in the order given),
   * a [batch, seqLen, hidden] Float32Array.
   */
  async run(batch: PaddedBatch, layers: number[]): Promise<Float32Array[]> {
    this.checkIds(batch);
    const session = await this.session(layers);
    const result = await session.run(this.feeds(session, batch));
    const out = layers.map((l) => {
      const t = result[this.hidden.tensors[l]];
      const dims = t.dims;
      if (dims.length !== 3 || dims[0] !== batch.batch || dims[1] !== batch.seqLen || dims[2] !== this.info.hiddenSize) {
        throw new UserError(`Hidden state ${l} has shape [${dims.join(', ')}], expected [${batch.batch}, ${batch.seqLen}, ${this.info.hiddenSize}].`, 'config.json does not match the ONNX model.');
      }
      return t.data as Float32Array;
    });
    for (const t of Object.values(result)) if (!out.includes(t.data as Float32Array)) t.dispose();
    return out;
  }

  private checkIds(batch: PaddedBatch): void {
    for (let i = 0; i < batch.ids.length; i++) {
      const id = batch.ids[i];
      if (id < 0 || id >= this.info.vocabSize) {
        throw new UserError(
          `Token id ${id} is beyond the model's embedding table (vocab_size ${this.info.vocabSize}).`,
          'tokenizer.json and the ONNX model do not belong together: use the tokenizer the model was trained with.',
        );
      }
    }
  }

  private feeds(session: ort.InferenceSession, batch: PaddedBatch): Record<string, ort.Tensor> {
    const shape = [batch.batch, batch.seqLen];
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      let values: Int32Array;
      if (name === 'input_ids') values = batch.ids;
      else if (name === 'attention_mask') values = batch.mask;
      else if (name === 'token_type_ids') values = batch.typeIds;
      else values = this.positionIds(batch);
      feeds[name] = this.inputTypes.get(name) === 'int32'
        ? new ort.Tensor('int32', values, shape)
        : new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), shape);
    }
    return feeds;
  }

  /** Where the attention probabilities are (found on first use; refuses fused attention). */
  attention(): AttentionMap {
    this.attentionMap ??= findAttentionProbs(this.onnx.proto, this.outputName, this.info.numLayers);
    return this.attentionMap;
  }

  /**
   * Attention probabilities of `layers` (Hugging Face output_attentions numbering) for one padded
   * batch: for each layer, [batch, heads, seqLen, seqLen]. The session is cut after the deepest layer
   * asked for. Checked here: the shape, and that every real query row puts all its weight (1 ± 1e-3)
   * on real keys — a tensor that fails either is not attention probabilities, and is refused.
   */
  async runAttention(batch: PaddedBatch, layers: number[]): Promise<{ heads: number; probs: Float32Array[] }> {
    this.checkIds(batch);
    const map = this.attention();
    const outputs = [...new Set(layers)].sort((a, b) => a - b).map((l) => map.tensors[l]);
    const session = await this.sessionFor(outputs, () => buildVariant(this.onnx, outputs), `attention of layers [${[...new Set(layers)].sort((a, b) => a - b).join(', ')}]`);
    const result = await session.run(this.feeds(session, batch));
    const S = batch.seqLen;
    let heads = 0;
    const probs = layers.map((l) => {
      const t = result[map.tensors[l]];
      const dims = t.dims;
      if (dims.length !== 4 || dims[0] !== batch.batch || dims[2] !== S || dims[3] !== S || (heads && dims[1] !== heads)) {
        throw new UserError(
          `The Softmax found for attention layer ${l} (${map.nodes[l]}) has shape [${dims.join(', ')}], not [${batch.batch}, heads, ${S}, ${S}].`,
          'This graph lays out attention differently from Hugging Face exports. Please report this model.',
        );
      }
      heads = dims[1];
      const data = t.data as Float32Array;
      for (let b = 0; b < batch.batch; b++) {
        for (let h = 0; h < heads; h++) {
          for (let q = 0; q < S; q++) {
            if (batch.mask[b * S + q] !== 1) continue;
            const row = ((b * heads + h) * S + q) * S;
            let real = 0;
            for (let k = 0; k < S; k++) if (batch.mask[b * S + k] === 1) real += data[row + k];
            if (!(Math.abs(real - 1) <= 1e-3)) {
              throw new UserError(
                `The Softmax found for attention layer ${l} (${map.nodes[l]}) gives a row whose weights on the real tokens sum to ${real.toPrecision(6)}, not 1.`,
                'It is not the attention probabilities over the keys. Please report this model.',
              );
            }
          }
        }
      }
      return data;
    });
    for (const t of Object.values(result)) if (!probs.includes(t.data as Float32Array)) t.dispose();
    return { heads, probs };
  }

  private positionIds(batch: PaddedBatch): Int32Array {
    const ids = new Int32Array(batch.batch * batch.seqLen);
    for (let b = 0; b < batch.batch; b++) {
      for (let t = 0; t < batch.seqLen; t++) {
        const real = batch.mask[b * batch.seqLen + t] === 1;
        ids[b * batch.seqLen + t] = real ? t + this.positionOffset : this.info.padId;
      }
    }
    return ids;
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.then((x) => x.release(), () => undefined)));
  }
}
