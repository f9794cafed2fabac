// The CLI's words for the engine's error codes (core/errors.ts): core says what is wrong, this file
// says which command or flag fixes it — and only names commands and flags that exist.
import { errorCode, UserError } from '../core/errors';
import { selfCommand } from './terminal';
import { DEFAULT_MODEL } from '../core/model/modelSource';

/** Where the failing command was run: the folder argument, when the command has one. */
export interface CliContext {
  command?: string;
  folder?: string;
  /** How to run the CLI (default: as it was started, see selfCommand). */
  cli?: string;
}

/** The command line that fixes an error, or undefined when core's own hint is all there is to say. */
export function cliAdvice(err: UserError, ctx: CliContext = {}): string | undefined {
  const folder = quote(ctx.folder ?? err.facts.root ?? '<folder>');
  const cli = ctx.cli ?? selfCommand();
  switch (errorCode(err)) {
    case 'INDEX_DAMAGED':
      if (err.facts.repair === 'refresh') return `Index it again (only the damaged part is redone): ${cli} index ${folder}`;
      return `Rebuild it: ${cli} index ${folder} --rebuild`;
    case 'INDEX_NEWER':
      return `Rebuild it: ${cli} index ${folder} --rebuild`;
    case 'RECIPE_MISMATCH':
      if (err.facts.store) {
        return ctx.command === 'search'
          ? 'Search with the --model, --layer and --pool (or --no-normalize) the database holds.'
          : `Index with the --model, --layer and --pool the database holds, or create this recipe's index beside it: ${cli} index ${folder} --store '${err.facts.store}' --add-recipe`;
      }
      return `Use the options the index was built with, or rebuild it with these: ${cli} index ${folder} --rebuild (same --model, --layer, --pool).`;
    case 'STORE_AUTH':
      return 'Give the password in the PGPASSWORD environment variable or in ~/.pgpass (not in the connection string: it would land in the shell history).';
    case 'INDEX_MISSING':
      return err.facts.others?.length
        ? `Build an index for these options: ${cli} index ${folder} (same --model, --layer, --pool), or search with the options of an existing one.`
        : `Build it first: ${cli} index ${folder}`;
    case 'MODEL_UNAVAILABLE':
      if (!/^[\w.-]+\/[\w.-]+$/.test(err.facts.model ?? '')) return 'Give --model an existing model folder (config.json, tokenizer.json, onnx/model.onnx) or a Hugging Face id.';
      return 'No other model is used in its place. Give --model a local model folder (config.json, tokenizer.json, onnx/model.onnx), ' +
        'or allow one download by leaving out --offline. Without network, the built-in model works offline:\n' +
        `  ${offlineExample(ctx, folder, cli)}`;
    default:
      return undefined;
  }
}

/** The message the CLI prints for a UserError: core's statement, then the CLI's advice (or core's hint). */
export function cliMessage(err: UserError, ctx: CliContext = {}): string {
  const advice = cliAdvice(err, ctx);
  return advice ? `${err.statement}\n${advice}` : err.message;
}

function offlineExample(ctx: CliContext, folder: string, cli: string): string {
  if (ctx.command === 'demo') return 'npm run demo';
  if (ctx.command === 'extract') return `${cli} extract --model ${DEFAULT_MODEL} --text "..." --out -`;
  return `${cli} ${ctx.command ?? 'index'} ${folder}   (no --model: the built-in ${DEFAULT_MODEL})`;
}

function quote(s: string): string {
  return /^[\w@%+=:,./<>-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
