// A shared index in PostgreSQL with pgvector: the same chunks, vectors and lexical statistics as the local
// store, in tables a team's indexers and searchers use at once.
//
// Layout (one table set per recipe; the prefix is a hash of model hash, layer, pooling, normalize, dims):
//   embedding_lens_recipes   one row per recipe: its fields, chunking parameters, table prefix, corpus
//                            statistics for BM25 (document count, field length totals), generation
//   <prefix>_files           path → content hash (an update redoes only files whose hash changed)
//   <prefix>_chunks          chunk id, path, lines, content hash, field lengths, embedding vector(dims)
//                            with an HNSW index (vector_cosine_ops)
//   <prefix>_terms           BM25 postings: term, field, chunk, term frequency (postgresLexical.ts)
//
// Concurrency: a writer holds a session advisory lock on its recipe for the whole refresh (a second
// writer waits, then finds the work done), and applies its update in ONE transaction, so readers see
// the state before or after it, never half, and a writer killed at any point leaves the last committed
// state (the server rolls the open transaction back when the connection drops). Every value goes in as a
// query parameter; only table names are spliced in, and those are validated hex prefixes.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { indexMissing } from '../errors';
import { UserError, type RecipeIdentity } from '../types';
import { copyBinary } from './pgCopy';
import { isPostgresUrl, redactUrl } from './postgresUrl';
import { documentTerms, queryTerms, scoreBm25, type CorpusStats, type Posting } from './postgresLexical';

export const POSTGRES_SCHEMA_VERSION = 1;
const REGISTRY = 'embedding_lens_recipes';
/** Rows per INSERT statement (files; chunks and postings go by COPY). */
const INSERT_BATCH = 500;
/** A load of at least this many chunks into an empty table builds the HNSW index once, at the end. */
const BULK_ROWS = 20_000;

function endpoint(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || process.env.PGHOST || 'localhost'}:${u.port || process.env.PGPORT || '5432'}`;
  } catch {
    return redactUrl(url);
  }
}

/** A pg error, said in the user's terms (the password never appears). */
export function describePgError(err: unknown, url: string): Error {
  const e = err as { code?: string; message?: string };
  const where = endpoint(url);
  let user = '';
  let db = '';
  try {
    const u = new URL(url);
    user = decodeURIComponent(u.username) || process.env.PGUSER || '';
    db = decodeURIComponent(u.pathname.replace(/^\//, '')) || process.env.PGDATABASE || user;
  } catch { /* keep empty */ }
  const facts = { store: redactUrl(url) };
  const auth = (m: string, hint: string) => new UserError(m, hint, { code: 'STORE_AUTH', ...facts });
  const unreachable = (m: string, hint: string) => new UserError(m, hint, { code: 'STORE_UNREACHABLE', ...facts });
  switch (e.code) {
    case '28P01':
      return auth(`PostgreSQL at ${where} refused the password for user "${user}".`, 'Check the user name and the password.');
    case '28000':
      return auth(`PostgreSQL at ${where} does not let user "${user}" in: ${e.message}`, 'Check pg_hba.conf on the server, or the user name.');
    case '3D000':
      return unreachable(`PostgreSQL at ${where} has no database "${db}".`, `Create it (createdb ${db}) or fix the database name in the connection string.`);
    case 'ECONNREFUSED':
      return unreachable(`Cannot reach PostgreSQL at ${where}: connection refused (no server listening there).`, 'Check the host and port in the connection string, and that the server is running.');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable(`Cannot reach PostgreSQL at ${where}: the host name does not resolve.`, 'Check the host in the connection string.');
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return unreachable(`Cannot reach PostgreSQL at ${where}: ${e.code}.`, 'Check the host, port and network (firewall, VPN).');
    default:
      if (/password authentication|no password|client password must be a string|SASL/i.test(e.message ?? '')) {
        return auth(`PostgreSQL at ${where} needs a password for user "${user}": ${e.message}`, 'Give the password (it is not in the connection string).');
      }
      if (/self[- ]signed|certificate|SSL|TLS/i.test(e.message ?? '')) {
        return unreachable(`TLS to PostgreSQL at ${where} failed: ${e.message}`, 'Check sslmode in the connection string (require, verify-ca, verify-full) and the server certificate.');
      }
      if (/timeout/i.test(e.message ?? '')) return unreachable(`Cannot reach PostgreSQL at ${where}: ${e.message}.`, 'Check the host, port and network.');
      return err instanceof Error ? err : new Error(String(err));
  }
}

/** Opens a client; connection failures become clear UserErrors. */
export async function connectPostgres(url: string, applicationName: string): Promise<pg.Client> {
  if (!isPostgresUrl(url)) throw new UserError(`"${redactUrl(url)}" is not a PostgreSQL connection string.`, 'Use postgres://user@host:port/database (password from PGPASSWORD or ~/.pgpass; TLS with ?sslmode=require).');
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined); // a dropped connection surfaces at the next query
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw describePgError(err, url);
  }
  return client;
}

/** Fields of a recipe compared with what the database holds, in report order. */
const RECIPE_FIELDS: [keyof RecipeIdentity, string][] = [
  ['modelHash', 'model hash'], ['layer', 'layer'], ['pooling', 'pooling'], ['normalize', 'normalize'], ['dims', 'dims'],
];

/** Table prefix of a recipe: `el_` + 16 hex chars of sha256 over the fields that change the vectors. */
export function recipeTablePrefix(identity: RecipeIdentity): string {
  const h = createHash('sha256').update(JSON.stringify([identity.modelHash, identity.layer, identity.pooling, identity.normalize, identity.dims])).digest('hex');
  return `el_${h.slice(0, 16)}`;
}

/** Chunking parameters, stored with the recipe: writers with other ones would chunk files differently. */
export interface PgChunking {
  maxTokens: number;
  overlapLines: number;
  scale: number;
  version: number;
}

interface RegistryRow {
  key: string;
  model: string;
  model_hash: string;
  layer: string;
  pooling: string;
  normalize: boolean;
  dims: number;
  chunking: PgChunking | null;
  doc_count: string;
  text_len_total: string;
  path_len_total: string;
  generation: string;
  updated_at: Date | null;
}

function rowIdentity(r: RegistryRow): RecipeIdentity {
  return { model: r.model, modelHash: r.model_hash, layer: r.layer, pooling: r.pooling as RecipeIdentity['pooling'], normalize: r.normalize, dims: r.dims };
}

function describe(id: RecipeIdentity): string {
  return `model ${id.model} (hash ${id.modelHash}), layer ${id.layer}, pooling ${id.pooling}, normalize ${id.normalize}, ${id.dims} dims`;
}

export interface PgChunkRecord {
  id: string;
  path: string;
  startLine: number;
  endLine: number;
  contentHash: string;
}

export interface PgFileUpdate {
  path: string;
  contentHash: string;
  chunks: (PgChunkRecord & { text: string })[];
  /** chunks.length × dims, row-major. */
  vectors: Float32Array;
}

export interface PgApplyResult {
  filesWritten: number;
  filesRemoved: number;
  chunksWritten: number;
  chunksRemoved: number;
  /** Write-ahead log bytes of the update transaction (what a replica or backup receives). */
  walBytes: number;
}

export interface PgOpenOptions {
  /** Create the extension, registry and this recipe's tables if missing (writers). */
  create: boolean;
  chunking?: PgChunking;
  /** Allow a second recipe's tables in a database that already holds another recipe. */
  allowNewRecipe?: boolean;
  applicationName?: string;
  /** HNSW build parameters for a new table set. */
  hnsw?: { m?: number; efConstruction?: number };
  /** The writer replaces every row (a rebuild): other chunking parameters are accepted and stored. */
  rechunk?: boolean;
}

function vectorLiteral(v: Float32Array): string {
  // Each float32 printed as its shortest double form parses back to the same float32 in pgvector.
  return `[${Array.prototype.join.call(v, ',')}]`;
}

function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(','), Number);
}

function advisoryKey(name: string): string {
  // 63-bit key from the name (pg_advisory_lock takes a bigint).
  return (BigInt('0x' + createHash('sha256').update(name).digest('hex').slice(0, 16)) & 0x7fffffffffffffffn).toString();
}

export class PostgresStore {
  private constructor(
    readonly client: pg.Client,
    readonly url: string,
    readonly identity: RecipeIdentity,
    readonly prefix: string,
    readonly chunking: PgChunking | null,
  ) {}

  private t(name: 'files' | 'chunks' | 'terms'): string {
    return `"${this.prefix}_${name}"`;
  }

  get dims(): number {
    return this.identity.dims;
  }

  get location(): string {
    return `${redactUrl(this.url)} (tables ${this.prefix}_*)`;
  }

  static async open(url: string, identity: RecipeIdentity, options: PgOpenOptions): Promise<PostgresStore> {
    const client = await connectPostgres(url, options.applicationName ?? 'embedding-lens');
    try {
      const prefix = recipeTablePrefix(identity);
      if (!/^el_[0-9a-f]{16}$/.test(prefix)) throw new Error(`bad table prefix ${prefix}`);
      let row = await PostgresStore.registryRow(client, prefix);
      if (!row && options.create) {
        await PostgresStore.createTables(client, url, identity, prefix, options);
        row = await PostgresStore.registryRow(client, prefix);
      }
      if (!row) {
        const others = await PostgresStore.registryRows(client);
        if (others.length) throw PostgresStore.mismatch(url, identity, others, false);
        throw indexMissing(`No Embedding Lens index in ${redactUrl(url)}.`, { store: redactUrl(url) }, 'Index a folder into it first.');
      }
      // The row matched by prefix must hold exactly this recipe (name every differing field).
      const held = rowIdentity(row);
      const diffs = RECIPE_FIELDS.filter(([f]) => String(held[f]) !== String(identity[f])).map(([f, label]) => `${label} ${String(held[f])} vs ${String(identity[f])}`);
      if (diffs.length) throw new UserError(`The index tables ${prefix}_* in ${redactUrl(url)} hold another recipe: ${diffs.join(', ')}.`, undefined, { code: 'RECIPE_MISMATCH', store: redactUrl(url) });
      if (options.create && options.chunking && row.chunking && !options.rechunk) {
        const c = row.chunking;
        const o = options.chunking;
        const cd = (['maxTokens', 'overlapLines', 'scale', 'version'] as const).filter((f) => c[f] !== o[f]);
        if (cd.length) {
          throw new UserError(
            `The shared index was chunked with ${cd.map((f) => `${f} ${c[f]}`).join(', ')}; this run would use ${cd.map((f) => `${f} ${o[f]}`).join(', ')}.`,
            'Every writer must chunk files the same way: use the team\'s chunk size, or rebuild the shared index to re-chunk every file with this one.',
          );
        }
      }
      return new PostgresStore(client, url, identity, prefix, row.chunking);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err instanceof UserError ? err : describePgError(err, url);
    }
  }

  private static mismatch(url: string, identity: RecipeIdentity, rows: RegistryRow[], writer: boolean): UserError {
    const lines = rows.map((r) => {
      const held = rowIdentity(r);
      const diffs = RECIPE_FIELDS.filter(([f]) => String(held[f]) !== String(identity[f])).map(([f, label]) => `${label}: database ${String(held[f])}, this run ${String(identity[f])}`);
      return `  ${describe(held)}\n    differs in ${diffs.join('; ')}`;
    });
    // The fields of the closest held recipe (fewest differences), for front ends to pick their action.
    const closest = rows.map(rowIdentity).map((held) => RECIPE_FIELDS.filter(([f]) => String(held[f]) !== String(identity[f])).map(([f, label]) => ({ field: label, index: held[f] as unknown, request: identity[f] as unknown })))
      .sort((a, b) => a.length - b.length)[0] ?? [];
    return new UserError(
      `${redactUrl(url)} holds no index for ${describe(identity)}. It holds:\n${lines.join('\n')}`,
      writer
        ? 'Use the model and recipe the database holds, or create a second index for this recipe beside it.'
        : 'Search with the model and recipe the database holds.',
      { code: 'RECIPE_MISMATCH', store: redactUrl(url), differences: closest },
    );
  }

  /** Descriptions of every recipe the database holds an index for (status, "others"). */
  static async heldRecipes(url: string): Promise<string[]> {
    const client = await connectPostgres(url, 'embedding-lens status');
    try {
      return (await PostgresStore.registryRows(client)).map((r) => describe(rowIdentity(r)));
    } catch (err) {
      throw describePgError(err, url);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private static async registryRows(client: pg.Client): Promise<RegistryRow[]> {
    const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [REGISTRY]);
    if (!exists.rows[0]?.t) return [];
    return (await client.query<RegistryRow>(`SELECT * FROM ${REGISTRY} ORDER BY key`)).rows;
  }

  private static async registryRow(client: pg.Client, prefix: string): Promise<RegistryRow | null> {
    const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [REGISTRY]);
    if (!exists.rows[0]?.t) return null;
    return (await client.query<RegistryRow>(`SELECT * FROM ${REGISTRY} WHERE key = $1`, [prefix])).rows[0] ?? null;
  }

  private static async createTables(client: pg.Client, url: string, identity: RecipeIdentity, prefix: string, options: PgOpenOptions): Promise<void> {
    await client.query('BEGIN');
    try {
      // One DDL writer at a time across the database (two first indexers race otherwise).
      await client.query('SELECT pg_advisory_xact_lock($1)', [advisoryKey('embedding-lens ddl')]);
      const ext = await client.query('SELECT 1 FROM pg_extension WHERE extname = $1', ['vector']);
      if (!ext.rowCount) {
        try {
          await client.query('CREATE EXTENSION IF NOT EXISTS vector');
        } catch (err) {
          const e = err as { code?: string; message?: string };
          throw new UserError(
            `The pgvector extension is not available in ${redactUrl(url)}: ${e.message}`,
            e.code === '0A000' || /could not open extension control file/.test(e.message ?? '')
              ? 'Install pgvector on the server (e.g. build it from source: make && make install), then run CREATE EXTENSION vector.'
              : 'Ask the database owner to run CREATE EXTENSION vector in this database.',
          );
        }
      }
      await client.query(`CREATE TABLE IF NOT EXISTS ${REGISTRY} (
        key text PRIMARY KEY,
        schema_version int NOT NULL,
        model text NOT NULL, model_hash text NOT NULL, layer text NOT NULL, pooling text NOT NULL,
        normalize boolean NOT NULL, dims int NOT NULL, chunking jsonb,
        doc_count bigint NOT NULL DEFAULT 0, text_len_total bigint NOT NULL DEFAULT 0, path_len_total bigint NOT NULL DEFAULT 0,
        generation bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz)`);
      const held = await PostgresStore.registryRows(client);
      if (!held.some((r) => r.key === prefix)) {
        // Another recipe's index is there: a second one only when asked (a changed model is refused).
        if (held.length && !options.allowNewRecipe) throw PostgresStore.mismatch(url, identity, held, true);
        const files = `"${prefix}_files"`;
        const chunks = `"${prefix}_chunks"`;
        const terms = `"${prefix}_terms"`;
        const m = Math.max(2, Math.floor(options.hnsw?.m ?? 16));
        const efc = Math.max(2 * m, Math.floor(options.hnsw?.efConstruction ?? 64));
        await client.query(`CREATE TABLE ${files} (path text PRIMARY KEY, content_hash text NOT NULL, chunk_count int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
        await client.query(`CREATE TABLE ${chunks} (
          id bigserial PRIMARY KEY, chunk_id text NOT NULL UNIQUE,
          path text NOT NULL REFERENCES ${files}(path) ON DELETE CASCADE,
          start_line int NOT NULL, end_line int NOT NULL, content_hash text NOT NULL,
          text_len int NOT NULL, path_len int NOT NULL, embedding vector(${Number(identity.dims)}) NOT NULL)`);
        await client.query(`CREATE INDEX ON ${chunks} (path)`);
        await client.query(`CREATE INDEX ON ${chunks} (content_hash)`);
        await client.query(`CREATE INDEX ON ${chunks} USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efc})`);
        await client.query(`CREATE TABLE ${terms} (term text NOT NULL, field smallint NOT NULL, chunk bigint NOT NULL REFERENCES ${chunks}(id) ON DELETE CASCADE, tf int NOT NULL, PRIMARY KEY (term, field, chunk))`);
        await client.query(`CREATE INDEX ON ${terms} (chunk)`);
        await client.query(
          `INSERT INTO ${REGISTRY} (key, schema_version, model, model_hash, layer, pooling, normalize, dims, chunking) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [prefix, POSTGRES_SCHEMA_VERSION, identity.model, identity.modelHash, identity.layer, identity.pooling, identity.normalize, identity.dims, options.chunking ? JSON.stringify(options.chunking) : null],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Takes this recipe's writer lock for the session (released by `release()` or when the connection
   * ends, e.g. the process dies). Waits for another writer, calling `onWait` once.
   */
  async lockWriter(onWait?: (holder: string) => void): Promise<() => Promise<void>> {
    const key = advisoryKey(`embedding-lens writer ${this.prefix}`);
    const got = await this.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
    if (!got.rows[0]?.ok) {
      const who = await this.client.query<{ app: string; addr: string | null; since: Date | null }>(
        `SELECT a.application_name AS app, a.client_addr::text AS addr, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = $1::bigint LIMIT 1`,
        [key],
      );
      const h = who.rows[0];
      onWait?.(h ? `${h.app || 'a client'}${h.addr ? ` from ${h.addr}` : ''}${h.since ? ` (connected ${h.since.toISOString()})` : ''}` : 'another writer');
      await this.client.query('SELECT pg_advisory_lock($1)', [key]);
    }
    return async () => {
      await this.client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
    };
  }

  /** path → content hash of every indexed file. */
  async fileHashes(): Promise<Map<string, string>> {
    const r = await this.client.query<{ path: string; content_hash: string }>(`SELECT path, content_hash FROM ${this.t('files')}`);
    return new Map(r.rows.map((x) => [x.path, x.content_hash]));
  }

  /**
   * Vectors by the hash part of the chunk id (what was embedded: context header + lines, see
   * core/index/chunk embedHashOfId); equal hashes mean equal vectors.
   */
  async vectorsByEmbedHash(hashes: string[]): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (let i = 0; i < hashes.length; i += 5000) {
      const r = await this.client.query<{ h: string; v: string }>(
        `SELECT DISTINCT ON (h) h, v FROM (SELECT substring(chunk_id from '@([^@]*)$') AS h, embedding::text AS v FROM ${this.t('chunks')}) s WHERE h = ANY($1::text[])`,
        [hashes.slice(i, i + 5000)],
      );
      for (const row of r.rows) out.set(row.h, parseVector(row.v));
    }
    return out;
  }

  /**
   * Replaces the given files (and removes `removePaths`) in ONE transaction; the corpus statistics
   * are updated last, in the same transaction.
   */
  async apply(files: PgFileUpdate[], removePaths: string[], options: { chunking?: PgChunking; all?: boolean } = {}): Promise<PgApplyResult> {
    const c = this.client;
    const dims = this.dims;
    const result: PgApplyResult = { filesWritten: 0, filesRemoved: 0, chunksWritten: 0, chunksRemoved: 0, walBytes: 0 };
    if (!files.length && !removePaths.length && !options.all) return result;
    await c.query('BEGIN');
    try {
      const walStart = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      if (options.all) {
        // A rebuild replaces every row: files the update does not carry go too.
        const carried = new Set(files.map((f) => f.path));
        const held = await c.query<{ path: string }>(`SELECT path FROM ${this.t('files')}`);
        removePaths = [...new Set([...removePaths, ...held.rows.map((r) => r.path).filter((p) => !carried.has(p))])];
      }
      const gone = [...new Set([...removePaths, ...files.map((f) => f.path)])];
      const before = await c.query<{ n: string; t: string | null; p: string | null }>(
        `SELECT count(*) AS n, sum(text_len) AS t, sum(path_len) AS p FROM ${this.t('chunks')} WHERE path = ANY($1::text[])`,
        [gone],
      );
      await c.query(`DELETE FROM ${this.t('files')} WHERE path = ANY($1::text[])`, [gone]);
      result.filesRemoved = removePaths.length;
      result.chunksRemoved = Number(before.rows[0]!.n);
      let docDelta = -Number(before.rows[0]!.n);
      let textDelta = -Number(before.rows[0]!.t ?? 0);
      let pathDelta = -Number(before.rows[0]!.p ?? 0);
      for (let i = 0; i < files.length; i += INSERT_BATCH) {
        const part = files.slice(i, i + INSERT_BATCH);
        await c.query(
          `INSERT INTO ${this.t('files')} (path, content_hash, chunk_count) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])`,
          [part.map((f) => f.path), part.map((f) => f.contentHash), part.map((f) => f.chunks.length)],
        );
      }
      const all = files.flatMap((f) => f.chunks.map((ch, j) => ({ ch, v: f.vectors.subarray(j * dims, (j + 1) * dims) })));
      if (all.length) {
        // A first load of many rows into an empty table: the HNSW index is dropped and built once at the
        // end (in this transaction), which is much faster than growing the graph row by row.
        let hnsw: { name: string; def: string } | undefined;
        if (all.length >= BULK_ROWS && !(await c.query(`SELECT 1 FROM ${this.t('chunks')} LIMIT 1`)).rowCount) {
          const idx = await c.query<{ indexname: string; indexdef: string }>(
            `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexdef LIKE '%USING hnsw%'`,
            [`${this.prefix}_chunks`],
          );
          if (idx.rows[0]) {
            hnsw = { name: idx.rows[0].indexname, def: idx.rows[0].indexdef };
            await c.query(`DROP INDEX "${hnsw.name.replace(/"/g, '""')}"`);
          }
        }
        // Row ids first (the postings refer to them), then both tables by binary COPY.
        const ids = (await c.query<{ id: string }>(
          `SELECT nextval(pg_get_serial_sequence($1, 'id'))::text AS id FROM generate_series(1, $2::int)`,
          [this.t('chunks'), all.length],
        )).rows.map((r) => BigInt(r.id));
        const stats = all.map(({ ch }) => documentTerms(ch.path, ch.text));
        const copied = await copyBinary(c, this.t('chunks'), ['id', 'chunk_id', 'path', 'start_line', 'end_line', 'content_hash', 'text_len', 'path_len', 'embedding'], all.length, (w, i) => {
          const { ch, v } = all[i]!;
          w.row(9).int64(ids[i]!).text(ch.id).text(ch.path).int32(ch.startLine).int32(ch.endLine).text(ch.contentHash).int32(stats[i]!.textLength).int32(stats[i]!.pathLength).vector(v);
        });
        if (copied !== all.length) throw new Error(`copied ${copied} chunks of ${all.length}`);
        const postings: [number, number][] = [];
        stats.forEach((s, i) => s.rows.forEach((_, j) => postings.push([i, j])));
        await copyBinary(c, this.t('terms'), ['term', 'field', 'chunk', 'tf'], postings.length, (w, n) => {
          const [i, j] = postings[n]!;
          const r = stats[i]!.rows[j]!;
          w.row(4).text(r.term).int16(r.field).int64(ids[i]!).int32(r.tf);
        });
        if (hnsw) await c.query(hnsw.def);
        docDelta += all.length;
        for (const s of stats) { textDelta += s.textLength; pathDelta += s.pathLength; }
        result.chunksWritten = all.length;
      }
      result.filesWritten = files.length;
      // Last statement: the statistics row (readers of BM25 see it change with the rows, atomically).
      await c.query(
        `UPDATE ${REGISTRY} SET doc_count = doc_count + $2, text_len_total = text_len_total + $3, path_len_total = path_len_total + $4,
         generation = generation + 1, updated_at = now(), chunking = COALESCE($5::jsonb, chunking) WHERE key = $1`,
        [this.prefix, docDelta, textDelta, pathDelta, options.chunking ? JSON.stringify(options.chunking) : null],
      );
      const walEnd = (await c.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::text AS bytes', [walStart])).rows[0]!.bytes;
      result.walBytes = Number(walEnd);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err instanceof UserError ? err : describePgError(err, this.url);
    }
    return result;
  }

  /** Nearest chunks by cosine similarity (HNSW; `ef` = hnsw.ef_search, at least k). */
  async queryVector(vector: Float32Array, k: number, ef?: number): Promise<(PgChunkRecord & { score: number; distance: number })[]> {
    if (vector.length !== this.dims) throw new UserError(`Query vector has ${vector.length} dims, the index ${this.dims}.`);
    const c = this.client;
    await c.query('BEGIN READ ONLY');
    try {
      await c.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(Math.min(1000, Math.max(k, ef ?? 100)))]);
      const r = await c.query<{ chunk_id: string; path: string; start_line: number; end_line: number; content_hash: string; distance: number }>(
        `SELECT chunk_id, path, start_line, end_line, content_hash, embedding <=> $1::vector AS distance FROM ${this.t('chunks')} ORDER BY embedding <=> $1::vector LIMIT $2`,
        [vectorLiteral(vector), k],
      );
      await c.query('COMMIT');
      return r.rows.map((x) => ({ id: x.chunk_id, path: x.path, startLine: x.start_line, endLine: x.end_line, contentHash: x.content_hash, distance: x.distance, score: 1 - x.distance }));
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw describePgError(err, this.url);
    }
  }

  /** BM25 over the stored postings, scored as the local lexical index scores (postgresLexical.ts). */
  async queryLexical(query: string, limit: number): Promise<(PgChunkRecord & { score: number })[]> {
    const terms = queryTerms(query);
    if (!terms.length) return [];
    const c = this.client;
    // One snapshot for statistics and postings: a concurrent commit is seen entirely or not at all.
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const s = (await c.query<RegistryRow>(`SELECT * FROM ${REGISTRY} WHERE key = $1`, [this.prefix])).rows[0]!;
      const stats: CorpusStats = { docCount: Number(s.doc_count), textLengthTotal: Number(s.text_len_total), pathLengthTotal: Number(s.path_len_total) };
      const p = await c.query<{ term: string; field: number; chunk_id: string; tf: number; text_len: number; path_len: number }>(
        `SELECT t.term, t.field, c.chunk_id, t.tf, c.text_len, c.path_len FROM ${this.t('terms')} t JOIN ${this.t('chunks')} c ON c.id = t.chunk WHERE t.term = ANY($1::text[])`,
        [[...new Set(terms)]],
      );
      const postings: Posting[] = p.rows.map((r) => ({ term: r.term, field: r.field, doc: r.chunk_id, tf: r.tf, textLength: r.text_len, pathLength: r.path_len }));
      const ranked = scoreBm25(terms, postings, stats).slice(0, limit);
      const recs = await c.query<{ chunk_id: string; path: string; start_line: number; end_line: number; content_hash: string }>(
        `SELECT chunk_id, path, start_line, end_line, content_hash FROM ${this.t('chunks')} WHERE chunk_id = ANY($1::text[])`,
        [ranked.map((r) => r.doc)],
      );
      await c.query('COMMIT');
      const byId = new Map(recs.rows.map((x) => [x.chunk_id, x]));
      return ranked.map((r) => {
        const x = byId.get(r.doc)!;
        return { id: x.chunk_id, path: x.path, startLine: x.start_line, endLine: x.end_line, contentHash: x.content_hash, score: r.score };
      });
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw describePgError(err, this.url);
    }
  }

  async counts(): Promise<{ files: number; chunks: number; generation: number; updatedAt: string }> {
    const r = await this.client.query<{ files: string; chunks: string; generation: string; updated_at: Date | null }>(
      `SELECT (SELECT count(*) FROM ${this.t('files')}) AS files, doc_count AS chunks, generation, updated_at FROM ${REGISTRY} WHERE key = $1`,
      [this.prefix],
    );
    const x = r.rows[0]!;
    return { files: Number(x.files), chunks: Number(x.chunks), generation: Number(x.generation), updatedAt: x.updated_at?.toISOString() ?? '' };
  }

  /** Every stored chunk record (tests and export). */
  async records(): Promise<PgChunkRecord[]> {
    const r = await this.client.query<{ chunk_id: string; path: string; start_line: number; end_line: number; content_hash: string }>(
      `SELECT chunk_id, path, start_line, end_line, content_hash FROM ${this.t('chunks')} ORDER BY id`,
    );
    return r.rows.map((x) => ({ id: x.chunk_id, path: x.path, startLine: x.start_line, endLine: x.end_line, contentHash: x.content_hash }));
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
