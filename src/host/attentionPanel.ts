// The inspector's attention data on the host side: asks the engine worker for the probabilities of
// the inspected text, keeps them, sends the webview an overview (thumbnails of every layer × head,
// for tokens and for words) and then one full matrix at a time, as the webview asks for it. Only the
// small parts cross to the webview: the whole tensor is layers × heads × T² floats (26 MB at 300 tokens).
import {
  aggregateUnits, attentionMatrix, attentionThumbnails, tokenUnits, wordUnits, type AttentionTensor, type AttentionUnit,
} from '../core/inspect/attentionViews';
import type { AttentionMatrixRequest, AttentionUnitKind, PanelAttention } from '../protocol/panel';
import type { WireAttention } from '../protocol/worker';

/** Overview thumbnails: at most this many rows and columns each. */
const THUMB_SIZE = 24;

export class AttentionData {
  private readonly tensor: AttentionTensor;
  private readonly units: Record<AttentionUnitKind, AttentionUnit[]>;

  constructor(readonly wire: WireAttention) {
    this.tensor = { layers: wire.layers, heads: wire.heads, tokens: wire.tokens.length, probs: wire.probs };
    this.units = { token: tokenUnits(wire.tokens), word: wordUnits(wire.tokens, wire.words) };
  }

  overview(): PanelAttention {
    const w = this.wire;
    return {
      text: w.text,
      model: w.model,
      layers: w.layers,
      heads: w.heads,
      tokens: w.tokens,
      totalTokens: w.totalTokens,
      truncated: w.truncated,
      units: this.units,
      thumbs: {
        token: attentionThumbnails(this.tensor, undefined, THUMB_SIZE),
        word: attentionThumbnails(this.tensor, this.units.word, THUMB_SIZE),
      },
    };
  }

  /** The full matrix of one layer and head (or the head mean), over tokens or words. */
  matrix(req: AttentionMatrixRequest): Float32Array {
    const m = attentionMatrix(this.tensor, req.layer, req.head);
    return req.unit === 'word' ? aggregateUnits(m, this.tensor.tokens, this.units.word) : m;
  }
}
