// Kernel tests of the WebAssembly backend against plain-TS float64 references, on odd shapes, for both
// builds (SIMD128, relaxed SIMD) and 1 and 2 threads.
//
// Tolerances (all absolute, per output element):
//   f32 / bf16 weights, f32 math:  |y - ref| <= 1e-5 * sum_k |x_k w_k| + 1e-7   (ref uses the exact bf16 values)
//   q8 / q4 GEMV (M <= 4, activations quantised per 32-block to int8, scale a = max|x|/127):
//       |y - ref_deq| <= sum_blocks (a_b / 2) * sum_{k in b} |wdeq_k|  +  1e-5 * sum |x wdeq| + 1e-7
//     where ref_deq uses the dequantised weights (quantisation error of the weights themselves is checked
//     separately: q8 |w - wdeq| <= scale/2, q4 |w - wdeq| <= |scale|).
//   q8 / q4 GEMM (M > 4), integer path (intGemm; default for q4: activations quantised per 32-block like
//     the GEMV, int16 dot products, or the relaxed int8 dot for q4): the GEMV bound above; it must also
//     equal the GEMV on the same rows within 1e-5 * sum |x wdeq| (same integer block dots, other order).
//   q8 / q4 GEMM on f32 activations (default for q8; intGemm [] for q4): the f32 bound against ref_deq.
//   norms, rope, activations, softmax, attention: 2e-6 relative to the magnitude involved (see each test);
//   erf: 1e-7 absolute (measured ~1e-15).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmKernels, type WasmBuild, type WeightHandle } from '../../src/backends/wasm/kernels.js';

let seed = 12345;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
}
function randn(n: number, s = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rnd() * 2 - 1) * s;
  return a;
}
function toBf16(a: Float32Array): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const o = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = (u[i]! + 0x7fff + ((u[i]! >> 16) & 1)) >>> 16; // round to nearest even
  return o;
}
function fromBf16(b: Uint16Array): Float32Array {
  const o = new Float32Array(b.length);
  const u = new Uint32Array(o.buffer);
  for (let i = 0; i < b.length; i++) u[i] = b[i]! << 16;
  return o;
}

function refLinear(x: Float32Array, M: number, K: number, w: Float32Array, N: number, bias: Float32Array | null) {
  const y = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0, a = bias ? Math.abs(bias[n]!) : 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k]! * w[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      mag[m * N + n] = a;
    }
  return { y, mag };
}

function checkClose(got: Float32Array, ref: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let worst = 0, wi = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i]! - ref[i]!);
    if (!(e <= tol(i))) assert.fail(`${what}: element ${i} got ${got[i]} want ${ref[i]} (err ${e}, tol ${tol(i)})`);
    if (e > worst) { worst = e; wi = i; }
  }
  void wi;
}

// independent erf reference: Maclaurin series (|x| < 3), asymptotic continued fraction (Lentz) beyond
function refErf(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 3) {
    let term = ax, sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-18) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up
    let f = ax;
    for (let n = 200; n >= 1; n--) f = ax + n / 2 / f;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, T: number, nH: number, nKV: number, D: number,
  kvLen: number, past: number, cu: number[] | null, scale: number): Float64Array {
  const out = new Float64Array(T * nH * D);
  const grp = nH / nKV;
  for (let t = 0; t < T; t++)
    for (let h = 0; h < nH; h++) {
      const g = Math.floor(h / grp);
      let lo = 0, hi = past + t + 1;
      if (cu) {
        for (let s = 0; s + 1 < cu.length; s++) if (t >= cu[s]! && t < cu[s + 1]!) { lo = cu[s]!; hi = cu[s + 1]!; }
      }
      const sc: number[] = [];
      let mx = -Infinity;
      for (let j = lo; j < hi; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(t * nH + h) * D + d]! * k[(j * nKV + g) * D + d]!;
        sc.push(s * scale);
        mx = Math.max(mx, s * scale);
      }
      let sum = 0;
      for (let i = 0; i < sc.length; i++) { sc[i] = Math.exp(sc[i]! - mx); sum += sc[i]!; }
      for (let d = 0; d < D; d++) {
        let o = 0;
        for (let j = lo; j < hi; j++) o += (sc[j - lo]! / sum) * v[(j * nKV + g) * D + d]!;
        out[(t * nH + h) * D + d] = o;
      }
      void kvLen;
    }
  return out;
}

const builds = await WasmKernels.supportedBuilds();
const configs: { build: WasmBuild; threads: number }[] = [];
for (const b of builds) for (const t of [1, 2]) configs.push({ build: b, threads: t });

it('both wasm builds are available', () => {
  assert.ok(builds.includes('simd'), 'SIMD128 build');
  assert.ok(builds.includes('relaxed'), 'relaxed SIMD build (Node 20 needs the V8 flag, set by the wrapper)');
});

for (const cfg of configs) {
  describe(`wasm kernels (${cfg.build}, ${cfg.threads} thread${cfg.threads > 1 ? 's' : ''})`, () => {
    let k: WasmKernels;
    before(async () => {
      k = await WasmKernels.create({ threads: cfg.threads, build: cfg.build });
      assert.equal(k.build, cfg.build);
    });
    after(() => k.dispose());

    const shapes: [number, number, number][] = [[1, 67, 13], [3, 67, 13], [5, 67, 13], [13, 300, 70], [2, 300, 70], [6, 33, 9]];

    it('linear f32 (GEMV and GEMM paths, bias)', async () => {
      for (const [M, K, N] of shapes) {
        const x = randn(M * K), w = randn(N * K), b = randn(N);
        const h = await k.uploadWeight('f32', [N, K], w);
        for (const bias of [null, b]) {
          const y = k.linear(x, M, K, h, bias);
          const r = refLinear(x, M, K, w, N, bias);
          checkClose(y, r.y, (i) => 1e-5 * r.mag[i]! + 1e-7, `f32 ${M}x${K}x${N}`);
        }
      }
    });

    it('linear bf16 weights', async () => {
      for (const [M, K, N] of shapes) {
        const x = randn(M * K), wb = toBf16(randn(N * K)), b = randn(N);
        const h = await k.uploadWeight('bf16', [N, K], wb);
        const w = fromBf16(wb);
        assert.deepEqual(k.readWeight(h), w);
        const y = k.linear(x, M, K, h, b);
        const r = refLinear(x, M, K, w, N, b);
        checkClose(y, r.y, (i) => 1e-5 * r.mag[i]! + 1e-7, `bf16 ${M}x${K}x${N}`);
      }
    });

    it('GEMM over row blocks (gemmRows 8, M not a multiple of it) equals one block, every format', async () => {
      const kb = await WasmKernels.create({ threads: cfg.threads, build: cfg.build, gemmRows: 8 });
      try {
        const [M, K, N] = [29, 300, 70];
        const x = randn(M * K), w = randn(N * K), b = randn(N);
        for (const fmt of ['f32', 'bf16', 'q8', 'q4'] as const) {
          const up = (kk: WasmKernels): Promise<WeightHandle> => fmt === 'f32' ? kk.uploadWeight('f32', [N, K], w)
            : fmt === 'bf16' ? kk.uploadWeight('bf16', [N, K], toBf16(w)) : kk.uploadWeight('f32', [N, K], w, { quant: fmt });
          const [h1, h2] = [await up(k), await up(kb)];
          const whole = k.linear(x, M, K, h1, b), blocked = kb.linear(x, M, K, h2, b);
          // same kernel, same per-row arithmetic: identical values
          assert.deepEqual(blocked, whole, `${fmt} ${M}x${K}x${N}`);
        }
        await assert.rejects(WasmKernels.create({ threads: 1, build: cfg.build, gemmRows: 6 }), /gemmRows must be a positive multiple of 4/);
      } finally {
        kb.dispose();
      }
    });

    if (cfg.build === 'relaxed') {
      it('q4 GEMV with the relaxed integer dot forced on matches the int16 path', async () => {
        const kr = await WasmKernels.create({ threads: cfg.threads, build: 'relaxed', q4Path: 'rdot' });
        try {
          assert.equal(kr.rdotScale, 1, 'relaxed integer dot probed exact (TurboFan)');
          const [M, K, N] = [2, 300, 70];
          const x = randn(M * K, 2), w = randn(N * K);
          const h1 = await kr.uploadWeight('f32', [N, K], w, { quant: 'q4' });
          const h2 = await k.uploadWeight('f32', [N, K], w, { quant: 'q4' });
          const saved = k.rdotScale;
          k.rdotScale = 0;
          const yi = k.linear(x, M, K, h2);
          k.rdotScale = saved;
          const yr = kr.linear(x, M, K, h1);
          checkClose(yr, yi, (i) => 1e-5 * (Math.abs(yi[i]!) + 1), 'q4 rdot vs int16');
        } finally {
          kr.dispose();
        }
      });
    }

    for (const q of ['q8', 'q4'] as const) {
      it(`linear ${q} weights (quantised from f32 and bf16), integer GEMM`, async () => {
        const k = await WasmKernels.create({ threads: cfg.threads, build: cfg.build, intGemm: [q] });
        try {
          for (const [M, K, N] of shapes) {
            for (const src of ['f32', 'bf16'] as const) {
              const x = randn(M * K, 2), w0 = randn(N * K), b = randn(N);
              let h: WeightHandle, w: Float32Array;
              if (src === 'f32') { h = await k.uploadWeight('f32', [N, K], w0, { quant: q }); w = w0; }
              else { const wb = toBf16(w0); h = await k.uploadWeight('bf16', [N, K], wb, { quant: q }); w = fromBf16(wb); }
              const wd = k.readWeight(h);
              // weight quantisation error
              for (let n = 0; n < N; n++)
                for (let b0 = 0; b0 < K; b0 += 32) {
                  let amax = 0;
                  for (let j = b0; j < Math.min(K, b0 + 32); j++) amax = Math.max(amax, Math.abs(w[n * K + j]!));
                  const bound = q === 'q8' ? (amax / 127) * 0.5 * (1 + 1e-5) : (amax / 8) * (1 + 1e-5);
                  for (let j = b0; j < Math.min(K, b0 + 32); j++) {
                    const e = Math.abs(w[n * K + j]! - wd[n * K + j]!);
                    assert.ok(e <= bound + 1e-12, `${q} weight error ${e} > ${bound}`);
                  }
                }
              const y = k.linear(x, M, K, h, b);
              const r = refLinear(x, M, K, wd, N, b);
              const tol = new Float64Array(M * N);
              for (let m = 0; m < M; m++)
                for (let n = 0; n < N; n++) {
                  let t = 1e-5 * r.mag[m * N + n]! + 1e-7;
                  {
                    for (let b0 = 0; b0 < K; b0 += 32) {
                      let amax = 0, wsum = 0;
                      for (let j = b0; j < Math.min(K, b0 + 32); j++) {
                        amax = Math.max(amax, Math.abs(x[m * K + j]!));
                        wsum += Math.abs(wd[n * K + j]!);
                      }
                      t += (amax / 127) * 0.5 * wsum * (1 + 1e-5);
                    }
                  }
                  tol[m * N + n] = t;
                }
              checkClose(y, r.y, (i) => tol[i]!, `${q}<-${src} ${M}x${K}x${N}`);
              if (M > 4) {
                // the integer GEMM and the GEMV (four rows at a time) compute the same block dots
                for (let m0 = 0; m0 < M; m0 += 4) {
                  const mr = Math.min(4, M - m0);
                  const g = k.linear(x.subarray(m0 * K, (m0 + mr) * K), mr, K, h, b);
                  checkClose(y.subarray(m0 * N, (m0 + mr) * N), Float64Array.from(g), (i) => 1e-5 * r.mag[m0 * N + i]! + 1e-7, `${q} GEMM vs GEMV rows ${m0}..`);
                }
              }
            }
          }
        } finally {
          k.dispose();
        }
      });

      it(`linear ${q} GEMM on f32 activations (intGemm [])`, async () => {
        const kf = await WasmKernels.create({ threads: cfg.threads, build: cfg.build, intGemm: [] });
        try {
          for (const [M, K, N] of shapes.filter(([m]) => m > 4)) {
            const x = randn(M * K, 2), w0 = randn(N * K), b = randn(N);
            const h = await kf.uploadWeight('f32', [N, K], w0, { quant: q });
            const r = refLinear(x, M, K, kf.readWeight(h), N, b);
            checkClose(kf.linear(x, M, K, h, b), r.y, (i) => 1e-5 * r.mag[i]! + 1e-7, `${q} f32-GEMM ${M}x${K}x${N}`);
          }
        } finally {
          kf.dispose();
        }
      });
    }

    it('rmsnorm and layernorm', () => {
      for (const [rows, dim] of [[1, 67], [5, 13], [300, 130]] as const) {
        const x = randn(rows * dim, 3), w = randn(dim), b = randn(dim);
        const eps = 1e-6;
        const y = k.rmsnorm(x, rows, dim, w, eps);
        const yl = k.layernorm(x, rows, dim, w, b, 1e-5);
        const r = new Float64Array(rows * dim), rl = new Float64Array(rows * dim);
        for (let i = 0; i < rows; i++) {
          let ss = 0, mean = 0;
          for (let j = 0; j < dim; j++) { ss += x[i * dim + j]! ** 2; mean += x[i * dim + j]!; }
          mean /= dim;
          let vr = 0;
          for (let j = 0; j < dim; j++) vr += (x[i * dim + j]! - mean) ** 2;
          vr /= dim;
          const inv = 1 / Math.sqrt(ss / dim + eps), invl = 1 / Math.sqrt(vr + 1e-5);
          for (let j = 0; j < dim; j++) {
            r[i * dim + j] = x[i * dim + j]! * inv * w[j]!;
            rl[i * dim + j] = (x[i * dim + j]! - mean) * invl * w[j]! + b[j]!;
          }
        }
        checkClose(y, r, (i) => 2e-6 * (Math.abs(r[i]!) + 1), `rmsnorm ${rows}x${dim}`);
        checkClose(yl, rl, (i) => 2e-6 * (Math.abs(rl[i]!) + 1), `layernorm ${rows}x${dim}`);
      }
    });

    it('rope (NeoX half split, full and partial rotary)', () => {
      for (const [T, nH, D, rot] of [[3, 2, 10, 10], [5, 3, 22, 22], [70, 4, 64, 64], [2, 2, 12, 8]] as const) {
        const x = randn(T * nH * D), half = rot / 2;
        const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
        for (let t = 0; t < T; t++)
          for (let i = 0; i < half; i++) {
            const ang = (t + 1) * Math.pow(10000, (-2 * i) / rot);
            cos[t * half + i] = Math.cos(ang);
            sin[t * half + i] = Math.sin(ang);
          }
        const y = k.ropeNeox(x, T, nH, D, cos, sin, rot);
        const r = Float64Array.from(x);
        for (let t = 0; t < T; t++)
          for (let h = 0; h < nH; h++) {
            const o = (t * nH + h) * D;
            for (let i = 0; i < half; i++) {
              const a = x[o + i]!, b = x[o + i + half]!, c = cos[t * half + i]!, s = sin[t * half + i]!;
              r[o + i] = a * c - b * s;
              r[o + i + half] = b * c + a * s;
            }
          }
        checkClose(y, r, () => 1e-6, `rope ${T}x${nH}x${D}/${rot}`);
      }
    });

    it('silu*up, gelu (tanh, erf), erf accuracy, softmax, add', () => {
      for (const n of [1, 7, 67, 40001]) {
        const g = randn(n, 8), u = randn(n, 2);
        const y = k.siluMul(g, u);
        checkClose(y, Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]!), (i) => 2e-6 * (Math.abs(g[i]! * u[i]!) + 1e-3), `silu ${n}`);
        const gt = k.geluTanh(g);
        checkClose(gt, Array.from(g, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), (i) => 2e-6 * (Math.abs(g[i]!) + 1e-3), `gelu_tanh ${n}`);
        const ge = k.geluErf(g);
        checkClose(ge, Array.from(g, (v) => 0.5 * v * (1 + refErf(v / Math.SQRT2))), (i) => 1e-6 * Math.abs(g[i]!) + 1e-7, `gelu_erf ${n}`);
        const s = k.add(g, u);
        checkClose(s, Array.from(g, (v, i) => v + u[i]!), () => 1e-6, `add ${n}`);
      }
      let worst = 0;
      for (let x = -7; x <= 7; x += 0.01371) worst = Math.max(worst, Math.abs(k.erf(x) - refErf(x)));
      assert.ok(worst <= 1e-7, `erf max error ${worst}`);
      for (const [rows, cols] of [[1, 5], [3, 67], [200, 129]] as const) {
        const x = randn(rows * cols, 20);
        const y = k.softmax(x, rows, cols);
        const r = new Float64Array(rows * cols);
        for (let i = 0; i < rows; i++) {
          let mx = -Infinity, sum = 0;
          for (let j = 0; j < cols; j++) mx = Math.max(mx, x[i * cols + j]!);
          for (let j = 0; j < cols; j++) sum += Math.exp(x[i * cols + j]! - mx);
          for (let j = 0; j < cols; j++) r[i * cols + j] = Math.exp(x[i * cols + j]! - mx) / sum;
        }
        checkClose(y, r, (i) => 2e-6 * r[i]! + 1e-9, `softmax ${rows}x${cols}`);
      }
    });

    it('attention: causal prefill/decode (GQA), segmented non-causal, KV cache', async () => {
      const cases: { T: number; nH: number; nKV: number; D: number; past: number; cu: number[] | null }[] = [
        { T: 5, nH: 4, nKV: 2, D: 20, past: 3, cu: null }, // blocked path, D % 8 != 0
        { T: 1, nH: 4, nKV: 2, D: 20, past: 9, cu: null }, // decode, direct path
        { T: 2, nH: 2, nKV: 1, D: 37, past: 0, cu: null }, // direct path, odd D
        { T: 33, nH: 6, nKV: 2, D: 64, past: 7, cu: null }, // blocked, GQA 3
        { T: 11, nH: 3, nKV: 3, D: 12, past: 0, cu: [0, 4, 11] }, // vision-style segments, blocked
        { T: 5, nH: 1, nKV: 1, D: 19, past: 0, cu: [0, 2, 5] }, // segments, direct
        { T: 70, nH: 2, nKV: 2, D: 16, past: 0, cu: [0, 30, 31, 70] },
      ];
      for (const c of cases) {
        const kvLen = c.past + c.T;
        const q = randn(c.T * c.nH * c.D), kk = randn(kvLen * c.nKV * c.D), v = randn(kvLen * c.nKV * c.D);
        const scale = 1 / Math.sqrt(c.D);
        const y = k.attention(q, kk, v, { T: c.T, nH: c.nH, nKV: c.nKV, D: c.D, past: c.past, cuSeqlens: c.cu ?? undefined });
        const r = refAttention(q, kk, v, c.T, c.nH, c.nKV, c.D, kvLen, c.past, c.cu, scale);
        checkClose(y, r, () => 3e-6, `attention ${JSON.stringify(c)}`);
        if (!c.cu) {
          const cache = await k.createKVCache(2, c.nKV, c.D, kvLen + 3);
          // write the past first, then the new tokens (layer 1)
          k.writeKV(cache, 1, 0, c.past, kk.subarray(0, c.past * c.nKV * c.D), v.subarray(0, c.past * c.nKV * c.D));
          k.writeKV(cache, 1, c.past, c.T, kk.subarray(c.past * c.nKV * c.D), v.subarray(c.past * c.nKV * c.D));
          const yc = k.attentionCached(q, cache, 1, c.T, c.nH, c.past);
          checkClose(yc, r, () => 3e-6, `attentionCached ${JSON.stringify(c)}`);
        }
      }
    });
  });
}
