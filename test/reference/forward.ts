// An independent forward pass of BERT / DistilBERT encoders in plain TypeScript (Float64 math, no ONNX
// Runtime), used by tests as ground truth for every layer's hidden state.
//
// Why it is independent: it reads only a fixture folder's config.json (HF key names) and the
// reference_weights.{bin,json} the generator writes beside the model, and implements the math from the
// papers / HF modelling code, not from the ONNX graph. If the engine finds the wrong tensor for "layer 3",
// or the graph builder wires something wrong, the two disagree.
//
// Scope: one unpadded sequence at a time: post-LN BERT and DistilBERT with exact (erf) GELU; below,
// pre-LN ModernBERT-style encoders and Qwen3-style decoders (referenceModernStates).

import * as fs from 'node:fs';
import * as path from 'node:path';

export type ReferenceArchitecture = 'bert' | 'distilbert';

export interface ReferenceConfig {
  architecture: ReferenceArchitecture;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  vocabSize: number;
  layerNormEps: number;
}

/** A loaded fixture: config plus Float64 copies of the (float32) weights, linear weights as [in, out]. */
export interface ReferenceModel {
  config: ReferenceConfig;
  tensors: Map<string, { shape: number[]; data: Float64Array }>;
}

/** Reads config.json in either architecture's key names. */
export function readReferenceConfig(dir: string): ReferenceConfig {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  if (c.model_type === 'bert') {
    return {
      architecture: 'bert',
      numLayers: c.num_hidden_layers,
      hiddenSize: c.hidden_size,
      numHeads: c.num_attention_heads,
      intermediateSize: c.intermediate_size,
      maxPositions: c.max_position_embeddings,
      vocabSize: c.vocab_size,
      layerNormEps: c.layer_norm_eps ?? 1e-12,
    };
  }
  if (c.model_type === 'distilbert') {
    return {
      architecture: 'distilbert',
      numLayers: c.n_layers,
      hiddenSize: c.dim,
      numHeads: c.n_heads,
      intermediateSize: c.hidden_dim,
      maxPositions: c.max_position_embeddings,
      vocabSize: c.vocab_size,
      // HF's DistilBERT hard-codes 1e-12 (it is not a config key).
      layerNormEps: 1e-12,
    };
  }
  throw new Error(`reference forward: unsupported model_type ${String(c.model_type)} in ${dir}`);
}

/** Loads config.json + reference_weights.{json,bin} of a fixture model folder. */
export function loadReferenceModel(dir: string): ReferenceModel {
  const config = readReferenceConfig(dir);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'reference_weights.json'), 'utf8')) as {
    dtype: string;
    tensors: Record<string, { offset: number; shape: number[] }>;
  };
  if (meta.dtype !== 'float32') throw new Error(`reference forward: unexpected dtype ${meta.dtype}`);
  const bin = fs.readFileSync(path.join(dir, 'reference_weights.bin'));
  const tensors = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [name, { offset, shape }] of Object.entries(meta.tensors)) {
    const n = shape.reduce((a, b) => a * b, 1);
    // Copy to a fresh (aligned) buffer: a Float32Array view needs 4-byte alignment, which Buffer pools lack.
    const start = bin.byteOffset + offset;
    const data = new Float64Array(n);
    data.set(new Float32Array(bin.buffer.slice(start, start + 4 * n)));
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}

// ---------------------------------------------------------------------------------------------------------
// Math

/**
 * erf(x) to double precision-ish (abs error < 1e-12): Maclaurin series for |x| < 3, where it converges
 * without harmful cancellation, and the Laplace continued fraction of erfc beyond.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax; // x^(2n+1)/n! with sign
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  if (ax > 10) return x < 0 ? -1 : 1;
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up.
  let frac = ax;
  for (let n = 60; n >= 1; n--) frac = ax + n / 2 / frac;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Exact GELU: x * Φ(x) = 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** y[t] = x[t] · W + b for T rows; W is [in, out] row-major. */
function linear(x: Float64Array, T: number, W: Float64Array, b: Float64Array, nIn: number, nOut: number): Float64Array {
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    const yRow = t * nOut;
    for (let o = 0; o < nOut; o++) y[yRow + o] = b[o];
    for (let i = 0; i < nIn; i++) {
      const xi = x[t * nIn + i];
      const wRow = i * nOut;
      for (let o = 0; o < nOut; o++) y[yRow + o] += xi * W[wRow + o];
    }
  }
  return y;
}

/** In-place LayerNorm of each row of length H (biased variance, as PyTorch). */
function layerNorm(x: Float64Array, T: number, H: number, gamma: Float64Array, beta: Float64Array, eps: number): Float64Array {
  for (let t = 0; t < T; t++) {
    const r = t * H;
    let mean = 0;
    for (let h = 0; h < H; h++) mean += x[r + h];
    mean /= H;
    let v = 0;
    for (let h = 0; h < H; h++) v += (x[r + h] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let h = 0; h < H; h++) x[r + h] = (x[r + h] - mean) * inv * gamma[h] + beta[h];
  }
  return x;
}

/**
 * Multi-head self-attention over all T positions (no padding: every key is real). When `probs` is
 * given, the softmax probabilities are written to it as [heads, query, key].
 */
function selfAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, heads: number, probs?: Float64Array): Float64Array {
  const d = H / heads;
  const scale = 1 / Math.sqrt(d);
  const ctx = new Float64Array(T * H);
  const scores = new Float64Array(T);
  for (let h = 0; h < heads; h++) {
    const off = h * d;
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[i * H + off + c] * k[j * H + off + c];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
      }
      let z = 0;
      for (let j = 0; j < T; j++) {
        scores[j] = Math.exp(scores[j] - max);
        z += scores[j];
      }
      for (let j = 0; j < T; j++) {
        const p = scores[j] / z;
        if (probs) probs[(h * T + i) * T + j] = p;
        for (let c = 0; c < d; c++) ctx[i * H + off + c] += p * v[j * H + off + c];
      }
    }
  }
  return ctx;
}

function rows(x: Float64Array, T: number, H: number): Float64Array[] {
  return Array.from({ length: T }, (_, t) => x.slice(t * H, (t + 1) * H));
}

/**
 * All hidden states of one unpadded sequence, as HF's `output_hidden_states`:
 * result[0] = embeddings after their LayerNorm, result[i] = output of layer i (1..L); each is [T][H].
 * `tokenTypeIds` is used by BERT only (defaults to all 0) and ignored by DistilBERT.
 */
export function referenceHiddenStates(model: ReferenceModel, inputIds: readonly number[], tokenTypeIds?: readonly number[]): Float64Array[][] {
  return referenceForward(model, inputIds, tokenTypeIds).hiddenStates;
}

/**
 * Attention probabilities of every layer, as HF's `output_attentions`: result[l] (l = 0 for the first
 * encoder layer) is [heads × query × key], row-major.
 */
export function referenceAttentions(model: ReferenceModel, inputIds: readonly number[], tokenTypeIds?: readonly number[]): Float64Array[] {
  return referenceForward(model, inputIds, tokenTypeIds).attentions;
}

function referenceForward(model: ReferenceModel, inputIds: readonly number[], tokenTypeIds?: readonly number[]): { hiddenStates: Float64Array[][]; attentions: Float64Array[] } {
  const { config: cfg } = model;
  const T = inputIds.length;
  const H = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  if (T === 0) throw new Error('reference forward: empty sequence');
  if (T > cfg.maxPositions) throw new Error(`reference forward: ${T} tokens exceed max_position_embeddings ${cfg.maxPositions}`);
  const get = (name: string) => {
    const t = model.tensors.get(name);
    if (!t) throw new Error(`reference forward: weight ${name} missing`);
    return t.data;
  };

  // Embeddings.
  const word = get('embeddings.word_embeddings.weight');
  const pos = get('embeddings.position_embeddings.weight');
  const types = cfg.architecture === 'bert' ? get('embeddings.token_type_embeddings.weight') : undefined;
  let x: Float64Array = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = inputIds[t];
    if (!(id >= 0 && id < cfg.vocabSize)) throw new Error(`reference forward: token id ${id} out of range`);
    const typeId = tokenTypeIds?.[t] ?? 0;
    for (let h = 0; h < H; h++) {
      let e = word[id * H + h] + pos[t * H + h];
      if (types) e += types[typeId * H + h];
      x[t * H + h] = e;
    }
  }
  layerNorm(x, T, H, get('embeddings.LayerNorm.weight'), get('embeddings.LayerNorm.bias'), cfg.layerNormEps);
  const states: Float64Array[][] = [rows(x, T, H)];
  const attentions: Float64Array[] = [];

  // Encoder layers (post-LN).
  const bert = cfg.architecture === 'bert';
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = bert ? `encoder.layer.${l}` : `transformer.layer.${l}`;
    const n = bert
      ? { q: 'attention.self.query', k: 'attention.self.key', v: 'attention.self.value', o: 'attention.output.dense',
          ln1: 'attention.output.LayerNorm', f1: 'intermediate.dense', f2: 'output.dense', ln2: 'output.LayerNorm' }
      : { q: 'attention.q_lin', k: 'attention.k_lin', v: 'attention.v_lin', o: 'attention.out_lin',
          ln1: 'sa_layer_norm', f1: 'ffn.lin1', f2: 'ffn.lin2', ln2: 'output_layer_norm' };
    const lin = (input: Float64Array, m: string, nIn: number, nOut: number) =>
      linear(input, T, get(`${p}.${m}.weight`), get(`${p}.${m}.bias`), nIn, nOut);

    const probs = new Float64Array(cfg.numHeads * T * T);
    attentions.push(probs);
    const ctx = selfAttention(lin(x, n.q, H, H), lin(x, n.k, H, H), lin(x, n.v, H, H), T, H, cfg.numHeads, probs);
    const attn = lin(ctx, n.o, H, H);
    for (let i = 0; i < T * H; i++) attn[i] += x[i];
    const h1 = layerNorm(attn, T, H, get(`${p}.${n.ln1}.weight`), get(`${p}.${n.ln1}.bias`), cfg.layerNormEps);

    const inter = lin(h1, n.f1, H, F);
    for (let i = 0; i < inter.length; i++) inter[i] = gelu(inter[i]);
    const out = lin(inter, n.f2, F, H);
    for (let i = 0; i < T * H; i++) out[i] += h1[i];
    x = layerNorm(out, T, H, get(`${p}.${n.ln2}.weight`), get(`${p}.${n.ln2}.bias`), cfg.layerNormEps);
    states.push(rows(x, T, H));
  }
  return { hiddenStates: states, attentions };
}

// ---------------------------------------------------------------------------------------------------------
// Pre-norm encoders (ModernBERT) and decoder embedders (Qwen3), from HF's modelling code:
//   modeling_modernbert.py: ModernBertEmbeddings, ModernBertAttention (sliding window, two rotary bases),
//     ModernBertMLP (GLU), ModernBertEncoderLayer (attn_norm = Identity in layer 0), final_norm;
//   modeling_qwen3.py: Qwen3RMSNorm, Qwen3Attention (q_norm / k_norm per head, GQA, causal), Qwen3MLP
//     (SwiGLU), final norm.
// One unpadded sequence, positions 0..T-1. Weights are bias-free in both families.

export interface ModernReferenceConfig {
  architecture: 'modernbert' | 'qwen3';
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  eps: number;
  ropeTheta: number;
  localRopeTheta: number;
  globalEvery: number;
  /** ModernBERT window width (keys within ±width/2); Infinity for none. */
  localAttention: number;
}

export interface ModernReferenceStates {
  /** The residual stream leaving block i (0 = embeddings output), [T][H] each: L+1 entries. */
  residual: Float64Array[][];
  /** The model's last_hidden_state: the final norm of residual[L]. */
  output: Float64Array[];
}

export function readModernReferenceConfig(dir: string): ModernReferenceConfig {
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  if (c.model_type === 'modernbert') {
    return {
      architecture: 'modernbert', numLayers: c.num_hidden_layers, hiddenSize: c.hidden_size, numHeads: c.num_attention_heads,
      numKvHeads: c.num_attention_heads, headDim: c.hidden_size / c.num_attention_heads, intermediateSize: c.intermediate_size,
      vocabSize: c.vocab_size, eps: c.norm_eps, ropeTheta: c.global_rope_theta, localRopeTheta: c.local_rope_theta,
      globalEvery: c.global_attn_every_n_layers, localAttention: c.local_attention,
    };
  }
  if (c.model_type === 'qwen3') {
    return {
      architecture: 'qwen3', numLayers: c.num_hidden_layers, hiddenSize: c.hidden_size, numHeads: c.num_attention_heads,
      numKvHeads: c.num_key_value_heads, headDim: c.head_dim, intermediateSize: c.intermediate_size, vocabSize: c.vocab_size,
      eps: c.rms_norm_eps, ropeTheta: c.rope_theta, localRopeTheta: c.rope_theta, globalEvery: 1, localAttention: Infinity,
    };
  }
  throw new Error(`reference forward: unsupported model_type ${String(c.model_type)} in ${dir}`);
}

/** y[t] = x[t] · W for T rows (no bias). */
function linearNoBias(x: Float64Array, T: number, W: Float64Array, nIn: number, nOut: number): Float64Array {
  return linear(x, T, W, new Float64Array(nOut), nIn, nOut);
}

/** Bias-free LayerNorm of each row (copy). */
function layerNormNoBias(x: Float64Array, T: number, H: number, gamma: Float64Array, eps: number): Float64Array {
  return layerNorm(x.slice(), T, H, gamma, new Float64Array(H), eps);
}

/** RMSNorm of each row of width W (copy): x / sqrt(mean(x²) + eps) * weight. */
function rmsNorm(x: Float64Array, rowsCount: number, W: number, weight: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rowsCount; r++) {
    let ms = 0;
    for (let h = 0; h < W; h++) ms += x[r * W + h] ** 2;
    const inv = 1 / Math.sqrt(ms / W + eps);
    for (let h = 0; h < W; h++) y[r * W + h] = x[r * W + h] * inv * weight[h];
  }
  return y;
}

/** Rotary in place on [T, heads, d] rows laid out as [T][heads·d]: HF's rotate_half convention. */
function rotary(x: Float64Array, T: number, heads: number, d: number, theta: number): void {
  const half = d / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const base = t * heads * d + h * d;
      for (let i = 0; i < half; i++) {
        const angle = t / Math.pow(theta, (2 * i) / d);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[base + i];
        const b = x[base + half + i];
        x[base + i] = a * c - b * s;
        x[base + half + i] = b * c + a * s;
      }
    }
  }
}

/** Attention with GQA and a "may query i see key j" rule; q is [T][nH·d], k/v [T][nKv·d]; returns [T][nH·d]. */
function maskedAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, nH: number, nKv: number, d: number, sees: (i: number, j: number) => boolean): Float64Array {
  const out = new Float64Array(T * nH * d);
  const groups = nH / nKv;
  const scores = new Float64Array(T);
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / groups);
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        if (!sees(i, j)) { scores[j] = -Infinity; continue; }
        let s = 0;
        for (let c = 0; c < d; c++) s += q[i * nH * d + h * d + c] * k[j * nKv * d + kvh * d + c];
        scores[j] = s / Math.sqrt(d);
        if (scores[j] > max) max = scores[j];
      }
      let z = 0;
      for (let j = 0; j < T; j++) { scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max); z += scores[j]; }
      for (let j = 0; j < T; j++) {
        if (!scores[j]) continue;
        const p = scores[j] / z;
        for (let c = 0; c < d; c++) out[i * nH * d + h * d + c] += p * v[j * nKv * d + kvh * d + c];
      }
    }
  }
  return out;
}

export function referenceModernStates(model: { tensors: ReferenceModel['tensors'] }, cfg: ModernReferenceConfig, inputIds: readonly number[]): ModernReferenceStates {
  const T = inputIds.length;
  const H = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const d = cfg.headDim;
  const nH = cfg.numHeads;
  const nKv = cfg.numKvHeads;
  const get = (name: string) => {
    const t = model.tensors.get(name);
    if (!t) throw new Error(`reference forward: weight ${name} missing`);
    return t.data;
  };
  const bert = cfg.architecture === 'modernbert';
  const table = get(bert ? 'embeddings.tok_embeddings.weight' : 'embed_tokens.weight');
  let x: Float64Array = new Float64Array(T * H);
  inputIds.forEach((id, t) => {
    if (!(id >= 0 && id < cfg.vocabSize)) throw new Error(`reference forward: token id ${id} out of range`);
    for (let h = 0; h < H; h++) x[t * H + h] = table[id * H + h];
  });
  if (bert) x = layerNormNoBias(x, T, H, get('embeddings.norm.weight'), cfg.eps);
  const residual: Float64Array[][] = [rows(x, T, H)];
  const add = (a: Float64Array, b: Float64Array) => { for (let i = 0; i < a.length; i++) a[i] += b[i]; return a; };

  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `layers.${l}`;
    if (bert) {
      const normed = l === 0 ? x : layerNormNoBias(x, T, H, get(`${p}.attn_norm.weight`), cfg.eps);
      const qkv = linearNoBias(normed, T, get(`${p}.attn.Wqkv.weight`), H, 3 * nH * d);
      const part = (k: number) => { const o = new Float64Array(T * nH * d); for (let t = 0; t < T; t++) o.set(qkv.subarray(t * 3 * nH * d + k * nH * d, t * 3 * nH * d + (k + 1) * nH * d), t * nH * d); return o; };
      const q = part(0), k = part(1), v = part(2);
      const isGlobal = l % cfg.globalEvery === 0;
      const theta = isGlobal ? cfg.ropeTheta : cfg.localRopeTheta;
      rotary(q, T, nH, d, theta);
      rotary(k, T, nH, d, theta);
      const halfWindow = Math.floor(cfg.localAttention / 2);
      const ctx = maskedAttention(q, k, v, T, nH, nH, d, (i, j) => isGlobal || Math.abs(i - j) <= halfWindow);
      x = add(x.slice(), linearNoBias(ctx, T, get(`${p}.attn.Wo.weight`), nH * d, H));
      const wi = linearNoBias(layerNormNoBias(x, T, H, get(`${p}.mlp_norm.weight`), cfg.eps), T, get(`${p}.mlp.Wi.weight`), H, 2 * F);
      const act = new Float64Array(T * F);
      for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) act[t * F + f] = gelu(wi[t * 2 * F + f]) * wi[t * 2 * F + F + f];
      x = add(x, linearNoBias(act, T, get(`${p}.mlp.Wo.weight`), F, H));
    } else {
      const normed = rmsNorm(x, T, H, get(`${p}.input_layernorm.weight`), cfg.eps);
      const q = rmsNorm(linearNoBias(normed, T, get(`${p}.self_attn.q_proj.weight`), H, nH * d), T * nH, d, get(`${p}.self_attn.q_norm.weight`), cfg.eps);
      const k = rmsNorm(linearNoBias(normed, T, get(`${p}.self_attn.k_proj.weight`), H, nKv * d), T * nKv, d, get(`${p}.self_attn.k_norm.weight`), cfg.eps);
      const v = linearNoBias(normed, T, get(`${p}.self_attn.v_proj.weight`), H, nKv * d);
      rotary(q, T, nH, d, cfg.ropeTheta);
      rotary(k, T, nKv, d, cfg.ropeTheta);
      const ctx = maskedAttention(q, k, v, T, nH, nKv, d, (i, j) => j <= i);
      x = add(x.slice(), linearNoBias(ctx, T, get(`${p}.self_attn.o_proj.weight`), nH * d, H));
      const mlpIn = rmsNorm(x, T, H, get(`${p}.post_attention_layernorm.weight`), cfg.eps);
      const gate = linearNoBias(mlpIn, T, get(`${p}.mlp.gate_proj.weight`), H, F);
      const up = linearNoBias(mlpIn, T, get(`${p}.mlp.up_proj.weight`), H, F);
      for (let i = 0; i < gate.length; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
      x = add(x, linearNoBias(gate, T, get(`${p}.mlp.down_proj.weight`), F, H));
    }
    residual.push(rows(x, T, H));
  }
  const final = bert ? layerNormNoBias(x, T, H, get('final_norm.weight'), cfg.eps) : rmsNorm(x, T, H, get('norm.weight'), cfg.eps);
  return { residual, output: rows(final, T, H) };
}

/** Loads a modern fixture (config + weights) for referenceModernStates. */
export function loadModernReference(dir: string): { config: ModernReferenceConfig; tensors: ReferenceModel['tensors'] } {
  const config = readModernReferenceConfig(dir);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'reference_weights.json'), 'utf8')) as { tensors: Record<string, { offset: number; shape: number[] }> };
  const bin = fs.readFileSync(path.join(dir, 'reference_weights.bin'));
  const tensors: ReferenceModel['tensors'] = new Map();
  for (const [name, { offset, shape }] of Object.entries(meta.tensors)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const start = bin.byteOffset + offset;
    const data = new Float64Array(n);
    data.set(new Float32Array(bin.buffer.slice(start, start + 4 * n)));
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}
