// The backend contract: the only way model code computes anything.
//
// Model code (src/model) builds Qwen3-VL from these ops and never touches a backend's
// storage. A backend owns all numeric storage: activations (`Tensor`, always float32
// values) and weights (`Weight`, in whatever format the backend chose: f32, bf16, or a
// block-quantised layout). This lets a WebAssembly backend keep everything in its own
// memories (several of them for models above 4 GiB), run ops on worker threads, and
// quantise weights at load time, without any change to the model code.
//
// Conventions:
// - Tensors are row-major. Most ops view a tensor as a matrix [rows, cols] where cols is
//   the last dimension.
// - Linear weights are stored [out, in] (nn.Linear layout): linear(x, W) = x · Wᵀ (+ b).
//   Loaders transpose anything stored otherwise (the MoE expert tensors) before upload.
// - Ops return new tensors unless named *InPlace. `release` tells the backend a tensor
//   is dead (the reference backend leaves it to the GC; others reuse the memory).

import type { SafeDType } from "../io/dtypes.js";

export interface Tensor {
  readonly shape: readonly number[];
}

export type WeightFormat = "f32" | "bf16" | "q8" | "q4";

export interface Weight {
  readonly shape: readonly number[];
  readonly format: WeightFormat;
}

/** Where a weight's bytes come from: a checkpoint tensor, possibly re-laid-out, or generated. */
export interface WeightSource {
  readonly name: string;
  /** Element type of the bytes `readInto` writes. */
  readonly dtype: SafeDType;
  /** Logical shape after any re-layout (what the weight will have). */
  readonly shape: readonly number[];
  /** Writes the tensor's bytes (in `shape` order) into dst, which has exactly byteLength bytes. */
  readInto(dst: Uint8Array): void;
  /**
   * Writes dst.byteLength bytes starting at byteOffset (in `shape` order): lets a backend
   * convert or quantise a large tensor in chunks without holding its source whole.
   */
  readRange(byteOffset: number, dst: Uint8Array): void;
}

export interface WeightOptions {
  /** Requested storage; the backend may refuse a format it cannot run (then it throws). */
  format?: WeightFormat;
}

/** Per-layer key/value storage for autoregressive decoding. */
export interface KVCache {
  readonly layers: number;
  /** nKV * headDim */
  readonly kvDim: number;
}

export interface AttentionOptions {
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  /** Causal mask: query i (absolute position qOffset + i) sees keys 0..qOffset+i. */
  causal: boolean;
  qOffset?: number;
  /**
   * Non-causal block-diagonal attention: cumulative segment boundaries over the rows
   * (e.g. [0, 256, 512]); a row attends only inside its segment. Vision tower only.
   */
  segments?: readonly number[];
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
}

export interface MoEWeights {
  /** Router [E, D]. */
  router: Weight;
  /** Fused gate and up projections [E, 2·Im, D]; rows 0..Im-1 of each expert are the gate. */
  gateUp: Weight;
  /** Down projections [E, D, Im]. */
  down: Weight;
  topK: number;
  /** Renormalise the top-k probabilities to sum to 1. */
  normTopK: boolean;
}

export interface Backend {
  readonly name: string;

  // ---- storage
  loadWeight(src: WeightSource, opts?: WeightOptions): Weight;
  fromArray(data: Float32Array, shape: readonly number[]): Tensor;
  /** Copies the values out. */
  toArray(t: Tensor): Float32Array;
  reshape(t: Tensor, shape: readonly number[]): Tensor;
  /** Rows [start, end) of a matrix view (a view or a copy, backend's choice). */
  sliceRows(t: Tensor, start: number, end: number): Tensor;
  /** Rows of a table weight (embedding lookup). */
  embed(table: Weight, ids: Int32Array): Tensor;
  release(...ts: Tensor[]): void;
  /** Waits for outstanding work (no-op for synchronous backends). */
  sync?(): Promise<void>;
  dispose?(): void;

  // ---- math
  linear(x: Tensor, w: Weight, bias?: Weight | null): Tensor;
  /** Normalises each consecutive group of w.shape[0] values (so per-head norms are a plain call). */
  rmsNorm(x: Tensor, w: Weight, eps: number): Tensor;
  layerNorm(x: Tensor, w: Weight, b: Weight, eps: number): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  addInPlace(a: Tensor, b: Tensor): void;
  geluTanh(x: Tensor): Tensor;
  geluErf(x: Tensor): Tensor;
  /** silu(gate) ⊙ up */
  siluMul(gate: Tensor, up: Tensor): Tensor;
  /**
   * NeoX (half-split) rotary embedding. x: [S, heads·d], cos/sin: [S, d]; each head of
   * row s is rotated with row s of the tables.
   */
  rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor;
  /** q: [S, nHeads·d], k/v: [T, nKVHeads·d] → [S, nHeads·d]. GQA by head grouping. */
  attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor;
  /** Σ_j weights[i,j] · table[idx[i,j]] over j < perRow: a [n, cols] tensor (bilinear sampling). */
  gatherWeighted(table: Weight, idx: Int32Array, weights: Float32Array, perRow: number): Tensor;
  /** dst[rows[i]] = src[i] */
  scatterRows(dst: Tensor, rows: Int32Array, src: Tensor): void;
  /** dst[rows[i]] += src[i] */
  scatterAddRows(dst: Tensor, rows: Int32Array, src: Tensor): void;
  /** Sparse MoE feed-forward: softmax router, top-k, (renormalised) weighted sum of SwiGLU experts. */
  moe(x: Tensor, w: MoEWeights): Tensor;
  /** Index of the maximum of each row (first on ties). */
  argmaxRows(x: Tensor): Int32Array;

  // ---- KV cache
  createKVCache(layers: number, kvDim: number): KVCache;
  /** Writes k/v rows (each [S, kvDim]) at positions [start, start+S). */
  kvWrite(cache: KVCache, layer: number, start: number, k: Tensor, v: Tensor): void;
  /** The first `length` cached rows of a layer. */
  kvRead(cache: KVCache, layer: number, length: number): { k: Tensor; v: Tensor };
  /** Drops everything after `length` (rewinding a conversation). */
  kvTruncate(cache: KVCache, length: number): void;
  /**
   * Frees a cache's memory now (backends whose caches live outside the JS heap); the cache must not
   * be used afterwards. Optional: without it a dropped cache is left to the garbage collector.
   */
  releaseKVCache?(cache: KVCache): void;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function lastDim(shape: readonly number[]): number {
  return shape[shape.length - 1] ?? 1;
}
