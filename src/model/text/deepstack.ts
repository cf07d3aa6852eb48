// DeepStack: visual features taken from intermediate ViT blocks are added to the hidden
// states at the visual token positions after the first decoder layers (ViT tap k feeds the
// output of LLM layer k). Text positions are untouched; decoding steps have nothing to add.
import type { Backend, Tensor } from "../../tensor/backend.js";

/** One modality's visual tokens: where they sit in the chunk and their per-level features. */
export interface DeepStackSource {
  rows: Int32Array;
  features: Tensor[];
}

export function injectDeepStack(b: Backend, h: Tensor, layer: number, sources: readonly DeepStackSource[]): void {
  for (const s of sources) {
    if (layer < s.features.length && s.rows.length > 0) b.scatterAddRows(h, s.rows, s.features[layer]!);
  }
}

export function deepStackDepth(sources: readonly DeepStackSource[]): number {
  return sources.reduce((m, s) => Math.max(m, s.features.length), 0);
}
