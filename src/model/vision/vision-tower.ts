// The vision encoder: patch embedding + interpolated learned positions, `depth` blocks with
// 2-D rotary, the main 2x2 merger, and the DeepStack mergers that tap intermediate blocks.
import { QwenError } from "../../errors.js";
import type { Backend, Tensor } from "../../tensor/backend.js";
import type { VisionConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";
import type { Grid } from "./merge-window.js";
import { VisionPatchEmbed } from "./patch-embed.js";
import { VisionPatchMerger } from "./patch-merger.js";
import { VisionPositionEmbedding } from "./position-embedding.js";
import { VisionBlock } from "./vision-block.js";
import { visionRotary } from "./vision-rotary.js";

/** Receives named intermediate tensors (tests compare them with the reference). */
export type Probe = (name: string, t: Tensor) => void;

export interface VisionOutput {
  /** [Σ t·h·w/4, D]: one row per LLM visual token, in placeholder order. */
  embeds: Tensor;
  /** One [Σ t·h·w/4, D] tensor per DeepStack level. */
  deepstack: Tensor[];
}

export class VisionTower {
  private readonly patchEmbed: VisionPatchEmbed;
  private readonly posEmbed: VisionPositionEmbedding;
  private readonly blocks: VisionBlock[] = [];
  private readonly merger: VisionPatchMerger;
  private readonly deepstackMergers: VisionPatchMerger[] = [];

  constructor(private readonly b: Backend, ld: WeightLoader, readonly c: VisionConfig, prefix = "model.visual") {
    this.patchEmbed = new VisionPatchEmbed(b, ld, c, `${prefix}.patch_embed`);
    this.posEmbed = new VisionPositionEmbedding(b, ld, c, `${prefix}.pos_embed.weight`);
    for (let i = 0; i < c.depth; i++) this.blocks.push(new VisionBlock(b, ld, c, `${prefix}.blocks.${i}`));
    this.merger = new VisionPatchMerger(b, ld, c, `${prefix}.merger`, false);
    for (let k = 0; k < c.deepstackVisualIndexes.length; k++) {
      this.deepstackMergers.push(new VisionPatchMerger(b, ld, c, `${prefix}.deepstack_merger_list.${k}`, true));
    }
  }

  /** Validates grids against the pixel rows before any compute. */
  checkInput(pixelRows: number, rowWidth: number, grids: readonly Grid[]): void {
    const c = this.c;
    if (rowWidth !== this.patchEmbed.inDim) {
      throw new QwenError(`pixel values have ${rowWidth} columns per patch but this model needs ${this.patchEmbed.inDim} (channels x temporal x patch x patch)`);
    }
    let n = 0;
    for (const g of grids) {
      const [t, h, w] = g;
      if (![t, h, w].every((d) => Number.isInteger(d) && d > 0) || h % c.spatialMergeSize || w % c.spatialMergeSize) {
        throw new QwenError(`grid [${g.join(", ")}] is invalid: t, h, w must be positive and h, w multiples of spatial_merge_size ${c.spatialMergeSize}`);
      }
      n += t * h * w;
    }
    if (n !== pixelRows) throw new QwenError(`the grids describe ${n} patches but the pixel values have ${pixelRows} rows`);
  }

  forward(pixels: Float32Array, grids: readonly Grid[], probe?: Probe): VisionOutput {
    const b = this.b, c = this.c;
    const width = this.patchEmbed.inDim;
    this.checkInput(pixels.length / width, width, grids);
    const rows = pixels.length / width;
    const px = b.fromArray(pixels, [rows, width]);
    const pe = this.patchEmbed.forward(px);
    b.release(px);
    probe?.("patch_embed", pe);
    const pos = this.posEmbed.forward(grids);
    probe?.("pos_embed_interpolated", pos);
    let x = b.add(pe, pos);
    b.release(pe, pos);
    const { cos, sin } = visionRotary(b, grids, c.hiddenSize / c.numHeads, c.spatialMergeSize);
    const segments = [0];
    for (const [t, h, w] of grids) for (let i = 0; i < t; i++) segments.push(segments[segments.length - 1]! + h * w);
    const deepstack: Tensor[] = [];
    for (let i = 0; i < this.blocks.length; i++) {
      const nx = this.blocks[i]!.forward(x, cos, sin, segments);
      b.release(x);
      x = nx;
      probe?.(`block_output.${i}`, x);
      const k = c.deepstackVisualIndexes.indexOf(i);
      if (k >= 0) {
        const ds = this.deepstackMergers[k]!.forward(x);
        probe?.(`deepstack_merger_output.${k}`, ds);
        deepstack.push(ds);
      }
    }
    b.release(cos, sin);
    const embeds = this.merger.forward(x);
    b.release(x);
    probe?.("merger_output", embeds);
    return { embeds, deepstack };
  }
}
