// One SigLIP-2 encoder block: pre-LayerNorm attention with 2-D rotary, segmented per image
// and per video temporal patch (never across items), then a GELU-tanh MLP.
import type { Backend, Tensor, Weight } from "../../tensor/backend.js";
import type { VisionConfig } from "../config.js";
import type { WeightLoader } from "../weights.js";
import { addRowwise } from "../row-chunks.js";

const LN_EPS = 1e-6;

export class VisionBlock {
  private readonly norm1: [Weight, Weight];
  private readonly norm2: [Weight, Weight];
  private readonly q: [Weight, Weight];
  private readonly k: [Weight, Weight];
  private readonly v: [Weight, Weight];
  private readonly proj: [Weight, Weight];
  private readonly fc1: [Weight, Weight];
  private readonly fc2: [Weight, Weight];
  private readonly headDim: number;

  constructor(private readonly b: Backend, ld: WeightLoader, private readonly c: VisionConfig, p: string) {
    const H = c.hiddenSize, I = c.intermediateSize;
    const vec = (n: string, len: number) => ld.load(`${p}.${n}`, [len]);
    this.norm1 = [vec("norm1.weight", H), vec("norm1.bias", H)];
    this.norm2 = [vec("norm2.weight", H), vec("norm2.bias", H)];
    // The fused qkv rows are q, k, v; split at load so each is its own [H, H] linear.
    const qkvW = `${p}.attn.qkv.weight`, qkvB = `${p}.attn.qkv.bias`;
    const part = (i: number): [Weight, Weight] => [
      ld.loadRows(qkvW, [3 * H, H], i * H, (i + 1) * H, { matmul: true, why: "vision hidden_size" }),
      ld.loadRows(qkvB, [3 * H], i * H, (i + 1) * H),
    ];
    this.q = part(0); this.k = part(1); this.v = part(2);
    this.proj = [ld.load(`${p}.attn.proj.weight`, [H, H], { matmul: true }), vec("attn.proj.bias", H)];
    this.fc1 = [ld.load(`${p}.mlp.linear_fc1.weight`, [I, H], { matmul: true, why: "vision intermediate_size" }), vec("mlp.linear_fc1.bias", I)];
    this.fc2 = [ld.load(`${p}.mlp.linear_fc2.weight`, [H, I], { matmul: true, why: "vision intermediate_size" }), vec("mlp.linear_fc2.bias", H)];
    this.headDim = H / c.numHeads;
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor, segments: readonly number[]): Tensor {
    const b = this.b;
    const a = b.layerNorm(x, this.norm1[0], this.norm1[1], LN_EPS);
    const q0 = b.linear(a, this.q[0], this.q[1]), k0 = b.linear(a, this.k[0], this.k[1]), v = b.linear(a, this.v[0], this.v[1]);
    b.release(a);
    const q = b.rope(q0, cos, sin), k = b.rope(k0, cos, sin);
    b.release(q0, k0);
    const att = b.attention(q, k, v, { nHeads: this.c.numHeads, nKVHeads: this.c.numHeads, headDim: this.headDim, causal: false, segments });
    b.release(q, k, v);
    const o = b.linear(att, this.proj[0], this.proj[1]);
    b.release(att);
    const x1 = b.add(x, o);
    b.release(o);
    const m = b.layerNorm(x1, this.norm2[0], this.norm2[1], LN_EPS);
    addRowwise(b, x1, m, (r) => {
      const h = b.linear(r, this.fc1[0], this.fc1[1]);
      const g = b.geluTanh(h);
      b.release(h);
      const y = b.linear(g, this.fc2[0], this.fc2[1]);
      b.release(g);
      return y;
    });
    b.release(m);
    return x1;
  }
}
