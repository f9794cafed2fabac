// A throwaway PostgreSQL server for tests: initdb in a temporary folder, listening on 127.0.0.1 at a free
// port, password authentication (scram-sha-256), stopped and deleted afterwards. Needs the server
// binaries (Debian: /usr/lib/postgresql/<v>/bin) and the pgvector extension installed into that server
// (see .ci/run). When they are absent, `findPostgres()` says why, and the tests skip with that reason.
// EMBEDDING_LENS_TEST_PG_BIN overrides the binary folder.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface PgInstall {
  bin: string;
}

/** The server binaries with pgvector, or the reason they are not usable here. */
export function findPostgres(): PgInstall | { skip: string } {
  const candidates = process.env.EMBEDDING_LENS_TEST_PG_BIN
    ? [process.env.EMBEDDING_LENS_TEST_PG_BIN]
    : fs.existsSync('/usr/lib/postgresql')
      ? fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
      : [];
  const bin = candidates.find((b) => fs.existsSync(path.join(b, 'initdb')) && fs.existsSync(path.join(b, 'pg_ctl')));
  if (!bin) return { skip: 'PostgreSQL server binaries (initdb, pg_ctl) not found (Debian: apt-get install postgresql-15; .ci/run installs them)' };
  const pgConfig = [path.join(bin, 'pg_config'), '/usr/bin/pg_config'].find((p) => fs.existsSync(p));
  let share = '';
  try {
    share = pgConfig ? execFileSync(pgConfig, ['--sharedir'], { encoding: 'utf8' }).trim() : '';
  } catch { /* below */ }
  const version = path.basename(path.dirname(bin));
  const control = share ? path.join(share, 'extension', 'vector.control') : `/usr/share/postgresql/${version}/extension/vector.control`;
  if (!fs.existsSync(control)) return { skip: `the pgvector extension is not installed into PostgreSQL ${version} (${control} missing; build it from ../shared/vendor/pgvector-0.8.6 as .ci/run does)` };
  if (process.getuid?.() === 0 && spawnSync('id', ['postgres']).status !== 0) return { skip: 'running as root and there is no "postgres" user to run the server as' };
  return { bin };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface PgServer {
  port: number;
  password: string;
  /** Connection string for a database (created by `createDatabase`). */
  url(db?: string, password?: string): string;
  createDatabase(name: string): void;
  /** psql -c as the superuser; returns stdout. */
  sql(db: string, query: string): string;
  stop(): void;
}

/** Starts a server; `serverOptions` are extra `-c name=value` settings (benchmarks). */
export async function startPostgres(install: PgInstall, serverOptions = ''): Promise<PgServer> {
  const root = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'el-pg-'));
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(path.join(dir, 'pw'), password + '\n');
  if (root) execFileSync('chown', ['-R', 'postgres', dir]);
  const as = (cmd: string, args: string[]) => {
    const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const data = path.join(dir, 'data');
  as(path.join(install.bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${path.join(dir, 'pw')}`, '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  as(path.join(install.bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c client_connection_check_interval=200 ${serverOptions}`, 'start']);
  const psql = fs.existsSync(path.join(install.bin, 'psql')) ? path.join(install.bin, 'psql') : 'psql';
  const server: PgServer = {
    port,
    password,
    url: (db = 'postgres', pw = password) => `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/${db}`,
    createDatabase: (name) => { server.sql('postgres', `CREATE DATABASE "${name}"`); },
    sql: (db, query) => {
      const r = spawnSync(psql, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-c', query], {
        encoding: 'utf8', env: { ...process.env, PGPASSWORD: password },
      });
      if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
      return r.stdout.trim();
    },
    stop: () => {
      try {
        as(path.join(install.bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return server;
}
