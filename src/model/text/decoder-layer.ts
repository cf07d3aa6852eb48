// A Qwen3 decoder layer: pre-RMSNorm GQA attention with per-head q/k RMSNorm applied before
// interleaved MRoPE, then a SwiGLU MLP (dense) or the sparse MoE block.
import type { Backend, KVCache, MoEWeights, Tensor, Weight } from "../../tensor/backend.js";
import { isSparseLayer, type TextConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";
import { addRowwise } from "../row-chunks.js";

export interface LayerContext {
  cache: KVCache;
  /** Rows already in the cache before this chunk. */
  start: number;
  cos: Tensor;
  sin: Tensor;
}

class DenseMLP {
  private readonly gate: Weight;
  private readonly up: Weight;
  private readonly down: Weight;
  constructor(private readonly b: Backend, ld: WeightLoader, c: TextConfig, p: string) {
    const D = c.hiddenSize, I = c.intermediateSize;
    const why = "text hidden_size, intermediate_size";
    this.gate = ld.load(`${p}.gate_proj.weight`, [I, D], { matmul: true, why });
    this.up = ld.load(`${p}.up_proj.weight`, [I, D], { matmul: true, why });
    this.down = ld.load(`${p}.down_proj.weight`, [D, I], { matmul: true, why });
  }
  forward(x: Tensor): Tensor {
    const b = this.b;
    const g = b.linear(x, this.gate), u = b.linear(x, this.up);
    const a = b.siluMul(g, u);
    b.release(g, u);
    const y = b.linear(a, this.down);
    b.release(a);
    return y;
  }
}

/** Sparse MoE: softmax router over all experts, top-k, renormalised, fused SwiGLU experts. */
class SparseMoE {
  private readonly w: MoEWeights;
  constructor(private readonly b: Backend, ld: WeightLoader, c: TextConfig, p: string) {
    const D = c.hiddenSize, E = c.numExperts, Im = c.moeIntermediateSize;
    const why = "text hidden_size, num_experts, moe_intermediate_size";
    this.w = {
      router: ld.load(`${p}.gate.weight`, [E, D], { matmul: true, why }),
      // Stored [E, D, 2·Im] and [E, Im, D], used as x @ W: re-laid-out to [out, in].
      gateUp: ld.loadTransposedExperts(`${p}.experts.gate_up_proj`, [E, D, 2 * Im], why),
      down: ld.loadTransposedExperts(`${p}.experts.down_proj`, [E, Im, D], why),
      topK: c.numExpertsPerTok,
      normTopK: c.normTopKProb,
    };
  }
  forward(x: Tensor): Tensor {
    return this.b.moe(x, this.w);
  }
}

export class DecoderLayer {
  private readonly inNorm: Weight;
  private readonly postNorm: Weight;
  private readonly q: Weight;
  private readonly k: Weight;
  private readonly v: Weight;
  private readonly o: Weight;
  private readonly qNorm: Weight;
  private readonly kNorm: Weight;
  private readonly mlp: DenseMLP | SparseMoE;

  constructor(private readonly b: Backend, ld: WeightLoader, private readonly c: TextConfig, readonly index: number, p: string) {
    const D = c.hiddenSize, hd = c.headDim;
    const why = "text hidden_size, num_attention_heads, num_key_value_heads, head_dim";
    this.inNorm = ld.load(`${p}.input_layernorm.weight`, [D]);
    this.postNorm = ld.load(`${p}.post_attention_layernorm.weight`, [D]);
    this.q = ld.load(`${p}.self_attn.q_proj.weight`, [c.numHeads * hd, D], { matmul: true, why });
    this.k = ld.load(`${p}.self_attn.k_proj.weight`, [c.numKVHeads * hd, D], { matmul: true, why });
    this.v = ld.load(`${p}.self_attn.v_proj.weight`, [c.numKVHeads * hd, D], { matmul: true, why });
    this.o = ld.load(`${p}.self_attn.o_proj.weight`, [D, c.numHeads * hd], { matmul: true, why });
    this.qNorm = ld.load(`${p}.self_attn.q_norm.weight`, [hd], { why: "head_dim" });
    this.kNorm = ld.load(`${p}.self_attn.k_norm.weight`, [hd], { why: "head_dim" });
    this.mlp = isSparseLayer(c, index) ? new SparseMoE(b, ld, c, `${p}.mlp`) : new DenseMLP(b, ld, c, `${p}.mlp`);
  }

  get sparse(): boolean {
    return this.mlp instanceof SparseMoE;
  }

  /** h: [S, D] for positions [start, start + S). Returns the new hidden state. */
  forward(h: Tensor, ctx: LayerContext): Tensor {
    const b = this.b, c = this.c;
    const eps = c.rmsNormEps;
    const S = h.shape[0]!;
    const a = b.rmsNorm(h, this.inNorm, eps);
    const q0 = b.linear(a, this.q), k0 = b.linear(a, this.k), v = b.linear(a, this.v);
    b.release(a);
    const q1 = b.rmsNorm(q0, this.qNorm, eps), k1 = b.rmsNorm(k0, this.kNorm, eps);
    b.release(q0, k0);
    const q = b.rope(q1, ctx.cos, ctx.sin), k = b.rope(k1, ctx.cos, ctx.sin);
    b.release(q1, k1);
    b.kvWrite(ctx.cache, this.index, ctx.start, k, v);
    b.release(k, v);
    const kv = b.kvRead(ctx.cache, this.index, ctx.start + S);
    const att = b.attention(q, kv.k, kv.v, {
      nHeads: c.numHeads, nKVHeads: c.numKVHeads, headDim: c.headDim, causal: true, qOffset: ctx.start,
    });
    b.release(q);
    const o = b.linear(att, this.o);
    b.release(att);
    const h1 = b.add(h, o);
    b.release(o);
    const m = b.rmsNorm(h1, this.postNorm, eps);
    // (the MoE op groups tokens per expert itself; the dense MLP runs over row chunks of long prompts)
    if (this.mlp instanceof DenseMLP) addRowwise(b, h1, m, (r) => this.mlp.forward(r));
    else {
      const y = this.mlp.forward(m);
      b.addInPlace(h1, y);
      b.release(y);
    }
    b.release(m);
    return h1;
  }
}
