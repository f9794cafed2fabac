// A long function for the tests of a search result that is one piece of a function (the in-host
// suite and the browser steps of runHost.mjs): no vscode import, so both can load it.

/** Lines of longFunctionSource(): one Python function, far longer than an editor's height. */
export const LONG_FUNCTION_LINES = 87;

/** A Python function of 87 lines whose last lines alone hold the words "quarantine orphaned transactions". */
export function longFunctionSource(): string {
  const lines = ['def reconcile_ledger(entries, accounts):', '    """Match every ledger entry to its account and report the differences."""', '    totals = {}'];
  for (let i = 0; i < 40; i++) lines.push(`    step_${i} = entries[${i}] if len(entries) > ${i} else None`, `    totals[${i}] = step_${i}`);
  lines.push('    # quarantine the orphaned transactions for manual review', '    orphaned = [e for e in entries if e.account not in accounts]', '    quarantine_bucket.extend(orphaned)', '    return totals');
  return lines.join('\n') + '\n';
}
