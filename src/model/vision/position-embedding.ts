// The learned absolute position grid (e.g. 48x48) resized to each item's patch grid by
// bilinear sampling with align-corners semantics (corners map onto corners), emitted in
// merge-window order and repeated for every temporal patch.
import type { Backend, Tensor, Weight } from "../../tensor/backend.js";
import type { VisionConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";
import { mergeWindowOrder, type Grid } from "./merge-window.js";

const f = Math.fround;

/** torch.linspace(0, end, steps) in float32, as the CPU kernel computes it (from both ends). */
export function linspaceF32(end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) return out;
  const step = f(end / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(step * i) : f(end - f(step * (steps - 1 - i)));
  return out;
}

export class VisionPositionEmbedding {
  readonly gridSide: number;
  private readonly table: Weight;

  constructor(private readonly backend: Backend, ld: WeightLoader, private readonly c: VisionConfig, name: string) {
    this.gridSide = Math.round(Math.sqrt(c.numPositionEmbeddings));
    this.table = ld.load(name, [c.numPositionEmbeddings, c.hiddenSize], { why: "vision num_position_embeddings, hidden_size" });
  }

  /** [Σ t·h·w, hidden] in the same row order as the patch rows. */
  forward(grids: readonly Grid[]): Tensor {
    const N = this.gridSide;
    const m = this.c.spatialMergeSize;
    let rows = 0;
    for (const [t, h, w] of grids) rows += t * h * w;
    const idx = new Int32Array(rows * 4);
    const wts = new Float32Array(rows * 4);
    let r = 0;
    for (const [t, h, w] of grids) {
      const hs = linspaceF32(N - 1, h), ws = linspaceF32(N - 1, w);
      const order = mergeWindowOrder(h, w, m);
      for (let ti = 0; ti < t; ti++) {
        for (let k = 0; k < order.length; k += 2) {
          const i = order[k]!, j = order[k + 1]!;
          const h0 = Math.trunc(hs[i]!), w0 = Math.trunc(ws[j]!);
          const h1 = Math.min(h0 + 1, N - 1), w1 = Math.min(w0 + 1, N - 1);
          const dh = f(hs[i]! - h0), dw = f(ws[j]! - w0);
          const o = r * 4;
          idx[o] = h0 * N + w0; idx[o + 1] = h0 * N + w1; idx[o + 2] = h1 * N + w0; idx[o + 3] = h1 * N + w1;
          wts[o] = f(f(1 - dh) * f(1 - dw)); wts[o + 1] = f(f(1 - dh) * dw); wts[o + 2] = f(dh * f(1 - dw)); wts[o + 3] = f(dh * dw);
          r++;
        }
      }
    }
    return this.backend.gatherWeighted(this.table, idx, wts, 4);
  }
}
