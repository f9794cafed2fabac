// Entry loaded by the extension host as `extensionTestsPath` (bundled by test/integration/runHost.mjs
// to out/test/integration/suite/index.js). VS Code calls run(); the workbench reports its outcome
// through codeAutomationExit (0 = all passed). Mocha itself is required from the repo's node_modules.
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', timeout: 60_000, color: false, reporter: 'spec' });
  // Bundled test files register their suites when imported: give them mocha's globals first.
  mocha.suite.emit('pre-require', globalThis, 'bundle', mocha);
  await import('./extension.test');
  await import('./engine.test');
  await import('./commands.test');
  await import('./lifecycle.test');
  await import('./sharedIndex.test');
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} test(s) failed`);
}
