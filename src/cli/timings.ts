// Where a CLI process spends its time, for benchmarks (bench/cliProcess.ts) and for anyone asking why a
// command is slow: with EMBEDDING_LENS_TIMINGS=1 the process prints one line to stderr at exit,
// `timings {"start": …, "<phase>": ms, …}`, each value the milliseconds since the process started
// (performance.now() counts from the process's time origin, so node's own start-up is in the first mark).
const enabled = !!process.env.EMBEDDING_LENS_TIMINGS;
const marks: Record<string, number> = {};

/** Records that `phase` ended now (a no-op unless EMBEDDING_LENS_TIMINGS is set). */
export function mark(phase: string): void {
  if (!enabled) return;
  marks[phase] = Math.round(performance.now() * 10) / 10;
}

if (enabled) {
  process.on('exit', () => {
    mark('exit');
    const cpu = process.cpuUsage();
    process.stderr.write(`timings ${JSON.stringify({ ...marks, cpuMs: Math.round((cpu.user + cpu.system) / 1000), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
  });
}
