// The Qwen3 language model: token embeddings, decoder layers with DeepStack injection after
// the first layers, the final RMSNorm and the (tied or untied) output head.
import { QwenError } from "../../errors.js";
import type { Backend, KVCache, Tensor, Weight } from "../../tensor/backend.js";
import type { TextConfig } from "../config.js";
import type { Probe } from "../vision/vision-tower.js";
import type { WeightLoader } from "../weights.js";
import { DecoderLayer } from "./decoder-layer.js";
import { injectDeepStack, type DeepStackSource } from "./deepstack.js";
import { InterleavedMRoPE } from "./interleaved-mrope.js";

export class TextModel {
  readonly embedTokens: Weight;
  readonly layers: DecoderLayer[] = [];
  readonly norm: Weight;
  readonly lmHead: Weight;
  readonly rope: InterleavedMRoPE;
  readonly tied: boolean;

  constructor(private readonly b: Backend, ld: WeightLoader, readonly c: TextConfig, tie: boolean, prefix = "model.language_model") {
    const D = c.hiddenSize;
    this.embedTokens = ld.load(`${prefix}.embed_tokens.weight`, [c.vocabSize, D], { matmul: true, why: "text vocab_size, hidden_size" });
    for (let l = 0; l < c.numLayers; l++) this.layers.push(new DecoderLayer(b, ld, c, l, `${prefix}.layers.${l}`));
    this.norm = ld.load(`${prefix}.norm.weight`, [D]);
    // Rule that is always right: a checkpoint that has lm_head.weight uses it.
    this.tied = !ld.has("lm_head.weight");
    if (!this.tied) this.lmHead = ld.load("lm_head.weight", [c.vocabSize, D], { matmul: true, why: "text vocab_size, hidden_size" });
    else if (tie) this.lmHead = this.embedTokens;
    else {
      throw new QwenError(`${ld.store.description}: tie_word_embeddings is false but the checkpoint has no lm_head.weight (expected shape [${c.vocabSize}, ${D}])`);
    }
    this.rope = new InterleavedMRoPE(c.headDim, c.ropeTheta, c.mropeSection, c.yarn);
  }

  embed(ids: Int32Array): Tensor {
    return this.b.embed(this.embedTokens, ids);
  }

  /** Runs all layers over a chunk at cache rows [start, start + S). Returns the pre-norm hidden state. */
  forward(
    h0: Tensor, positions: Int32Array, cache: KVCache, start: number, deepstack: readonly DeepStackSource[], probe?: Probe,
    onLayer?: () => void,
  ): Tensor {
    const b = this.b;
    const S = h0.shape[0]!;
    const { cos, sin } = this.rope.upload(b, positions, S);
    probe?.("rope_cos", cos);
    probe?.("rope_sin", sin);
    let h = h0;
    for (const layer of this.layers) {
      probe?.(`layer_input.${layer.index}`, h);
      const nh = layer.forward(h, { cache, start, cos, sin });
      if (h !== h0) b.release(h);
      h = nh;
      probe?.(`layer_output_before_deepstack.${layer.index}`, h);
      injectDeepStack(b, h, layer.index, deepstack);
      onLayer?.();
    }
    b.release(cos, sin);
    probe?.("final_norm_input", h);
    return h;
  }

  /** Final norm + head on the given hidden rows → [rows, vocab] logits. */
  logits(h: Tensor, probe?: Probe): Tensor {
    const n = this.b.rmsNorm(h, this.norm, this.c.rmsNormEps);
    probe?.("final_hidden_state", n);
    const out = this.b.linear(n, this.lmHead);
    this.b.release(n);
    return out;
  }
}
