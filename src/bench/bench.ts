// The benchmark: a random-weight checkpoint with the exact shapes of a real Qwen3-VL config
// (deterministic, in a temp dir), loaded on the wasm backend once per weight format, each in a fresh
// child process, measuring decode and prefill throughput, vision encode time, time to first token
// for an image prompt, peak RSS and weight bytes. Medians over repeats.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { QwenError } from "../errors.js";
import { realConfig, writeSyntheticCheckpoint } from "../io/synthetic.js";
import type { WeightFormat } from "../tensor/backend.js";
import type { ChildOptions, FormatResult } from "./child.js";

export interface BenchOptions {
  config: string;
  formats: WeightFormat[];
  threads: number;
  repeat: number;
  /** Text layers and vision depth (default: the real config's). */
  layers?: number;
  promptTokens: number;
  decodeTokens: number;
  visionLarge: boolean;
  vision: boolean;
  keep: boolean;
  /** Directory for the checkpoint (default: a new temp dir). */
  dir?: string;
  log?: (line: string) => void;
}

export interface BenchReport {
  config: string;
  threads: number;
  layers: number | null;
  prompt_tokens: number;
  decode_tokens: number;
  repeat: number;
  checkpoint_bytes: number;
  results: FormatResult[];
}

function runChildProcess(opts: ChildOptions): Promise<FormatResult> {
  const script = fileURLToPath(new URL("./child-main.js", import.meta.url));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, JSON.stringify(opts)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    p.on("error", reject);
    p.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
      if (code !== 0 || !line) reject(new Error(`bench child (${opts.format}) failed with code ${code}: ${err.trim().slice(-2000)}`));
      else resolve(JSON.parse(line.slice("BENCH_RESULT ".length)) as FormatResult);
    });
  });
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const log = o.log ?? (() => {});
  const cfg = realConfig(o.config, o.layers !== undefined ? { textLayers: o.layers, visionDepth: o.layers } : {});
  if (o.layers !== undefined) {
    // keep only the DeepStack taps that exist at the smaller depth
    const idx = (cfg.vision_config.deepstack_visual_indexes as number[]).filter((i) => i < o.layers!);
    cfg.vision_config.deepstack_visual_indexes = idx.length ? idx : [0];
  }
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `qwen3vl-bench-${o.config}-`));
  const made = !existsSync(join(dir, "config.json")) || JSON.stringify(JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))) !== JSON.stringify(cfg);
  try {
    let bytes = 0;
    if (made) {
      const t = performance.now();
      bytes = writeSyntheticCheckpoint(dir, cfg, { seed: `bench-${o.config}` }).bytes;
      log(`checkpoint ${o.config}${o.layers !== undefined ? ` (${o.layers} layers)` : ""}: ${(bytes / 2 ** 30).toFixed(2)} GiB written to ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const results: FormatResult[] = [];
    for (const format of o.formats) {
      log(`${format}: loading and running (${o.repeat} repeat${o.repeat > 1 ? "s" : ""}, ${o.threads} thread${o.threads > 1 ? "s" : ""})...`);
      const r = await runChildProcess({
        dir, format, threads: o.threads, repeat: o.repeat, promptTokens: o.promptTokens, decodeTokens: o.decodeTokens,
        visionLarge: o.visionLarge, vision: o.vision,
      });
      log(`${format}: ${formatRow(r)}`);
      results.push(r);
    }
    return {
      config: o.config, threads: o.threads, layers: o.layers ?? null, prompt_tokens: o.promptTokens, decode_tokens: o.decodeTokens,
      repeat: o.repeat, checkpoint_bytes: bytes, results,
    };
  } finally {
    if (!o.keep && !o.dir) rmSync(dir, { recursive: true, force: true });
    else log(`checkpoint kept in ${dir}`);
  }
}

const fmt = (x: number | null, d = 1): string => (x === null || x === undefined ? "-" : x.toFixed(d));

export function formatRow(r: FormatResult): string {
  return `decode ${fmt(r.decode_tok_s, 2)} tok/s, prefill ${fmt(r.prefill_tok_s, 1)} tok/s, vision 1024x768 ${fmt(r.vision_ms["1024x768"], 0)} ms, ` +
    `448x448 ${fmt(r.vision_ms["448x448"], 0)} ms, TTFT ${fmt(r.ttft_ms, 0)} ms, peak RSS ${(r.peak_rss_bytes / 2 ** 30).toFixed(2)} GiB, ` +
    `weights ${(r.weight_bytes / 2 ** 30).toFixed(2)} GiB (RSS/weights ${(r.peak_rss_bytes / r.weight_bytes).toFixed(2)}), load ${r.load_s.toFixed(1)} s\n` +
    `  host ceilings: FMA ${fmt(r.ceilings?.fma_gflops, 1)} GFLOPS, read ${fmt(r.ceilings?.read_gb_s, 1)} GB/s; decode reads ` +
    `${fmt(r.decode_read_gb_s, 1)} GB/s (${fmt(100 * r.decode_vs_read, 0)} % of read), prefill ${fmt(r.prefill_gflops, 1)} GFLOPS ` +
    `(${fmt(100 * r.prefill_vs_fma, 0)} % of FMA)`;
}

export function formatTable(rep: BenchReport): string {
  const head = ["format", "decode tok/s", "prefill tok/s", "vision 1024x768 ms", "vision 448x448 ms", "TTFT ms", "peak RSS GiB", "weights GiB", "RSS/weights",
    "read GB/s", "decode % read", "FMA GFLOPS", "prefill % FMA"];
  const rows = rep.results.map((r) => [
    r.format, fmt(r.decode_tok_s, 2), fmt(r.prefill_tok_s, 1), fmt(r.vision_ms["1024x768"], 0), fmt(r.vision_ms["448x448"], 0), fmt(r.ttft_ms, 0),
    (r.peak_rss_bytes / 2 ** 30).toFixed(2), (r.weight_bytes / 2 ** 30).toFixed(2), (r.peak_rss_bytes / r.weight_bytes).toFixed(2),
    fmt(r.ceilings?.read_gb_s, 1), fmt(100 * r.decode_vs_read, 0), fmt(r.ceilings?.fma_gflops, 1), fmt(100 * r.prefill_vs_fma, 0),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(w[i]!)).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

/** Ratios of this run to a stored baseline (a previous --json line): >1 is better for every metric. */
export function compareReports(cur: BenchReport, base: BenchReport): string {
  const out: string[] = [`vs baseline (config ${base.config}, ${base.threads} threads): ratio > 1 = better`];
  for (const r of cur.results) {
    const b = base.results.find((x) => x.format === r.format);
    if (!b) { out.push(`${r.format}: not in the baseline`); continue; }
    const ratio = (a: number | null, c: number | null, higherBetter: boolean): string =>
      a === null || c === null || !a || !c ? "-" : (higherBetter ? a / c : c / a).toFixed(2) + "x";
    out.push(`${r.format}: decode ${ratio(r.decode_tok_s, b.decode_tok_s, true)}, prefill ${ratio(r.prefill_tok_s, b.prefill_tok_s, true)}, ` +
      `vision 1024x768 ${ratio(r.vision_ms["1024x768"], b.vision_ms["1024x768"], false)}, 448x448 ${ratio(r.vision_ms["448x448"], b.vision_ms["448x448"], false)}, ` +
      `TTFT ${ratio(r.ttft_ms, b.ttft_ms, false)}, peak RSS ${ratio(r.peak_rss_bytes, b.peak_rss_bytes, false)}`);
  }
  return out.join("\n");
}

export function loadBaseline(file: string): BenchReport {
  const text = readFileSync(file, "utf8").trim();
  const last = text.split("\n").filter((l) => l.trim().startsWith("{")).pop();
  if (!last) throw new QwenError(`${file}: no JSON object found (expected the last line of \`qwen3-vl bench --json\`)`);
  try {
    return JSON.parse(last) as BenchReport;
  } catch (e) {
    throw new QwenError(`${file}: not a bench JSON line (${(e as Error).message})`);
  }
}
