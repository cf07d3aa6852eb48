#!/usr/bin/env node
// Micro-benchmark of the wasm kernels (run after `npm run build`): prints one JSON object.
//   GEMM GFLOPS at M x K x N = 512 x 2048 x 2048 (f32 / bf16 / q8 / q4 weights)
//   GEMV GB/s (weight bytes incl. scales per call) at 1 x 2048 x 6144, cold: round-robin over weight copies
//   totalling > 128 MiB (L3 is 32 MiB), plus the per-call overhead of a tiny linear.
//   Attention GFLOPS (4*T*keys*D*nH flops): vision-like 3072 patches x 16 heads x 64 (one segment, non-causal)
//   and prefill-like 512 tokens, 16 query / 8 kv heads x 128, causal (half the flops).
// Each number is the median of 3 timed repetitions after a warm-up. Options: --builds simd,relaxed --threads 1,2
import { WasmKernels } from '../dist/src/backends/wasm/kernels.js';
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : def; };
const builds = opt('--builds', 'relaxed,simd').split(',');
const threadsList = opt('--threads', '1,2').split(',').map(Number);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

let seed = 1;
const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32 - 0.5; };
const randf = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd(); return a; };
const toBf16 = (a) => { const u = new Uint32Array(a.buffer); const o = new Uint16Array(a.length); for (let i = 0; i < a.length; i++) o[i] = u[i] >>> 16; return o; };

// The machine is shared: before each measurement wait (up to --quiet-ms, default 20 s) until other
// processes use < 0.15 cores (from /proc/stat minus our own CPU time); the load seen is reported.
const quietMs = Number(opt('--quiet-ms', '20000'));
function cpuTicks() {
  try {
    const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: l[3] + l[4], total: l.reduce((a, b) => a + b, 0) };
  } catch { return null; }
}
async function waitQuiet() {
  const t0 = Date.now();
  let others = 0;
  for (;;) {
    const a = cpuTicks(); if (!a) return -1;
    const u0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 250));
    const b = cpuTicks(), u = process.cpuUsage(u0);
    const busyTicks = (b.total - a.total) - (b.idle - a.idle);
    others = busyTicks / 25 - (u.user + u.system) / 250000; // cores
    if (others < 0.15 || Date.now() - t0 > quietMs) return +Math.max(0, others).toFixed(2);
  }
}

const results = { machine: `${process.arch} node ${process.version}`, gemm: [], gemv: [], attention: [], overhead: [] };
const [GK, GN, GM] = [2048, 2048, 512];
const [VK, VN] = [2048, 6144];
const wG = randf(GN * GK), xG = randf(GM * GK);
const wV = randf(VN * VK), xV = randf(VK);
const wGb = toBf16(wG), wVb = toBf16(wV);

for (const build of builds) {
  for (const threads of threadsList) {
    const k = await WasmKernels.create({ build, threads });
    // GEMM
    for (const fmt of ['f32', 'bf16', 'q8', 'q4']) {
      if (build === 'simd' && fmt !== 'f32') continue;
      const h = fmt === 'f32' ? await k.uploadWeight('f32', [GN, GK], wG)
        : fmt === 'bf16' ? await k.uploadWeight('bf16', [GN, GK], wGb)
        : await k.uploadWeight('bf16', [GN, GK], wGb, { quant: fmt });
      const out = new Float32Array(GM * GN);
      k.linear(xG, GM, GK, h, null, out);
      const others = await waitQuiet();
      const ts = [];
      for (let r = 0; r < 3; r++) { const t0 = performance.now(); k.linear(xG, GM, GK, h, null, out); ts.push(performance.now() - t0); }
      const ms = median(ts);
      results.gemm.push({ build, threads, fmt, shape: `${GM}x${GK}x${GN}`, ms: +ms.toFixed(2), gflops: +((2 * GM * GK * GN) / ms / 1e6).toFixed(1), others_cores: others, range_ms: [Math.min(...ts).toFixed(1), Math.max(...ts).toFixed(1)].map(Number) });
    }
    // GEMV cold
    for (const fmt of ['f32', 'bf16', 'q8', 'q4']) {
      if (build === 'simd' && (fmt === 'f32')) { /* measured too */ }
      const per = fmt === 'f32' ? VN * VK * 4 : fmt === 'bf16' ? VN * VK * 2 : fmt === 'q8' ? VN * VK + VN * (VK / 32) * 4 : VN * VK / 2 + VN * (VK / 32) * 4;
      const copies = Math.max(3, Math.ceil((128 << 20) / per));
      const hs = [];
      for (let c = 0; c < copies; c++) {
        hs.push(fmt === 'f32' ? await k.uploadWeight('f32', [VN, VK], wV)
          : fmt === 'bf16' ? await k.uploadWeight('bf16', [VN, VK], wVb)
          : await k.uploadWeight('bf16', [VN, VK], wVb, { quant: fmt }));
      }
      const out = new Float32Array(VN);
      for (const h of hs) k.linear(xV, 1, VK, h, null, out);
      const others = await waitQuiet();
      for (const h of hs) k.linear(xV, 1, VK, h, null, out);
      const ts = [];
      const calls = Math.max(copies, 24);
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        for (let i = 0; i < calls; i++) k.linear(xV, 1, VK, hs[i % copies], null, out);
        ts.push((performance.now() - t0) / calls);
      }
      const ms = median(ts);
      results.gemv.push({ build, threads, fmt, shape: `1x${VK}x${VN}`, copies, weight_MB: +(per / 1e6).toFixed(1), ms: +ms.toFixed(3), GBps: +(per / ms / 1e6).toFixed(1), others_cores: others, range_ms: [Math.min(...ts).toFixed(3), Math.max(...ts).toFixed(3)].map(Number) });
    }
    // attention (blocked path)
    for (const c of [{ what: 'vision 3072x16x64 full', T: 3072, nH: 16, nKV: 16, D: 64, cu: [0, 3072] }, { what: 'prefill 512 16/8x128 causal', T: 512, nH: 16, nKV: 8, D: 128, cu: null }]) {
      const q = randf(c.T * c.nH * c.D), kk = randf(c.T * c.nKV * c.D), v = randf(c.T * c.nKV * c.D);
      const p = c.cu ? { T: c.T, nH: c.nH, nKV: c.nKV, D: c.D, cuSeqlens: c.cu } : { T: c.T, nH: c.nH, nKV: c.nKV, D: c.D };
      k.attention(q, kk, v, p);
      const others = await waitQuiet();
      const ts = [];
      for (let r = 0; r < 3; r++) { const t0 = performance.now(); k.attention(q, kk, v, p); ts.push(performance.now() - t0); }
      const ms = median(ts);
      const flops = 4 * c.T * c.T * c.D * c.nH * (c.cu ? 1 : 0.5);
      results.attention.push({ build, threads, what: c.what, ms: +ms.toFixed(1), gflops: +(flops / ms / 1e6).toFixed(1), others_cores: others });
    }
    // dispatch overhead: tiny linear (1x64x64 f32), back to back
    {
      const h = await k.uploadWeight('f32', [64, 64], randf(64 * 64));
      const x = randf(64), out = new Float32Array(64);
      const others = await waitQuiet();
      for (let i = 0; i < 1000; i++) k.linear(x, 1, 64, h, null, out);
      const ts = [];
      for (let r = 0; r < 3; r++) { const t0 = performance.now(); for (let i = 0; i < 5000; i++) k.linear(x, 1, 64, h, null, out); ts.push((performance.now() - t0) / 5000 * 1000); }
      results.overhead.push({ build, threads, what: 'linear 1x64x64 f32 call', us: +median(ts).toFixed(2), others_cores: others });
    }
    k.dispose();
    console.error(`done ${build} ${threads}`);
  }
}
console.log(JSON.stringify(results, null, 1));
