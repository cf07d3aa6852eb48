import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  Sampler,
  Xoshiro128,
  argmax,
  topKIndices,
  warpedDistribution,
  resolveSamplingOptions,
  mergeSamplingOptions,
  samplingDefaultsFromGenerationConfig,
  applyRepetitionPenalty,
  applyPresenceFrequencyPenalty,
} from "../../src/generation/sampler.js";
import { QwenError } from "../../src/errors.js";
import { fixture } from "../helpers/paths.js";

const VOCAB = 151936;

function randomLogits(n: number, seed: number, scale = 4): Float32Array {
  const r = new Xoshiro128(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r.nextFloat() * 2 - 1) * scale;
  return a;
}

function softmax(logits: number[], T = 1): number[] {
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp((l - m) / T));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function counts(s: Sampler, logits: Float32Array, n: number): Map<number, number> {
  const c = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(logits);
    c.set(t, (c.get(t) ?? 0) + 1);
  }
  return c;
}

test("xoshiro128**: deterministic per seed, uniform floats in [0,1)", () => {
  const a = new Xoshiro128(42);
  const b = new Xoshiro128(42);
  const c = new Xoshiro128(43);
  const sa = Array.from({ length: 20 }, () => a.nextUint32());
  const sb = Array.from({ length: 20 }, () => b.nextUint32());
  const sc = Array.from({ length: 20 }, () => c.nextUint32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  // chi-square over 16 buckets, 160000 draws: 15 dof, 99.9% quantile is 37.7
  const r = new Xoshiro128(7);
  const buckets = new Array(16).fill(0);
  let sum = 0;
  const N = 160000;
  for (let i = 0; i < N; i++) {
    const u = r.nextFloat();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    buckets[Math.floor(u * 16)]++;
  }
  const exp = N / 16;
  const chi = buckets.reduce((acc, o) => acc + ((o - exp) * (o - exp)) / exp, 0);
  assert.ok(chi < 37.7, `chi-square ${chi}`);
  assert.ok(Math.abs(sum / N - 0.5) < 0.005);
});

test("topK=1 equals argmax on a full vocabulary, for any temperature and seed", () => {
  for (let seed = 0; seed < 5; seed++) {
    const logits = randomLogits(VOCAB, 100 + seed);
    const am = argmax(logits);
    for (const temperature of [0.3, 1, 5]) {
      const s = new Sampler({ topK: 1, temperature, seed }, []);
      for (let i = 0; i < 5; i++) assert.equal(s.sample(logits), am);
    }
  }
});

test("greedy when temperature is 0 or doSample is false", () => {
  const logits = randomLogits(1000, 9);
  const am = argmax(logits);
  assert.equal(new Sampler({ temperature: 0, seed: 1 }).sample(logits), am);
  assert.equal(new Sampler({ doSample: false, temperature: 2, seed: 1 }).sample(logits), am);
  assert.equal(new Sampler({ temperature: 0 }).greedy, true);
  assert.equal(new Sampler({ temperature: 0.5 }).greedy, false);
});

test("seeded reproducibility: same seed and logits give the same tokens; another seed differs", () => {
  const logits = randomLogits(VOCAB, 3, 2);
  const run = (seed: number): number[] => {
    const s = new Sampler({ temperature: 1, topK: 50, topP: 0.95, seed }, [1, 2, 3]);
    return Array.from({ length: 50 }, () => s.next(logits));
  };
  assert.deepEqual(run(1234), run(1234));
  assert.notDeepEqual(run(1234), run(3407));
  const s = new Sampler({ seed: 5 });
  assert.equal(s.seed, 5);
  assert.equal(typeof new Sampler({}).seed, "number"); // random seed when absent
});

test("topK selection matches a full sort and keeps ties with the k-th value", () => {
  const logits = randomLogits(20000, 11);
  const sorted = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  assert.deepEqual(Array.from(topKIndices(logits, 37)), sorted.slice(0, 37));
  // -Infinity / NaN never selected
  const m = Float32Array.from([1, -Infinity, NaN, 0.5]);
  assert.deepEqual(Array.from(topKIndices(m, 4)), [0, 3]);
  // ties at the k-th value are kept (HF: scores < kth value are removed)
  const t = Float32Array.from([3, 1, 2, 2, 2, 0]);
  const d = warpedDistribution(t, resolveSamplingOptions({ topK: 2 }));
  assert.deepEqual(Array.from(d.ids).sort(), [0, 2, 3, 4]);
});

test("empirical frequencies match softmax(logits/T) (tolerance 0.01 absolute, >4 sd at 50000 draws)", () => {
  const base = [1.0, 0.5, 0.0, -0.5, 2.0];
  const logits = Float32Array.from(base);
  for (const T of [0.7, 1.0, 1.5]) {
    const p = softmax(base, T);
    const s = new Sampler({ temperature: T, seed: 99 });
    const N = 50000;
    const c = counts(s, logits, N);
    for (let i = 0; i < base.length; i++) {
      const f = (c.get(i) ?? 0) / N;
      assert.ok(Math.abs(f - p[i]!) < 0.01, `T=${T} token ${i}: freq ${f} vs p ${p[i]}`);
    }
  }
});

test("topP: excluded tokens are never drawn, kept ones renormalised; temperature applies before top-p", () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const logits = Float32Array.from(probs.map(Math.log));
  const s = new Sampler({ topP: 0.75, seed: 2 });
  const N = 20000;
  const c = counts(s, logits, N);
  assert.equal(c.get(2) ?? 0, 0);
  assert.equal(c.get(3) ?? 0, 0);
  assert.ok(Math.abs((c.get(0) ?? 0) / N - 0.625) < 0.02);
  assert.ok(Math.abs((c.get(1) ?? 0) / N - 0.375) < 0.02);
  // At T=1 top-p 0.6 keeps {0,1}; at T=0.5 probabilities sharpen to [.658,.237,.105] and only {0} survives.
  const l3 = Float32Array.from([0.5, 0.3, 0.2].map(Math.log));
  assert.deepEqual(Array.from(warpedDistribution(l3, resolveSamplingOptions({ topP: 0.6 })).ids), [0, 1]);
  assert.deepEqual(Array.from(warpedDistribution(l3, resolveSamplingOptions({ topP: 0.6, temperature: 0.5 })).ids), [0]);
});

/** Straightforward reference: full sort, softmax, top-k, top-p, min-p as in HF. */
function referenceDistribution(logits: Float32Array, o: { temperature: number; topK: number; topP: number; minP: number }): Map<number, number> {
  let idx = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (o.topK > 0) idx = idx.slice(0, o.topK);
  const m = logits[idx[0]!]!;
  let w = idx.map((i) => Math.exp((logits[i]! - m) / o.temperature));
  let s = w.reduce((a, b) => a + b, 0);
  let keep = 0;
  let cum = 0;
  for (let j = 0; j < idx.length; j++) {
    if (j > 0 && cum / s >= o.topP) break;
    cum += w[j]!;
    keep = j + 1;
  }
  idx = idx.slice(0, keep);
  w = w.slice(0, keep);
  if (o.minP > 0) {
    const thr = o.minP * w[0]!;
    const k2 = w.filter((x) => x >= thr).length;
    idx = idx.slice(0, k2);
    w = w.slice(0, k2);
  }
  s = w.reduce((a, b) => a + b, 0);
  return new Map(idx.map((i, j) => [i, w[j]! / s]));
}

test("full-vocabulary warping equals a full-sort reference (top-k, wide and narrow top-p, min-p)", () => {
  const cases = [
    { scale: 8, temperature: 1, topK: 20, topP: 1, minP: 0 },
    { scale: 8, temperature: 0.7, topK: 20, topP: 0.8, minP: 0 },
    { scale: 30, temperature: 1, topK: 0, topP: 0.9, minP: 0 }, // narrow nucleus: heap prefix
    { scale: 1, temperature: 1, topK: 0, topP: 0.95, minP: 0 }, // very wide nucleus: full-sort fallback
    { scale: 8, temperature: 1, topK: 0, topP: 1, minP: 0.05 },
    { scale: 8, temperature: 0.6, topK: 20, topP: 0.95, minP: 0.1 },
  ];
  for (const [n, c] of cases.entries()) {
    const logits = randomLogits(VOCAB, 500 + n, c.scale);
    const got = warpedDistribution(logits, resolveSamplingOptions(c));
    const ref = referenceDistribution(logits, c);
    assert.equal(got.ids.length, ref.size, `case ${n}: size`);
    for (let j = 0; j < got.ids.length; j++) {
      const p = ref.get(got.ids[j]!);
      assert.ok(p !== undefined, `case ${n}: token ${got.ids[j]} not in reference`);
      assert.ok(Math.abs(p - got.probs[j]!) < 1e-9, `case ${n}: prob`);
    }
  }
});

test("topK=20 draws stay inside the top-20 set and follow its softmax", () => {
  const logits = randomLogits(VOCAB, 77, 6);
  const top = new Set(topKIndices(logits, 20));
  const ref = referenceDistribution(logits, { temperature: 1, topK: 20, topP: 1, minP: 0 });
  const s = new Sampler({ topK: 20, seed: 3 });
  const N = 5000; // seeded, so deterministic; 0.025 is about 4 standard deviations
  const c = counts(s, logits, N);
  for (const [t, k] of c) {
    assert.ok(top.has(t), `token ${t} outside top-k`);
    assert.ok(Math.abs(k / N - ref.get(t)!) < 0.025);
  }
});

test("min-p on a hand example: threshold minP * p_max, applied after top-p", () => {
  const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const d = warpedDistribution(logits, resolveSamplingOptions({ minP: 0.2 })); // threshold 0.1
  assert.deepEqual(Array.from(d.ids), [0, 1, 2]);
  const want = [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95];
  for (let j = 0; j < 3; j++) assert.ok(Math.abs(d.probs[j]! - want[j]!) < 1e-7);
  // top-p 0.9 keeps {0,1,2}; min-p 0.35 then drops token 2 (0.15 < 0.175) but keeps token 1
  const d2 = warpedDistribution(logits, resolveSamplingOptions({ topP: 0.9, minP: 0.35 }));
  assert.deepEqual(Array.from(d2.ids), [0, 1]);
  // over many draws the removed tokens never appear
  const c = counts(new Sampler({ minP: 0.35, seed: 8 }), logits, 5000);
  assert.equal(c.get(2) ?? 0, 0);
  assert.equal(c.get(3) ?? 0, 0);
});

test("repetition penalty (prompt+output) and presence penalty (output only) exact on a hand example", () => {
  const logits = Float32Array.from([2, -1, 0.5, 3, 4]);
  const s = new Sampler({ repetitionPenalty: 2, presencePenalty: 0.5, temperature: 0 }, [0, 0]);
  s.accept(1);
  s.accept(3);
  s.accept(3);
  // rep: 2/2=1, -1*2=-2, 3/2=1.5 ; presence: -2-0.5=-2.5, 1.5-0.5=1 ; token 2 and 4 untouched
  assert.deepEqual(Array.from(s.penalize(logits)), [1, -2.5, 0.5, 1, 4]);
  assert.deepEqual(Array.from(logits), [2, -1, 0.5, 3, 4]); // input untouched
  assert.equal(s.sample(logits), 4);
  assert.deepEqual(Array.from(logits), [2, -1, 0.5, 3, 4]); // penalties applied in place are restored
  // the penalty flips the greedy choice
  const l2 = Float32Array.from([3, 2.9]);
  const g = new Sampler({ repetitionPenalty: 1.2, temperature: 0 }, [0]);
  assert.equal(g.next(l2), 1);

  const a = Float32Array.from([2, -1, 0.5, 3]);
  applyRepetitionPenalty(a, [0, 1, 1], 1.5);
  assert.deepEqual(Array.from(a), [Math.fround(2 / 1.5), -1.5, 0.5, 3]);
  const b = Float32Array.from([2, -1, 0.5, 3]);
  applyPresenceFrequencyPenalty(b, [3, 3, 0], 0.5, 0.25); // 3: 3-0.5-0.5 ; 0: 2-0.5-0.25
  assert.deepEqual(Array.from(b), [1.25, -1, 0.5, 2]);
});

test("generation_config defaults: Instruct values, HF defaults when absent, validation", () => {
  const inst = samplingDefaultsFromGenerationConfig({ do_sample: true, temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.0, eos_token_id: [151645, 151643] });
  assert.deepEqual(inst, { doSample: true, temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1 });
  const tiny = samplingDefaultsFromGenerationConfig(JSON.parse(readFileSync(fixture("models", "tiny-qwen3-vl-dense", "generation_config.json"), "utf8")));
  assert.equal(tiny.doSample, false);
  assert.equal(tiny.topK, 50);
  assert.equal(new Sampler(tiny).greedy, true);
  assert.throws(() => samplingDefaultsFromGenerationConfig({ temperature: "hot" }), QwenError);
  assert.throws(() => samplingDefaultsFromGenerationConfig([1]), QwenError);
  assert.throws(() => resolveSamplingOptions({ topP: 0 }), QwenError);
  assert.throws(() => resolveSamplingOptions({ topK: 1.5 }), QwenError);
  assert.throws(() => resolveSamplingOptions({ temperature: -1 }), QwenError);
  assert.throws(() => resolveSamplingOptions({ repetitionPenalty: 0 }), QwenError);
  assert.throws(() => new Sampler({}).sample(Float32Array.from([-Infinity, NaN])), QwenError);
  assert.deepEqual(mergeSamplingOptions(inst, { temperature: 0.2, topK: undefined }), { ...inst, temperature: 0.2 });
});

test("speed: topK=20 over 151936 logits stays well under 5 ms per draw", () => {
  const logits = randomLogits(VOCAB, 1);
  const s = new Sampler({ topK: 20, topP: 0.8, temperature: 0.7, presencePenalty: 1.5, seed: 1 });
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) s.next(logits);
  const per = (performance.now() - t0) / 200;
  assert.ok(per < 5, `${per.toFixed(2)} ms per draw`);
});
