#!/usr/bin/env node
// Screenshots of the inspector with a real model in a real VS Code (code-server + Chromium, as
// `npm run test:vscode`; see scripts/vscode-host-setup.sh): the attention view, neighbours per layer
// and the map of the index, for a selection in a folder indexed beforehand with the CLI.
//
//   embedding-lens index <folder> --model <model> --storage <dir>
//   node scripts/screenshots.mjs --workspace <folder> --storage <dir> --model <model> \
//        --file <path in folder> --line <n> --lines <count> [--out docs/screenshots] \
//        [--steps attention,neighbours,map,compare,sweep] [--compare <file:line:lines>;<file:line:lines>…]
//
// Steps (default attention,neighbours,map): the attention view; neighbours per layer and the map of
// the index; compare: the selection pinned as A, then each --compare selection inspected as B
// (compare-1.png, compare-2.png…, and the heatmap and layer-to-layer similarity of the last B);
// sweep: "Find the Best Layer for This Workspace" (sweep.png).
//
// The workspace is opened where it is (nothing is written into it: indexing on save is off) and the
// CLI's index is linked where the extension looks for that folder's index.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { packageVsix } from './package.mjs';
import { checkAttentionView, freePort, installVsix, killGroup, makeProfile, runCommand, startCodeServer, waitForHealth } from '../test/integration/runHost.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    workspace: { type: 'string' },
    storage: { type: 'string' },
    model: { type: 'string' },
    file: { type: 'string' },
    line: { type: 'string', default: '1' },
    lines: { type: 'string', default: '20' },
    out: { type: 'string', default: path.join(ROOT, 'docs', 'screenshots') },
    steps: { type: 'string', default: 'attention,neighbours,map' },
    compare: { type: 'string', default: '' },
  },
});
const steps = new Set(values.steps.split(',').map((x) => x.trim()).filter(Boolean));
for (const st of steps) if (!['attention', 'neighbours', 'map', 'compare', 'sweep'].includes(st)) throw new Error(`unknown step ${st}`);
const compareWith = values.compare.split(';').filter(Boolean).map((spec) => {
  const m = /^(.+):(\d+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`--compare wants file:line:lines, got ${spec}`);
  return { file: m[1], line: m[2], lines: Number(m[3]) };
});
if (steps.has('compare') && !compareWith.length) throw new Error('the compare step needs --compare');
for (const k of ['workspace', 'storage', 'model', 'file']) if (!values[k]) throw new Error(`--${k} is required`);
const out = path.resolve(values.out);
mkdirSync(out, { recursive: true });
mkdirSync(path.join(ROOT, 'test-results'), { recursive: true });
const log = (m) => process.stderr.write(`[screenshots] ${m}\n`);

const vsix = packageVsix({ reuse: true });
const tmp = mkdtempSync(path.join(tmpdir(), 'el-shots-'));
const storage = path.join(tmp, 'storage');
const profile = makeProfile(tmp, {
  workspaceFrom: values.workspace,
  copy: false,
  extraSettings: { 'embeddingLens.model': path.resolve(values.model), 'embeddingLens.storageLocation': storage, 'embeddingLens.indexOnSave': false },
});
// src/host/engineAccess.ts storageDirFor: <storageLocation>/<folder name slug>-<sha256(folder uri)[:8]>.
const workspace = path.resolve(values.workspace);
const slug = path.basename(workspace).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').slice(0, 40) || 'folder';
const hash = createHash('sha256').update(pathToFileURL(workspace).href).digest('hex').slice(0, 8);
mkdirSync(storage, { recursive: true });
symlinkSync(path.resolve(values.storage), path.join(storage, `${slug}-${hash}`));
let server;
let browser;
let page;
try {
  installVsix(vsix, profile);
  const port = await freePort();
  server = startCodeServer(port, profile);
  await waitForHealth(port, server);
  browser = await chromium.launch({
    executablePath: process.env.EL_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await (await browser.newContext({ viewport: { width: 1600, height: 1250 } })).newPage();
  // Element screenshots inside the webview's nested iframes come out blank beyond the viewport: scroll
  // the part to the top of the webview and capture the webview as shown.
  const shoot = async (testid, file) => {
    // Below the sticky controls, so the part's title shows.
    await frame.locator(`[data-testid=${testid}]`).evaluate((e) => {
      e.scrollIntoView({ block: 'start' });
      const sticky = e.ownerDocument.querySelector('.controls.sticky');
      if (sticky && sticky !== e && !sticky.contains(e)) e.ownerDocument.defaultView.scrollBy(0, -sticky.getBoundingClientRect().height - 8);
    });
    await page.waitForTimeout(500);
    await page.locator('iframe.webview.ready').screenshot({ path: path.join(out, file) });
  };
  const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(profile.workspace)}`);
  await page.locator('.statusbar-item', { hasText: 'EL:' }).first().waitFor({ timeout: 90_000 });
  log('workbench ready');

  // Opens a file in the first editor group, selects `lines` lines from `line` and inspects them.
  const selectAndInspect = async ({ file, line, lines }) => {
    await page.keyboard.press('Control+1');
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(file);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: path.basename(file) }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');
    await page.locator('.editor-instance .monaco-editor').first().waitFor({ timeout: 15_000 });
    await page.waitForTimeout(1000);
    await page.keyboard.press('Control+G');
    await page.keyboard.type(String(line));
    await page.keyboard.press('Enter');
    await page.keyboard.press('Home');
    for (let i = 0; i < Number(lines); i++) await page.keyboard.press('Shift+ArrowDown');
    await page.locator('.statusbar-item', { hasText: /selected/ }).first().waitFor({ timeout: 10_000 });
    const shownBefore = await frame.locator('#source-text').textContent({ timeout: 1000 }).catch(() => '');
    await runCommand(page, 'Embedding Lens: Inspect Selection');
    // The panel shows the new selection (another text than before), computed.
    for (const until = Date.now() + 120_000; (await frame.locator('#source-text').textContent({ timeout: 1000 }).catch(() => shownBefore)) === shownBefore;) {
      if (Date.now() > until) throw new Error(`the inspector did not show ${file}:${line}`);
      await page.waitForTimeout(500);
    }
    await frame.locator('#app[data-state="ready"]').waitFor({ timeout: 120_000 });
    log(`inspected ${file}:${line} (+${lines}): ${await frame.locator('#status').textContent()}`);
  };

  await selectAndInspect({ file: values.file, line: values.line, lines: values.lines });
  // Room for the panel: hide the side bar, give the inspector's group most of the width.
  await page.keyboard.press('Control+B');
  await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+2');
  await runCommand(page, 'View: Toggle Maximize Editor Group', 1).catch(() => log('could not maximize the inspector group'));
  await page.waitForTimeout(1500);

  if (steps.has('compare')) {
    await frame.locator('[data-testid=pin]').click();
    await frame.locator('[data-testid=pinned-desc]').waitFor({ timeout: 10_000 });
    log(`pinned A: ${await frame.locator('[data-testid=pinned-desc]').textContent()}`);
    for (const [i, b] of compareWith.entries()) {
      await page.locator('.editor-instance .monaco-editor .view-lines').first().click().catch(() => undefined);
      await selectAndInspect(b);
      await frame.locator('[data-testid=compare-chart-point]').first().waitFor({ timeout: 60_000 });
      await page.waitForTimeout(1000);
      await shoot('compare', `compare-${i + 1}.png`);
      log(`compare ${i + 1}: ${(await frame.locator('[data-testid=compare] .meta').first().textContent()) ?? ''}`);
    }
    await shoot('heatmap-section', 'heatmap.png');
    await shoot('similarity-section', 'layer-similarity.png');
  }
  if (steps.has('attention')) {
    const att = await checkAttentionView(page, frame);
    await frame.locator('[data-testid=attention-unit]').selectOption('word');
    await frame.locator('[data-testid=attention-focus]').waitFor({ timeout: 30_000 });
    await shoot('attention-section', 'attention.png');
    await shoot('attention-title', 'attention-matrix.png');
    log(`attention: ${att.layers} × ${att.heads}; ${att.readout}`);
  }

  if (steps.has('neighbours')) {
    await frame.locator('[data-testid=neighbours-some]').click();
    await frame.locator('[data-testid=neighbours-table]').or(frame.locator('[data-testid=neighbours-error]')).first().waitFor({ timeout: 600_000 });
    if (await frame.locator('[data-testid=neighbours-error]').isVisible()) {
      await shoot('neighbours-section', 'neighbours-error.png');
      throw new Error(`neighbours per layer: ${await frame.locator('[data-testid=neighbours-error]').textContent()}`);
    }
    await shoot('neighbours-section', 'neighbours-per-layer.png');
    log(`neighbours: ${await frame.locator('[data-testid=neighbours-meta]').textContent()}`);
  }

  if (steps.has('map')) {
    await frame.locator('[data-testid=map-quality]', { hasText: 'UMAP' }).waitFor({ timeout: 600_000 });
    await shoot('pca-section', 'map-umap.png');
    log(`map: ${await frame.locator('[data-testid=pca-meta]').textContent()} · ${await frame.locator('[data-testid=map-quality]').textContent()}`);
    await frame.locator('[data-testid=map-grouping]').selectOption('kind');
    await frame.locator('[data-testid=map-projection]').selectOption('pca');
    await shoot('pca-section', 'map-pca-kinds.png');
  }
  if (steps.has('sweep')) {
    await runCommand(page, 'Embedding Lens: Find the Best Layer for This Workspace');
    await frame.locator('[data-testid=sweep-table]').waitFor({ timeout: 900_000 });
    await page.waitForTimeout(1000);
    await shoot('sweep-meta', 'sweep.png');
    log(`sweep: ${await frame.locator('[data-testid=sweep-meta]').textContent()} · ${await frame.locator('[data-testid=sweep-recommendation]').textContent()}`);
  }
  await page.screenshot({ path: path.join(out, 'workbench.png') });
} catch (err) {
  log(`FAILED: ${err instanceof Error ? err.message : err}`);
  await page?.screenshot({ path: path.join(ROOT, 'test-results', 'screenshots-failure.png') }).catch(() => undefined);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => undefined);
  await killGroup(server);
  rmSync(tmp, { recursive: true, force: true });
}
