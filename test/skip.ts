// Node 20's test runner counts a skipped describe() as "skipped 0" and prints its reason only in the
// TAP line. A suite that needs something absent (../shared, python modules, a build) goes through
// here instead: it then reports one skipped test, named after the suite, with the reason.
import { describe, test } from 'node:test';

export function suiteRequiring(name: string, missing: string | false | undefined | null, body: () => void): void {
  describe(name, () => {
    if (missing) {
      test(`${name} (whole suite)`, { skip: missing }, () => undefined);
      return;
    }
    body();
  });
}
