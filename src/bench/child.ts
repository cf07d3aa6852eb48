// One benchmark run for one weight format, in its own process (so peak RSS belongs to that format
// alone). Invoked by src/bench/bench.ts as `node child.js '<json options>'`; prints one JSON line.
import { WasmBackend, formatBytes, storedFormat } from "../backends/wasm/index.js";
import type { Qwen3VLConfig } from "../model/config.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { parseConfig } from "../model/config.js";
import { Qwen3VLModel } from "../model/qwen3-vl.js";
import { expectedTensors } from "../model/tensor-names.js";
import type { Grid } from "../model/vision/merge-window.js";
import type { WeightFormat } from "../tensor/backend.js";

export interface ChildOptions {
  dir: string;
  format: WeightFormat;
  threads: number;
  repeat: number;
  promptTokens: number;
  decodeTokens: number;
  visionLarge: boolean;
  vision: boolean;
}

export interface FormatResult {
  format: WeightFormat;
  decode_tok_s: number;
  prefill_tok_s: number;
  vision_ms: { "1024x768": number | null; "448x448": number | null };
  ttft_ms: number | null;
  peak_rss_bytes: number;
  weight_bytes: number;
  load_s: number;
  /**
   * What the host gave this process (medians of 5, measured before every repeat, median over repeats):
   * f32x4 FMA throughput on all threads and streaming read bandwidth over the resident weights.
   */
  ceilings: { fma_gflops: number; read_gb_s: number };
  /** Weight bytes a decode step reads (every text matrix and the output head; chosen experts only). */
  decode_bytes_per_token: number;
  /** Effective read rate of decoding (decode_bytes_per_token x decode tok/s) and its share of read_gb_s. */
  decode_read_gb_s: number;
  decode_vs_read: number;
  /** Matmul flops per prefill token (2 x text matrix parameters, head excluded) x prefill tok/s, and share of fma_gflops. */
  prefill_gflops: number;
  prefill_vs_fma: number;
  /** Per-repeat raw numbers (medians are reported above). */
  runs: {
    decode_tok_s: number; prefill_tok_s: number; vision_large_ms: number | null; vision_small_ms: number | null; ttft_ms: number | null;
    fma_gflops: number; read_gb_s: number;
  }[];
}

/**
 * Per decode token: bytes of the text matrices as stored in `format` (MoE experts scaled by top-k / E,
 * the routers read whole) plus the output head; per prefill token: 2 x the text matrix parameters
 * (the head runs on the last position only).
 */
export function textCosts(cfg: Qwen3VLConfig, format: WeightFormat): { decodeBytes: number; prefillFlops: number } {
  const t = cfg.text;
  let decodeBytes = 0, prefillFlops = 0;
  for (const s of expectedTensors(cfg)) {
    if (s.shape.length < 2) continue;
    const isLayer = s.name.startsWith("model.language_model.layers.");
    const isHead = s.name === "lm_head.weight" || (cfg.tieWordEmbeddings && s.name.endsWith("language_model.embed_tokens.weight"));
    if (!isLayer && !isHead) continue;
    const K = s.shape[s.shape.length - 1]!, N = s.shape.reduce((a, b) => a * b, 1) / K;
    const share = s.name.includes(".mlp.experts.") ? t.numExpertsPerTok / t.numExperts : 1;
    decodeBytes += formatBytes(storedFormat(s.name, format, "BF16", "mixed"), N, K) * share;
    if (isLayer) prefillFlops += 2 * N * K * share;
  }
  return { decodeBytes, prefillFlops };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296; };
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

const IM_START = 151644, IM_END = 151645, NL = 198, USER = 872, ASSISTANT = 77091;

/** With QWEN3VL_BENCH_MEM=1 the child prints its memory use after each phase to stderr. */
function memTrace(what: string): void {
  if (!process.env.QWEN3VL_BENCH_MEM) return;
  const m = process.memoryUsage();
  const mb = (x: number): string => (x / 2 ** 20).toFixed(0);
  process.stderr.write(`mem ${what}: rss ${mb(m.rss)} MiB, max rss ${mb(process.resourceUsage().maxRSS * 1024)} MiB, JS heap ${mb(m.heapUsed)} MiB, array buffers ${mb(m.arrayBuffers)} MiB\n`);
}

export async function runChild(o: ChildOptions): Promise<FormatResult> {
  const ck = openCheckpoint(o.dir);
  const cfg = parseConfig(ck.config, `${o.dir}/config.json`);
  ck.store.close?.();
  const weightBytes = WasmBackend.estimateWeightBytes(expectedTensors(cfg), o.format);
  const backend = await WasmBackend.create({ threads: o.threads, weightBytes });
  const t0 = performance.now();
  const model = Qwen3VLModel.load(o.dir, backend, { matmulFormat: o.format });
  const loadS = (performance.now() - t0) / 1000;
  memTrace("loaded");
  const V = cfg.vision;
  const rowWidth = V.inChannels * V.temporalPatchSize * V.patchSize * V.patchSize;
  const pixels = (grid: Grid): Float32Array => {
    const r = rng(grid[1] * 131 + grid[2]);
    const px = new Float32Array(grid[0] * grid[1] * grid[2] * rowWidth);
    for (let i = 0; i < px.length; i++) px[i] = r() * 2 - 1;
    return px;
  };
  const large: Grid = [1, 48, 64], small: Grid = [1, 28, 28];
  const pxLarge = o.vision && o.visionLarge ? pixels(large) : null;
  const pxSmall = o.vision ? pixels(small) : null;
  const r = rng(12345);
  const prompt = Array.from({ length: o.promptTokens }, () => 1000 + Math.floor(r() * 100000));
  const runs: FormatResult["runs"] = [];
  for (let rep = 0; rep < o.repeat; rep++) {
    const ceil = backend.kernels.ceilings();
    // prefill + decode
    const session = model.newSession();
    let t = performance.now();
    let logitsT = model.forward(session, { inputIds: prompt });
    let logits = backend.toArray(logitsT);
    backend.release(logitsT);
    const prefillS = (performance.now() - t) / 1000;
    let next = argmax(logits);
    t = performance.now();
    for (let i = 0; i < o.decodeTokens; i++) {
      logitsT = model.forward(session, { inputIds: [next] });
      logits = backend.toArray(logitsT);
      backend.release(logitsT);
      next = argmax(logits);
    }
    const decodeS = (performance.now() - t) / 1000;
    session.dispose();
    memTrace("prefill + decode");
    // vision encodes
    const enc = (px: Float32Array | null, g: Grid): number | null => {
      if (!px) return null;
      const t1 = performance.now();
      const out = model.encodeVision({ pixelValues: px, grids: [g] });
      const ms = performance.now() - t1;
      backend.release(out.embeds, ...out.deepstack);
      return ms;
    };
    const visionLarge = enc(pxLarge, large);
    memTrace("vision large");
    const visionSmall = enc(pxSmall, small);
    memTrace("vision small");
    // time to first token: the 448x448 image + a short question, prefill + first token
    let ttft: number | null = null;
    if (pxSmall) {
      const nImg = (small[0] * small[1] * small[2]) / (V.spatialMergeSize * V.spatialMergeSize);
      const question = [3838, 374, 304, 419, 2168, 30]; // "What is in this image?"
      const ids = [IM_START, USER, NL, cfg.visionStartTokenId, ...new Array<number>(nImg).fill(cfg.imageTokenId), cfg.visionEndTokenId,
        ...question, IM_END, NL, IM_START, ASSISTANT, NL];
      const t2 = performance.now();
      const s2 = model.newSession();
      const lt = model.forward(s2, { inputIds: ids, images: { pixelValues: pxSmall, grids: [small] } });
      argmax(backend.toArray(lt));
      ttft = performance.now() - t2;
      backend.release(lt);
      s2.dispose();
    }
    memTrace("ttft");
    runs.push({
      decode_tok_s: o.decodeTokens / decodeS, prefill_tok_s: o.promptTokens / prefillS,
      vision_large_ms: visionLarge, vision_small_ms: visionSmall, ttft_ms: ttft,
      fma_gflops: ceil.fmaGflops, read_gb_s: ceil.readGBps,
    });
  }
  const med = (f: (x: FormatResult["runs"][number]) => number | null): number | null => {
    const v = runs.map(f).filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const cost = textCosts(cfg, o.format);
  const decodeTok = med((x) => x.decode_tok_s)!, prefillTok = med((x) => x.prefill_tok_s)!;
  const fmaPeak = med((x) => x.fma_gflops)!, readBw = med((x) => x.read_gb_s)!;
  const res: FormatResult = {
    format: o.format,
    decode_tok_s: decodeTok,
    prefill_tok_s: prefillTok,
    vision_ms: { "1024x768": med((x) => x.vision_large_ms), "448x448": med((x) => x.vision_small_ms) },
    ttft_ms: med((x) => x.ttft_ms),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    weight_bytes: backend.weightBytes,
    load_s: loadS,
    ceilings: { fma_gflops: fmaPeak, read_gb_s: readBw },
    decode_bytes_per_token: cost.decodeBytes,
    decode_read_gb_s: (cost.decodeBytes * decodeTok) / 1e9,
    decode_vs_read: (cost.decodeBytes * decodeTok) / 1e9 / readBw,
    prefill_gflops: (cost.prefillFlops * prefillTok) / 1e9,
    prefill_vs_fma: (cost.prefillFlops * prefillTok) / 1e9 / fmaPeak,
    runs,
  };
  backend.dispose();
  return res;
}
