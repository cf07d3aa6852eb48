// Every tensor a Qwen3-VL checkpoint holds for a given config, with its shape and the
// checkpoint's own layout (MoE experts stored [E, in, out]). Used to generate checkpoints
// with real shapes (tests, benchmarks, the demo model) and to describe checkpoints.
import { isSparseLayer, type Qwen3VLConfig } from "./config.js";

export interface TensorSpec {
  name: string;
  shape: number[];
  /** How values are drawn for generated checkpoints. */
  kind: "matrix" | "norm" | "bias" | "embedding";
  /** Input width (for 1/sqrt(fan_in) scaling of generated matrices). */
  fanIn: number;
}

export function expectedTensors(c: Qwen3VLConfig, opts: { includeLmHead?: boolean } = {}): TensorSpec[] {
  const out: TensorSpec[] = [];
  const mat = (name: string, shape: number[], fanIn = shape[shape.length - 1]!) => out.push({ name, shape, kind: "matrix", fanIn });
  const norm = (name: string, n: number) => out.push({ name, shape: [n], kind: "norm", fanIn: 1 });
  const bias = (name: string, n: number) => out.push({ name, shape: [n], kind: "bias", fanIn: 1 });

  const v = c.vision, V = "model.visual";
  const H = v.hiddenSize, cube = [v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize];
  mat(`${V}.patch_embed.proj.weight`, [H, ...cube], cube.reduce((a, b) => a * b, 1));
  bias(`${V}.patch_embed.proj.bias`, H);
  out.push({ name: `${V}.pos_embed.weight`, shape: [v.numPositionEmbeddings, H], kind: "embedding", fanIn: H });
  for (let i = 0; i < v.depth; i++) {
    const p = `${V}.blocks.${i}`;
    norm(`${p}.norm1.weight`, H); bias(`${p}.norm1.bias`, H);
    norm(`${p}.norm2.weight`, H); bias(`${p}.norm2.bias`, H);
    mat(`${p}.attn.qkv.weight`, [3 * H, H]); bias(`${p}.attn.qkv.bias`, 3 * H);
    mat(`${p}.attn.proj.weight`, [H, H]); bias(`${p}.attn.proj.bias`, H);
    mat(`${p}.mlp.linear_fc1.weight`, [v.intermediateSize, H]); bias(`${p}.mlp.linear_fc1.bias`, v.intermediateSize);
    mat(`${p}.mlp.linear_fc2.weight`, [H, v.intermediateSize]); bias(`${p}.mlp.linear_fc2.bias`, H);
  }
  const unit = H * v.spatialMergeSize * v.spatialMergeSize;
  const merger = (p: string, normDim: number) => {
    norm(`${p}.norm.weight`, normDim); bias(`${p}.norm.bias`, normDim);
    mat(`${p}.linear_fc1.weight`, [unit, unit]); bias(`${p}.linear_fc1.bias`, unit);
    mat(`${p}.linear_fc2.weight`, [v.outHiddenSize, unit]); bias(`${p}.linear_fc2.bias`, v.outHiddenSize);
  };
  merger(`${V}.merger`, H);
  for (let k = 0; k < v.deepstackVisualIndexes.length; k++) merger(`${V}.deepstack_merger_list.${k}`, unit);

  const t = c.text, T = "model.language_model", D = t.hiddenSize, hd = t.headDim;
  out.push({ name: `${T}.embed_tokens.weight`, shape: [t.vocabSize, D], kind: "embedding", fanIn: D });
  for (let l = 0; l < t.numLayers; l++) {
    const p = `${T}.layers.${l}`;
    norm(`${p}.input_layernorm.weight`, D);
    norm(`${p}.post_attention_layernorm.weight`, D);
    mat(`${p}.self_attn.q_proj.weight`, [t.numHeads * hd, D]);
    mat(`${p}.self_attn.k_proj.weight`, [t.numKVHeads * hd, D]);
    mat(`${p}.self_attn.v_proj.weight`, [t.numKVHeads * hd, D]);
    mat(`${p}.self_attn.o_proj.weight`, [D, t.numHeads * hd]);
    norm(`${p}.self_attn.q_norm.weight`, hd);
    norm(`${p}.self_attn.k_norm.weight`, hd);
    if (isSparseLayer(t, l)) {
      const E = t.numExperts, Im = t.moeIntermediateSize;
      mat(`${p}.mlp.gate.weight`, [E, D]);
      mat(`${p}.mlp.experts.gate_up_proj`, [E, D, 2 * Im], D);
      mat(`${p}.mlp.experts.down_proj`, [E, Im, D], Im);
    } else {
      mat(`${p}.mlp.gate_proj.weight`, [t.intermediateSize, D]);
      mat(`${p}.mlp.up_proj.weight`, [t.intermediateSize, D]);
      mat(`${p}.mlp.down_proj.weight`, [D, t.intermediateSize]);
    }
  }
  norm(`${T}.norm.weight`, D);
  if (opts.includeLmHead ?? !c.tieWordEmbeddings) mat("lm_head.weight", [t.vocabSize, D]);
  return out;
}

export function parameterCount(specs: readonly TensorSpec[]): number {
  return specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}
