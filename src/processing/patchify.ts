// Rescale + normalise (x/255 - 0.5) / 0.5 and the merge-window patch layout of Qwen3-VL
// pixel_values (spec 3.5): rows grouped by temporal patch, 2x2 merge block (raster order),
// position inside the block; each row is the flattened [C=3][T=2][16][16] cube.

export const PATCH_SIZE = 16;
export const MERGE_SIZE = 2;
export const TEMPORAL_PATCH_SIZE = 2;
/** Values per pixel_values row: 3 * 2 * 16 * 16. */
export const PATCH_DIM = 3 * TEMPORAL_PATCH_SIZE * PATCH_SIZE * PATCH_SIZE;

/**
 * uint8 -> normalised float32, computed like the reference: x * (1/255) in float64 rounded to
 * float32, then (v - 0.5) / 0.5 in float32.
 */
export const IMAGE_NORMALIZE_LUT: Float32Array = (() => {
  const lut = new Float32Array(256);
  const rescale = 0.00392156862745098; // the preprocessor's rescale_factor (1/255)
  for (let x = 0; x < 256; x++) {
    const v = Math.fround(x * rescale);
    lut[x] = Math.fround(Math.fround(v - 0.5) / 0.5);
  }
  return lut;
})();

/**
 * The video processor's fused form (torch fast path): (x - 127.5) / 127.5 in float32. It differs
 * from the image form by at most one float32 ulp on some values.
 */
export const VIDEO_NORMALIZE_LUT: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let x = 0; x < 256; x++) lut[x] = Math.fround((x - 127.5) / 127.5);
  return lut;
})();

export interface PatchifyResult {
  pixelValues: Float32Array;
  /** [t, h, w] in patches. */
  grid: [number, number, number];
}

/**
 * Patchifies frames of equal size (RGB interleaved uint8, `height` x `width`, both multiples of
 * 32). The frame list is padded to a multiple of the temporal patch size by repeating the last
 * frame (an image becomes two identical frames). `lut` maps uint8 to the normalised value.
 */
export function patchify(frames: readonly Uint8Array[], height: number, width: number, lut: Float32Array = IMAGE_NORMALIZE_LUT, out?: Float32Array): PatchifyResult {
  const P = PATCH_SIZE, M = MERGE_SIZE, TP = TEMPORAL_PATCH_SIZE;
  if (frames.length === 0) throw new Error("patchify: no frames");
  if (height % (P * M) !== 0 || width % (P * M) !== 0) throw new Error(`patchify: ${width}x${height} is not a multiple of ${P * M}`);
  for (const f of frames) if (f.length !== height * width * 3) throw new Error("patchify: frame size mismatch");
  const gt = Math.ceil(frames.length / TP);
  const gh = height / P;
  const gw = width / P;
  const rows = gt * gh * gw;
  const pv = out ?? new Float32Array(rows * PATCH_DIM);
  if (pv.length < rows * PATCH_DIM) throw new Error("patchify: output buffer too small");
  const stride = width * 3;
  let q = 0;
  for (let t = 0; t < gt; t++) {
    const fr0 = frames[Math.min(t * TP, frames.length - 1)]!;
    const fr1 = frames[Math.min(t * TP + 1, frames.length - 1)]!;
    for (let bh = 0; bh < gh / M; bh++) {
      for (let bw = 0; bw < gw / M; bw++) {
        for (let mh = 0; mh < M; mh++) {
          for (let mw = 0; mw < M; mw++) {
            const y0 = (bh * M + mh) * P;
            const x0 = (bw * M + mw) * P;
            for (let c = 0; c < 3; c++) {
              for (let tt = 0; tt < TP; tt++) {
                const fr = tt === 0 ? fr0 : fr1;
                for (let py = 0; py < P; py++) {
                  let p = (y0 + py) * stride + x0 * 3 + c;
                  for (let px = 0; px < P; px++, p += 3) pv[q++] = lut[fr[p]!]!;
                }
              }
            }
          }
        }
      }
    }
  }
  return { pixelValues: out ? pv.subarray(0, rows * PATCH_DIM) : pv, grid: [gt, gh, gw] };
}
