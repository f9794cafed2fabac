// `index <folder> --store postgres://…` and `search <folder> "…" --store postgres://…`: the shared
// PostgreSQL index (src/core/store/postgres*.ts). The connection is checked before the model loads, and
// nothing is written under the folder or a local storage folder.
// `pg` (and its TLS and network modules, ~50 ms to load) comes in only when --store is used.
import { isPostgresUrl, redactUrl } from '../core/store/postgresUrl';
import { UserError, type TextEmbedder } from '../core/types';
import type { refreshPostgres } from '../core/store/postgresIndex';
import type { RefreshSummary } from '../core/index/indexer';
import type { SearchMode, SimilarTarget } from '../core/search/search';
import type { ChunkKind } from '../core/search/kinds';
import type { CliLogger } from './terminal';

export const STORE_HELP = `Shared index
  --store <url>           postgres://user@host:port/db: use a PostgreSQL + pgvector index instead of the
                          local folder (password from PGPASSWORD or ~/.pgpass; TLS with ?sslmode=require)`;

/** The --store value: a PostgreSQL URL, or undefined for the local store. */
export function postgresStore(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isPostgresUrl(value)) throw new UserError(`--store expects a postgres:// connection string, got "${redactUrl(value)}".`, 'Leave --store out for the local index (see --storage).');
  return value;
}

/** Fails fast (before the model loads) on a wrong password or an unreachable server. */
export async function checkConnection(url: string): Promise<void> {
  const { connectPostgres } = await import('../core/store/postgres');
  const client = await connectPostgres(url, 'embedding-lens check');
  await client.end().catch(() => undefined);
}

export async function indexPostgres(
  url: string,
  folder: string,
  embedder: TextEmbedder,
  options: Omit<Parameters<typeof refreshPostgres>[0], 'root' | 'url' | 'embedder' | 'logger'>,
  logger: CliLogger,
  signal: AbortSignal,
): Promise<RefreshSummary & { walBytes: number }> {
  const { refreshPostgres } = await import('../core/store/postgresIndex');
  return refreshPostgres({ ...options, root: folder, url, embedder, logger }, { signal });
}

export async function searchPostgres(
  url: string,
  folder: string,
  embedder: TextEmbedder,
  query: string | SimilarTarget,
  options: { k?: number; perFile?: number; previewLines?: number; mode: SearchMode; kinds?: ChunkKind[] },
) {
  const { PostgresSearch } = await import('../core/store/postgresIndex');
  const search = await PostgresSearch.open({ root: folder, url, embedder });
  try {
    return typeof query === 'string' ? await search.search(query, options) : await search.similar(query, options);
  } finally {
    await search.close();
  }
}
