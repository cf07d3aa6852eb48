// The 2x2 patch merger: 4 consecutive rows (one merge window) are concatenated and
// projected to the text width by a 2-layer GELU(erf) MLP. The main merger normalises each
// patch before the concat (over H); the DeepStack mergers normalise after it (over 4H).
import type { Backend, Tensor, Weight } from "../../tensor/backend.js";
import type { VisionConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";

const LN_EPS = 1e-6;

export class VisionPatchMerger {
  private readonly norm: [Weight, Weight];
  private readonly fc1: [Weight, Weight];
  private readonly fc2: [Weight, Weight];
  private readonly unit: number;

  constructor(private readonly b: Backend, ld: WeightLoader, c: VisionConfig, p: string, readonly postShuffleNorm: boolean) {
    const H = c.hiddenSize;
    this.unit = H * c.spatialMergeSize * c.spatialMergeSize;
    const nd = postShuffleNorm ? this.unit : H;
    this.norm = [ld.load(`${p}.norm.weight`, [nd]), ld.load(`${p}.norm.bias`, [nd])];
    this.fc1 = [ld.load(`${p}.linear_fc1.weight`, [this.unit, this.unit], { matmul: true }), ld.load(`${p}.linear_fc1.bias`, [this.unit])];
    this.fc2 = [
      ld.load(`${p}.linear_fc2.weight`, [c.outHiddenSize, this.unit], { matmul: true, why: "vision out_hidden_size" }),
      ld.load(`${p}.linear_fc2.bias`, [c.outHiddenSize]),
    ];
  }

  forward(x: Tensor): Tensor {
    const b = this.b;
    const rows = (x.shape[0]! * x.shape[1]!) / this.unit;
    let y: Tensor;
    if (this.postShuffleNorm) {
      y = b.layerNorm(b.reshape(x, [rows, this.unit]), this.norm[0], this.norm[1], LN_EPS);
    } else {
      y = b.reshape(b.layerNorm(x, this.norm[0], this.norm[1], LN_EPS), [rows, this.unit]);
    }
    const h = b.linear(y, this.fc1[0], this.fc1[1]);
    b.release(y);
    const g = b.geluErf(h);
    b.release(h);
    const out = b.linear(g, this.fc2[0], this.fc2[1]);
    b.release(g);
    return out;
  }
}
