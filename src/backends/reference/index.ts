// The reference backend: plain TypeScript on Float32Array, double-precision accumulation.
// It is the truth every faster backend is tested against, so clarity wins over speed here,
// but it still avoids per-element closures and per-call weight copies so that the tiny
// fixture models and the real-shape tests run in seconds.
import type {
  AttentionOptions, Backend, KVCache, MoEWeights, Tensor, Weight, WeightFormat, WeightOptions, WeightSource,
} from "../../tensor/backend.js";
import { lastDim, numel } from "../../tensor/backend.js";
import { routeTopK } from "../../tensor/moe-routing.js";
import { DTYPE_BYTES, toFloat32 } from "../../io/dtypes.js";
import { QwenError } from "../../errors.js";

class RefTensor implements Tensor {
  constructor(readonly shape: readonly number[], readonly data: Float32Array) {}
}

class RefWeight implements Weight {
  constructor(
    readonly shape: readonly number[],
    readonly format: WeightFormat,
    /** f32 values, or raw bf16 bits */
    readonly data: Float32Array | Uint16Array,
  ) {}
}

class RefKV implements KVCache {
  k: Float32Array[] = [];
  v: Float32Array[] = [];
  constructor(readonly layers: number, readonly kvDim: number) {
    for (let l = 0; l < layers; l++) {
      this.k.push(new Float32Array(0));
      this.v.push(new Float32Array(0));
    }
  }
}

const T = (t: Tensor): RefTensor => t as RefTensor;
const W = (w: Weight): RefWeight => w as RefWeight;

function rowsOf(t: RefTensor): [number, number] {
  const c = lastDim(t.shape);
  return [c === 0 ? 0 : t.data.length / c, c];
}

function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`reference backend: ${msg}`);
}

/** Converts one row of a weight into f32 scratch (no-op view for f32 weights). */
function weightRow(w: RefWeight, row: number, cols: number, scratch: Float32Array): Float32Array {
  if (w.data instanceof Float32Array) return w.data.subarray(row * cols, row * cols + cols);
  const src = w.data;
  const o32 = new Uint32Array(scratch.buffer, scratch.byteOffset, cols);
  const base = row * cols;
  for (let k = 0; k < cols; k++) o32[k] = src[base + k]! << 16;
  return scratch;
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is only 1.5e-7; use a series / continued fraction split instead.
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax, sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = sum * 1.1283791670955126;
  } else if (ax < 6) {
    // Continued fraction for erfc (Lentz), accurate for x >= 2.5
    let f = ax, C = ax, D = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      D = ax + an * D; D = 1 / D;
      C = ax + an / C;
      const delta = C * D;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-ax * ax) / (f * 1.7724538509055159);
  } else r = 1;
  return x < 0 ? -r : r;
}
export { erf as erfReference };

export class ReferenceBackend implements Backend {
  readonly name = "reference";

  loadWeight(src: WeightSource, opts: WeightOptions = {}): Weight {
    const n = numel(src.shape);
    const bytes = new Uint8Array(n * DTYPE_BYTES[src.dtype]);
    src.readInto(bytes);
    const want = opts.format ?? (src.dtype === "BF16" ? "bf16" : "f32");
    if (want === "bf16") {
      if (src.dtype !== "BF16") throw new QwenError(`${src.name}: the reference backend keeps bf16 only for bf16 tensors (got ${src.dtype})`);
      return new RefWeight(src.shape, "bf16", new Uint16Array(bytes.buffer, 0, n));
    }
    if (want !== "f32") throw new QwenError(`${src.name}: the reference backend does not run ${want} weights (use f32 or bf16)`);
    return new RefWeight(src.shape, "f32", toFloat32(src.dtype, bytes, src.name));
  }

  fromArray(data: Float32Array, shape: readonly number[]): Tensor {
    check(data.length === numel(shape), `fromArray: ${data.length} values for shape ${JSON.stringify(shape)}`);
    return new RefTensor([...shape], data);
  }
  toArray(t: Tensor): Float32Array {
    return T(t).data.slice();
  }
  reshape(t: Tensor, shape: readonly number[]): Tensor {
    check(numel(shape) === T(t).data.length, `reshape ${JSON.stringify(t.shape)} -> ${JSON.stringify(shape)}`);
    return new RefTensor([...shape], T(t).data);
  }
  sliceRows(t: Tensor, start: number, end: number): Tensor {
    const [rows, c] = rowsOf(T(t));
    check(start >= 0 && end <= rows && start <= end, `sliceRows [${start}, ${end}) of ${rows}`);
    return new RefTensor([end - start, c], T(t).data.subarray(start * c, end * c));
  }
  embed(table: Weight, ids: Int32Array): Tensor {
    const w = W(table);
    const [V, D] = [w.shape[0]!, w.shape[1]!];
    const out = new Float32Array(ids.length * D);
    const scratch = new Float32Array(D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < 0 || id >= V) throw new QwenError(`token id ${id} is outside the embedding table (0..${V - 1})`);
      out.set(weightRow(w, id, D, scratch), i * D);
    }
    return new RefTensor([ids.length, D], out);
  }
  release(..._ts: Tensor[]): void {}

  linear(x: Tensor, w: Weight, bias?: Weight | null): Tensor {
    const X = T(x), Wt = W(w);
    const [M, K] = rowsOf(X);
    const N = Wt.shape[0]!;
    check(Wt.shape.length === 2 && Wt.shape[1] === K, `linear: x [${M}, ${K}] with weight ${JSON.stringify(Wt.shape)}`);
    const b = bias ? (W(bias).data as Float32Array) : null;
    const out = new Float32Array(M * N);
    const xd = X.data;
    const scratch = new Float32Array(K);
    for (let n = 0; n < N; n++) {
      const wr = weightRow(Wt, n, K, scratch);
      const bn = b ? b[n]! : 0;
      let m = 0;
      for (; m + 4 <= M; m += 4) {
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const o0 = m * K, o1 = o0 + K, o2 = o1 + K, o3 = o2 + K;
        for (let k = 0; k < K; k++) {
          const wk = wr[k]!;
          s0 += xd[o0 + k]! * wk; s1 += xd[o1 + k]! * wk; s2 += xd[o2 + k]! * wk; s3 += xd[o3 + k]! * wk;
        }
        out[m * N + n] = s0 + bn; out[(m + 1) * N + n] = s1 + bn; out[(m + 2) * N + n] = s2 + bn; out[(m + 3) * N + n] = s3 + bn;
      }
      for (; m < M; m++) {
        let s = 0;
        const o = m * K;
        for (let k = 0; k < K; k++) s += xd[o + k]! * wr[k]!;
        out[m * N + n] = s + bn;
      }
    }
    return new RefTensor([...X.shape.slice(0, -1), N], out);
  }

  rmsNorm(x: Tensor, w: Weight, eps: number): Tensor {
    const X = T(x), wd = this.f32(w);
    const g = wd.length;
    check(X.data.length % g === 0, `rmsNorm: ${X.data.length} values not divisible by ${g}`);
    const out = new Float32Array(X.data.length);
    for (let o = 0; o < X.data.length; o += g) {
      let ss = 0;
      for (let i = 0; i < g; i++) { const v = X.data[o + i]!; ss += v * v; }
      const r = 1 / Math.sqrt(ss / g + eps);
      // The reference rounds the normalised value to the activation dtype before the weight.
      for (let i = 0; i < g; i++) out[o + i] = Math.fround(X.data[o + i]! * r) * wd[i]!;
    }
    return new RefTensor(X.shape, out);
  }

  layerNorm(x: Tensor, w: Weight, b: Weight, eps: number): Tensor {
    const X = T(x), wd = this.f32(w), bd = this.f32(b);
    const g = wd.length;
    check(lastDim(X.shape) === g, `layerNorm: last dim ${lastDim(X.shape)} vs weight ${g}`);
    const out = new Float32Array(X.data.length);
    for (let o = 0; o < X.data.length; o += g) {
      let mean = 0;
      for (let i = 0; i < g; i++) mean += X.data[o + i]!;
      mean /= g;
      let v = 0;
      for (let i = 0; i < g; i++) { const d = X.data[o + i]! - mean; v += d * d; }
      const r = 1 / Math.sqrt(v / g + eps);
      for (let i = 0; i < g; i++) out[o + i] = (X.data[o + i]! - mean) * r * wd[i]! + bd[i]!;
    }
    return new RefTensor(X.shape, out);
  }

  add(a: Tensor, b: Tensor): Tensor {
    const A = T(a), B = T(b);
    check(A.data.length === B.data.length, `add: ${A.data.length} vs ${B.data.length}`);
    const out = new Float32Array(A.data.length);
    for (let i = 0; i < out.length; i++) out[i] = A.data[i]! + B.data[i]!;
    return new RefTensor(A.shape, out);
  }
  addInPlace(a: Tensor, b: Tensor): void {
    const A = T(a), B = T(b);
    check(A.data.length === B.data.length, `addInPlace: ${A.data.length} vs ${B.data.length}`);
    for (let i = 0; i < A.data.length; i++) A.data[i] = A.data[i]! + B.data[i]!;
  }
  geluTanh(x: Tensor): Tensor {
    const X = T(x), out = new Float32Array(X.data.length);
    const c = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < out.length; i++) {
      const v = X.data[i]!;
      out[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
    }
    return new RefTensor(X.shape, out);
  }
  geluErf(x: Tensor): Tensor {
    const X = T(x), out = new Float32Array(X.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = X.data[i]!;
      out[i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2));
    }
    return new RefTensor(X.shape, out);
  }
  siluMul(gate: Tensor, up: Tensor): Tensor {
    const G = T(gate), U = T(up);
    check(G.data.length === U.data.length, `siluMul: ${G.data.length} vs ${U.data.length}`);
    const out = new Float32Array(G.data.length);
    for (let i = 0; i < out.length; i++) {
      const g = G.data[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * U.data[i]!;
    }
    return new RefTensor(G.shape, out);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const X = T(x), C = T(cos).data, S = T(sin).data;
    const [rows, cols] = rowsOf(X);
    const d = lastDim(cos.shape);
    check(cos.shape[0] === rows && cols % d === 0 && d % 2 === 0, `rope: x ${JSON.stringify(X.shape)}, cos ${JSON.stringify(cos.shape)}`);
    const half = d / 2;
    const out = new Float32Array(X.data.length);
    for (let r = 0; r < rows; r++) {
      const cr = r * d;
      for (let h = 0; h < cols; h += d) {
        const o = r * cols + h;
        for (let i = 0; i < half; i++) {
          const a = X.data[o + i]!, b = X.data[o + i + half]!;
          out[o + i] = a * C[cr + i]! - b * S[cr + i]!;
          out[o + i + half] = b * C[cr + i + half]! + a * S[cr + i + half]!;
        }
      }
    }
    return new RefTensor(X.shape, out);
  }

  attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
    const Q = T(q).data, K = T(k).data, V = T(v).data;
    const { nHeads, nKVHeads, headDim: d } = o;
    const S = Q.length / (nHeads * d), Tn = K.length / (nKVHeads * d);
    check(Number.isInteger(S) && Number.isInteger(Tn) && V.length === K.length, "attention: shapes");
    check(nHeads % nKVHeads === 0, `attention: ${nHeads} heads not divisible by ${nKVHeads} kv heads`);
    const group = nHeads / nKVHeads;
    const scale = o.scale ?? 1 / Math.sqrt(d);
    const qOff = o.qOffset ?? 0;
    const out = new Float32Array(S * nHeads * d);
    const scores = new Float64Array(Tn);
    const acc = new Float64Array(d);
    const segs = o.segments;
    let seg = 0;
    for (let i = 0; i < S; i++) {
      let lo = 0, hi = Tn; // keys [lo, hi)
      if (o.causal) hi = Math.min(Tn, qOff + i + 1);
      if (segs) {
        while (seg + 1 < segs.length && segs[seg + 1]! <= i) seg++;
        lo = segs[seg]!; hi = segs[seg + 1]!;
      }
      for (let h = 0; h < nHeads; h++) {
        const g = Math.floor(h / group);
        const qo = (i * nHeads + h) * d;
        let mx = -Infinity;
        for (let j = lo; j < hi; j++) {
          const ko = (j * nKVHeads + g) * d;
          let s = 0;
          for (let c = 0; c < d; c++) s += Q[qo + c]! * K[ko + c]!;
          s *= scale;
          scores[j] = s;
          if (s > mx) mx = s;
        }
        let sum = 0;
        for (let j = lo; j < hi; j++) { const e = Math.exp(scores[j]! - mx); scores[j] = e; sum += e; }
        acc.fill(0);
        for (let j = lo; j < hi; j++) {
          const p = scores[j]! / sum;
          const vo = (j * nKVHeads + g) * d;
          for (let c = 0; c < d; c++) acc[c] += p * V[vo + c]!;
        }
        for (let c = 0; c < d; c++) out[qo + c] = acc[c]!;
      }
    }
    return new RefTensor([S, nHeads * d], out);
  }

  gatherWeighted(table: Weight, idx: Int32Array, weights: Float32Array, perRow: number): Tensor {
    const w = W(table);
    const cols = w.shape[1]!;
    const n = idx.length / perRow;
    const out = new Float32Array(n * cols);
    const scratch = new Float32Array(cols);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < perRow; j++) {
        const row = weightRow(w, idx[r * perRow + j]!, cols, scratch);
        const wt = weights[r * perRow + j]!;
        // Each term is rounded to f32 like the reference's elementwise product.
        for (let c = 0; c < cols; c++) out[r * cols + c] = out[r * cols + c]! + Math.fround(row[c]! * wt);
      }
    }
    return new RefTensor([n, cols], out);
  }

  scatterRows(dst: Tensor, rows: Int32Array, src: Tensor): void {
    const D = T(dst), Sx = T(src);
    const c = lastDim(D.shape);
    check(Sx.data.length === rows.length * c, `scatterRows: ${rows.length} rows of ${c} vs ${Sx.data.length} values`);
    for (let i = 0; i < rows.length; i++) D.data.set(Sx.data.subarray(i * c, i * c + c), rows[i]! * c);
  }
  scatterAddRows(dst: Tensor, rows: Int32Array, src: Tensor): void {
    const D = T(dst), Sx = T(src);
    const c = lastDim(D.shape);
    check(Sx.data.length === rows.length * c, `scatterAddRows: ${rows.length} rows of ${c} vs ${Sx.data.length} values`);
    for (let i = 0; i < rows.length; i++) {
      const o = rows[i]! * c;
      for (let j = 0; j < c; j++) D.data[o + j] = D.data[o + j]! + Sx.data[i * c + j]!;
    }
  }

  moe(x: Tensor, w: MoEWeights): Tensor {
    const X = T(x);
    const [S, D] = rowsOf(X);
    const logits = T(this.linear(x, w.router)).data;
    const E = w.router.shape[0]!;
    const gu = W(w.gateUp), dn = W(w.down);
    const Im = gu.shape[1]! / 2;
    check(gu.shape[0] === E && gu.shape[2] === D && dn.shape[0] === E && dn.shape[1] === D && dn.shape[2] === Im, "moe: expert shapes");
    const out = new Float32Array(S * D);
    const act = new Float64Array(Im);
    const scratchD = new Float32Array(D), scratchI = new Float32Array(Im);
    const route = routeTopK(logits, S, E, w.topK, w.normTopK);
    for (let s = 0; s < S; s++) {
      const xo = s * D;
      for (let j = 0; j < w.topK; j++) {
        const e = route.experts[s * w.topK + j]!, weight = route.weights[s * w.topK + j]!;
        for (let i = 0; i < Im; i++) {
          const gr = weightRow(gu, e * 2 * Im + i, D, scratchD);
          let g = 0;
          for (let c = 0; c < D; c++) g += X.data[xo + c]! * gr[c]!;
          const ur = weightRow(gu, e * 2 * Im + Im + i, D, scratchD);
          let u = 0;
          for (let c = 0; c < D; c++) u += X.data[xo + c]! * ur[c]!;
          g = Math.fround(g); u = Math.fround(u);
          act[i] = Math.fround((g / (1 + Math.exp(-g))) * u);
        }
        for (let c = 0; c < D; c++) {
          const dr = weightRow(dn, e * D + c, Im, scratchI);
          let y = 0;
          for (let i = 0; i < Im; i++) y += act[i]! * dr[i]!;
          out[xo + c] = out[xo + c]! + Math.fround(y) * weight;
        }
      }
    }
    return new RefTensor(X.shape, out);
  }

  argmaxRows(x: Tensor): Int32Array {
    const X = T(x);
    const [rows, c] = rowsOf(X);
    const out = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0, bv = -Infinity;
      for (let j = 0; j < c; j++) { const v = X.data[r * c + j]!; if (v > bv) { bv = v; best = j; } }
      out[r] = best;
    }
    return out;
  }

  createKVCache(layers: number, kvDim: number): KVCache {
    return new RefKV(layers, kvDim);
  }
  kvWrite(cache: KVCache, layer: number, start: number, k: Tensor, v: Tensor): void {
    const c = cache as RefKV;
    const K = T(k).data, V = T(v).data;
    const need = (start * c.kvDim) + K.length;
    if (c.k[layer]!.length < need) {
      const cap = Math.max(need, c.k[layer]!.length * 2, 64 * c.kvDim);
      const nk = new Float32Array(cap), nv = new Float32Array(cap);
      nk.set(c.k[layer]!); nv.set(c.v[layer]!);
      c.k[layer] = nk; c.v[layer] = nv;
    }
    c.k[layer]!.set(K, start * c.kvDim);
    c.v[layer]!.set(V, start * c.kvDim);
  }
  kvRead(cache: KVCache, layer: number, length: number): { k: Tensor; v: Tensor } {
    const c = cache as RefKV;
    const n = length * c.kvDim;
    check(c.k[layer]!.length >= n, `kvRead: ${length} rows but cache holds fewer`);
    return {
      k: new RefTensor([length, c.kvDim], c.k[layer]!.subarray(0, n)),
      v: new RefTensor([length, c.kvDim], c.v[layer]!.subarray(0, n)),
    };
  }
  kvTruncate(): void {
    // Rows past the kept length are simply overwritten by later writes.
  }

  private f32(w: Weight): Float32Array {
    const rw = W(w);
    if (rw.data instanceof Float32Array) return rw.data;
    return toFloat32("BF16", new Uint8Array(rw.data.buffer, rw.data.byteOffset, rw.data.byteLength));
  }
}
