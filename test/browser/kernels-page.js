// Runs in a real browser (driven by scripts/test-browser.mjs): the wasm kernels and the wasm backend
// from dist/, with a pool of module Web Workers on shared memories, checked against float64 references
// computed here. Tolerances as in test/wasm/kernels.test.ts: f32/bf16 1e-5 * sum|x w| + 1e-7; q8/q4 plus
// the activation-quantisation bound sum_blocks (max|x_b|/127/2) * sum_b |wdeq|.
import { WasmKernels } from '../../dist/src/backends/wasm/kernels.js';
import { WasmBackend } from '../../dist/src/backends/wasm/index.js';

const results = [];
const check = (name, ok, detail = '') => results.push({ name, ok: !!ok, detail });

let seed = 7;
const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32 * 2 - 1; };
const randn = (n) => Float32Array.from({ length: n }, rnd);
const toBf16 = (a) => { const u = new Uint32Array(a.buffer, a.byteOffset, a.length); return Uint16Array.from(u, (x) => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16); };

function refLinear(x, M, K, w, N, bias) {
  const y = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = bias ? bias[n] : 0, a = 0;
    for (let k = 0; k < K; k++) { const t = x[m * K + k] * w[n * K + k]; s += t; a += Math.abs(t); }
    y[m * N + n] = s; mag[m * N + n] = a;
  }
  return { y, mag };
}
function actBound(x, m, K, wd, n) {
  let t = 0;
  for (let b0 = 0; b0 < K; b0 += 32) {
    let amax = 0, ws = 0;
    for (let j = b0; j < Math.min(K, b0 + 32); j++) { amax = Math.max(amax, Math.abs(x[m * K + j])); ws += Math.abs(wd[n * K + j]); }
    t += (amax / 127) * 0.5 * ws * (1 + 1e-5);
  }
  return t;
}

async function run() {
  check('cross-origin isolated (SharedArrayBuffer available)', self.crossOriginIsolated && typeof SharedArrayBuffer === 'function');
  const builds = await WasmKernels.supportedBuilds();
  check(`builds accepted: ${builds.join(', ')}`, builds.includes('simd'));
  for (const build of builds) {
    for (const threads of [1, 2]) {
      const k = await WasmKernels.create({ build, threads });
      const tag = `${build}, ${threads} thread${threads > 1 ? 's' : ''}`;
      check(`${tag}: created (${k.threads} threads, relaxed int8 dot exact: ${k.rdotExact})`, k.threads === threads && k.build === build);
      for (const [M, K, N] of [[1, 67, 13], [3, 300, 70], [13, 300, 70], [6, 33, 9]]) {
        for (const fmt of ['f32', 'bf16', 'q8', 'q4']) {
          const x = randn(M * K), w0 = randn(N * K), b = randn(N);
          const h = fmt === 'f32' ? await k.uploadWeight('f32', [N, K], w0)
            : fmt === 'bf16' ? await k.uploadWeight('bf16', [N, K], toBf16(w0))
            : await k.uploadWeight('f32', [N, K], w0, { quant: fmt });
          const wd = k.readWeight(h);
          const y = k.linear(x, M, K, h, b);
          const r = refLinear(x, M, K, wd, N, b);
          const quantAct = (fmt === 'q8' && M <= 4) || (fmt === 'q4');
          let worst = 0, ok = true;
          for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
            const i = m * N + n, e = Math.abs(y[i] - r.y[i]);
            const tol = 1e-5 * r.mag[i] + 1e-7 + (quantAct ? actBound(x, m, K, wd, n) : 0);
            if (!(e <= tol)) ok = false;
            worst = Math.max(worst, e / tol);
          }
          check(`${tag}: linear ${fmt} ${M}x${K}x${N}`, ok, `worst error / tolerance ${worst.toFixed(3)}`);
        }
      }
      // attention: one vision-like segment pair, non-causal, and a causal prefill with GQA
      for (const p of [{ T: 21, nH: 2, nKV: 2, D: 16, cuSeqlens: [0, 9, 21] }, { T: 17, nH: 4, nKV: 2, D: 8 }]) {
        const q = randn(p.T * p.nH * p.D), kk = randn(p.T * p.nKV * p.D), v = randn(p.T * p.nKV * p.D);
        const o = k.attention(q, kk, v, p);
        const segs = p.cuSeqlens ?? [0, p.T];
        let worst = 0;
        for (let h = 0; h < p.nH; h++) {
          const g = Math.floor(h / (p.nH / p.nKV));
          for (let s = 0; s + 1 < segs.length; s++) for (let t = segs[s]; t < segs[s + 1]; t++) {
            const hi = p.cuSeqlens ? segs[s + 1] : t + 1;
            const sc = [];
            for (let u = segs[s]; u < hi; u++) { let d = 0; for (let j = 0; j < p.D; j++) d += q[(t * p.nH + h) * p.D + j] * kk[(u * p.nKV + g) * p.D + j]; sc.push(d / Math.sqrt(p.D)); }
            const mx = Math.max(...sc), ex = sc.map((z) => Math.exp(z - mx)), z = ex.reduce((a, c) => a + c, 0);
            for (let j = 0; j < p.D; j++) {
              let acc = 0;
              for (let u = segs[s]; u < hi; u++) acc += (ex[u - segs[s]] / z) * v[(u * p.nKV + g) * p.D + j];
              worst = Math.max(worst, Math.abs(acc - o[(t * p.nH + h) * p.D + j]));
            }
          }
        }
        check(`${tag}: attention T=${p.T} ${p.cuSeqlens ? 'segments' : 'causal'}`, worst < 2e-6, `max error ${worst.toExponential(2)}`);
      }
      k.dispose();
    }
  }
  // the backend contract on top of the kernels: a linear + RMSNorm through WasmBackend
  const be = await WasmBackend.create({ threads: 2 });
  const N = 24, K = 40, vals = randn(N * K), nw = randn(N);
  const src = (name, shape, data) => ({
    name, dtype: 'F32', shape,
    readInto: (dst) => dst.set(new Uint8Array(data.buffer)),
    readRange: (off, dst) => dst.set(new Uint8Array(data.buffer, off, dst.length)),
  });
  const W = be.loadWeight(src('w', [N, K], vals)), G = be.loadWeight(src('g', [N], nw));
  const x = randn(5 * K);
  const y = be.toArray(be.rmsNorm(be.linear(be.fromArray(x, [5, K]), W), G, 1e-6));
  const r = refLinear(x, 5, K, vals, N, null);
  let worst = 0;
  for (let m = 0; m < 5; m++) {
    let ss = 0;
    for (let n = 0; n < N; n++) ss += r.y[m * N + n] ** 2;
    const inv = 1 / Math.sqrt(ss / N + 1e-6);
    for (let n = 0; n < N; n++) worst = Math.max(worst, Math.abs(y[m * N + n] - r.y[m * N + n] * inv * nw[n]));
  }
  check(`WasmBackend (${be.threads} threads, ${be.build}): linear + rmsNorm`, worst < 1e-4, `max error ${worst.toExponential(2)}`);
  be.dispose();
}

run().then(
  () => { window.__result = { done: true, results, userAgent: navigator.userAgent }; },
  (e) => { window.__result = { done: true, results, error: String(e && e.stack || e), userAgent: navigator.userAgent }; },
);
