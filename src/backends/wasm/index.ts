// WasmBackend: the engine's backend contract (src/tensor/backend.ts) on the WebAssembly kernels.
//
// - Weights live only in wasm memory (arenas of shared memories, several for models above 4 GiB):
//   `loadWeight` has the checkpoint reader write straight into the arena (f32/bf16 as stored), or reads
//   8 MiB row chunks (`readRange`) into arena scratch above the allocation and converts / quantises each
//   chunk from there (q8, q4, f32<->bf16), so at most one chunk of a source is resident. No copy
//   of a weight is kept in the JS heap. Arenas are opened up front by `create({ weightBytes })`, so the
//   contract's synchronous `loadWeight` never has to open one (opening one messages the workers).
// - Activations (`Tensor`) are Float32Arrays in the JS heap; each kernel call copies its inputs into the
//   arena's scratch and the result out (~3 us + memcpy per call, see DESIGN.md).
// - The KV cache lives in wasm memory (token-major [capacity, kvDim] per layer for keys and for values,
//   grown by doubling); `kvRead` returns views and `attention` runs on the resident rows.
// - MoE: the router runs on the backend, top-k in TS on the small [S, E] logits, tokens grouped per
//   chosen expert, and only the chosen experts' rows of the stacked weights are touched.
import { QwenError } from "../../errors.js";
import { routeTopK } from "../../tensor/moe-routing.js";
import { DTYPE_BYTES, toFloat32 } from "../../io/dtypes.js";
import type {
  AttentionOptions, Backend, KVCache, MoEWeights, Tensor, Weight, WeightFormat, WeightOptions, WeightSource,
} from "../../tensor/backend.js";
import { lastDim, numel } from "../../tensor/backend.js";
import { ReferenceBackend } from "../reference/index.js";
import { WasmKernels, type WasmBuild, type WeightHandle } from "./kernels.js";
import { hostCores } from "./platform.js";

export interface WasmBackendOptions {
  /** Total threads including the main thread (default: available parallelism, at most 8). */
  threads?: number;
  /** Kernel build: 'auto' (relaxed SIMD when the runtime accepts it), 'simd' or 'relaxed'. */
  build?: "auto" | WasmBuild;
  /**
   * Bytes of weights (and KV cache) the model will need; enough arenas are opened up front for them
   * (see `WasmBackend.estimateWeightBytes`). Default: one arena (3.5 GiB).
   */
  weightBytes?: number;
  /** Bytes per arena before the next one is used (default 3.5 GiB). */
  arenaBytes?: number;
  /** Directory with the .wasm builds (default dist/wasm). */
  wasmDir?: string | URL;
  /**
   * Which matrices a q8/q4 request quantises. 'mixed' (default, as llama.cpp's Q8_0/Q4_0 files do):
   * MoE routers (`*.mlp.gate.weight`) keep the checkpoint's bf16/f32, and with q4 the token embedding /
   * output head (`embed_tokens`, `lm_head`) are stored q8. 'all': every matrix in the requested format.
   */
  quantPolicy?: "mixed" | "all";
}

/** The format a weight is stored in under a quantisation policy. */
export function storedFormat(name: string, requested: WeightFormat, sourceDtype: string, policy: "mixed" | "all"): WeightFormat {
  if (policy === "all" || (requested !== "q8" && requested !== "q4")) return requested;
  if (/\.mlp\.gate\.weight$/.test(name)) return sourceDtype === "BF16" ? "bf16" : "f32";
  if (requested === "q4" && /(embed_tokens\.weight|^lm_head\.weight)$/.test(name)) return "q8";
  return requested;
}

/** An activation buffer from the backend's pool, shared by a tensor and its views (reshape, sliceRows). */
class PoolBuf {
  refs = 0;
  constructor(readonly arr: Float32Array) {}
}

class WTensor implements Tensor {
  released = false;
  constructor(readonly shape: readonly number[], readonly data: Float32Array, readonly buf: PoolBuf | null) {
    if (buf) buf.refs++;
  }
}

/**
 * Released activation buffers kept for reuse, by length (a model asks for the same few sizes again and
 * again: every layer's q, k, v, MLP rows...). Without it every op allocates a fresh Float32Array and the
 * dead ones pile up until V8 collects them: hundreds of MiB of resident garbage during a vision encode.
 */
class ActivationPool {
  /** Free buffers by length, with the take-counter value of the last take or give of that length. */
  private readonly free = new Map<number, { arrs: Float32Array[]; used: number }>();
  private bytes = 0;
  private ticks = 0;
  /**
   * @param maxBytes most bytes held free at once
   * @param maxAge a length not asked for in this many takes is dropped (a vision encode's sizes once
   *   decoding has started), so the pool does not pin memory of a phase that is over
   */
  constructor(private readonly maxBytes: number, private readonly maxAge: number, private readonly onDrop: (a: Float32Array) => void) {}

  take(n: number): PoolBuf {
    this.ticks++;
    const e = this.free.get(n);
    const a = e?.arrs.pop();
    if (e) e.used = this.ticks;
    if (a) {
      this.bytes -= a.byteLength;
      return new PoolBuf(a);
    }
    if ((this.ticks & 255) === 0) this.evictOld();
    return new PoolBuf(new Float32Array(n));
  }

  give(a: Float32Array): void {
    this.onDrop(a);
    if (a.byteLength === 0 || this.bytes + a.byteLength > this.maxBytes) return; // left to the GC
    let e = this.free.get(a.length);
    if (!e) this.free.set(a.length, (e = { arrs: [], used: this.ticks }));
    e.arrs.push(a);
    this.bytes += a.byteLength;
  }

  private evictOld(): void {
    for (const [n, e] of this.free) {
      if (this.ticks - e.used <= this.maxAge) continue;
      for (const a of e.arrs) this.bytes -= a.byteLength;
      this.free.delete(n);
    }
  }

  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }

  get pooledBytes(): number {
    return this.bytes;
  }
}

class KVLayer {
  arena = 0;
  ptr = 0;
  cap = 0;
  /** Rows written so far (the prefix kept when the region grows). */
  filled = 0;
}

class WKV implements KVCache {
  readonly perLayer: KVLayer[] = [];
  constructor(readonly layers: number, readonly kvDim: number) {
    for (let l = 0; l < layers; l++) this.perLayer.push(new KVLayer());
  }
}

/** First `length` keys or values of one cache layer, read in place by `attention`. */
class KVView implements Tensor {
  readonly shape: readonly number[];
  constructor(readonly cache: WKV, readonly layer: number, readonly length: number, readonly which: "k" | "v") {
    this.shape = [length, cache.kvDim];
  }
}

class WWeight implements Weight {
  constructor(readonly shape: readonly number[], readonly format: WeightFormat, readonly h: WeightHandle) {}
}

const W = (w: Weight): WWeight => {
  if (!(w instanceof WWeight)) throw new Error("wasm backend: weight was not loaded by this backend");
  return w;
};

function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`wasm backend: ${msg}`);
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Activation pool bounds: at most this many free bytes, and sizes unused for this many ops are dropped. */
const POOL_MAX_BYTES = 256 << 20;
const POOL_MAX_AGE = 4096;

/** Source bytes converted / quantised per chunk by `loadWeight`. */
const LOAD_CHUNK_BYTES = 8 << 20;

/** Bytes a [N, K] matrix takes in a format (q8/q4: padded codes + one f32 scale per 32 values). */
export function formatBytes(format: WeightFormat, N: number, K: number): number {
  const Kp = align(K, 32);
  switch (format) {
    case "f32": return align(N * K * 4, 64);
    case "bf16": return align(N * K * 2, 64);
    case "q8": return align(align(N * Kp, 64) + N * (Kp / 32) * 4, 64);
    case "q4": return align(align((N * Kp) / 2, 64) + N * (Kp / 32) * 4, 64);
  }
}

function f32ToBf16Bits(f: Float32Array, out: Uint16Array): void {
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) out[i] = (x >>> 16) | 0x40; // NaN stays NaN
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; // round to nearest even
  }
}

export class WasmBackend implements Backend {
  readonly name = "wasm";
  private readonly ref = new ReferenceBackend();
  /** Half-width rope tables per cos/sin tensor (null: the halves differ, rope runs in TS). */
  private readonly ropeHalf = new WeakMap<Float32Array, Float32Array | null>();
  /** Released activation buffers for reuse (a reused array must not hit a stale half-table entry). */
  private readonly pool = new ActivationPool(POOL_MAX_BYTES, POOL_MAX_AGE, (a) => this.ropeHalf.delete(a));
  private weightBytesLoaded = 0;

  private constructor(readonly kernels: WasmKernels, readonly reservedBytes: number, readonly quantPolicy: "mixed" | "all") {}

  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = Math.max(1, Math.floor(opts.threads ?? Math.min(8, await hostCores())));
    const kernels = await WasmKernels.create({
      threads, build: opts.build ?? "auto", ...(opts.arenaBytes ? { arenaBytes: opts.arenaBytes } : {}),
      ...(opts.wasmDir ? { wasmDir: opts.wasmDir } : {}),
    });
    const reserve = opts.weightBytes ?? 0;
    await kernels.reserve(reserve);
    return new WasmBackend(kernels, reserve, opts.quantPolicy ?? "mixed");
  }

  /**
   * Bytes a checkpoint's weights take on this backend with `matmulFormat` for matrices (vectors and
   * the vision position table stay f32), plus a margin for the KV cache.
   */
  static estimateWeightBytes(tensors: Iterable<{ name: string; shape: readonly number[] }>, matmulFormat: WeightFormat,
    kvMarginBytes = 512 << 20, policy: "mixed" | "all" = "mixed"): number {
    let total = 0;
    for (const t of tensors) {
      const K = lastDim(t.shape), N = numel(t.shape) / Math.max(1, K);
      const vector = t.shape.length === 1 || t.name.endsWith("pos_embed.weight");
      total += formatBytes(vector ? "f32" : storedFormat(t.name, matmulFormat, "BF16", policy), N, K);
    }
    return total + kvMarginBytes;
  }

  get threads(): number {
    return this.kernels.threads;
  }
  get build(): WasmBuild {
    return this.kernels.build;
  }
  /** Bytes of released activation buffers held for reuse. */
  get pooledBytes(): number {
    return this.pool.pooledBytes;
  }
  /** Bytes of weights held in wasm memory. */
  get weightBytes(): number {
    return this.weightBytesLoaded;
  }

  // ------------------------------------------------------------------------------------------
  // storage

  private allocOrThrow(bytes: number, what: string): { arena: number; ptr: number } {
    const r = this.kernels.allocSync(bytes);
    if (!r) {
      throw new QwenError(
        `wasm backend: no room for ${what} (${bytes} bytes): ${this.kernels.arenaCount} arena(s) of ${(this.kernels.arenaBudget / 2 ** 30).toFixed(2)} GiB are open ` +
        `(${(this.weightBytesLoaded / 2 ** 30).toFixed(2)} GiB of weights loaded); create the backend with a larger weightBytes ` +
        `(WasmBackend.estimateWeightBytes gives the size a checkpoint needs)`,
      );
    }
    return r;
  }

  loadWeight(src: WeightSource, opts: WeightOptions = {}): Weight {
    const shape = src.shape;
    const n = numel(shape);
    const K = lastDim(shape), N = K === 0 ? 0 : n / K;
    const requested: WeightFormat = opts.format ?? (src.dtype === "BF16" ? "bf16" : "f32");
    if (!["f32", "bf16", "q8", "q4"].includes(requested)) throw new QwenError(`${src.name}: the wasm backend does not run ${requested} weights`);
    const want = storedFormat(src.name, requested, src.dtype, this.quantPolicy);
    if (!["f32", "bf16", "q8", "q4"].includes(want)) throw new QwenError(`${src.name}: the wasm backend does not run ${want} weights`);
    if (!["F32", "BF16", "F16", "F64"].includes(src.dtype)) throw new QwenError(`${src.name}: weights must be F32, BF16, F16 or F64 (got ${src.dtype})`);
    const srcBytes = n * DTYPE_BYTES[src.dtype];
    const bytes = formatBytes(want, N, K);
    const { arena, ptr } = this.allocOrThrow(bytes, src.name);
    const k = this.kernels;
    let scalesPtr = 0;
    // Same element type: the reader writes straight into wasm memory.
    if ((want === "f32" && src.dtype === "F32") || (want === "bf16" && src.dtype === "BF16")) {
      src.readInto(new Uint8Array(k.buffer(arena), ptr, srcBytes));
    } else {
      // Converted / quantised in row chunks of ~LOAD_CHUNK_BYTES of source: each chunk is read with
      // `readRange` into one staging area in arena scratch right above the new allocation (F16/F64 are
      // widened to f32 in JS first), so no more than one chunk of the source is ever resident.
      const direct = src.dtype === "F32" || src.dtype === "BF16";
      // Element type the converters read: f32 or bf16.
      const inType: "f32" | "bf16" = src.dtype === "BF16" ? "bf16" : "f32";
      const ies = inType === "f32" ? 4 : 2;
      const ses = DTYPE_BYTES[src.dtype];
      const Kp = align(K, 32), nb = Kp / 32;
      const rowQ = want === "q8" ? Kp : Kp / 2;
      if (want === "q8" || want === "q4") scalesPtr = ptr + align(want === "q8" ? N * Kp : (N * Kp) / 2, 64);
      const rowsPerChunk = Math.max(1, Math.min(N, Math.floor(LOAD_CHUNK_BYTES / Math.max(1, K * ses))));
      const at = k.scratchSync(arena, rowsPerChunk * K * ies);
      for (let r0 = 0; r0 < N; r0 += rowsPerChunk) {
        const rows = Math.min(rowsPerChunk, N - r0);
        if (direct) src.readRange(r0 * K * ses, new Uint8Array(k.buffer(arena), at, rows * K * ses));
        else {
          const raw = new Uint8Array(rows * K * ses);
          src.readRange(r0 * K * ses, raw);
          const f = toFloat32(src.dtype, raw, src.name);
          new Float32Array(k.buffer(arena), at, rows * K).set(f);
        }
        const buf = k.buffer(arena);
        if (want === "q8" || want === "q4") {
          k.quantizeRows(arena, want, at, inType, rows, K, ptr + r0 * rowQ, scalesPtr + r0 * nb * 4);
        } else if (want === "f32") {
          const dst = new Float32Array(buf, ptr + r0 * K * 4, rows * K);
          if (inType === "f32") dst.set(new Float32Array(buf, at, rows * K));
          else {
            const s16 = new Uint16Array(buf, at, rows * K), d32 = new Uint32Array(buf, ptr + r0 * K * 4, rows * K);
            for (let i = 0; i < s16.length; i++) d32[i] = s16[i]! << 16;
          }
        } else {
          // bf16 from f32 values
          f32ToBf16Bits(new Float32Array(buf, at, rows * K), new Uint16Array(buf, ptr + r0 * K * 2, rows * K));
        }
      }
    }
    const h: WeightHandle = { arena, format: want, N, K, ptr, scalesPtr, bytes };
    this.weightBytesLoaded += bytes;
    return new WWeight([...shape], want, h);
  }

  /** f32 view of a vector weight in wasm memory (no copy). */
  private vec(w: Weight): Float32Array {
    const h = W(w).h;
    check(h.format === "f32", `vector weight must be f32 (is ${h.format})`);
    return new Float32Array(this.kernels.buffer(h.arena), h.ptr, h.N * h.K);
  }

  private data(t: Tensor): Float32Array {
    if (t instanceof WTensor) {
      // its buffer may already hold another op's result: fail loudly instead of computing on it
      check(!t.released, `a tensor [${t.shape.join(", ")}] was used after release`);
      return t.data;
    }
    if (t instanceof KVView) {
      const L = t.cache.perLayer[t.layer]!;
      const n = t.length * t.cache.kvDim;
      if (n === 0) return new Float32Array(0);
      const base = L.ptr + (t.which === "k" ? 0 : L.cap * t.cache.kvDim * 4);
      return new Float32Array(this.kernels.buffer(L.arena), base, n).slice();
    }
    throw new Error("wasm backend: tensor was not made by this backend");
  }

  /** A tensor over memory the backend does not pool (caller's arrays, views of other tensors' data). */
  private make(shape: readonly number[], data: Float32Array): WTensor {
    return new WTensor(shape, data, null);
  }

  /** A pooled buffer of n values for an op's result (contents undefined: the op writes all of it). */
  private take(n: number): PoolBuf {
    return this.pool.take(n);
  }

  private own(shape: readonly number[], b: PoolBuf): WTensor {
    return new WTensor(shape, b.arr, b);
  }

  /** A view sharing t's storage (and keeping t's pooled buffer alive until both are released). */
  private view(t: Tensor, shape: readonly number[], data: Float32Array): WTensor {
    return new WTensor(shape, data, t instanceof WTensor ? t.buf : null);
  }

  /** Runs `f` into a pooled buffer of n values and wraps it as a tensor. */
  private into(shape: readonly number[], n: number, f: (out: Float32Array) => void): WTensor {
    const b = this.take(n);
    f(b.arr);
    return this.own(shape, b);
  }

  fromArray(data: Float32Array, shape: readonly number[]): Tensor {
    check(data.length === numel(shape), `fromArray: ${data.length} values for shape ${JSON.stringify(shape)}`);
    return this.make([...shape], data);
  }
  toArray(t: Tensor): Float32Array {
    return t instanceof WTensor ? this.data(t).slice() : this.data(t);
  }
  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const d = this.data(t);
    check(numel(shape) === d.length, `reshape ${JSON.stringify(t.shape)} -> ${JSON.stringify(shape)}`);
    return this.view(t, [...shape], d);
  }
  sliceRows(t: Tensor, start: number, end: number): Tensor {
    const d = this.data(t);
    const c = lastDim(t.shape);
    const rows = c === 0 ? 0 : d.length / c;
    check(start >= 0 && end <= rows && start <= end, `sliceRows [${start}, ${end}) of ${rows}`);
    return this.view(t, [end - start, c], d.subarray(start * c, end * c));
  }
  embed(table: Weight, ids: Int32Array): Tensor {
    const w = W(table);
    const [V, D] = [w.h.N, w.h.K];
    for (const id of ids) if (id < 0 || id >= V) throw new QwenError(`token id ${id} is outside the embedding table (0..${V - 1})`);
    return this.into([ids.length, D], ids.length * D, (out) => this.kernels.readRows(w.h, ids, out));
  }
  /** Returns released tensors' buffers to the pool once no view of them is alive (KV views own nothing). */
  release(...ts: Tensor[]): void {
    for (const t of ts) {
      if (!(t instanceof WTensor) || t.released) continue;
      t.released = true;
      const b = t.buf;
      if (b && --b.refs === 0) this.pool.give(b.arr);
    }
  }
  async sync(): Promise<void> {}
  dispose(): void {
    this.pool.clear();
    this.kernels.dispose();
  }

  // ------------------------------------------------------------------------------------------
  // math

  linear(x: Tensor, w: Weight, bias?: Weight | null): Tensor {
    const X = this.data(x), Wt = W(w);
    const K = lastDim(x.shape);
    const M = K === 0 ? 0 : X.length / K;
    check(Wt.h.K === K && (Wt.shape.length === 2 || Wt.shape.length === 3), `linear: x [${M}, ${K}] with weight ${JSON.stringify(Wt.shape)}`);
    const N = Wt.h.N;
    const outShape = [...x.shape.slice(0, -1), N];
    if (M === 0) return this.make(outShape, new Float32Array(0));
    let b: Float32Array | WeightHandle | null = null;
    if (bias) {
      const bh = W(bias).h;
      b = bh.arena === Wt.h.arena && bh.format === "f32" ? bh : this.vec(bias);
    }
    return this.into(outShape, M * N, (out) => this.kernels.linear(X, M, K, Wt.h, b, out));
  }

  /** linear on rows [start, end) of a (stacked) weight, without copying the weight. */
  linearRows(x: Float32Array, M: number, w: Weight, start: number, end: number): Float32Array {
    const h = this.kernels.sliceWeight(W(w).h, start, end);
    return this.kernels.linear(x, M, h.K, h, null);
  }

  rmsNorm(x: Tensor, w: Weight, eps: number): Tensor {
    const X = this.data(x), wd = this.vec(w);
    const g = wd.length;
    check(X.length % g === 0, `rmsNorm: ${X.length} values not divisible by ${g}`);
    if (X.length === 0) return this.make(x.shape, new Float32Array(0));
    return this.into(x.shape, X.length, (out) => this.kernels.rmsnorm(X, X.length / g, g, wd, eps, out));
  }

  layerNorm(x: Tensor, w: Weight, b: Weight, eps: number): Tensor {
    const X = this.data(x), wd = this.vec(w), bd = this.vec(b);
    const g = wd.length;
    check(lastDim(x.shape) === g, `layerNorm: last dim ${lastDim(x.shape)} vs weight ${g}`);
    if (X.length === 0) return this.make(x.shape, new Float32Array(0));
    return this.into(x.shape, X.length, (out) => this.kernels.layernorm(X, X.length / g, g, wd, bd, eps, out));
  }

  add(a: Tensor, b: Tensor): Tensor {
    const A = this.data(a), B = this.data(b);
    check(A.length === B.length, `add: ${A.length} vs ${B.length}`);
    return this.into(a.shape, A.length, (out) => {
      for (let i = 0; i < out.length; i++) out[i] = A[i]! + B[i]!;
    });
  }
  addInPlace(a: Tensor, b: Tensor): void {
    const A = this.data(a), B = this.data(b);
    check(a instanceof WTensor, "addInPlace on a KV view");
    check(A.length === B.length, `addInPlace: ${A.length} vs ${B.length}`);
    for (let i = 0; i < A.length; i++) A[i] = A[i]! + B[i]!;
  }
  geluTanh(x: Tensor): Tensor {
    const X = this.data(x);
    return this.into(x.shape, X.length, (out) => { if (X.length) this.kernels.geluTanh(X, out); });
  }
  geluErf(x: Tensor): Tensor {
    const X = this.data(x);
    return this.into(x.shape, X.length, (out) => { if (X.length) this.kernels.geluErf(X, out); });
  }
  siluMul(gate: Tensor, up: Tensor): Tensor {
    const G = this.data(gate), U = this.data(up);
    check(G.length === U.length, `siluMul: ${G.length} vs ${U.length}`);
    return this.into(gate.shape, G.length, (out) => { if (G.length) this.kernels.siluMul(G, U, out); });
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const X = this.data(x), C = this.data(cos), S = this.data(sin);
    const cols = lastDim(x.shape);
    const rows = cols === 0 ? 0 : X.length / cols;
    const d = lastDim(cos.shape);
    check(cos.shape[0] === rows && cols % d === 0 && d % 2 === 0, `rope: x ${JSON.stringify(x.shape)}, cos ${JSON.stringify(cos.shape)}`);
    const ch = this.halfTable(C, rows, d), sh = this.halfTable(S, rows, d);
    if (!ch || !sh || rows === 0) {
      const r = this.ref.rope(this.ref.fromArray(X, x.shape), this.ref.fromArray(C, cos.shape), this.ref.fromArray(S, sin.shape));
      return this.make(x.shape, this.ref.toArray(r));
    }
    return this.into(x.shape, X.length, (out) => this.kernels.ropeNeox(X, rows, cols / d, d, ch, sh, d, out));
  }

  /** [rows, d/2] when every row's two halves are equal (the usual cat(freqs, freqs) tables). */
  private halfTable(t: Float32Array, rows: number, d: number): Float32Array | null {
    const hit = this.ropeHalf.get(t);
    if (hit !== undefined) return hit;
    const half = d / 2;
    const out = new Float32Array(rows * half);
    let ok = true;
    for (let r = 0; r < rows && ok; r++) {
      for (let i = 0; i < half; i++) {
        const a = t[r * d + i]!;
        if (a !== t[r * d + i + half]) { ok = false; break; }
        out[r * half + i] = a;
      }
    }
    const res = ok ? out : null;
    this.ropeHalf.set(t, res);
    return res;
  }

  attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
    const { nHeads, nKVHeads, headDim: d } = o;
    const Q = this.data(q);
    const S = Q.length / (nHeads * d);
    const Tn = k.shape[0]!;
    check(Number.isInteger(S) && nHeads % nKVHeads === 0, "attention: shapes");
    const outShape = [S, nHeads * d];
    if (S === 0) return this.make(outShape, new Float32Array(0));
    const qOff = o.qOffset ?? 0;
    // Resident path: keys/values are the rows of one KV cache layer.
    if (k instanceof KVView && v instanceof KVView && k.cache === v.cache && k.layer === v.layer && k.length === v.length
      && o.causal && !o.segments && Tn === qOff + S && k.cache.kvDim === nKVHeads * d) {
      const L = k.cache.perLayer[k.layer]!;
      const kp = L.ptr, vp = L.ptr + L.cap * k.cache.kvDim * 4;
      return this.into(outShape, S * nHeads * d, (out) => this.kernels.attentionResident(Q, L.arena, kp, vp, k.cache.kvDim, S, nHeads, nKVHeads, d, qOff, o.scale, out));
    }
    const K = this.data(k), V = this.data(v);
    check(K.length === Tn * nKVHeads * d && V.length === K.length, "attention: k/v shapes");
    const p = { T: S, nH: nHeads, nKV: nKVHeads, D: d, ...(o.scale !== undefined ? { scale: o.scale } : {}) };
    if (o.segments && !o.causal && Tn === S && o.segments[0] === 0 && o.segments[o.segments.length - 1] === S) {
      const cu = Int32Array.from(o.segments);
      return this.into(outShape, S * nHeads * d, (out) => this.kernels.attention(Q, K, V, { ...p, cuSeqlens: cu }, out));
    }
    if (!o.segments && !o.causal && Tn === S) {
      return this.into(outShape, S * nHeads * d, (out) => this.kernels.attention(Q, K, V, { ...p, cuSeqlens: [0, S] }, out));
    }
    if (!o.segments && o.causal && Tn === qOff + S) {
      return this.into(outShape, S * nHeads * d, (out) => this.kernels.attention(Q, K, V, { ...p, past: qOff }, out));
    }
    // Anything else (not used by the model): the reference.
    const r = this.ref.attention(this.ref.fromArray(Q, q.shape), this.ref.fromArray(K, k.shape), this.ref.fromArray(V, v.shape), o);
    return this.make(outShape, this.ref.toArray(r));
  }

  gatherWeighted(table: Weight, idx: Int32Array, weights: Float32Array, perRow: number): Tensor {
    const w = W(table);
    const cols = w.h.K;
    const n = idx.length / perRow;
    const ob = this.take(n * cols), out = ob.arr.fill(0);
    const direct = w.h.format === "f32" ? new Float32Array(this.kernels.buffer(w.h.arena), w.h.ptr, w.h.N * cols) : null;
    const scratch = new Float32Array(cols);
    const one = new Int32Array(1);
    for (let r = 0; r < n; r++) {
      const o = r * cols;
      for (let j = 0; j < perRow; j++) {
        const id = idx[r * perRow + j]!;
        check(id >= 0 && id < w.h.N, `gatherWeighted: row ${id} of ${w.h.N}`);
        let row: Float32Array, ro = 0;
        if (direct) { row = direct; ro = id * cols; } else { one[0] = id; this.kernels.readRows(w.h, one, scratch); row = scratch; }
        const wt = weights[r * perRow + j]!;
        for (let c = 0; c < cols; c++) out[o + c] = out[o + c]! + Math.fround(row[ro + c]! * wt);
      }
    }
    return this.own([n, cols], ob);
  }

  scatterRows(dst: Tensor, rows: Int32Array, src: Tensor): void {
    const D = this.data(dst), Sx = this.data(src);
    const c = lastDim(dst.shape);
    check(Sx.length === rows.length * c, `scatterRows: ${rows.length} rows of ${c} vs ${Sx.length} values`);
    for (let i = 0; i < rows.length; i++) D.set(Sx.subarray(i * c, i * c + c), rows[i]! * c);
  }
  scatterAddRows(dst: Tensor, rows: Int32Array, src: Tensor): void {
    const D = this.data(dst), Sx = this.data(src);
    const c = lastDim(dst.shape);
    check(Sx.length === rows.length * c, `scatterAddRows: ${rows.length} rows of ${c} vs ${Sx.length} values`);
    for (let i = 0; i < rows.length; i++) {
      const o = rows[i]! * c;
      for (let j = 0; j < c; j++) D[o + j] = D[o + j]! + Sx[i * c + j]!;
    }
  }

  moe(x: Tensor, w: MoEWeights): Tensor {
    const X = this.data(x);
    const D = lastDim(x.shape);
    const S = D === 0 ? 0 : X.length / D;
    const E = w.router.shape[0]!;
    const gu = W(w.gateUp), dn = W(w.down);
    const Im = gu.shape[1]! / 2;
    check(gu.shape[0] === E && gu.shape[2] === D && dn.shape[0] === E && dn.shape[1] === D && dn.shape[2] === Im, "moe: expert shapes");
    if (S === 0) return this.make(x.shape, new Float32Array(0));
    const lt = this.linear(x, w.router);
    const { experts: chosen, weights: weight } = routeTopK(this.data(lt), S, E, w.topK, w.normTopK);
    this.release(lt);
    const ob = this.take(S * D), out = ob.arr.fill(0);
    const perExpert: number[][] = Array.from({ length: E }, () => []);
    for (let i = 0; i < chosen.length; i++) perExpert[chosen[i]!]!.push(Math.floor(i / w.topK));
    // Each chosen expert once, on the rows of the tokens that chose it; only its weight rows are read.
    const results: (Float32Array | null)[] = new Array(E).fill(null);
    const rowOf = new Int32Array(S * E).fill(-1);
    for (let e = 0; e < E; e++) {
      const toks = perExpert[e]!;
      if (toks.length === 0) continue;
      const n = toks.length;
      const xe = new Float32Array(n * D);
      toks.forEach((s, i) => { xe.set(X.subarray(s * D, (s + 1) * D), i * D); rowOf[s * E + e] = i; });
      const g = this.linearRows(xe, n, w.gateUp, e * 2 * Im, (e + 1) * 2 * Im);
      const act = new Float32Array(n * Im);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < Im; j++) {
          const a = g[i * 2 * Im + j]!, u = g[i * 2 * Im + Im + j]!;
          act[i * Im + j] = (a / (1 + Math.exp(-a))) * u;
        }
      }
      results[e] = this.linearRows(act, n, w.down, e * D, (e + 1) * D);
    }
    for (let s = 0; s < S; s++) {
      const xo = s * D;
      for (let k = 0; k < w.topK; k++) {
        const e = chosen[s * w.topK + k]!;
        const y = results[e]!, r = rowOf[s * E + e]!;
        const wt = weight[s * w.topK + k]!;
        for (let c = 0; c < D; c++) out[xo + c] = out[xo + c]! + y[r * D + c]! * wt;
      }
    }
    return this.own(x.shape, ob);
  }

  argmaxRows(x: Tensor): Int32Array {
    const X = this.data(x);
    const c = lastDim(x.shape);
    const rows = c === 0 ? 0 : X.length / c;
    const out = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0, bv = -Infinity;
      for (let j = 0; j < c; j++) { const v = X[r * c + j]!; if (v > bv) { bv = v; best = j; } }
      out[r] = best;
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // KV cache: per layer one region [K rows (cap x kvDim) | V rows (cap x kvDim)] in wasm memory.

  /**
   * A cache's regions go back to the free list on `releaseKVCache` (Session.dispose), or, for a cache
   * nobody released, when the cache object is garbage-collected; later caches reuse them.
   */
  private readonly kvRegistry = new FinalizationRegistry<{ rowB: number; layers: KVLayer[] }>((held) => {
    if (this.kernels.isDisposed) return;
    this.freeKVLayers(held.layers, held.rowB);
  });

  private freeKVLayers(layers: KVLayer[], rowB: number): void {
    for (const L of layers) {
      if (L.cap > 0) this.kernels.free(L.arena, L.ptr, 2 * L.cap * rowB);
      L.cap = 0; L.ptr = 0; L.filled = 0;
    }
  }

  createKVCache(layers: number, kvDim: number): KVCache {
    const c = new WKV(layers, kvDim);
    this.kvRegistry.register(c, { rowB: kvDim * 4, layers: c.perLayer }, c);
    return c;
  }

  releaseKVCache(cache: KVCache): void {
    const c = cache as WKV;
    check(c instanceof WKV, "releaseKVCache: not a cache of this backend");
    this.kvRegistry.unregister(c);
    if (!this.kernels.isDisposed) this.freeKVLayers(c.perLayer, c.kvDim * 4);
  }

  private ensureKV(c: WKV, layer: number, rows: number): KVLayer {
    const L = c.perLayer[layer]!;
    if (rows <= L.cap) return L;
    // Room for a quarter more (at least 128 rows) than asked: a prompt's prefill leaves space for the
    // answer, so decoding rarely moves the cache (a move leaves the old region free but committed).
    // Growth stays geometric (x1.5) for long generations.
    const cap = align(Math.max(rows + Math.max(128, rows >> 2), Math.ceil(1.5 * L.cap), 256), 64);
    const rowB = c.kvDim * 4;
    const { arena, ptr } = this.allocOrThrow(2 * cap * rowB, `the KV cache (${cap} rows of layer ${layer})`);
    if (L.cap > 0 && L.filled > 0) {
      const from = new Uint8Array(this.kernels.buffer(L.arena));
      const to = new Uint8Array(this.kernels.buffer(arena));
      to.set(from.subarray(L.ptr, L.ptr + L.filled * rowB), ptr);
      to.set(from.subarray(L.ptr + L.cap * rowB, L.ptr + L.cap * rowB + L.filled * rowB), ptr + cap * rowB);
    }
    if (L.cap > 0) this.kernels.free(L.arena, L.ptr, 2 * L.cap * rowB);
    L.arena = arena; L.ptr = ptr; L.cap = cap;
    return L;
  }

  kvWrite(cache: KVCache, layer: number, start: number, k: Tensor, v: Tensor): void {
    const c = cache as WKV;
    const K = this.data(k), V = this.data(v);
    check(K.length === V.length && K.length % c.kvDim === 0, "kvWrite: k/v shapes");
    const S = K.length / c.kvDim;
    const L = this.ensureKV(c, layer, start + S);
    const buf = this.kernels.buffer(L.arena);
    new Float32Array(buf, L.ptr + start * c.kvDim * 4, K.length).set(K);
    new Float32Array(buf, L.ptr + (L.cap + start) * c.kvDim * 4, V.length).set(V);
    L.filled = Math.max(L.filled, start + S);
  }
  kvRead(cache: KVCache, layer: number, length: number): { k: Tensor; v: Tensor } {
    const c = cache as WKV;
    check(c.perLayer[layer]!.filled >= length, `kvRead: ${length} rows but the cache holds ${c.perLayer[layer]!.filled}`);
    return { k: new KVView(c, layer, length, "k"), v: new KVView(c, layer, length, "v") };
  }
  kvTruncate(cache: KVCache, length: number): void {
    for (const L of (cache as WKV).perLayer) L.filled = Math.min(L.filled, length);
  }
}
