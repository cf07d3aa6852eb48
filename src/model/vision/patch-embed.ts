// Patch embedding: a Conv3d whose kernel equals its stride (temporal 2 x 16 x 16), which on
// pre-cut patch rows is exactly a linear layer over the flattened [C, T, P, P] cube.
import type { Backend, Tensor, Weight } from "../../tensor/backend.js";
import type { VisionConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";

export class VisionPatchEmbed {
  readonly inDim: number;
  private readonly w: Weight;
  private readonly b: Weight;

  constructor(private readonly backend: Backend, ld: WeightLoader, c: VisionConfig, prefix: string) {
    const cube = [c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize];
    this.inDim = cube.reduce((a, b) => a * b, 1);
    this.w = ld.load(`${prefix}.proj.weight`, [c.hiddenSize, ...cube], { matmul: true, viewAs: [c.hiddenSize, this.inDim], why: "vision hidden_size, in_channels, temporal_patch_size, patch_size" });
    this.b = ld.load(`${prefix}.proj.bias`, [c.hiddenSize]);
  }

  forward(pixelRows: Tensor): Tensor {
    return this.backend.linear(pixelRows, this.w, this.b);
  }
}
