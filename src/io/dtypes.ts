// Safetensors element types and float conversions, free of Node APIs (the backends use them in
// browsers too).
import { QwenError } from "../errors.js";

export type SafeDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL" | "U16" | "U32" | "U64";

export const DTYPE_BYTES: Record<SafeDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
};

/** Widen float bytes to float32. bf16 -> f32 is exact (upper 16 bits). */
export function toFloat32(dtype: SafeDType, bytes: Uint8Array, what = "tensor"): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  switch (dtype) {
    case "F32": {
      if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
      return new Float32Array(bytes.slice().buffer);
    }
    case "BF16": {
      const out = new Float32Array(n);
      const o32 = new Uint32Array(out.buffer);
      const src = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.slice().buffer);
      for (let i = 0; i < n; i++) o32[i] = src[i]! << 16;
      return out;
    }
    case "F16": {
      const out = new Float32Array(n);
      const src = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.slice().buffer);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]!);
      return out;
    }
    case "F64": {
      const src = bytes.byteOffset % 8 === 0 ? new Float64Array(bytes.buffer, bytes.byteOffset, n) : new Float64Array(bytes.slice().buffer);
      return Float32Array.from(src);
    }
    default:
      throw new QwenError(`${what}: dtype ${dtype} is not a float type`);
  }
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round-to-nearest-even float32 -> bf16 bits. */
export function floatToBf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff)) return 0x7fc0;
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
