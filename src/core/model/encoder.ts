// The one place that talks to ONNX Runtime: loads an encoder, exposes its hidden states (see
// onnxGraph.ts), keeps one session per set of requested layers (each cut after its deepest layer),
// and runs padded batches.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError, type Logger } from '../types';
import { findAttentionProbs, type AttentionMap } from './attentionGraph';
import { buildVariant, configuredLayerCount, decodeModel, findResidualStream, loadOnnxModel, summarize, usesExternalData, type BlockLayout, type GraphSummary, type HiddenStateMap, type OnnxModel, type ResidualStream } from './onnxGraph';
import { hfHiddenStates } from './hfConventions';
import { defaultCacheDir, type ModelDtype, type ResolvedModel } from './modelSource';
import type { Encoded } from './tokenizer';
import { TextTokenizer } from './tokenizer';
import { sweepStaleTempFilesSync, writeFileAtomic, writeFileAtomicSync } from '../store/atomicFile';
import { cosine } from '../vectorMath';
import { OrtSessionCache } from './ortSessionCache';
import { TOOL_VERSION } from '../types';

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
  /** Where the norms sit in each block, as found in the graph. */
  layout: BlockLayout;
  /** One line for logs: the layout and what index L means. */
  layoutDescription: string;
  /**
   * Hidden-state index of the model's own output (`last_hidden_state`, layer spec `output`): numLayers
   * when HF's last hidden state is the output, numLayers + 1 when it is not (ModernBERT: before final_norm).
   */
  outputIndex: number;
  /**
   * Index of the graph's `sentence_embedding` output (pooling, projection and normalization baked into the
   * graph; layer spec `sentence`), after the hidden states and `output`; undefined when the graph has none.
   */
  sentenceIndex?: number;
  /** The weights file variant (transformers.js dtype name). */
  modelDtype: ModelDtype;
  /** Side the tokenizer pads on (tokenizer_config.json `padding_side`; right when absent). */
  paddingSide: 'left' | 'right';
  /**
   * The graph quantises activations at run time with one scale per tensor (DynamicQuantizeLinear):
   * in a padded batch each text's result would depend on the other texts, so such a model runs one
   * sequence per call (see Extractor).
   */
  dynamicQuantization: boolean;
  /**
   * The graph's quantised node types (MatMulNBits, MatMulInteger, ...), sorted; empty for a float graph.
   * A batched quantised graph is checked once to give each text what it gives alone (see selfCheck).
   */
  quantizedOps: string[];
}

export interface EncoderOptions {
  /** Intra-op threads for ONNX Runtime (0 or undefined: ORT's default, one per core). */
  threads?: number;
  logger?: Logger;
  /**
   * Where passed self-checks (see `checkedOnce`) and model files' sha256 (ModelDigest) are recorded; false:
   * check and hash in every process. Default: `self-checks` beside the model cache (~/.cache/embedding-lens/self-checks).
   */
  selfCheckDir?: string | false;
}

/** A padded batch (on the model's padding side, see EncoderInfo.paddingSide): row-major [batch, seqLen]. */
export interface PaddedBatch {
  batch: number;
  seqLen: number;
  ids: Int32Array;
  typeIds: Int32Array;
  mask: Int32Array;
}

const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);
/** Decoder exports with a cache declare these; the engine feeds them empty (zero-length) past tensors. */
const PAST_INPUT = /^past_key_values\.\d+\.(key|value)$/;
/** Encoder-decoder families: their ONNX exports are split in parts the engine does not read. */
const SEQ2SEQ_TYPES = /^(t5|mt5|bart|mbart|whisper|marian|pegasus|m2m_100|nllb)/i;
/** Names exports give the per-token output (optimum's sentence-transformers export says token_embeddings). */
const OUTPUT_NAMES = ['last_hidden_state', 'token_embeddings'];
/** sentence-transformers exports: the pooled (projected, normalized) vector per input, [batch, dims]. */
const SENTENCE_OUTPUT = 'sentence_embedding';
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

/** Streams a file into a hash (weight files can exceed what one Buffer holds). */
function hashFile(hash: crypto.Hash, file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(8 << 20);
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What a load derives from the decoded graph, recorded per model sha256 + config.json + the code that
 * derives it (graphFactsKey), so a later load of the same model neither reads nor decodes the .onnx (90 MB
 * for the default model: ~70-150 ms of reading and ~40-90 ms of decoding and walking the graph per CLI
 * process). Trusted as the self-check record is: the model's sha256 comes from ModelDigest (file identity),
 * and a record that does not parse or match its key is ignored. Only for graphs without weight files.
 */
interface GraphFacts {
  summary: GraphSummary;
  stream?: ResidualStream;
  pastShapes: [string, { type: 'float32' | 'float16'; heads: number; headDim: number }][];
  inputTypes: [string, 'int64' | 'int32'][];
  graphOutputs: number;
  dynamicQuantization: boolean;
  quantizedOps: string[];
}

const FACTS_FORMAT = 'embedding-lens-graph-facts';

function graphFactsKey(modelSha256: string, config: Record<string, unknown>): string {
  const code = [summarize, findResidualStream, configuredLayerCount, usesExternalData, EncoderModel['pastShapes' as keyof typeof EncoderModel], EncoderModel.load].map(String).join('\n');
  return crypto.createHash('sha256').update(JSON.stringify([FACTS_FORMAT, TOOL_VERSION, modelSha256, config, [...QUANTIZED_OPS], code])).digest('hex').slice(0, 32);
}

function readGraphFacts(file: string): GraphFacts | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (r?.format !== FACTS_FORMAT || r.key !== path.basename(file, '.json') || !r.facts?.stream || !Array.isArray(r.facts.summary?.inputs)) return undefined;
    return r.facts as GraphFacts;
  } catch {
    return undefined;
  }
}

function writeGraphFacts(file: string, facts: GraphFacts): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    sweepStaleTempFilesSync(path.dirname(file), STALE_TEMP_MS);
    writeFileAtomicSync(file, JSON.stringify({ format: FACTS_FORMAT, key: path.basename(file, '.json'), facts }) + '\n');
  } catch {
    // derived from the graph again next time
  }
}

const VERDICT_FORMAT = 'embedding-lens-self-check';

/**
 * The sha256 of a model's files (the graph and its weight files), remembered per file identity: the path,
 * device, inode, size, modification and status-change times of each file (ctime moves on every write or
 * rename and cannot be set back by a program). Hashing the 90 MB default model was 67 ms of every CLI
 * process, and a model with GBs of weight files pays seconds. Any change to any file is a new identity and
 * is hashed again; a record that does not read back is ignored.
 */
/** A temp file this old in a cache folder belongs to a writer that was killed (a live one renames it within ms). */
const STALE_TEMP_MS = 10 * 60_000;
/** The temp names builds before the shared atomic-write helper used for digest records (`<file>.<pid>.tmp`). */
const LEGACY_DIGEST_TEMP = /^[0-9a-f]{32}\.json\.\d+\.tmp$/;

class ModelDigest {
  private readonly key: string;
  private readonly file?: string;

  constructor(files: string[], dir: string | false) {
    this.key = JSON.stringify(files.map((f) => {
      const st = fs.statSync(f, { bigint: true });
      return [path.resolve(f), String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs)];
    }));
    if (dir) this.file = path.join(dir, 'digests', `${crypto.createHash('sha256').update(this.key).digest('hex').slice(0, 32)}.json`);
  }

  /** The sha256 recorded for exactly these files, if any. */
  remembered(): string | undefined {
    if (!this.file) return undefined;
    try {
      const r = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      return r?.key === this.key && typeof r.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256) ? r.sha256 : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records `sha256` for these files (best effort: an unwritable cache only means hashing again). */
  remember(sha256: string): string {
    if (this.file) {
      try {
        const dir = path.dirname(this.file);
        fs.mkdirSync(dir, { recursive: true });
        sweepStaleTempFilesSync(dir, STALE_TEMP_MS, LEGACY_DIGEST_TEMP);
        writeFileAtomicSync(this.file, JSON.stringify({ key: this.key, sha256 }) + '\n');
      } catch {
        // hashed again next time
      }
    }
    return sha256;
  }
}

/**
 * The key of a recorded self-check: the model's full sha256 (graph and weight files), the ONNX Runtime
 * version, and the source of every function that decides which tensors are the hidden states and checks
 * them (so any change to that code, in a new build, makes every record stale).
 */
function selfCheckKey(modelSha256: string): string {
  const code = [EncoderModel.prototype['selfCheck' as keyof EncoderModel], EncoderModel.prototype['probeBatch' as keyof EncoderModel], cosine, findResidualStream, hfHiddenStates, buildVariant, normFitError, configuredLayerCount].map(String).join('\n');
  return crypto.createHash('sha256').update(JSON.stringify([VERDICT_FORMAT, modelSha256, ort.env.versions, TOOL_VERSION, PROBE_TEXTS, BATCH_INDEPENDENCE, code])).digest('hex').slice(0, 32);
}

/** The probe the self-check runs: words, code and punctuation, so every tokenizer gives several tokens. */
const PROBE_TEXTS = [
  'The quick brown fox jumps over the lazy dog; getUserName() returns the user name.',
  'hello world',
  // A longer one of an odd token count (115 with BERT's WordPiece), and a fourth text: the padded batch
  // then has an even number of token rows where the long text alone has an odd one. Quantised kernels
  // can treat a last odd row differently (an 8-bit MatMulNBits with 128-wide blocks does: token cosine
  // 0.9988 between the two), which the batch-independence check below must see.
  'function mergeSorted(a, b) { const out = []; let i = 0, j = 0; while (i < a.length && j < b.length) out.push(a[i] <= b[j] ? a[i++] : b[j++]); return out.concat(a.slice(i), b.slice(j)); } // merges two sorted arrays into one sorted array, keeping equal elements in order (stable)',
  'def load(path): return open(path).read()',
];

/** Smallest token cosine, padded batch vs the text alone, that a batched quantised graph must reach. */
const BATCH_INDEPENDENCE = 0.9999;
/** Node types of quantised graphs (weights or activations in integers). */
const QUANTIZED_OPS = new Set(['DynamicQuantizeLinear', 'QuantizeLinear', 'DequantizeLinear', 'MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'MatMulNBits', 'MatMulIntegerToFloat', 'DynamicQuantizeMatMul', 'QAttention', 'GatherBlockQuantized', 'MatMulBnb4']);

/** float16 bits → float32 (ORT hands fp16 tensors over as Uint16Array). */
function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

export class EncoderModel {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private attentionMap?: AttentionMap;
  /** Past key/value inputs: element type and the [heads, headDim] of the empty tensor fed to each. */
  private readonly pastInputs = new Map<string, { type: 'float32' | 'float16'; heads: number; headDim: number }>();

  private constructor(
    readonly info: EncoderInfo,
    readonly tokenizer: TextTokenizer,
    private readonly inputTypes: Map<string, 'int64' | 'int32'>,
    private readonly hidden: HiddenStateMap,
    private readonly sessionOptions: ort.InferenceSession.SessionOptions,
    private readonly outputName: string,
    private readonly positionOffset: number,
    private readonly logger?: Logger,
  ) {}

  /** The decoded graph; undefined until needed when the load took its facts from a record (GraphFacts). */
  private onnxModel?: OnnxModel;
  private onnxFile = '';
  private modelSha256 = '';
  /** Outputs of the graph as exported. */
  private graphOutputs = 0;

  /**
   * The decoded graph, read now if the load did not need it: only for a session made from it (no cached
   * ORT graph), another layer's variant, attention, or the self-check. The bytes must still be the ones
   * the model was identified by.
   */
  private get onnx(): OnnxModel {
    if (!this.onnxModel) {
      const bytes = fs.readFileSync(this.onnxFile);
      if (crypto.createHash('sha256').update(bytes).digest('hex') !== this.modelSha256) {
        throw new UserError(`${this.onnxFile} changed since the model was loaded.`, 'Load the model again (run the command again, or reload the window).', { code: 'MODEL_INVALID', file: this.onnxFile });
      }
      this.onnxModel = loadOnnxModel(bytes);
    }
    return this.onnxModel;
  }

  private static pastShapes(proto: OnnxModel['proto'], config: Record<string, unknown>, names: string[]): Map<string, { type: 'float32' | 'float16'; heads: number; headDim: number }> {
    const shapes = new Map<string, { type: 'float32' | 'float16'; heads: number; headDim: number }>();
    const heads = numberField(config, ['num_key_value_heads', 'num_attention_heads', 'n_head']);
    const hidden = numberField(config, ['hidden_size']);
    const headDim = numberField(config, ['head_dim']) ?? (hidden && numberField(config, ['num_attention_heads']) ? hidden / numberField(config, ['num_attention_heads'])! : undefined);
    for (const input of proto.graph!.input) {
      if (!names.includes(input.name) || !PAST_INPUT.test(input.name)) continue;
      const tensor = input.type?.value.case === 'tensorType' ? input.type.value.value : undefined;
      const dims = tensor?.shape?.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : undefined)) ?? [];
      const h = dims[1] ?? heads;
      const d = dims[3] ?? headDim;
      if (!h || !d || !Number.isInteger(h) || !Number.isInteger(d)) {
        throw new UserError(`The ONNX input ${input.name} has no fixed head count / head size, and config.json does not give num_key_value_heads and head_dim.`);
      }
      shapes.set(input.name, { type: tensor?.elemType === 10 ? 'float16' : 'float32', heads: h, headDim: d });
    }
    return shapes;
  }

  static async load(resolved: ResolvedModel, options: EncoderOptions = {}): Promise<EncoderModel> {
    const config = readJson(resolved.configFile);
    const tokenizerConfig = resolved.tokenizerConfigFile ? readJson(resolved.tokenizerConfigFile) : {};
    const modelType = String(config.model_type ?? 'unknown');
    const architectures = Array.isArray(config.architectures) ? config.architectures.map(String) : [];
    if (SEQ2SEQ_TYPES.test(modelType) || architectures.some((a) => /ForConditionalGeneration/.test(a))) {
      throw new UserError(
        `"${resolved.spec}" is a ${modelType} encoder-decoder model (${architectures.join(', ') || modelType}).`,
        'Embedding Lens reads hidden states of encoders (BERT, RoBERTa, ModernBERT, ...) and decoder embedders (Qwen3-Embedding, e5-mistral, ...) exported as one ONNX graph.',
      );
    }

    const checkDir = options.selfCheckDir ?? path.join(path.dirname(defaultCacheDir()), 'self-checks');
    // What the graph says (inputs, outputs, the residual stream...), recorded by an earlier load of the same
    // bytes and config (GraphFacts): then the .onnx is neither read nor decoded here, only when a session
    // has to be made from it (see the `onnx` getter).
    let onnx: OnnxModel | undefined;
    let facts: GraphFacts | undefined;
    let modelSha256: string | undefined;
    let externalFiles: string[] = [];
    const factsFile = checkDir ? (sha: string) => path.join(checkDir, 'graph-facts', `${graphFactsKey(sha, config)}.json`) : undefined;
    if (factsFile) {
      const sha = new ModelDigest([resolved.onnxFile], checkDir).remembered();
      facts = sha ? readGraphFacts(factsFile(sha)) : undefined;
      if (facts) {
        modelSha256 = sha;
        options.logger?.debug?.(`graph facts of ${resolved.spec} from their record (the .onnx not read)`);
      }
    }
    if (!facts || !modelSha256) {
      // Read on libuv's thread pool: a CLI search checks its index on other threads meanwhile.
      const bytes = await fs.promises.readFile(resolved.onnxFile);
      onnx = loadOnnxModel(bytes);
      const proto = onnx.proto;
      // Models over protobuf's 2 GB keep their weights beside the graph (model.onnx_data): check the files
      // are there, and hash them with the graph (the graph alone names offsets, not values). ORT reads them
      // from disk; the graph edits never touch them, so the weights are never held twice.
      externalFiles = usesExternalData(proto)
        ? [...new Set(proto.graph!.initializer.flatMap((t) => t.externalData.filter((e) => e.key === 'location').map((e) => e.value)))]
        : [];
      const weightFiles = externalFiles.map((file) => {
        const full = path.join(path.dirname(resolved.onnxFile), file);
        if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
          throw new UserError(`${resolved.onnxFile} keeps its weights in "${file}", outside the model folder; Embedding Lens only reads weight files beside the graph.`);
        }
        if (!fs.existsSync(full)) {
          throw new UserError(
            `${path.relative(resolved.folder, resolved.onnxFile)} keeps its weights in a separate file, ${path.relative(resolved.folder, full)}, which is missing.`,
            'Download it too (large models ship model.onnx and model.onnx_data side by side).',
            { code: 'MODEL_INVALID', model: resolved.spec, file: full },
          );
        }
        return full;
      });
      const digest = new ModelDigest([resolved.onnxFile, ...weightFiles], checkDir);
      modelSha256 = digest.remembered();
      if (!modelSha256) {
        const hash = crypto.createHash('sha256').update(bytes);
        for (const full of weightFiles) hashFile(hash, full);
        modelSha256 = digest.remember(hash.digest('hex'));
      }
      const summary = summarize(proto);
      facts = {
        summary,
        pastShapes: [], // below, once the graph passed the checks
        inputTypes: proto.graph!.input.map((i) => [i.name, i.type?.value.case === 'tensorType' && i.type.value.value.elemType === 6 ? 'int32' : 'int64']),
        graphOutputs: proto.graph!.output.length,
        dynamicQuantization: proto.graph!.node.some((n) => n.opType === 'DynamicQuantizeLinear'),
        quantizedOps: [...new Set(proto.graph!.node.map((n) => n.opType).filter((t) => QUANTIZED_OPS.has(t)))].sort(),
      };
    }
    const modelHash = modelSha256.slice(0, 16);
    const summary = facts.summary;
    const unknown = summary.inputs.filter((n) => !KNOWN_INPUTS.has(n) && !PAST_INPUT.test(n));
    if (unknown.length) {
      throw new UserError(
        `The ONNX model takes inputs Embedding Lens cannot provide: ${unknown.join(', ')}.`,
        'Inputs must be among input_ids, attention_mask, token_type_ids, position_ids and past_key_values.N.key/value.',
      );
    }
    if (!summary.inputs.includes('input_ids')) {
      throw new UserError('The ONNX model has no input_ids input, so it is not a text encoder export.');
    }
    const outputName = OUTPUT_NAMES.find((n) => summary.outputs.includes(n));
    if (!outputName) {
      throw new UserError(
        `The ONNX model has no "last_hidden_state" output (it outputs: ${summary.outputs.join(', ')}).`,
        'Export the base model (e.g. optimum-cli export onnx --task feature-extraction), not a head for classification or generation.',
      );
    }
    if (!facts.stream) {
      facts.stream = findResidualStream(onnx!.proto, outputName, configuredLayerCount(config));
      facts.pastShapes = [...EncoderModel.pastShapes(onnx!.proto, config, summary.inputs)];
      if (factsFile && !externalFiles.length) writeGraphFacts(factsFile(modelSha256), facts);
    }
    const stream = facts.stream;
    const layout = hfHiddenStates(stream, modelType);
    // Index L+1 carries the model's output when HF's hidden state L is not it (layer spec `output`).
    const outputIndex = layout.tensors[stream.numLayers] === layout.output ? stream.numLayers : stream.numLayers + 1;
    const sentenceIndex = summary.outputs.includes(SENTENCE_OUTPUT) ? outputIndex + 1 : undefined;
    const hidden: HiddenStateMap = {
      tensors: [...(outputIndex > stream.numLayers ? [...layout.tensors, layout.output] : layout.tensors), ...(sentenceIndex !== undefined ? [SENTENCE_OUTPUT] : [])],
      source: stream.source,
      numLayers: stream.numLayers,
    };
    const paddingSide = tokenizerConfig.padding_side === 'left' ? 'left' : 'right';
    if (tokenizerConfig.padding_side !== undefined && tokenizerConfig.padding_side !== 'left' && tokenizerConfig.padding_side !== 'right') {
      throw new UserError(`${resolved.tokenizerConfigFile}: padding_side "${String(tokenizerConfig.padding_side)}" is neither "left" nor "right".`);
    }

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
      layout: stream.layout,
      layoutDescription: layout.description,
      outputIndex,
      sentenceIndex,
      modelDtype: resolved.modelDtype,
      paddingSide,
      dynamicQuantization: facts.dynamicQuantization,
      quantizedOps: facts.quantizedOps,
    };
    options.logger?.info(`Loaded ${resolved.spec} (${path.relative(resolved.folder, resolved.onnxFile)}, ${resolved.modelDtype}): ${modelType}, ${hidden.numLayers} layers, hidden ${hiddenSize}, max ${maxLength} tokens, hidden states found from the ${hidden.source}: ${layout.description}, padding ${paddingSide}.`);
    const model = new EncoderModel(info, tokenizer, new Map(facts.inputTypes), hidden, sessionOptions, outputName, positionOffset, options.logger);
    model.onnxModel = onnx;
    model.onnxFile = resolved.onnxFile;
    model.modelSha256 = modelSha256;
    model.graphOutputs = facts.graphOutputs;
    for (const [name, shape] of facts.pastShapes) model.pastInputs.set(name, shape);
    model.stream = stream;
    model.externalFiles = externalFiles;
    if (checkDir) model.verdictFile = path.join(checkDir, `${selfCheckKey(modelSha256)}.json`);
    if (checkDir && !externalFiles.length) {
      const graphCode = [buildVariant, EncoderModel.prototype['variantFor' as keyof EncoderModel]].map(String).join('\n');
      model.ortCache = new OrtSessionCache(path.join(checkDir, 'ort-sessions'), { modelSha256, graphCode }, options.logger);
    }
    return model;
  }

  private stream?: ResidualStream;
  /** The self-check, run once before the first hidden states are handed out (see selfCheck). */
  private checked?: Promise<void>;
  /** The record of a passed self-check for this model, ONNX Runtime and check code (see checkedOnce). */
  private verdictFile?: string;

  /**
   * The self-check, or the record that it passed before: it needs a second ONNX session (every hidden
   * state as an output), which was about half of a cold CLI search's model time (0.2 of 0.4 s). Its result
   * depends only on the graph (the sha256 of the model file and its weight files), the ONNX Runtime version
   * and the code that finds and checks the hidden states, so a pass is recorded under a key made of exactly
   * those (selfCheckKey) and a later process with the same key skips the run. Anything else — another
   * model file, a changed byte, another ORT or Embedding Lens build, an unreadable record — runs the check.
   * A failed check is never recorded (it refuses every time).
   */
  private async checkedOnce(): Promise<void> {
    const file = this.verdictFile;
    if (file) {
      try {
        const v = JSON.parse(fs.readFileSync(file, 'utf8'));
        if (v?.format === VERDICT_FORMAT && v.key === path.basename(file, '.json') && v.passed === true) return;
      } catch {
        // no record (or an unreadable one): run the check
      }
    }
    await this.selfCheck();
    if (!file) return;
    const record = { format: VERDICT_FORMAT, key: path.basename(file, '.json'), passed: true, model: this.info.model, modelFile: this.info.modelFile, modelType: this.info.modelType, layout: this.info.layoutDescription, onnxruntime: ort.env.versions, toolVersion: TOOL_VERSION, checkedAt: new Date().toISOString() };
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      sweepStaleTempFilesSync(path.dirname(file), STALE_TEMP_MS);
      await writeFileAtomic(file, JSON.stringify(record, null, 1) + '\n');
    } catch (err) {
      this.logger?.debug?.(`could not record the self-check in ${file}: ${(err as Error).message}`);
    }
  }

  /**
   * Runs a probe batch (two texts of different lengths, padded on the model's side) through the variant
   * that outputs every hidden state, and checks the structure's answer against what the architecture
   * implies: every state finite and of the right shape, consecutive states different, and for pre-norm
   * models the model's output equal to a (Layer|RMS)Norm of the residual stream found after the last block.
   * Refuses, naming the model type and what did not match. It cannot be switched off: every path to
   * hidden states (runTensors) waits for it.
   */
  private async selfCheck(): Promise<void> {
    const { numLayers: L, hiddenSize: H, modelType } = this.info;
    const stream = this.stream!;
    const refuse = (what: string) => new UserError(
      `Self-check failed for this ${modelType} model (${this.info.layoutDescription}): ${what}.`,
      'The hidden states found in its graph do not behave as this layout requires, so Embedding Lens gives no numbers for it. Please report the model.',
      { code: 'MODEL_INVALID', model: this.info.model },
    );
    const encodings = await this.tokenizer.encode(PROBE_TEXTS);
    const batch = this.probeBatch(encodings);
    const { batch: B, seqLen: T, mask } = batch;
    const tensors = this.hidden.tensors.filter((t) => t !== SENTENCE_OUTPUT);
    const indices = Array.from({ length: tensors.length }, (_, i) => i);
    const extra = stream.layout === 'pre-norm' && (stream.finalNorm === 'layer' || stream.finalNorm === 'rms') && !tensors.includes(stream.residual[L]) ? [stream.residual[L]] : [];
    const names = [...tensors, ...extra];
    const values = await this.runTensors(batch, names, false);
    const rowsOf = (data: Float32Array): Float32Array[] => {
      const rows: Float32Array[] = [];
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (mask[b * T + t]) rows.push(data.subarray((b * T + t) * H, (b * T + t + 1) * H));
      return rows;
    };
    const states = values.map(rowsOf);
    for (const i of indices) {
      if (!states[i].every((r) => r.every(Number.isFinite))) throw refuse(`hidden state ${i} has non-finite values`);
    }
    for (let i = 0; i < L; i++) {
      let diff = 0;
      let scale = 0;
      states[i].forEach((r, k) => r.forEach((v, h) => { diff = Math.max(diff, Math.abs(v - states[i + 1][k][h])); scale = Math.max(scale, Math.abs(v)); }));
      if (!(diff > 1e-6 * Math.max(1, scale))) throw refuse(`hidden states ${i} and ${i + 1} are equal`);
    }
    if (stream.layout === 'pre-norm' && (stream.finalNorm === 'layer' || stream.finalNorm === 'rms')) {
      const residual = states[names.indexOf(stream.residual[L])];
      const output = states[names.indexOf(stream.output)];
      const error = normFitError(residual, output, stream.finalNorm === 'layer');
      if (!(error < 1e-3)) throw refuse(`the model's output is not the final ${stream.finalNorm === 'layer' ? 'LayerNorm' : 'RMSNorm'} of the residual stream found after block ${L} (relative error ${error.toExponential(1)})`);
    }
    // A quantised graph that is batched (not one with per-tensor DynamicQuantizeLinear, which runs one
    // sequence per call) must give each text what it gives alone: its quantisation has to be per row.
    if (this.info.quantizedOps.length && !this.info.dynamicQuantization) {
      // Real tokens in the order rowsOf lists them (text by text); alone, a text has no padding. The same
      // session (the last hidden state only) runs both, so only the batch differs.
      const [batched] = await this.runTensors(batch, [tensors[tensors.length - 1]], false);
      const last = rowsOf(batched);
      let worst = 1;
      let row = 0;
      for (const enc of encodings) {
        const [alone] = await this.runTensors(this.probeBatch([enc]), [tensors[tensors.length - 1]], false);
        for (let t = 0; t < Math.min(enc.ids.length, this.info.maxLength); t++) worst = Math.min(worst, cosine(last[row++], alone.subarray(t * H, (t + 1) * H), 1));
      }
      if (!(worst >= BATCH_INDEPENDENCE)) {
        throw new UserError(
          `Self-check failed for ${this.info.model} (${this.info.modelFile}): its quantised graph (${this.info.quantizedOps.join(', ')}) gives a text other numbers in a padded batch than alone (token cosine ${worst.toFixed(6)}, below ${BATCH_INDEPENDENCE}), so a vector would depend on the texts it was batched with.`,
          'Use another variant of the model (--model-dtype fp32, or a graph quantised per row such as 8-bit MatMulNBits with 32-wide blocks).',
          { code: 'MODEL_INVALID', model: this.info.model },
        );
      }
    }
  }

  /** A padded batch of `encodings` (cut at maxLength) on the model's padding side. */
  private probeBatch(encodings: Encoded[]): PaddedBatch {
    const lengths = encodings.map((e) => Math.min(e.ids.length, this.info.maxLength));
    const T = Math.max(...lengths);
    const B = encodings.length;
    const ids = new Int32Array(B * T).fill(this.info.padId);
    const typeIds = new Int32Array(B * T);
    const mask = new Int32Array(B * T);
    encodings.forEach((e, b) => {
      const offset = this.info.paddingSide === 'left' ? T - lengths[b] : 0;
      for (let t = 0; t < lengths[b]; t++) {
        ids[b * T + offset + t] = e.ids[t];
        typeIds[b * T + offset + t] = e.typeIds[t];
        mask[b * T + offset + t] = 1;
      }
    });
    return { batch: B, seqLen: T, ids, typeIds, mask };
  }

  /** Number of graph nodes of the session that computes `layers` (to verify the cut). */
  async nodeCount(layers: number[]): Promise<number> {
    return decodeModel(this.variantBytes(layers)).graph!.node.length;
  }

  private outputTensors(layers: number[]): string[] {
    return [...new Set([...new Set(layers)].sort((a, b) => a - b).map((l) => this.hidden.tensors[l]))];
  }

  private variantBytes(layers: number[]): Uint8Array {
    return this.variantFor(this.outputTensors(layers));
  }

  private variantFor(outputs: string[]): Uint8Array {
    // Only the model's own output asked for: the original file is already that graph.
    if (outputs.length === 1 && outputs[0] === this.outputName && this.graphOutputs === 1) return this.onnx.bytes;
    return buildVariant(this.onnx, outputs);
  }

  /** Creates (and caches) the session for `layers` ahead of the first batch. */
  async prepare(layers: number[]): Promise<void> {
    await this.session(layers);
  }

  private session(layers: number[]): Promise<ort.InferenceSession> {
    return this.sessionFor(this.outputTensors(layers), () => this.variantBytes(layers), `hidden states [${[...new Set(layers)].sort((a, b) => a - b).join(', ')}]`);
  }

  /** `cache`: whether the session may come from (and go to) the ORT-format cache (not for the self-check's one-off session). */
  private sessionFor(outputs: string[], bytes: () => Uint8Array, what: string, cache = true): Promise<ort.InferenceSession> {
    const key = outputs.join('\n');
    let session = this.sessions.get(key);
    if (!session) {
      const started = performance.now();
      session = this.createSession(bytes, outputs, cache).then(
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
    return this.runTensors(batch, layers.map((l) => this.hidden.tensors[l]));
  }

  /** Runs `batch` through the variant that outputs `names`; [batch, seqLen, hidden] float32 per name (fp16 widened). */
  private async runTensors(batch: PaddedBatch, names: string[], check = true): Promise<Float32Array[]> {
    if (check) {
      this.checked ??= this.checkedOnce();
      await this.checked;
    }
    this.checkIds(batch);
    const outputs = [...new Set(names)];
    const session = await this.sessionFor(outputs, () => this.variantFor(outputs), `${outputs.length} hidden state(s)`, check);
    const result = await session.run(this.feeds(session, batch));
    const converted = new Map<string, Float32Array>();
    for (const name of outputs) {
      const t = result[name];
      const dims = t.dims;
      if (name === SENTENCE_OUTPUT) {
        converted.set(name, this.sentenceRows(t, batch));
        continue;
      }
      if (dims.length !== 3 || dims[0] !== batch.batch || dims[1] !== batch.seqLen || dims[2] !== this.info.hiddenSize) {
        throw new UserError(`The graph tensor "${name}" has shape [${dims.join(', ')}], expected [${batch.batch}, ${batch.seqLen}, ${this.info.hiddenSize}].`, 'config.json does not match the ONNX model.');
      }
      // fp16 graphs: pooled and returned in float32.
      converted.set(name, t.type === 'float16' ? halfToFloat(t.data as Uint16Array) : (t.data as Float32Array));
    }
    const kept = new Set<unknown>(converted.values());
    for (const t of Object.values(result)) if (!kept.has(t.data)) t.dispose();
    return names.map((n) => converted.get(n)!);
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
      const past = this.pastInputs.get(name);
      if (past) {
        // No cache: a zero-length past, so attention_mask covers exactly the tokens given.
        const dims = [batch.batch, past.heads, 0, past.headDim];
        feeds[name] = past.type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
        continue;
      }
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

  /**
   * `sentence_embedding` [batch, dims] as a [batch, seqLen, hidden] tensor whose every position holds the
   * text's vector, so each pooling (mean, max, cls, last) returns exactly that vector.
   */
  private sentenceRows(t: ort.Tensor, batch: PaddedBatch): Float32Array {
    const H = this.info.hiddenSize;
    if (t.dims.length !== 2 || t.dims[0] !== batch.batch || t.dims[1] !== H) {
      throw new UserError(
        `The graph's sentence_embedding has shape [${t.dims.join(', ')}], not [${batch.batch}, ${H}] (batch × hidden size).`,
        'Embedding Lens reads sentence_embedding only when it is as wide as the hidden states; use layer "output" with the model\'s pooling instead.',
      );
    }
    const v = t.type === 'float16' ? halfToFloat(t.data as Uint16Array) : (t.data as Float32Array);
    const out = new Float32Array(batch.batch * batch.seqLen * H);
    for (let b = 0; b < batch.batch; b++) {
      for (let p = 0; p < batch.seqLen; p++) out.set(v.subarray(b * H, (b + 1) * H), (b * batch.seqLen + p) * H);
    }
    return out;
  }

  /**
   * position_ids as HF computes them from the mask: real tokens counted (so left padding gives the same
   * positions as right padding), plus the padding offset of RoBERTa-like families; padding positions get
   * padId (offset families) or 1 (HF's masked_fill for decoders), which the mask hides anyway.
   */
  private positionIds(batch: PaddedBatch): Int32Array {
    const ids = new Int32Array(batch.batch * batch.seqLen);
    for (let b = 0; b < batch.batch; b++) {
      let seen = 0;
      for (let t = 0; t < batch.seqLen; t++) {
        const real = batch.mask[b * batch.seqLen + t] === 1;
        ids[b * batch.seqLen + t] = real ? seen++ + this.positionOffset : this.positionOffset > 0 ? this.info.padId : 1;
      }
    }
    return ids;
  }

  /** Weight files beside the graph (external data), relative to the .onnx file's folder. */
  private externalFiles: string[] = [];
  /** Sessions from cached ORT-format graphs (absent when records are off, or for graphs with weight files). */
  private ortCache?: OrtSessionCache;
  private variantDir?: string;
  private tempDir?: string;
  private variantFiles: string[] = [];
  private variantCount = 0;

  /**
   * A session from graph bytes. With external data, onnxruntime-node takes the weight files only as
   * in-memory buffers when the graph comes from a buffer, which would hold multi-GB weights in this
   * process as well as in ORT; and ORT refuses weight paths that leave the graph's folder (symlinks
   * included). So the edited graph is written as a file into a folder where the weight files are
   * reachable without a copy: a private temporary folder with hard links to them, else (another volume)
   * the model's own folder under a hidden name, removed on dispose. Only when neither is possible are the
   * weights read into memory (once, shared by every session), with a warning.
   */
  private async createSession(graph: () => Uint8Array, outputs: string[], cache: boolean): Promise<ort.InferenceSession> {
    // A graph without weight files: from the cached ORT-format copy when there is a valid one (ortSessionCache.ts).
    if (!this.externalFiles.length) return this.ortCache && cache ? this.ortCache.session(outputs, graph, this.sessionOptions) : ort.InferenceSession.create(graph(), this.sessionOptions);
    const bytes = graph();
    const graphDir = path.dirname(path.join(this.info.folder, this.info.modelFile));
    if (this.variantDir === undefined) this.variantDir = this.prepareVariantDir(graphDir);
    if (this.variantDir) {
      const file = path.join(this.variantDir, `.embedding-lens-variant-${process.pid}-${this.variantCount++}.onnx`);
      fs.writeFileSync(file, bytes);
      this.variantFiles.push(file);
      try {
        return await ort.InferenceSession.create(file, this.sessionOptions);
      } finally {
        // ORT has read the graph; the weight links stay until dispose.
        fs.rmSync(file, { force: true });
      }
    }
    this.sessionOptions.externalData ??= this.externalFiles.map((f) => ({ path: f, data: fs.readFileSync(path.join(graphDir, f)) }));
    return ort.InferenceSession.create(bytes, this.sessionOptions);
  }

  /** A folder where a graph file sees the weight files under their names; '' when there is none. */
  private prepareVariantDir(graphDir: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embedding-lens-variant-'));
    try {
      for (const file of this.externalFiles) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.linkSync(path.join(graphDir, file), path.join(dir, file));
      }
      this.tempDir = dir;
      return dir;
    } catch {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    try {
      fs.accessSync(graphDir, fs.constants.W_OK);
      return graphDir;
    } catch {
      this.logger?.warn(`${this.info.modelFile}: its weight files cannot be linked or written beside; they are read into memory (${this.externalFiles.join(', ')}).`);
      return '';
    }
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.then((x) => x.release(), () => undefined)));
    for (const file of this.variantFiles) fs.rmSync(file, { force: true });
    if (this.tempDir) fs.rmSync(this.tempDir, { recursive: true, force: true });
    this.variantFiles = [];
    this.variantDir = this.tempDir = undefined;
  }
}

/**
 * How far `output` is from a per-channel affine map of the normalized `input` rows (LayerNorm: centred;
 * RMSNorm: not), fitted by least squares over the probe's tokens: max abs residual / max abs output.
 * eps is ignored (it shifts the result by about eps / variance, far below the 1e-3 the check allows).
 */
export function normFitError(input: Float32Array[], output: Float32Array[], centred: boolean): number {
  const H = input[0].length;
  const normed = input.map((row) => {
    let mean = 0;
    if (centred) { for (const v of row) mean += v; mean /= H; }
    let ms = 0;
    for (const v of row) ms += (v - mean) ** 2;
    const inv = 1 / Math.sqrt(ms / H || 1e-30);
    return Float64Array.from(row, (v) => (v - mean) * inv);
  });
  let worst = 0;
  let scale = 0;
  const n = input.length;
  for (let h = 0; h < H; h++) {
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (let k = 0; k < n; k++) { const x = normed[k][h]; const y = output[k][h]; sx += x; sy += y; sxx += x * x; sxy += x * y; }
    let g: number, b: number;
    if (centred) {
      const det = n * sxx - sx * sx;
      g = det ? (n * sxy - sx * sy) / det : 0;
      b = (sy - g * sx) / n;
    } else {
      g = sxx ? sxy / sxx : 0;
      b = 0;
    }
    for (let k = 0; k < n; k++) {
      worst = Math.max(worst, Math.abs(output[k][h] - (g * normed[k][h] + b)));
      scale = Math.max(scale, Math.abs(output[k][h]));
    }
  }
  return scale ? worst / scale : Infinity;
}
