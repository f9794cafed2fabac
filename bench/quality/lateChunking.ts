// Late chunking (Günther et al. 2024), as an experiment of the quality benchmark: the whole file (under
// its path line) runs through the model in windows, and each chunk's vector is the mean of the token
// states that fall inside its lines, so a chunk is read with the file around it. Plain chunking embeds
// each chunk (header + lines) alone. Queries are embedded as usual.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Extractor } from '../../src/core/extract/extractor';
import type { ExtractOptions, Recipe, TextEmbedder } from '../../src/core/types';

export function lateChunkingEmbedder(extractor: Extractor, plain: TextEmbedder, root: string, windowTokens: number): TextEmbedder {
  const files = new Map<string, { text: string; tokens: Array<{ start: number; end: number }>; data: Float32Array; dims: number }>();
  const recipe: Recipe = { layer: 'last', pool: 'none', normalize: false };
  const tokenStates = async (rel: string) => {
    let f = files.get(rel);
    if (f) return f;
    const text = `${rel}\n${fs.readFileSync(path.join(root, rel), 'utf8')}`;
    const r = await extractor.extract([text], recipe, { windowTokens });
    f = { text, tokens: r.items[0]!.tokens!.map((t) => ({ start: t.start, end: t.end })), data: r.data, dims: r.dims };
    files.clear(); // the indexer sends one file's chunks together: keep only the latest file
    files.set(rel, f);
    return f;
  };
  return {
    identity: plain.identity,
    prefixes: plain.prefixes,
    countTokens: (t) => plain.countTokens(t),
    async embed(texts: string[], options?: ExtractOptions): Promise<Float32Array> {
      const dims = plain.identity.dims;
      const out = new Float32Array(texts.length * dims);
      for (let i = 0; i < texts.length; i++) {
        const t = texts[i]!;
        const nl = t.indexOf('\n');
        const rel = nl > 0 ? t.slice(0, nl).split(' > ')[0]! : '';
        const body = nl > 0 ? t.slice(nl + 1) : '';
        if (!rel || !fs.existsSync(path.join(root, rel)) || !fs.statSync(path.join(root, rel)).isFile()) {
          out.set(await plain.embed([t], options), i * dims);
          continue;
        }
        const f = await tokenStates(rel);
        const lines = body.split('\n');
        // The chunk's own lines (the header may hold a description line first): find them in the file.
        let at = -1;
        let chunkText = body;
        for (let skip = 0; skip < Math.min(3, lines.length) && at < 0; skip++) {
          chunkText = lines.slice(skip).join('\n');
          at = f.text.indexOf(chunkText, rel.length + 1);
        }
        if (at < 0) { out.set(await plain.embed([t], options), i * dims); continue; }
        const end = at + chunkText.length;
        const v = new Float32Array(dims);
        let n = 0;
        f.tokens.forEach((tok, k) => {
          if (tok.end <= tok.start || tok.start < at || tok.end > end) return;
          for (let d = 0; d < dims; d++) v[d] += f.data[k * f.dims + d]!;
          n++;
        });
        if (!n) { out.set(await plain.embed([t], options), i * dims); continue; }
        let norm = 0;
        for (let d = 0; d < dims; d++) norm += v[d]! * v[d]!;
        norm = Math.sqrt(norm) || 1;
        for (let d = 0; d < dims; d++) out[i * dims + d] = v[d]! / norm;
      }
      return out;
    },
  };
}
