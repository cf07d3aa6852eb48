/**
 * Logits processing and token sampling over one row of vocabulary logits.
 *
 * Order (HF `generate` with do_sample, vLLM):
 *   repetition penalty (prompt + output tokens) -> presence / frequency penalty (output tokens)
 *   -> temperature -> top-k -> top-p -> min-p -> sample.
 * HF appends its warpers as Temperature, TopK, TopP, MinP, so min-p is applied last, on the
 * distribution that survived top-k/top-p (its threshold `minP * maxProb` is a ratio to the most
 * likely token, so renormalisation after top-k/top-p does not change which tokens it removes).
 *
 * Greedy decoding (argmax of the penalised logits) when `doSample` is false or `temperature` is 0.
 *
 * Efficiency for a 151936-entry vocabulary: nothing sorts the whole vocabulary when top-k is set
 * (a size-k heap selects the candidates, O(V log k)); top-p without top-k grows a heap-selected
 * prefix (256, 1024, ... tokens) until it holds the nucleus, and only falls back to sorting all
 * tokens when the nucleus is that wide; plain sampling / min-p without top-k/top-p never sorts.
 */
import { QwenError } from "../errors.js";

export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (ties with the k-th kept, as HF). 0 / undefined: off. */
  topK?: number;
  /** Nucleus sampling: smallest set of most likely tokens whose mass reaches topP. 1: off. */
  topP?: number;
  /** Drop tokens whose probability is below minP times the most likely token's. 0: off. */
  minP?: number;
  /** HF repetition penalty over prompt + generated tokens: logit>0 ? logit/p : logit*p. 1: off. */
  repetitionPenalty?: number;
  /** Subtracted from the logit of every token present in the generated output (vLLM/OpenAI). */
  presencePenalty?: number;
  /** Subtracted once per occurrence in the generated output (vLLM/OpenAI). */
  frequencyPenalty?: number;
  /** PRNG seed; same seed, same logits, same options -> same tokens. Random when absent. */
  seed?: number;
  /** false: greedy regardless of temperature. Default true. */
  doSample?: boolean;
}

/** The options after defaults are applied. */
export interface ResolvedSamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed: number | undefined;
  doSample: boolean;
}

function finiteOr(v: unknown, name: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new QwenError(`sampling option ${name} must be a finite number, got ${String(v)}`);
  return v;
}

/** Validate options and fill in defaults (temperature 1, no top-k/top-p/min-p, no penalties, sampling on). */
export function resolveSamplingOptions(o: SamplingOptions = {}): ResolvedSamplingOptions {
  const temperature = finiteOr(o.temperature, "temperature", 1);
  if (temperature < 0) throw new QwenError(`sampling option temperature must be >= 0, got ${temperature}`);
  const topK = finiteOr(o.topK, "topK", 0);
  if (topK < 0 || !Number.isInteger(topK)) throw new QwenError(`sampling option topK must be a non-negative integer, got ${topK}`);
  const topP = finiteOr(o.topP, "topP", 1);
  if (!(topP > 0 && topP <= 1)) throw new QwenError(`sampling option topP must be in (0, 1], got ${topP}`);
  const minP = finiteOr(o.minP, "minP", 0);
  if (!(minP >= 0 && minP <= 1)) throw new QwenError(`sampling option minP must be in [0, 1], got ${minP}`);
  const repetitionPenalty = finiteOr(o.repetitionPenalty, "repetitionPenalty", 1);
  if (!(repetitionPenalty > 0)) throw new QwenError(`sampling option repetitionPenalty must be > 0, got ${repetitionPenalty}`);
  const presencePenalty = finiteOr(o.presencePenalty, "presencePenalty", 0);
  const frequencyPenalty = finiteOr(o.frequencyPenalty, "frequencyPenalty", 0);
  let seed: number | undefined;
  if (o.seed !== undefined && o.seed !== null) {
    if (typeof o.seed !== "number" || !Number.isInteger(o.seed)) throw new QwenError(`sampling option seed must be an integer, got ${String(o.seed)}`);
    seed = o.seed;
  }
  const doSample = o.doSample === undefined ? true : Boolean(o.doSample);
  return { temperature, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty, seed, doSample };
}

/** Later sources override earlier ones field by field (undefined fields do not override). */
export function mergeSamplingOptions(...sources: (SamplingOptions | undefined)[]): SamplingOptions {
  const out: SamplingOptions = {};
  for (const s of sources) {
    if (!s) continue;
    for (const [k, v] of Object.entries(s) as [keyof SamplingOptions, never][]) {
      if (v !== undefined) out[k] = v;
    }
  }
  return out;
}

/**
 * Sampling defaults from a checkpoint's generation_config.json, with HF's GenerationConfig
 * defaults for absent fields (do_sample false, temperature 1, top_k 50, top_p 1), so a config
 * without `do_sample` decodes greedily as HF does. `presence_penalty` / `frequency_penalty` /
 * `seed` are not HF fields but are honoured when present.
 */
export function samplingDefaultsFromGenerationConfig(json: unknown): SamplingOptions {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new QwenError("generation_config.json must contain a JSON object");
  }
  const g = json as Record<string, unknown>;
  const num = (key: string): number | undefined => {
    const v = g[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new QwenError(`generation_config.json: ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const out: SamplingOptions = {
    doSample: g.do_sample === undefined || g.do_sample === null ? false : Boolean(g.do_sample),
    temperature: num("temperature") ?? 1,
    topK: num("top_k") ?? 50,
    topP: num("top_p") ?? 1,
    repetitionPenalty: num("repetition_penalty") ?? 1,
  };
  const minP = num("min_p");
  if (minP !== undefined) out.minP = minP;
  const pres = num("presence_penalty");
  if (pres !== undefined) out.presencePenalty = pres;
  const freq = num("frequency_penalty");
  if (freq !== undefined) out.frequencyPenalty = freq;
  const seed = num("seed");
  if (seed !== undefined) out.seed = seed;
  resolveSamplingOptions(out); // validate
  return out;
}

// ---------------------------------------------------------------------------------------------
// PRNG: xoshiro128** (Blackman & Vigna), state seeded through splitmix32.

/** xoshiro128** 32-bit generator; period 2^128-1. Deterministic for a given seed. */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 over the seed (low and high 32 bits mixed in) fills the 128-bit state.
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 4294967296) >>> 0, 0x9e3779b9);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const t1 = Math.imul(s1, 5);
    const rot = (t1 << 7) | (t1 >>> 25);
    const result = Math.imul(rot, 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0]!;
}

// ---------------------------------------------------------------------------------------------
// Penalties (in place).

/** HF repetition penalty, in place: every distinct token in `tokens` gets logit>0 ? logit/p : logit*p. */
export function applyRepetitionPenalty(logits: Float32Array, tokens: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (const t of tokens) {
    if (t < 0 || t >= logits.length || seen.has(t)) continue;
    seen.add(t);
    const l = logits[t]!;
    logits[t] = l > 0 ? l / penalty : l * penalty;
  }
}

/**
 * vLLM/OpenAI presence and frequency penalties, in place, over the generated tokens:
 * logit -= presence * [count>0] + frequency * count.
 */
export function applyPresenceFrequencyPenalty(logits: Float32Array, outputTokens: Iterable<number>, presence: number, frequency = 0): void {
  if (presence === 0 && frequency === 0) return;
  const counts = new Map<number, number>();
  for (const t of outputTokens) {
    if (t < 0 || t >= logits.length) continue;
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const [t, c] of counts) logits[t] = logits[t]! - presence - frequency * c;
}

// ---------------------------------------------------------------------------------------------
// Selection helpers.

/** Index of the largest logit (first on ties); NaN entries are ignored. -1 when none is > -Infinity. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/**
 * Indices of the k largest logits in descending order (ties broken by lower index), without
 * sorting the whole array: a size-k min-heap over one pass. NaN and -Infinity entries are never
 * selected, so fewer than k indices may come back.
 */
export function topKIndices(logits: Float32Array, k: number): Int32Array {
  return selectTopK(logits, k).ids;
}

/** topKIndices plus the largest value that was left out (-Infinity when none): equal to the k-th value iff ties straddle the cut. */
function selectTopK(logits: Float32Array, k: number): { ids: Int32Array; maxDropped: number } {
  const n = logits.length;
  k = Math.min(k, n);
  if (k <= 0) return { ids: new Int32Array(0), maxDropped: -Infinity };
  // Min-heap of indices; "less" = smaller value, or equal value and larger index.
  const heap = new Int32Array(k);
  let size = 0;
  const less = (a: number, b: number): boolean => {
    const va = logits[a]!;
    const vb = logits[b]!;
    return va < vb || (va === vb && a > b);
  };
  const siftDown = (): void => {
    let i = 0;
    const x = heap[0]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && less(heap[r]!, heap[l]!) ? r : l;
      const hc = heap[c]!;
      if (!less(hc, x)) break;
      heap[i] = hc;
      i = c;
    }
    heap[i] = x;
  };
  let maxDropped = -Infinity;
  let i = 0;
  // fill phase
  for (; i < n && size < k; i++) {
    const v = logits[i]!;
    if (!(v > -Infinity)) continue; // NaN and -Infinity are never selected
    let j = size++;
    while (j > 0) {
      const p = (j - 1) >> 1;
      const hp = heap[p]!;
      if (!less(i, hp)) break;
      heap[j] = hp;
      j = p;
    }
    heap[j] = i;
  }
  // scan phase: a later index with an equal value never displaces (ties go to the lower index)
  let minV = size === k ? logits[heap[0]!]! : Infinity;
  for (; i < n; i++) {
    const v = logits[i]!;
    if (v > minV) {
      if (minV > maxDropped) maxDropped = minV;
      heap[0] = i;
      siftDown();
      minV = logits[heap[0]!]!;
    } else if (v > maxDropped) {
      maxDropped = v;
    }
  }
  const out = Array.from(heap.subarray(0, size));
  out.sort((a, b) => logits[b]! - logits[a]! || a - b);
  return { ids: Int32Array.from(out), maxDropped };
}

/**
 * The final distribution a sampler draws from: token ids and their probabilities (sum 1). Most
 * likely first, except an untruncated distribution over more than 4096 tokens, which stays in
 * vocabulary order (sorting it would cost more than drawing from it).
 */
export interface CandidateDistribution {
  ids: Int32Array;
  probs: Float64Array;
}

function allFiniteSorted(logits: Float32Array): Int32Array {
  const idx: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i]! > -Infinity) idx.push(i);
  idx.sort((a, b) => logits[b]! - logits[a]! || a - b);
  return Int32Array.from(idx);
}

/**
 * Apply temperature, top-k, top-p and min-p to already penalised logits and return the surviving
 * tokens with their renormalised probabilities (descending). `opts.temperature` must be > 0.
 */
export function warpedDistribution(logits: Float32Array, opts: ResolvedSamplingOptions): CandidateDistribution {
  const T = opts.temperature;
  if (!(T > 0)) throw new QwenError("warpedDistribution needs temperature > 0 (temperature 0 is greedy decoding)");
  const V = logits.length;
  const topK = opts.topK > 0 && opts.topK < V ? opts.topK : 0;
  const sel = topK > 0 ? selectTopK(logits, topK) : undefined;
  const best = sel ? (sel.ids.length > 0 ? sel.ids[0]! : -1) : argmax(logits);
  if (best < 0) throw new QwenError("cannot sample: every logit is -Infinity or NaN");
  const maxL = logits[best]!;
  const w = (l: number): number => (l > -Infinity ? Math.exp((l - maxL) / T) : 0);

  let ids: Int32Array;
  let weights: Float64Array;
  if (sel) {
    ids = sel.ids;
    // HF keeps every token tied with the k-th value.
    const kth = logits[ids[ids.length - 1]!]!;
    if (ids.length === topK && sel.maxDropped === kth) {
      const chosen = new Set(ids);
      const extra: number[] = [];
      for (let i = 0; i < V; i++) if (logits[i] === kth && !chosen.has(i)) extra.push(i);
      ids = Int32Array.from([...ids, ...extra]);
    }
    weights = Float64Array.from(ids, (i) => w(logits[i]!));
  } else if (opts.topP < 1) {
    // Total mass over the whole vocabulary, then a growing heap-selected prefix until it holds the nucleus.
    let Z = 0;
    for (let i = 0; i < V; i++) Z += w(logits[i]!);
    let k = 256;
    for (;;) {
      if (k >= V) {
        ids = allFiniteSorted(logits);
        break;
      }
      ids = topKIndices(logits, k);
      let mass = 0;
      for (const id of ids) mass += w(logits[id]!);
      // Once the selected prefix holds at least topP of the mass, the token ranked next (outside
      // the prefix) has >= topP above it, so the nucleus lies inside the prefix.
      if (ids.length < k || mass / Z >= opts.topP) break;
      k *= 4;
    }
    weights = Float64Array.from(ids, (i) => w(logits[i]!));
    const p = opts.topP;
    let cum = 0;
    let keep = 0;
    for (let j = 0; j < ids.length; j++) {
      if (j > 0 && cum / Z >= p) break;
      cum += weights[j]!;
      keep = j + 1;
    }
    ids = ids.subarray(0, keep);
    weights = weights.subarray(0, keep);
  } else {
    // No truncation by rank: every finite token is a candidate; no sort needed unless min-p prunes.
    const idx: number[] = [];
    for (let i = 0; i < V; i++) if (logits[i]! > -Infinity) idx.push(i);
    ids = Int32Array.from(idx);
    weights = Float64Array.from(ids, (i) => w(logits[i]!));
    if (opts.minP > 0) {
      // only the survivors need ordering
      const thr = opts.minP; // weight of the best token is exactly 1
      const kept: number[] = [];
      for (let j = 0; j < ids.length; j++) if (weights[j]! >= thr) kept.push(ids[j]!);
      kept.sort((a, b) => logits[b]! - logits[a]! || a - b);
      ids = Int32Array.from(kept);
      weights = Float64Array.from(ids, (i) => w(logits[i]!));
    } else {
      const order = Array.from(ids);
      // a full ordering is only produced for the returned distribution's convenience when small
      if (order.length <= 4096) {
        order.sort((a, b) => logits[b]! - logits[a]! || a - b);
        ids = Int32Array.from(order);
        weights = Float64Array.from(ids, (i) => w(logits[i]!));
      }
    }
    return normalise(ids, weights);
  }

  // top-p after top-k (HF: remove tokens whose ascending cumulative probability <= 1 - top_p,
  // i.e. keep a token while the mass of the tokens strictly above it is < top_p; at least one).
  if (topK > 0 && opts.topP < 1) {
    let total = 0;
    for (const x of weights) total += x;
    let cum = 0;
    let keep = 0;
    for (let j = 0; j < ids.length; j++) {
      if (j > 0 && cum / total >= opts.topP) break;
      cum += weights[j]!;
      keep = j + 1;
    }
    ids = ids.subarray(0, keep);
    weights = weights.subarray(0, keep);
  }
  // min-p: remove p < minP * p_max (weights are relative to the best token, whose weight is 1).
  if (opts.minP > 0) {
    const thr = opts.minP * weights[0]!;
    let keep = 1;
    while (keep < ids.length && weights[keep]! >= thr) keep++;
    ids = ids.subarray(0, keep);
    weights = weights.subarray(0, keep);
  }
  return normalise(ids, weights);
}

function normalise(ids: Int32Array, weights: Float64Array): CandidateDistribution {
  let total = 0;
  for (const x of weights) total += x;
  const probs = new Float64Array(weights.length);
  for (let j = 0; j < weights.length; j++) probs[j] = weights[j]! / total;
  return { ids: Int32Array.from(ids), probs };
}

// ---------------------------------------------------------------------------------------------

/**
 * Stateful sampler for one generation: knows the prompt tokens (for the repetition penalty) and
 * the tokens generated so far (for all penalties), owns a seeded PRNG.
 *
 *   const s = new Sampler(opts, promptIds);
 *   for (;;) { const tok = s.next(logits); ... }        // next = sample + accept
 */
export class Sampler {
  readonly options: ResolvedSamplingOptions;
  readonly seed: number;
  private readonly rng: Xoshiro128;
  private readonly prompt: number[];
  private readonly output: number[] = [];
  /** Distinct tokens of prompt + output (for the repetition penalty). */
  private readonly seen = new Set<number>();

  constructor(options: SamplingOptions = {}, promptTokens: Iterable<number> = []) {
    this.options = resolveSamplingOptions(options);
    this.seed = this.options.seed ?? randomSeed();
    this.rng = new Xoshiro128(this.seed);
    this.prompt = Array.from(promptTokens);
    for (const t of this.prompt) this.seen.add(t);
  }

  /** True when this sampler decodes greedily. */
  get greedy(): boolean {
    return !this.options.doSample || this.options.temperature === 0;
  }

  /** Tokens generated (accepted) so far. */
  get generated(): readonly number[] {
    return this.output;
  }

  /** Record a generated token (affects the penalties of later steps). */
  accept(token: number): void {
    this.output.push(token);
    this.seen.add(token);
  }

  /** A penalised copy of the logits (input untouched). */
  penalize(logits: Float32Array): Float32Array {
    const o = this.options;
    const out = new Float32Array(logits);
    applyRepetitionPenalty(out, this.seen, o.repetitionPenalty);
    applyPresenceFrequencyPenalty(out, this.output, o.presencePenalty, o.frequencyPenalty);
    return out;
  }

  /** The distribution the next draw comes from (a single token with probability 1 when greedy). */
  distribution(logits: Float32Array): CandidateDistribution {
    const o = this.options;
    const penalties = o.repetitionPenalty !== 1 || o.presencePenalty !== 0 || o.frequencyPenalty !== 0;
    // Penalties touch only seen tokens: apply them in place and restore those entries afterwards
    // instead of copying the whole vocabulary row every step.
    const touched = penalties ? Int32Array.from(this.seen).filter((t) => t >= 0 && t < logits.length) : new Int32Array(0);
    const saved = Float32Array.from(touched, (t) => logits[t]!);
    try {
      if (penalties) {
        applyRepetitionPenalty(logits, touched, o.repetitionPenalty);
        applyPresenceFrequencyPenalty(logits, this.output, o.presencePenalty, o.frequencyPenalty);
      }
      if (this.greedy) {
        const a = argmax(logits);
        if (a < 0) throw new QwenError("cannot sample: every logit is -Infinity or NaN");
        return { ids: Int32Array.of(a), probs: Float64Array.of(1) };
      }
      return warpedDistribution(logits, o);
    } finally {
      for (let j = 0; j < touched.length; j++) logits[touched[j]!] = saved[j]!;
    }
  }

  /** Choose the next token without recording it. */
  sample(logits: Float32Array): number {
    const d = this.distribution(logits);
    if (d.ids.length === 1) return d.ids[0]!;
    const u = this.rng.nextFloat();
    let cum = 0;
    for (let j = 0; j < d.ids.length; j++) {
      cum += d.probs[j]!;
      if (u < cum) return d.ids[j]!;
    }
    return d.ids[d.ids.length - 1]!;
  }

  /** Choose the next token and record it. */
  next(logits: Float32Array): number {
    const t = this.sample(logits);
    this.accept(t);
    return t;
  }
}
