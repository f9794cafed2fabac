// Tokenization through Hugging Face's Rust tokenizers (npm `tokenizers`), reading the model's own
// tokenizer.json. transformers.js's tokenizer gives no character offsets and no word ids, which word
// pooling, token views and highlighting need; the Rust library gives both, runs batches off the JS
// thread, and is the same code Python's transformers uses.
import * as fs from 'node:fs';
import { Tokenizer } from 'tokenizers';
import { UserError } from '../types';

/** One tokenized text, in typed arrays (special tokens included, no truncation, no padding). */
export interface Encoded {
  ids: Int32Array;
  typeIds: Int32Array;
  /** 1 where the tokenizer added a special token ([CLS], [SEP], <s>, ...). */
  special: Uint8Array;
}

/** Offsets and word ids, only computed when a mode needs them. */
export interface EncodedDetail extends Encoded {
  tokens: string[];
  /** [start, end) per token, UTF-16 indices into the text. Special tokens get [0, 0]. */
  offsets: Int32Array;
  /** Word index per token, -1 for special tokens. */
  wordIds: Int32Array;
}

export class TextTokenizer {
  private constructor(private readonly tokenizer: Tokenizer) {}

  static load(file: string): TextTokenizer {
    let json: string;
    try {
      json = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`Cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      const tokenizer = Tokenizer.fromString(json);
      // We window long inputs ourselves; padding is per batch. Neither may happen inside the tokenizer.
      tokenizer.disableTruncation();
      tokenizer.disablePadding();
      return new TextTokenizer(tokenizer);
    } catch (err) {
      throw new UserError(`${file} is not a tokenizer the Hugging Face tokenizers library can read: ${(err as Error).message}`, 'Save it again with a recent transformers (tokenizer.save_pretrained()).');
    }
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.tokenToId(token) ?? undefined;
  }

  vocabSize(): number {
    return this.tokenizer.getVocabSize(true);
  }

  async encode(texts: string[]): Promise<Encoded[]> {
    const encodings = await this.tokenizer.encodeBatch(texts, { addSpecialTokens: true });
    return encodings.map((e) => ({
      ids: Int32Array.from(e.getIds()),
      typeIds: Int32Array.from(e.getTypeIds()),
      special: Uint8Array.from(e.getSpecialTokensMask()),
    }));
  }

  async encodeDetailed(texts: string[]): Promise<EncodedDetail[]> {
    const encodings = await this.tokenizer.encodeBatch(texts, { addSpecialTokens: true });
    return encodings.map((e, i) => {
      const special = Uint8Array.from(e.getSpecialTokensMask());
      const toUtf16 = codePointToUtf16(texts[i]);
      const offsets = new Int32Array(special.length * 2);
      e.getOffsets().forEach(([s, t], k) => {
        offsets[2 * k] = toUtf16(s);
        offsets[2 * k + 1] = toUtf16(t);
      });
      return {
        ids: Int32Array.from(e.getIds()),
        typeIds: Int32Array.from(e.getTypeIds()),
        special,
        tokens: e.getTokens(),
        offsets,
        wordIds: Int32Array.from(e.getWordIds(), (w, k) => (w === null || w === undefined || special[k] ? -1 : w)),
      };
    });
  }
}

/**
 * tokenizers reports offsets in Unicode code points; JavaScript strings (and VS Code positions) index
 * UTF-16 code units. They differ only after a character outside the BMP (emoji, some CJK).
 */
function codePointToUtf16(text: string): (cp: number) => number {
  // Fast path: no surrogate pairs, the two indexings agree.
  if (!/[\uD800-\uDBFF]/.test(text)) return (cp) => cp;
  const map: number[] = [];
  let unit = 0;
  for (const ch of text) {
    map.push(unit);
    unit += ch.length;
  }
  map.push(unit);
  return (cp) => map[Math.min(cp, map.length - 1)];
}
