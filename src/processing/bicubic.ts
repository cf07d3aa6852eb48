// Bicubic resize of 8-bit interleaved images with the same arithmetic as Pillow's
// Image.resize(size, Image.BICUBIC): Keys cubic (a = -0.5) whose support is widened by the
// scale factor when shrinking, coefficients normalised to sum 1 and converted to 22-bit
// fixed point, a horizontal pass then a vertical pass, each rounded and clamped to uint8.

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS; // 4194304
const HALF = 1 << (PRECISION_BITS - 1);
const SUPPORT = 2.0;

function cubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per-output-pixel source window [start, count] and fixed-point weights (ksize per pixel). */
interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [start0, count0, start1, count1, ...]
  weights: Int32Array; // outSize * ksize
}

function computeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const tmp = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts to int (truncation toward zero) after adding 0.5.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const n = xmax - xmin;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      const w = cubic((x + xmin - center + 0.5) * ss);
      tmp[x] = w;
      sum += w;
    }
    const base = xx * ksize;
    for (let x = 0; x < n; x++) {
      const w = sum !== 0 ? tmp[x]! / sum : tmp[x]!;
      weights[base + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = n;
  }
  return { ksize, bounds, weights };
}

// Sums stay inside int32 as in Pillow (|weights| sum to < 2 and pixels are < 256), so the
// arithmetic shift is Pillow's floor division by 2^22.
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes an interleaved uint8 image (`channels` values per pixel, row-major) to outW x outH.
 * Returns a new buffer (a copy when the size is unchanged, as Pillow does).
 */
export function resizeBicubic(src: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number): Uint8Array {
  if (src.length !== width * height * channels) throw new Error(`resizeBicubic: buffer has ${src.length} values, expected ${width}x${height}x${channels}`);
  if (outW <= 0 || outH <= 0) throw new Error(`resizeBicubic: bad output size ${outW}x${outH}`);
  const needH = outW !== width;
  const needV = outH !== height;
  if (!needH && !needV) return src.slice();
  const C = channels;
  const vert = computeCoeffs(height, outH);
  // Only the rows the vertical pass reads are resampled horizontally.
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
  let cur = src;
  let curW = width;
  let rowOffset = 0; // index of cur's row 0 in the source
  if (needH) {
    const hz = computeCoeffs(width, outW);
    const rows = yLast - yFirst;
    const out = new Uint8Array(outW * rows * C);
    const { ksize, bounds, weights } = hz;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + yFirst) * width * C;
      const outRow = y * outW * C;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2]!;
        const n = bounds[xx * 2 + 1]!;
        const kb = xx * ksize;
        if (C === 3) {
          let s0 = HALF, s1 = HALF, s2 = HALF;
          let p = inRow + xmin * 3;
          for (let x = 0; x < n; x++, p += 3) {
            const w = weights[kb + x]!;
            s0 += src[p]! * w;
            s1 += src[p + 1]! * w;
            s2 += src[p + 2]! * w;
          }
          const o = outRow + xx * 3;
          out[o] = clip8(s0);
          out[o + 1] = clip8(s1);
          out[o + 2] = clip8(s2);
        } else {
          for (let c = 0; c < C; c++) {
            let ss = HALF;
            let p = inRow + xmin * C + c;
            for (let x = 0; x < n; x++, p += C) ss += src[p]! * weights[kb + x]!;
            out[outRow + xx * C + c] = clip8(ss);
          }
        }
      }
    }
    cur = out;
    curW = outW;
    rowOffset = yFirst;
  }
  if (!needV) return cur;
  const out = new Uint8Array(curW * outH * C);
  const { ksize, bounds, weights } = vert;
  const rowLen = curW * C;
  // Row-at-a-time accumulation keeps the reads contiguous; the integer sums are exact.
  const acc = new Int32Array(rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - rowOffset;
    const n = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const w = weights[kb + y]!;
      const rb = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i]! += cur[rb + i]! * w;
    }
    const outRow = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      const v = acc[i]! >> PRECISION_BITS;
      out[outRow + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}
