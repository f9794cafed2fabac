// Writes an extraction to the file format its extension names, plus `<file>.json` with the manifest
// (model, layer spec, pooling, dims, count, and per-text tokens / words with offsets where relevant).
import { writeFileAtomic } from './store/atomicFile';
import { encodeFaissFlat, writeFaissFile } from './store/faiss';
import { writeNpy } from './store/npy';
import { requireVectorPooling } from './recipe';
import { outputFormatOf } from './outputFormats';
import { UserError, type ExtractResult, type OutputDType } from './types';

export { extensionsOfFormat, OUTPUT_FORMAT_NAMES, OUTPUT_FORMAT_OF_EXTENSION, outputFormatOf, outputFormatOfName, type OutputFormat } from './outputFormats';

export interface WriteOptions {
  dtype?: OutputDType;
  /** The input texts, stored in HDF5 files when given. */
  texts?: string[];
}

/** Returns the paths written. A file-system failure (no such folder, permissions, a full disk) is an IO_FAILED error. */
export async function writeExtraction(file: string, result: ExtractResult, options: WriteOptions = {}): Promise<string[]> {
  try {
    return await writeExtractionUnchecked(file, result, options);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof UserError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw err;
    const why: Record<string, string> = { ENOENT: 'the folder does not exist', EACCES: 'permission denied', EPERM: 'permission denied', ENOSPC: 'the disk is full', EROFS: 'the file system is read-only', EISDIR: 'it is a folder' };
    throw new UserError(`Cannot write ${file}: ${why[code] ?? (err as Error).message}.`, undefined, { code: 'IO_FAILED', file });
  }
}

async function writeExtractionUnchecked(file: string, result: ExtractResult, options: WriteOptions): Promise<string[]> {
  const format = outputFormatOf(file);
  const dtype = options.dtype ?? 'float32';
  const manifest = { ...result.manifest, dtype: format === 'faiss' ? 'float32' : dtype, format };
  switch (format) {
    case 'npy': {
      await writeNpy(file, result.data, result.dims, dtype);
      break;
    }
    case 'faiss': {
      // A FAISS index holds one vector per text (token or word vectors go to .npy / .h5).
      requireVectorPooling(result.manifest.pooling, 'a FAISS index');
      // Inner product on normalized vectors is cosine similarity; otherwise use L2 distance.
      const metric = result.manifest.normalize ? 'ip' : 'l2';
      await writeFaissFile(file, encodeFaissFlat({ vectors: result.data, dims: result.dims, metric }));
      (manifest as Record<string, unknown>).metric = metric === 'ip' ? 'inner_product' : 'l2';
      break;
    }
    case 'h5': {
      const { writeHdf5Extraction } = await import('./store/hdf5');
      await writeHdf5Extraction(file, result, { dtype, texts: options.texts });
      break;
    }
  }
  const manifestFile = `${file}.json`;
  await writeFileAtomic(manifestFile, JSON.stringify({ ...manifest, items: result.items }, null, 1) + '\n');
  return [file, manifestFile];
}
