// Which file format an output file name asks for: the one extension → format map of the project
// (extract, merge, export, shards and the editor's save dialog read it). No heavy imports: the
// extension host loads this without the writers.
import * as path from 'node:path';
import { UserError } from './errors';

export type OutputFormat = 'npy' | 'h5' | 'faiss';

/**
 * The one map from a file extension to the format written there: extract, merge, export and the
 * editor's save dialog all read it (lower-case, with the dot).
 */
export const OUTPUT_FORMAT_OF_EXTENSION: Readonly<Record<string, OutputFormat>> = {
  '.npy': 'npy',
  '.h5': 'h5',
  '.hdf5': 'h5',
  '.faiss': 'faiss',
  '.index': 'faiss',
};

/** Names of the formats, for save dialogs and messages. */
export const OUTPUT_FORMAT_NAMES: Readonly<Record<OutputFormat, string>> = { npy: 'NumPy array', h5: 'HDF5', faiss: 'FAISS index' };

/** A format's extensions, the usual one first (`['h5', 'hdf5']`), without dots. */
export function extensionsOfFormat(format: OutputFormat): string[] {
  return Object.entries(OUTPUT_FORMAT_OF_EXTENSION).filter(([, f]) => f === format).map(([ext]) => ext.slice(1));
}

/** The format a file name asks for, or undefined when its extension is none of ours. */
export function outputFormatOfName(file: string): OutputFormat | undefined {
  return Object.hasOwn(OUTPUT_FORMAT_OF_EXTENSION, path.extname(file).toLowerCase()) ? OUTPUT_FORMAT_OF_EXTENSION[path.extname(file).toLowerCase()] : undefined;
}

/** The format a file name asks for; an unknown extension is a BAD_INPUT error naming the choices. */
export function outputFormatOf(file: string): OutputFormat {
  const format = outputFormatOfName(file);
  if (format) return format;
  const ext = path.extname(file);
  throw new UserError(
    `Unknown output format "${ext || path.basename(file)}".`,
    'Write to .npy (numpy), .h5 (HDF5) or .faiss (a FAISS index); CSV is not offered: it loses precision and is slow to read.',
  );
}
