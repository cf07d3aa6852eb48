// Interleaved MRoPE: every token has a (T, H, W) position; the 64 rotary frequency slots of a
// 128-dim head are assigned to axes in the repeating pattern T H W T H W ... (H where
// j % 3 == 1 and j < 3·sH, W where j % 3 == 2 and j < 3·sW, T elsewhere), then the usual
// NeoX half-split rotation is applied. For text tokens T = H = W and this is plain 1-D RoPE.
import type { Backend, Tensor } from "../../tensor/backend.js";
import type { YarnConfig } from "../config.js";

const f = Math.fround;

export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) inv[j] = f(1 / f(theta ** f((2 * j) / headDim)));
  return inv;
}

/**
 * YaRN ("NTK-by-parts") frequencies for long contexts: fast-rotating slots keep their
 * frequency, slow ones are divided by the factor, with a linear ramp between the slots
 * that complete beta_fast and beta_slow turns over the original context; cos and sin are
 * scaled by the attention factor (0.1·ln(factor) + 1 by default). As transformers computes
 * it, in float32.
 */
export function yarnInvFreq(headDim: number, theta: number, y: YarnConfig): { inv: Float32Array; attentionScaling: number } {
  const half = headDim / 2;
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const attentionScaling = y.attentionFactor ?? (y.mscale && y.mscaleAllDim ? mscale(y.factor, y.mscale) / mscale(y.factor, y.mscaleAllDim) : mscale(y.factor));
  const corrDim = (rot: number) => (headDim * Math.log(y.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = corrDim(y.betaFast), high = corrDim(y.betaSlow);
  if (y.truncate) { low = Math.floor(low); high = Math.ceil(high); }
  low = Math.max(low, 0);
  high = Math.min(high, headDim - 1);
  if (low === high) high += 0.001;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) {
    const pos = f(theta ** f((2 * j) / headDim));
    const extrap = f(1 / pos), interp = f(1 / f(y.factor * pos));
    const ramp = Math.min(1, Math.max(0, f(f(j - low) / f(high - low))));
    const keep = f(1 - ramp); // share of the original (extrapolated) frequency
    inv[j] = f(f(interp * f(1 - keep)) + f(extrap * keep));
  }
  return { inv, attentionScaling };
}

/** Which position axis (0 = T, 1 = H, 2 = W) drives each frequency slot. */
export function mropeAxes(headDim: number, section: readonly [number, number, number]): Uint8Array {
  const half = headDim / 2;
  const ax = new Uint8Array(half);
  for (let j = 0; j < half; j++) {
    if (j % 3 === 1 && j < 3 * section[1]) ax[j] = 1;
    else if (j % 3 === 2 && j < 3 * section[2]) ax[j] = 2;
    else ax[j] = 0;
  }
  return ax;
}

export class InterleavedMRoPE {
  readonly inv: Float32Array;
  readonly axes: Uint8Array;
  /** cos/sin multiplier (1 for default rope, YaRN's attention factor otherwise). */
  readonly attentionScaling: number;

  constructor(readonly headDim: number, theta: number, section: readonly [number, number, number], yarn: YarnConfig | null = null) {
    if (yarn) ({ inv: this.inv, attentionScaling: this.attentionScaling } = yarnInvFreq(headDim, theta, yarn));
    else { this.inv = ropeInvFreq(headDim, theta); this.attentionScaling = 1; }
    this.axes = mropeAxes(headDim, section);
  }

  /** positions: axis-major [3][S]. Returns cos/sin tables [S, headDim] as float32. */
  tables(positions: Int32Array | readonly number[], S: number): { cos: Float32Array; sin: Float32Array } {
    const d = this.headDim, half = d / 2;
    const cos = new Float32Array(S * d), sin = new Float32Array(S * d);
    for (let s = 0; s < S; s++) {
      const o = s * d;
      for (let j = 0; j < half; j++) {
        const p = positions[this.axes[j]! * S + s]!;
        const a = f(p * this.inv[j]!);
        const c = f(f(Math.cos(a)) * this.attentionScaling), sn = f(f(Math.sin(a)) * this.attentionScaling);
        cos[o + j] = c; cos[o + j + half] = c;
        sin[o + j] = sn; sin[o + j + half] = sn;
      }
    }
    return { cos, sin };
  }

  upload(b: Backend, positions: Int32Array | readonly number[], S: number): { cos: Tensor; sin: Tensor } {
    const t = this.tables(positions, S);
    return { cos: b.fromArray(t.cos, [S, this.headDim]), sin: b.fromArray(t.sin, [S, this.headDim]) };
  }
}
