// Hugging Face's `hidden_states` convention per architecture family, where the structure alone cannot
// say it. `hidden_states` has L+1 entries, 0 = the embeddings output, i = the residual stream leaving
// block i — except the LAST entry of pre-norm models, where HF's modelling code differs by family:
//
//   * Llama / Mistral / Qwen2 / Qwen3 / Gemma / Phi-3 (decoders): the last entry is taken AFTER the final
//     norm, so it equals `last_hidden_state`;
//   * ModernBERT: the last entry is the residual stream BEFORE `final_norm`; `last_hidden_state` is after it.
//
// Post-norm encoders (BERT, RoBERTa, DistilBERT, MPNet, XLM-R, ...) end in a norm inside the last block, so
// their last entry is `last_hidden_state` and no convention is needed. A pre-norm model of a family not
// listed here is refused (index L would be a guess); see README "Architectures".
import { UserError } from '../types';
import type { ResidualStream } from './onnxGraph';

export type LastIndex = 'after-final-norm' | 'before-final-norm';

const PRE_NORM_FAMILIES: { test: RegExp; family: string; last: LastIndex }[] = [
  { test: /^modernbert$/, family: 'ModernBERT', last: 'before-final-norm' },
  { test: /^(llama|mistral|mixtral|qwen2|qwen2_moe|qwen3|qwen3_moe|gemma|gemma2|gemma3|gemma3_text|phi3|olmo|olmo2|granite|stablelm)$/, family: 'Llama-style decoder', last: 'after-final-norm' },
];

export interface HiddenStateLayout {
  /** tensors[i] = hidden state i as HF numbers it (0..L). */
  tensors: string[];
  /** The model's own last_hidden_state (what sentence-transformers pools). */
  output: string;
  /** A short description for logs: "pre-norm (ModernBERT): index L before final_norm". */
  description: string;
}

/** Maps the structural residual stream onto HF's numbering for `modelType`. */
export function hfHiddenStates(stream: ResidualStream, modelType: string): HiddenStateLayout {
  const L = stream.numLayers;
  if (stream.layout === 'post-norm' || stream.finalNorm === 'none') {
    return { tensors: stream.residual, output: stream.output, description: stream.source === 'graph-outputs' ? 'hidden states output by the graph' : `${stream.layout} blocks (index ${L} = the model's output)` };
  }
  const family = PRE_NORM_FAMILIES.find((f) => f.test.test(modelType));
  if (!family) {
    throw new UserError(
      `"${modelType}" is a pre-norm model (the residual stream passes a final norm before the output), and Embedding Lens does not know which of the two Hugging Face calls hidden state ${L} for this family.`,
      'Supported pre-norm families: ModernBERT and Llama-style decoders (Llama, Mistral, Qwen2/3, Gemma, Phi-3). Please report this model type so its convention can be added.',
      { code: 'MODEL_INVALID' },
    );
  }
  if (stream.finalNorm === 'fused' && family.last === 'before-final-norm') {
    throw new UserError(
      `This ${family.family} graph fuses the last residual connection into its final norm, so hidden state ${L} (the residual stream before the final norm, as Hugging Face numbers it) is not a tensor of the graph.`,
      'Use an export without that fusion (e.g. optimum-cli export onnx without -O2 or higher).',
      { code: 'MODEL_INVALID' },
    );
  }
  const tensors = stream.residual.slice();
  if (family.last === 'after-final-norm') tensors[L] = stream.output;
  return {
    tensors,
    output: stream.output,
    description: `pre-norm ${family.family} (index ${L} ${family.last === 'after-final-norm' ? 'after the final norm, = output' : 'before the final norm; output after it'})`,
  };
}
