// Merge-window order: patch rows are grouped so that every 4 consecutive rows form one
// 2x2 block (top-left, top-right, bottom-left, bottom-right), blocks in raster order. The
// processor's patch layout, the position grid, the 2-D rotary and the merger all use it.

/** [t, h, w] in patches. */
export type Grid = readonly [number, number, number];

/** (row, col) pairs, flattened, for one temporal patch of an h x w patch grid. */
export function mergeWindowOrder(h: number, w: number, m: number): Int32Array {
  const out = new Int32Array(h * w * 2);
  let k = 0;
  for (let bh = 0; bh < h / m; bh++)
    for (let bw = 0; bw < w / m; bw++)
      for (let mh = 0; mh < m; mh++)
        for (let mw = 0; mw < m; mw++) {
          out[k++] = bh * m + mh;
          out[k++] = bw * m + mw;
        }
  return out;
}
