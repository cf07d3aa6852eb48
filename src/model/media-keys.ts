// Content keys for images and videos, so a kept KV cache is reused only for the very same
// pixels (same grid and same values), never for a different picture of the same size.
import type { Grid } from "./vision/merge-window.js";

/** FNV-1a over the float bits, one key per item (grid + pixel rows of that item). */
export function mediaKeys(v: { pixelValues: Float32Array; grids: readonly Grid[] }): string[] {
  const bits = new Uint32Array(v.pixelValues.buffer, v.pixelValues.byteOffset, v.pixelValues.length);
  const width = v.grids.length ? v.pixelValues.length / v.grids.reduce((a, [t, h, w]) => a + t * h * w, 0) : 0;
  const keys: string[] = [];
  let row = 0;
  for (const [t, h, w] of v.grids) {
    const n = t * h * w * width;
    let h1 = 0x811c9dc5, h2 = 0x1000193 ^ n;
    const start = row * width;
    for (let i = start; i < start + n; i++) {
      const x = bits[i]!;
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h2 = Math.imul(h2 ^ (x >>> 7), 0x5bd1e995);
    }
    keys.push(`${t}x${h}x${w}:${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`);
    row += t * h * w;
  }
  return keys;
}
