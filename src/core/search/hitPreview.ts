// How a search hit is shown in a few lines (the CLI's text output and the editor's result lists). No
// imports: the extension host loads it without the engine.

/** The line that stands for lines left out between a function's first line and its matched piece. */
export const ELIDED_LINES = '⋯';

/**
 * The lines that show a hit (CLI, result lists): its preview; for a whole function of which a later piece
 * matched, the function's first line, ELIDED_LINES, then the piece's first lines: what made it a result.
 */
export function hitPreviewLines(hit: { preview: string; startLine: number; match?: { startLine: number; preview: string } }): string[] {
  const lines = hit.preview.split('\n');
  const m = hit.match;
  if (!m || m.startLine <= hit.startLine || !m.preview) return lines;
  return [...lines.slice(0, 1), ELIDED_LINES, ...m.preview.split('\n')];
}
