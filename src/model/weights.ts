// Loads checkpoint tensors into a backend, checking each shape against what the config
// implies, so that a checkpoint that does not fit its config.json fails with the tensor's
// name and both shapes.
import { QwenError } from "../errors.js";
import type { TensorStore } from "../io/checkpoint.js";
import { DTYPE_BYTES, type SafeDType } from "../io/safetensors.js";
import type { Backend, Weight, WeightFormat, WeightSource } from "../tensor/backend.js";
import { numel } from "../tensor/backend.js";

export interface LoadOptions {
  /** Storage for matrix weights (linear layers, experts, embeddings); vectors stay f32. */
  matmulFormat?: WeightFormat;
  /** Called after each tensor (for progress bars). */
  onTensor?: (name: string, bytes: number) => void;
  /** Bytes loaded so far and the checkpoint's weight bytes (Qwen3VLModel.load). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export class WeightLoader {
  constructor(
    readonly store: TensorStore,
    readonly backend: Backend,
    readonly opts: LoadOptions = {},
  ) {}

  has(name: string): boolean {
    return this.store.has(name);
  }

  private info(name: string, shape: readonly number[], why: string) {
    if (!this.store.has(name)) {
      throw new QwenError(`${this.store.description}: missing tensor ${name} (expected shape [${shape.join(", ")}]${why ? ` from ${why}` : ""})`);
    }
    const info = this.store.info(name);
    if (!same(info.shape, shape)) {
      throw new QwenError(
        `${this.store.description}: tensor ${name} has shape [${info.shape.join(", ")}] but the config needs [${shape.join(", ")}]${why ? ` (${why})` : ""}`,
      );
    }
    if (!["F32", "BF16", "F16", "F64"].includes(info.dtype)) {
      throw new QwenError(`${this.store.description}: tensor ${name} has dtype ${info.dtype}; weights must be F32, BF16 or F16`);
    }
    return info;
  }

  private format(dtype: SafeDType, matmul: boolean): WeightFormat {
    if (!matmul) return "f32";
    if (this.opts.matmulFormat) return this.opts.matmulFormat;
    return dtype === "BF16" ? "bf16" : "f32";
  }

  /** A whole tensor, optionally viewed with another shape of the same size. */
  load(name: string, shape: readonly number[], o: { matmul?: boolean; viewAs?: readonly number[]; why?: string } = {}): Weight {
    const info = this.info(name, shape, o.why ?? "");
    const store = this.store;
    const src: WeightSource = {
      name,
      dtype: info.dtype,
      shape: o.viewAs ?? shape,
      readInto: (dst) => store.readInto(name, dst),
      readRange: (off, dst) => store.readRange(name, off, dst),
    };
    const w = this.backend.loadWeight(src, { format: this.format(info.dtype, o.matmul ?? false) });
    this.opts.onTensor?.(name, numel(shape) * DTYPE_BYTES[info.dtype]);
    return w;
  }

  /** Rows [start, end) of a 2-D or 1-D tensor (e.g. q, k, v out of a fused qkv). */
  loadRows(name: string, shape: readonly number[], start: number, end: number, o: { matmul?: boolean; why?: string } = {}): Weight {
    const info = this.info(name, shape, o.why ?? "");
    const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    const es = DTYPE_BYTES[info.dtype];
    const store = this.store;
    const src: WeightSource = {
      name: `${name}[${start}:${end}]`,
      dtype: info.dtype,
      shape: [end - start, ...shape.slice(1)],
      readInto: (dst) => store.readRange(name, start * rowElems * es, dst),
      readRange: (off, dst) => store.readRange(name, start * rowElems * es + off, dst),
    };
    return this.backend.loadWeight(src, { format: this.format(info.dtype, o.matmul ?? false) });
  }

  /**
   * A stacked [E, A, B] tensor used as x @ W[e] (the MoE expert layout), re-laid-out to
   * [E, B, A] so every weight the backend sees is [out, in]. One expert at a time, so no
   * second copy of a whole layer's experts is made.
   */
  loadTransposedExperts(name: string, shape: readonly [number, number, number], why = ""): Weight {
    const info = this.info(name, shape, why);
    const [E, A, B] = shape;
    const es = DTYPE_BYTES[info.dtype];
    const store = this.store;
    const src: WeightSource = {
      name,
      dtype: info.dtype,
      shape: [E, B, A],
      readInto: (dst) => src.readRange(0, dst),
      // Any byte range of the re-laid-out tensor, one source expert at a time.
      readRange: (off, dst) => {
        const per = A * B * es;
        const one = new Uint8Array(per), t = new Uint8Array(per);
        let done = 0;
        while (done < dst.byteLength) {
          const at = off + done, e = Math.floor(at / per), inner = at - e * per;
          store.readRange(name, e * per, one);
          transposeInto(one, t, A, B, es);
          const n = Math.min(per - inner, dst.byteLength - done);
          dst.set(t.subarray(inner, inner + n), done);
          done += n;
        }
      },
    };
    const w = this.backend.loadWeight(src, { format: this.format(info.dtype, true) });
    this.opts.onTensor?.(name, E * A * B * es);
    return w;
  }
}

/** [A, B] -> [B, A] for elements of `es` bytes. */
function transposeInto(src: Uint8Array, dst: Uint8Array, A: number, B: number, es: number): void {
  if (es === 2 || es === 4) {
    const S = es === 2 ? new Uint16Array(src.buffer, src.byteOffset, A * B) : new Uint32Array(src.buffer, src.byteOffset, A * B);
    const aligned = dst.byteOffset % es === 0;
    const buf = aligned ? dst : new Uint8Array(A * B * es);
    const D = es === 2 ? new Uint16Array(buf.buffer, buf.byteOffset, A * B) : new Uint32Array(buf.buffer, buf.byteOffset, A * B);
    // Blocked so both sides stay in cache (a plain strided loop is ~10x slower at 2048x1536).
    const TB = 64;
    for (let a0 = 0; a0 < A; a0 += TB) {
      const a1 = Math.min(A, a0 + TB);
      for (let b0 = 0; b0 < B; b0 += TB) {
        const b1 = Math.min(B, b0 + TB);
        for (let a = a0; a < a1; a++) for (let b = b0; b < b1; b++) D[b * A + a] = S[a * B + b]!;
      }
    }
    if (!aligned) dst.set(buf);
    return;
  }
  for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) for (let k = 0; k < es; k++) dst[(b * A + a) * es + k] = src[(a * B + b) * es + k]!;
}
