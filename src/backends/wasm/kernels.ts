// WasmKernels: loads the AssemblyScript kernel module (SIMD128 or relaxed-SIMD build), owns the arenas
// (one shared WebAssembly.Memory + instance per arena, up to 4 GiB each), the weight/KV allocations in
// them and the worker pool, and exposes the kernels on plain Float32Array / Uint16Array inputs.
// See DESIGN.md in this folder.
import { dirURL, readBytes, setV8Flags, startWorker, type PoolWorker } from './platform.js';
import {
  CTL_ARENA, CTL_ARGS_BYTE_OFFSET, CTL_BYTES, CTL_DONE, CTL_ERROR, CTL_FN, CTL_GEN, CTL_MAX_ARGS, CTL_NARGS,
  CTL_SLEEPERS, FN_EXIT, FN_YIELD, KERNEL_NAMES, type KernelName, type WorkerMessage,
} from './protocol.js';

export type WasmBuild = 'simd' | 'relaxed';
export type WeightFormat = 'f32' | 'bf16' | 'q8' | 'q4';

export interface WasmKernelsOptions {
  /** Total threads including the main thread (default 1). */
  threads?: number;
  /** 'auto' (default) picks relaxed SIMD when WebAssembly.validate accepts it. */
  build?: 'auto' | WasmBuild;
  /** How long a worker spins after a job before sleeping in Atomics.wait (default 2000 us). */
  spinMicros?: number;
  /** Bytes of weights/KV per arena before a new arena is opened (default 3.5 GiB; max 4 GiB minus scratch). */
  arenaBytes?: number;
  /** q4 GEMV inner product in the relaxed build: 'auto' (default: timed at start-up), 'rdot', 'int16'. */
  q4Path?: 'auto' | 'rdot' | 'int16';
  /** Directory with kernels-simd.wasm / kernels-relaxed.wasm (default: dist/wasm next to the compiled sources). */
  wasmDir?: string | URL;
  /** Rows per GEMM block in `linear` (default 512; a multiple of 4). Bounds the arena scratch of large-M calls. */
  gemmRows?: number;
  /**
   * Weight formats whose GEMM (M > 4) runs on quantised activations with integer dot products (the
   * GEMV's arithmetic: int8 x nibble relaxed dot for q4 when exact, else int16) instead of f32
   * activations and dequantised weights. Default ['q4']: 1.8x faster for q4 and within its error
   * bounds; q8 stays f32 by default (its int16 GEMM is only ~1.15x faster here, and activation
   * rounding roughly doubles q8's logit error and flips MoE routing on the fixtures).
   */
  intGemm?: readonly ('q8' | 'q4')[];
}

/** A weight matrix [N, K] (or a vector, N = 1) resident in one arena. */
export interface WeightHandle {
  readonly arena: number;
  readonly format: WeightFormat;
  readonly N: number;
  readonly K: number;
  /** Byte address of the data (f32/bf16 values, or the q8/q4 codes). */
  readonly ptr: number;
  /** Byte address of the f32 block scales (q8/q4), else 0. */
  readonly scalesPtr: number;
  /** Bytes occupied in the arena. */
  readonly bytes: number;
}

/** A KV cache for all layers, f32, layout per layer [nKV, capacity, headDim] for keys and for values. */
export interface KVCacheHandle {
  readonly arena: number;
  readonly layers: number;
  readonly nKV: number;
  readonly headDim: number;
  readonly capacity: number;
  readonly ptr: number;
  readonly bytes: number;
}

export interface AttentionParams {
  /** Query tokens. q is [T, nH, D] (token stride nH*D unless qStride given). */
  T: number;
  nH: number;
  nKV: number;
  D: number;
  /** Softmax scale (default 1/sqrt(D)). */
  scale?: number;
  /** Causal: number of earlier keys before the T new ones (key count = past + T). Default 0. */
  past?: number;
  /** Non-causal segmented (vision): cumulative segment starts, length nseg+1, last = T. */
  cuSeqlens?: Int32Array | number[];
}

const PAGE = 65536;
const MAX_MEMORY = 4 * 1024 * 1024 * 1024;
const HEAP_START = 1 << 20; // first byte handed out in every arena
const GEMV_MAX_M = 4;
const GEMM_ROWS = 512; // rows per GEMM block (bounds the arena scratch of large-M linears)
// per-thread gemm scratch, >= assembly gemm_scratch_bytes() = GNC*GKC*4 + GMR*8*4 + 64
const GEMM_SCRATCH_PER_THREAD = 128 * 256 * 4 + 4 * 8 * 4 + 64;
const PAR_MIN_ELEMS = 16384; // elementwise kernels smaller than this run on the main thread only
const QUANT_CHUNK_BYTES = 4 << 20;
const WEIGHT_TYPE: Record<WeightFormat, number> = { f32: 0, bf16: 1, q8: 2, q4: 3 };

type Fn = (...args: number[]) => number | void;

interface Arena {
  id: number;
  memory: WebAssembly.Memory;
  exports: Record<string, Fn>;
  table: Fn[];
  /** end of allocated weights/KV */
  top: number;
  buf: SharedArrayBuffer;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Relaxed SIMD must be switched on in Node 20 (V8 11.3) before compiling (no-op elsewhere). */
function enableRelaxed(): Promise<void> {
  return setV8Flags('--experimental-wasm-relaxed-simd');
}

export class WasmKernels {
  readonly threads: number;
  readonly build: WasmBuild;
  private readonly module: WebAssembly.Module;
  private readonly arenas: Arena[] = [];
  private gemmRows = GEMM_ROWS;
  private intGemm = new Set<string>(['q4']);
  private readonly arenaBytes: number;
  private readonly workers: PoolWorker[] = [];
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly spinMicros: number;
  private readonly argBuf: number[] = [];
  private disposed = false;
  /** True after dispose(). */
  get isDisposed(): boolean {
    return this.disposed;
  }
  /**
   * Relaxed integer dot for q4: 1 = used (probed exact at start-up), 0 = not used (SIMD128 build, or the
   * engine's result was not exact; the q4 kernel then uses the SIMD128 int16 dot path).
   */
  rdotScale = 0;
  /** The relaxed int8 dot was probed exact: the q4 GEMM uses it (int8 activations), whatever the GEMV picked. */
  rdotExact = false;

  private constructor(module: WebAssembly.Module, build: WasmBuild, threads: number, spinMicros: number, arenaBytes: number) {
    this.module = module;
    this.build = build;
    this.threads = threads;
    this.spinMicros = spinMicros;
    this.arenaBytes = arenaBytes;
    const sab = new SharedArrayBuffer(CTL_BYTES);
    this.ctl = new Int32Array(sab, 0, CTL_ARGS_BYTE_OFFSET / 4);
    this.args = new Float64Array(sab, CTL_ARGS_BYTE_OFFSET, CTL_MAX_ARGS);
  }

  /** Which builds this runtime accepts. */
  static async supportedBuilds(wasmDir?: string | URL): Promise<WasmBuild[]> {
    return [...(await WasmKernels.validBuilds(wasmDir)).keys()];
  }

  /** The bytes of every build this runtime validates (read once; `create` compiles from them). */
  private static async validBuilds(wasmDir?: string | URL): Promise<Map<WasmBuild, Uint8Array<ArrayBuffer>>> {
    await enableRelaxed();
    const out = new Map<WasmBuild, Uint8Array<ArrayBuffer>>();
    for (const b of ['simd', 'relaxed'] as const) {
      try {
        const bytes = await readBytes(await wasmPath(b, wasmDir));
        if (WebAssembly.validate(bytes)) out.set(b, bytes);
      } catch {
        /* missing file */
      }
    }
    return out;
  }

  static async create(opts: WasmKernelsOptions = {}): Promise<WasmKernels> {
    const threads = Math.max(1, Math.floor(opts.threads ?? 1));
    let build: WasmBuild;
    const supported = await WasmKernels.validBuilds(opts.wasmDir);
    if (opts.build === undefined || opts.build === 'auto') {
      if (supported.has('relaxed')) build = 'relaxed';
      else if (supported.has('simd')) build = 'simd';
      else throw new Error('WasmKernels: no usable wasm build (SIMD128 required); run scripts/build-wasm.mjs');
    } else {
      build = opts.build;
      if (!supported.has(build)) throw new Error(`WasmKernels: build '${build}' not supported by this runtime`);
    }
    // V8 11.3 (Node 20): Liftoff computes i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly (2x the dot product,
    // accumulator ignored) while TurboFan is right, so a function's result would change when it tiers up.
    // Compiling the relaxed build with TurboFan only makes it consistent (and skips the slow baseline tier).
    // (Browsers: no flags; the start-up probe below decides whether the relaxed integer dot is used.)
    if (build === 'relaxed') await setV8Flags('--no-liftoff');
    const module = await WebAssembly.compile(supported.get(build)!);
    const arenaBytes = Math.min(opts.arenaBytes ?? 3.5 * 1024 ** 3, MAX_MEMORY - (256 << 20));
    const k = new WasmKernels(module, build, threads, opts.spinMicros ?? 2000, arenaBytes);
    k.intGemm = new Set(opts.intGemm ?? ['q4']);
    if (opts.gemmRows !== undefined) {
      if (!Number.isInteger(opts.gemmRows) || opts.gemmRows < 4 || opts.gemmRows % 4) throw new Error(`WasmKernels: gemmRows must be a positive multiple of 4 (got ${opts.gemmRows})`);
      k.gemmRows = opts.gemmRows;
    }
    const a0 = k.newArena(HEAP_START + (16 << 20));
    // use the relaxed integer dot only when it is exact (a doubled result means the buggy baseline tier ran)
    // and only when it is faster than the int16 path here (without VNNI it was not: 2.07 vs 1.60 ms)
    if (build === 'relaxed' && k.probeRelaxedDot(a0) === 1) {
      k.rdotExact = true;
      const q4 = opts.q4Path ?? 'auto';
      k.rdotScale = q4 === 'rdot' ? 1 : q4 === 'int16' ? 0 : k.calibrateQ4(a0);
    }
    await k.startWorkers();
    return k;
  }

  // ------------------------------------------------------------------------------------------
  // arenas, memory

  get arenaCount(): number {
    return this.arenas.length;
  }

  /** Bytes used by weights/KV in each arena. */
  arenaUsage(): number[] {
    return this.arenas.map((a) => a.top - HEAP_START);
  }

  private newArena(initialBytes: number): Arena {
    const memory = new WebAssembly.Memory({ initial: Math.ceil(initialBytes / PAGE), maximum: MAX_MEMORY / PAGE, shared: true });
    const inst = new WebAssembly.Instance(this.module, { env: { memory } });
    const exports = inst.exports as unknown as Record<string, Fn>;
    const a: Arena = {
      id: this.arenas.length,
      memory,
      exports,
      table: KERNEL_NAMES.map((n) => exports[n]!),
      top: HEAP_START,
      buf: memory.buffer as unknown as SharedArrayBuffer,
    };
    this.arenas.push(a);
    return a;
  }

  /** Runs probe_rdot on random int8 x nibble vectors; returns 1 or 0.5 when consistent, else 0. */
  private probeRelaxedDot(a: Arena): number {
    const p = HEAP_START;
    const i8 = new Int8Array(a.buf, p, 32);
    const out = new Int32Array(a.buf, p + 32, 4);
    let factor = 0;
    let r = 987654321;
    for (let trial = 0; trial < 64; trial++) {
      for (let j = 0; j < 16; j++) {
        r = (Math.imul(r, 1103515245) + 12345) >>> 0;
        i8[j] = trial === 0 ? (j & 1 ? 127 : -127) : ((r >>> 8) % 255) - 127;
        i8[16 + j] = trial === 0 ? 15 : (r >>> 3) & 15;
      }
      a.exports.probe_rdot!(p, p + 16, p + 32);
      for (let l = 0; l < 4; l++) {
        let d = 0;
        for (let j = 4 * l; j < 4 * l + 4; j++) d += i8[j]! * i8[16 + j]!;
        const got = out[l]!;
        let f: number;
        if (d === 0) { if (got !== 0) return 0; continue; }
        if (got === d) f = 1;
        else if (got === 2 * d) f = 0.5;
        else return 0;
        if (factor === 0) factor = f;
        else if (factor !== f) return 0;
      }
    }
    return factor;
  }

  /** Times gemv_q4 on a hot 256 x 2048 matrix with both inner products; returns 1 if rdot is faster. */
  private calibrateQ4(a: Arena): number {
    const K = 2048, N = 256, Kp = K, nb = Kp / 32;
    const base = align(a.top, 64);
    const qs = base, sc = qs + (N * Kp) / 2, x8 = sc + N * nb * 4, x16 = x8 + Kp, xs = x16 + 2 * Kp, xsum = xs + nb * 4, y = xsum + nb * 4;
    this.ensureSize(a, y + N * 4 + 64);
    const u8 = new Uint8Array(a.buf, qs, (N * Kp) / 2);
    for (let i = 0; i < u8.length; i++) u8[i] = (i * 2654435761) >>> 24;
    new Float32Array(a.buf, sc, N * nb).fill(0.01);
    new Float32Array(a.buf, xs, nb).fill(0.01);
    const f = a.exports.gemv_q4!;
    const time = (mode: number): number => {
      for (let i = 0; i < 5; i++) f(x8, x16, xs, xsum, 1, K, qs, sc, N, 0, y, mode, 1, 0, 1);
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        for (let i = 0; i < 10; i++) f(x8, x16, xs, xsum, 1, K, qs, sc, N, 0, y, mode, 1, 0, 1);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    time(0);
    time(1);
    return time(1) < time(0) ? 1 : 0;
  }

  private async addArena(): Promise<Arena> {
    const a = this.newArena(HEAP_START + (16 << 20));
    if (this.workers.length > 0) {
      const acks = this.workers.map((w) => waitFor(w, (m) => m.type === 'arena-ok' && m.id === a.id));
      for (const w of this.workers) w.post({ type: 'arena', id: a.id, memory: a.memory } satisfies WorkerMessage);
      this.dispatchRaw(0, FN_YIELD, 0);
      for (const w of this.workers) w.post({ type: 'resume' } satisfies WorkerMessage);
      await Promise.all(acks);
    }
    return a;
  }

  private ensureSize(a: Arena, end: number): void {
    if (end > MAX_MEMORY) throw new Error(`WasmKernels: arena ${a.id} would exceed 4 GiB (${end} bytes)`);
    const have = a.memory.buffer.byteLength;
    if (end > have) {
      const want = Math.min(MAX_MEMORY, Math.max(end, Math.min(MAX_MEMORY, have + (have >> 3))));
      a.memory.grow(Math.ceil((want - have) / PAGE));
    }
    if (a.buf.byteLength !== a.memory.buffer.byteLength) a.buf = a.memory.buffer as unknown as SharedArrayBuffer;
  }

  private async alloc(bytes: number): Promise<{ arena: Arena; ptr: number }> {
    bytes = align(bytes, 64);
    if (bytes > this.arenaBytes) throw new Error(`WasmKernels: allocation of ${bytes} bytes exceeds the arena size`);
    const r = this.tryAlloc(bytes);
    if (r) return r;
    const a = await this.addArena();
    const ptr = a.top;
    a.top += bytes;
    this.ensureSize(a, a.top);
    return { arena: a, ptr };
  }

  /** First fit in the free list, else the first arena with room; null when none has room (no arena is opened). */
  private tryAlloc(bytes: number): { arena: Arena; ptr: number } | null {
    bytes = align(bytes, 64);
    for (let i = 0; i < this.freeList.length; i++) {
      const f = this.freeList[i]!;
      if (f.bytes >= bytes) {
        const ptr = f.ptr;
        if (f.bytes === bytes) this.freeList.splice(i, 1);
        else { f.ptr += bytes; f.bytes -= bytes; }
        return { arena: this.arenas[f.arena]!, ptr };
      }
    }
    const a = this.arenas.find((x) => x.top - HEAP_START + bytes <= this.arenaBytes);
    if (!a) return null;
    const ptr = a.top;
    a.top += bytes;
    this.ensureSize(a, a.top);
    return { arena: a, ptr };
  }

  private readonly freeList: { arena: number; ptr: number; bytes: number }[] = [];

  /**
   * Synchronous allocation of `bytes` (64-byte aligned) in an already open arena (reserve() opens them).
   * Returns null when no open arena has room.
   */
  allocSync(bytes: number): { arena: number; ptr: number } | null {
    const r = this.tryAlloc(bytes);
    return r ? { arena: r.arena.id, ptr: r.ptr } : null;
  }

  /** Returns an allocation made by allocSync (or a weight/KV region) to the free list. */
  free(arena: number, ptr: number, bytes: number): void {
    bytes = align(bytes, 64);
    const a = this.arenas[arena]!;
    // coalesce with free neighbours in the same arena (so a grown KV region can reuse two freed halves)
    for (let i = 0; i < this.freeList.length;) {
      const f = this.freeList[i]!;
      if (f.arena === arena && (f.ptr + f.bytes === ptr || ptr + bytes === f.ptr)) {
        ptr = Math.min(ptr, f.ptr);
        bytes += f.bytes;
        this.freeList.splice(i, 1);
      } else i++;
    }
    if (ptr + bytes === a.top) { a.top = ptr; return; }
    this.freeList.push({ arena, ptr, bytes });
  }

  /** Opens arenas until `bytes` of weights/KV fit in the open arenas' remaining budget. */
  async reserve(bytes: number): Promise<void> {
    const room = (): number => this.arenas.reduce((s, a) => s + Math.max(0, this.arenaBytes - (a.top - HEAP_START)), 0);
    while (room() < bytes) await this.addArena();
  }

  /** Bytes of weights/KV one arena holds before the next is used. */
  get arenaBudget(): number {
    return this.arenaBytes;
  }

  /** The current buffer of an arena (refresh after anything that may grow it). */
  buffer(arena: number): SharedArrayBuffer {
    const a = this.arenas[arena]!;
    if (a.buf.byteLength !== a.memory.buffer.byteLength) a.buf = a.memory.buffer as unknown as SharedArrayBuffer;
    return a.buf;
  }

  /** Scratch bytes above an arena's allocations (valid until the next kernel call or allocation). */
  scratchSync(arena: number, bytes: number): number {
    return this.scratch(this.arenas[arena]!, bytes);
  }

  /**
   * Quantises rows already in arena memory (f32 or bf16 at src) into a q8/q4 weight region: codes at
   * qs, scales at scales, as uploadWeight lays them out.
   */
  quantizeRows(arena: number, quant: 'q8' | 'q4', src: number, srcType: 'f32' | 'bf16', rows: number, K: number, qs: number, scales: number): void {
    const a = this.arenas[arena]!;
    a.exports[quant === 'q8' ? 'quantize_q8' : 'quantize_q4']!(src, srcType === 'f32' ? 0 : 1, rows, K, qs, scales);
  }

  /** Rows [start, end) of a weight as a handle of its own (no copy): expert slices of a stacked MoE weight. */
  sliceWeight(w: WeightHandle, start: number, end: number): WeightHandle {
    if (start < 0 || end > w.N || start > end) throw new Error(`sliceWeight: rows [${start}, ${end}) of ${w.N}`);
    const n = end - start;
    if (w.format === 'f32' || w.format === 'bf16') {
      const esz = w.format === 'f32' ? 4 : 2;
      return { arena: w.arena, format: w.format, N: n, K: w.K, ptr: w.ptr + start * w.K * esz, scalesPtr: 0, bytes: n * w.K * esz };
    }
    const Kp = align(w.K, 32), nb = Kp / 32;
    const rowQ = w.format === 'q8' ? Kp : Kp / 2;
    return { arena: w.arena, format: w.format, N: n, K: w.K, ptr: w.ptr + start * rowQ, scalesPtr: w.scalesPtr + start * nb * 4, bytes: n * (rowQ + nb * 4) };
  }

  /** Dequantised f32 copies of the given rows of a weight, into out ([rows.length, K]). */
  readRows(w: WeightHandle, rows: ArrayLike<number>, out: Float32Array): void {
    const buf = this.buffer(w.arena);
    const K = w.K;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (r < 0 || r >= w.N) throw new Error(`readRows: row ${r} of ${w.N}`);
      const o = out.subarray(i * K, (i + 1) * K);
      if (w.format === 'f32') o.set(new Float32Array(buf, w.ptr + r * K * 4, K));
      else if (w.format === 'bf16') {
        const u = new Uint16Array(buf, w.ptr + r * K * 2, K);
        const o32 = new Uint32Array(o.buffer, o.byteOffset, K);
        for (let k = 0; k < K; k++) o32[k] = u[k]! << 16;
      } else {
        const Kp = align(K, 32), nb = Kp / 32;
        const sc = new Float32Array(buf, w.scalesPtr + r * nb * 4, nb);
        if (w.format === 'q8') {
          const q = new Int8Array(buf, w.ptr + r * Kp, K);
          for (let k = 0; k < K; k++) o[k] = q[k]! * sc[k >> 5]!;
        } else {
          const q = new Uint8Array(buf, w.ptr + (r * Kp) / 2, Kp / 2);
          for (let k = 0; k < K; k++) {
            const byte = q[(k >> 5) * 16 + (k & 15)]!;
            o[k] = (((k & 31) < 16 ? byte & 15 : byte >> 4) - 8) * sc[k >> 5]!;
          }
        }
      }
    }
  }

  /** Scratch space above the arena's allocations (valid until the next kernel call). */
  private scratch(a: Arena, bytes: number): number {
    const base = align(a.top, 64);
    this.ensureSize(a, base + bytes + 64);
    return base;
  }

  private f32(a: Arena, ptr: number, n: number): Float32Array {
    return new Float32Array(a.buf, ptr, n);
  }

  private put(a: Arena, ptr: number, src: ArrayBufferView): void {
    new Uint8Array(a.buf, ptr, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  }

  // ------------------------------------------------------------------------------------------
  // pool

  private async startWorkers(): Promise<void> {
    const url = new URL('./worker.js', import.meta.url);
    const ready: Promise<unknown>[] = [];
    for (let t = 1; t < this.threads; t++) {
      const w = await startWorker(url);
      ready.push(waitFor(w, (m) => m.type === 'ready'));
      const init: WorkerMessage = {
        type: 'init', tid: t, nth: this.threads, spinMicros: this.spinMicros,
        ctl: this.ctl.buffer as SharedArrayBuffer, module: this.module,
        memories: this.arenas.map((a) => a.memory),
      };
      w.post(init);
      this.workers.push(w);
    }
    await Promise.all(ready);
  }

  /** Publish a job to the workers (nargs already in this.args) and return after they finished. */
  private dispatchRaw(arena: number, fn: number, nargs: number, main?: () => void): void {
    const ctl = this.ctl;
    ctl[CTL_FN] = fn;
    ctl[CTL_ARENA] = arena;
    ctl[CTL_NARGS] = nargs;
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.add(ctl, CTL_GEN, 1);
    if (Atomics.load(ctl, CTL_SLEEPERS) > 0) Atomics.notify(ctl, CTL_GEN);
    let err: unknown;
    try {
      main?.();
    } catch (e) {
      err = e;
    }
    const need = this.workers.length;
    while (Atomics.load(ctl, CTL_DONE) < need) {
      /* spin: workers' shares are about as long as ours */
    }
    if (err) throw err;
    if (ctl[CTL_ERROR]) {
      ctl[CTL_ERROR] = 0;
      throw new Error('WasmKernels: a pool worker failed (see stderr)');
    }
  }

  /** Run a kernel on all threads (or only on the main thread when `parallel` is false). */
  private run(a: Arena, name: KernelName, args: number[], parallel = true): void {
    if (this.disposed) throw new Error('WasmKernels: disposed');
    const fnId = KERNEL_NAMES.indexOf(name);
    const f = a.table[fnId]!;
    const n = args.length;
    if (!parallel || this.workers.length === 0) {
      args.push(0, 1);
      f(...args);
      return;
    }
    for (let i = 0; i < n; i++) this.args[i] = args[i]!;
    args.push(0, this.threads);
    this.dispatchRaw(a.id, fnId, n, () => f(...args));
  }

  /**
   * What this runtime reaches on this host right now, for the benchmark's roofline: f32x4 FMA
   * throughput (register-only loop on every thread) and streaming read bandwidth over the bytes already
   * resident in the arenas (the weights: nothing new is committed), each the median of `repeats`.
   */
  ceilings(repeats = 5): { fmaGflops: number; readGBps: number; readBytes: number } {
    const a0 = this.arenas[0]!;
    const out = this.scratch(a0, 64 * 4);
    const med = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
    const iters = 20_000_000;
    this.run(a0, 'fma_peak', [1000, out]);
    const fl: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      this.run(a0, 'fma_peak', [iters, out]);
      fl.push((iters * 80 * this.threads) / ((performance.now() - t) * 1e6));
    }
    let bytesRead = 0;
    const bw: number[] = [];
    for (let r = 0; r < repeats; r++) {
      let bytes = 0;
      const t = performance.now();
      for (const a of this.arenas) {
        const n = Math.floor((a.top - HEAP_START) / 64) * 64;
        if (n <= 0) continue;
        const o = this.scratch(a, 64 * 4);
        this.run(a, 'read_sum', [HEAP_START, n, o]);
        bytes += n;
      }
      const ms = performance.now() - t;
      bytesRead = bytes;
      if (bytes > 0) bw.push(bytes / (ms * 1e6));
    }
    return { fmaGflops: med(fl), readGBps: bw.length ? med(bw) : 0, readBytes: bytesRead };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      const ctl = this.ctl;
      ctl[CTL_FN] = FN_EXIT;
      Atomics.store(ctl, CTL_DONE, 0);
      Atomics.add(ctl, CTL_GEN, 1);
      Atomics.notify(ctl, CTL_GEN);
      for (const w of this.workers) w.terminate();
    }
  }

  // ------------------------------------------------------------------------------------------
  // weights

  /**
   * Upload a weight. dtype/data: 'f32' with Float32Array, or 'bf16' with Uint16Array of raw bf16 bits
   * (a Uint8Array of little-endian raw bytes is accepted for both). shape: [N, K] or [n] (vector, N=1).
   * opts.quant: 'q8' | 'q4' quantises at upload (row chunks through scratch, no full second copy).
   */
  async uploadWeight(dtype: 'f32' | 'bf16', shape: readonly number[], data: Float32Array | Uint16Array | Uint8Array,
    opts: { quant?: 'q8' | 'q4' | 'none' } = {}): Promise<WeightHandle> {
    const N = shape.length === 1 ? 1 : shape[0]!;
    const K = shape.length === 1 ? shape[0]! : shape.slice(1).reduce((x, y) => x * y, 1);
    const esz = dtype === 'f32' ? 4 : 2;
    if (data.byteLength !== N * K * esz) throw new Error(`uploadWeight: ${data.byteLength} bytes for ${dtype} [${N}, ${K}]`);
    const quant = opts.quant && opts.quant !== 'none' ? opts.quant : undefined;
    if (!quant) {
      const bytes = N * K * esz;
      const { arena, ptr } = await this.alloc(bytes);
      this.put(arena, ptr, data);
      return { arena: arena.id, format: dtype, N, K, ptr, scalesPtr: 0, bytes };
    }
    const Kp = align(K, 32);
    const nb = Kp / 32;
    const qBytes = quant === 'q8' ? N * Kp : (N * Kp) / 2;
    const bytes = align(qBytes, 64) + N * nb * 4;
    const { arena, ptr } = await this.alloc(bytes);
    const scalesPtr = ptr + align(qBytes, 64);
    const rowsPerChunk = Math.max(1, Math.floor(QUANT_CHUNK_BYTES / (K * esz)));
    const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const fn = arena.exports[quant === 'q8' ? 'quantize_q8' : 'quantize_q4']!;
    const rowQ = quant === 'q8' ? Kp : Kp / 2;
    for (let r0 = 0; r0 < N; r0 += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, N - r0);
      const s = this.scratch(arena, rows * K * esz);
      new Uint8Array(arena.buf, s, rows * K * esz).set(src.subarray(r0 * K * esz, (r0 + rows) * K * esz));
      fn(s, dtype === 'f32' ? 0 : 1, rows, K, ptr + r0 * rowQ, scalesPtr + r0 * nb * 4);
    }
    return { arena: arena.id, format: quant, N, K, ptr, scalesPtr, bytes };
  }

  /** Read a weight back as f32 (dequantised for q8/q4); for tests and debugging. */
  readWeight(w: WeightHandle): Float32Array {
    const a = this.arenas[w.arena]!;
    const out = new Float32Array(w.N * w.K);
    if (w.format === 'f32') out.set(this.f32(a, w.ptr, w.N * w.K));
    else if (w.format === 'bf16') {
      const u = new Uint16Array(a.buf, w.ptr, w.N * w.K);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < u.length; i++) o32[i] = u[i]! << 16;
    } else {
      const Kp = align(w.K, 32);
      const nb = Kp / 32;
      const sc = this.f32(a, w.scalesPtr, w.N * nb);
      const q = new Uint8Array(a.buf, w.ptr, w.format === 'q8' ? w.N * Kp : (w.N * Kp) / 2);
      for (let n = 0; n < w.N; n++) {
        for (let k = 0; k < w.K; k++) {
          const b = k >> 5;
          let v: number;
          if (w.format === 'q8') v = (q[n * Kp + k]! << 24) >> 24;
          else {
            const byte = q[(n * Kp) / 2 + b * 16 + (k & 15)]!;
            v = ((k & 31) < 16 ? byte & 15 : byte >> 4) - 8;
          }
          out[n * w.K + k] = v * sc[n * nb + b]!;
        }
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // linear

  /** y[M, N] = x[M, K] * W^T + bias. x and the result are f32; W any format. */
  linear(x: Float32Array, M: number, K: number, w: WeightHandle, bias: Float32Array | WeightHandle | null = null, out?: Float32Array): Float32Array {
    if (K !== w.K) throw new Error(`linear: K ${K} != weight K ${w.K}`);
    if (x.length < M * K) throw new Error('linear: x too short');
    const a = this.arenas[w.arena]!;
    const N = w.N;
    if (M > GEMV_MAX_M) return this.gemmChunked(x, M, K, w, bias, out);
    const xB = M * K * 4, yB = align(M * N * 4, 64);
    let extra = 0;
    const Kp = align(K, 32);
    if (w.format === 'bf16') extra = xB;
    else if (w.format === 'q8' || w.format === 'q4') extra = M * Kp * 3 + 2 * M * (Kp / 32) * 4 + 256;
    const biasB = this.biasScratch(w, bias);
    const s = this.scratch(a, align(xB, 64) + yB + biasB + extra);
    const xp = s, yp = s + align(xB, 64);
    const biasPtr = this.placeBias(a, bias, N, yp + yB);
    const ep = yp + yB + biasB;
    this.put(a, xp, x.subarray(0, M * K));
    const ex = a.exports;
    if (w.format === 'f32') {
      this.run(a, 'gemv_f32', [xp, M, K, w.ptr, N, biasPtr, yp]);
    } else if (w.format === 'bf16') {
      for (let m = 0; m < M; m++) ex.bf16_perm_x!(xp + m * K * 4, ep + m * K * 4, K);
      this.run(a, 'gemv_bf16', [xp, ep, M, K, w.ptr, N, biasPtr, yp]);
    } else {
      const nb = Kp / 32;
      const q8 = ep, q16 = align(q8 + M * Kp, 16), xs = align(q16 + M * Kp * 2, 16), xsum = xs + M * nb * 4;
      ex.quantize_act!(xp, M, K, q8, q16, xs, xsum);
      if (w.format === 'q8') this.run(a, 'gemv_q8', [q16, xs, M, K, w.ptr, w.scalesPtr, N, biasPtr, yp]);
      else this.run(a, 'gemv_q4', [q8, q16, xs, xsum, M, K, w.ptr, w.scalesPtr, N, biasPtr, yp, this.rdotScale > 0 ? 1 : 0, this.rdotScale]);
    }
    const res = out ?? new Float32Array(M * N);
    res.set(this.f32(a, yp, M * N));
    return res;
  }

  /** Scratch a bias takes: an array is copied in; a handle must be f32 in the weight's arena (none). */
  private biasScratch(w: WeightHandle, bias: Float32Array | WeightHandle | null): number {
    if (!bias) return 0;
    if (bias instanceof Float32Array) return align(w.N * 4, 64);
    if (bias.arena !== w.arena || bias.format !== 'f32') throw new Error('linear: bias handle must be f32 in the weight arena');
    return 0;
  }

  /** The kernel's bias pointer: the handle's, or `at` after copying the array there; 0 without a bias. */
  private placeBias(a: Arena, bias: Float32Array | WeightHandle | null, N: number, at: number): number {
    if (!bias) return 0;
    if (!(bias instanceof Float32Array)) return bias.ptr;
    this.put(a, at, bias.subarray(0, N));
    return at;
  }

  /**
   * GEMM path of `linear`, over blocks of at most GEMM_ROWS rows: the arena scratch (x, packed x, y)
   * stays a few MiB whatever M is (a 1024x768 vision encode would otherwise commit ~150 MiB of
   * scratch above the weights of every arena it touches, resident for the rest of the process), at
   * the price of unpacking the weight panels once per block (<2 % at 512 rows).
   */
  private gemmChunked(x: Float32Array, M: number, K: number, w: WeightHandle, bias: Float32Array | WeightHandle | null, out?: Float32Array): Float32Array {
    const a = this.arenas[w.arena]!;
    const N = w.N;
    const mb = Math.min(M, this.gemmRows);
    const int = this.intGemm.has(w.format);
    // q4 with an exact relaxed int8 dot: int8 activations (the relaxed build's probe said so)
    const i8 = int && w.format === 'q4' && this.rdotExact;
    const Kp = align(K, 32), nb = Kp / 32;
    const xB = align(mb * K * 4, 64), yB = align(mb * N * 4, 64);
    // integer paths: A is packed from the int16 (Kp/2 pairs) or int8 (Kp/4 quads) activations, 4 bytes each
    const apB = align(Math.ceil(mb / 4) * 16 * (i8 ? Kp / 4 : int ? Kp / 2 : K), 64);
    const qB = int ? align(mb * Kp * 2, 64) + 2 * align(mb * nb * 4, 64) : 0;
    const biasB = this.biasScratch(w, bias);
    const s = this.scratch(a, xB + yB + biasB + this.threads * GEMM_SCRATCH_PER_THREAD + apB + qB);
    const xp = s, yp = s + xB, bp = yp + yB, ws = bp + biasB, apk = ws + this.threads * GEMM_SCRATCH_PER_THREAD;
    const q16 = apk + apB, xs = q16 + align(mb * Kp * 2, 64), xsum = xs + align(mb * nb * 4, 64);
    const biasPtr = this.placeBias(a, bias, N, bp);
    const res = out ?? new Float32Array(M * N);
    for (let m0 = 0; m0 < M; m0 += mb) {
      const m = Math.min(mb, M - m0);
      this.put(a, xp, x.subarray(m0 * K, (m0 + m) * K));
      if (int) {
        // int8 values + block sums for the relaxed q4 path, int16 values otherwise; packed as 4-byte elements
        this.run(a, 'quantize_act_rows', [xp, m, K, q16, i8 ? 0 : 1, xs, i8 ? xsum : 0], m >= 16);
        this.run(a, 'pack_a', [q16, m, i8 ? Kp / 4 : Kp / 2, apk], m >= 16);
        this.run(a, 'gemm_int', [i8 ? 1 : 0, WEIGHT_TYPE[w.format], apk, m, K, w.ptr, w.scalesPtr, N, biasPtr, yp, xs, xsum, ws, GEMM_SCRATCH_PER_THREAD]);
      } else {
        this.run(a, 'pack_a', [xp, m, K, apk], m >= 16);
        this.run(a, 'gemm', [WEIGHT_TYPE[w.format], apk, m, K, w.ptr, w.scalesPtr, N, biasPtr, yp, ws, GEMM_SCRATCH_PER_THREAD]);
      }
      res.set(this.f32(a, yp, m * N), m0 * N);
    }
    return res;
  }

  // ------------------------------------------------------------------------------------------
  // elementwise / normalisation (run in arena 0)

  private vec(v: Float32Array | WeightHandle, a: Arena, at: number): number {
    if (v instanceof Float32Array) {
      this.put(a, at, v);
      return at;
    }
    if (v.arena !== a.id || v.format !== 'f32') throw new Error('vector weight handle must be f32 in arena 0');
    return v.ptr;
  }

  /** y = x / sqrt(mean(x^2) + eps) * weight, per row of `dim`. */
  rmsnorm(x: Float32Array, rows: number, dim: number, weight: Float32Array | WeightHandle, eps: number, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = rows * dim;
    const s = this.scratch(a, align(n * 4, 64) + align(dim * 4, 64));
    const wp = this.vec(weight, a, s + align(n * 4, 64));
    this.put(a, s, x.subarray(0, n));
    this.run(a, 'rmsnorm', [s, dim, wp, s, dim, rows, dim, eps], n >= PAR_MIN_ELEMS && rows > 1);
    return this.out(a, s, n, out);
  }

  /** torch LayerNorm over rows of `dim` with weight and bias. */
  layernorm(x: Float32Array, rows: number, dim: number, weight: Float32Array | WeightHandle, bias: Float32Array | WeightHandle, eps: number, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = rows * dim;
    const s = this.scratch(a, align(n * 4, 64) + 2 * align(dim * 4, 64));
    const wp = this.vec(weight, a, s + align(n * 4, 64));
    const bp = this.vec(bias, a, s + align(n * 4, 64) + align(dim * 4, 64));
    this.put(a, s, x.subarray(0, n));
    this.run(a, 'layernorm', [s, wp, bp, s, rows, dim, eps], n >= PAR_MIN_ELEMS && rows > 1);
    return this.out(a, s, n, out);
  }

  /**
   * NeoX half-split rotary embedding on x [T, nH, D] (token stride nH*D), returns the rotated copy.
   * cos/sin: [T, rot/2]; rot defaults to D.
   */
  ropeNeox(x: Float32Array, T: number, nH: number, D: number, cos: Float32Array, sin: Float32Array, rot = D, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = T * nH * D, h = (T * rot) / 2;
    const s = this.scratch(a, align(n * 4, 64) + 2 * align(h * 4, 64));
    const cp = s + align(n * 4, 64), sp = cp + align(h * 4, 64);
    this.put(a, s, x.subarray(0, n));
    this.put(a, cp, cos.subarray(0, h));
    this.put(a, sp, sin.subarray(0, h));
    this.run(a, 'rope_neox', [s, T, nH, D, nH * D, cp, sp, rot], n >= PAR_MIN_ELEMS && T * nH > 1);
    return this.out(a, s, n, out);
  }

  /** silu(gate) * up, elementwise (same length). */
  siluMul(gate: Float32Array, up: Float32Array, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = gate.length;
    const s = this.scratch(a, 2 * align(n * 4, 64));
    const u = s + align(n * 4, 64);
    this.put(a, s, gate);
    this.put(a, u, up.subarray(0, n));
    this.run(a, 'silu_mul', [s, n, u, n, s, n, 1, n], n >= PAR_MIN_ELEMS);
    return this.out(a, s, n, out);
  }

  geluTanh(x: Float32Array, out?: Float32Array): Float32Array {
    return this.unary('gelu_tanh', x, out);
  }

  /** Exact GELU 0.5 x (1 + erf(x / sqrt 2)), erf in f64. */
  geluErf(x: Float32Array, out?: Float32Array): Float32Array {
    return this.unary('gelu_erf', x, out);
  }

  /** erf evaluated by the wasm module in f64 (the function GELU-erf uses). */
  erf(x: number): number {
    return this.arenas[0]!.exports.erf_f64!(x) as number;
  }

  private unary(name: 'gelu_tanh' | 'gelu_erf', x: Float32Array, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = x.length;
    const s = this.scratch(a, align(n * 4, 64));
    this.put(a, s, x);
    this.run(a, name, [s, s, n], n >= PAR_MIN_ELEMS / 4);
    return this.out(a, s, n, out);
  }

  /** Row-wise softmax over rows x cols. */
  softmax(x: Float32Array, rows: number, cols: number, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = rows * cols;
    const s = this.scratch(a, align(n * 4, 64));
    this.put(a, s, x.subarray(0, n));
    this.run(a, 'softmax', [s, rows, cols], n >= PAR_MIN_ELEMS && rows > 1);
    return this.out(a, s, n, out);
  }

  add(x: Float32Array, y: Float32Array, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const n = x.length;
    const s = this.scratch(a, 2 * align(n * 4, 64));
    const t = s + align(n * 4, 64);
    this.put(a, s, x);
    this.put(a, t, y.subarray(0, n));
    this.run(a, 'add', [s, t, s, n], n >= 4 * PAR_MIN_ELEMS);
    return this.out(a, s, n, out);
  }

  private out(a: Arena, ptr: number, n: number, out?: Float32Array): Float32Array {
    const r = out ?? new Float32Array(n);
    r.set(this.f32(a, ptr, n));
    return r;
  }

  // ------------------------------------------------------------------------------------------
  // attention

  private attnScratchPerThread(keys: number, D: number): number {
    // assembly attention (blocked path): packed K (nkPad*D) and V (nkPad*Dp), S and packed P (AQB*nkPad
    // each), packed Q (AQB*D), a 4x8 tile and AQB row sums; AQB = 16. The direct path needs nkPad.
    const nkPad = align(Math.max(keys, 1), 8), Dp = align(D, 8), AQB = 16;
    return align((nkPad * D + nkPad * Dp + 2 * AQB * nkPad + AQB * D + 32 + AQB + 64) * 4, 64);
  }

  /**
   * Attention with q, k, v all given: q [T, nH, D], k/v [kvLen, nKV, D] token-major, out [T, nH, D].
   * Causal (kvLen = past + T) unless p.cuSeqlens is given (non-causal within each segment, kvLen = T).
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams, out?: Float32Array): Float32Array {
    const a = this.arenas[0]!;
    const { T, nH, nKV, D } = p;
    const past = p.cuSeqlens ? 0 : (p.past ?? 0);
    const kvLen = past + T;
    const qn = T * nH * D, kn = kvLen * nKV * D;
    const cu = p.cuSeqlens ? Int32Array.from(p.cuSeqlens) : null;
    const maxKeys = cu ? maxSeg(cu) : kvLen;
    const sst = this.attnScratchPerThread(maxKeys, D);
    const s = this.scratch(a, 2 * align(qn * 4, 64) + 2 * align(kn * 4, 64) + align((cu?.length ?? 0) * 4 + 4, 64) + this.threads * sst);
    const qp = s, kp = qp + align(qn * 4, 64), vp = kp + align(kn * 4, 64), op = vp + align(kn * 4, 64);
    const cp = op + align(qn * 4, 64), sp = cp + align((cu?.length ?? 0) * 4 + 4, 64);
    this.put(a, qp, q.subarray(0, qn));
    this.put(a, kp, k.subarray(0, kn));
    this.put(a, vp, v.subarray(0, kn));
    if (cu) this.put(a, cp, cu);
    const scale = p.scale ?? 1 / Math.sqrt(D);
    this.run(a, 'attention', [qp, nH * D, kp, nKV * D, D, vp, nKV * D, D, op, nH * D, T, nH, nKV, D, past,
      cu ? cp : 0, cu ? cu.length - 1 : 0, scale, sp, sst]);
    return this.out(a, op, qn, out);
  }

  /**
   * Causal attention of T queries q [T, nH, D] (positions past..past+T-1) against keys/values that already
   * live in arena `arena`, token-major with token stride `kvStride` elements (head stride D): keys at kPtr,
   * values at vPtr, rows 0..past+T-1.
   */
  attentionResident(q: Float32Array, arena: number, kPtr: number, vPtr: number, kvStride: number, T: number, nH: number, nKV: number, D: number,
    past: number, scale?: number, out?: Float32Array): Float32Array {
    const a = this.arenas[arena]!;
    const qn = T * nH * D;
    const sst = this.attnScratchPerThread(past + T, D);
    const s = this.scratch(a, 2 * align(qn * 4, 64) + this.threads * sst);
    const qp = s, op = s + align(qn * 4, 64), sp = op + align(qn * 4, 64);
    this.put(a, qp, q.subarray(0, qn));
    this.run(a, 'attention', [qp, nH * D, kPtr, kvStride, D, vPtr, kvStride, D, op, nH * D, T, nH, nKV, D, past,
      0, 0, scale ?? 1 / Math.sqrt(D), sp, sst]);
    return this.out(a, op, qn, out);
  }

  /** Allocate a KV cache for `layers` layers (f32, per layer keys [nKV, capacity, D] then values). */
  async createKVCache(layers: number, nKV: number, headDim: number, capacity: number): Promise<KVCacheHandle> {
    const bytes = layers * 2 * nKV * capacity * headDim * 4;
    const { arena, ptr } = await this.alloc(bytes);
    return { arena: arena.id, layers, nKV, headDim, capacity, ptr, bytes };
  }

  private kvPtrs(c: KVCacheHandle, layer: number): { kp: number; vp: number } {
    const per = c.nKV * c.capacity * c.headDim * 4;
    const kp = c.ptr + layer * 2 * per;
    return { kp, vp: kp + per };
  }

  /** Write T new token rows k/v [T, nKV, D] at positions pos..pos+T-1 of layer `layer`. */
  writeKV(c: KVCacheHandle, layer: number, pos: number, T: number, k: Float32Array, v: Float32Array): void {
    if (pos + T > c.capacity) throw new Error('writeKV: capacity exceeded');
    const a = this.arenas[c.arena]!;
    const { kp, vp } = this.kvPtrs(c, layer);
    const D = c.headDim;
    for (let g = 0; g < c.nKV; g++) {
      const kd = this.f32(a, kp + ((g * c.capacity + pos) * D) * 4, T * D);
      const vd = this.f32(a, vp + ((g * c.capacity + pos) * D) * 4, T * D);
      for (let t = 0; t < T; t++) {
        kd.set(k.subarray((t * c.nKV + g) * D, (t * c.nKV + g + 1) * D), t * D);
        vd.set(v.subarray((t * c.nKV + g) * D, (t * c.nKV + g + 1) * D), t * D);
      }
    }
  }

  /**
   * Causal attention of T new queries q [T, nH, D] at positions past..past+T-1 against the cache of `layer`
   * (keys 0..past+T-1 must have been written).
   */
  attentionCached(q: Float32Array, c: KVCacheHandle, layer: number, T: number, nH: number, past: number, scale?: number, out?: Float32Array): Float32Array {
    const a = this.arenas[c.arena]!;
    const D = c.headDim;
    const qn = T * nH * D;
    const sst = this.attnScratchPerThread(past + T, D);
    const s = this.scratch(a, 2 * align(qn * 4, 64) + this.threads * sst);
    const qp = s, op = s + align(qn * 4, 64), sp = op + align(qn * 4, 64);
    this.put(a, qp, q.subarray(0, qn));
    const { kp, vp } = this.kvPtrs(c, layer);
    this.run(a, 'attention', [qp, nH * D, kp, D, c.capacity * D, vp, D, c.capacity * D, op, nH * D, T, nH, c.nKV, D, past,
      0, 0, scale ?? 1 / Math.sqrt(D), sp, sst]);
    return this.out(a, op, qn, out);
  }
}

function maxSeg(cu: Int32Array): number {
  let m = 0;
  for (let i = 0; i + 1 < cu.length; i++) m = Math.max(m, cu[i + 1]! - cu[i]!);
  return m;
}

async function wasmPath(b: WasmBuild, dir?: string | URL): Promise<URL> {
  const base = dir === undefined ? new URL('../../../wasm/', import.meta.url) : await dirURL(dir);
  return new URL(`kernels-${b}.wasm`, base);
}

function waitFor(w: PoolWorker, pred: (m: { type: string; id?: number }) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const offMsg = w.onMessage((m) => {
      if (pred(m)) {
        offMsg();
        offErr();
        resolve();
      }
    });
    const offErr = w.onError((e) => {
      offMsg();
      offErr();
      reject(e);
    });
  });
}
