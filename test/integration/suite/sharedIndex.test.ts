// The shared PostgreSQL index from the real extension host: the connection string goes into the
// `embeddingLens.store` setting, the password into VS Code's secret storage through "Set PostgreSQL
// Password" (never into settings.json), and Index Workspace / search then go to the database.
// runHost.mjs starts a throwaway PostgreSQL + pgvector (test/helpers/pgServer.ts) and passes its URL
// (without the password) and the password in the environment; without PostgreSQL the suite is skipped
// with the reason.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import * as vscode from 'vscode';
import { activatedApi } from './helpers';

const URL_NO_PASSWORD = process.env.EL_TEST_PG_URL;
const PASSWORD = process.env.EL_TEST_PG_PASSWORD;
const USER_SETTINGS = process.env.EL_USER_SETTINGS;

suite('Shared PostgreSQL index (embeddingLens.store + secret storage)', function () {
  const cfg = () => vscode.workspace.getConfiguration('embeddingLens');

  suiteSetup(function () {
    if (!URL_NO_PASSWORD || !PASSWORD) {
      console.log(`SKIPPED: ${process.env.EL_TEST_PG_SKIP ?? 'no PostgreSQL for the host tests'}`);
      this.skip();
    }
  });

  suiteTeardown(async () => {
    if (!URL_NO_PASSWORD) return;
    await vscode.commands.executeCommand('embeddingLens.setPostgresPassword', { password: '' });
    await cfg().update('store', undefined, vscode.ConfigurationTarget.Global);
  });

  test('the password is kept in the secret storage, not in settings; Index Workspace and search go to PostgreSQL', async function () {
    this.timeout(180_000);
    const { api } = await activatedApi();
    const url = URL_NO_PASSWORD!;
    const folder = vscode.workspace.workspaceFolders![0]!;

    // A password written into the setting is refused (settings are plain text), naming the command.
    await cfg().update('store', url.replace('postgres://postgres@', 'postgres://postgres:typed-in-settings@'), vscode.ConfigurationTarget.Global);
    await assert.rejects(api.index(), (err: Error) => {
      assert.match(err.message, /embeddingLens\.store contains a password[^]*Set PostgreSQL Password/);
      return true;
    });

    await cfg().update('store', url, vscode.ConfigurationTarget.Global);
    // A wrong password: refused by the server, said so with the code the notification's buttons come from.
    await vscode.commands.executeCommand('embeddingLens.setPostgresPassword', { password: 'not-the-password' });
    await assert.rejects(api.index(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'STORE_AUTH');
      assert.match(err.message, /refused the password for user "postgres"/);
      assert.doesNotMatch(err.message, /not-the-password/);
      return true;
    });

    // The right one: saved in the secret storage (round trip through VS Code's API), never in settings.json.
    const saved = await vscode.commands.executeCommand<{ saved: boolean; who: string }>('embeddingLens.setPostgresPassword', { password: PASSWORD });
    assert.equal(saved?.saved, true);
    assert.match(saved!.who, /^postgres@127\.0\.0\.1:\d+$/);
    assert.equal(await api.hasPostgresPassword(), true);
    if (USER_SETTINGS) {
      const text = fs.readFileSync(USER_SETTINGS, 'utf8');
      assert.ok(text.includes('"embeddingLens.store"'), 'the connection string is in the User settings');
      assert.ok(!text.includes(PASSWORD!), 'the password is not in settings.json');
    }

    // Earlier suites built a local index of this folder: it must stay exactly as it is.
    const storageDir = api.storageDirFor(folder.uri.fsPath)!;
    const localFiles = () => (fs.existsSync(storageDir) ? fs.readdirSync(storageDir, { recursive: true, encoding: 'utf8' }).sort().map((f) => `${f} ${fs.statSync(path.join(storageDir, f)).mtimeMs}`) : []);
    const localBefore = localFiles();
    const [summary] = await api.index();
    assert.ok(summary!.filesIndexed > 0 && summary!.chunksTotal > 0, JSON.stringify(summary));
    assert.doesNotMatch(summary!.storeDir, new RegExp(PASSWORD!));
    assert.match(summary!.storeDir, /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/\w+ \(tables el_[0-9a-f]{16}_\*\)$/);
    assert.deepEqual(localFiles(), localBefore, 'nothing written to the local index');

    // The rows are in the database (read here with the same password).
    const withPassword = new URL(url);
    withPassword.password = encodeURIComponent(PASSWORD!);
    const db = new pg.Client({ connectionString: withPassword.toString() });
    await db.connect();
    try {
      const reg = await db.query<{ key: string; doc_count: string }>('SELECT key, doc_count FROM embedding_lens_recipes');
      assert.equal(reg.rows.length, 1);
      assert.equal(Number(reg.rows[0]!.doc_count), summary!.chunksTotal);
      const rows = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${reg.rows[0]!.key}_chunks"`);
      assert.equal(Number(rows.rows[0]!.n), summary!.chunksTotal);

      // Search answers from PostgreSQL: a hit's chunk is a row there.
      const hits = await api.search('hello world', 'hybrid');
      assert.ok(hits.length > 0, 'hits');
      const first = hits[0]!;
      const match = await db.query(`SELECT 1 FROM "${reg.rows[0]!.key}_chunks" WHERE path = $1 AND start_line = $2 AND end_line = $3`, [first.path, first.startLine + 1, first.endLine + 1]);
      const matchSameLines = await db.query(`SELECT 1 FROM "${reg.rows[0]!.key}_chunks" WHERE path = $1 AND start_line = $2 AND end_line = $3`, [first.path, first.startLine, first.endLine]);
      assert.ok(match.rowCount! + matchSameLines.rowCount! > 0, `${first.path}:${first.startLine}-${first.endLine} is a row of the shared index`);
    } finally {
      await db.end();
    }
    // The status bar reads the database's state.
    let state = api.statusBar();
    for (let i = 0; i < 50 && state.kind !== 'ready'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = api.statusBar();
    }
    assert.equal(state.kind, 'ready', state.state);

    // Forgetting the password: the next request is refused again (nothing cached in the engine lets it in).
    await vscode.commands.executeCommand('embeddingLens.setPostgresPassword', { password: '' });
    assert.equal(await api.hasPostgresPassword(), false);
    await assert.rejects(api.search('hello world', 'vector'), (err: Error & { code?: string }) => err.code === 'STORE_AUTH' || /password/.test(err.message));
  });
});
