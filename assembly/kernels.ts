// Qwen3-VL WebAssembly compute kernels (AssemblyScript).
//
// Built twice by scripts/build-wasm.mjs: once with SIMD128 only and once with relaxed SIMD
// (ASC_FEATURE_RELAXED_SIMD). Everything works on raw pointers into an imported shared memory;
// no AssemblyScript-managed objects are used (runtime "stub"). Every exported kernel takes
// (tid, nth) as its last two arguments and computes its own share of the work, so the same
// call is made on the main thread (tid 0) and on every pool worker (tid 1..nth-1).
//
// Conventions: matrices are row-major; weights W are [N, K] ("out x in"), y = x * W^T (+ bias).
// Pointers are byte addresses; strides are in elements unless named *B (bytes).
//
// Quantised weight layouts (K padded to Kp = ceil(K/32)*32 with zeros):
//   q8: qs  = N * Kp int8 values, row n at qs + n*Kp;  scales = N * (Kp/32) f32, w = q * scale.
//   q4: qs  = N * (Kp/2) bytes, row n at qs + n*Kp/2; block b of row n is 16 bytes at qs + n*Kp/2 + 16*b,
//       byte j holds element 32b+j in its low nibble and element 32b+j+16 in its high nibble, each
//       stored as q+8 (q in [-8, 7]); scales = N * (Kp/32) f32, w = (nibble - 8) * scale.

// ---------------------------------------------------------------------------------------------
// helpers

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function hsumi(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

@inline function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

// Range [start, end) of `n` items for thread tid, chunks aligned to `align` items.
@inline function partStart(n: i32, tid: i32, nth: i32, align: i32): i32 {
  const blocks = (n + align - 1) / align;
  const per = (blocks + nth - 1) / nth;
  return min(n, tid * per * align);
}
@inline function partEnd(n: i32, tid: i32, nth: i32, align: i32): i32 {
  const blocks = (n + align - 1) / align;
  const per = (blocks + nth - 1) / nth;
  return min(n, (tid + 1) * per * align);
}

// Vector exp for f32x4: exp(x) = 2^n * e^r, |r| <= ln2/2, degree-6 polynomial (rel. err ~2e-7).
// n is rounded with the 1.5*2^23 "magic number" (its low mantissa bits then hold n, which also gives
// 2^n by an integer add and shift): no f32x4.nearest / i32x4.trunc_sat_f32x4_s, which V8 expands into
// long NaN/overflow-safe sequences on x64; the clamps use pmin/pmax (single minps/maxps) likewise.
@inline function vexp(x: v128): v128 {
  x = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88.3762626647949)), f32x4.splat(-87.3365447504));
  const magic = f32x4.splat(12582912.0);
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), magic);
  const n = f32x4.sub(t, magic);
  let r = fma(n, f32x4.splat(-0.693359375), x);
  r = fma(n, f32x4.splat(2.12194440e-4), r);
  let p = f32x4.splat(1.0 / 720.0);
  p = fma(p, r, f32x4.splat(1.0 / 120.0));
  p = fma(p, r, f32x4.splat(1.0 / 24.0));
  p = fma(p, r, f32x4.splat(1.0 / 6.0));
  p = fma(p, r, f32x4.splat(0.5));
  p = fma(p, r, f32x4.splat(1.0));
  p = fma(p, r, f32x4.splat(1.0));
  const e = i32x4.shl(i32x4.add(t, i32x4.splat(127 - 0x4b400000)), 23);
  return f32x4.mul(p, e);
}

@inline function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(x)), 0);
}

export function heap_base(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------
// dot products (one weight row at a time streams DRAM best on the target machine)

@inline function dotF32(a: usize, b: usize, K: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let k = 0;
  for (; k + 16 <= K; k += 16) {
    const o = <usize>k << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
    s1 = fma(v128.load(a + o, 16), v128.load(b + o, 16), s1);
    s2 = fma(v128.load(a + o, 32), v128.load(b + o, 32), s2);
    s3 = fma(v128.load(a + o, 48), v128.load(b + o, 48), s3);
  }
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
  }
  let s = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; k < K; k++) {
    const o = <usize>k << 2;
    s += load<f32>(a + o) * load<f32>(b + o);
  }
  return s;
}

// bf16 row dot with x pre-permuted per 8-block as [x0,x2,x4,x6,x1,x3,x5,x7] (xp) and plain x for the tail.
@inline function dotBf16(xp: usize, x: usize, w: usize, K: i32): f32 {
  const hiMask = i32x4.splat(0xffff0000);
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let k = 0;
  for (; k + 16 <= K; k += 16) {
    const wo = <usize>k << 1;
    const xo = <usize>k << 2;
    const v0 = v128.load(w + wo);
    const v1 = v128.load(w + wo, 16);
    s0 = fma(i32x4.shl(v0, 16), v128.load(xp + xo), s0);
    s1 = fma(v128.and(v0, hiMask), v128.load(xp + xo, 16), s1);
    s2 = fma(i32x4.shl(v1, 16), v128.load(xp + xo, 32), s2);
    s3 = fma(v128.and(v1, hiMask), v128.load(xp + xo, 48), s3);
  }
  for (; k + 8 <= K; k += 8) {
    const v0 = v128.load(w + (<usize>k << 1));
    s0 = fma(i32x4.shl(v0, 16), v128.load(xp + (<usize>k << 2)), s0);
    s1 = fma(v128.and(v0, hiMask), v128.load(xp + (<usize>k << 2), 16), s1);
  }
  let s = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; k < K; k++) {
    s += reinterpret<f32>(<u32>load<u16>(w + (<usize>k << 1)) << 16) * load<f32>(x + (<usize>k << 2));
  }
  return s;
}

// Permute x (K floats) into xp for dotBf16.
export function bf16_perm_x(x: usize, xp: usize, K: i32): void {
  let k = 0;
  for (; k + 8 <= K; k += 8) {
    const a = v128.load(x + (<usize>k << 2));
    const b = v128.load(x + (<usize>k << 2), 16);
    v128.store(xp + (<usize>k << 2), v128.shuffle<f32>(a, b, 0, 2, 4, 6));
    v128.store(xp + (<usize>k << 2), v128.shuffle<f32>(a, b, 1, 3, 5, 7), 16);
  }
  for (; k < K; k++) store<f32>(xp + (<usize>k << 2), load<f32>(x + (<usize>k << 2)));
}

// ---------------------------------------------------------------------------------------------
// GEMV (small M): y[m, n] = sum_k x[m, k] w[n, k] + bias[n]; thread split over n.

export function gemv_f32(x: usize, M: i32, K: i32, w: usize, N: i32, bias: usize, y: usize, tid: i32, nth: i32): void {
  const n0 = partStart(N, tid, nth, 16), n1 = partEnd(N, tid, nth, 16);
  const rowB = <usize>K << 2;
  for (let n = n0; n < n1; n++) {
    const wr = w + <usize>n * rowB;
    const b: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
    for (let m = 0; m < M; m++) {
      store<f32>(y + ((<usize>m * <usize>N + <usize>n) << 2), dotF32(x + <usize>m * rowB, wr, K) + b);
    }
  }
}

// xp: M permuted rows (bf16_perm_x) of K floats each.
export function gemv_bf16(x: usize, xp: usize, M: i32, K: i32, w: usize, N: i32, bias: usize, y: usize, tid: i32, nth: i32): void {
  const n0 = partStart(N, tid, nth, 16), n1 = partEnd(N, tid, nth, 16);
  const rowB = <usize>K << 1;
  const xrowB = <usize>K << 2;
  for (let n = n0; n < n1; n++) {
    const wr = w + <usize>n * rowB;
    const b: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
    for (let m = 0; m < M; m++) {
      store<f32>(y + ((<usize>m * <usize>N + <usize>n) << 2), dotBf16(xp + <usize>m * xrowB, x + <usize>m * xrowB, wr, K) + b);
    }
  }
}

// Activation quantisation for the integer GEMV: per block of 32 along K (padded to Kp with zeros),
// scale = max|x| / 127, q = round(x / scale). Writes, per row m:
//   q8  at xq8  + m*Kp        (int8)
//   q16 at xq16 + m*Kp*2      (same values as int16)
//   sc  at xs   + m*(Kp/32)*4 (f32 scales)
//   sum at xsum + m*(Kp/32)*4 (i32 sum of the block's q values)
export function quantize_act(x: usize, M: i32, K: i32, xq8: usize, xq16: usize, xs: usize, xsum: usize): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  for (let m = 0; m < M; m++) {
    const xr = x + ((<usize>m * <usize>K) << 2);
    const q8 = xq8 + <usize>m * <usize>Kp;
    const q16 = xq16 + ((<usize>m * <usize>Kp) << 1);
    for (let b = 0; b < nb; b++) {
      const k0 = b << 5;
      const kn = min(32, K - k0);
      let amax: f32 = 0;
      for (let j = 0; j < kn; j++) amax = max(amax, abs(load<f32>(xr + (<usize>(k0 + j) << 2))));
      const sc: f32 = amax / 127.0;
      const inv: f32 = amax > 0 ? 127.0 / amax : 0;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        let q = 0;
        if (j < kn) q = <i32>nearest(load<f32>(xr + (<usize>(k0 + j) << 2)) * inv);
        store<i8>(q8 + <usize>(k0 + j), <i8>q);
        store<i16>(q16 + (<usize>(k0 + j) << 1), <i16>q);
        sum += q;
      }
      store<f32>(xs + ((<usize>m * <usize>nb + <usize>b) << 2), sc);
      store<i32>(xsum + ((<usize>m * <usize>nb + <usize>b) << 2), sum);
    }
  }
}

// Horizontal sums of four i32x4 vectors: [sum(d0), sum(d1), sum(d2), sum(d3)].
@inline function red4(d0: v128, d1: v128, d2: v128, d3: v128): v128 {
  const t0 = i32x4.add(v128.shuffle<i32>(d0, d1, 0, 4, 1, 5), v128.shuffle<i32>(d0, d1, 2, 6, 3, 7));
  const t1 = i32x4.add(v128.shuffle<i32>(d2, d3, 0, 4, 1, 5), v128.shuffle<i32>(d2, d3, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), v128.shuffle<i32>(t0, t1, 2, 3, 6, 7));
}

// int32 dot of one q8 block (32 int8 weights at wb) with 32 int16 activations at xb, as 4 partial lanes.
@inline function q8blk(wb: usize, xb: usize): v128 {
  let d = i32x4.dot_i16x8_s(v128.load8x8_s(wb), v128.load(xb));
  d = i32x4.add(d, i32x4.dot_i16x8_s(v128.load8x8_s(wb, 8), v128.load(xb, 16)));
  d = i32x4.add(d, i32x4.dot_i16x8_s(v128.load8x8_s(wb, 16), v128.load(xb, 32)));
  return i32x4.add(d, i32x4.dot_i16x8_s(v128.load8x8_s(wb, 24), v128.load(xb, 48)));
}

// q8 GEMV with int16 activations and i32x4.dot_i16x8_s. Four blocks at a time: their int32 dots are
// reduced into one vector (block b in lane b), converted once and scaled by the 4 weight scales times
// the 4 activation scales (vector loads) in one FMA.
export function gemv_q8(xq16: usize, xs: usize, M: i32, K: i32, qs: usize, scales: usize, N: i32, bias: usize, y: usize, tid: i32, nth: i32): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  const nb4 = nb & ~3;
  const n0 = partStart(N, tid, nth, 16), n1 = partEnd(N, tid, nth, 16);
  for (let n = n0; n < n1; n++) {
    const wr = qs + <usize>n * <usize>Kp;
    const sr = scales + ((<usize>n * <usize>nb) << 2);
    const bv: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
    for (let m = 0; m < M; m++) {
      const xr = xq16 + ((<usize>m * <usize>Kp) << 1);
      const xsr = xs + ((<usize>m * <usize>nb) << 2);
      let acc = f32x4.splat(0);
      let b = 0;
      for (; b < nb4; b += 4) {
        const wb = wr + (<usize>b << 5);
        const xb = xr + (<usize>b << 6);
        const r = red4(q8blk(wb, xb), q8blk(wb + 32, xb + 64), q8blk(wb + 64, xb + 128), q8blk(wb + 96, xb + 192));
        acc = fma(f32x4.convert_i32x4_s(r), f32x4.mul(v128.load(sr + (<usize>b << 2)), v128.load(xsr + (<usize>b << 2))), acc);
      }
      let t = hsum(acc);
      for (; b < nb; b++) {
        const d = q8blk(wr + (<usize>b << 5), xr + (<usize>b << 6));
        t += <f32>hsumi(d) * (load<f32>(sr + (<usize>b << 2)) * load<f32>(xsr + (<usize>b << 2)));
      }
      store<f32>(y + ((<usize>m * <usize>N + <usize>n) << 2), t + bv);
    }
  }
}

// int32 dot (4 partial lanes) of one q4 block (16 bytes of nibbles at wb) with 32 int8 activations at xb,
// nibbles unsigned (not minus 8), via the relaxed int16 dot.
@inline function q4rblk(wb: usize, xb: usize, lowMask: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const v = v128.load(wb);
    const p = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xb), v128.and(v, lowMask)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xb, 16), v128.and(i16x8.shr_u(v, 4), lowMask)));
    return i32x4.extadd_pairwise_i16x8_s(p);
  } else {
    return i32x4.splat(0);
  }
}

// q4 GEMV. SIMD128: nibbles - 8 widened to int16, dot_i16x8_s with int16 activations.
// Relaxed: relaxed_dot_i8x16_i7x16_add_s(int8 activations, unsigned nibbles) then subtract 8 * sum(xq).
// rdot: 0 = use the SIMD128 path even in the relaxed build; otherwise the relaxed dot is used with a zero
// accumulator and its result multiplied by rscale (1, or 0.5 where the engine doubles it; see probe_rdot).
export function gemv_q4(xq8: usize, xq16: usize, xs: usize, xsum: usize, M: i32, K: i32, qs: usize, scales: usize, N: i32, bias: usize, y: usize,
  rdot: i32, rscale: f32, tid: i32, nth: i32): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  const n0 = partStart(N, tid, nth, 16), n1 = partEnd(N, tid, nth, 16);
  const lowMask = i8x16.splat(0x0f);
  for (let n = n0; n < n1; n++) {
    const wr = qs + ((<usize>n * <usize>Kp) >> 1);
    const sr = scales + ((<usize>n * <usize>nb) << 2);
    const bv: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
    for (let m = 0; m < M; m++) {
      let acc = f32x4.splat(0);
      let extra: f32 = 0;
      if (ASC_FEATURE_RELAXED_SIMD && rdot != 0) {
        // i16x8.relaxed_dot (pmaddubsw) of int8 activations with the unsigned nibbles, both halves added
        // in int16 (|sum| <= 4 * 128 * 15), widened pairwise to i32; four blocks reduced into one vector,
        // 8 * sum(xq) subtracted as integers, one convert and one FMA per four blocks.
        const xr = xq8 + <usize>m * <usize>Kp;
        const xsr = xs + ((<usize>m * <usize>nb) << 2);
        const xsumr = xsum + ((<usize>m * <usize>nb) << 2);
        const rs = f32x4.splat(rscale);
        const nb4 = nb & ~3;
        let b = 0;
        for (; b < nb4; b += 4) {
          const wb = wr + (<usize>b << 4);
          const xb = xr + (<usize>b << 5);
          let r = red4(q4rblk(wb, xb, lowMask), q4rblk(wb + 16, xb + 32, lowMask), q4rblk(wb + 32, xb + 64, lowMask), q4rblk(wb + 48, xb + 96, lowMask));
          r = i32x4.sub(r, i32x4.shl(v128.load(xsumr + (<usize>b << 2)), 3));
          const sc = f32x4.mul(f32x4.mul(v128.load(sr + (<usize>b << 2)), v128.load(xsr + (<usize>b << 2))), rs);
          acc = fma(f32x4.convert_i32x4_s(r), sc, acc);
        }
        for (; b < nb; b++) {
          const d = hsumi(q4rblk(wr + (<usize>b << 4), xr + (<usize>b << 5), lowMask)) - 8 * load<i32>(xsumr + (<usize>b << 2));
          extra += <f32>d * (load<f32>(sr + (<usize>b << 2)) * load<f32>(xsr + (<usize>b << 2)) * rscale);
        }
      } else {
        const xr = xq16 + ((<usize>m * <usize>Kp) << 1);
        const xsr = xs + ((<usize>m * <usize>nb) << 2);
        const eight = i8x16.splat(8);
        for (let b = 0; b < nb; b++) {
          const v = v128.load(wr + (<usize>b << 4));
          const lo = i8x16.sub(v128.and(v, lowMask), eight);
          const hi = i8x16.sub(i8x16.shr_u(v, 4), eight);
          const xb = xr + (<usize>b << 6);
          let d = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), v128.load(xb));
          d = i32x4.add(d, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), v128.load(xb, 16)));
          d = i32x4.add(d, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), v128.load(xb, 32)));
          d = i32x4.add(d, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), v128.load(xb, 48)));
          const s = load<f32>(sr + (<usize>b << 2)) * load<f32>(xsr + (<usize>b << 2));
          acc = fma(f32x4.convert_i32x4_s(d), f32x4.splat(s), acc);
        }
      }
      store<f32>(y + ((<usize>m * <usize>N + <usize>n) << 2), hsum(acc) + extra + bv);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Weight quantisation (model load). Source rows n0..n1 of a [N, K] matrix, f32 (srcType 0) or bf16 (1).
// Destination row n goes to qs + n*Kp (q8) or qs + n*Kp/2 (q4) and scales + n*(Kp/32)*4.

@inline function srcVal(src: usize, srcType: i32, idx: usize): f32 {
  if (srcType == 0) return load<f32>(src + (idx << 2));
  return reinterpret<f32>(<u32>load<u16>(src + (idx << 1)) << 16);
}

export function quantize_q8(src: usize, srcType: i32, rows: i32, K: i32, qs: usize, scales: usize): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const k0 = b << 5;
      const kn = min(32, K - k0);
      let amax: f32 = 0;
      for (let j = 0; j < kn; j++) amax = max(amax, abs(srcVal(src, srcType, <usize>r * <usize>K + <usize>(k0 + j))));
      const sc: f32 = amax / 127.0;
      const inv: f32 = amax > 0 ? 127.0 / amax : 0;
      for (let j = 0; j < 32; j++) {
        let q = 0;
        if (j < kn) q = <i32>nearest(srcVal(src, srcType, <usize>r * <usize>K + <usize>(k0 + j)) * inv);
        store<i8>(qs + <usize>r * <usize>Kp + <usize>(k0 + j), <i8>q);
      }
      store<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2), sc);
    }
  }
}

// Q4_0-like: d = v / -8 where v is the block's value of largest magnitude; q = clamp(round(x/d), -8, 7).
export function quantize_q4(src: usize, srcType: i32, rows: i32, K: i32, qs: usize, scales: usize): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const k0 = b << 5;
      const kn = min(32, K - k0);
      let amax: f32 = 0, vmax: f32 = 0;
      for (let j = 0; j < kn; j++) {
        const v = srcVal(src, srcType, <usize>r * <usize>K + <usize>(k0 + j));
        if (abs(v) > amax) { amax = abs(v); vmax = v; }
      }
      const d: f32 = vmax / -8.0;
      const inv: f32 = d != 0 ? <f32>1.0 / d : 0;
      const dst = qs + ((<usize>r * <usize>Kp) >> 1) + (<usize>b << 4);
      for (let j = 0; j < 16; j++) {
        let q0 = 0, q1 = 0;
        if (j < kn) q0 = <i32>nearest(srcVal(src, srcType, <usize>r * <usize>K + <usize>(k0 + j)) * inv);
        if (j + 16 < kn) q1 = <i32>nearest(srcVal(src, srcType, <usize>r * <usize>K + <usize>(k0 + j + 16)) * inv);
        q0 = min(7, max(-8, q0)) + 8;
        q1 = min(7, max(-8, q1)) + 8;
        store<u8>(dst + <usize>j, <u8>(q0 | (q1 << 4)));
      }
      store<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2), d);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM (also used by the blocked attention)

// Pack W[n0 .. n0+nc, k0 .. k0+kc) into panels of 8 columns, panel p at dst + p*kc*32, element (k, j) at +k*32 + j*4.
// wType: 0 f32, 1 bf16, 2 q8, 3 q4. Rows >= N are zero.
// A missing column (past N or past the block) of an 8-column panel: `rows` zero 4-byte entries, one per
// 32-byte panel row, starting at d.
@inline function zeroPanelColumn(d: usize, rows: i32): void {
  for (let r = 0; r < rows; r++) store<i32>(d + (<usize>r << 5), 0);
}

// Column j's weight scales for blocks [k0/32, k0/32 + kb) into a panel's scale rows at ps (8 columns,
// 32 bytes per block); zeros for a missing column (n < 0).
@inline function panelScales(scales: usize, n: i32, nb: i32, k0: i32, kb: i32, ps: usize, j: i32): void {
  for (let b = 0; b < kb; b++) {
    const v: f32 = n < 0 ? 0 : load<f32>(scales + ((<usize>n * <usize>nb + <usize>((k0 >> 5) + b)) << 2));
    store<f32>(ps + (<usize>b << 5) + (<usize>j << 2), v);
  }
}

// bf16 panel of 8 full columns (rows n..n+7 of w), k in [k0, k0 + kc): 8x8 blocks of bf16 transposed with
// three rounds of interleaves, each output row widened to f32 by placing the 16 bits in the high half.
function packW8bf16(w: usize, K: i32, n: i32, k0: i32, kc: i32, pd: usize): void {
  const rowB = <usize>K << 1;
  const src = w + ((<usize>n * <usize>K + <usize>k0) << 1);
  const z = i16x8.splat(0);
  let k = 0;
  for (; k + 8 <= kc; k += 8) {
    const s = src + (<usize>k << 1);
    const r0 = v128.load(s), r1 = v128.load(s + rowB), r2 = v128.load(s + 2 * rowB), r3 = v128.load(s + 3 * rowB);
    const r4 = v128.load(s + 4 * rowB), r5 = v128.load(s + 5 * rowB), r6 = v128.load(s + 6 * rowB), r7 = v128.load(s + 7 * rowB);
    // round 1: 16-bit interleave of row pairs
    const a0 = v128.shuffle<i16>(r0, r1, 0, 8, 1, 9, 2, 10, 3, 11), a1 = v128.shuffle<i16>(r0, r1, 4, 12, 5, 13, 6, 14, 7, 15);
    const a2 = v128.shuffle<i16>(r2, r3, 0, 8, 1, 9, 2, 10, 3, 11), a3 = v128.shuffle<i16>(r2, r3, 4, 12, 5, 13, 6, 14, 7, 15);
    const a4 = v128.shuffle<i16>(r4, r5, 0, 8, 1, 9, 2, 10, 3, 11), a5 = v128.shuffle<i16>(r4, r5, 4, 12, 5, 13, 6, 14, 7, 15);
    const a6 = v128.shuffle<i16>(r6, r7, 0, 8, 1, 9, 2, 10, 3, 11), a7 = v128.shuffle<i16>(r6, r7, 4, 12, 5, 13, 6, 14, 7, 15);
    // round 2: 32-bit interleave (pairs of rows 0-1 with 2-3, 4-5 with 6-7)
    const b0 = v128.shuffle<i32>(a0, a2, 0, 4, 1, 5), b1 = v128.shuffle<i32>(a0, a2, 2, 6, 3, 7);
    const b2 = v128.shuffle<i32>(a1, a3, 0, 4, 1, 5), b3 = v128.shuffle<i32>(a1, a3, 2, 6, 3, 7);
    const b4 = v128.shuffle<i32>(a4, a6, 0, 4, 1, 5), b5 = v128.shuffle<i32>(a4, a6, 2, 6, 3, 7);
    const b6 = v128.shuffle<i32>(a5, a7, 0, 4, 1, 5), b7 = v128.shuffle<i32>(a5, a7, 2, 6, 3, 7);
    // round 3: 64-bit halves -> t_j = column k+j of rows 0..7
    const t0 = v128.shuffle<i64>(b0, b4, 0, 2), t1 = v128.shuffle<i64>(b0, b4, 1, 3);
    const t2 = v128.shuffle<i64>(b1, b5, 0, 2), t3 = v128.shuffle<i64>(b1, b5, 1, 3);
    const t4 = v128.shuffle<i64>(b2, b6, 0, 2), t5 = v128.shuffle<i64>(b2, b6, 1, 3);
    const t6 = v128.shuffle<i64>(b3, b7, 0, 2), t7 = v128.shuffle<i64>(b3, b7, 1, 3);
    const d = pd + (<usize>k << 5);
    v128.store(d, v128.shuffle<i16>(z, t0, 0, 8, 0, 9, 0, 10, 0, 11)); v128.store(d, v128.shuffle<i16>(z, t0, 0, 12, 0, 13, 0, 14, 0, 15), 16);
    v128.store(d, v128.shuffle<i16>(z, t1, 0, 8, 0, 9, 0, 10, 0, 11), 32); v128.store(d, v128.shuffle<i16>(z, t1, 0, 12, 0, 13, 0, 14, 0, 15), 48);
    v128.store(d, v128.shuffle<i16>(z, t2, 0, 8, 0, 9, 0, 10, 0, 11), 64); v128.store(d, v128.shuffle<i16>(z, t2, 0, 12, 0, 13, 0, 14, 0, 15), 80);
    v128.store(d, v128.shuffle<i16>(z, t3, 0, 8, 0, 9, 0, 10, 0, 11), 96); v128.store(d, v128.shuffle<i16>(z, t3, 0, 12, 0, 13, 0, 14, 0, 15), 112);
    v128.store(d, v128.shuffle<i16>(z, t4, 0, 8, 0, 9, 0, 10, 0, 11), 128); v128.store(d, v128.shuffle<i16>(z, t4, 0, 12, 0, 13, 0, 14, 0, 15), 144);
    v128.store(d, v128.shuffle<i16>(z, t5, 0, 8, 0, 9, 0, 10, 0, 11), 160); v128.store(d, v128.shuffle<i16>(z, t5, 0, 12, 0, 13, 0, 14, 0, 15), 176);
    v128.store(d, v128.shuffle<i16>(z, t6, 0, 8, 0, 9, 0, 10, 0, 11), 192); v128.store(d, v128.shuffle<i16>(z, t6, 0, 12, 0, 13, 0, 14, 0, 15), 208);
    v128.store(d, v128.shuffle<i16>(z, t7, 0, 8, 0, 9, 0, 10, 0, 11), 224); v128.store(d, v128.shuffle<i16>(z, t7, 0, 12, 0, 13, 0, 14, 0, 15), 240);
  }
  for (; k < kc; k++) {
    for (let j = 0; j < 8; j++) {
      store<f32>(pd + (<usize>k << 5) + (<usize>j << 2), reinterpret<f32>(<u32>load<u16>(src + <usize>j * rowB + (<usize>k << 1)) << 16));
    }
  }
}

function packW(wType: i32, w: usize, scales: usize, N: i32, K: i32, n0: i32, nc: i32, k0: i32, kc: i32, dst: usize): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  const np = (nc + 7) >> 3;
  for (let p = 0; p < np; p++) {
    const pd = dst + <usize>p * <usize>kc * 32;
    if (wType == 1 && p * 8 + 8 <= nc && n0 + p * 8 + 8 <= N) {
      packW8bf16(w, K, n0 + p * 8, k0, kc, pd);
      continue;
    }
    for (let j = 0; j < 8; j++) {
      const n = n0 + p * 8 + j;
      const d = pd + (<usize>j << 2);
      if (n >= N || p * 8 + j >= nc) {
        zeroPanelColumn(d, kc);
        continue;
      }
      if (wType == 0) {
        const src = w + ((<usize>n * <usize>K + <usize>k0) << 2);
        for (let k = 0; k < kc; k++) store<f32>(d + (<usize>k << 5), load<f32>(src + (<usize>k << 2)));
      } else if (wType == 1) {
        const src = w + ((<usize>n * <usize>K + <usize>k0) << 1);
        for (let k = 0; k < kc; k++) store<f32>(d + (<usize>k << 5), reinterpret<f32>(<u32>load<u16>(src + (<usize>k << 1)) << 16));
      } else if (wType == 2) {
        const src = w + <usize>n * <usize>Kp;
        const sr = scales + ((<usize>n * <usize>nb) << 2);
        for (let k = 0; k < kc; k++) {
          const kk = k0 + k;
          store<f32>(d + (<usize>k << 5), <f32>load<i8>(src + <usize>kk) * load<f32>(sr + (<usize>(kk >> 5) << 2)));
        }
      } else {
        const src = w + ((<usize>n * <usize>Kp) >> 1);
        const sr = scales + ((<usize>n * <usize>nb) << 2);
        for (let k = 0; k < kc; k++) {
          const kk = k0 + k;
          const j32 = kk & 31;
          const byte = <i32>load<u8>(src + (<usize>(kk >> 5) << 4) + <usize>(j32 & 15));
          const q = j32 < 16 ? (byte & 15) : (byte >> 4);
          store<f32>(d + (<usize>k << 5), <f32>(q - 8) * load<f32>(sr + (<usize>(kk >> 5) << 2)));
        }
      }
    }
  }
}

// Packed micro-kernel: C[0..4, 0..8) (+)= sum_k Ap[k*4 + r] * Bp[k*8 + j]. Ap: 4 rows interleaved per k
// (pack_a), Bp: one 8-column panel (packW). 8 accumulators + 2 B vectors + 1 splat: larger tiles (6x8,
// or 4x8 unrolled twice) were measured 2x slower on V8 11.3, whose register allocator then spills.
@inline function mk4x8p(ap: usize, bp: usize, kc: i32, c: usize, ldcB: usize, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = bp + (<usize>kc << 5);
  while (bp < end) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let t = v128.load32_splat(ap);
    c00 = fma(t, b0, c00); c01 = fma(t, b1, c01);
    t = v128.load32_splat(ap, 4);
    c10 = fma(t, b0, c10); c11 = fma(t, b1, c11);
    t = v128.load32_splat(ap, 8);
    c20 = fma(t, b0, c20); c21 = fma(t, b1, c21);
    t = v128.load32_splat(ap, 12);
    c30 = fma(t, b0, c30); c31 = fma(t, b1, c31);
    ap += 16; bp += 32;
  }
  const r1 = c + ldcB, r2 = r1 + ldcB, r3 = r2 + ldcB;
  if (acc) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(r1)); c11 = f32x4.add(c11, v128.load(r1, 16));
    c20 = f32x4.add(c20, v128.load(r2)); c21 = f32x4.add(c21, v128.load(r2, 16));
    c30 = f32x4.add(c30, v128.load(r3)); c31 = f32x4.add(c31, v128.load(r3, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

const GMR: i32 = 4;    // rows per register tile
const GKC: i32 = 256;  // K block
const GNC: i32 = 128;  // columns per packed B block (16 panels, 128 KiB: stays in L2)

// Pack A[M, K] for gemm: tile t (rows 4t..4t+3, missing rows zero) at ap + t*K*16, element (k, r) at +k*16 + r*4.
// Thread split over tiles.
export function pack_a(x: usize, M: i32, K: i32, ap: usize, tid: i32, nth: i32): void {
  const tiles = (M + 3) >> 2;
  const t0 = partStart(tiles, tid, nth, 1), t1 = partEnd(tiles, tid, nth, 1);
  const ldaB = <usize>K << 2;
  for (let t = t0; t < t1; t++) {
    const m0 = t << 2;
    packTile4(x + <usize>m0 * ldaB, ldaB, M - m0, K, ap + <usize>t * (<usize>K << 4));
  }
}

/**
 * Packs rows [0, min(4, valid)) of a row-major f32 matrix (row stride ld bytes, n columns)
 * into dst as [n][4] (rows beyond `valid` are zero): the A-side layout of the 4x8 micro-kernel.
 */
@inline function packTile4(x: usize, ld: usize, valid: i32, n: i32, dst: usize): void {
  if (valid >= 4) {
    const x0 = x, x1 = x0 + ld, x2 = x1 + ld, x3 = x2 + ld;
    let k = 0;
    for (; k + 4 <= n; k += 4) {
      const o = <usize>k << 2;
      const r0 = v128.load(x0 + o), r1 = v128.load(x1 + o), r2 = v128.load(x2 + o), r3 = v128.load(x3 + o);
      const u0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), u1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
      const u2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), u3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
      const d = dst + (<usize>k << 4);
      v128.store(d, v128.shuffle<f32>(u0, u1, 0, 1, 4, 5));
      v128.store(d, v128.shuffle<f32>(u0, u1, 2, 3, 6, 7), 16);
      v128.store(d, v128.shuffle<f32>(u2, u3, 0, 1, 4, 5), 32);
      v128.store(d, v128.shuffle<f32>(u2, u3, 2, 3, 6, 7), 48);
    }
    for (; k < n; k++) {
      const o = <usize>k << 2, d = dst + (<usize>k << 4);
      store<f32>(d, load<f32>(x0 + o)); store<f32>(d, load<f32>(x1 + o), 4);
      store<f32>(d, load<f32>(x2 + o), 8); store<f32>(d, load<f32>(x3 + o), 12);
    }
  } else {
    for (let r = 0; r < 4; r++) {
      const src = x + <usize>r * ld;
      const ok = r < valid;
      for (let k = 0; k < n; k++) store<f32>(dst + (<usize>k << 4) + (<usize>r << 2), ok ? load<f32>(src + (<usize>k << 2)) : 0);
    }
  }
}

export function gemm_scratch_bytes(): i32 {
  return GNC * GKC * 4 + GMR * 8 * 4 + 64;
}

// GEMM y[M, N] = A[M, K] * W^T + bias, any weight type; A packed by pack_a. Per thread a range of columns
// (8-aligned); per block of GNC columns x GKC depth the weights are unpacked/converted once into f32
// panels (packW) and reused by all M rows (4-row tiles of packed A against every panel of the block).
// scratch: per-thread area of gemm_scratch_bytes() at scratch + tid*scratchStride.
// Rows [0, mr) x columns [0, ncol) of a 4x8 tile computed into tmp (row stride 32 bytes) written to C
// (row stride ldcB bytes), added to what C holds when acc.
@inline function storeTile(tmp: usize, c: usize, ldcB: usize, mr: i32, ncol: i32, acc: bool): void {
  for (let r = 0; r < mr; r++) {
    for (let j = 0; j < ncol; j++) {
      const cp = c + <usize>r * ldcB + (<usize>j << 2);
      const v = load<f32>(tmp + (<usize>r << 5) + (<usize>j << 2));
      store<f32>(cp, acc ? load<f32>(cp) + v : v);
    }
  }
}

// y[m, j0..j1) += bias[j0..j1) for every row m.
function addBias(y: usize, bias: usize, M: i32, N: i32, j0: i32, j1: i32): void {
  for (let m = 0; m < M; m++) {
    for (let n = j0; n < j1; n++) {
      const cp = y + ((<usize>m * <usize>N + <usize>n) << 2);
      store<f32>(cp, load<f32>(cp) + load<f32>(bias + (<usize>n << 2)));
    }
  }
}

export function gemm(wType: i32, ap: usize, M: i32, K: i32, w: usize, scales: usize, N: i32, bias: usize, y: usize,
  scratch: usize, scratchStride: usize, tid: i32, nth: i32): void {
  const j0 = partStart(N, tid, nth, 8), j1 = partEnd(N, tid, nth, 8);
  if (j0 >= j1) return;
  const pack = scratch + <usize>tid * scratchStride;
  const tmp = pack + <usize>GNC * <usize>GKC * 4;
  const ldcB = <usize>N << 2;
  const tileB = <usize>K << 4;
  for (let n0 = j0; n0 < j1; n0 += GNC) {
    const nc = min(GNC, j1 - n0);
    for (let k0 = 0; k0 < K; k0 += GKC) {
      const kc = min(GKC, K - k0);
      const acc = k0 > 0;
      packW(wType, w, scales, N, K, n0, nc, k0, kc, pack);
      for (let m0 = 0; m0 < M; m0 += GMR) {
        const mr = min(GMR, M - m0);
        const at = ap + <usize>(m0 >> 2) * tileB + (<usize>k0 << 4);
        for (let p = 0; p * 8 < nc; p++) {
          const nn = n0 + p * 8;
          const b = pack + <usize>p * <usize>kc * 32;
          const c = y + ((<usize>m0 * <usize>N + <usize>nn) << 2);
          const ncol = min(8, nc - p * 8);
          if (ncol == 8 && mr == GMR) {
            mk4x8p(at, b, kc, c, ldcB, acc);
          } else {
            mk4x8p(at, b, kc, tmp, 32, false);
            storeTile(tmp, c, ldcB, mr, ncol, acc);
          }
        }
      }
    }
  }
  if (bias) addBias(y, bias, M, N, j0, j1);
}

// ---------------------------------------------------------------------------------------------
// Normalisation and elementwise kernels. Split over rows (or elements) between threads.

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w; rows of `dim` with row strides xs, ys (elements). x may equal y.
export function rmsnorm(x: usize, xs: i32, w: usize, y: usize, ys: i32, rows: i32, dim: i32, eps: f32, tid: i32, nth: i32): void {
  const r0 = partStart(rows, tid, nth, 1), r1 = partEnd(rows, tid, nth, 1);
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * <usize>xs) << 2);
    const yr = y + ((<usize>r * <usize>ys) << 2);
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let k = 0;
    for (; k + 8 <= dim; k += 8) {
      const a = v128.load(xr + (<usize>k << 2)), b = v128.load(xr + (<usize>k << 2), 16);
      s0 = fma(a, a, s0); s1 = fma(b, b, s1);
    }
    let ss: f64 = <f64>hsum(f32x4.add(s0, s1));
    for (; k < dim; k++) { const v = load<f32>(xr + (<usize>k << 2)); ss += <f64>v * <f64>v; }
    const inv = <f32>(1.0 / Math.sqrt(ss / <f64>dim + <f64>eps));
    const iv = f32x4.splat(inv);
    k = 0;
    for (; k + 4 <= dim; k += 4) {
      const o = <usize>k << 2;
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), iv), v128.load(w + o)));
    }
    for (; k < dim; k++) {
      const o = <usize>k << 2;
      store<f32>(yr + o, load<f32>(xr + o) * inv * load<f32>(w + o));
    }
  }
}

// LayerNorm with weight and bias (biased variance, like torch).
export function layernorm(x: usize, w: usize, bias: usize, y: usize, rows: i32, dim: i32, eps: f32, tid: i32, nth: i32): void {
  const r0 = partStart(rows, tid, nth, 1), r1 = partEnd(rows, tid, nth, 1);
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * <usize>dim) << 2);
    const yr = y + ((<usize>r * <usize>dim) << 2);
    let sv = f32x4.splat(0);
    let k = 0;
    for (; k + 4 <= dim; k += 4) sv = f32x4.add(sv, v128.load(xr + (<usize>k << 2)));
    let s: f64 = <f64>hsum(sv);
    for (; k < dim; k++) s += <f64>load<f32>(xr + (<usize>k << 2));
    const mean = <f32>(s / <f64>dim);
    const mv = f32x4.splat(mean);
    let qv = f32x4.splat(0);
    k = 0;
    for (; k + 4 <= dim; k += 4) { const d = f32x4.sub(v128.load(xr + (<usize>k << 2)), mv); qv = fma(d, d, qv); }
    let q: f64 = <f64>hsum(qv);
    for (; k < dim; k++) { const d = <f64>(load<f32>(xr + (<usize>k << 2)) - mean); q += d * d; }
    const inv = <f32>(1.0 / Math.sqrt(q / <f64>dim + <f64>eps));
    const iv = f32x4.splat(inv);
    k = 0;
    for (; k + 4 <= dim; k += 4) {
      const o = <usize>k << 2;
      v128.store(yr + o, fma(f32x4.mul(f32x4.sub(v128.load(xr + o), mv), iv), v128.load(w + o), v128.load(bias + o)));
    }
    for (; k < dim; k++) {
      const o = <usize>k << 2;
      store<f32>(yr + o, (load<f32>(xr + o) - mean) * inv * load<f32>(w + o) + load<f32>(bias + o));
    }
  }
}

// NeoX (half-split) rotary embedding, in place. x: T tokens x nh heads x D, token stride xsT (elements),
// head stride D. cos/sin: [T, rot/2] rows. Rotates the first `rot` dims of each head (rot even).
export function rope_neox(x: usize, T: i32, nh: i32, D: i32, xsT: i32, cos: usize, sin: usize, rot: i32, tid: i32, nth: i32): void {
  const half = rot >> 1;
  const rows = T * nh;
  const r0 = partStart(rows, tid, nth, 1), r1 = partEnd(rows, tid, nth, 1);
  for (let r = r0; r < r1; r++) {
    const t = r / nh, h = r % nh;
    const xr = x + ((<usize>t * <usize>xsT + <usize>h * <usize>D) << 2);
    const cr = cos + ((<usize>t * <usize>half) << 2);
    const sr = sin + ((<usize>t * <usize>half) << 2);
    const xh = xr + (<usize>half << 2);
    let i = 0;
    for (; i + 4 <= half; i += 4) {
      const o = <usize>i << 2;
      const a = v128.load(xr + o), b = v128.load(xh + o), c = v128.load(cr + o), s = v128.load(sr + o);
      v128.store(xr + o, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
      v128.store(xh + o, fma(a, s, f32x4.mul(b, c)));
    }
    for (; i < half; i++) {
      const o = <usize>i << 2;
      const a = load<f32>(xr + o), b = load<f32>(xh + o), c = load<f32>(cr + o), s = load<f32>(sr + o);
      store<f32>(xr + o, a * c - b * s);
      store<f32>(xh + o, b * c + a * s);
    }
  }
}

// out[r, i] = silu(gate[r, i]) * up[r, i]; rows with strides gs, us, os (elements).
export function silu_mul(gate: usize, gs: i32, up: usize, us: i32, out: usize, os: i32, rows: i32, cols: i32, tid: i32, nth: i32): void {
  const total = rows * cols;
  const e0 = partStart(total, tid, nth, 64), e1 = partEnd(total, tid, nth, 64);
  if (e0 >= e1) return;
  let r = e0 / cols, c = e0 % cols;
  let e = e0;
  const one = f32x4.splat(1);
  while (e < e1) {
    const n = min(cols - c, e1 - e);
    const g = gate + ((<usize>r * <usize>gs + <usize>c) << 2);
    const u = up + ((<usize>r * <usize>us + <usize>c) << 2);
    const o = out + ((<usize>r * <usize>os + <usize>c) << 2);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const off = <usize>i << 2;
      const gv = v128.load(g + off);
      const sg = f32x4.div(gv, f32x4.add(one, vexp(f32x4.neg(gv))));
      v128.store(o + off, f32x4.mul(sg, v128.load(u + off)));
    }
    for (; i < n; i++) {
      const off = <usize>i << 2;
      const gv = load<f32>(g + off);
      store<f32>(o + off, gv / (1 + sexp(-gv)) * load<f32>(u + off));
    }
    e += n; r++; c = 0;
  }
}

// GELU with tanh approximation, elementwise over n values (x may equal y).
export function gelu_tanh(x: usize, y: usize, n: i32, tid: i32, nth: i32): void {
  const e0 = partStart(n, tid, nth, 64), e1 = partEnd(n, tid, nth, 64);
  const c0 = f32x4.splat(0.7978845608028654), c1 = f32x4.splat(0.044715), one = f32x4.splat(1), half = f32x4.splat(0.5), two = f32x4.splat(2);
  let i = e0;
  for (; i + 4 <= e1; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const u = f32x4.mul(c0, fma(f32x4.mul(c1, f32x4.mul(v, v)), v, v));
    // tanh(u) = 1 - 2 / (exp(2u) + 1)
    const th = f32x4.sub(one, f32x4.div(two, f32x4.add(vexp(f32x4.mul(two, u)), one)));
    v128.store(y + o, f32x4.mul(f32x4.mul(half, v), f32x4.add(one, th)));
  }
  for (; i < e1; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const u: f32 = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    const th: f32 = 1 - 2 / (sexp(2 * u) + 1);
    store<f32>(y + o, 0.5 * v * (1 + th));
  }
}

// erf in f64: series exp(-x^2) * sum 2^n x^(2n+1) / (1*3*...*(2n+1)) for |x| < 3 (all terms positive),
// continued fraction for erfc when 3 <= |x| < 6.5, +-1 beyond (erfc(6.5) < 1e-19).
function erf64(x: f64): f64 {
  const ax = Math.abs(x);
  let r: f64;
  if (ax < 3.0) {
    const x2 = ax * ax;
    let term = ax, sum = ax;
    for (let n = 1; n < 120; n++) {
      term *= 2.0 * x2 / <f64>(2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    r = 1.1283791670955126 * Math.exp(-x2) * sum;
  } else if (ax < 6.5) {
    let f = ax;
    for (let n = 60; n >= 1; n--) f = ax + (<f64>n * 0.5) / f;
    r = 1.0 - Math.exp(-ax * ax) / (f * 1.7724538509055159);
  } else {
    r = 1.0;
  }
  return x < 0 ? -r : r;
}

export function erf_f64(x: f64): f64 {
  return erf64(x);
}

// Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
export function gelu_erf(x: usize, y: usize, n: i32, tid: i32, nth: i32): void {
  const e0 = partStart(n, tid, nth, 64), e1 = partEnd(n, tid, nth, 64);
  for (let i = e0; i < e1; i++) {
    const o = <usize>i << 2;
    const v = <f64>load<f32>(x + o);
    store<f32>(y + o, <f32>(0.5 * v * (1.0 + erf64(v * 0.7071067811865476))));
  }
}

// Row-wise softmax in place over rows x cols.
export function softmax(x: usize, rows: i32, cols: i32, tid: i32, nth: i32): void {
  const r0 = partStart(rows, tid, nth, 1), r1 = partEnd(rows, tid, nth, 1);
  for (let r = r0; r < r1; r++) softmaxRow(x + ((<usize>r * <usize>cols) << 2), cols, 1.0);
}

// In-place softmax of n values after multiplying them by `scale`. Returns nothing; normalised.
@inline function softmaxRow(p: usize, n: i32, scale: f32): void {
  const inv = softmaxRowUnnorm(p, n, scale);
  const iv = f32x4.splat(inv);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(p + (<usize>i << 2), f32x4.mul(v128.load(p + (<usize>i << 2)), iv));
  for (; i < n; i++) store<f32>(p + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) * inv);
}

// p[i] = exp(scale * (p[i] - max)); returns 1 / sum.
function softmaxRowUnnorm(p: usize, n: i32, scale: f32): f32 {
  let mv = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) mv = f32x4.pmax(mv, v128.load(p + (<usize>i << 2)));
  let mx = hmax(mv);
  for (; i < n; i++) mx = max(mx, load<f32>(p + (<usize>i << 2)));
  const sv = f32x4.splat(scale);
  const mxs = f32x4.splat(mx * scale);
  let acc = f32x4.splat(0);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const e = vexp(f32x4.sub(f32x4.mul(v128.load(p + o), sv), mxs));
    v128.store(p + o, e);
    acc = f32x4.add(acc, e);
  }
  let s = hsum(acc);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const e = sexp(load<f32>(p + o) * scale - mx * scale);
    store<f32>(p + o, e);
    s += e;
  }
  return <f32>1.0 / s;
}

// y = a + b over n values.
export function add(a: usize, b: usize, y: usize, n: i32, tid: i32, nth: i32): void {
  const e0 = partStart(n, tid, nth, 64), e1 = partEnd(n, tid, nth, 64);
  let i = e0;
  for (; i + 4 <= e1; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < e1; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

// ---------------------------------------------------------------------------------------------
// Attention. q: [T, nH, D] with token stride qsT (head stride D); out likewise with osT.
// Key j of kv head g at k + (j*ksT + g*ksH)*4, values likewise (vsT, vsH). Query head h uses kv head
// h / (nH / nKV).
// Causal (nseg == 0): query t (absolute position past + t) sees keys [0, past + t].
// Segmented (nseg > 0): cu = int32[nseg + 1]; query t in [cu[s], cu[s+1]) sees keys [cu[s], cu[s+1]).
// scratch: per-thread region of scratchStride bytes.

// Direct path (few query rows): scores by dot products, values accumulated 16 columns at a time.
function attnRow(qr: usize, k: usize, ksT: i32, v: usize, vsT: i32, D: i32, lo: i32, hi: i32, scale: f32, or: usize, sc: usize): void {
  const n = hi - lo;
  for (let j = 0; j < n; j++) {
    store<f32>(sc + (<usize>j << 2), dotF32(qr, k + ((<usize>(lo + j) * <usize>ksT) << 2), D));
  }
  const inv = softmaxRowUnnorm(sc, n, scale);
  const iv = f32x4.splat(inv);
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let vp = v + ((<usize>lo * <usize>vsT + <usize>d) << 2);
    const vstep = <usize>vsT << 2;
    for (let j = 0; j < n; j++) {
      const p = v128.load32_splat(sc + (<usize>j << 2));
      a0 = fma(p, v128.load(vp), a0); a1 = fma(p, v128.load(vp, 16), a1);
      a2 = fma(p, v128.load(vp, 32), a2); a3 = fma(p, v128.load(vp, 48), a3);
      vp += vstep;
    }
    const o = or + (<usize>d << 2);
    v128.store(o, f32x4.mul(a0, iv)); v128.store(o, f32x4.mul(a1, iv), 16);
    v128.store(o, f32x4.mul(a2, iv), 32); v128.store(o, f32x4.mul(a3, iv), 48);
  }
  for (; d + 4 <= D; d += 4) {
    let a0 = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      a0 = fma(v128.load32_splat(sc + (<usize>j << 2)), v128.load(v + ((<usize>(lo + j) * <usize>vsT + <usize>d) << 2)), a0);
    }
    v128.store(or + (<usize>d << 2), f32x4.mul(a0, iv));
  }
  for (; d < D; d++) {
    let a: f32 = 0;
    for (let j = 0; j < n; j++) a += load<f32>(sc + (<usize>j << 2)) * load<f32>(v + ((<usize>(lo + j) * <usize>vsT + <usize>d) << 2));
    store<f32>(or + (<usize>d << 2), a * inv);
  }
}

const AQB: i32 = 16; // query rows per attention block

export function attention(q: usize, qsT: i32, k: usize, ksT: i32, ksH: i32, v: usize, vsT: i32, vsH: i32, out: usize, osT: i32,
  T: i32, nH: i32, nKV: i32, D: i32, past: i32, cu: usize, nseg: i32, scale: f32,
  scratch: usize, scratchStride: usize, tid: i32, nth: i32): void {
  const grp = nH / nKV;
  const sbase = scratch + <usize>tid * scratchStride;
  const ns = nseg > 0 ? nseg : 1;
  if (T * grp < 8) {
    // direct: split (t, h) rows
    const rows = T * nH;
    const r0 = partStart(rows, tid, nth, 1), r1 = partEnd(rows, tid, nth, 1);
    let s = 0;
    for (let r = r0; r < r1; r++) {
      const t = r / nH, h = r % nH, g = h / grp;
      let lo = 0, hi = past + t + 1;
      if (nseg > 0) {
        while (s + 1 < nseg && load<i32>(cu + (<usize>(s + 1) << 2)) <= t) s++;
        while (s > 0 && load<i32>(cu + (<usize>s << 2)) > t) s--;
        lo = load<i32>(cu + (<usize>s << 2)); hi = load<i32>(cu + (<usize>(s + 1) << 2));
      }
      attnRow(q + ((<usize>t * <usize>qsT + <usize>h * <usize>D) << 2),
        k + ((<usize>g * <usize>ksH) << 2), ksT, v + ((<usize>g * <usize>vsH) << 2), vsT, D, lo, hi, scale,
        out + ((<usize>t * <usize>osT + <usize>h * <usize>D) << 2), sbase);
    }
    return;
  }
  // blocked: items = (kv head, segment). Per item the keys are packed once into 8-key panels [D][8] and the
  // values into 8-column panels [nk][8]; per query head, blocks of AQB queries: Q packed into 4-row tiles,
  // S = Q.K^T through the packed 4x8 micro-kernel (key panel outer, so it stays in L1 for all tiles),
  // softmax per row, P packed into 4-row tiles, O = P.V through the same micro-kernel (value panel outer).
  const items = nKV * ns;
  const i0 = partStart(items, tid, nth, 1), i1 = partEnd(items, tid, nth, 1);
  const Dp = (D + 7) & ~7;
  const ndp = Dp >> 3;
  for (let it = i0; it < i1; it++) {
    const g = it / ns, s = it % ns;
    let qa = 0, qb = T, ka = 0, kb = past + T;
    if (nseg > 0) {
      qa = load<i32>(cu + (<usize>s << 2)); qb = load<i32>(cu + (<usize>(s + 1) << 2));
      ka = qa; kb = qb;
    }
    const nk = kb - ka;
    if (nk <= 0) continue;
    const npan = (nk + 7) >> 3;
    const nkPad = npan << 3;
    const kP = sbase;                                              // nkPad * D floats
    const vP = kP + ((<usize>nkPad * <usize>D) << 2);              // nkPad * Dp floats
    const S = vP + ((<usize>nkPad * <usize>Dp) << 2);              // AQB * nkPad floats
    const pP = S + ((<usize>AQB * <usize>nkPad) << 2);             // AQB * nkPad floats (4-row tiles)
    const qP = pP + ((<usize>AQB * <usize>nkPad) << 2);            // AQB * D floats (4-row tiles)
    const tmp = qP + ((<usize>AQB * <usize>D) << 2);               // 4 x 8 floats
    const invs = tmp + 128;                                        // AQB floats
    const ldS = <usize>nkPad << 2;
    // pack keys: panel p holds keys ka+8p..ka+8p+7, element (d, jj) at p*D*32 + d*32 + jj*4
    const kg = k + ((<usize>g * <usize>ksH) << 2);
    for (let p = 0; p < npan; p++) {
      const pd = kP + <usize>p * <usize>D * 32;
      for (let jj = 0; jj < 8; jj++) {
        const j = ka + p * 8 + jj;
        const dst = pd + (<usize>jj << 2);
        if (j < kb) {
          const src = kg + ((<usize>j * <usize>ksT) << 2);
          for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 5), load<f32>(src + (<usize>d << 2)));
        } else {
          for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 5), 0);
        }
      }
    }
    // pack values: panel dp holds columns 8dp..8dp+7, element (j, c) at dp*nkPad*32 + j*32 + c*4
    const vg = v + ((<usize>g * <usize>vsH) << 2);
    const vpStride = <usize>nkPad << 5;
    for (let j = 0; j < nk; j++) {
      const src = vg + ((<usize>(ka + j) * <usize>vsT) << 2);
      const dst = vP + (<usize>j << 5);
      let dp = 0;
      for (; (dp + 1) << 3 <= D; dp++) {
        const o = <usize>dp << 5;
        v128.store(dst + <usize>dp * vpStride, v128.load(src + o));
        v128.store(dst + <usize>dp * vpStride, v128.load(src + o, 16), 16);
      }
      if (dp < ndp) {
        for (let c = 0; c < 8; c++) {
          const d = (dp << 3) + c;
          store<f32>(dst + <usize>dp * vpStride + (<usize>c << 2), d < D ? load<f32>(src + (<usize>d << 2)) : 0);
        }
      }
    }
    const ldoB = <usize>osT << 2;
    for (let hi = 0; hi < grp; hi++) {
      const h = g * grp + hi;
      for (let t0 = qa; t0 < qb; t0 += AQB) {
        const mb = min(AQB, qb - t0);
        const ntile = (mb + 3) >> 2;
        let limMax = nk;
        if (nseg == 0) limMax = past + t0 + mb;
        const npu = (limMax + 7) >> 3;
        // pack Q rows t0..t0+mb into 4-row tiles [D][4] (missing rows zero)
        for (let r = 0; r < ntile << 2; r++) {
          const dst = qP + <usize>(r >> 2) * (<usize>D << 4) + (<usize>(r & 3) << 2);
          if (r < mb) {
            const src = q + ((<usize>(t0 + r) * <usize>qsT + <usize>h * <usize>D) << 2);
            for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 4), load<f32>(src + (<usize>d << 2)));
          } else {
            for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 4), 0);
          }
        }
        // S = Q K^T
        for (let p = 0; p < npu; p++) {
          const kp = kP + <usize>p * <usize>D * 32;
          for (let ti = 0; ti < ntile; ti++) {
            mk4x8p(qP + <usize>ti * (<usize>D << 4), kp, D, S + <usize>(ti << 2) * ldS + (<usize>p << 5), ldS, false);
          }
        }
        // softmax per row (own causal limit), entries [lim, limMax) zeroed
        for (let r = 0; r < mb; r++) {
          const lim = nseg == 0 ? past + t0 + r + 1 : nk;
          const row = S + <usize>r * ldS;
          store<f32>(invs + (<usize>r << 2), softmaxRowUnnorm(row, lim, scale));
          for (let j = lim; j < limMax; j++) store<f32>(row + (<usize>j << 2), 0);
        }
        // pack P into 4-row tiles [limMax][4]
        for (let ti = 0; ti < ntile; ti++) {
          packTile4(S + <usize>(ti << 2) * ldS, ldS, mb - (ti << 2), limMax, pP + <usize>ti * (<usize>nkPad << 4));
        }
        // O = P V, rows scaled by 1/sum
        const o = out + ((<usize>t0 * <usize>osT + <usize>h * <usize>D) << 2);
        for (let dp = 0; dp < ndp; dp++) {
          const vp = vP + <usize>dp * vpStride;
          const ncol = min(8, D - (dp << 3));
          for (let ti = 0; ti < ntile; ti++) {
            const m0 = ti << 2;
            const mr = min(4, mb - m0);
            const ot = o + <usize>m0 * ldoB + (<usize>dp << 5);
            const at = pP + <usize>ti * (<usize>nkPad << 4);
            if (mr == 4 && ncol == 8) {
              mk4x8p(at, vp, limMax, ot, ldoB, false);
              for (let r = 0; r < 4; r++) {
                const iv = v128.load32_splat(invs + (<usize>(m0 + r) << 2));
                const orow = ot + <usize>r * ldoB;
                v128.store(orow, f32x4.mul(v128.load(orow), iv));
                v128.store(orow, f32x4.mul(v128.load(orow, 16), iv), 16);
              }
            } else {
              mk4x8p(at, vp, limMax, tmp, 32, false);
              for (let r = 0; r < mr; r++) {
                const inv = load<f32>(invs + (<usize>(m0 + r) << 2));
                for (let c = 0; c < ncol; c++) {
                  store<f32>(ot + <usize>r * ldoB + (<usize>c << 2), load<f32>(tmp + (<usize>r << 5) + (<usize>c << 2)) * inv);
                }
              }
            }
          }
        }
      }
    }
  }
}

// Probe of the engine's relaxed int8 dot as gemv_q4 uses it (i16x8.relaxed_dot_i8x16_i7x16_s, widened
// pairwise to i32): the wrapper compares it with the exact dot product. (V8 11.3's Liftoff computes
// i32x4.relaxed_dot_i8x16_i7x16_add_s as twice the dot product ignoring the accumulator; the relaxed build
// runs with --no-liftoff, and a factor of 2 is still handled through rscale.)
export function probe_rdot(a: usize, b: usize, out: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(out, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a), v128.load(b))));
  }
}

// ---------------------------------------------------------------------------------------------
// Machine ceilings for the benchmark: what this runtime reaches with 128-bit wasm SIMD on this host.

// FMA throughput: 10 independent accumulator chains (enough to cover the FMA latency on two pipes),
// register-only. Each thread runs `iters` iterations (80 flops each: 10 x 4 lanes x mul+add) and
// writes a value to out + tid*4 so the loop cannot be removed.
export function fma_peak(iters: i32, out: usize, tid: i32, nth: i32): void {
  let a0 = f32x4.splat(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
  const b = f32x4.splat(0.9999), c = f32x4.splat(0.0001);
  for (let i = 0; i < iters; i++) {
    a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c); a4 = fma(a4, b, c);
    a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c); a8 = fma(a8, b, c); a9 = fma(a9, b, c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(f32x4.add(a6, a7), f32x4.add(a8, a9))));
  store<f32>(out + (<usize>tid << 2), hsum(s));
}

// Streaming read of [p, p + bytes) split between threads (64-byte chunks): integer adds of 16-byte
// loads, one sequential stream per thread, as the GEMV kernels read weight rows.
export function read_sum(p: usize, bytes: usize, out: usize, tid: i32, nth: i32): void {
  const lines = <i32>(bytes >> 6);
  const l0 = partStart(lines, tid, nth, 1), l1 = partEnd(lines, tid, nth, 1);
  let s0 = i32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (let l = l0; l < l1; l++) {
    const q = p + (<usize>l << 6);
    s0 = i32x4.add(s0, v128.load(q)); s1 = i32x4.add(s1, v128.load(q, 16));
    s2 = i32x4.add(s2, v128.load(q, 32)); s3 = i32x4.add(s3, v128.load(q, 48));
  }
  store<i32>(out + (<usize>tid << 2), hsumi(i32x4.add(i32x4.add(s0, s1), i32x4.add(s2, s3))));
}

// ---------------------------------------------------------------------------------------------
// Integer GEMM for q8 / q4 weights (M > 4): activations quantised per 32-block to int16-held int8
// (quantize_act_rows, as the GEMV does), weights widened to int16 panels, i32x4.dot_i16x8_s (pmaddwd:
// 8 multiply-adds per instruction, twice the f32x4 FMA's 4) accumulated exactly per block in int32,
// then scaled once per block by (weight scale x activation scale) into the f32 output.

// Per row m (thread split over rows), per 32-block b: scale max|x|/127 at xs + (m*nb + b)*4 and the
// values round(x / scale) in [-127, 127], zero padded to Kp, as int16 (wide = 1: xq + m*Kp*2) or int8
// (wide = 0: xq + m*Kp) with the block's sum at xsum + (m*nb + b)*4 (xsum 0: not written).
export function quantize_act_rows(x: usize, M: i32, K: i32, xq: usize, wide: i32, xs: usize, xsum: usize, tid: i32, nth: i32): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  const r0 = partStart(M, tid, nth, 1), r1 = partEnd(M, tid, nth, 1);
  const esz: usize = wide ? 2 : 1;
  for (let m = r0; m < r1; m++) {
    const xr = x + ((<usize>m * <usize>K) << 2);
    const qr = xq + <usize>m * <usize>Kp * esz;
    for (let b = 0; b < nb; b++) {
      const k0 = b << 5;
      const kn = min(32, K - k0);
      let amax: f32 = 0;
      if (kn == 32) {
        const p = xr + (<usize>k0 << 2);
        let v = f32x4.abs(v128.load(p));
        for (let j = 16; j < 128; j += 16) v = f32x4.pmax(v, f32x4.abs(v128.load(p + <usize>j)));
        amax = hmax(v);
      } else {
        for (let j = 0; j < kn; j++) amax = max(amax, abs(load<f32>(xr + (<usize>(k0 + j) << 2))));
      }
      const inv: f32 = amax > 0 ? 127.0 / amax : 0;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        let q = 0;
        if (j < kn) q = <i32>nearest(load<f32>(xr + (<usize>(k0 + j) << 2)) * inv);
        if (wide) store<i16>(qr + (<usize>(k0 + j) << 1), <i16>q);
        else store<i8>(qr + <usize>(k0 + j), <i8>q);
        sum += q;
      }
      const o = (<usize>m * <usize>nb + <usize>b) << 2;
      store<f32>(xs + o, amax / 127.0);
      if (xsum) store<i32>(xsum + o, sum);
    }
  }
}

// Weight panels of 8 columns for the integer GEMM, k in [k0, k0 + kc) (multiples of 32); per 32-block the
// 8 columns' scales (32 bytes) at dstS; missing columns zero. mode 0: per k pair 32 bytes = 8 columns x
// (w[k], w[k+1]) as int16 (q8 codes, or q4 nibbles minus 8). mode 1 (q4): per group of 4 k 32 bytes =
// 8 columns x 4 unsigned nibbles (0..15), the 7-bit operand of the relaxed int8 dot.
function packWInt(mode: i32, wType: i32, w: usize, scales: usize, N: i32, Kp: i32, n0: i32, nc: i32, k0: i32, kc: i32, dst: usize, dstS: usize): void {
  const nb = Kp >> 5;
  const np = (nc + 7) >> 3;
  const kb = kc >> 5;
  const kPerRow = mode ? 4 : 2; // k values per 32-byte panel row
  for (let p = 0; p < np; p++) {
    const pd = dst + <usize>p * <usize>(kc / kPerRow) * 32;
    const ps = dstS + <usize>p * <usize>kb * 32;
    for (let j = 0; j < 8; j++) {
      const n = n0 + p * 8 + j;
      const d = pd + (<usize>j << 2);
      const missing = n >= N || p * 8 + j >= nc;
      panelScales(scales, missing ? -1 : n, nb, k0, kb, ps, j);
      if (missing) {
        zeroPanelColumn(d, kc / kPerRow);
        continue;
      }
      if (mode) {
        const src = w + ((<usize>n * <usize>Kp) >> 1) + (<usize>k0 >> 1);
        for (let b = 0; b < kb; b++) {
          const bs = src + (<usize>b << 4);
          const db = d + (<usize>b << 8); // 8 quads x 32 bytes
          const v = v128.load(bs);
          const lo = v128.and(v, i8x16.splat(15)), hi = i8x16.shr_u(v, 4);
          // quads 0..3 from the low nibbles (elements 0..15), 4..7 from the high ones (16..31)
          store<i32>(db, i32x4.extract_lane(lo, 0)); store<i32>(db + 32, i32x4.extract_lane(lo, 1));
          store<i32>(db + 64, i32x4.extract_lane(lo, 2)); store<i32>(db + 96, i32x4.extract_lane(lo, 3));
          store<i32>(db + 128, i32x4.extract_lane(hi, 0)); store<i32>(db + 160, i32x4.extract_lane(hi, 1));
          store<i32>(db + 192, i32x4.extract_lane(hi, 2)); store<i32>(db + 224, i32x4.extract_lane(hi, 3));
        }
        continue;
      }
      if (wType == 2) {
        const src = w + <usize>n * <usize>Kp + <usize>k0;
        for (let k = 0; k < kc; k += 2) {
          const lo = <i32>load<i8>(src + <usize>k), hi = <i32>load<i8>(src + <usize>k + 1);
          store<i32>(d + (<usize>k << 4), (lo & 0xffff) | (hi << 16));
        }
      } else {
        const src = w + ((<usize>n * <usize>Kp) >> 1) + (<usize>k0 >> 1);
        for (let b = 0; b < kb; b++) {
          const bs = src + (<usize>b << 4);
          const db = d + (<usize>b << 9); // 16 k pairs x 32 bytes
          for (let jj = 0; jj < 16; jj += 2) {
            const b0 = <i32>load<u8>(bs + <usize>jj), b1 = <i32>load<u8>(bs + <usize>jj + 1);
            // elements jj, jj+1 (low nibbles) and jj+16, jj+17 (high nibbles), each minus 8
            store<i32>(db + (<usize>jj << 4), (((b0 & 15) - 8) & 0xffff) | (((b1 & 15) - 8) << 16));
            store<i32>(db + (<usize>(jj + 16) << 4), (((b0 >> 4) - 8) & 0xffff) | (((b1 >> 4) - 8) << 16));
          }
        }
      }
    }
  }
}

// C[0..4, 0..8) += sum over kb blocks of float(int32 block dot) * wscale[col] * xscale[row]. ap: packed
// A tile at the first k pair (16 bytes per pair: 4 rows x 2 int16), bp: panel (32 bytes per pair), bs:
// the panel's block scales, xs0..xs3: the 4 rows' scale pointers at the first block.
@inline function mk4x8i16(ap: usize, bp: usize, bs: usize, kb: i32, xs0: usize, xs1: usize, xs2: usize, xs3: usize, c: usize, ldcB: usize): void {
  const r1 = c + ldcB, r2 = r1 + ldcB, r3 = r2 + ldcB;
  for (let b = 0; b < kb; b++) {
    let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
    let c20 = i32x4.splat(0), c21 = i32x4.splat(0), c30 = i32x4.splat(0), c31 = i32x4.splat(0);
    const end = bp + 512;
    while (bp < end) {
      const b0 = v128.load(bp), b1 = v128.load(bp, 16);
      let t = v128.load32_splat(ap);
      c00 = i32x4.add(c00, i32x4.dot_i16x8_s(b0, t)); c01 = i32x4.add(c01, i32x4.dot_i16x8_s(b1, t));
      t = v128.load32_splat(ap, 4);
      c10 = i32x4.add(c10, i32x4.dot_i16x8_s(b0, t)); c11 = i32x4.add(c11, i32x4.dot_i16x8_s(b1, t));
      t = v128.load32_splat(ap, 8);
      c20 = i32x4.add(c20, i32x4.dot_i16x8_s(b0, t)); c21 = i32x4.add(c21, i32x4.dot_i16x8_s(b1, t));
      t = v128.load32_splat(ap, 12);
      c30 = i32x4.add(c30, i32x4.dot_i16x8_s(b0, t)); c31 = i32x4.add(c31, i32x4.dot_i16x8_s(b1, t));
      ap += 16; bp += 32;
    }
    const o = <usize>b << 2;
    const s0 = v128.load(bs), s1 = v128.load(bs, 16);
    bs += 32;
    let x = f32x4.splat(load<f32>(xs0 + o));
    v128.store(c, fma(f32x4.convert_i32x4_s(c00), f32x4.mul(s0, x), v128.load(c)));
    v128.store(c, fma(f32x4.convert_i32x4_s(c01), f32x4.mul(s1, x), v128.load(c, 16)), 16);
    x = f32x4.splat(load<f32>(xs1 + o));
    v128.store(r1, fma(f32x4.convert_i32x4_s(c10), f32x4.mul(s0, x), v128.load(r1)));
    v128.store(r1, fma(f32x4.convert_i32x4_s(c11), f32x4.mul(s1, x), v128.load(r1, 16)), 16);
    x = f32x4.splat(load<f32>(xs2 + o));
    v128.store(r2, fma(f32x4.convert_i32x4_s(c20), f32x4.mul(s0, x), v128.load(r2)));
    v128.store(r2, fma(f32x4.convert_i32x4_s(c21), f32x4.mul(s1, x), v128.load(r2, 16)), 16);
    x = f32x4.splat(load<f32>(xs3 + o));
    v128.store(r3, fma(f32x4.convert_i32x4_s(c30), f32x4.mul(s0, x), v128.load(r3)));
    v128.store(r3, fma(f32x4.convert_i32x4_s(c31), f32x4.mul(s1, x), v128.load(r3, 16)), 16);
  }
}

// q4 GEMM with the relaxed int8 dot (relaxed build only, when probe_rdot found it exact): activations
// quantised to int8 per 32-block (quantize_act_rows: values, scales, block sums), unsigned nibbles as the
// 7-bit operand of i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw: 16 multiply-adds per instruction).
// A block's 8 steps are summed in int16 (|sum| <= 8 * 2 * 127 * 15 = 30480), widened once, and
// 8 * sum(xq) is subtracted (the nibbles carry +8) before the block's scale.


@inline function rdot16(a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.relaxed_dot_i8x16_i7x16_s(a, b);
  } else {
    return i16x8.splat(0);
  }
}

// C[0..4, 0..8) += per block: float(int dot - 8 * xsum) * wscale[col] * xscale[row]. ap: packed int8 A
// (16 bytes per group of 4 k: 4 rows x 4 bytes), bp: nibble panel, bs: panel scales, xs*/xm*: the
// rows' scale / block-sum pointers at the first block.
@inline function mk4x8q4r(ap: usize, bp: usize, bs: usize, kb: i32, xs0: usize, xs1: usize, xs2: usize, xs3: usize,
  xm0: usize, xm1: usize, xm2: usize, xm3: usize, c: usize, ldcB: usize): void {
  const r1 = c + ldcB, r2 = r1 + ldcB, r3 = r2 + ldcB;
  for (let b = 0; b < kb; b++) {
    let c00 = i16x8.splat(0), c01 = i16x8.splat(0), c10 = i16x8.splat(0), c11 = i16x8.splat(0);
    let c20 = i16x8.splat(0), c21 = i16x8.splat(0), c30 = i16x8.splat(0), c31 = i16x8.splat(0);
    const end = bp + 256;
    while (bp < end) {
      const b0 = v128.load(bp), b1 = v128.load(bp, 16);
      let t = v128.load32_splat(ap);
      c00 = i16x8.add(c00, rdot16(t, b0)); c01 = i16x8.add(c01, rdot16(t, b1));
      t = v128.load32_splat(ap, 4);
      c10 = i16x8.add(c10, rdot16(t, b0)); c11 = i16x8.add(c11, rdot16(t, b1));
      t = v128.load32_splat(ap, 8);
      c20 = i16x8.add(c20, rdot16(t, b0)); c21 = i16x8.add(c21, rdot16(t, b1));
      t = v128.load32_splat(ap, 12);
      c30 = i16x8.add(c30, rdot16(t, b0)); c31 = i16x8.add(c31, rdot16(t, b1));
      ap += 16; bp += 32;
    }
    const o = <usize>b << 2;
    const s0 = v128.load(bs), s1 = v128.load(bs, 16);
    bs += 32;
    let x = f32x4.splat(load<f32>(xs0 + o));
    let z = i32x4.splat(load<i32>(xm0 + o) << 3);
    v128.store(c, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c00), z)), f32x4.mul(s0, x), v128.load(c)));
    v128.store(c, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c01), z)), f32x4.mul(s1, x), v128.load(c, 16)), 16);
    x = f32x4.splat(load<f32>(xs1 + o));
    z = i32x4.splat(load<i32>(xm1 + o) << 3);
    v128.store(r1, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c10), z)), f32x4.mul(s0, x), v128.load(r1)));
    v128.store(r1, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c11), z)), f32x4.mul(s1, x), v128.load(r1, 16)), 16);
    x = f32x4.splat(load<f32>(xs2 + o));
    z = i32x4.splat(load<i32>(xm2 + o) << 3);
    v128.store(r2, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c20), z)), f32x4.mul(s0, x), v128.load(r2)));
    v128.store(r2, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c21), z)), f32x4.mul(s1, x), v128.load(r2, 16)), 16);
    x = f32x4.splat(load<f32>(xs3 + o));
    z = i32x4.splat(load<i32>(xm3 + o) << 3);
    v128.store(r3, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c30), z)), f32x4.mul(s0, x), v128.load(r3)));
    v128.store(r3, fma(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extadd_pairwise_i16x8_s(c31), z)), f32x4.mul(s1, x), v128.load(r3, 16)), 16);
  }
}

// Integer GEMM driver, y[M, N] = dequant(A) * dequant(W)^T + bias, for q8 (wType 2) / q4 (wType 3) weights.
// mode 0: int16 activations (ap: xq16 packed by pack_a as k pairs), int16 panels (packWInt mode 0, mk4x8i16);
// mode 1 (q4 only, relaxed build, exact dot): int8 activations (ap: xq8 packed as k quads), nibble panels
// (packWInt mode 1, mk4x8q4r), xsum the activations' block sums. xs: activation block scales [M, nb]. Per thread a
// column range; per GNC columns x GKC depth the weight panels are built once and reused by all rows.
export function gemm_int(mode: i32, wType: i32, ap: usize, M: i32, K: i32, w: usize, scales: usize, N: i32, bias: usize, y: usize,
  xs: usize, xsum: usize, scratch: usize, scratchStride: usize, tid: i32, nth: i32): void {
  const Kp = (K + 31) & ~31;
  const nb = Kp >> 5;
  const j0 = partStart(N, tid, nth, 8), j1 = partEnd(N, tid, nth, 8);
  if (j0 >= j1) return;
  // bytes per k: packed A tile (16 bytes per 2 or 4 k), weight panel (32 bytes per 2 or 4 k)
  const aK: usize = mode ? 4 : 8, pK: usize = mode ? 8 : 16;
  const pack = scratch + <usize>tid * scratchStride;
  const packS = pack + <usize>GNC * <usize>GKC * (pK >> 3);
  const tmp = packS + <usize>(GNC >> 3) * <usize>(GKC >> 5) * 32;
  const ldcB = <usize>N << 2;
  const tileB = <usize>Kp * aK;
  const rs = <usize>nb << 2;
  for (let m = 0; m < M; m++) memory.fill(y + ((<usize>m * <usize>N + <usize>j0) << 2), 0, <usize>(j1 - j0) << 2);
  for (let n0 = j0; n0 < j1; n0 += GNC) {
    const nc = min(GNC, j1 - n0);
    for (let k0 = 0; k0 < Kp; k0 += GKC) {
      const kc = min(GKC, Kp - k0);
      const kb = kc >> 5;
      packWInt(mode, wType, w, scales, N, Kp, n0, nc, k0, kc, pack, packS);
      for (let m0 = 0; m0 < M; m0 += GMR) {
        const mr = min(GMR, M - m0);
        const at = ap + <usize>(m0 >> 2) * tileB + <usize>k0 * aK;
        const off = (<usize>m0 * <usize>nb + <usize>(k0 >> 5)) << 2;
        // rows past M use row m0's scales and sums (their packed A is zero, so they add nothing)
        const d1: usize = mr > 1 ? rs : 0, d2: usize = mr > 2 ? 2 * rs : 0, d3: usize = mr > 3 ? 3 * rs : 0;
        const xb = xs + off, mb = xsum + off;
        for (let p = 0; p * 8 < nc; p++) {
          const b = pack + <usize>p * <usize>kc * pK;
          const bs = packS + <usize>p * <usize>kb * 32;
          const c = y + ((<usize>m0 * <usize>N + <usize>(n0 + p * 8)) << 2);
          const ncol = min(8, nc - p * 8);
          const full = ncol == 8 && mr == GMR;
          const dst = full ? c : tmp;
          const ld: usize = full ? ldcB : 32;
          if (!full) memory.fill(tmp, 0, 128);
          if (mode) mk4x8q4r(at, b, bs, kb, xb, xb + d1, xb + d2, xb + d3, mb, mb + d1, mb + d2, mb + d3, dst, ld);
          else mk4x8i16(at, b, bs, kb, xb, xb + d1, xb + d2, xb + d3, dst, ld);
          if (!full) storeTile(tmp, c, ldcB, mr, ncol, true);
        }
      }
    }
  }
  if (bias) addBias(y, bias, M, N, j0, j1);
}
