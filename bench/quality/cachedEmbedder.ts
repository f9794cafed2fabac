// A TextEmbedder that remembers every vector it computed, on disk, keyed by model hash + recipe +
// prefix + text: re-running the quality benchmark after a change embeds only the chunks that changed.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExtractOptions, TextEmbedder } from '../../src/core/types';

const KEY_BYTES = 20;

export class CachedEmbedder implements TextEmbedder {
  readonly identity: TextEmbedder['identity'];
  private readonly map = new Map<string, Float32Array>();
  private readonly fd: number;
  /** Texts sent to the model and time spent there (cache misses only). */
  misses = 0;
  hits = 0;
  modelMs = 0;
  cpuMs = 0;

  constructor(private readonly inner: TextEmbedder, cacheDir: string, private readonly salt = '') {
    this.identity = inner.identity;
    fs.mkdirSync(cacheDir, { recursive: true });
    const id = inner.identity;
    const file = path.join(cacheDir, `emb-${id.modelHash}-${createHash('sha1').update(JSON.stringify([id.layer, id.pooling, id.normalize, salt])).digest('hex').slice(0, 8)}.bin`);
    const dims = id.dims;
    const rec = KEY_BYTES + dims * 4;
    if (fs.existsSync(file)) {
      const buf = fs.readFileSync(file);
      const whole = Math.floor(buf.length / rec) * rec;
      for (let off = 0; off < whole; off += rec) {
        const key = buf.subarray(off, off + KEY_BYTES).toString('hex');
        const v = new Float32Array(dims);
        new Uint8Array(v.buffer).set(buf.subarray(off + KEY_BYTES, off + rec));
        this.map.set(key, v);
      }
      if (whole !== buf.length) fs.truncateSync(file, whole);
    }
    this.fd = fs.openSync(file, 'a');
  }

  private key(text: string, prefix: string): string {
    return createHash('sha1').update(prefix).update('\u0000').update(text).digest('hex');
  }

  async embed(texts: string[], options: ExtractOptions = {}): Promise<Float32Array> {
    const dims = this.identity.dims;
    const prefix = options.prefix ?? '';
    const keys = texts.map((t) => this.key(t, prefix));
    const missing: number[] = [];
    keys.forEach((k, i) => { if (!this.map.has(k) && !missing.some((j) => keys[j] === k)) missing.push(i); });
    this.hits += texts.length - missing.length;
    if (missing.length) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const data = await this.inner.embed(missing.map((i) => texts[i]!), { ...options, onProgress: undefined });
      const cpu = process.cpuUsage(c0);
      this.cpuMs += (cpu.user + cpu.system) / 1000;
      this.modelMs += performance.now() - t0;
      this.misses += missing.length;
      const out = Buffer.alloc(missing.length * (KEY_BYTES + dims * 4));
      missing.forEach((i, r) => {
        const v = data.slice(r * dims, (r + 1) * dims);
        this.map.set(keys[i]!, v);
        const off = r * (KEY_BYTES + dims * 4);
        Buffer.from(keys[i]!, 'hex').copy(out, off);
        Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(out, off + KEY_BYTES);
      });
      fs.writeSync(this.fd, out);
    }
    const result = new Float32Array(texts.length * dims);
    keys.forEach((k, i) => result.set(this.map.get(k)!, i * dims));
    options.onProgress?.({ itemsDone: texts.length, itemsTotal: texts.length, tokensDone: 0, tokensTotal: 0 });
    return result;
  }

  countTokens(texts: string[]): Promise<number[]> {
    return this.inner.countTokens(texts);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
