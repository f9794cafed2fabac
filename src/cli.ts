// embedding-lens command-line entry. Each command lives in src/cli/<name>.ts and exports
// `run(argv): Promise<number>` (the exit code). Errors that are the user's to fix (UserError)
// print as one clear message, without a stack trace.
import { UserError } from './core/types';

type CommandModule = { run(argv: string[]): Promise<number>; summary: string };

const commands: Record<string, () => Promise<CommandModule>> = {
  extract: () => import('./cli/extract'),
};

function usage(): string {
  return [
    'Usage: embedding-lens <command> [options]',
    '',
    'Commands:',
    ...Object.keys(commands).map((name) => `  ${name}`),
    '',
    'Run `embedding-lens <command> --help` for the options of one command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    console.log((await import('./core/types')).TOOL_VERSION);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`Unknown command "${name}".\n\n${usage()}`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof UserError) {
      console.error(`embedding-lens: ${err.message}`);
    } else if (err instanceof Error && err.name === 'AbortError') {
      console.error('embedding-lens: cancelled');
    } else {
      console.error('embedding-lens: unexpected error (please report it):');
      console.error(err instanceof Error ? err.stack : err);
    }
    process.exitCode = 1;
  },
);
