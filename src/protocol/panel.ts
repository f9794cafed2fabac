// Messages between the inspector panel's host side (src/host/inspectorPanel.ts) and its webview
// script (media/inspector.ts). Types only: both sides `import type` this file.
import type { TokenInfo, WordInfo } from '../core/types';

/** Where the inspected text came from (shown in the panel header; used to reopen it). */
export interface TextSource {
  /** Workspace-relative path, or the document's name for untitled files. */
  label: string;
  uri: string;
  /** 0-based line range of the selection, inclusive. */
  startLine: number;
  endLine: number;
}

/** Everything the panel shows about one text. `hiddenStates` is layers × tokens × dims, row-major. */
export interface PanelInspection {
  text: string;
  source?: TextSource;
  model: string;
  tokens: TokenInfo[];
  words: WordInfo[];
  /** True when the text was cut to the model's maximum length. */
  truncated: boolean;
  layers: number;
  tokenCount: number;
  dims: number;
  hiddenStates: Float32Array;
}

export type HeatmapMetric = 'norm' | 'cosineToPooled';
export type PanelPooling = 'mean' | 'max' | 'cls' | 'last';

/** What the webview keeps with getState/setState: small, restorable, no vectors. */
export interface PanelViewState {
  text?: string;
  source?: TextSource;
  metric: HeatmapMetric;
  pooling: PanelPooling;
  /** Selected hidden-state index for the pooled-vector view; undefined = last. */
  layer?: number;
}

export type ToPanel =
  | { type: 'loading'; text: string; source?: TextSource }
  | { type: 'inspection'; data: PanelInspection }
  | { type: 'error'; message: string; text?: string; source?: TextSource };

export type FromPanel =
  | { type: 'ready'; state?: PanelViewState }
  | { type: 'openSource'; source: TextSource }
  | { type: 'copy'; text: string; what: string }
  | { type: 'webviewError'; message: string };
