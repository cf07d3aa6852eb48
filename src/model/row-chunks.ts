// Row-wise feed-forward blocks (the vision MLP, the text SwiGLU MLP) applied in chunks of rows:
// their intermediate activations are [rows, intermediate], 4x the hidden width, so a 1024x768 image
// (3072 patches x 4096 x 4 bytes = 50 MB per intermediate) or a long prompt would otherwise hold
// several such tensors at once. Every row is computed exactly as without chunking.
import type { Backend, Tensor } from "../tensor/backend.js";

/** Rows per chunk of a row-wise block. */
export const FFN_CHUNK_ROWS = 1024;

/**
 * dst += f(x), row by row, with f run on at most `rows` rows of x at a time. The chunks are of
 * (nearly) equal size, never a short tail: a backend may pick another kernel for a handful of rows
 * (the wasm backend's GEMV below 5 rows sums in another order), and chunking must not change values.
 */
export function addRowwise(b: Backend, dst: Tensor, x: Tensor, f: (rows: Tensor) => Tensor, rows = FFN_CHUNK_ROWS): void {
  const S = x.shape[0]!;
  if (S <= rows) {
    const y = f(x);
    b.addInPlace(dst, y);
    b.release(y);
    return;
  }
  const n = Math.ceil(S / rows), base = Math.floor(S / n), extra = S % n;
  for (let c = 0, r0 = 0; c < n; c++) {
    const r1 = r0 + base + (c < extra ? 1 : 0);
    const xc = b.sliceRows(x, r0, r1);
    const y = f(xc);
    b.release(xc);
    const idx = new Int32Array(r1 - r0);
    for (let i = 0; i < idx.length; i++) idx[i] = r0 + i;
    b.scatterAddRows(dst, idx, y);
    b.release(y);
    r0 = r1;
  }
}
