// Messages between the inspector panel's host side (src/host/inspectorPanel.ts) and its webview
// script (media/inspector.ts). Types only: both sides `import type` this file.
import type { VectorPooling } from '../core/recipe';
import type { AttentionUnit } from '../core/inspect/attentionViews';
import type { MapQuality } from '../core/map/neighbourMap';
import type { ChunkKind } from '../core/search/kinds';
import type { SweepResult } from '../core/sweep/sweep';
import type { TokenInfo } from '../core/types';
import type { WireInspectResult } from './worker';

/** Where the inspected text came from (shown in the panel header; used to reopen it). */
export interface TextSource {
  /** Workspace-relative path, or the document's name for untitled files. */
  readonly label: string;
  readonly uri: string;
  /** 0-based line range of the selection, inclusive. */
  readonly startLine: number;
  readonly endLine: number;
}

/**
 * Everything the panel shows about one text: the worker's inspection as it arrived (`hiddenStates` is
 * layers × tokens × dims, row-major), plus where the text came from.
 */
export interface PanelInspection extends WireInspectResult {
  readonly source?: TextSource;
}

/** One indexed chunk in the PCA scatter; `source` opens it (0-based lines, like a selection). */
export interface PanelIndexPoint {
  readonly source: TextSource;
  readonly preview: string;
  /** Top-level folder of the chunk's file inside its workspace folder ('' at the root): its colour. */
  readonly group: string;
  /** Code, docs or tests (the other grouping). */
  readonly kind: ChunkKind;
}

/**
 * A sample of the workspace index and the selection embedded with the index's recipe.
 * `vectors` is points × dims, row-major.
 */
export interface PanelIndexPoints {
  /** The recipe, for the caption: `model · layer last · mean`. */
  readonly recipe: string;
  readonly dims: number;
  readonly vectors: Float32Array;
  readonly points: PanelIndexPoint[];
  /** The inspected text, embedded like the chunks (absent when it could not be). */
  readonly selection?: Float32Array;
  /** Chunks in the index, when more than were sampled. */
  readonly total?: number;
  /** The UMAP of the same points and how well each map keeps neighbours (arrives after the PCA). */
  readonly umap?: { coords: Float32Array; quality: { pca: MapQuality; umap: MapQuality }; ms: number };
  /** Why there is no UMAP (too few points, or it failed). */
  readonly umapError?: string;
}

/** Nearest chunks of the inspected text at several layers (see core/search/layerNeighbours.ts). */
export interface PanelLayerNeighbours {
  readonly text: string;
  /** Hidden-state indices (0 = embeddings). */
  readonly layers: number[];
  /** The index's layer spec: candidates are its nearest chunks there. */
  readonly indexLayer: string;
  /** Resolved hidden-state index of the index's layer, when it is a single layer. */
  readonly indexLayerIndex?: number;
  readonly candidates: number;
  readonly searchMs: number;
  readonly embedMs: number;
  readonly hits: { source: TextSource; score: number; indexRank: number }[][];
}

export type LayerNeighboursScope = 'some' | 'all';

export type LayerNeighboursMessage =
  | { state: 'loading'; scope: LayerNeighboursScope }
  | { state: 'ready'; data: PanelLayerNeighbours }
  | { state: 'error'; message: string };

export type MapProjectionKind = 'umap' | 'pca';
export type MapGrouping = 'folder' | 'kind';

/** State of the PCA section: what the host could find for the inspected text. */
export type IndexPointsMessage =
  | { state: 'loading' }
  | { state: 'ready'; data: PanelIndexPoints }
  /** No index (for this recipe) yet: the panel offers to index the workspace. */
  | { state: 'noIndex'; message: string }
  | { state: 'noFolder' }
  | { state: 'error'; message: string };

export type AttentionUnitKind = 'token' | 'word';

/**
 * The attention overview of the inspected text: units (tokens or words) and, for each, thumbnails of
 * every layer × (heads + the head mean): `thumbs[kind].values` is layers × (heads + 1) × size × size.
 * Full matrices are asked for one at a time (FromPanel `attentionMatrix`).
 */
export interface PanelAttention {
  readonly text: string;
  readonly model: string;
  readonly layers: number;
  readonly heads: number;
  readonly tokens: TokenInfo[];
  /** Tokens of the whole text (more than tokens.length when the text was cut to the model's maximum). */
  readonly totalTokens: number;
  readonly truncated: boolean;
  readonly units: Record<AttentionUnitKind, AttentionUnit[]>;
  readonly thumbs: Record<AttentionUnitKind, { size: number; values: Float32Array }>;
}

export interface AttentionMatrixRequest {
  readonly layer: number;
  /** A head index, or the mean over heads. */
  readonly head: number | 'mean';
  readonly unit: AttentionUnitKind;
}

export type AttentionMessage =
  | { state: 'loading' }
  | { state: 'ready'; data: PanelAttention }
  /** The model's attention cannot be read (e.g. fused into one operator): the reason. */
  | { state: 'error'; message: string };

export type HeatmapMetric = 'norm' | 'cosineToPooled';
/** The inspector pools one vector per text (the recipe's vector poolings). */
export type PanelPooling = VectorPooling;
export type SweepMetric = 'mrrAt10' | 'recallAt1' | 'recallAt10';
export type PanelView = 'selection' | 'sweep';

/** What the webview keeps with getState/setState: small, restorable, no vectors. */
export interface PanelViewState {
  readonly text?: string;
  readonly source?: TextSource;
  readonly metric: HeatmapMetric;
  readonly pooling: PanelPooling;
  /** Selected hidden-state index for the pooled-vector view; undefined = last. */
  readonly layer?: number;
  /** Which tab is shown. */
  readonly view?: PanelView;
  /** Value shown in the sweep heatmap. */
  readonly sweepMetric?: SweepMetric;
  /** Which map of the index, and how its points are coloured. */
  readonly map?: MapProjectionKind;
  readonly mapGroup?: MapGrouping;
  /** Layer, head and units chosen in the attention view. */
  readonly attention?: AttentionMatrixRequest;
}

export type ToPanel =
  | { type: 'loading'; text: string; source?: TextSource }
  | { type: 'inspection'; data: PanelInspection }
  | { type: 'error'; message: string; text?: string; source?: TextSource }
  /** The text pinned as "A" for comparison (undefined = nothing pinned). */
  | { type: 'pinned'; data: PanelInspection | undefined }
  | ({ type: 'indexPoints' } & IndexPointsMessage)
  | { type: 'sweep'; result: SweepResult; reveal: boolean }
  | ({ type: 'attention' } & AttentionMessage)
  | ({ type: 'layerNeighbours' } & LayerNeighboursMessage)
  /** One full matrix (units × units, query rows), answering an `attentionMatrix` request. */
  | ({ type: 'attentionMatrix'; text: string; values: Float32Array } & AttentionMatrixRequest);

export type FromPanel =
  | { type: 'ready'; state?: PanelViewState }
  | { type: 'openSource'; source: TextSource }
  | { type: 'copy'; text: string; what: string }
  /** Pin the inspection shown now as "A". */
  | { type: 'pin' }
  | { type: 'unpin' }
  /** Fetch the index sample again (after indexing, or after a settings change). */
  | { type: 'reloadIndexPoints' }
  | { type: 'indexWorkspace' }
  | { type: 'applySweep'; layer: string; pool: string }
  | ({ type: 'attentionMatrix' } & AttentionMatrixRequest)
  /** Nearest chunks at layers 1, middle and last ('some') or at every layer ('all'). */
  | { type: 'layerNeighbours'; scope: LayerNeighboursScope }
  | { type: 'webviewError'; message: string };
