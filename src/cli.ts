// embedding-lens command-line entry. Each command lives in src/cli/<name>.ts and exports
// `run(argv): Promise<number>` (the exit code). Errors that are the user's to fix (UserError)
// print as one clear message, without a stack trace.
import { UserError } from './core/errors';
import { cliMessage, type CliContext } from './cli/errors';
import { mark } from './cli/timings';

type CommandModule = { run(argv: string[]): Promise<number>; summary: string };

const summaries: Record<string, string> = {
  extract: 'embed texts with any layer and pooling → .npy / .h5 / .faiss / JSON',
  index: 'index a folder for semantic search (only changed files are redone)',
  search: 'search an indexed folder by meaning, keywords, or both',
  export: 'export an index to .npy / .h5 / .faiss',
  demo: 'index this repository and run example searches (the main job)',
  sweep: 'find the layer and pooling that retrieve best on a folder\'s own code',
  merge: 'join the shards of `extract --shard K/N` into one .npy / .h5 / .faiss',
};

const commands: Record<string, () => Promise<CommandModule>> = {
  extract: () => import('./cli/extract'),
  index: () => import('./cli/index'),
  search: () => import('./cli/search'),
  export: () => import('./cli/export'),
  demo: () => import('./cli/demo'),
  sweep: () => import('./cli/sweep'),
  merge: () => import('./cli/merge'),
};

function usage(): string {
  return [
    'Usage: embedding-lens <command> [options]',
    '',
    'Commands:',
    ...Object.keys(commands).map((name) => `  ${name.padEnd(9)}${summaries[name] ?? ''}`),
    '',
    'Run `embedding-lens <command> --help` for the options of one command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  mark('cliLoaded');
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
  const command = await load();
  mark('commandLoaded');
  return command.run(joinNegativeValues(rest));
}

/**
 * `--layer -2` is what users type, but parseArgs reads `-2` as an option. Values that look like
 * numbers or number lists (`-1`, `-1,-2`, `-4..-1`) are joined to the flag before parsing.
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if ((argv[i].startsWith('--') || argv[i] === '-k') && !argv[i].includes('=') && next !== undefined && /^-\d[\d.,\s-]*$/.test(next)) {
      out.push(`${argv[i] === '-k' ? '--k' : argv[i]}=${next}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/** The command and its folder argument (the first word after the command, when it is not an option). */
function contextOf(argv: string[]): CliContext {
  const [command, first] = argv;
  return { command, folder: (command === 'index' || command === 'search' || command === 'sweep') && first && !first.startsWith('-') ? first : undefined };
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    if (err instanceof UserError) {
      console.error(`embedding-lens: ${cliMessage(err, contextOf(process.argv.slice(2)))}`);
    } else if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      console.error(`embedding-lens: ${(err as Error).message}\nRun \`embedding-lens ${process.argv[2] ?? ''} --help\` for the options.`);
    } else if (err instanceof Error && err.name === 'AbortError') {
      console.error('embedding-lens: cancelled');
    } else {
      console.error('embedding-lens: unexpected error (please report it):');
      console.error(err instanceof Error ? err.stack : err);
    }
    process.exitCode = 1;
  },
);
