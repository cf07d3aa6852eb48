// 2-D rotary position embedding of the vision tower: the first half of each head's
// rotary frequencies turns with the patch row, the second half with the patch column.
import type { Backend, Tensor } from "../../tensor/backend.js";
import { mergeWindowOrder, type Grid } from "./merge-window.js";

const f = Math.fround;

export function visionRotaryTables(
  grids: readonly Grid[], headDim: number, mergeSize: number, theta = 10000,
): { cos: Float32Array; sin: Float32Array; rows: number } {
  const R = headDim / 2; // rotary sub-dimension
  const nf = R / 2;
  const inv = new Float32Array(nf);
  for (let k = 0; k < nf; k++) inv[k] = f(1 / f(theta ** f((2 * k) / R)));
  let rows = 0;
  for (const [t, h, w] of grids) rows += t * h * w;
  const cos = new Float32Array(rows * headDim), sin = new Float32Array(rows * headDim);
  let r = 0;
  for (const [t, h, w] of grids) {
    const order = mergeWindowOrder(h, w, mergeSize);
    for (let ti = 0; ti < t; ti++) {
      for (let p = 0; p < order.length; p += 2) {
        const row = order[p]!, col = order[p + 1]!;
        const o = r * headDim;
        for (let k = 0; k < nf; k++) {
          const a = f(row * inv[k]!), b = f(col * inv[k]!);
          const ca = f(Math.cos(a)), sa = f(Math.sin(a)), cb = f(Math.cos(b)), sb = f(Math.sin(b));
          cos[o + k] = ca; sin[o + k] = sa; cos[o + nf + k] = cb; sin[o + nf + k] = sb;
          cos[o + R + k] = ca; sin[o + R + k] = sa; cos[o + R + nf + k] = cb; sin[o + R + nf + k] = sb;
        }
        r++;
      }
    }
  }
  return { cos, sin, rows };
}

export function visionRotary(backend: Backend, grids: readonly Grid[], headDim: number, mergeSize: number): { cos: Tensor; sin: Tensor } {
  const t = visionRotaryTables(grids, headDim, mergeSize);
  return { cos: backend.fromArray(t.cos, [t.rows, headDim]), sin: backend.fromArray(t.sin, [t.rows, headDim]) };
}
