// Parsers for option values shared by the CLI commands: each bad value is a UserError naming the flag.
import { UserError, type OutputDType } from '../core/types';

export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag} must be a positive integer, got "${value}".`);
  return n;
}

export function nonNegativeInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${flag} must be a non-negative integer, got "${value}".`);
  return n;
}

export function outputDType(value: string | undefined): OutputDType {
  if (value === 'float32' || value === 'float16') return value;
  throw new UserError(`Unknown --dtype "${value}".`, 'Use float32 or float16.');
}
